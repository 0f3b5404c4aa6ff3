// The Go side of bench/skynet_cpu.cpp: skynet trees one after another in one process, with
// getrusage user and system CPU time around every tree, beside its wall time (BENCHMARKS.md,
// "CPU time per warm tree").  The first tree is the cold one.
// Run: go run bench/go/skynet_cpu.go PROCS [TREES]   (GOMAXPROCS=PROCS; default 4 trees)
//go:build ignore

package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
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

func cpu() (user, sys float64) {
	var r syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return float64(r.Utime.Sec) + float64(r.Utime.Usec)/1e6, float64(r.Stime.Sec) + float64(r.Stime.Usec)/1e6
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: go run bench/go/skynet_cpu.go PROCS [TREES]")
		os.Exit(2)
	}
	procs, err := strconv.Atoi(os.Args[1])
	trees := 4
	if err == nil && len(os.Args) == 3 {
		trees, err = strconv.Atoi(os.Args[2])
	}
	if err != nil || procs < 1 || trees < 1 {
		fmt.Fprintln(os.Stderr, "usage: go run bench/go/skynet_cpu.go PROCS [TREES]")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(procs)
	for i := 1; i <= trees; i++ {
		t0 := time.Now()
		u0, s0 := cpu()
		c := make(chan int)
		go skynet(c, 0, 1000000, 10)
		if s := <-c; s != 499999500000 {
			panic(fmt.Sprint("wrong sum ", s))
		}
		u1, s1 := cpu()
		kind := "warm"
		if i == 1 {
			kind = "cold"
		}
		fmt.Printf("go procs %d tree %d (%s): %.1f ms wall, CPU %.2f s (user %.2f s, sys %.2f s)\n",
			procs, i, kind, float64(time.Since(t0).Microseconds())/1000, (u1-u0)+(s1-s0), u1-u0, s1-s0)
	}
}
