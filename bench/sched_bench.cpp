// SPDX-License-Identifier: Apache-2.0
// Scheduler benchmarks, each beside its baseline in the same binary:
//   spawn+join        weft goroutine        vs pthread_create+pthread_join
//   wake round trip   plain thread -> idle M -> back, vs a semaphore round trip between threads
//   switch ping-pong  weft::yield, 2 goroutines on 1 P
//                     vs sched_yield, 2 threads pinned to one CPU
//                     vs a bare Boost.Context jump_fcontext ping-pong (the floor)
// An iteration of every ping-pong is one round trip: two switches.
// The Go equivalents are in bench/go/sched.go (same shapes, GOMAXPROCS as noted).
// BENCHMARKS.md's figures: a Release build (cmake -S . -B build-rel -G Ninja
// -DCMAKE_BUILD_TYPE=Release), run with --benchmark_min_time=0.5.
#include <atomic>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/context/detail/fcontext.hpp>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>

#include "weft/weft.hpp"

namespace {

weft::options procs(unsigned n) {
  weft::options o;
  o.procs = n;
  return o;
}

// ---- spawn + join -------------------------------------------------------------------------

void BM_WeftSpawnJoin(benchmark::State& state) {
  weft::run([&] {
    for (auto _ : state) weft::spawn([] {}).join();
  }, procs(static_cast<unsigned>(state.range(0))));
}
BENCHMARK(BM_WeftSpawnJoin)->Arg(1)->Arg(2)->UseRealTime();

// Spawn a batch, then join it: what a fan-out costs per goroutine.
void BM_WeftSpawnJoinBatch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(1));
  weft::run([&] {
    std::vector<weft::task<void>> ts;
    ts.reserve(static_cast<std::size_t>(n));
    for (auto _ : state) {
      for (int i = 0; i < n; ++i) ts.push_back(weft::spawn([] {}));
      for (auto& t : ts) t.join();
      ts.clear();
    }
  }, procs(static_cast<unsigned>(state.range(0))));
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_WeftSpawnJoinBatch)->Args({1, 1000})->Args({2, 1000})->UseRealTime();

// Cross-thread wake latency, both ways: a plain thread spawns a goroutine (global queue, an
// idle M woken through its futex), the goroutine finishes and wakes the joining thread (its
// futex).  Everything else is idle, so this is two sleeping-thread wake-ups per iteration.
void BM_WeftWakeRoundTripFromPlainThread(benchmark::State& state) {
  weft::runtime rt(procs(static_cast<unsigned>(state.range(0))));
  for (auto _ : state) weft::spawn([] {}).join();
}
BENCHMARK(BM_WeftWakeRoundTripFromPlainThread)->Arg(1)->Arg(2)->UseRealTime();

// The same round trip between two plain threads: a pthread semaphore each way.
void BM_SemaphoreRoundTrip(benchmark::State& state) {
  sem_t ping, pong;
  sem_init(&ping, 0, 0);
  sem_init(&pong, 0, 0);
  std::atomic<bool> stop{false};
  std::thread partner([&] {
    for (;;) {
      sem_wait(&ping);
      if (stop.load()) return;
      sem_post(&pong);
    }
  });
  for (auto _ : state) {
    sem_post(&ping);
    sem_wait(&pong);
  }
  stop.store(true);
  sem_post(&ping);
  partner.join();
  sem_destroy(&ping);
  sem_destroy(&pong);
}
BENCHMARK(BM_SemaphoreRoundTrip)->UseRealTime();

void BM_PthreadCreateJoin(benchmark::State& state) {
  for (auto _ : state) {
    pthread_t t;
    if (pthread_create(&t, nullptr, [](void*) -> void* { return nullptr; }, nullptr) != 0) state.SkipWithError("pthread_create failed");
    pthread_join(t, nullptr);
  }
}
BENCHMARK(BM_PthreadCreateJoin)->UseRealTime();

// ---- switch ping-pong ---------------------------------------------------------------------

void BM_WeftYieldPingPong(benchmark::State& state) {
  weft::run([&] {
    std::atomic<bool> stop{false};
    auto partner = weft::spawn([&] {
      while (!stop.load(std::memory_order_relaxed)) weft::yield();
    });
    weft::yield();  // let the partner start
    for (auto _ : state) weft::yield();
    stop.store(true);
    partner.join();
  }, procs(1));
}
BENCHMARK(BM_WeftYieldPingPong)->UseRealTime();

void BM_SchedYieldPingPong(benchmark::State& state) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  cpu_set_t old;
  sched_getaffinity(0, sizeof old, &old);
  sched_setaffinity(0, sizeof one, &one);
  std::atomic<bool> stop{false};
  std::thread partner([&] {
    sched_setaffinity(0, sizeof one, &one);
    while (!stop.load(std::memory_order_relaxed)) sched_yield();
  });
  for (auto _ : state) sched_yield();
  stop.store(true);
  partner.join();
  sched_setaffinity(0, sizeof old, &old);
}
BENCHMARK(BM_SchedYieldPingPong)->UseRealTime();

namespace ctx = boost::context::detail;

void BM_JumpFcontextPingPong(benchmark::State& state) {
  static char stack_mem[64 * 1024];
  ctx::fcontext_t other = ctx::make_fcontext(stack_mem + sizeof stack_mem, sizeof stack_mem, [](ctx::transfer_t t) {
    for (;;) t = ctx::jump_fcontext(t.fctx, nullptr);
  });
  ctx::transfer_t t = ctx::jump_fcontext(other, nullptr);
  for (auto _ : state) t = ctx::jump_fcontext(t.fctx, nullptr);
}
BENCHMARK(BM_JumpFcontextPingPong);

}  // namespace

BENCHMARK_MAIN();
