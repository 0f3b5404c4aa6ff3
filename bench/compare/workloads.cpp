// SPDX-License-Identifier: Apache-2.0
// workloads.cpp — the workload and metric catalogue, and the sizes at each scale.
//
// Sizes are chosen so that the default run (scale::normal) takes about a minute and a half on
// 2 cores with every system (16 s before issue 21's workloads and the boost-fiber column; its
// skynet alone takes 10-30 s): goroutines get 10x the tasks threads get where a count matters, and the
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
      {workload::burst, "burst", "a burst of spawns, then a wait"},
      {workload::pingpong, "pingpong", "switch ping-pong"},
      {workload::chanpp, "chanpp", "unbuffered channel ping-pong"},
      {workload::skynet, "skynet", "skynet"},
      {workload::create, "create", "parked tasks created"},
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
  using w = workload;
  static const std::vector<metric_desc> m = {
      {"spawn_batch_ns_p1", "spawn_batch_ns", "spawn+join, batches of 1000 (per task), procs 1", "spawn+join, batched, p1", w::spawn, unit::ns, false, 1, true},
      {"spawn_batch_ns_p2", "spawn_batch_ns", "spawn+join, batches of 1000 (per task), procs 2", "spawn+join, batched, p2", w::spawn, unit::ns, false, 2, true},
      {"spawn_one_ns_p1", "spawn_one_ns", "spawn+join, one at a time, procs 1", "spawn+join, 1 by 1, p1", w::spawn, unit::ns, false, 1, true},
      {"spawn_one_ns_p2", "spawn_one_ns", "spawn+join, one at a time, procs 2", "spawn+join, 1 by 1, p2", w::spawn, unit::ns, false, 2, true},
      {"burst_ns", "burst_ns", "a burst of N spawned before any runs, then waited on (per task), procs 1", "burst of N, p1", w::burst, unit::ns, false, 1, true},
      {"pingpong_ns", "pingpong_ns", "yield ping-pong round trip, 1 CPU", "yield ping-pong", w::pingpong, unit::ns, false, 0, true},
      {"chanpp_ns_p1", "chanpp_ns", "unbuffered channel ping-pong round trip, procs 1", "chan ping-pong, p1", w::chanpp, unit::ns, false, 1, true},
      {"chanpp_ns_p2", "chanpp_ns", "unbuffered channel ping-pong round trip, procs 2", "chan ping-pong, p2", w::chanpp, unit::ns, false, 2, true},
      {"skynet_us_p1", "skynet_us", "skynet: a tree of L leaves, procs 1", "skynet(L), p1", w::skynet, unit::us, false, 1, true},
      {"skynet_us_p2", "skynet_us", "skynet: a tree of L leaves, procs 2", "skynet(L), p2", w::skynet, unit::us, false, 2, true},
      {"create_ns_p1", "create_ns", "N parked on a channel, created (per task), procs 1", "N parked created, p1", w::create, unit::ns, false, 1, false},
      {"create_ns_p2", "create_ns", "N parked on a channel, created (per task), procs 2", "N parked created, p2", w::create, unit::ns, false, 2, false},
      {"grow_us", "grow_us", "fresh task recursing D frames of ~440 B", "grow: D-frame recursion", w::grow, unit::us, false, 0, true},
      {"parked_rss", "parked_rss", "RSS per parked task", "RSS / parked", w::parked, unit::bytes, false, 0, false},
      {"parked_pte", "parked_pte", "page tables (VmPTE) per parked task", "VmPTE / parked", w::parked, unit::bytes, false, 0, false},
      {"parked_vmas", "parked_vmas", "VMAs per parked task", "VMAs / parked", w::parked, unit::fraction, false, 0, false},
      {"parked_virt", "parked_virt", "address space (VmSize) per parked task", "VmSize / parked", w::parked, unit::bytes, false, 0, false},
      {"capacity", "capacity", "how many fit (parked tasks)", "how many fit", w::capacity, unit::count, true, 0, false},
  };
  return m;
}

std::vector<unsigned> procs_of(workload w) {
  switch (w) {
    case workload::spawn:
    case workload::chanpp:
    case workload::skynet:
    case workload::create: return {1, 2};
    case workload::burst: return {1};  // all N exist before any runs only on one P
    default: return {0};
  }
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
      z.burst_n = 20000;
      z.burst_reps = 1;
      z.pingpong_n = threads ? 5000 : 50000;
      z.pingpong_reps = 1;
      z.chanpp_n = threads ? 5000 : 50000;
      z.chanpp_reps = 1;
      z.skynet_leaves = 10000;
      z.skynet_reps = 1;
      z.create_n = 10000;
      z.grow_reps = 3;
      z.parked_n = threads ? 500 : 5000;
      z.capacity_cap = threads ? 1000 : 10000;
      z.capacity_memcap = gib / 2;
      z.capacity_seconds = 5;
      break;
    case scale::normal:
      z.spawn_one = threads ? 500 : 20000;
      z.spawn_batched = threads ? 2000 : 50000;
      z.spawn_reps = 3;
      z.burst_n = 200000;
      z.burst_reps = 1;
      z.pingpong_n = threads ? 30000 : 500000;
      z.pingpong_reps = 3;
      z.chanpp_n = threads ? 20000 : 100000;
      z.chanpp_reps = 2;
      z.skynet_leaves = 1000000;
      z.skynet_reps = 1;
      z.create_n = 100000;
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
      z.burst_n = 1000000;
      z.burst_reps = 2;
      z.pingpong_n = threads ? 200000 : 2000000;
      z.pingpong_reps = 5;
      z.chanpp_n = threads ? 100000 : 1000000;
      z.chanpp_reps = 5;
      z.skynet_leaves = 1000000;
      z.skynet_reps = 3;
      z.create_n = 1000000;
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

namespace {

template <class KV>
std::vector<std::string> child_params_of(workload w, const sizes& z, bool capacity, KV kv) {
  switch (w) {
    case workload::spawn:
      return {kv("n1", z.spawn_one), kv("nb", z.spawn_batched), kv("batch", z.batch), kv("reps", z.spawn_reps)};
    case workload::burst:
      return {kv("n", z.burst_n), kv("reps", z.burst_reps)};
    case workload::pingpong:
      return {kv("n", z.pingpong_n), kv("reps", z.pingpong_reps)};
    case workload::chanpp:
      return {kv("n", z.chanpp_n), kv("reps", z.chanpp_reps)};
    case workload::skynet:
      return {kv("leaves", z.skynet_leaves), kv("reps", z.skynet_reps)};
    case workload::create:
      return {kv("n", z.create_n)};
    case workload::grow:
      return {kv("depth", z.depth), kv("reps", z.grow_reps)};
    case workload::parked:
    case workload::capacity:
      return {kv("n", z.parked_n), kv("cap", capacity ? (z.capacity_cap ? z.capacity_cap : ~std::uint64_t{0} >> 1) : 0),
              kv("memcap", z.capacity_memcap), kv("seconds", z.capacity_seconds)};
  }
  return {};
}

}  // namespace

std::vector<std::string> child_params(workload w, const sizes& z, bool capacity, unsigned procs) {
  auto kv = [](const char* k, std::uint64_t v) { return std::string(k) + "=" + std::to_string(v); };
  std::vector<std::string> out = child_params_of(w, z, capacity, kv);
  if (procs) out.push_back(kv("procs", procs));
  return out;
}

unsigned child_deadline_seconds(workload w, const sizes& z) {
  // About ten times what each takes on a busy 2-core machine.
  switch (w) {
    case workload::spawn: return 10 + 5 * static_cast<unsigned>(z.spawn_reps);
    case workload::burst: return 30 + 10 * static_cast<unsigned>(z.burst_reps);
    case workload::pingpong: return 10 + 5 * static_cast<unsigned>(z.pingpong_reps);
    case workload::chanpp: return 10 + 5 * static_cast<unsigned>(z.chanpp_reps);
    case workload::skynet: return 60 + 30 * static_cast<unsigned>(z.skynet_reps);
    case workload::create: return 30 + static_cast<unsigned>(z.create_n / 10000);
    case workload::grow: return 30;
    case workload::parked:
    case workload::capacity: return 30 + static_cast<unsigned>(z.capacity_seconds) * 2;
  }
  return 60;
}

}  // namespace weft_compare
