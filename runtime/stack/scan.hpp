// scan.hpp — the scan phase (Go's shrinkstack during GC stack scanning).
#pragma once

namespace weft::detail {

struct sched;

// Visits every goroutine that is not running and halves the stack of each that uses less than
// a quarter of it (never below stack_min); then returns pooled stacks' memory to the OS.
// Called by sysmon every scan_interval and by weft::scan().
void scan_phase(sched* s) noexcept;

}  // namespace weft::detail
