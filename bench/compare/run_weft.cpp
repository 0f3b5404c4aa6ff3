// SPDX-License-Identifier: Apache-2.0
// run_weft.cpp — the workloads on weft goroutines (the child side of the four weft columns).
//
// Each child starts one runtime with its column's options (systems.cpp) and runs one
// workload as that runtime's main goroutine, in the shapes of bench/sched_bench.cpp
// (BM_WeftSpawnJoinBatch, BM_WeftSpawnJoin, BM_WeftYieldPingPong) and bench/sync_bench.cpp
// (BM_WeftChanPingPong, BM_WeftSkynet), so the two agree.  No warm-up before the first
// repetition: it is the single-run figure (issue 21), the warm ones follow.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/compare/child.hpp"
#include "bench/compare/limits.hpp"
#include "bench/compare/measure.hpp"
#include "bench/compare/probe.hpp"
#include "bench/compare/recurse.hpp"
#include "bench/compare/run.hpp"
#include "bench/compare/systems.hpp"
#include "weft/weft.hpp"

namespace weft_compare {

namespace {

void spawn_workload(const params& p) {
  const std::uint64_t n1 = param_u64(p, "n1", 20000), nb = param_u64(p, "nb", 50000);
  const std::uint64_t batch = param_u64(p, "batch", 1000), reps = param_u64(p, "reps", 3);
  std::vector<weft::task<void>> ts;
  ts.reserve(batch);
  auto batched = [&](std::uint64_t n) {
    for (std::uint64_t done = 0; done < n; done += batch) {
      for (std::uint64_t k = 0; k < batch; ++k) ts.push_back(weft::spawn([] {}));
      for (auto& t : ts) t.join();
      ts.clear();
    }
  };
  // One at a time first, then the batches, as the thread columns do (run_threads.cpp).
  emit_cold_warm("spawn_one_ns", cold_then_reps_ns(reps, n1, [n1] {
                   for (std::uint64_t i = 0; i < n1; ++i) weft::spawn([] {}).join();
                 }));
  emit_cold_warm("spawn_batch_ns", cold_then_reps_ns(reps, nb, [&] { batched(nb); }));
}

// At procs 1 every goroutine of the burst exists before the first runs (issue 21).
void burst_workload(const params& p) {
  const std::uint64_t n = param_u64(p, "n", 200000), reps = param_u64(p, "reps", 1);
  emit_cold_warm("burst_ns", cold_then_reps_ns(reps, n, [n] {
                   weft::wait_group wg;
                   wg.add(static_cast<std::int64_t>(n));
                   for (std::uint64_t i = 0; i < n; ++i) weft::go([&wg] { wg.done(); });
                   wg.wait();
                 }));
}

void pingpong_workload(const params& p) {
  const std::uint64_t n = param_u64(p, "n", 500000), reps = param_u64(p, "reps", 3);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> partner_turns{0};
  auto partner = weft::spawn([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      partner_turns.fetch_add(1, std::memory_order_relaxed);
      weft::yield();
    }
  });
  weft::yield();  // let the partner start
  emit_cold_warm("pingpong_ns", cold_then_reps_ns(reps, n, [n] {
                   for (std::uint64_t i = 0; i < n; ++i) weft::yield();
                 }));
  stop.store(true);
  partner.join();
  if (partner_turns.load() < n * (reps + 1) / 2)
    emit_note("the partner ran " + with_commas(partner_turns.load()) + " times for " + with_commas(n * (reps + 1)) +
              " yields: the switches did not alternate");
}

void chanpp_workload(const params& p) {
  const std::uint64_t n = param_u64(p, "n", 200000), reps = param_u64(p, "reps", 3);
  weft::chan<int> ping, pong;
  auto echo = weft::spawn([&] {
    while (auto v = ping.recv()) pong.send(*v);
  });
  emit_cold_warm("chanpp_ns", cold_then_reps_ns(reps, n, [&] {
                   for (std::uint64_t i = 0; i < n; ++i) {
                     ping.send(1);
                     (void)pong.recv();
                   }
                 }));
  ping.close();
  echo.join();
}

// skynet, as bench/skynet.hpp (BM_WeftSkynet) and bench/go/skynet.go.
void skynet(weft::chan<long> c, long num, long size, long div) {
  if (size == 1) {
    c.send(num);
    return;
  }
  weft::chan<long> rc;
  for (long i = 0; i < div; ++i) weft::go(skynet, rc, num + i * (size / div), size / div, div);
  long sum = 0;
  for (long i = 0; i < div; ++i) sum += *rc.recv();
  c.send(sum);
}

void skynet_workload(const params& p) {
  const long leaves = static_cast<long>(param_u64(p, "leaves", 1000000));
  const std::uint64_t reps = param_u64(p, "reps", 1);
  const long want = leaves * (leaves - 1) / 2;
  long got = 0;
  const cold_and_warm t = cold_then_reps(reps, [&] {
    weft::chan<long> c;
    weft::go(skynet, c, 0L, leaves, 10L);
    got = *c.recv();
  });
  if (got != want) throw std::runtime_error("skynet summed " + std::to_string(got) + ", not " + std::to_string(want));
  emit("skynet_us", t.cold_us);
  if (!t.warm_us.empty()) emit("skynet_us_warm", median(t.warm_us));
}

void grow_workload(system_id sys, const params& p) {
  const auto depth = static_cast<unsigned>(param_u64(p, "depth", 4000));
  const std::uint64_t reps = param_u64(p, "reps", 15);
  const bool split = sys == system_id::weft_segmented;
  const char* why = nullptr;
  if (split && !have_recurse_split(&why)) throw std::runtime_error(std::string("not available: ") + why);
  unsigned (*fn)(unsigned) noexcept = split ? recurse_split : recurse_checked;
  const weft::stats s0 = weft::get_stats();
  volatile unsigned sink = 0;
  // The cold run: fresh arenas, no pooled stack.
  const cold_and_warm g = cold_then_reps(reps, [&] { sink = sink ^ weft::spawn([fn, depth] { return fn(depth); }).join(); });
  const weft::stats s1 = weft::get_stats();
  emit("grow_us", g.cold_us);
  emit("grow_us_warm", median(g.warm_us));
  emit("grow_mean_us", mean(g.warm_us));
  emit("grow_cold_us", g.cold_us);
  emit("frame_bytes", static_cast<double>(split ? frame_bytes_split() : frame_bytes_checked()));
  const double runs = static_cast<double>(reps + 1);
  emit("grow_copies", static_cast<double>(s1.stack_copies - s0.stack_copies) / runs);
  emit("grow_grows", static_cast<double>(s1.stack_grows - s0.stack_grows) / runs);
  emit("grow_copied_bytes", static_cast<double>(s1.stack_bytes_copied - s0.stack_bytes_copied) / runs);
}

// Parked goroutines wait on a channel nobody sends on, as Go's do (bench/go/compare.go).
std::atomic<std::uint64_t> parked_count{0};
weft::chan<int>* park_chan;

// How long N goroutines that each park on a channel take to create, until all have started.
void create_workload(const params& p) {
  const std::uint64_t n = param_u64(p, "n", 100000);
  park_chan = new weft::chan<int>();
  static weft::wait_group started;
  started.add(static_cast<std::int64_t>(n));
  const steady::time_point t = steady::now();
  for (std::uint64_t i = 0; i < n; ++i)
    weft::go([] {  // captures nothing: a closure pointing into the spawner's stack would pin it
      started.done();
      (void)park_chan->recv();
    });
  started.wait();
  emit("create_ns", ns_per(t, n));
}

void parked_workload(const params& p) {
  park_chan = new weft::chan<int>();
  parker k;
  k.start_one = [] {
    try {
      // Captures nothing: a closure pointing into the spawner's stack would pin it.
      weft::go([] {
        parked_count.fetch_add(1, std::memory_order_relaxed);
        (void)park_chan->recv();
      });
      return std::string();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  };
  k.parked = [] { return parked_count.load(std::memory_order_relaxed); };
  k.sleep = [](std::chrono::milliseconds d) { weft::sleep_for(d); };
  k.diagnose = [](std::uint64_t, const std::string& error) { return "weft::go threw: " + error; };
  k.check_every = 10000;
  parked_and_capacity(p, k);
}

}  // namespace

int run_weft_child(system_id sys, workload w, const params& p) {
  weft::options o = weft_options(sys);
  if (const std::uint64_t procs = param_u64(p, "procs", 0)) o.procs = static_cast<unsigned>(procs);
  if (w == workload::pingpong) o.procs = 1;  // both goroutines on one P, as BM_WeftYieldPingPong
  return weft::run(
      [&]() -> int {
        switch (w) {
          case workload::spawn: spawn_workload(p); break;
          case workload::burst: burst_workload(p); break;
          case workload::pingpong: pingpong_workload(p); break;
          case workload::chanpp: chanpp_workload(p); break;
          case workload::skynet: skynet_workload(p); break;
          case workload::create:
            create_workload(p);
            std::fflush(stdout);
            std::_Exit(0);  // the parked goroutines end with the process
          case workload::grow: grow_workload(sys, p); break;
          case workload::parked:
          case workload::capacity:
            parked_workload(p);
            // Do not wait for (or tear down) a hundred thousand parked goroutines.
            std::fflush(stdout);
            std::_Exit(0);
        }
        return 0;
      },
      o);
}

}  // namespace weft_compare
