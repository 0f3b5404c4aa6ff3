// SPDX-License-Identifier: Apache-2.0
// stack_config.cpp — check_stack_config: stack_config.hpp's rules applied to one config.
#include "runtime/stack/stack_config.hpp"

#include <algorithm>
#include <cstdio>

#include "weft/errors.hpp"

namespace weft::detail {
namespace {

[[noreturn]] void bad_config(const char* field, const char* var, std::size_t value, const char* allowed) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "weft: stack pool: %s (%s) = %zu is not allowed; allowed: %s", field, var, value,
                allowed);
  throw config_error(buf);
}

}  // namespace

void check_stack_config(const stack_config& c, std::size_t page) {
  using namespace stack_rules;
  if (!size_ok(c.stack_min)) bad_config("stack_min", "WEFT_STACK_MIN", c.stack_min, kSize);
  const std::size_t stack_min = std::max(c.stack_min, page);  // as the pool rounds them
  if (!size_ok(c.stack_max)) bad_config("stack_max", "WEFT_STACK_MAX", c.stack_max, kSize);
  if (!max_ok(c.stack_max, stack_min)) bad_config("stack_max", "WEFT_STACK_MAX", c.stack_max, kMaxAtLeastMin);
  if (!reserve_ok(c.reserve)) bad_config("stack_reserve", "WEFT_STACK_RESERVE", c.reserve, kReserve);
  const auto pages = [page](std::size_t n) { return (n + page - 1) / page * page; };
  if (!folded_fits(c.reserve, pages(c.guard_bytes), pages(c.slack), stack_min))
    bad_config("stack_reserve", "WEFT_STACK_RESERVE", c.reserve, kFoldedFits);
}

}  // namespace weft::detail
