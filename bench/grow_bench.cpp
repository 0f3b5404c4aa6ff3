// SPDX-License-Identifier: Apache-2.0
// Stack growth (DESIGN §3, issue 5): what growing costs, beside Go and a fresh pthread.
//
//   FreshRecursion/<config>   a fresh goroutine recursing 4000 frames of ~440 bytes, started
//                             and joined one at a time (Go: bench/go/grow.go, same shape);
//                             configs: explicit checks with the default reserve, pure copying
//                             (reserve 0), in place only (reserve 4 MiB), and split-stack
//                             prologues (copy, pure copy, segmented); FreshThread is the same
//                             recursion on a fresh std::thread (8 MiB stack, glibc's cache).
//   WarmRecursion             the recursion on a goroutine whose stack already fits: the
//                             floor the growth cost sits on.
//   CopyCost/<KiB>            one forced copy of a stack with KiB in use (reserve 0): switch
//                             to g0, new slot, memcpy, pointer adjustment, free, switch back;
//                             counters give ns per KiB.
//   CallHeavy/<variant>       fib(27) (~630K calls of tiny frames) on a goroutine: plain, with
//                             split-stack prologues, with an explicit WEFT_STACK_CHECK per call;
//                             and each calling a leaf without checks in every frame, plain and
//                             split (gold routes the latter through __morestack_non_split).
//
//   .ci/build && build/bench/weft_bench_grow --benchmark_min_time=0.5
//
// Built like the library (RelWithDebInfo: -O2 -g), no sanitizers; grow_bench_split.cpp alone
// with -fsplit-stack, and the executable linked with gold and --split-stack-adjust-size=16384
// (the link flags weft::split_stack gives users, set on this target directly: it does not
// link weft::split_stack, whose -fsplit-stack would reach every file).
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>

#include <benchmark/benchmark.h>

#include "recurse440.hpp"
#include "weft/weft.hpp"

// grow_bench_split.cpp (-fsplit-stack)
long recurse440_split(long d);
long fib_split(int n);
long fib_split_calling_plain(int n);
long plain_leaf(long x);  // here, without checks: what fib_split_calling_plain calls

namespace {

constexpr long kDepth = 4000;

__attribute__((noinline)) long fib_plain(int n) { return n < 2 ? n : fib_plain(n - 1) + fib_plain(n - 2); }

__attribute__((noinline)) long fib_plain_calling_leaf(int n) {
  return n < 2 ? plain_leaf(n) : fib_plain_calling_leaf(n - 1) + fib_plain_calling_leaf(n - 2);
}

__attribute__((noinline)) long fib_checked(int n) {
  WEFT_STACK_CHECK(256);
  return n < 2 ? n : fib_checked(n - 1) + fib_checked(n - 2);
}

enum class cfg { in_place_default, pure_copy, in_place_only, segmented };

weft::options options_for(cfg c) {
  weft::options o;
  o.procs = 2;
  o.scan_interval = std::chrono::milliseconds(0);
  switch (c) {
    case cfg::in_place_default: break;
    case cfg::pure_copy: o.stack_reserve = 0; break;
    case cfg::in_place_only: o.stack_reserve = std::size_t{4} << 20; break;
    case cfg::segmented: o.strategy = weft::stack_strategy::segmented; break;
  }
  return o;
}

void FreshRecursion(benchmark::State& state, long (*recurse)(long), cfg c) {
  weft::runtime rt(options_for(c));
  weft::stats before = weft::get_stats();
  long sink = 0;
  for (auto _ : state) {
    auto t = weft::spawn([recurse] { return recurse(kDepth); });
    sink ^= t.join();
  }
  benchmark::DoNotOptimize(sink);
  weft::stats after = weft::get_stats();
  auto n = static_cast<double>(state.iterations());
  state.counters["grows"] = static_cast<double>(after.stack_grows - before.stack_grows) / n;
  state.counters["copies"] = static_cast<double>(after.stack_copies - before.stack_copies) / n;
  state.counters["copied_KiB"] = static_cast<double>(after.stack_bytes_copied - before.stack_bytes_copied) / 1024 / n;
}

void FreshThread(benchmark::State& state) {
  long sink = 0;
  for (auto _ : state) {
    std::thread t([&] { sink ^= recurse440(kDepth); });
    t.join();
  }
  benchmark::DoNotOptimize(sink);
}

void WarmRecursion(benchmark::State& state) {
  weft::runtime rt(options_for(cfg::in_place_only));
  weft::chan<int> work, done;
  weft::go([work, done]() mutable {
    while (work.recv()) done.send(static_cast<int>(recurse440(kDepth)));
  });
  work.send(1);
  (void)done.recv();
  for (auto _ : state) {
    work.send(1);
    benchmark::DoNotOptimize(done.recv());
  }
  work.close();
}

// Recurses with big frames until `used` bytes are in use, then forces one copy.
__attribute__((noinline)) void fill_then_copy(long d, std::size_t used, double& ns) {
  WEFT_STACK_CHECK(4096);
  volatile unsigned char buf[3800];
  buf[0] = static_cast<unsigned char>(d);
  if (weft::this_stack().used < used) {
    fill_then_copy(d + 1, used, ns);
  } else {
    auto si = weft::this_stack();
    auto t0 = std::chrono::steady_clock::now();
    weft::detail::ensure_stack_slow(si.size);  // needs twice the size: one copy, of `used` bytes
    ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  }
  benchmark::DoNotOptimize(buf[0]);
}

void CopyCost(benchmark::State& state) {
  const std::size_t used = static_cast<std::size_t>(state.range(0)) * 1024;
  weft::runtime rt(options_for(cfg::pure_copy));
  double total_ns = 0, copied = 0;
  for (auto _ : state) {
    double ns = 0;
    weft::spawn([&] {
      weft::ensure_stack(used + 64 * 1024);  // grown (by copies) before the measured copy
      fill_then_copy(0, used, ns);
    }).join();
    state.SetIterationTime(ns / 1e9);
    total_ns += ns;
    copied += 1;
  }
  state.counters["ns_per_KiB"] = total_ns / copied / static_cast<double>(state.range(0));
}

void CallHeavy(benchmark::State& state, long (*fib)(int)) {
  weft::runtime rt(options_for(cfg::in_place_default));
  long r = 0;
  weft::spawn([&] {
    weft::ensure_stack(64 * 1024);
    for (auto _ : state) r += fib(27);
  }).join();
  benchmark::DoNotOptimize(r);
}

long recurse440_fn(long d) { return recurse440(d); }

}  // namespace

long plain_leaf(long x) {
  benchmark::DoNotOptimize(x);
  return x;
}

BENCHMARK_CAPTURE(FreshRecursion, checks_default, recurse440_fn, cfg::in_place_default)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(FreshRecursion, checks_pure_copy, recurse440_fn, cfg::pure_copy)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(FreshRecursion, checks_in_place_only, recurse440_fn, cfg::in_place_only)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(FreshRecursion, split_default, recurse440_split, cfg::in_place_default)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(FreshRecursion, split_pure_copy, recurse440_split, cfg::pure_copy)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(FreshRecursion, split_segmented, recurse440_split, cfg::segmented)->Unit(benchmark::kMicrosecond);
BENCHMARK(FreshThread)->Unit(benchmark::kMicrosecond);
BENCHMARK(WarmRecursion)->Unit(benchmark::kMicrosecond);
BENCHMARK(CopyCost)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(CallHeavy, plain, fib_plain)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(CallHeavy, split_prologues, fib_split)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(CallHeavy, explicit_checks, fib_checked)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(CallHeavy, plain_calling_unchecked, fib_plain_calling_leaf)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(CallHeavy, split_calling_unchecked, fib_split_calling_plain)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
