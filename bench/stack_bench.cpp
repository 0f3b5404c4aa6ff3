// SPDX-License-Identifier: Apache-2.0
// Stack allocation: weft's pool (per-P cache, global pool, a freshly carved slot) beside the
// ways a thread gets a stack without it: pthread_create+join with the default attr (glibc's
// allocate_stack with its cache, plus the clone), and a plain mmap + mprotect guard + munmap
// of a 64 KiB stack.  Every variant writes the top byte of the stack it got, as a starting
// goroutine or thread would, so first-touch page faults count where they happen.
//
//   build-stack/bench/weft_bench_stack --benchmark_min_time=0.2
//
// Built like the library (RelWithDebInfo: -O2 -g), no sanitizers.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/stack/stack_pool.hpp"

namespace {

using weft::guard_mode;
using weft::detail::stack;
using weft::detail::stack_cache;
using weft::detail::stack_config;
using weft::detail::stack_pool;

constexpr std::size_t kStack = 8 * 1024;

stack_config config(guard_mode g) {
  stack_config c;
  c.stack_min = kStack;
  c.reserve = 256 * 1024;
  c.guard = g;
  return c;
}

void use(const stack& s) {
  *reinterpret_cast<volatile char*>(s.hi - 1) = 1;
  benchmark::DoNotOptimize(s.lo);
}

// One pool per guard mode, shared by the threads of a multi-threaded run.
stack_pool& shared_pool(guard_mode g) {
  static std::mutex mu;
  static std::unique_ptr<stack_pool> pools[4];
  std::lock_guard lk(mu);
  auto& p = pools[static_cast<int>(g)];
  if (!p) p = std::make_unique<stack_pool>(config(g));
  return *p;
}

guard_mode mode_arg(const benchmark::State& state) { return static_cast<guard_mode>(state.range(0)); }

void set_mode_label(benchmark::State& state) {
  static const char* names[] = {"automatic", "madvise", "mprotect", "none"};
  state.SetLabel(names[state.range(0)]);
}

// alloc+free through a P's cache: the common case for spawn/exit of a goroutine.
void BM_PoolCache(benchmark::State& state) {
  stack_pool& pool = shared_pool(mode_arg(state));
  stack_cache cache;
  for (auto _ : state) {
    stack s = pool.alloc(kStack, &cache);
    use(s);
    pool.free(s, &cache);
  }
  pool.drain(cache);
  set_mode_label(state);
}
BENCHMARK(BM_PoolCache)->Arg(static_cast<int>(guard_mode::madvise))->Arg(static_cast<int>(guard_mode::mprotect));
BENCHMARK(BM_PoolCache)->Arg(static_cast<int>(guard_mode::madvise))->Threads(2);

// alloc+free through the global pool (no cache: a thread that is not an M, or a large class).
void BM_PoolGlobal(benchmark::State& state) {
  stack_pool& pool = shared_pool(mode_arg(state));
  for (auto _ : state) {
    stack s = pool.alloc(kStack);
    use(s);
    pool.free(s);
  }
  set_mode_label(state);
}
BENCHMARK(BM_PoolGlobal)->Arg(static_cast<int>(guard_mode::madvise))->Arg(static_cast<int>(guard_mode::mprotect));
BENCHMARK(BM_PoolGlobal)->Arg(static_cast<int>(guard_mode::madvise))->Threads(2);

// A freshly carved slot each time: guard set-up, and the first touch faults a page in.
// Slots are freed (to the pool) in batches, outside the timing, and the pool is replaced so
// the next batch carves again; mprotect batches stay well inside vm.max_map_count.
void BM_PoolFresh(benchmark::State& state) {
  const guard_mode g = mode_arg(state);
  const std::size_t batch = g == guard_mode::mprotect ? 8192 : 65536;
  auto pool = std::make_unique<stack_pool>(config(g));
  std::vector<stack> held;
  held.reserve(batch);
  for (auto _ : state) {
    stack s = pool->alloc(kStack);
    use(s);
    held.push_back(s);
    if (held.size() == batch) {
      state.PauseTiming();
      for (const stack& h : held) pool->free(h);
      held.clear();
      pool = std::make_unique<stack_pool>(config(g));
      state.ResumeTiming();
    }
  }
  for (const stack& h : held) pool->free(h);
  set_mode_label(state);
}
BENCHMARK(BM_PoolFresh)
    ->Arg(static_cast<int>(guard_mode::madvise))
    ->Arg(static_cast<int>(guard_mode::mprotect))
    ->Arg(static_cast<int>(guard_mode::none));

// A released (cold) pooled stack: what a spawn costs after the scan gave the memory back.
void BM_PoolAfterRelease(benchmark::State& state) {
  stack_config c = config(mode_arg(state));
  c.pool_keep_bytes = 0;
  stack_pool pool(c);
  for (auto _ : state) {
    stack s = pool.alloc(kStack);
    use(s);
    pool.free(s);
    state.PauseTiming();
    pool.release_idle();
    state.ResumeTiming();
  }
  set_mode_label(state);
}
BENCHMARK(BM_PoolAfterRelease)->Arg(static_cast<int>(guard_mode::madvise))->Arg(static_cast<int>(guard_mode::mprotect));

// Memory per held stack: 100,000 stacks each with its top page touched (a parked goroutine's
// minimum), as resident bytes and page-table bytes (VmRSS and VmPTE of /proc/self/status).
std::size_t status_kib(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  std::size_t value = 0;
  const std::size_t len = std::strlen(field);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, field, len) == 0) value = std::strtoull(line + len + 1, nullptr, 10);
  std::fclose(f);
  return value;
}

void BM_HeldStacksMemory(benchmark::State& state) {
  const guard_mode g = mode_arg(state);
  const std::size_t n = 100'000;
  for (auto _ : state) {
    stack_config c = config(g);
    c.reserve = static_cast<std::size_t>(state.range(1)) * 1024;
    auto pool = std::make_unique<stack_pool>(c);
    std::vector<stack> held;
    held.reserve(n);
    const std::size_t rss0 = status_kib("VmRSS:"), pte0 = status_kib("VmPTE:");
    for (std::size_t i = 0; i < n; ++i) {
      held.push_back(pool->alloc(kStack));
      use(held.back());
    }
    const std::size_t rss1 = status_kib("VmRSS:"), pte1 = status_kib("VmPTE:");
    state.counters["rss_per_stack"] = static_cast<double>(rss1 - rss0) * 1024 / n;
    state.counters["pte_per_stack"] = static_cast<double>(pte1 - pte0) * 1024 / n;
    state.counters["vmas"] = static_cast<double>(pool->stats().mappings);
    for (const stack& h : held) pool->free(h);
  }
  set_mode_label(state);
}
BENCHMARK(BM_HeldStacksMemory)
    ->Args({static_cast<int>(guard_mode::madvise), 256})
    ->Args({static_cast<int>(guard_mode::madvise), 0})
    ->Args({static_cast<int>(guard_mode::none), 256})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// glibc: a thread with the default attributes (8 MiB stack from RLIMIT_STACK, cached by
// allocate_stack after the first join).
void* nothing(void*) { return nullptr; }
void BM_PthreadCreateJoin(benchmark::State& state) {
  for (auto _ : state) {
    pthread_t t;
    if (pthread_create(&t, nullptr, nothing, nullptr) != 0) {
      state.SkipWithError("pthread_create failed");
      break;
    }
    pthread_join(t, nullptr);
  }
}
BENCHMARK(BM_PthreadCreateJoin)->UseRealTime();

// The do-it-yourself stack: map 64 KiB + a guard page, open the stack with mprotect, unmap.
void BM_MmapMprotectMunmap64K(benchmark::State& state) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t size = 64 * 1024;
  for (auto _ : state) {
    void* p = ::mmap(nullptr, size + page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED || ::mprotect(static_cast<char*>(p) + page, size, PROT_READ | PROT_WRITE) != 0) {
      state.SkipWithError("mmap/mprotect failed");
      break;
    }
    *(static_cast<volatile char*>(p) + page + size - 1) = 1;
    ::munmap(p, size + page);
  }
}
BENCHMARK(BM_MmapMprotectMunmap64K);

}  // namespace

BENCHMARK_MAIN();
