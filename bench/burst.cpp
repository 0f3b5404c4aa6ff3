// SPDX-License-Identifier: Apache-2.0
// weft_burst: what a burst of fresh goroutines costs in a fresh process — the first million,
// as a program that runs once sees it (issue 21; BENCHMARKS.md, "Bursts").
//   weft_burst parked N   N goroutines made one after another, each parking on one channel;
//                         the time until all N are parked, per goroutine (then released)
//   weft_burst spawn N    N goroutines made with go() before any runs (run it at
//                         WEFT_PROCS=1), each calling done() on a wait_group; the time until
//                         wait() returns, per goroutine
// Also printed: the process's user and system CPU time over the timed part (getrusage), and
// its minor page faults — how much of a burst is the kernel's page-table and fault work.
// Options come from the environment (WEFT_PROCS, WEFT_STACK...).  Go's version:
// bench/go/burst.go (same shapes), run with the same GOMAXPROCS.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <sys/resource.h>

#include "weft/weft.hpp"

namespace {

struct cpu_mark {
  double user_s = 0, sys_s = 0;
  long minflt = 0;
  static cpu_mark now() {
    rusage ru{};
    if (::getrusage(RUSAGE_SELF, &ru) != 0) {
      std::perror("weft_burst: getrusage");
      std::exit(1);
    }
    return {double(ru.ru_utime.tv_sec) + double(ru.ru_utime.tv_usec) / 1e6,
            double(ru.ru_stime.tv_sec) + double(ru.ru_stime.tv_usec) / 1e6, ru.ru_minflt};
  }
};

}  // namespace

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
    const cpu_mark c0 = cpu_mark::now();
    cpu_mark c1;
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
      c1 = cpu_mark::now();
      gate.close();
      done.wait();
    } else {
      weft::wait_group wg;
      wg.add(static_cast<int>(n));
      for (long i = 0; i < n; ++i) weft::go([&wg] { wg.done(); });
      wg.wait();
      made_ns = std::chrono::duration<double, std::nano>(clk::now() - t0).count();
      c1 = cpu_mark::now();
    }
    const double total_ns = std::chrono::duration<double, std::nano>(clk::now() - t0).count();
    std::printf("weft %s %ld procs=%llu: %.0f ns per goroutine (%.3f s); with the release %.3f s\n", argv[1], n,
                (unsigned long long)weft::get_stats().procs, made_ns / double(n), made_ns / 1e9, total_ns / 1e9);
    std::printf("  timed part: user %.3f s, system %.3f s, %.2f minor faults per goroutine\n", c1.user_s - c0.user_s,
                c1.sys_s - c0.sys_s, double(c1.minflt - c0.minflt) / double(n));
    return 0;
  });
}
