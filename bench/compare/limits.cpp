// SPDX-License-Identifier: Apache-2.0
// limits.cpp — the capacity probe's prediction and post-mortem for kernel threads.
#include "bench/compare/limits.hpp"

#include <exception>

namespace weft_compare {

namespace km = weft::kmodel;

std::string with_commas(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

thread_limits::thread_limits(std::size_t stack_size, km::guard_style guards)
    : stack_size_(stack_size), guards_(guards), before_(km::estimate_capacity(km::take_snapshot(), stack_size, guards)) {}

std::string thread_limits::prediction() const {
  const km::capacity_row& b = before_.binding();
  return with_commas(b.threads) + " more threads: " + km::to_string(b.limit) + " (" + b.basis + ")";
}

std::string thread_limits::diagnose(std::uint64_t created) const noexcept {
  try {
    const km::capacity_estimate now = km::estimate_capacity(km::take_snapshot(), stack_size_, guards_);
    const km::capacity_row& spent = now.binding();
    std::string s = km::to_string(spent.limit);
    s += " (now " + with_commas(spent.threads) + " more allowed: " + spent.basis + "; estimated before the first: " +
         with_commas(before_.binding().threads) + " by " + km::to_string(before_.binding().limit) + ", created " +
         with_commas(created) + ")";
    return s;
  } catch (const std::exception& e) {
    return std::string("unknown (cannot read /proc: ") + e.what() + ")";
  }
}

}  // namespace weft_compare
