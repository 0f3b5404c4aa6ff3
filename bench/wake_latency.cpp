// SPDX-License-Identifier: Apache-2.0
// weft_wake_latency: how late a sleeper wakes, and how long yields take, beside goroutines that
// never block (issue 21; BENCHMARKS.md, "Fairness").  At procs P (first argument, default 1)
// P busy goroutines loop through explicit stack checks (so sysmon can preempt them, as it can a
// loop calling -fsplit-stack code); main then
//   - sleeps 50 ms ten times and 1 ms twenty times, recording how late each wake-up was;
//   - yields ten times in a row, recording how long the ten took;
// and prints the median and worst of each, with how many preemptions sysmon asked for.
// Go's version: bench/go/wake_latency.go (same shape).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "weft/weft.hpp"

namespace {

using clk = std::chrono::steady_clock;

double ms_since(clk::time_point t0) { return std::chrono::duration<double, std::milli>(clk::now() - t0).count(); }

void report(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::printf("%-26s median %8.2f ms   worst %8.2f ms   (%zu samples)\n", what, v[v.size() / 2], v.back(), v.size());
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned procs = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 1;
  if (procs < 1 || procs > 64) {
    std::fprintf(stderr, "usage: weft_wake_latency [PROCS 1..64]\n");
    return 2;
  }
  weft::options o;
  o.procs = procs;
  return weft::run(
      [procs] {
        std::atomic<bool> stop{false};
        std::atomic<unsigned> started{0};
        std::vector<weft::task<long>> busy;
        for (unsigned i = 0; i < procs; ++i)
          busy.push_back(weft::spawn([&] {
            started.fetch_add(1);
            long n = 0;
            while (!stop.load(std::memory_order_relaxed)) {
              WEFT_STACK_CHECK(64);
              ++n;
            }
            return n;
          }));
        while (started.load() < procs) weft::yield();
        const std::uint64_t p0 = weft::get_stats().preemptions;
        std::vector<double> late50, late1, yields;
        for (int i = 0; i < 10; ++i) {
          const auto t0 = clk::now();
          weft::sleep_for(std::chrono::milliseconds(50));
          late50.push_back(ms_since(t0) - 50);
        }
        for (int i = 0; i < 20; ++i) {
          const auto t0 = clk::now();
          weft::sleep_for(std::chrono::milliseconds(1));
          late1.push_back(ms_since(t0) - 1);
        }
        for (int i = 0; i < 5; ++i) {
          const auto t0 = clk::now();
          for (int k = 0; k < 10; ++k) weft::yield();
          yields.push_back(ms_since(t0));
        }
        const std::uint64_t preempted = weft::get_stats().preemptions - p0;
        stop.store(true);
        for (auto& t : busy) t.join();
        std::printf("weft, procs %u, %u busy goroutines (%llu preemptions)\n", procs, procs, (unsigned long long)preempted);
        report("sleep 50 ms: late by", late50);
        report("sleep 1 ms: late by", late1);
        report("ten yields: took", yields);
        return 0;
      },
      o);
}
