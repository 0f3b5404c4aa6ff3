// SPDX-License-Identifier: Apache-2.0
// probe.hpp — the parked-task and capacity workloads, shared by every system: park N tasks and
// read what they cost, then (when asked) keep parking until something gives.
//
// Prints: parked_rss, parked_pte, parked_vmas, parked_virt (per task); then
// capacity (tasks parked in all), capacity_seconds and a "stop" line:
//   cap                      the harness's count cap
//   memcap                   RSS + page tables reached the harness's memory cap
//   time                     the probe ran out of time
//   limit <name> (<why>)     creating a task failed: what ran out, named
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "bench/compare/child.hpp"

namespace weft_compare {

struct parker {
  // Starts one task that parks; returns "" on success, else why it could not be made.
  std::function<std::string()> start_one;
  // How many tasks have reached their park.
  std::function<std::uint64_t()> parked;
  // Sleeps the caller (a goroutine sleeps as a goroutine).
  std::function<void(std::chrono::milliseconds)> sleep;
  // Names the limit that ran out after `created` tasks (the first failure's message is given).
  std::function<std::string(std::uint64_t created, const std::string& error)> diagnose;
  // Tasks made between two looks at RSS and the clock.
  std::uint64_t check_every = 1000;
};

// Runs the workload with params n, cap (0: no capacity probe), memcap, seconds.  Throws
// std::runtime_error if the tasks do not all park within a minute.
void parked_and_capacity(const params& p, parker& k);

}  // namespace weft_compare
