// SPDX-License-Identifier: Apache-2.0
// The channel and mutex benchmarks of bench/sync_bench.cpp, in Go, same shapes:
//   ping-pong: two goroutines over two unbuffered channels; an iteration is one round trip;
//   producer/consumer: ints through a chan int of capacity 128; an iteration is one value;
//   mutex: sync.Mutex lock+unlock, uncontended, and with 3 more goroutines contending.
// Run: GOMAXPROCS is set per line; go run bench/go/pingpong.go   (prints name, ns per iteration)
//go:build ignore

package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func report(name string, r testing.BenchmarkResult) {
	fmt.Printf("%-32s %10.1f ns\n", name, float64(r.T.Nanoseconds())/float64(r.N))
}

func main() {
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		report(fmt.Sprintf("GoChanPingPong/%d", procs), testing.Benchmark(func(b *testing.B) {
			ping, pong := make(chan int), make(chan int)
			go func() {
				for v := range ping {
					pong <- v
				}
			}()
			for i := 0; i < b.N; i++ {
				ping <- 1
				<-pong
			}
			close(ping)
		}))
		report(fmt.Sprintf("GoChanProducerConsumer/%d", procs), testing.Benchmark(func(b *testing.B) {
			c := make(chan int, 128)
			done := make(chan int)
			go func() {
				s := 0
				for v := range c {
					s += v
				}
				done <- s
			}()
			for i := 0; i < b.N; i++ {
				c <- i
			}
			close(c)
			<-done
		}))
	}
	runtime.GOMAXPROCS(1)
	report("GoMutexUncontended/1", testing.Benchmark(func(b *testing.B) {
		var mu sync.Mutex
		x := 0
		for i := 0; i < b.N; i++ {
			mu.Lock()
			x++
			mu.Unlock()
		}
	}))
	runtime.GOMAXPROCS(2)
	report("GoMutexContended/2 (3 more)", testing.Benchmark(func(b *testing.B) {
		var mu sync.Mutex
		var stop atomic.Bool
		var wg sync.WaitGroup
		x := 0
		for k := 0; k < 3; k++ {
			wg.Add(1)
			go func() {
				for !stop.Load() {
					mu.Lock()
					x++
					mu.Unlock()
				}
				wg.Done()
			}()
		}
		for i := 0; i < b.N; i++ {
			mu.Lock()
			x++
			mu.Unlock()
		}
		stop.Store(true)
		wg.Wait()
	}))
}
