// SPDX-License-Identifier: Apache-2.0
// weft_dump_million: what a goroutine dump costs with N goroutines parked (default 1,000,000):
// the time weft::dump_goroutines takes, and its size, in a fresh process — what a person who
// sends SIGQUIT to a big server gets (issue 15; BENCHMARKS.md, "Goroutine dumps").  The
// goroutines park in three kinds (channel receive at two depths, a mutex), so the grouped
// dump has a few kinds to tell apart.
//
//   weft_dump_million [N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "weft/weft.hpp"

namespace {

__attribute__((noinline)) void waits(weft::chan<int> c) {
  (void)c.recv();
  asm volatile("" ::: "memory");
}

__attribute__((noinline)) void deeper(weft::chan<int> c) {
  waits(c);
  asm volatile("" ::: "memory");
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  if (n <= 0) {
    std::fprintf(stderr, "usage: weft_dump_million [count > 0]\n");
    return 2;
  }
  return weft::run([n] {
    weft::chan<int> c;
    weft::mutex mu;
    mu.lock();
    weft::wait_group started;
    started.add(n);
    for (long i = 0; i < n; ++i) {
      if (i % 3 == 0) weft::go([c, &started] { started.done(); waits(c); });
      else if (i % 3 == 1) weft::go([c, &started] { started.done(); deeper(c); });
      else weft::go([&mu, &started] { started.done(); mu.lock(); mu.unlock(); });
    }
    started.wait();
    while (weft::get_stats().goroutines_waiting < static_cast<std::uint64_t>(n)) weft::yield();
    const auto t0 = std::chrono::steady_clock::now();
    const std::string d = weft::dump_goroutines();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const auto t1 = std::chrono::steady_clock::now();
    const weft::stats st = weft::get_stats();
    const double stats_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
    std::printf("%ld goroutines parked: dump %.1f ms, %zu bytes; get_stats %.1f ms (%llu waiting)\n", n, ms, d.size(),
                stats_ms, (unsigned long long)st.goroutines_waiting);
    std::fwrite(d.data(), 1, std::min<std::size_t>(d.size(), 1500), stdout);
    std::printf("\n");
    mu.unlock();
    c.close();
    return 0;
  });
}
