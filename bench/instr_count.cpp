// SPDX-License-Identifier: Apache-2.0
// instr_count.cpp — a scheduler operation repeated N times on one P, for instruction counts
// (without Google Benchmark's own work in the count).  Run it under callgrind at two N and
// divide the difference:
//
//   valgrind --tool=callgrind weft_instr_count 100000 [WHAT]
//   valgrind --tool=callgrind weft_instr_count 200000 [WHAT]
//   (I refs at 200,000 - I refs at 100,000) / 100,000 = instructions per operation
//
// WHAT is
//   yield        (default) a yield round trip between two goroutines: the loop of
//                weft_bench_sched's BM_WeftYieldPingPong;
//   spawn-join   weft::spawn of a goroutine that returns its argument, then join: the loop of
//                BM_WeftSpawnJoin;
//   spawn-batch  weft::spawn of 1,000 goroutines that each return their argument, then a join of
//                each: the batched loop of weft-compare's spawn row (N a multiple of 1,000);
//   chan         an unbuffered-channel round trip between two goroutines (a send each way):
//                the loop of weft_pingpong_loop and weft-compare's chanpp.
//
// Instruction counts are repeatable on a loaded machine where times are not (BENCHMARKS.md).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "weft/weft.hpp"

namespace {

void yields(long n) {
  std::atomic<bool> stop{false};
  auto partner = weft::spawn([&] {
    while (!stop.load(std::memory_order_relaxed)) weft::yield();
  });
  weft::yield();  // let the partner start
  for (long i = 0; i < n; ++i) weft::yield();
  stop.store(true);
  partner.join();
}

long spawn_joins(long n) {
  long sum = 0;
  for (long i = 0; i < n; ++i) sum += weft::spawn([i] { return i; }).join();
  return sum;
}

long spawn_batches(long n) {
  constexpr long kBatch = 1000;
  std::vector<weft::task<long>> ts;
  ts.reserve(kBatch);
  long sum = 0;
  for (long i = 0; i < n; i += kBatch) {
    for (long k = i; k < i + kBatch && k < n; ++k) ts.push_back(weft::spawn([k] { return k; }));
    for (auto& t : ts) sum += t.join();
    ts.clear();
  }
  return sum;
}

long chan_round_trips(long n) {
  weft::chan<long> ping, pong;
  auto echo = weft::spawn([&] {
    for (long i = 0; i < n; ++i) pong.send(*ping.recv());
  });
  long sum = 0;
  for (long i = 0; i < n; ++i) {
    ping.send(i);
    sum += *pong.recv();
  }
  echo.join();
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  char* end = nullptr;
  const long n = argc > 1 ? std::strtol(argv[1], &end, 10) : 100000;
  const char* what = argc > 2 ? argv[2] : "yield";
  const bool spawn_join = std::strcmp(what, "spawn-join") == 0;
  const bool chan = std::strcmp(what, "chan") == 0;
  const bool batch = std::strcmp(what, "spawn-batch") == 0;
  if (argc > 3 || (argc >= 2 && (*end != '\0' || n <= 0)) ||
      (!spawn_join && !chan && !batch && std::strcmp(what, "yield") != 0)) {
    std::fprintf(stderr,
                 "usage: weft_instr_count [N [WHAT]]  (N a positive integer, default 100000; WHAT yield "
                 "(default), spawn-join, spawn-batch or chan)\n");
    return 2;
  }
  weft::options o;
  o.procs = 1;
  long check = 0;
  weft::run([&] {
    if (spawn_join) check = spawn_joins(n);
    else if (batch) check = spawn_batches(n);
    else if (chan) check = chan_round_trips(n);
    else yields(n);
  }, o);
  if ((spawn_join || batch || chan) && check != n * (n - 1) / 2) {
    std::fprintf(stderr, "weft_instr_count: %s summed %ld, want %ld\n", what, check, n * (n - 1) / 2);
    return 1;
  }
  std::printf("%ld %s\n", n, spawn_join ? "spawn+joins" : batch ? "batched spawn+joins" : chan ? "channel round trips" : "yield round trips");
  return 0;
}
