// SPDX-License-Identifier: Apache-2.0
// weft/options.hpp — how a runtime is configured: in code, or from WEFT_* variables.
//
// Plain threads: all of it (plain data and parsing; no runtime needed).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>

#include "weft/export.hpp"

namespace weft {

// What happens when a goroutine's stack fills its slot (DESIGN §3).  Every strategy first
// grows a stack in place, inside its slot (stack_reserve bytes of address space); they differ
// only past it.
enum class stack_strategy {
  in_place,   // never: the slot is the limit, and no frame ever moves (the default: any C++ is safe)
  copy,       // copy the stack into a bigger slot, adjusting pointers into it (Go >= 1.3); only
              // for code known to be copy-safe (README, "What a copy breaks")
  segmented,  // link a new segment; frames never move (gccgo, Go <= 1.2; needs -fsplit-stack)
};

// What keeps a stack overflow from running into the memory below it.
enum class guard_mode {
  automatic,  // madvise(MADV_GUARD_INSTALL) if the kernel has it (6.13+), else mprotect
  madvise,    // MADV_GUARD_INSTALL only: no VMA split, scales to millions of stacks
  mprotect,   // PROT_NONE pages: two VMAs per stack, bounded by vm.max_map_count
  none,       // no guard: an overflow corrupts whatever lies below
};

struct WEFT_API options {
  unsigned procs = 0;                            // 0: WEFT_PROCS, else the CPUs this process may use
  std::size_t stack_min = 0;                     // 0: the runtime's default
  std::size_t stack_max = std::size_t{1} << 30;  // a goroutine needing more is a fatal error
  std::optional<std::size_t> stack_reserve;      // unset: the strategy's default (in_place 8 MiB,
                                                 // copy/segmented 256 KiB); 0: pure copying
  stack_strategy strategy = stack_strategy::in_place;
  guard_mode guard = guard_mode::automatic;
  std::chrono::milliseconds scan_interval{100};  // 0: scan only on weft::scan()
  std::optional<bool> quarantine;                // keep moved-from stack ranges inaccessible
                                                 // (unset: on for copy, off otherwise)
  bool debug = false;                            // WEFT_DEBUG=1: extra checks and messages
  std::chrono::milliseconds schedtrace{0};       // WEFT_DEBUG=schedtrace=MS: a scheduler summary
                                                 // line on stderr every MS (0: none)
  bool scheddetail = false;                      // WEFT_DEBUG=...,scheddetail=1: and a line per P, M

  // Reads WEFT_PROCS, WEFT_STACK_MIN, WEFT_STACK_MAX, WEFT_STACK (in_place|copy|segmented),
  // WEFT_STACK_RESERVE, WEFT_GUARD (automatic|madvise|mprotect|none), WEFT_SCAN_MS,
  // WEFT_QUARANTINE (0|1) and WEFT_DEBUG over the defaults above.  WEFT_DEBUG is 0, 1, or a
  // comma-separated list of checks=0|1 (what 1 alone means), schedtrace=MS and scheddetail=0|1
  // (Go's GODEBUG names).  Sizes take a K, M, G or T suffix (powers of 1024).  Throws config_error naming the variable and what it allows.
  static options from_env();

  // Throws config_error if a field is out of range (the message names the field, the value
  // and what is allowed).  The runtime validates its options when it starts.
  void validate() const;
};

// The runtime's default for stack_min (when options::stack_min is 0).
WEFT_API std::size_t default_stack_min() noexcept;
// The runtime's default for stack_reserve (when options::stack_reserve is unset): 8 MiB for
// in_place (the default pthread stack on Debian), the measured 256 KiB for copy and segmented.
WEFT_API std::size_t default_stack_reserve(stack_strategy strategy = stack_strategy::in_place) noexcept;

}  // namespace weft
