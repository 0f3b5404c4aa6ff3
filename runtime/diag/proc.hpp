// SPDX-License-Identifier: Apache-2.0
// proc.hpp — the one reader of /proc/self/maps's line count, for the stack pool's mapping
// budget (runtime/stack/stackvm.cpp, count_mappings) and the kernel model's VMA count
// (runtime/kmodel/procfs.cpp, count_vmas).
#pragma once

#include <cstddef>
#include <cstdint>

#include "weft/export.hpp"

namespace weft::detail::proc {

struct maps_count {
  std::size_t lines = 0;          // counted so far (all of them when failed is null)
  const char* failed = nullptr;   // "opening" or "reading" /proc/self/maps, with `error`
  int error = 0;                  // the errno of the call that failed
};

// Counts the lines of /proc/self/maps — the process's mappings — whose start address is below
// `below` (UINT64_MAX: every line; 1 << 63 leaves out the kernel's gate area, [vsyscall]).
// Streams the file through the caller's buffer and allocates nothing: callers run when memory
// or mappings have run out.
// Exported (WEFT_API) for the kernel model, a library of its own (weft::kmodel).
WEFT_API maps_count count_maps(std::uint64_t below, char* buf, std::size_t len) noexcept;

}  // namespace weft::detail::proc
