// SPDX-License-Identifier: Apache-2.0
// recurse_split.cpp — the recursion with compiler prologue checks.  The build compiles this
// file alone with -fsplit-stack (x86_64; the program is linked with gold, which routes calls
// from here into code without checks through __morestack_non_split) and defines
// WEFT_COMPARE_SPLIT_STACK; elsewhere it is a stub that says why it is missing.
#include "bench/compare/recurse.hpp"

#include "weft/kmodel/clone.hpp"

namespace weft_compare {

#if defined(WEFT_COMPARE_SPLIT_STACK)

bool have_recurse_split(const char**) noexcept { return true; }

[[gnu::noinline]] WEFT_KMODEL_TASK_FN unsigned recurse_split(unsigned depth) noexcept {
  volatile unsigned char buf[detail::frame_buffer];
  buf[depth % sizeof buf] = static_cast<unsigned char>(depth);
  if (depth == 0) {
    detail::deepest = reinterpret_cast<std::uintptr_t>(&buf[0]);
    return buf[0];
  }
  return recurse_split(depth - 1) ^ buf[(depth * 7) % sizeof buf];
}

#else

bool have_recurse_split(const char** why) noexcept {
  if (why) *why = "this build has no -fsplit-stack recursion (x86_64 with gold only), and explicit checks cannot link a segment";
  return false;
}

unsigned recurse_split(unsigned depth) noexcept { return recurse_plain(depth); }

#endif

}  // namespace weft_compare
