// SPDX-License-Identifier: Apache-2.0
// The stack-growth benchmark of bench/grow_bench.cpp, in Go, same shape: a fresh goroutine
// recursing 4000 frames of ~440 bytes (a 400-byte array, the return address, the frame
// pointer and the spill area), started and waited for one at a time.  Go starts every
// goroutine on a 2 KiB stack and doubles it by copying (2 KiB -> 2 MiB: ten copies).
// Also: the same recursion on a goroutine whose stack already fits (no growth), so the
// growth share can be read off.
// Run: GOMAXPROCS=2 go run bench/go/grow.go   (prints name, µs per iteration)
//go:build ignore

package main

import (
	"fmt"
	"runtime"
	"testing"
)

var sink byte

//go:noinline
func recurse(d int) byte {
	var buf [400]byte
	buf[d%len(buf)] = byte(d)
	if d == 0 {
		return buf[0]
	}
	return recurse(d-1) ^ buf[(d*7)%len(buf)]
}

func report(name string, r testing.BenchmarkResult) {
	fmt.Printf("%-36s %10.1f µs\n", name, float64(r.T.Nanoseconds())/float64(r.N)/1e3)
}

func main() {
	fmt.Printf("go %s, GOMAXPROCS=%d\n", runtime.Version(), runtime.GOMAXPROCS(0))
	report("GoFreshGoroutineRecursion/4000", testing.Benchmark(func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			done := make(chan struct{})
			go func() {
				sink ^= recurse(4000)
				close(done)
			}()
			<-done
		}
	}))
	report("GoWarmGoroutineRecursion/4000", testing.Benchmark(func(b *testing.B) {
		done := make(chan struct{})
		work := make(chan int)
		go func() {
			for range work {
				sink ^= recurse(4000)
				done <- struct{}{}
			}
		}()
		work <- 0 // grow it once
		<-done
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			work <- 0
			<-done
		}
		close(work)
	}))
}
