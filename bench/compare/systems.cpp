// SPDX-License-Identifier: Apache-2.0
// systems.cpp — the column catalogue and each column's configuration.
#include "bench/compare/systems.hpp"

#include <stdexcept>

#include "weft/kmodel.hpp"

namespace weft_compare {

namespace km = weft::kmodel;

const std::vector<system_desc>& all_systems() {
  static const std::vector<system_desc> s = [] {
    std::vector<system_desc> v = {
      {system_id::weft_copy, "weft-copy", true, true},
      {system_id::weft, "weft", true, true},
      {system_id::weft_copy256, "weft-copy256", true, true},
      {system_id::weft_segmented, "weft-segmented", true, true},
      {system_id::pthread, "pthread", false, false},
      {system_id::clone, "clone", false, false},
      {system_id::go, "go", true, false},
    };
    if (have_boost_fiber()) v.push_back({system_id::boost_fiber, "boost-fiber", true, false});
    return v;
  }();
  return s;
}

std::string not_applicable(system_id s, workload w) {
  const bool threads = s == system_id::pthread || s == system_id::clone;
  if (threads && (w == workload::skynet || w == workload::burst || w == workload::create))
    return "a task per goroutine: 1,111,111 (skynet) or hundreds of thousands of kernel threads do not fit "
           "(kernel.pid_max, vm.max_map_count); the parked rows show what threads cost";
  if (s == system_id::clone && w == workload::chanpp)
    return "clone tasks run without TLS and must not call libc: no channel or semaphore for them";
  if (s == system_id::boost_fiber && w == workload::grow)
    return "Boost.Fiber stacks do not grow: its stack allocators (fixedsize, protected_fixedsize, pooled_fixedsize) "
           "hand out one fixed size for a fiber's life, and segmented_stack needs Boost built with "
           "segmented-stacks=on (Debian's is not); a fiber that recursed 4000 frames would need ~1.7 MiB from the start";
  return {};
}

const system_desc& describe(system_id id) {
  for (const system_desc& d : all_systems())
    if (d.id == id) return d;
  throw std::logic_error("unknown system");
}

weft::options weft_options(system_id s) {
  // Not options::from_env(): the columns must mean the same thing whatever WEFT_* says.
  weft::options o;
  switch (s) {
    case system_id::weft_copy:
      o.strategy = weft::stack_strategy::copy;
      o.stack_reserve = 0;
      break;
    case system_id::weft:
      break;
    case system_id::weft_copy256:
      o.strategy = weft::stack_strategy::copy;
      break;
    case system_id::weft_segmented:
      o.strategy = weft::stack_strategy::segmented;
      break;
    default:
      throw std::logic_error("not a weft column");
  }
  return o;
}

namespace {

std::string guard_words(bool kernel_guard_install) {
  return kernel_guard_install ? "guards by madvise(MADV_GUARD_INSTALL) (no VMA split; this kernel has it)"
                              : "guards by mprotect (two VMAs per stack; this kernel has no MADV_GUARD_INSTALL)";
}

}  // namespace

std::string configuration(system_id s) {
  const km::process_facts facts = km::process_facts::probe();
  const std::string min = km::size_text(weft::default_stack_min());
  switch (s) {
    case system_id::weft_copy:
      return "stack_strategy::copy, stack_reserve=0: stacks start at " + min +
             " and every doubling (and every halving by the scan) copies the stack, as Go does; " +
             guard_words(facts.kernel_guard_install);
    case system_id::weft:
      return "defaults (stack_strategy::in_place): stacks start at " + min + " at the top of a " +
             km::size_text(weft::default_stack_reserve()) +
             " slot (a default pthread stack), grow in place inside it and never move; " +
             guard_words(facts.kernel_guard_install);
    case system_id::weft_copy256:
      return "stack_strategy::copy with its " + km::size_text(weft::default_stack_reserve(weft::stack_strategy::copy)) +
             " reserve: stacks grow in place inside the slot and by copying past it (quarantine on); " +
             guard_words(facts.kernel_guard_install);
    case system_id::weft_segmented:
      return "stack_strategy::segmented with its " +
             km::size_text(weft::default_stack_reserve(weft::stack_strategy::segmented)) + " reserve: past the slot, -fsplit-stack prologues link a "
             "new segment and frames never move (explicit checks cannot: the grow workload uses a split-stack "
             "build of the recursion here)";
    case system_id::pthread: {
      km::default_stack_observation d = km::observe_default_stack();
      return "glibc " + facts.glibc_version() + " pthread_create with default attributes: " +
             km::size_text(d.stack_size) + " stacks + " + km::size_text(d.guard_size) + " guard, " +
             (facts.glibc_uses_guard_install() ? "MADV_GUARD_INSTALL guards (1 VMA each)"
                                               : "mprotect guards (2 VMAs each)") +
             ", glibc's stack cache";
    }
    case system_id::clone: {
      km::cache_config c = km::cache_config::for_this_process();
      return "weft::kmodel::start_task: raw clone3 with glibc's flags less CLONE_SETTLS, no TLS, on " +
             km::size_text(c.default_stack_size) + " stacks from the kernel model's allocate_stack cache (" +
             km::to_string(c.guard) + " guards)";
    }
    case system_id::go:
      return "Go goroutines, bench/go/compare.go built with the installed go, GOMAXPROCS = the row's procs "
             "(default: the CPUs)";
    case system_id::boost_fiber:
      return "Boost.Fiber " + boost_fiber_version() + " fibers: algo::work_stealing on as many threads as the row's procs "
             "(the CPUs where a row names none; idle threads spin, its default), buffered_channel / unbuffered_channel; "
             "stacks fixedsize_stack(16 KiB) (malloc, no guard) except the parked rows: pooled_fixedsize_stack(16 KiB) "
             "(protected_fixedsize_stack costs 2 VMAs per fiber and stops at vm.max_map_count, ~32K fibers)";
  }
  return {};
}

}  // namespace weft_compare
