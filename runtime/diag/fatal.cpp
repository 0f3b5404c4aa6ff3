// SPDX-License-Identifier: Apache-2.0
#include "runtime/diag/fatal.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <unistd.h>

namespace weft::detail {
namespace {
std::atomic<dump_hook> g_dump_hook{nullptr};
std::atomic<bool> g_dying{false};
}  // namespace

void write_stderr(const char* text, unsigned long len) noexcept {
  while (len > 0) {
    ssize_t n = ::write(2, text, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report to
    }
    text += n;
    len -= static_cast<unsigned long>(n);
  }
}

void set_fatal_dump_hook(dump_hook hook) noexcept { g_dump_hook.store(hook, std::memory_order_release); }

void fatal(const char* fmt, ...) {
  // A second fatal error while reporting the first (another thread, or the dump itself
  // faulting) must not interleave or recurse: the first reporter finishes and exits.
  if (g_dying.exchange(true)) {
    for (;;) ::pause();
  }
  char buf[2048];
  int n = std::snprintf(buf, sizeof buf, "weft: fatal error: ");
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<unsigned>(n) - 1, fmt, ap);
  va_end(ap);
  std::size_t len = static_cast<std::size_t>(n) + (m < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(m), sizeof buf - static_cast<unsigned>(n) - 2));
  buf[len++] = '\n';
  write_stderr(buf, len);
  if (dump_hook hook = g_dump_hook.load(std::memory_order_acquire)) hook();
  ::_exit(2);
}

}  // namespace weft::detail
