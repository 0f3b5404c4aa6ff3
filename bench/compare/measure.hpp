// SPDX-License-Identifier: Apache-2.0
// measure.hpp — what a workload reads off the process and the clock: RSS, page-table bytes
// (VmPTE), address space and VMAs from /proc/self; the timing loops; medians of their runs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace weft_compare {

// One reading of /proc/self/status and /proc/self/maps.
struct proc_reading {
  std::uint64_t rss = 0;   // VmRSS, bytes
  std::uint64_t pte = 0;   // VmPTE: page tables, bytes
  std::uint64_t virt = 0;  // VmSize, bytes
  std::size_t vmas = 0;    // lines of /proc/self/maps
};

// Throws std::runtime_error (naming the file and errno) if /proc cannot be read.
proc_reading read_proc();

// (after - before) / n for each field, as doubles (a field may shrink: negative is kept).
struct per_task {
  double rss = 0, pte = 0, virt = 0, vmas = 0;
};
per_task per_task_delta(const proc_reading& before, const proc_reading& after, std::uint64_t n);

// MemAvailable from /proc/meminfo, bytes.  Throws std::runtime_error if it cannot be read.
std::uint64_t mem_available();

using steady = std::chrono::steady_clock;
inline double seconds_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

// Nanoseconds per item since t, for n items (n of 0 counts as 1).
inline double ns_per(steady::time_point t, std::uint64_t n) {
  return seconds_since(t) * 1e9 / static_cast<double>(n ? n : 1);
}

// The timing loops every column shares (run_weft.cpp, run_threads.cpp), so all columns are
// measured the same way by construction.
//
// time_reps: runs body() `reps` times, each doing n items; the ns per item of each run.
template <class Body>
std::vector<double> time_reps(std::uint64_t reps, std::uint64_t n, Body&& body) {
  std::vector<double> xs;
  xs.reserve(reps);
  for (std::uint64_t r = 0; r < reps; ++r) {
    const steady::time_point t = steady::now();
    body();
    xs.push_back(ns_per(t, n));
  }
  return xs;
}

// cold_then_reps: runs once() 1 + `reps` times, timing each in µs; the first run is the cold
// one (fresh caches and stacks), kept apart from the rest.
struct cold_and_warm {
  double cold_us = 0;
  std::vector<double> warm_us;
};
template <class Once>
cold_and_warm cold_then_reps(std::uint64_t reps, Once&& once) {
  cold_and_warm c;
  c.warm_us.reserve(reps);
  for (std::uint64_t r = 0; r <= reps; ++r) {
    const steady::time_point t = steady::now();
    once();
    const double us = seconds_since(t) * 1e6;
    if (r == 0) c.cold_us = us;
    else c.warm_us.push_back(us);
  }
  return c;
}

// cold_then_reps_ns: as cold_then_reps, each run doing n items: ns per item of the first
// (single-run) repetition and of each warm one after it.
struct cold_and_warm_ns {
  double cold = 0;
  std::vector<double> warm;
};
template <class Body>
cold_and_warm_ns cold_then_reps_ns(std::uint64_t reps, std::uint64_t n, Body&& body) {
  cold_and_warm_ns c;
  for (std::uint64_t r = 0; r <= reps; ++r) {
    const steady::time_point t = steady::now();
    body();
    const double ns = ns_per(t, n);
    if (r == 0) c.cold = ns;
    else c.warm.push_back(ns);
  }
  return c;
}

// Prints "key cold" (the headline: what one run of a fresh process sees) and, when there were
// warm repetitions, "key_warm median" (child.hpp's protocol).
void emit_cold_warm(const char* key, const cold_and_warm_ns& c);

// The median of xs (xs must not be empty; it is reordered).
double median(std::vector<double> xs);
// The mean of xs (0 for none).
double mean(const std::vector<double>& xs);

}  // namespace weft_compare
