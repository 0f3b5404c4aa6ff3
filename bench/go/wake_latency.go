// SPDX-License-Identifier: Apache-2.0
// bench/wake_latency.cpp in Go: GOMAXPROCS busy goroutines (a loop calling a function Go does
// not inline), then main sleeps 50 ms ten times and 1 ms twenty times, and yields ten times
// in a row five times; prints the median and worst lateness / duration.
// Run: go run bench/go/wake_latency.go [PROCS]
//go:build ignore

package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

//go:noinline
func step(n int64) int64 { return n + 1 }

func report(what string, v []float64) {
	sort.Float64s(v)
	fmt.Printf("%-26s median %8.2f ms   worst %8.2f ms   (%d samples)\n", what, v[len(v)/2], v[len(v)-1], len(v))
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func main() {
	procs := 1
	if len(os.Args) > 1 {
		procs, _ = strconv.Atoi(os.Args[1])
	}
	runtime.GOMAXPROCS(procs)
	var stop, started int32
	var wg sync.WaitGroup
	for i := 0; i < procs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			atomic.AddInt32(&started, 1)
			var n int64
			for atomic.LoadInt32(&stop) == 0 {
				n = step(n)
			}
		}()
	}
	for atomic.LoadInt32(&started) < int32(procs) {
		runtime.Gosched()
	}
	var late50, late1, yields []float64
	for i := 0; i < 10; i++ {
		t0 := time.Now()
		time.Sleep(50 * time.Millisecond)
		late50 = append(late50, ms(time.Since(t0))-50)
	}
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		late1 = append(late1, ms(time.Since(t0))-1)
	}
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		for k := 0; k < 10; k++ {
			runtime.Gosched()
		}
		yields = append(yields, ms(time.Since(t0)))
	}
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	fmt.Printf("go, GOMAXPROCS %d, %d busy goroutines\n", procs, procs)
	report("sleep 50 ms: late by", late50)
	report("sleep 1 ms: late by", late1)
	report("ten yields: took", yields)
}
