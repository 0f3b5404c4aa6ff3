// SPDX-License-Identifier: Apache-2.0
// workloads.hpp — what weft-compare measures: the workloads, the figures each yields (the rows
// of every report), and how big each run is at each scale.
//
//   spawn     spawn+join of N tasks, in batches of 1000 and one at a time     ns per task
//   burst     N tasks spawned before any runs (procs 1), then waited on       ns per task
//   pingpong  two tasks switching by yielding, both on one CPU                ns per round trip
//   chanpp    two tasks over two unbuffered channels                          ns per round trip
//   skynet    the skynet tree: 1,111,111 tasks, 1M leaves, sums up channels   µs per tree
//   create    N tasks created that each park on a channel                     ns per task
//   grow      a fresh task recursing D frames of ~440 bytes, then joined      µs
//   parked    N tasks parked: RSS, page tables, VMAs, address space           per task
//   capacity  more parked tasks until something gives (or the harness's cap) how many
//
// Single-run figures are the headline (issue 21): a cell is what the first repetition of a
// fresh child process measures (the first tree, the first batch: what a program that runs
// once sees); the median of the warm repetitions after it goes beside, labelled "warm".  A
// workload that runs at several procs (1 and 2) runs one child per procs value.
//
// The child-side code of each workload is in run_weft.cpp, run_threads.cpp and
// bench/go/compare.go; they read the sizes from key=value parameters made here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace weft_compare {

enum class workload { spawn, burst, pingpong, chanpp, skynet, create, grow, parked, capacity };

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
  const char* key;    // the cell's key: the child's key, with "_p1" / "_p2" when procs is set
  const char* child_key;  // as the children print it
  const char* label;  // row label
  const char* brief;  // row label in the terminal table
  workload from;
  unit u;
  bool higher_is_better;
  unsigned procs = 0;  // 0: the workload's one run; else the child of the run at this procs
  bool warm = false;   // the child also prints "<child_key>_warm": the median of warm repetitions
};
const std::vector<metric_desc>& all_metrics();

enum class scale { quick, normal, full };
const char* to_string(scale s);

// The procs values a workload's children run at: {0} (one run, the system's default) or {1, 2}.
std::vector<unsigned> procs_of(workload w);

// How big each workload is, for one kind of task (goroutines are cheap, threads are not).
// reps: warm repetitions after the first (single-run) one.
struct sizes {
  std::uint64_t spawn_one = 0, spawn_batched = 0, batch = 1000, spawn_reps = 3;
  std::uint64_t burst_n = 0, burst_reps = 1;
  std::uint64_t pingpong_n = 0, pingpong_reps = 3;
  std::uint64_t chanpp_n = 0, chanpp_reps = 3;
  std::uint64_t skynet_leaves = 1000000, skynet_reps = 1;
  std::uint64_t create_n = 0;
  std::uint64_t depth = 4000, grow_reps = 15;  // frames of ~440 bytes (recurse.hpp)
  std::uint64_t parked_n = 0;
  std::uint64_t capacity_cap = 0;      // 0: no cap on the count (the real limit)
  std::uint64_t capacity_memcap = 0;   // bytes of RSS the probe may reach
  std::uint64_t capacity_seconds = 20;
};
sizes sizes_for(scale s, bool threads, std::uint64_t depth, std::uint64_t mem_available);

// The key=value parameters of workload w's child.  The parked child also runs the capacity
// probe when `capacity` is set (one pass of task creation serves both).
std::vector<std::string> child_params(workload w, const sizes& z, bool capacity, unsigned procs);

// How long the harness lets one child run before killing it.
unsigned child_deadline_seconds(workload w, const sizes& z);

}  // namespace weft_compare
