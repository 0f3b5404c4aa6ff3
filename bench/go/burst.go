// SPDX-License-Identifier: Apache-2.0
// bench/burst.cpp in Go: `parked N` makes N goroutines that each park on one channel and
// times until all are parked; `spawn N` makes N goroutines (before any runs at GOMAXPROCS=1)
// that each call Done on a WaitGroup, and times until Wait returns.  Per goroutine.
// Run: GOMAXPROCS=1 go run bench/go/burst.go parked|spawn [N]
//go:build ignore

package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "parked" && os.Args[1] != "spawn") {
		fmt.Fprintln(os.Stderr, "usage: burst parked|spawn [N]")
		os.Exit(2)
	}
	n := 1000000
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	var r0, r1 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r0); err != nil {
		panic(err)
	}
	t0 := time.Now()
	var made time.Duration
	if os.Args[1] == "parked" {
		gate := make(chan int)
		var started, done sync.WaitGroup
		started.Add(n)
		done.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				started.Done()
				<-gate
				done.Done()
			}()
		}
		started.Wait()
		made = time.Since(t0)
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
			panic(err)
		}
		close(gate)
		done.Wait()
	} else {
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
		made = time.Since(t0)
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
			panic(err)
		}
	}
	total := time.Since(t0)
	fmt.Printf("go %s %d procs=%d: %.0f ns per goroutine (%.3f s); with the release %.3f s\n", os.Args[1], n,
		runtime.GOMAXPROCS(0), float64(made.Nanoseconds())/float64(n), made.Seconds(), total.Seconds())
	secs := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	fmt.Printf("  timed part: user %.3f s, system %.3f s, %.2f minor faults per goroutine\n",
		secs(r1.Utime)-secs(r0.Utime), secs(r1.Stime)-secs(r0.Stime), float64(r1.Minflt-r0.Minflt)/float64(n))
}
