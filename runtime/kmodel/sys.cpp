// SPDX-License-Identifier: Apache-2.0
// sys.cpp — checked file reads for the kernel-model layer.
#include "runtime/kmodel/sys.hpp"

#include <cerrno>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include "weft/errors.hpp"

namespace weft::kmodel::detail {

void throw_errno(int err, const std::string& what) {
  throw resource_error(std::error_code(err, std::generic_category()), "weft: kmodel: " + what);
}

std::optional<std::string> read_file(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      errno = e;
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string read_file_or_throw(const char* path) {
  std::optional<std::string> s = read_file(path);
  if (!s) throw_errno(errno, std::string("reading ") + path);
  return std::move(*s);
}

std::uint64_t read_u64_or_throw(const char* path) {
  std::string s = read_file_or_throw(path);
  std::size_t i = s.find_first_of("0123456789");
  if (i == std::string::npos) throw_errno(EINVAL, std::string(path) + " holds no number");
  return std::stoull(s.substr(i));
}

std::optional<std::uint64_t> status_field(std::string_view text, std::string_view key) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      std::string_view rest = line.substr(key.size() + 1);
      std::size_t i = rest.find_first_of("0123456789");
      if (i == std::string_view::npos) return std::nullopt;
      std::uint64_t v = 0;
      for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; ++i) v = v * 10 + static_cast<unsigned>(rest[i] - '0');
      return v;
    }
    pos = eol + 1;
  }
  return std::nullopt;
}

std::size_t round_up(std::size_t v, std::size_t to) noexcept { return (v + to - 1) / to * to; }
std::size_t round_down(std::size_t v, std::size_t to) noexcept { return v / to * to; }

bool write_all(int fd, std::string_view text) noexcept {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace weft::kmodel::detail
