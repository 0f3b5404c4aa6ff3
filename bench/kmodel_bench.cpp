// SPDX-License-Identifier: Apache-2.0
// kmodel_bench: what a thread costs to create and join, with and without the C library.
//
//   pthread_create_join      glibc: allocate_stack (a cache hit after the first), clone3 with
//                            CLONE_SETTLS, start_thread's setup and teardown, futex join
//   kmodel_clone_join        weft::kmodel::start_task on a cached model stack: the same clone
//   kmodel_clone3_join       flags less CLONE_SETTLS, no TCB, no TLS, the same futex join
//
// Each at glibc's default stack size (8 MiB under the usual ulimit -s) and at 64 KiB.  A weft
// goroutine's spawn+join, for comparison: bench/sched_bench.cpp (BM_WeftSpawnJoin) and
// weft-compare's spawn row.
// Built with the project's flags (RelWithDebInfo: -O2 -g; the library adds
// -fstack-clash-protection).  Run: build/bench/weft_bench_kmodel
#include <atomic>
#include <cstddef>

#include <benchmark/benchmark.h>
#include <pthread.h>

#include "weft/kmodel.hpp"

namespace km = weft::kmodel;

namespace {

void* nothing(void*) { return nullptr; }

WEFT_KMODEL_TASK_FN void task_nothing(void* p) noexcept {
  static_cast<std::atomic<int>*>(p)->fetch_add(1, std::memory_order_relaxed);
}

void pthread_create_join(benchmark::State& state) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (state.range(0)) pthread_attr_setstacksize(&attr, static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    pthread_t t;
    if (pthread_create(&t, &attr, nothing, nullptr) != 0) {
      state.SkipWithError("pthread_create failed");
      break;
    }
    pthread_join(t, nullptr);
  }
  pthread_attr_destroy(&attr);
  state.SetItemsProcessed(state.iterations());
}

void kmodel_join(benchmark::State& state, km::clone_call how) {
  km::stack_cache cache;  // this process's glibc model, mapping real memory
  std::atomic<int> ran{0};
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    km::task t = km::start_task(cache, how, task_nothing, &ran, size);
    t.join();
  }
  if (ran.load() != static_cast<int>(state.iterations())) state.SkipWithError("a task did not run");
  const km::cache_stats s = cache.stats();
  state.counters["cache_misses"] = static_cast<double>(s.misses);
  state.SetItemsProcessed(state.iterations());
}

void kmodel_clone_join(benchmark::State& state) { kmodel_join(state, km::clone_call::clone); }
void kmodel_clone3_join(benchmark::State& state) { kmodel_join(state, km::clone_call::clone3); }

// 0: the default stack size.
BENCHMARK(pthread_create_join)->Arg(0)->Arg(64 * 1024)->UseRealTime();
BENCHMARK(kmodel_clone_join)->Arg(0)->Arg(64 * 1024)->UseRealTime();
BENCHMARK(kmodel_clone3_join)->Arg(0)->Arg(64 * 1024)->UseRealTime();

}  // namespace
