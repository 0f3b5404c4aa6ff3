// SPDX-License-Identifier: Apache-2.0
// test_util.hpp — child processes for the kmodel validation tests: exec a probe under a given
// RLIMIT_STACK, or run a lambda in a fork, capturing stdout, with a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/kmodel/child.hpp"
#include "weft/kmodel/facts.hpp"

namespace kmtest {

struct run_result {
  int status = -1;  // exit status, or 128 + signal
  std::string out;
};

// Forks; in the child, stdout goes to a pipe and child() runs; its return value is the exit
// status.  Kills the child at the deadline (status then reports SIGKILL).  The running is
// weft_kmodel's (runtime/kmodel/child.hpp); throws weft::resource_error if it cannot fork.
inline run_result in_child(const std::function<int()>& child, int deadline_s = 20) {
  auto body = [](void* ctx, int fd) -> int {
    if (::dup2(fd, 1) < 0) return 125;
    int status = 3;
    try {
      status = (*static_cast<const std::function<int()>*>(ctx))();
    } catch (...) {
    }
    std::fflush(stdout);
    return status;
  };
  const weft::kmodel::detail::child_result c = weft::kmodel::detail::run_in_fork(
      "test", std::chrono::seconds(deadline_s), body, const_cast<std::function<int()>*>(&child));
  run_result r;
  r.out = c.out;
  r.status = WIFEXITED(c.status) ? WEXITSTATUS(c.status) : 128 + WTERMSIG(c.status);
  return r;
}

// Runs `path args...` with RLIMIT_STACK set to `limit` (nullopt: unlimited) before the exec and
// an environment of one variable.  Returns status 120 if setrlimit refused.  Address-space
// randomisation is turned off for the exec: the kernel's random stack offset (up to 8 KiB)
// would otherwise leave a process under a 12 KiB limit no room to start about half the time.
inline run_result exec_with_rlimit_stack(const std::string& path, const std::vector<std::string>& args,
                                         weft::kmodel::rlimit_value limit) {
  return in_child([&] {
    ::personality(ADDR_NO_RANDOMIZE);  // best effort: only tiny limits need it
    rlimit rl{};
    ::getrlimit(RLIMIT_STACK, &rl);
    rl.rlim_cur = limit ? static_cast<rlim_t>(*limit) : RLIM_INFINITY;
    if (::setrlimit(RLIMIT_STACK, &rl) != 0) return 120;
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(path.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    char env0[] = "WEFT_KMODEL_PROBE=1";
    char* envp[] = {env0, nullptr};
    ::execve(path.c_str(), argv.data(), envp);
    return 121;
  });
}

// Runs `path args...` with this process's environment under RLIMIT_STACK `limit` (soft only),
// with address-space randomisation on or off; stdout and stderr are captured together.
// Status 120: setrlimit refused; 122: personality refused.
inline run_result exec_under_stack_limit(const std::string& path, const std::vector<std::string>& args,
                                         std::size_t limit, bool randomise, int deadline_s = 60) {
  return in_child(
      [&] {
        if (!randomise && ::personality(ADDR_NO_RANDOMIZE) == -1) return 122;
        rlimit rl{};
        if (::getrlimit(RLIMIT_STACK, &rl) != 0) return 120;
        rl.rlim_cur = static_cast<rlim_t>(limit);
        if (::setrlimit(RLIMIT_STACK, &rl) != 0) return 120;
        ::dup2(1, 2);
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(path.c_str()));
        for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execve(path.c_str(), argv.data(), environ);
        return 121;
      },
      deadline_s);
}

// Why RLIMIT_STACK cannot be set to `limit` in a child of this process (it is above the hard
// limit; the tests never raise a hard limit, not even as root), or an empty string when it can.
inline std::string rlimit_stack_unsettable(weft::kmodel::rlimit_value limit) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_STACK, &rl) != 0) return "getrlimit(RLIMIT_STACK) failed";
  if (rl.rlim_max == RLIM_INFINITY) return "";
  if (!limit || *limit > rl.rlim_max)
    return "RLIMIT_STACK " + weft::kmodel::size_text(limit) + " is above this process's hard limit " +
           weft::kmodel::size_text(static_cast<std::uint64_t>(rl.rlim_max)) + " (ulimit -Hs)";
  return "";
}

inline std::map<std::string, std::string> parse_kv(const std::string& text) {
  std::map<std::string, std::string> m;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    std::size_t eq = line.find('=');
    if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
    pos = eol + 1;
  }
  return m;
}

inline std::uint64_t num(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) throw std::runtime_error("probe output lacks " + key);
  return std::strtoull(it->second.c_str(), nullptr, 10);
}

}  // namespace kmtest

// ThreadSanitizer's runtime brings ~790 KiB of static TLS and a background thread of its own:
// glibc then sizes every thread stack differently and the process's mappings drift, so the
// tests that compare the model with glibc's real stacks (or count this process's mappings)
// cannot run under it.  They run in the normal and AddressSanitizer builds.
#if defined(WEFT_SANITIZE_THREAD)
#define WEFT_SKIP_UNDER_TSAN() GTEST_SKIP() << "ThreadSanitizer's static TLS and mappings change what glibc does"
#else
#define WEFT_SKIP_UNDER_TSAN() (void)0
#endif
