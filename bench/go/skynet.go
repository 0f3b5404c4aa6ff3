// The skynet benchmark (https://github.com/atemerev/skynet) as bench/sync_bench.cpp's
// BM_WeftSkynet runs it: a tree of 1,111,111 goroutines, 10 children per node, 1M leaves;
// each leaf sends its number on its parent's unbuffered channel, each node sums ten.
// Run: go run bench/go/skynet.go   (prints ms per whole tree at GOMAXPROCS 1 and 2)
//go:build ignore

package main

import (
	"fmt"
	"runtime"
	"testing"
)

func skynet(c chan int, num, size, div int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	for i := 0; i < div; i++ {
		go skynet(rc, num+i*(size/div), size/div, div)
	}
	sum := 0
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func main() {
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		r := testing.Benchmark(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c := make(chan int)
				go skynet(c, 0, 1000000, 10)
				if s := <-c; s != 499999500000 {
					panic(fmt.Sprint("wrong sum ", s))
				}
			}
		})
		fmt.Printf("%-32s %10.1f ms\n", fmt.Sprintf("GoSkynet/%d", procs), float64(r.T.Nanoseconds())/float64(r.N)/1e6)
	}
}
