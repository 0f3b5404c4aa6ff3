// yield_count.cpp — N yield round trips between two goroutines on one P, for instruction
// counts (the loop of weft_bench_sched's BM_WeftYieldPingPong, without Google Benchmark's own
// work in the count).  Run it under callgrind at two N and divide the difference:
//
//   valgrind --tool=callgrind weft_yield_count 100000
//   valgrind --tool=callgrind weft_yield_count 200000
//   (I refs at 200,000 - I refs at 100,000) / 100,000 = instructions per round trip
//
// Instruction counts are repeatable on a loaded machine where times are not (BENCHMARKS.md).
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "weft/weft.hpp"

int main(int argc, char** argv) {
  char* end = nullptr;
  long n = argc > 1 ? std::strtol(argv[1], &end, 10) : 100000;
  if (argc > 2 || (argc == 2 && (*end != '\0' || n <= 0))) {
    std::fprintf(stderr, "usage: weft_yield_count [ROUND_TRIPS]  (a positive integer; default 100000)\n");
    return 2;
  }
  weft::options o;
  o.procs = 1;
  weft::run([&] {
    std::atomic<bool> stop{false};
    auto partner = weft::spawn([&] {
      while (!stop.load(std::memory_order_relaxed)) weft::yield();
    });
    weft::yield();  // let the partner start
    for (long i = 0; i < n; ++i) weft::yield();
    stop.store(true);
    partner.join();
  }, o);
  std::printf("%ld yield round trips\n", n);
  return 0;
}
