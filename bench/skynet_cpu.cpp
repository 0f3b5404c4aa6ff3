// SPDX-License-Identifier: Apache-2.0
// weft_skynet_cpu: skynet trees (1,111,111 goroutines each, as bench/sync_bench.cpp's
// BM_WeftSkynet) one after another in one runtime, with the CPU each takes: getrusage(RUSAGE_SELF)
// user and system time around every tree, beside its wall time.  The first tree is the cold one
// (fresh stack slots); the rest are warm, which is what BENCHMARKS.md's "CPU time per warm tree"
// quotes.  The Go side: `go run bench/go/skynet.go cpu PROCS [TREES]`.
//
//   WEFT_PROCS=1 weft_skynet_cpu [TREES]          default: 4 trees
//   WEFT_PROCS=1 WEFT_SCAN_MS=0 weft_skynet_cpu 4  (no periodic scan: BENCHMARKS.md's kernel share)
//
// The runtime starts with weft::run(main_fn) and no options, so every WEFT_* variable applies
// (README, "Runtime options") — the number of Ps too: set it with WEFT_PROCS (default: the CPUs
// this process may use).  The line per tree names the procs the runtime runs with.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <sys/resource.h>

#include "skynet.hpp"
#include "weft/weft.hpp"

namespace {

struct cpu_seconds {
  double user, sys;
};

cpu_seconds cpu_now() {
  rusage r{};
  if (getrusage(RUSAGE_SELF, &r) != 0) {
    std::perror("weft_skynet_cpu: getrusage");
    std::exit(1);
  }
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return {s(r.ru_utime), s(r.ru_stime)};
}

}  // namespace

int main(int argc, char** argv) {
  long trees = 4;
  char* end = nullptr;
  if (argc > 2 || (argc == 2 && ((trees = std::strtol(argv[1], &end, 10)) <= 0 || *end != '\0'))) {
    std::fprintf(stderr, "usage: [WEFT_PROCS=N] [WEFT_...=...] weft_skynet_cpu [TREES]\n");
    return 2;
  }
  return weft::run([trees] {
    int bad = 0;
    for (long i = 1; i <= trees; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      const cpu_seconds c0 = cpu_now();
      const long sum = skynet_tree();
      const cpu_seconds c1 = cpu_now();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      const weft::stats st = weft::get_stats();
      const double user = c1.user - c0.user, sys = c1.sys - c0.sys;
      std::printf("procs %llu tree %ld (%s): %.1f ms wall, CPU %.2f s (user %.2f s, sys %.2f s)%s\n",
                  static_cast<unsigned long long>(st.procs), i, i == 1 ? "cold" : "warm", ms, user + sys, user,
                  sys, sum == kSkynetSum ? "" : ", WRONG SUM");
      std::fflush(stdout);
      bad += sum != kSkynetSum;
    }
    return bad ? 1 : 0;
  });
}
