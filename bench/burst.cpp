// SPDX-License-Identifier: Apache-2.0
// weft_burst: what a burst of fresh goroutines costs in a fresh process — the first million,
// as a program that runs once sees it (issue 21; BENCHMARKS.md, "Bursts").
//   weft_burst parked N   N goroutines made one after another, each parking on one channel;
//                         the time until all N are parked, per goroutine (then released)
//   weft_burst spawn N    N goroutines made with go() before any runs (run it at
//                         WEFT_PROCS=1), each calling done() on a wait_group; the time until
//                         wait() returns, per goroutine
// Options come from the environment (WEFT_PROCS, WEFT_STACK...).  Go's version:
// bench/go/burst.go (same shapes), run with the same GOMAXPROCS.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "weft/weft.hpp"

int main(int argc, char** argv) {
  const bool parked = argc > 1 && std::strcmp(argv[1], "parked") == 0;
  const bool spawn = argc > 1 && std::strcmp(argv[1], "spawn") == 0;
  const long n = argc > 2 ? std::atol(argv[2]) : 1'000'000;
  if ((!parked && !spawn) || n <= 0 || n > (1L << 30)) {
    std::fprintf(stderr, "usage: weft_burst parked|spawn [N: 1..2^30, default 1000000]\n");
    return 2;
  }
  using clk = std::chrono::steady_clock;
  return weft::run([&] {
    const auto t0 = clk::now();
    double made_ns = 0;
    if (parked) {
      weft::chan<int> gate;
      weft::wait_group started, done;
      started.add(static_cast<int>(n));
      done.add(static_cast<int>(n));
      for (long i = 0; i < n; ++i)
        weft::go([&] {
          started.done();
          (void)gate.recv();
          done.done();
        });
      started.wait();
      made_ns = std::chrono::duration<double, std::nano>(clk::now() - t0).count();
      gate.close();
      done.wait();
    } else {
      weft::wait_group wg;
      wg.add(static_cast<int>(n));
      for (long i = 0; i < n; ++i) weft::go([&wg] { wg.done(); });
      wg.wait();
      made_ns = std::chrono::duration<double, std::nano>(clk::now() - t0).count();
    }
    const double total_ns = std::chrono::duration<double, std::nano>(clk::now() - t0).count();
    std::printf("weft %s %ld procs=%llu: %.0f ns per goroutine (%.3f s); with the release %.3f s\n", argv[1], n,
                (unsigned long long)weft::get_stats().procs, made_ns / double(n), made_ns / 1e9, total_ns / 1e9);
    return 0;
  });
}
