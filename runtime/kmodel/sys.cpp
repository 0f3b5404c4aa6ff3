// SPDX-License-Identifier: Apache-2.0
// sys.cpp — checked file reads and forked children for the kernel-model layer.
#include "runtime/kmodel/sys.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
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

child_process::child_process(const char* what) : what_(what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno, std::string("pipe for the ") + what + " child");
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  pid_ = ::fork();
  if (pid_ < 0) {
    int e = errno;
    ::close(read_fd_);
    ::close(write_fd_);
    throw_errno(e, std::string("fork for the ") + what + " child (out of processes or memory)");
  }
  if (pid_ == 0) {
    ::close(read_fd_);
  } else {
    ::close(write_fd_);
    write_fd_ = -1;
  }
}

void child_process::exit_child(int status) noexcept {
  ::close(write_fd_);
  ::_exit(status);
}

std::string child_process::collect(std::chrono::seconds deadline) {
  using clock = std::chrono::steady_clock;
  const clock::time_point end = clock::now() + deadline;
  std::string report;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{read_fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (r == 0) {
      timed_out = true;
      break;
    }
    ssize_t n = ::read(read_fd_, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0) break;
    report.append(buf, static_cast<std::size_t>(n));
  }
  ::close(read_fd_);
  if (timed_out) ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) throw_errno(errno, std::string("waitpid for the ") + what_ + " child");
  }
  if (timed_out) {
    throw_errno(ETIMEDOUT, std::string("the ") + what_ + " child missed its deadline of " +
                               std::to_string(deadline.count()) + " s and was killed; it had reported: " + report);
  }
  if (WIFSIGNALED(status)) {
    throw_errno(ECHILD, std::string("the ") + what_ + " child died from signal " + std::to_string(WTERMSIG(status)) +
                            " (" + ::strsignal(WTERMSIG(status)) + "); it had reported: " + report);
  }
  if (WEXITSTATUS(status) != 0) {
    throw_errno(ECHILD, std::string("the ") + what_ + " child exited with status " +
                            std::to_string(WEXITSTATUS(status)) + ": " + report);
  }
  return report;
}

}  // namespace weft::kmodel::detail
