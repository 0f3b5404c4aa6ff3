// SPDX-License-Identifier: Apache-2.0
// workloads.hpp — what weft-compare measures: the workloads, the figures each yields (the rows
// of every report), and how big each run is at each scale.
//
//   spawn     spawn+join of N tasks, in batches of 1000 and one at a time     ns per task
//   pingpong  two tasks switching by yielding, both on one CPU                ns per round trip
//   grow      a fresh task recursing D frames of ~440 bytes, then joined      µs
//   parked    N tasks parked: RSS, page tables, VMAs, address space           per task
//   capacity  more parked tasks until something gives (or the harness's cap) how many
//
// The child-side code of each workload is in run_weft.cpp, run_threads.cpp and
// bench/go/compare.go; they read the sizes from key=value parameters made here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace weft_compare {

enum class workload { spawn, pingpong, grow, parked, capacity };

struct workload_desc {
  workload id;
  const char* name;   // as --only and the child protocol spell it
  const char* title;  // for people
};
const std::vector<workload_desc>& all_workloads();
const workload_desc& describe(workload w);

enum class unit { ns, us, bytes, count, fraction };

// One figure: a row of the table, a group of bars in the chart.
struct metric_desc {
  const char* key;    // as the children print it
  const char* label;  // row label
  const char* brief;  // row label in the terminal table
  workload from;
  unit u;
  bool higher_is_better;
};
const std::vector<metric_desc>& all_metrics();

enum class scale { quick, normal, full };
const char* to_string(scale s);

// How big each workload is, for one kind of task (goroutines are cheap, threads are not).
struct sizes {
  std::uint64_t spawn_one = 0, spawn_batched = 0, batch = 1000, spawn_reps = 3;
  std::uint64_t pingpong_n = 0, pingpong_reps = 3;
  std::uint64_t depth = 4000, grow_reps = 15;  // frames of ~440 bytes (recurse.hpp)
  std::uint64_t parked_n = 0;
  std::uint64_t capacity_cap = 0;      // 0: no cap on the count (the real limit)
  std::uint64_t capacity_memcap = 0;   // bytes of RSS the probe may reach
  std::uint64_t capacity_seconds = 20;
};
sizes sizes_for(scale s, bool threads, std::uint64_t depth, std::uint64_t mem_available);

// The key=value parameters of workload w's child.  The parked child also runs the capacity
// probe when `capacity` is set (one pass of task creation serves both).
std::vector<std::string> child_params(workload w, const sizes& z, bool capacity);

// How long the harness lets one child run before killing it.
unsigned child_deadline_seconds(workload w, const sizes& z);

}  // namespace weft_compare
