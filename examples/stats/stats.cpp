// SPDX-License-Identifier: Apache-2.0
// weft-stats: what a server would export, printed every second while a workload runs —
// weft::get_stats() field by field (README, "Debugging").  The workload: producers and
// consumers on a channel, sleepers, and a burst of goroutines every second.
//
//   weft-stats [SECONDS]     (default 5)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <weft/weft.hpp>

namespace {

void print(const weft::stats& s, int second) {
  std::printf(
      "t=%ds goroutines live=%llu (running %llu, runnable %llu, waiting %llu, blocking %llu) created=%llu | "
      "runq global=%llu local=%llu | threads=%llu (idle %llu, spinning %llu, blocking %llu) procs=%llu | "
      "stacks in use=%llu KiB pooled slots=%llu reserved=%llu MiB grows=%llu shrinks=%llu | timers=%llu "
      "netpoll=%llu scans=%llu steals=%llu\n",
      second, (unsigned long long)s.goroutines_live, (unsigned long long)s.goroutines_running,
      (unsigned long long)s.goroutines_runnable, (unsigned long long)s.goroutines_waiting,
      (unsigned long long)s.goroutines_blocking, (unsigned long long)s.goroutines_created,
      (unsigned long long)s.runq_global, (unsigned long long)s.runq_local, (unsigned long long)s.threads,
      (unsigned long long)s.threads_idle, (unsigned long long)s.threads_spinning, (unsigned long long)s.threads_blocking,
      (unsigned long long)s.procs, (unsigned long long)(s.stack_bytes_in_use >> 10),
      (unsigned long long)s.stack_slots_pooled, (unsigned long long)(s.stack_bytes_reserved >> 20),
      (unsigned long long)s.stack_grows, (unsigned long long)s.stack_shrinks, (unsigned long long)s.timers,
      (unsigned long long)s.netpoll_waiters, (unsigned long long)s.scans, (unsigned long long)s.steals);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
  if (seconds <= 0) {
    std::fprintf(stderr, "usage: weft-stats [seconds > 0]\n");
    return 2;
  }
  return weft::run([seconds] {
    weft::chan<int> work(64);
    std::atomic<bool> stop{false};
    weft::wait_group wg;
    for (int i = 0; i < 4; ++i) {
      wg.add(2);
      weft::go([work, &stop, &wg]() mutable {
        for (int v = 0; !stop.load(std::memory_order_relaxed); ++v) work.send(v);
        wg.done();
      });
      weft::go([work, &wg]() mutable {
        while (work.recv()) {
        }
        wg.done();
      });
    }
    for (int second = 1; second <= seconds; ++second) {
      for (int i = 0; i < 1000; ++i) weft::go([] { weft::sleep_for(std::chrono::milliseconds(500)); });
      weft::sleep_for(std::chrono::seconds(1));
      print(weft::get_stats(), second);
    }
    stop = true;
    for (int i = 0; i < 4; ++i) (void)work.try_recv();
    work.close();
    wg.wait();
    return 0;
  });
}
