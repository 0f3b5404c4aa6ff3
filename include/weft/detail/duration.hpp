// SPDX-License-Identifier: Apache-2.0
// weft/detail/duration.hpp — the one place a duration becomes saturated nanoseconds: every
// timeout and deadline in weft (select's on_timeout, condition_variable::wait_for, sleep_for,
// the runtime's futex deadlines) goes through these two helpers, so a huge duration
// (hours::max(), nanoseconds::max()) means "practically forever", never an overflow into the
// past.  Each caller keeps the cap it had and says why:
//   on_timeout      9e18 ns (~285 years) and beyond: no limit at all (INT64_MAX);
//   wait_for        4e18 ns (~126 years): the result is added to steady_clock::now();
//   sleep_for, deadline_after: now + d, saturated (add_saturated).
//
// Plain threads: pure arithmetic, safe anywhere.
#pragma once

#include <chrono>
#include <cstdint>

#include "weft/export.hpp"

namespace weft::detail {

// d rounded up to whole nanoseconds; 0 for d <= 0; `saturated` once d reaches `cap` (compared
// as a double, so any Rep and Period is safe).
template <class Rep, class Period>
constexpr std::int64_t ceil_ns_capped(const std::chrono::duration<Rep, Period>& d, std::int64_t cap,
                                      std::int64_t saturated) {
  if (d <= d.zero()) return 0;
  if (std::chrono::duration<double, std::nano>(d).count() >= static_cast<double>(cap)) return saturated;
  return static_cast<std::int64_t>(std::chrono::ceil<std::chrono::nanoseconds>(d).count());
}
template <class Rep, class Period>
constexpr std::int64_t ceil_ns_capped(const std::chrono::duration<Rep, Period>& d, std::int64_t cap) {
  return ceil_ns_capped(d, cap, cap);
}

// a + b for 0 <= a, b, or INT64_MAX when the sum reaches it (a deadline "now + d" that an
// int64 cannot hold).
constexpr std::int64_t add_saturated(std::int64_t a, std::int64_t b) noexcept {
  return b >= INT64_MAX - a ? INT64_MAX : a + b;
}

}  // namespace weft::detail
