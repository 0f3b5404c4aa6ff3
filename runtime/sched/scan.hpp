// SPDX-License-Identifier: Apache-2.0
// scan.hpp — the scan phase (Go's shrinkstack during GC stack scanning).
#pragma once

namespace weft::detail {

struct sched;

// How a scan phase gives pooled stack memory back.
enum class scan_kind {
  requested,  // weft::scan(): whatever sat unused since the previous scan, and what exceeds the
              // per-class keep (the caller asked for memory back now)
  periodic,   // sysmon's, every scan_interval: only what sat unused for about three seconds (scan.cpp, kReleaseAfterMs)
};

// Visits every goroutine that is not running and halves the stack of each that uses less than
// a quarter of it (never below stack_min); then returns pooled stacks' memory to the OS.
void scan_phase(sched* s, scan_kind kind) noexcept;

}  // namespace weft::detail
