// SPDX-License-Identifier: Apache-2.0
// limits.hpp — naming what stops thread creation, with the kernel model's capacity estimate:
// once before the first thread (the prediction) and once when creation fails (the limit that
// is used up is the one whose estimate has dropped to about zero).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "weft/kmodel/procfs.hpp"

namespace weft_compare {

class thread_limits {
 public:
  // Takes the snapshot and the estimate now, for threads with this stack size and guard style.
  thread_limits(std::size_t stack_size, weft::kmodel::guard_style guards);

  // "32,410 more threads: kernel.pid_max (basis...)"
  std::string prediction() const;
  std::uint64_t predicted_threads() const noexcept { return before_.binding().threads; }
  weft::kmodel::capacity_limit predicted() const noexcept { return before_.binding().limit; }

  // Which limit ran out when creating a thread failed after `created` threads, from what /proc
  // says now: "kernel.pid_max (estimated 32,410: kernel.pid_max)".  Never throws: if /proc
  // cannot be read it says so.
  std::string diagnose(std::uint64_t created) const noexcept;

 private:
  std::size_t stack_size_;
  weft::kmodel::guard_style guards_;
  weft::kmodel::capacity_estimate before_;
};

// 32458 -> "32,458"
std::string with_commas(std::uint64_t n);

}  // namespace weft_compare
