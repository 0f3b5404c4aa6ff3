// SPDX-License-Identifier: Apache-2.0
// The skynet benchmark (https://github.com/atemerev/skynet) as bench/sync_bench.cpp's
// BM_WeftSkynet runs it: a tree of 1,111,111 goroutines, 10 children per node, 1M leaves;
// each leaf sends its number on its parent's unbuffered channel, each node sums ten.
//
//	go run bench/go/skynet.go                  ms per whole tree at GOMAXPROCS 1 and 2
//	                                           (testing.Benchmark)
//	go run bench/go/skynet.go cpu PROCS [TREES]  trees one after another at GOMAXPROCS=PROCS
//	                                           (default 4), with getrusage user and system CPU
//	                                           around each: the Go side of bench/skynet_cpu.cpp
//	                                           (the first tree is the cold one)
//
//go:build ignore

package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
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

// tree runs one whole tree and checks its sum.
func tree() {
	c := make(chan int)
	go skynet(c, 0, 1000000, 10)
	if s := <-c; s != 499999500000 {
		panic(fmt.Sprint("wrong sum ", s))
	}
}

func cpu() (user, sys float64) {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		fmt.Fprintln(os.Stderr, "getrusage:", err)
		os.Exit(1)
	}
	return float64(r.Utime.Sec) + float64(r.Utime.Usec)/1e6, float64(r.Stime.Sec) + float64(r.Stime.Usec)/1e6
}

func cpuTrees(args []string) {
	const usage = "usage: go run bench/go/skynet.go [cpu PROCS [TREES]]"
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	procs, err := strconv.Atoi(args[0])
	trees := 4
	if err == nil && len(args) == 2 {
		trees, err = strconv.Atoi(args[1])
	}
	if err != nil || procs < 1 || trees < 1 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(procs)
	for i := 1; i <= trees; i++ {
		t0 := time.Now()
		u0, s0 := cpu()
		tree()
		u1, s1 := cpu()
		kind := "warm"
		if i == 1 {
			kind = "cold"
		}
		fmt.Printf("go procs %d tree %d (%s): %.1f ms wall, CPU %.2f s (user %.2f s, sys %.2f s)\n",
			procs, i, kind, float64(time.Since(t0).Microseconds())/1000, (u1-u0)+(s1-s0), u1-u0, s1-s0)
	}
}

func main() {
	if len(os.Args) > 1 {
		if os.Args[1] != "cpu" {
			fmt.Fprintln(os.Stderr, "usage: go run bench/go/skynet.go [cpu PROCS [TREES]]")
			os.Exit(2)
		}
		cpuTrees(os.Args[2:])
		return
	}
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		r := testing.Benchmark(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				tree()
			}
		})
		fmt.Printf("%-32s %10.1f ms\n", fmt.Sprintf("GoSkynet/%d", procs), float64(r.T.Nanoseconds())/float64(r.N)/1e6)
	}
}
