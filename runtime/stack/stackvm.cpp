// SPDX-License-Identifier: Apache-2.0
#include "runtime/stack/stackvm.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/diag/proc.hpp"
#include "weft/errors.hpp"

namespace weft::detail::stackvm {
namespace {

constexpr const char* kMapCountAdvice =
    "with WEFT_GUARD=mprotect every stack costs two mappings, so ENOMEM here usually means the "
    "process reached vm.max_map_count: raise it (sysctl vm.max_map_count=262144), use a kernel "
    "with MADV_GUARD_INSTALL (Linux 6.13+) and WEFT_GUARD=madvise or automatic, or "
    "WEFT_GUARD=none";

int sys_madvise(std::uintptr_t addr, std::size_t len, int advice) noexcept {
  for (;;) {
    // MADV_GUARD_INSTALL can return EAGAIN when it races a page fault on the range; retrying
    // is what the kernel documentation asks for.
    int rc = ::madvise(reinterpret_cast<void*>(addr), len, advice);
    if (rc == 0 || (errno != EAGAIN && errno != EINTR)) return rc;
  }
}

std::size_t read_number(const char* path) noexcept {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return std::strtoull(buf, nullptr, 10);
}

}  // namespace

std::size_t page_size() noexcept {
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

const char* mode_name(guard_mode mode) noexcept {
  switch (mode) {
    case guard_mode::automatic: return "automatic";
    case guard_mode::madvise: return "madvise";
    case guard_mode::mprotect: return "mprotect";
    case guard_mode::none: return "none";
  }
  return "?";
}

bool guard_install_works(int* err) noexcept {
  const std::size_t len = 2 * page_size();
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    *err = errno;
    return false;
  }
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  bool ok = sys_madvise(a, page_size(), kMadvGuardInstall) == 0;
  if (!ok) *err = errno;
  if (ok && sys_madvise(a, page_size(), kMadvGuardRemove) != 0) {
    *err = errno;
    ok = false;
  }
  ::munmap(p, len);
  return ok;
}

void* map_arena(std::size_t bytes, bool accessible, int* err) noexcept {
  void* p = ::mmap(nullptr, bytes, accessible ? PROT_READ | PROT_WRITE : PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    *err = errno;
    return nullptr;
  }
  return p;
}

void unmap(void* addr, std::size_t bytes) noexcept {
  // Only the pool's destructor unmaps, and munmap of a whole mapping we made cannot
  // meaningfully fail; there is nobody to report to from a destructor.
  (void)::munmap(addr, bytes);
}

void* trim_arena(void* mapped, std::size_t bytes, std::size_t align, std::size_t offset) {
  const auto at = reinterpret_cast<std::uintptr_t>(mapped);
  const std::uintptr_t base = at + (offset + align - at % align) % align;
  const std::size_t head = base - at, tail = align - head;
  if ((head && ::munmap(mapped, head) != 0) ||
      (tail && ::munmap(reinterpret_cast<void*>(base + bytes), tail) != 0)) {
    const int err = errno;
    ::munmap(mapped, bytes + align);  // whatever is left of it (unmapping a hole is no error)
    throw_call_failed("munmap of an arena's alignment slack", at, bytes + align, err,
                      "this should not fail on a range weft mapped; report it");
  }
  return reinterpret_cast<void*>(base);
}

void no_huge_pages(std::uintptr_t addr, std::size_t len) {
  if (len == 0) return;
  if (sys_madvise(addr, len, MADV_NOHUGEPAGE) != 0 && errno != EINVAL)
    throw_call_failed("madvise(MADV_NOHUGEPAGE)", addr, len, errno,
                      "the kernel could not split the mapping: free memory, or raise vm.max_map_count");
}

void open_range(guard_mode mode, std::uintptr_t addr, std::size_t len) {
  if (len == 0) return;
  switch (mode) {
    case guard_mode::madvise:
      if (sys_madvise(addr, len, kMadvGuardRemove) != 0)
        throw_call_failed("madvise(MADV_GUARD_REMOVE)", addr, len, errno,
                          "this should not fail on a range weft mapped; report it");
      return;
    case guard_mode::mprotect:
      if (::mprotect(reinterpret_cast<void*>(addr), len, PROT_READ | PROT_WRITE) != 0)
        throw_call_failed("mprotect(PROT_READ|PROT_WRITE)", addr, len, errno, kMapCountAdvice);
      return;
    case guard_mode::none:
    case guard_mode::automatic:
      return;
  }
}

void close_range(guard_mode mode, std::uintptr_t addr, std::size_t len) {
  if (len == 0) return;
  switch (mode) {
    case guard_mode::madvise:
      if (sys_madvise(addr, len, kMadvGuardInstall) != 0)
        throw_call_failed("madvise(MADV_GUARD_INSTALL)", addr, len, errno,
                          "the kernel could not allocate page tables for the guard markers: free "
                          "memory, or use WEFT_GUARD=mprotect");
      return;
    case guard_mode::mprotect:
      discard(addr, len);
      if (::mprotect(reinterpret_cast<void*>(addr), len, PROT_NONE) != 0)
        throw_call_failed("mprotect(PROT_NONE)", addr, len, errno, kMapCountAdvice);
      return;
    case guard_mode::none:
    case guard_mode::automatic:
      discard(addr, len);
      return;
  }
}

void discard(std::uintptr_t addr, std::size_t len) {
  if (len == 0) return;
  if (sys_madvise(addr, len, MADV_DONTNEED) != 0)
    throw_call_failed("madvise(MADV_DONTNEED)", addr, len, errno,
                      "this should not fail on a range weft mapped; report it");
}

std::size_t max_map_count() noexcept { return read_number("/proc/sys/vm/max_map_count"); }

std::size_t count_mappings() noexcept {
  char buf[64 * 1024];
  return proc::count_maps(UINT64_MAX, buf, sizeof buf).lines;  // 0 if /proc is not there
}

void throw_call_failed(const char* call, std::uintptr_t addr, std::size_t len, int err, const char* advice) {
  char head[256];
  std::snprintf(head, sizeof head, "weft: stack pool: %s of %zu bytes at %#zx failed (%s); ", call, len,
                static_cast<std::size_t>(addr), std::strerror(err));
  throw weft::resource_error(std::error_code(err, std::generic_category()), std::string(head) + advice);
}

}  // namespace weft::detail::stackvm
