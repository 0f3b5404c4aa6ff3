// SPDX-License-Identifier: Apache-2.0
// proc.cpp — see proc.hpp.
#include "runtime/diag/proc.hpp"

#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

namespace weft::detail::proc {

maps_count count_maps(std::uint64_t below, char* buf, std::size_t len) noexcept {
  maps_count out;
  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    out.failed = "opening";
    out.error = errno;
    return out;
  }
  // Each line starts with its start address in hex.
  std::uint64_t start = 0;
  bool in_address = true;
  for (;;) {
    ssize_t r = ::read(fd, buf, len);
    if (r < 0) {
      if (errno == EINTR) continue;
      out.failed = "reading";
      out.error = errno;
      break;
    }
    if (r == 0) break;
    for (ssize_t i = 0; i < r; ++i) {
      const char c = buf[i];
      if (c == '\n') {
        if (start < below) ++out.lines;
        start = 0;
        in_address = true;
      } else if (in_address) {
        if (c >= '0' && c <= '9') start = start * 16 + static_cast<unsigned>(c - '0');
        else if (c >= 'a' && c <= 'f') start = start * 16 + static_cast<unsigned>(c - 'a' + 10);
        else in_address = false;
      }
    }
  }
  ::close(fd);
  return out;
}

}  // namespace weft::detail::proc
