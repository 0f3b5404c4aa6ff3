// SPDX-License-Identifier: Apache-2.0
// child.cpp — one child process with a deadline: fork, exec or call, read, kill, reap.
#include "runtime/kmodel/child.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace weft::kmodel::detail {

namespace {

using clock = std::chrono::steady_clock;

// How long the pipes are still read after a kill: a grandchild may hold them open.
constexpr std::chrono::seconds after_kill{1};
// A program's stderr is kept up to 1 MiB; past that, its last 512 KiB (where the reason is).
constexpr std::size_t err_max = std::size_t{1} << 20, err_keep = std::size_t{1} << 19;

[[noreturn]] void fail(int err, const char* call, const char* what) {
  throw_errno(err, std::string(call) + " for the " + what + " child");
}

// The descriptors of one run: [0] stdout or report read end, [1] its write end, [2] and [3]
// stderr's (a program only).  Whatever is still open goes with it (in the parent: the child
// _exits without running destructors).
struct pipes {
  int fd[4] = {-1, -1, -1, -1};
  pipes() = default;
  pipes(const pipes&) = delete;
  pipes& operator=(const pipes&) = delete;
  ~pipes() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  void open(int at, const char* what) {
    if (::pipe2(fd + at, O_CLOEXEC) != 0) fail(errno, "pipe2", what);
  }
  void close(int at, const char* what) {
    const int f = std::exchange(fd[at], -1);
    if (f >= 0 && ::close(f) != 0 && errno != EINTR) fail(errno, "close", what);
  }
};

// A program's argv and environment as execve takes them, built before fork, and the line its
// child writes when execve fails (the errno is appended there, without allocating).
struct image {
  std::vector<char*> argv, envp;
  std::string exec_failed;
};

// The child's side for a program: /dev/null, the pipes, execve.  Async-signal-safe calls only.
[[noreturn]] void exec_child(const image& im, int out, int err) noexcept {
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(126);
  ::execve(im.argv[0], im.argv.data(), im.envp.data());
  char digits[16];
  char* p = digits + sizeof digits;
  *--p = '\n';
  *--p = ')';
  unsigned e = errno > 0 ? static_cast<unsigned>(errno) : 0;
  do {
    *--p = static_cast<char>('0' + e % 10);
    e /= 10;
  } while (e != 0 && p > digits);
  ssize_t ignored = ::write(2, im.exec_failed.data(), im.exec_failed.size());
  ignored = ::write(2, p, static_cast<std::size_t>(digits + sizeof digits - p));
  (void)ignored;
  ::_exit(127);
}

int ms_until(clock::time_point t) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(t - clock::now()).count();
  return left <= 0 ? 0 : left > 1 << 30 ? 1 << 30 : static_cast<int>(left);
}

// The parent's side, shared by both forms: read until EOF or the deadline, kill, reap.
class parent {
 public:
  parent(const char* what, pid_t pid, clock::time_point start, std::chrono::seconds deadline)
      : what_(what), pid_(pid), start_(start), limit_(start + deadline) {}
  parent(const parent&) = delete;
  parent& operator=(const parent&) = delete;
  // A run cut short by a throw still ends its child: killed and reaped.
  ~parent() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }

  // Reads fds (stdout or the report, then stderr if any; -1: none) into r until each is at
  // EOF, or until the deadline kills the child and a second more has passed.
  void read(pipes& p, int out_at, int err_at, child_result& r) {
    std::string* text[2] = {&r.out, &r.err};
    const int at[2] = {out_at, err_at};
    bool open[2] = {out_at >= 0, err_at >= 0};
    clock::time_point give_up = clock::time_point::max();
    while (open[0] || open[1]) {
      if (!r.killed && clock::now() >= limit_) {
        kill(r);
        give_up = clock::now() + after_kill;
      }
      if (r.killed && clock::now() >= give_up) break;
      pollfd fds[2];
      for (int i = 0; i < 2; ++i) fds[i] = {open[i] ? p.fd[at[i]] : -1, POLLIN, 0};
      const int n = ::poll(fds, 2, ms_until(r.killed ? give_up : limit_));
      if (n < 0) {
        if (errno == EINTR) continue;
        fail(errno, "poll", what_);
      }
      for (int i = 0; i < 2; ++i) {
        if (!open[i] || fds[i].revents == 0) continue;
        char buf[8192];
        const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
        if (got < 0) {
          if (errno == EINTR || errno == EAGAIN) continue;
          fail(errno, "read", what_);
        }
        if (got == 0) {
          open[i] = false;
          continue;
        }
        text[i]->append(buf, static_cast<std::size_t>(got));
        if (i == 1 && r.err.size() > err_max) r.err.erase(0, r.err.size() - err_keep);
      }
    }
    if (out_at >= 0) p.close(out_at, what_);
    if (err_at >= 0) p.close(err_at, what_);
  }

  // Waits for the child, killing it if the deadline passes first.
  void reap(child_result& r) {
    for (;;) {
      const pid_t got = ::waitpid(pid_, &r.status, r.killed ? 0 : WNOHANG);
      if (got == pid_) break;
      if (got < 0) {
        if (errno == EINTR) continue;
        fail(errno, "waitpid", what_);
      }
      if (clock::now() >= limit_) kill(r);
      else ::usleep(5000);
    }
    pid_ = -1;
    r.took = clock::now() - start_;
  }

 private:
  void kill(child_result& r) {
    if (::kill(pid_, SIGKILL) != 0 && errno != ESRCH) fail(errno, "kill", what_);
    r.killed = true;
  }

  const char* what_;
  pid_t pid_;
  clock::time_point start_, limit_;
};

pid_t fork_or_throw(const char* what) {
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno(errno, std::string("fork for the ") + what + " child (out of processes or memory)");
  return pid;
}

}  // namespace

child_result run_program(const char* what, const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         std::chrono::seconds deadline) {
  if (argv.empty()) throw_errno(EINVAL, std::string("no program to run for the ") + what + " child");
  image im;
  for (const std::string& a : argv) im.argv.push_back(const_cast<char*>(a.c_str()));
  im.argv.push_back(nullptr);
  for (const std::string& e : env) im.envp.push_back(const_cast<char*>(e.c_str()));
  im.envp.push_back(nullptr);
  im.exec_failed = std::string("weft: cannot exec the ") + what + " child " + argv[0] + " (execve: errno ";
  pipes p;
  p.open(0, what);
  p.open(2, what);
  const clock::time_point start = clock::now();
  const pid_t pid = fork_or_throw(what);
  if (pid == 0) exec_child(im, p.fd[1], p.fd[3]);
  parent child(what, pid, start, deadline);
  child_result r;
  p.close(1, what);
  p.close(3, what);
  child.read(p, 0, 2, r);
  child.reap(r);
  return r;
}

child_result run_in_fork(const char* what, std::chrono::seconds deadline, int (*body)(void* ctx, int fd), void* ctx) {
  pipes p;
  p.open(0, what);
  const clock::time_point start = clock::now();
  const pid_t pid = fork_or_throw(what);
  if (pid == 0) {
    ::close(p.fd[0]);
    int status = 3;
    try {
      status = body(ctx, p.fd[1]);
    } catch (...) {  // run_function's body reports its exceptions; nothing may unwind into the parent's code
    }
    ::close(p.fd[1]);
    ::_exit(status);
  }
  parent child(what, pid, start, deadline);
  child_result r;
  p.close(1, what);
  child.read(p, 0, -1, r);
  child.reap(r);
  return r;
}

std::string report_or_throw(const char* what, std::chrono::seconds deadline, const child_result& r) {
  const std::string child = std::string("the ") + what + " child";
  if (r.killed)
    throw_errno(ETIMEDOUT, child + " missed its deadline of " + std::to_string(deadline.count()) +
                               " s and was killed; it had reported: " + r.out);
  if (WIFSIGNALED(r.status))
    throw_errno(ECHILD, child + " died from signal " + std::to_string(WTERMSIG(r.status)) + " (" +
                            ::strsignal(WTERMSIG(r.status)) + "); it had reported: " + r.out);
  if (WEXITSTATUS(r.status) != 0)
    throw_errno(ECHILD, child + " exited with status " + std::to_string(WEXITSTATUS(r.status)) + ": " + r.out);
  return r.out;
}

}  // namespace weft::kmodel::detail
