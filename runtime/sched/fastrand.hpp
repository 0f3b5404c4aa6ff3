// SPDX-License-Identifier: Apache-2.0
// fastrand.hpp — the runtime's one cheap random generator (Go's fastrand, runtime/stubs.go):
// xorshift64* on a state the caller keeps (a scheduler loop's local, a thread's), and Lemire's
// multiply-shift to map it onto [0, bound) without a division.  For choosing a steal victim or
// a select case, not for anything that needs unpredictability.
#pragma once

#include <cstdint>

namespace weft::detail {

// The next 32 random bits; `state` must not be 0 (seed it with something odd).
inline std::uint32_t fastrand(std::uint64_t& state) noexcept {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return static_cast<std::uint32_t>((state * 0x2545F4914F6CDD1Dull) >> 32);
}

// Uniform-enough in [0, bound).
inline std::uint32_t fastrand_n(std::uint64_t& state, std::uint32_t bound) noexcept {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(fastrand(state)) * bound) >> 32);
}

}  // namespace weft::detail
