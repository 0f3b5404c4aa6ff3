// SPDX-License-Identifier: Apache-2.0
// weft_pingpong_loop: unbuffered-channel ping-pong without Google Benchmark — ROUND_TRIPS
// round trips between two goroutines over two chan<int>, timed as one block; prints ns per round
// trip and how many goroutines the Ps stole from each other meanwhile (weft::get_stats().steals).
// BENCHMARKS.md, "Channels and sync (issue 6)": the 2M-round-trip figures and steal counts
// around the runnext grace.  The Go side: bench/go/pingpong.go (GoChanPingPong/<GOMAXPROCS>).
//
//   weft_pingpong_loop [ROUND_TRIPS [PROCS]]     defaults: 2000000 round trips, 2 procs
//
// PROCS is passed to weft::run explicitly (the other WEFT_* variables are not read).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "weft/weft.hpp"

namespace {

long parse_positive(const char* text, const char* what) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v <= 0) {
    std::fprintf(stderr, "weft_pingpong_loop: %s must be a positive integer, not '%s'\n"
                         "usage: weft_pingpong_loop [ROUND_TRIPS [PROCS]]\n", what, text);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 3) {
    std::fprintf(stderr, "usage: weft_pingpong_loop [ROUND_TRIPS [PROCS]]\n");
    return 2;
  }
  const long n = argc > 1 ? parse_positive(argv[1], "ROUND_TRIPS") : 2'000'000;
  weft::options o;
  o.procs = argc > 2 ? static_cast<unsigned>(parse_positive(argv[2], "PROCS")) : 2;
  return weft::run([&] {
    weft::chan<int> a, b;
    auto echo = weft::spawn([&] {
      for (long i = 0; i < n; ++i) b.send(*a.recv() + 1);
    });
    const weft::stats s0 = weft::get_stats();
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) {
      a.send(1);
      (void)b.recv();
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
                      static_cast<double>(n);
    const weft::stats s1 = weft::get_stats();
    echo.join();
    std::printf("procs %u: %ld round trips, %.1f ns/round trip, steals %llu, threads %llu\n", o.procs, n, ns,
                static_cast<unsigned long long>(s1.steals - s0.steals), static_cast<unsigned long long>(s1.threads));
    return 0;
  }, o);
}
