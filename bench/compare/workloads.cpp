// SPDX-License-Identifier: Apache-2.0
// workloads.cpp — the workload and metric catalogue, and the sizes at each scale.
//
// Sizes are chosen so that the default run (scale::normal) takes about a minute on 2 cores
// with every system: goroutines get 10x the tasks threads get where a count matters, and the
// capacity probe stops at a cap well below the limits that would hurt other processes
// (kernel.pid_max and threads-max are machine-wide).  --full lifts the thread cap to the real
// limit and parks a million goroutines.
#include "bench/compare/workloads.hpp"

#include <algorithm>
#include <stdexcept>

namespace weft_compare {

const std::vector<workload_desc>& all_workloads() {
  static const std::vector<workload_desc> w = {
      {workload::spawn, "spawn", "spawn+join"},
      {workload::pingpong, "pingpong", "switch ping-pong"},
      {workload::grow, "grow", "stack growth (deep recursion)"},
      {workload::parked, "parked", "parked tasks"},
      {workload::capacity, "capacity", "how many fit"},
  };
  return w;
}

const workload_desc& describe(workload w) {
  for (const workload_desc& d : all_workloads())
    if (d.id == w) return d;
  throw std::logic_error("unknown workload");
}

const std::vector<metric_desc>& all_metrics() {
  static const std::vector<metric_desc> m = {
      {"spawn_batch_ns", "spawn+join, batches of 1000 (per task)", "spawn+join, batched", workload::spawn, unit::ns, false},
      {"spawn_one_ns", "spawn+join, one at a time", "spawn+join, 1 by 1", workload::spawn, unit::ns, false},
      {"pingpong_ns", "yield ping-pong round trip, 1 CPU", "yield ping-pong", workload::pingpong, unit::ns, false},
      {"grow_us", "fresh task recursing D frames of ~440 B", "grow: D-frame recursion", workload::grow, unit::us, false},
      {"parked_rss", "RSS per parked task", "RSS / parked", workload::parked, unit::bytes, false},
      {"parked_pte", "page tables (VmPTE) per parked task", "VmPTE / parked", workload::parked, unit::bytes, false},
      {"parked_vmas", "VMAs per parked task", "VMAs / parked", workload::parked, unit::fraction, false},
      {"parked_virt", "address space (VmSize) per parked task", "VmSize / parked", workload::parked, unit::bytes, false},
      {"capacity", "how many fit (parked tasks)", "how many fit", workload::capacity, unit::count, true},
  };
  return m;
}

const char* to_string(scale s) {
  switch (s) {
    case scale::quick: return "quick";
    case scale::normal: return "default";
    case scale::full: return "full";
  }
  return "?";
}

sizes sizes_for(scale s, bool threads, std::uint64_t depth, std::uint64_t mem_available) {
  sizes z;
  z.depth = depth;
  const std::uint64_t gib = std::uint64_t{1} << 30;
  switch (s) {
    case scale::quick:
      z.spawn_one = threads ? 200 : 2000;
      z.spawn_batched = threads ? 1000 : 5000;
      z.spawn_reps = 1;
      z.pingpong_n = threads ? 5000 : 50000;
      z.pingpong_reps = 1;
      z.grow_reps = 3;
      z.parked_n = threads ? 500 : 5000;
      z.capacity_cap = threads ? 1000 : 10000;
      z.capacity_memcap = gib / 2;
      z.capacity_seconds = 5;
      break;
    case scale::normal:
      z.spawn_one = threads ? 500 : 20000;
      z.spawn_batched = threads ? 2000 : 50000;
      z.spawn_reps = 5;
      z.pingpong_n = threads ? 30000 : 500000;
      z.pingpong_reps = 5;
      z.grow_reps = 31;
      z.parked_n = threads ? 10000 : 100000;
      // Below kernel.pid_max (32768 by default): the probe must not starve other processes
      // of task ids (a limit of the process alone is probed to the end: run_threads.cpp).
      z.capacity_cap = threads ? 20000 : 200000;
      z.capacity_memcap = 2 * gib;
      z.capacity_seconds = 20;
      break;
    case scale::full:
      z.spawn_one = threads ? 5000 : 100000;
      z.spawn_batched = threads ? 20000 : 500000;
      z.spawn_reps = 5;
      z.pingpong_n = threads ? 200000 : 2000000;
      z.pingpong_reps = 5;
      z.grow_reps = 50;
      z.parked_n = threads ? 10000 : 1000000;
      z.capacity_cap = threads ? 0 : 4000000;
      z.capacity_memcap = std::max<std::uint64_t>(gib, mem_available / 4 * 3);
      z.capacity_seconds = 120;
      break;
  }
  // Never plan to use more than three quarters of what the machine has free.
  if (mem_available) z.capacity_memcap = std::min<std::uint64_t>(z.capacity_memcap, mem_available / 4 * 3);
  return z;
}

std::vector<std::string> child_params(workload w, const sizes& z, bool capacity) {
  auto kv = [](const char* k, std::uint64_t v) { return std::string(k) + "=" + std::to_string(v); };
  switch (w) {
    case workload::spawn:
      return {kv("n1", z.spawn_one), kv("nb", z.spawn_batched), kv("batch", z.batch), kv("reps", z.spawn_reps)};
    case workload::pingpong:
      return {kv("n", z.pingpong_n), kv("reps", z.pingpong_reps)};
    case workload::grow:
      return {kv("depth", z.depth), kv("reps", z.grow_reps)};
    case workload::parked:
    case workload::capacity:
      return {kv("n", z.parked_n), kv("cap", capacity ? (z.capacity_cap ? z.capacity_cap : ~std::uint64_t{0} >> 1) : 0),
              kv("memcap", z.capacity_memcap), kv("seconds", z.capacity_seconds)};
  }
  return {};
}

unsigned child_deadline_seconds(workload w, const sizes& z) {
  // About ten times what each takes on a busy 2-core machine.
  switch (w) {
    case workload::spawn: return 10 + 5 * static_cast<unsigned>(z.spawn_reps);
    case workload::pingpong: return 10 + 5 * static_cast<unsigned>(z.pingpong_reps);
    case workload::grow: return 30;
    case workload::parked:
    case workload::capacity: return 30 + static_cast<unsigned>(z.capacity_seconds) * 2;
  }
  return 60;
}

}  // namespace weft_compare
