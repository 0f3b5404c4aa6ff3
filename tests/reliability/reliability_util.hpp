// SPDX-License-Identifier: Apache-2.0
// reliability_util.hpp — helpers for tests/reliability: reading this process's memory figures,
// and running a scenario in a fresh process.
//
// Most scenarios here change process-wide state that a test binary cannot reset: signal
// dispositions (weft installs its SIGSEGV/SIGBUS handler once per process and remembers the
// one before it), resource limits, the user id, the "said once" flag of a message.  They run
// as gtest death tests in the "threadsafe" style, which re-executes the test binary: the
// scenario starts in a process that has never run a runtime.  A scenario reports what went
// wrong on stderr and exits 0 only if everything held (`scenario_exit`), and bounds itself
// with alarm() so a deadlock ends as SIGALRM, not as a hung CI job.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace reltest {

#if defined(WEFT_SANITIZE_ADDRESS) || defined(WEFT_SANITIZE_THREAD)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// A numeric field of /proc/self/status: in KiB ("VmRSS", "VmSize") or a count ("Threads");
// 0 if absent.
inline std::uint64_t status_kib(const char* field) {
  int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[8192];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const std::size_t flen = std::strlen(field);
  for (char* line = buf; line && *line; line = std::strchr(line, '\n') ? std::strchr(line, '\n') + 1 : nullptr) {
    if (std::strncmp(line, field, flen) == 0 && line[flen] == ':') return std::strtoull(line + flen + 1, nullptr, 10);
  }
  return 0;
}

// Lines of /proc/self/maps: the process's mappings (VMAs).
inline std::size_t mapping_count() {
  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[65536];
  std::size_t lines = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) lines += buf[i] == '\n';
  }
  ::close(fd);
  return lines;
}

// How many of `addrs` lie inside a mapping of this process (/proc/self/maps).
template <class Addrs>
std::size_t count_mapped(const Addrs& addrs) {
  std::FILE* f = std::fopen("/proc/self/maps", "re");
  if (!f) return 0;
  std::size_t n = 0;
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
  unsigned long lo, hi;
  char line[512];
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "%lx-%lx", &lo, &hi) == 2) ranges.emplace_back(lo, hi);
  std::fclose(f);
  for (std::uintptr_t a : addrs)
    for (const auto& r : ranges)
      if (a >= r.first && a < r.second) {
        ++n;
        break;
      }
  return n;
}

// Failures collected inside a scenario (no gtest assertions there: it is another process).
struct failures {
  std::string text;
  void check(bool ok, const char* fmt, ...) __attribute__((format(printf, 3, 4))) {
    if (ok) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    text += "FAILED: ";
    text += buf;
    text += '\n';
  }
  bool ok() const { return text.empty(); }
};

// Ends a scenario: 0 if nothing failed, else 1 after printing the failures to stderr.
[[noreturn]] inline void scenario_exit(const failures& f) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (!f.ok()) {
    (void)!::write(2, f.text.data(), f.text.size());
    ::_exit(1);
  }
  ::_exit(0);
}

}  // namespace reltest
