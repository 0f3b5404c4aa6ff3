// SPDX-License-Identifier: Apache-2.0
// run_weft.cpp — the workloads on weft goroutines (the child side of the four weft columns).
//
// Each child starts one runtime with its column's options (systems.cpp) and runs one
// workload as that runtime's main goroutine, in the shapes of bench/sched_bench.cpp
// (BM_WeftSpawnJoinBatch, BM_WeftSpawnJoin, BM_WeftYieldPingPong), so the two agree.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
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
  batched(batch);  // warm-up: Ms, stack caches
  // One at a time first, then the batches, as the thread columns do (run_threads.cpp).
  const std::vector<double> o = time_reps(reps, n1, [n1] {
    for (std::uint64_t i = 0; i < n1; ++i) weft::spawn([] {}).join();
  });
  const std::vector<double> b = time_reps(reps, nb, [&] { batched(nb); });
  emit("spawn_batch_ns", median(b));
  emit("spawn_one_ns", median(o));
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
  const std::vector<double> xs = time_reps(reps, n, [n] {
    for (std::uint64_t i = 0; i < n; ++i) weft::yield();
  });
  stop.store(true);
  partner.join();
  emit("pingpong_ns", median(xs));
  if (partner_turns.load() < n * reps / 2)
    emit_note("the partner ran " + with_commas(partner_turns.load()) + " times for " + with_commas(n * reps) +
              " yields: the switches did not alternate");
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
  emit("grow_us", median(g.warm_us));
  emit("grow_mean_us", mean(g.warm_us));
  emit("grow_cold_us", g.cold_us);
  emit("frame_bytes", static_cast<double>(split ? frame_bytes_split() : frame_bytes_checked()));
  const double runs = static_cast<double>(reps + 1);
  emit("grow_copies", static_cast<double>(s1.stack_copies - s0.stack_copies) / runs);
  emit("grow_grows", static_cast<double>(s1.stack_grows - s0.stack_grows) / runs);
  emit("grow_copied_bytes", static_cast<double>(s1.stack_bytes_copied - s0.stack_bytes_copied) / runs);
}

std::atomic<std::uint64_t> parked_count{0};

void parked_workload(const params& p) {
  parker k;
  k.start_one = [] {
    try {
      // Captures nothing: a closure pointing into the spawner's stack would pin it.
      weft::go([] {
        parked_count.fetch_add(1, std::memory_order_relaxed);
        weft::sleep_for(std::chrono::hours(24));
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
  if (w == workload::pingpong) o.procs = 1;  // both goroutines on one P, as BM_WeftYieldPingPong
  return weft::run(
      [&]() -> int {
        switch (w) {
          case workload::spawn: spawn_workload(p); break;
          case workload::pingpong: pingpong_workload(p); break;
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
