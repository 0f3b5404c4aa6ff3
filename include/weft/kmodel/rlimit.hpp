// SPDX-License-Identifier: Apache-2.0
// weft/kmodel/rlimit.hpp — what RLIMIT_STACK decides: the default pthread stack size, and how
// far the main thread's stack may grow.
//
// Plain threads: all of it; the kernel-model layer needs no runtime.
#pragma once

#include <cstddef>
#include <cstdint>

#include "weft/export.hpp"
#include "weft/kmodel/facts.hpp"

namespace weft::kmodel {

// Which clause of glibc's __pthread_early_init decided the default stack size.
enum class default_stack_rule {
  arch_default,       // RLIMIT_STACK unlimited (or getrlimit failed): ARCH_STACK_DEFAULT_SIZE
  rlimit,             // the soft limit itself, rounded up to the page
  pthread_stack_min,  // the limit was below PTHREAD_STACK_MIN
  tls_minimum,        // page + static TLS + MINIMAL_REST_STACK was larger still
};
WEFT_API const char* to_string(default_stack_rule r) noexcept;

struct default_stack_prediction {
  std::size_t stack_size = 0;  // what pthread_getattr_default_np reports
  std::size_t guard_size = 0;  // one page
  default_stack_rule rule = default_stack_rule::rlimit;
};

// The default pthread stack size glibc computes at process start from the RLIMIT_STACK soft
// limit it sees then, the page size and the static TLS size (rounded, as in process_facts).
WEFT_API default_stack_prediction predict_default_stack(rlimit_value rlimit_stack, std::size_t page_size,
                                                        std::size_t static_tls_size) noexcept;

// The [stack] VMA execve leaves behind: the pages holding the argument and environment strings
// plus 128 KiB, capped at the limit (fs/exec.c setup_arg_pages).  `string_bytes` counts every
// argv and envp string and the exec'd file name with their NULs, plus the pointer-sized end
// marker the kernel puts first.
WEFT_API std::size_t predict_initial_stack_vma(std::size_t string_bytes, rlimit_value rlimit_stack,
                                               std::size_t page_size) noexcept;

// Whether a program exec'd under a small RLIMIT_STACK gets as far as main.  Before main, the
// stack holds the argument and environment strings, exec's tables (argv, envp, auxv) and the
// deepest frames of the dynamic loader and libc start-up; with randomisation on, exec also
// starts the stack up to stack_random_offset_max further down (arch_align_stack).  The [stack]
// VMA may not outgrow the limit, so a fault past it kills the process before main with a
// SIGSEGV, however small the program.  The model takes what it cannot compute — the strings,
// tables and start-up frames together — from one measurement with randomisation off (the
// smallest page-multiple limit at which the program starts, measure_start_threshold), and adds
// the random offset:
struct process_start_prediction {
  std::size_t never_below = 0;  // under this the program never starts (even with offset 0)
  std::size_t always_from = 0;  // from here it always starts (even with the largest offset)
  // In between it starts sometimes, as the random offset falls.
  enum class verdict { never, sometimes, always };
  WEFT_API verdict at(rlimit_value limit) const noexcept;
};
WEFT_API const char* to_string(process_start_prediction::verdict v) noexcept;

// smallest_without_randomisation: measure_start_threshold's answer (a page multiple);
// random_offset_max: process_facts::stack_random_offset_max.
WEFT_API process_start_prediction predict_process_start(std::size_t smallest_without_randomisation,
                                                        std::size_t random_offset_max,
                                                        std::size_t page_size) noexcept;

// What limits the main thread's stack growth (mm/mmap.c acct_stack_growth, expand_downwards).
enum class main_stack_bound {
  rlimit,       // the VMA may not exceed RLIMIT_STACK
  guard_gap,    // it must stay stack_guard_gap above an accessible mapping below it (or
                // may touch an inaccessible one)
  current_vma,  // it is already larger than either allows; it never shrinks
};
WEFT_API const char* to_string(main_stack_bound b) noexcept;

struct main_stack_inputs {
  rlimit_value rlimit_stack;           // at the time of the faults, not at exec
  std::size_t page_size = 4096;
  std::uintptr_t stack_end = 0;        // vm_end of [stack]
  std::uintptr_t stack_start = 0;      // vm_start of [stack] now
  std::uintptr_t below_end = 0;        // vm_end of the mapping right below [stack]; 0 if none
  bool below_accessible = true;        // it is r, w or x: then the stack stays stack_guard_gap above it
  std::size_t guard_gap = default_stack_guard_gap_pages * 4096;
};

struct main_stack_prediction {
  std::uintptr_t lowest = 0;  // the lowest address the stack can reach (a page boundary)
  std::size_t max_size = 0;   // stack_end - lowest
  main_stack_bound bound = main_stack_bound::rlimit;
};

WEFT_API main_stack_prediction predict_main_stack(const main_stack_inputs& in) noexcept;

// The inputs above for this process, read from /proc/self/maps and getrlimit.  Throws
// resource_error if /proc/self/maps cannot be read or has no [stack].
WEFT_API main_stack_inputs current_main_stack_inputs();

}  // namespace weft::kmodel
