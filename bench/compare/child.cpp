// SPDX-License-Identifier: Apache-2.0
// child.cpp — running a workload child with a deadline, and the child's half of the protocol.
#include "bench/compare/child.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/compare/measure.hpp"

extern char** environ;

namespace weft_compare {

namespace {

[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = trim(text.substr(start, nl - start));
    if (!line.empty()) out.push_back(line);
    start = nl + 1;
  }
  return out;
}

// The line of a failed child's stderr that says why: a weft fatal error or an uncaught
// exception if there is one, else the last thing it said.
std::string reason_from_stderr(const std::string& err) {
  std::vector<std::string> lines = lines_of(err);
  for (const std::string& l : lines)
    if (l.find("fatal error") != std::string::npos || l.find("terminate called") != std::string::npos ||
        l.find("what():") != std::string::npos)
      return l;
  return lines.empty() ? std::string() : lines.back();
}

void parse_stdout(const std::string& out, child_outcome& r) {
  for (const std::string& line : lines_of(out)) {
    std::size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    std::string key = line.substr(0, sp), rest = trim(line.substr(sp + 1));
    if (key == "note") {
      r.notes.push_back(rest);
    } else if (key == "stop") {
      r.stop = rest;
    } else if (key == "text") {
      std::size_t sp2 = rest.find(' ');
      if (sp2 != std::string::npos) r.texts[rest.substr(0, sp2)] = trim(rest.substr(sp2 + 1));
    } else {
      char* end = nullptr;
      errno = 0;
      double v = std::strtod(rest.c_str(), &end);
      if (errno == 0 && end != rest.c_str()) r.values[key] = v;
      else r.notes.push_back("unparsed result line: " + line);
    }
  }
}

void close_fd(int fd) {
  if (fd >= 0 && ::close(fd) != 0 && errno != EINTR) throw_errno("close");
}

}  // namespace

child_outcome run_child(const std::vector<std::string>& argv, std::chrono::seconds deadline,
                        const std::vector<std::string>& extra_env) {
  child_outcome r;
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw_errno("pipe2");
  if (::pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    close_fd(out[0]);
    close_fd(out[1]);
    errno = e;
    throw_errno("pipe2");
  }
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
  for (const std::string& e : extra_env) env_store.push_back(e);
  std::vector<char*> env;
  for (std::string& e : env_store) env.push_back(e.data());
  env.push_back(nullptr);

  const steady::time_point start = steady::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    close_fd(out[0]), close_fd(out[1]), close_fd(err[0]), close_fd(err[1]);
    errno = e;
    throw_errno("fork");
  }
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(out[1], 1) < 0 || ::dup2(err[1], 2) < 0) ::_exit(126);
    ::execve(args[0], args.data(), env.data());
    const char msg[] = "weft-compare: cannot exec the child program\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(127);
  }
  close_fd(out[1]);
  close_fd(err[1]);

  std::string text[2];
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  bool open[2] = {true, true};
  bool killed = false;
  const auto limit = start + deadline;
  while (open[0] || open[1]) {
    int timeout_ms = -1;
    if (!killed) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(limit - steady::now()).count();
      if (left <= 0) {
        if (::kill(pid, SIGKILL) != 0 && errno != ESRCH) throw_errno("kill");
        killed = true;
      } else {
        timeout_ms = static_cast<int>(left);
      }
    }
    for (int i = 0; i < 2; ++i) fds[i].fd = open[i] ? (i == 0 ? out[0] : err[0]) : -1;
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    for (int i = 0; i < 2; ++i) {
      if (!open[i] || fds[i].revents == 0) continue;
      char buf[8192];
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        throw_errno("read");
      }
      if (got == 0) {
        open[i] = false;
        continue;
      }
      text[i].append(buf, static_cast<std::size_t>(got));
      if (i == 1 && text[1].size() > (1 << 20)) text[1].erase(0, text[1].size() - (1 << 19));  // keep the tail
    }
  }
  close_fd(out[0]);
  close_fd(err[0]);
  // Both pipes are closed; the child may still be running (it closed them itself), so the
  // deadline still holds while it is reaped.
  int status = 0;
  for (;;) {
    pid_t got = ::waitpid(pid, &status, killed ? 0 : WNOHANG);
    if (got == pid) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_errno("waitpid");
    }
    if (steady::now() >= limit) {
      if (::kill(pid, SIGKILL) != 0 && errno != ESRCH) throw_errno("kill");
      killed = true;
    } else {
      ::usleep(5000);
    }
  }
  r.seconds = seconds_since(start);
  parse_stdout(text[0], r);
  std::string why = reason_from_stderr(text[1]);
  if (killed) {
    r.failure = "timed out after " + std::to_string(deadline.count()) + " s";
  } else if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    r.failure = std::string("killed by SIG") + (sigabbrev_np(sig) ? sigabbrev_np(sig) : std::to_string(sig).c_str());
    if (sig == SIGKILL) r.failure += " (out of memory?)";
    if (!why.empty()) r.failure += ": " + why;
  } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    r.exit_status = WEXITSTATUS(status);
    r.failure = why.empty() ? "exited with status " + std::to_string(WEXITSTATUS(status)) : why;
  } else {
    r.exit_status = 0;
    r.ok = true;
  }
  if (r.failure.size() > 400) r.failure = r.failure.substr(0, 397) + "...";
  return r;
}

params parse_params(const std::vector<std::string>& args) {
  params p;
  for (const std::string& a : args) {
    std::size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) throw std::invalid_argument("expected key=value, got '" + a + "'");
    p[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return p;
}

std::uint64_t param_u64(const params& p, const std::string& key, std::uint64_t def) {
  auto it = p.find(key);
  if (it == p.end()) return def;
  const std::string& v = it->second;
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || errno != 0 || *end != '\0')
    throw std::invalid_argument("bad " + key + "=" + v + ": expected a non-negative integer");
  return n;
}

void emit(const char* metric, double value) {
  std::printf("%s %.9g\n", metric, value);
  std::fflush(stdout);
}

void emit_note(const std::string& text) {
  std::printf("note %s\n", text.c_str());
  std::fflush(stdout);
}

void emit_text(const std::string& key, const std::string& text) {
  std::printf("text %s %s\n", key.c_str(), text.c_str());
  std::fflush(stdout);
}

void emit_stop(const std::string& text) {
  std::printf("stop %s\n", text.c_str());
  std::fflush(stdout);
}

}  // namespace weft_compare
