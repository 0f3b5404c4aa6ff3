// measure.hpp — what a workload reads off the process and the clock: RSS, page-table bytes
// (VmPTE), address space and VMAs from /proc/self, medians of repeated timings.
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

// The median of xs (xs must not be empty; it is reordered).
double median(std::vector<double> xs);
// The mean of xs (0 for none).
double mean(const std::vector<double>& xs);

}  // namespace weft_compare
