// SPDX-License-Identifier: Apache-2.0
// stackvm.hpp — the system calls behind stack slots: mapping arenas, moving the boundary between
// a slot's accessible stack and its inaccessible guard/reserve, giving pages back, and counting
// the process's memory mappings against vm.max_map_count.
//
// Every call here checks its result.  A failure becomes weft::resource_error whose message
// names the call, the address range, errno's text and what to change; nothing is only
// asserted.  The functions touch no pool state, so the pool decides what to roll back.
#pragma once

#include <cstddef>
#include <cstdint>

#include "weft/options.hpp"

namespace weft::detail::stackvm {

// Linux 6.13+ (mm/madvise.c): guard markers live in page-table entries, so a guard splits no
// VMA.  Old libc headers lack the names; the values are the kernel ABI.
inline constexpr int kMadvGuardInstall = 102;
inline constexpr int kMadvGuardRemove = 103;

std::size_t page_size() noexcept;

// True if madvise(MADV_GUARD_INSTALL) works here, tried once on a scratch mapping.  *err gets
// errno of the failing call (EINVAL on kernels before 6.13).
bool guard_install_works(int* err) noexcept;

// Maps `bytes` of private anonymous MAP_NORESERVE address space, read-write or PROT_NONE.
// Returns nullptr and sets *err on failure (the caller may retry smaller).
void* map_arena(std::size_t bytes, bool accessible, int* err) noexcept;
void unmap(void* addr, std::size_t bytes) noexcept;
// `mapped` holds bytes + align bytes from map_arena: returns the address in it that is
// `offset` past an `align` boundary, and unmaps what lies before and after its `bytes`.  If
// munmap fails it unmaps all of `mapped` and throws resource_error.
void* trim_arena(void* mapped, std::size_t bytes, std::size_t align, std::size_t offset);
// madvise(MADV_NOHUGEPAGE): with transparent huge pages set to "always", one touched byte of a
// stack would otherwise commit 2 MiB.  A kernel without THP (EINVAL) needs nothing; any other
// failure throws resource_error.
void no_huge_pages(std::uintptr_t addr, std::size_t len);

// [addr, addr+len) becomes usable stack: MADV_GUARD_REMOVE (madvise), mprotect RW (mprotect),
// nothing (none).  No page is committed until touched.
void open_range(guard_mode mode, std::uintptr_t addr, std::size_t len);
// [addr, addr+len) faults on access again and holds no memory: MADV_GUARD_INSTALL, which
// zaps resident pages itself (measured on 6.18: mincore shows none left); MADV_DONTNEED then
// mprotect PROT_NONE; MADV_DONTNEED only (none).
void close_range(guard_mode mode, std::uintptr_t addr, std::size_t len);
// Gives the pages of an accessible range back; it stays accessible and reads as zeros.
void discard(std::uintptr_t addr, std::size_t len);

// /proc/sys/vm/max_map_count, or 0 if it cannot be read.
std::size_t max_map_count() noexcept;
// The number of this process's mappings (lines of /proc/self/maps), or 0 if unreadable.
std::size_t count_mappings() noexcept;

// Throws resource_error for a failed `call` on [addr, addr+len) with errno `err`; `advice`
// says what to change.
[[noreturn]] void throw_call_failed(const char* call, std::uintptr_t addr, std::size_t len, int err,
                                    const char* advice);

const char* mode_name(guard_mode mode) noexcept;

}  // namespace weft::detail::stackvm
