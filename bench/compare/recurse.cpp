// SPDX-License-Identifier: Apache-2.0
// recurse.cpp — recursion with explicit checks, and without.
#include "bench/compare/recurse.hpp"

#include "weft/kmodel/clone.hpp"
#include "weft/stack.hpp"

namespace weft_compare {

namespace detail {
volatile std::uintptr_t deepest = 0;
}

// The check asks for a frame's worth and some: the runtime keeps its own headroom below the
// limit for the calls the check makes.
[[gnu::noinline]] WEFT_KMODEL_TASK_FN unsigned recurse_checked(unsigned depth) noexcept {
  WEFT_STACK_CHECK(512);
  volatile unsigned char buf[detail::frame_buffer];
  buf[depth % sizeof buf] = static_cast<unsigned char>(depth);
  if (depth == 0) {
    detail::deepest = reinterpret_cast<std::uintptr_t>(&buf[0]);
    return buf[0];
  }
  return recurse_checked(depth - 1) ^ buf[(depth * 7) % sizeof buf];
}

[[gnu::noinline]] WEFT_KMODEL_TASK_FN unsigned recurse_plain(unsigned depth) noexcept {
  volatile unsigned char buf[detail::frame_buffer];
  buf[depth % sizeof buf] = static_cast<unsigned char>(depth);
  if (depth == 0) {
    detail::deepest = reinterpret_cast<std::uintptr_t>(&buf[0]);
    return buf[0];
  }
  return recurse_plain(depth - 1) ^ buf[(depth * 7) % sizeof buf];
}

namespace {
template <unsigned (*F)(unsigned) noexcept>
[[gnu::noinline]] std::size_t frame_of() noexcept {
  F(0);
  std::uintptr_t top = detail::deepest;
  F(1);
  return top - detail::deepest;
}
}  // namespace

std::size_t frame_bytes_checked() noexcept { return frame_of<recurse_checked>(); }
std::size_t frame_bytes_plain() noexcept { return frame_of<recurse_plain>(); }
std::size_t frame_bytes_split() noexcept { return frame_of<recurse_split>(); }

}  // namespace weft_compare
