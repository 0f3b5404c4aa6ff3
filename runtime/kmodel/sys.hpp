// SPDX-License-Identifier: Apache-2.0
// sys.hpp — small system helpers shared by the kmodel files: checked file reads, the one way a
// failed call becomes a resource_error, and a forked child with a deadline.
#pragma once

#include <chrono>
#include <exception>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

namespace weft::kmodel::detail {

// Throws weft::resource_error for errno value `err`: "weft: kmodel: <what>: <strerror>".
[[noreturn]] void throw_errno(int err, const std::string& what);

// The whole file, or nullopt (errno kept) if it cannot be opened or read.
std::optional<std::string> read_file(const char* path);
// The whole file; throws resource_error naming the file if it cannot be read.
std::string read_file_or_throw(const char* path);
// The first unsigned number in the file; throws resource_error if absent.
std::uint64_t read_u64_or_throw(const char* path);
// The value of "Key:" in a /proc status-style text (in units as printed; "kB" dropped).
std::optional<std::uint64_t> status_field(std::string_view text, std::string_view key);

// Writes all of text to fd, retrying short writes and EINTR (for children's reports).
bool write_all(int fd, std::string_view text) noexcept;

// Whether madvise(MADV_GUARD_INSTALL) works on this kernel (Linux 6.13+), tried on a scratch map.
bool guard_install_works(std::size_t page) noexcept;

std::size_t round_up(std::size_t v, std::size_t to) noexcept;
std::size_t round_down(std::size_t v, std::size_t to) noexcept;

// A forked child that reports through a pipe.  run() forks and calls body(fd) in the child,
// which must write its report to fd and return the exit status (the child then _exits).
// collect() reads everything until EOF or the deadline (then the child is killed), reaps it and
// returns the report; throws resource_error if fork/pipe fail, the deadline passes or the child
// dies from a signal or exits non-zero (its report is then quoted in the message).
class child_process {
 public:
  template <class Body>
  static std::string run(const char* what, std::chrono::seconds deadline, Body&& body) {
    child_process c(what);
    if (c.pid_ == 0) {
      int status = 3;
      try {
        status = body(c.write_fd_);
      } catch (const std::exception& e) {
        write_all(c.write_fd_, std::string("error: ") + e.what() + "\n");
      } catch (...) {
        write_all(c.write_fd_, "error: unknown exception\n");
      }
      c.exit_child(status);
    }
    return c.collect(deadline);
  }

 private:
  explicit child_process(const char* what);
  [[noreturn]] void exit_child(int status) noexcept;
  std::string collect(std::chrono::seconds deadline);
  const char* what_;
  pid_t pid_ = -1;
  int read_fd_ = -1, write_fd_ = -1;
};

}  // namespace weft::kmodel::detail
