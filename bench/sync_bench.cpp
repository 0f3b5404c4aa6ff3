// SPDX-License-Identifier: Apache-2.0
// Channel and lock benchmarks, each beside its baseline in the same binary:
//   ping-pong      two goroutines over two unbuffered chan<int> (an iteration: one round trip)
//                  vs two pthreads on two POSIX semaphores
//   producer/consumer  one goroutine sends ints through a chan<int>(128) to another
//                  (an iteration: one value), vs two threads on a std::mutex +
//                  std::condition_variable bounded queue
//   mutex          lock+unlock of weft::mutex on a goroutine vs std::mutex on a thread:
//                  uncontended, and contended by 3 more goroutines / threads (4 on `procs`)
//   skynet         a tree of 1,111,111 goroutines (10 children per node, 1M leaves), each
//                  leaf sends its number up an unbuffered channel, each node sums ten
//                  (https://github.com/atemerev/skynet); an iteration: one whole tree,
//                  warm (after an untimed tree in the same runtime, as Go's figure is) and
//                  cold (the first tree of a fresh runtime; its startup and teardown untimed)
// The Go equivalents: bench/go/pingpong.go and bench/go/skynet.go (same shapes, GOMAXPROCS=2).
// Build: -DCMAKE_BUILD_TYPE=Release; run: weft_bench_sync --benchmark_min_time=1
// The benchmark argument is `procs` (weft) — compare with Go at the same GOMAXPROCS.  Every
// benchmark passes its options to weft::run, so WEFT_* variables are not read here: the
// standalone loops bench/pingpong_loop.cpp and bench/skynet_cpu.cpp (which does read them)
// are behind the other figures of BENCHMARKS.md's "Channels and sync".
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <semaphore.h>

#include "skynet.hpp"
#include "weft/weft.hpp"

namespace {

weft::options procs(const benchmark::State& state) {
  weft::options o;
  o.procs = static_cast<unsigned>(state.range(0));
  return o;
}

// ---- ping-pong --------------------------------------------------------------------------------

void BM_WeftChanPingPong(benchmark::State& state) {
  weft::run([&] {
    weft::chan<int> ping, pong;
    auto echo = weft::spawn([&] {
      while (auto v = ping.recv()) pong.send(*v);
    });
    for (auto _ : state) {
      ping.send(1);
      benchmark::DoNotOptimize(pong.recv());
    }
    ping.close();
    echo.join();
  }, procs(state));
}
BENCHMARK(BM_WeftChanPingPong)->Arg(1)->Arg(2)->UseRealTime();

void BM_PthreadSemPingPong(benchmark::State& state) {
  sem_t ping, pong;
  sem_init(&ping, 0, 0);
  sem_init(&pong, 0, 0);
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    for (;;) {
      sem_wait(&ping);
      if (stop.load(std::memory_order_relaxed)) return;
      sem_post(&pong);
    }
  });
  for (auto _ : state) {
    sem_post(&ping);
    sem_wait(&pong);
  }
  stop = true;
  sem_post(&ping);
  echo.join();
  sem_destroy(&ping);
  sem_destroy(&pong);
}
BENCHMARK(BM_PthreadSemPingPong)->UseRealTime();

// ---- buffered producer / consumer -------------------------------------------------------------

void BM_WeftChanProducerConsumer(benchmark::State& state) {
  weft::run([&] {
    weft::chan<int> c(128);
    auto consumer = weft::spawn([&] {
      long sum = 0;
      for (int v : c) sum += v;
      return sum;
    });
    int i = 0;
    for (auto _ : state) c.send(i++);
    c.close();
    benchmark::DoNotOptimize(consumer.join());
  }, procs(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WeftChanProducerConsumer)->Arg(1)->Arg(2)->UseRealTime();

// The plain-threads equivalent: a bounded queue under a mutex with two condition variables.
void BM_ThreadQueueProducerConsumer(benchmark::State& state) {
  std::mutex mu;
  std::condition_variable not_empty, not_full;
  std::deque<int> q;
  bool closed = false;
  std::thread consumer([&] {
    long sum = 0;
    for (;;) {
      std::unique_lock<std::mutex> l(mu);
      not_empty.wait(l, [&] { return !q.empty() || closed; });
      if (q.empty()) break;
      sum += q.front();
      q.pop_front();
      not_full.notify_one();
    }
    benchmark::DoNotOptimize(sum);
  });
  int i = 0;
  for (auto _ : state) {
    std::unique_lock<std::mutex> l(mu);
    not_full.wait(l, [&] { return q.size() < 128; });
    q.push_back(i++);
    not_empty.notify_one();
  }
  {
    std::lock_guard<std::mutex> l(mu);
    closed = true;
  }
  not_empty.notify_one();
  consumer.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ThreadQueueProducerConsumer)->UseRealTime();

// ---- mutex ------------------------------------------------------------------------------------

void BM_WeftMutexUncontended(benchmark::State& state) {
  weft::run([&] {
    weft::mutex mu;
    long x = 0;
    for (auto _ : state) {
      mu.lock();
      benchmark::DoNotOptimize(++x);
      mu.unlock();
    }
  }, procs(state));
}
BENCHMARK(BM_WeftMutexUncontended)->Arg(1)->UseRealTime();

void BM_StdMutexUncontended(benchmark::State& state) {
  std::mutex mu;
  long x = 0;
  for (auto _ : state) {
    mu.lock();
    benchmark::DoNotOptimize(++x);
    mu.unlock();
  }
}
BENCHMARK(BM_StdMutexUncontended)->UseRealTime();

constexpr int kContenders = 3;  // besides the measured one

// The measured party does lock / ++ / unlock; kContenders more do the same until it is done.
// "all_ops" counts every party's critical sections per second.
void BM_WeftMutexContended(benchmark::State& state) {
  std::atomic<long> others{0};
  long mine = 0;
  weft::run([&] {
    weft::mutex mu;
    long x = 0;
    std::atomic<bool> stop{false};
    weft::wait_group wg;
    wg.add(kContenders);
    for (int i = 0; i < kContenders; ++i)
      weft::go([&] {
        long n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          mu.lock();
          benchmark::DoNotOptimize(++x);
          mu.unlock();
          ++n;
        }
        others += n;
        wg.done();
      });
    for (auto _ : state) {
      mu.lock();
      benchmark::DoNotOptimize(++x);
      mu.unlock();
      ++mine;
    }
    stop = true;
    wg.wait();
  }, procs(state));
  state.counters["all_ops"] = benchmark::Counter(double(mine + others.load()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WeftMutexContended)->Arg(2)->UseRealTime();

void BM_StdMutexContended(benchmark::State& state) {
  std::mutex mu;
  long x = 0, mine = 0;
  std::atomic<long> others{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int i = 0; i < kContenders; ++i)
    ts.emplace_back([&] {
      long n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        mu.lock();
        benchmark::DoNotOptimize(++x);
        mu.unlock();
        ++n;
      }
      others += n;
    });
  for (auto _ : state) {
    mu.lock();
    benchmark::DoNotOptimize(++x);
    mu.unlock();
    ++mine;
  }
  stop = true;
  for (auto& t : ts) t.join();
  state.counters["all_ops"] = benchmark::Counter(double(mine + others.load()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_StdMutexContended)->UseRealTime();

// ---- skynet -----------------------------------------------------------------------------------

// Warm: one untimed tree first, then the timed ones, in the same runtime.  Go's figure
// (bench/go/skynet.go, testing.Benchmark) is likewise a run after earlier runs in the same
// process (its b.N = 1 probe and the runs that size b.N), with its heap already grown.
void BM_WeftSkynet(benchmark::State& state) {
  weft::run([&] {
    if (skynet_tree() != kSkynetSum) state.SkipWithError("wrong skynet sum");
    for (auto _ : state)
      if (skynet_tree() != kSkynetSum) state.SkipWithError("wrong skynet sum");
  }, procs(state));
  state.SetItemsProcessed(state.iterations() * 1'111'111);
}
BENCHMARK(BM_WeftSkynet)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// Cold: the first tree of a fresh runtime (every stack slot carved and guarded, every page
// faulted in for the first time); the runtime's start and teardown are not timed.
void BM_WeftSkynetCold(benchmark::State& state) {
  for (auto _ : state) {
    weft::run([&] {
      const auto t0 = std::chrono::steady_clock::now();
      if (skynet_tree() != kSkynetSum) state.SkipWithError("wrong skynet sum");
      state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }, procs(state));
  }
  state.SetItemsProcessed(state.iterations() * 1'111'111);
}
BENCHMARK(BM_WeftSkynetCold)->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
