// SPDX-License-Identifier: Apache-2.0
// systems.cpp — the column catalogue and each column's configuration.
#include "bench/compare/systems.hpp"

#include <stdexcept>

#include "weft/kmodel.hpp"

namespace weft_compare {

namespace km = weft::kmodel;

const std::vector<system_desc>& all_systems() {
  static const std::vector<system_desc> s = {
      {system_id::weft_copy, "weft-copy", true, true},
      {system_id::weft, "weft", true, true},
      {system_id::weft_copy256, "weft-copy256", true, true},
      {system_id::weft_segmented, "weft-segmented", true, true},
      {system_id::pthread, "pthread", false, false},
      {system_id::clone, "clone", false, false},
      {system_id::go, "go", true, false},
  };
  return s;
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
      return "Go goroutines, bench/go/compare.go built with the installed go, default GOMAXPROCS";
  }
  return {};
}

}  // namespace weft_compare
