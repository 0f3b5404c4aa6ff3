// SPDX-License-Identifier: Apache-2.0
// The scheduler benchmarks of bench/sched_bench.cpp, in Go, same shapes:
//   spawn+join: go f() then wait for it, one at a time (and a batch of 1000);
//   yield ping-pong: two goroutines calling runtime.Gosched on GOMAXPROCS=1; an iteration is
//   one Gosched by the main goroutine, i.e. one round trip (two switches).
// Run: go run bench/go/sched.go   (prints name, ns per iteration)
//go:build ignore

package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func report(name string, r testing.BenchmarkResult, per int) {
	fmt.Printf("%-28s %10.1f ns\n", name, float64(r.T.Nanoseconds())/float64(r.N)/float64(per))
}

func main() {
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		report(fmt.Sprintf("GoSpawnJoin/%d", procs), testing.Benchmark(func(b *testing.B) {
			var wg sync.WaitGroup
			for i := 0; i < b.N; i++ {
				wg.Add(1)
				go func() { wg.Done() }()
				wg.Wait()
			}
		}), 1)
		report(fmt.Sprintf("GoSpawnJoinBatch/%d/1000", procs), testing.Benchmark(func(b *testing.B) {
			var wg sync.WaitGroup
			for i := 0; i < b.N; i++ {
				wg.Add(1000)
				for k := 0; k < 1000; k++ {
					go func() { wg.Done() }()
				}
				wg.Wait()
			}
		}), 1000)
	}
	runtime.GOMAXPROCS(1)
	report("GoGoschedPingPong", testing.Benchmark(func(b *testing.B) {
		var stop int32
		done := make(chan struct{})
		go func() {
			for atomic.LoadInt32(&stop) == 0 {
				runtime.Gosched()
			}
			close(done)
		}()
		runtime.Gosched()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			runtime.Gosched()
		}
		atomic.StoreInt32(&stop, 1)
		<-done
	}), 1)
}
