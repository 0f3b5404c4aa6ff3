// SPDX-License-Identifier: Apache-2.0
// rlimit.cpp — what RLIMIT_STACK decides, for threads and for the main thread.
//
// One limit, two very different stacks.
//
// Threads.  glibc reads RLIMIT_STACK once, at process start (glibc >= 2.34:
// sysdeps/nptl/pthread_early_init.h, __pthread_early_init; before that nptl/nptl-init.c),
// and turns the soft limit into the default size of every pthread stack that is not given one:
//
//     limit = getrlimit failed or RLIM_INFINITY ? ARCH_STACK_DEFAULT_SIZE   (2 MiB on x86_64)
//           : limit < PTHREAD_STACK_MIN        ? PTHREAD_STACK_MIN        (16 KiB)
//           : limit
//     limit = max(limit, page + static TLS + MINIMAL_REST_STACK)          (2048 on x86_64)
//     default = round_up(limit, page);   guard = one page
//
// Some notes (one of our own seeds among them) say the unlimited case gives 32 MiB; that is
// ia64's ARCH_STACK_DEFAULT_SIZE.  x86_64's is 2 MiB (sysdeps/x86_64/nptl/pthreaddef.h), and
// the tests ask the real glibc.  Because the value is fixed at start-up, a process that calls
// setrlimit keeps its old default; only a process exec'd after the change sees the new one.
//
// The main thread.  Its stack is not allocated at all: execve leaves a [stack] VMA holding the
// argument and environment strings and 128 KiB more, capped at the limit (fs/exec.c,
// setup_arg_pages: stack_expand = min(rlimit & PAGE_MASK, strings + 128 KiB)).  The VMA is
// VM_GROWSDOWN: a fault just below it makes the kernel extend it (mm/mmap.c expand_downwards,
// acct_stack_growth) as long as
//     vm_end - new_start <= RLIMIT_STACK          (read at fault time, not at exec)
//     new_start - prev->vm_end >= stack_guard_gap (256 pages, if prev is r, w or x;
//                                                  an inaccessible prev may be touched)
// where new_start is the faulting address rounded down to the page.  So the lowest reachable
// page is the higher of vm_end - round_down(limit, page) and prev_end + gap — unless the VMA
// already reaches lower, because a stack never shrinks.  Past that, the fault is SIGSEGV, and
// the handler can only run on an alternate stack.
//
// Rejected: predicting from sp instead of vm_end.  The limit counts the whole VMA including
// the strings, auxv and the part above main's frame; measuring from sp would be off by
// however much the environment weighs.
#include <cerrno>
#include <string>

#include <sys/resource.h>
#include <unistd.h>

#include "runtime/kmodel/sys.hpp"
#include "weft/kmodel/procfs.hpp"
#include "weft/kmodel/rlimit.hpp"

namespace weft::kmodel {

const char* to_string(default_stack_rule r) noexcept {
  switch (r) {
    case default_stack_rule::arch_default: return "RLIMIT_STACK unlimited: ARCH_STACK_DEFAULT_SIZE";
    case default_stack_rule::rlimit: return "RLIMIT_STACK rounded up to the page";
    case default_stack_rule::pthread_stack_min: return "RLIMIT_STACK below PTHREAD_STACK_MIN";
    case default_stack_rule::tls_minimum: return "page + static TLS + MINIMAL_REST_STACK";
  }
  return "?";
}

const char* to_string(main_stack_bound b) noexcept {
  switch (b) {
    case main_stack_bound::rlimit: return "RLIMIT_STACK";
    case main_stack_bound::guard_gap: return "stack_guard_gap";
    case main_stack_bound::current_vma: return "current [stack] VMA";
  }
  return "?";
}

default_stack_prediction predict_default_stack(rlimit_value rlimit_stack, std::size_t page_size,
                                               std::size_t static_tls_size) noexcept {
  default_stack_prediction p;
  std::uint64_t limit;
  if (!rlimit_stack) {
    limit = arch_stack_default_size;
    p.rule = default_stack_rule::arch_default;
  } else if (*rlimit_stack < pthread_stack_min) {
    limit = pthread_stack_min;
    p.rule = default_stack_rule::pthread_stack_min;
  } else {
    limit = *rlimit_stack;
    p.rule = default_stack_rule::rlimit;
  }
  const std::uint64_t minstack = page_size + static_tls_size + minimal_rest_stack;
  if (limit < minstack) {
    limit = minstack;
    p.rule = default_stack_rule::tls_minimum;
  }
  p.stack_size = static_cast<std::size_t>((limit + page_size - 1) / page_size * page_size);
  p.guard_size = page_size;
  return p;
}

std::size_t predict_initial_stack_vma(std::size_t string_bytes, rlimit_value rlimit_stack,
                                      std::size_t page_size) noexcept {
  const std::size_t strings = detail::round_up(string_bytes, page_size);
  std::size_t want = strings + exec_stack_expand;
  if (rlimit_stack) {
    const std::size_t cap = detail::round_down(static_cast<std::size_t>(*rlimit_stack), page_size);
    if (cap < want) want = cap;
  }
  // Expanding to a base above vm_start does nothing: the strings' pages stay.
  return want < strings ? strings : want;
}

// Starting at all.  Nothing before main can be told apart from the outside but the total, so
// the total is measured once with randomisation off (observe.cpp measure_start_threshold) and
// the random part added here.  x86_64's arch_align_stack moves the initial stack pointer down
// by a random 0..8191 bytes before exec writes its tables (fs/binfmt_elf.c create_elf_tables),
// so a program that needs T with offset 0 needs up to T + 8191 with randomisation on; RLIMIT_STACK
// counts whole pages of the VMA (mm/mmap.c acct_stack_growth), hence the rounding.
process_start_prediction predict_process_start(std::size_t smallest_without_randomisation,
                                               std::size_t random_offset_max, std::size_t page_size) noexcept {
  process_start_prediction p;
  p.never_below = detail::round_up(smallest_without_randomisation, page_size);
  p.always_from = p.never_below + detail::round_up(random_offset_max, page_size);
  return p;
}

process_start_prediction::verdict process_start_prediction::at(rlimit_value limit) const noexcept {
  if (!limit || *limit >= always_from) return verdict::always;
  if (*limit < never_below) return verdict::never;
  return verdict::sometimes;
}

const char* to_string(process_start_prediction::verdict v) noexcept {
  switch (v) {
    case process_start_prediction::verdict::never: return "never";
    case process_start_prediction::verdict::sometimes: return "sometimes";
    case process_start_prediction::verdict::always: return "always";
  }
  return "?";
}

main_stack_prediction predict_main_stack(const main_stack_inputs& in) noexcept {
  main_stack_prediction p;
  std::uintptr_t floor_rl = 0;  // lowest start the limit allows
  if (in.rlimit_stack) {
    const std::size_t lim = detail::round_down(static_cast<std::size_t>(*in.rlimit_stack), in.page_size);
    floor_rl = lim >= in.stack_end ? 0 : in.stack_end - lim;
  }
  std::uintptr_t floor_gap = in.below_end ? in.below_end + (in.below_accessible ? in.guard_gap : 0) : 0;
  if (floor_gap >= floor_rl) {
    p.lowest = floor_gap;
    p.bound = main_stack_bound::guard_gap;
  } else {
    p.lowest = floor_rl;
    p.bound = main_stack_bound::rlimit;
  }
  if (in.stack_start != 0 && in.stack_start < p.lowest) {
    p.lowest = in.stack_start;
    p.bound = main_stack_bound::current_vma;
  }
  p.max_size = in.stack_end - p.lowest;
  return p;
}

main_stack_inputs current_main_stack_inputs() {
  main_stack_inputs in;
  long ps = ::sysconf(_SC_PAGESIZE);
  in.page_size = ps > 0 ? static_cast<std::size_t>(ps) : 4096;
  in.rlimit_stack = current_rlimit_stack();
  in.guard_gap = process_facts::probe().stack_guard_gap;
  const std::vector<mapping> maps = read_maps();
  const mapping* stack = nullptr;
  for (const mapping& m : maps)
    if (m.name == "[stack]") stack = &m;
  if (!stack) detail::throw_errno(ENOENT, "/proc/self/maps has no [stack] mapping");
  in.stack_end = stack->end;
  in.stack_start = stack->start;
  for (const mapping& m : maps) {
    if (m.end <= stack->start && m.end > in.below_end) {
      in.below_end = m.end;
      in.below_accessible = m.accessible();
    }
  }
  return in;
}

}  // namespace weft::kmodel
