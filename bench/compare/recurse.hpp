// SPDX-License-Identifier: Apache-2.0
// recurse.hpp — the stack-growth workload's recursion: D frames of about 440 bytes each, in
// three builds of the same body.
//
//   recurse_checked  WEFT_STACK_CHECK at every frame (weft goroutines built without
//                    -fsplit-stack); on a thread without a goroutine the check never fires
//   recurse_plain    no check (pthreads, clone tasks: the kernel commits the stack on touch)
//   recurse_split    built with -fsplit-stack: the prologue checks the limit and calls
//                    __morestack (weft-segmented: an explicit check cannot link a segment)
//
// All three are task functions in the kernel model's sense (no TLS, no stack protector, no
// sanitizer), so a clone task may run them.  Each returns a value that depends on every frame,
// so the compiler can neither drop the frames nor turn the recursion into a loop.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft_compare {

unsigned recurse_checked(unsigned depth) noexcept;
unsigned recurse_plain(unsigned depth) noexcept;
// False when this build has no split-stack recursion (not x86_64); *why says so.
bool have_recurse_split(const char** why) noexcept;
unsigned recurse_split(unsigned depth) noexcept;

// The stack bytes one frame of each takes, measured on the calling thread (two calls from the
// same frame, one recursing one level deeper).
std::size_t frame_bytes_checked() noexcept;
std::size_t frame_bytes_plain() noexcept;
std::size_t frame_bytes_split() noexcept;

namespace detail {
// The address of the deepest frame's buffer, written at depth 0.
extern volatile std::uintptr_t deepest;
// The buffer size that makes a frame about 440 bytes (with the return address, saved
// registers and alignment): see frame_bytes_*.
inline constexpr std::size_t frame_buffer = 408;
}  // namespace detail

}  // namespace weft_compare
