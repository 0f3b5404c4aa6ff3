// SPDX-License-Identifier: Apache-2.0
// The Go column of weft-compare (bench/compare/): the same workloads, in the same shapes, on Go
// goroutines.  weft-compare builds this file on the fly (go build -o DIR/weft-compare-go) and
// runs it once per workload, exactly like its own child processes:
//
//	weft-compare-go WORKLOAD key=value ...
//
// and reads one "metric value" line per figure on stdout ("note text" and "stop text" lines
// carry words).  The workloads (see bench/compare/workloads.cpp for the C++ side):
//
//	spawn     n1=N nb=N batch=B reps=R   spawn+join one at a time (n1 per rep), and in batches
//	                                      of B joined with a WaitGroup (nb per rep): ns per task
//	burst     n=N reps=R                  N goroutines started, then waited on with a WaitGroup
//	                                      (at procs=1 all exist before the first runs): ns each
//	pingpong  n=N reps=R                  two goroutines calling runtime.Gosched on
//	                                      GOMAXPROCS=1; ns per round trip (two switches)
//	chanpp    n=N reps=R                  two goroutines over two unbuffered channels: ns per
//	                                      round trip
//	skynet    leaves=L reps=R             the skynet tree (as bench/go/skynet.go): µs per tree
//	create    n=N                         N goroutines that each park on a channel: ns each
//	                                      until all have started
//	grow      depth=D reps=R              a fresh goroutine recursing D frames of ~440 bytes:
//	                                      µs from go to done
//	parked    n=N cap=C memcap=B seconds=S  N goroutines blocked on a channel: RSS, page
//	                                      tables, VMAs and address space per goroutine; then
//	                                      (C > 0) more until C, B bytes of RSS or S seconds
//
// Go runs with its defaults (GOMAXPROCS = the CPUs), as a user's program would, unless a
// procs=P parameter sets GOMAXPROCS.  Every timed workload does R+1 repetitions without a
// warm-up: the first is the single-run figure ("metric value"), the median of the others the
// warm one ("metric_warm value").
//
//go:build ignore

package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

func param(args map[string]string, key string, def int64) int64 {
	v, ok := args[key]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "weft-compare-go: bad %s=%q\n", key, v)
		os.Exit(2)
	}
	return n
}

func emit(metric string, v float64) { fmt.Printf("%s %.6g\n", metric, v) }

func median(xs []float64) float64 {
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

// coldWarm runs body reps+1 times, each doing n items, and prints the first repetition's ns per
// item as metric and the median of the rest as metric_warm.
func coldWarm(metric string, reps, n int, body func()) {
	var warm []float64
	for r := 0; r <= reps; r++ {
		t := time.Now()
		body()
		ns := float64(time.Since(t).Nanoseconds()) / float64(n)
		if r == 0 {
			emit(metric, ns)
		} else {
			warm = append(warm, ns)
		}
	}
	if len(warm) > 0 {
		emit(metric+"_warm", median(warm))
	}
}

// ---- spawn+join ------------------------------------------------------------------------------

func spawn(args map[string]string) {
	n1, nb := int(param(args, "n1", 2000)), int(param(args, "nb", 10000))
	batch, reps := int(param(args, "batch", 1000)), int(param(args, "reps", 3))
	var wg sync.WaitGroup
	batched := func(n int) {
		for done := 0; done < n; done += batch {
			wg.Add(batch)
			for k := 0; k < batch; k++ {
				go func() { wg.Done() }()
			}
			wg.Wait()
		}
	}
	one := func(n int) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { wg.Done() }()
			wg.Wait()
		}
	}
	// One at a time first, then the batches, as the C++ columns do; no warm-up.
	coldWarm("spawn_one_ns", reps, n1, func() { one(n1) })
	coldWarm("spawn_batch_ns", reps, nb, func() { batched(nb) })
}

// ---- a burst of goroutines, then a wait ------------------------------------------------------

func burst(args map[string]string) {
	n, reps := int(param(args, "n", 200000)), int(param(args, "reps", 1))
	coldWarm("burst_ns", reps, n, func() {
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	})
}

// ---- unbuffered channel ping-pong ------------------------------------------------------------

func chanpp(args map[string]string) {
	n, reps := int(param(args, "n", 200000)), int(param(args, "reps", 3))
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	coldWarm("chanpp_ns", reps, n, func() {
		for i := 0; i < n; i++ {
			ping <- 1
			<-pong
		}
	})
	close(ping)
}

// ---- skynet (bench/go/skynet.go) -------------------------------------------------------------

func skynetNode(c chan int, num, size, div int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	for i := 0; i < div; i++ {
		go skynetNode(rc, num+i*(size/div), size/div, div)
	}
	sum := 0
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func skynet(args map[string]string) {
	leaves, reps := int(param(args, "leaves", 1000000)), int(param(args, "reps", 1))
	var warm []float64
	for r := 0; r <= reps; r++ {
		t := time.Now()
		c := make(chan int)
		go skynetNode(c, 0, leaves, 10)
		if s := <-c; s != leaves*(leaves-1)/2 {
			fmt.Fprintf(os.Stderr, "weft-compare-go: skynet summed %d, not %d\n", s, leaves*(leaves-1)/2)
			os.Exit(1)
		}
		us := float64(time.Since(t).Nanoseconds()) / 1e3
		if r == 0 {
			emit("skynet_us", us)
		} else {
			warm = append(warm, us)
		}
	}
	if len(warm) > 0 {
		emit("skynet_us_warm", median(warm))
	}
}

// ---- parked goroutines created ---------------------------------------------------------------

func create(args map[string]string) {
	n := int(param(args, "n", 100000))
	block := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	t := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-block
		}()
	}
	started.Wait()
	emit("create_ns", float64(time.Since(t).Nanoseconds())/float64(n))
}

// ---- switch ping-pong ------------------------------------------------------------------------

func pingpong(args map[string]string) {
	n, reps := int(param(args, "n", 200000)), int(param(args, "reps", 3))
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	var stop, partner int64
	done := make(chan struct{})
	go func() {
		for atomic.LoadInt64(&stop) == 0 {
			atomic.AddInt64(&partner, 1)
			runtime.Gosched()
		}
		close(done)
	}()
	runtime.Gosched() // let the partner start
	coldWarm("pingpong_ns", reps, n, func() {
		for i := 0; i < n; i++ {
			runtime.Gosched()
		}
	})
	atomic.StoreInt64(&stop, 1)
	<-done
	if p := atomic.LoadInt64(&partner); p < int64(n*(reps+1))/2 {
		fmt.Printf("note the partner ran %d times for %d yields: the switches did not alternate\n", p, n*(reps+1))
	}
}

// ---- stack growth ----------------------------------------------------------------------------

var sink byte

// A frame of about 440 bytes: the 400-byte array, the return address, the frame pointer and
// the argument spill area.  Go grows the goroutine's stack by doubling and copying.
//
//go:noinline
func recurse(d int, lo *uintptr) byte {
	var buf [400]byte
	buf[d%len(buf)] = byte(d)
	if d == 0 {
		*lo = uintptr(unsafe.Pointer(&buf[0]))
		return buf[0]
	}
	return recurse(d-1, lo) ^ buf[(d*7)%len(buf)]
}

func grow(args map[string]string) {
	depth, reps := int(param(args, "depth", 4000)), int(param(args, "reps", 15))
	var xs []float64
	var hi, lo uintptr
	cold := 0.0
	for r := 0; r <= reps; r++ {
		t := time.Now()
		done := make(chan struct{})
		go func() {
			var x uintptr
			sink ^= recurse(depth, &x)
			close(done)
		}()
		<-done
		us := float64(time.Since(t).Nanoseconds()) / 1e3
		if r == 0 {
			cold = us // the first: a fresh process's, before any stack was grown
		} else {
			xs = append(xs, us)
		}
	}
	// The frame size, on a goroutine whose stack already fits (no copy between the two reads),
	// after the timed runs so the first of them is a cold one.
	ch := make(chan struct{})
	go func() {
		var x uintptr
		recurse(depth, &x)
		recurse(0, &hi)
		recurse(1, &lo)
		close(ch)
	}()
	<-ch
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	emit("grow_us", cold)
	emit("grow_us_warm", median(xs))
	emit("grow_cold_us", cold)
	emit("grow_mean_us", sum/float64(len(xs)))
	emit("frame_bytes", float64(hi-lo))
}

// ---- parked goroutines and how many fit ------------------------------------------------------

type status struct{ rss, pte, virt, vmas float64 }

// VmRSS, VmPTE and VmSize from /proc/self/status (kB), and the lines of /proc/self/maps.
func readStatus() status {
	var s status
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, "weft-compare-go:", err)
		os.Exit(1)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			s.rss = v * 1024
		case "VmPTE:":
			s.pte = v * 1024
		case "VmSize:":
			s.virt = v * 1024
		}
	}
	m, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		fmt.Fprintln(os.Stderr, "weft-compare-go:", err)
		os.Exit(1)
	}
	s.vmas = float64(strings.Count(string(m), "\n"))
	return s
}

func parked(args map[string]string) {
	n, capN := param(args, "n", 100000), param(args, "cap", 0)
	memcap, seconds := param(args, "memcap", 2<<30), param(args, "seconds", 20)
	block := make(chan struct{})
	var started sync.WaitGroup
	park := func(k int64) {
		started.Add(int(k))
		for i := int64(0); i < k; i++ {
			go func() {
				started.Done()
				<-block
			}()
		}
		started.Wait()
	}
	runtime.GC()
	before := readStatus()
	park(n)
	time.Sleep(20 * time.Millisecond) // the last ones reach their receive
	after := readStatus()
	per := func(a, b float64) float64 { return (a - b) / float64(n) }
	emit("parked_rss", per(after.rss, before.rss))
	emit("parked_pte", per(after.pte, before.pte))
	emit("parked_vmas", per(after.vmas, before.vmas))
	emit("parked_virt", per(after.virt, before.virt))
	if capN <= 0 {
		return
	}
	// How many fit: Go has no per-goroutine limit but memory, and running out of it is a
	// fatal "runtime: out of memory" nobody can catch, so the probe stops at the caps.
	t := time.Now()
	total := n
	stop := ""
	for stop == "" {
		if total >= capN {
			stop = "cap"
			break
		}
		k := capN - total
		if k > 10000 {
			k = 10000
		}
		park(k)
		total += k
		if s := readStatus(); s.rss+s.pte > float64(memcap) {
			stop = "memcap"
		} else if time.Since(t) > time.Duration(seconds)*time.Second {
			stop = "time"
		}
	}
	emit("capacity", float64(total))
	fmt.Printf("stop %s\n", stop)
	emit("capacity_seconds", time.Since(t).Seconds())
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: weft-compare-go spawn|burst|pingpong|chanpp|skynet|create|grow|parked [key=value ...]")
		os.Exit(2)
	}
	args := map[string]string{}
	for _, a := range os.Args[2:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "weft-compare-go: expected key=value, got %q\n", a)
			os.Exit(2)
		}
		args[k] = v
	}
	if p := param(args, "procs", 0); p > 0 {
		runtime.GOMAXPROCS(int(p))
	}
	fmt.Printf("note go %s\n", runtime.Version())
	switch os.Args[1] {
	case "spawn":
		spawn(args)
	case "burst":
		burst(args)
	case "pingpong":
		pingpong(args)
	case "chanpp":
		chanpp(args)
	case "skynet":
		skynet(args)
	case "create":
		create(args)
	case "grow":
		grow(args)
	case "parked":
		parked(args)
	default:
		fmt.Fprintf(os.Stderr, "weft-compare-go: unknown workload %q\n", os.Args[1])
		os.Exit(2)
	}
}
