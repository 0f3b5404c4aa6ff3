// SPDX-License-Identifier: Apache-2.0
// stack_config.hpp — what a stack pool is configured with, and the rules a configuration obeys.
//
// Each rule is written once, here, as a test and the words a message gives for it.  Two
// places check by them: weft::options (runtime/sched/options.cpp) as it reads a WEFT_* variable
// and in options::validate(), in its own words about its defaults (0 for stack_min, an unset
// reserve) and its options (the strategy); and stack_pool's constructor, through
// check_stack_config, for the stack_config it is given.  A config the runtime builds from
// validated options passes all but the last rule, which needs the guard and the slack the
// runtime adds; tests and benchmarks build configs of their own.
//
// Rejected: a stack_pool that trusts its config (the runtime's passes the options' checks),
// because tests build configs by hand, and a folded slot too small for its guard, slack and
// two stack_min gives its class a capacity no grown stack fits in (or one that wraps below
// zero); and the rules in the options table (runtime/sched) for the pool to call, because the
// pool lies below the scheduler and may not include it (tests/build/layering.py).
#pragma once

#include <bit>
#include <cstddef>

#include "weft/options.hpp"

namespace weft::detail {

// What the pool is configured from (resolved from weft::options by the runtime).
struct stack_config {
  std::size_t stack_min = 8 * 1024;        // power of two, >= page
  std::size_t stack_max = std::size_t{1} << 30;
  std::size_t reserve = 256 * 1024;        // 0 or a power of two
  guard_mode guard = guard_mode::automatic;  // resolved by the pool: never automatic after ctor
  std::size_t guard_bytes = 64 * 1024;     // the guard at a slot's bottom, and the band below lo
  // Room below a slot's capacity that only a fault grows into (the header says why): the
  // guard's size for copy and segmented, 0 for in_place (whose whole slot grows in place).
  std::size_t slack = 0;
  // Resident bytes the global pool may keep per class across a scan; release_idle gives back
  // the rest, and everything that sat unused since the previous scan.
  std::size_t pool_keep_bytes = 16 * 1024 * 1024;
  // WEFT_DEBUG: a flag per slot, set by alloc and cleared by free, makes a stack freed twice a
  // fatal error.  Off by default: flags of neighbouring slots share cache lines, which the Ps
  // then pull from each other on every spawn and exit (BENCHMARKS.md, "Architecture (issue 17)").
  bool check_frees = false;
};

// Slots of this many bytes or more are *folded* (stack_pool.hpp): the span one page-table
// page maps on x86_64 and aarch64 (4 KiB pages), 512 entries.
inline constexpr std::size_t kPageTableSpan = std::size_t{2} << 20;

namespace stack_rules {

// stack_min, stack_max and a reserve that is not 0: a power of two from a page to 1T.
inline constexpr std::size_t kSmallest = 4096;
inline constexpr std::size_t kLargest = std::size_t{1} << 40;
constexpr bool size_ok(std::size_t v) noexcept { return std::has_single_bit(v) && v >= kSmallest && v <= kLargest; }
inline constexpr char kSize[] = "a power of two from 4K to 1T";

// The reserve: 0 is pure copying (every stack has a slot of its own size, nothing grows in
// place).
constexpr bool reserve_ok(std::size_t v) noexcept { return v == 0 || size_ok(v); }
inline constexpr char kReserve[] = "0 (pure copying) or a power of two from 4K to 1T";

// stack_max: no stack could start at all below stack_min.
constexpr bool max_ok(std::size_t stack_max, std::size_t stack_min) noexcept { return stack_max >= stack_min; }
inline constexpr char kMaxAtLeastMin[] = "at least stack_min";

// A folded slot is the reserve itself: it must hold its guard, its slack and a stack that can
// grow once (page-rounded sizes, as the pool uses them).
constexpr bool folded_fits(std::size_t reserve, std::size_t guard_bytes, std::size_t slack,
                           std::size_t stack_min) noexcept {
  return reserve < kPageTableSpan || reserve >= guard_bytes + slack + 2 * stack_min;
}
inline constexpr char kFoldedFits[] = "at least the guard, the slack and two stack_min";

}  // namespace stack_rules

// Throws config_error, naming the field, its WEFT_* variable, the value and what is allowed,
// for the first rule above that `c` breaks on a system with pages of `page` bytes.
void check_stack_config(const stack_config& c, std::size_t page);

}  // namespace weft::detail
