// SPDX-License-Identifier: Apache-2.0
// Out of memory (issue 20): under an address-space limit (RLIMIT_AS, `ulimit -v`) a weft
// program either recovers — go/spawn throw weft::resource_error or std::bad_alloc, which the
// program catches, and the runtime carries on — or ends with a named fatal error and status
// 2.  Never an abort, a signal, or a silent exit.  Each run is a forked child with the limit
// set, repeated, because where memory runs out differs from run to run (threads, malloc's
// arenas, stack arenas, sysmon's pacing).  Also: linking weft leaves the program's own
// operator new alone (it throws std::bad_alloc when memory runs out, as without weft).
// Not under sanitizers (label no-sanitizer, as limits_test.cpp): their shadow memory needs
// terabytes of address space.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/reliability/reliability_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;

#if defined(WEFT_TEST_ALLOCATOR_MIMALLOC)
constexpr bool kMimalloc = true;
#else
constexpr bool kMimalloc = false;
#endif

#define SKIP_UNDER_SANITIZERS()                                                                          \
  do {                                                                                                   \
    if (reltest::kSanitized) GTEST_SKIP() << "sanitizer runtimes need terabytes of shadow address space"; \
    if (kMimalloc)                                                                                       \
      GTEST_SKIP() << "built with WEFT_ALLOCATOR=mimalloc, which replaces malloc for the whole process "  \
                      "and aborts when memory runs out (README, Build options)";                        \
  } while (0)

struct outcome {
  int status = 0;     // waitpid's
  std::string err;    // what the child wrote to stderr
};

// Runs fn in a forked child whose address space is limited to `kib` KiB; fn's return value
// is the child's exit status.  The child bounds itself with alarm().
template <class Fn>
outcome in_child_with_limit(std::uint64_t kib, Fn fn) {
  int p[2];
  if (::pipe(p) != 0) return {-1, "pipe failed"};
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return {-1, "fork failed"};
  if (pid == 0) {
    ::close(p[0]);
    ::dup2(p[1], 2);
    ::alarm(60);
    rlimit r{kib * 1024, kib * 1024};
    if (::setrlimit(RLIMIT_AS, &r) != 0) ::_exit(97);
    int rc;
    try {
      rc = fn();
    } catch (const std::exception& e) {  // the child must never return into the test runner
      std::fprintf(stderr, "an exception escaped the program: %s\n", e.what());
      rc = 98;
    } catch (...) {
      rc = 99;
    }
    std::fflush(nullptr);
    ::_exit(rc);
  }
  ::close(p[1]);
  outcome o;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n > 0) {
      if (o.err.size() < 65536) o.err.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(p[0]);
  while (::waitpid(pid, &o.status, 0) < 0 && errno == EINTR) {
  }
  return o;
}

// A run ended well: 0 (it recovered), or 2 with weft's fatal error on stderr.
std::string judge(const outcome& o) {
  const std::string first = o.err.substr(0, o.err.find('\n'));
  if (WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0) return "";
  if (WIFEXITED(o.status) && WEXITSTATUS(o.status) == 2 && o.err.rfind("weft: fatal error: ", 0) == 0) return "";
  char what[128];
  if (WIFSIGNALED(o.status)) std::snprintf(what, sizeof what, "killed by signal %d", WTERMSIG(o.status));
  else std::snprintf(what, sizeof what, "exit status %d", WEXITSTATUS(o.status));
  return std::string(what) + ", stderr: " + (o.err.empty() ? "(nothing)" : o.err.substr(0, 600));
}

__attribute__((noinline)) long recurse(int n) {
  WEFT_STACK_CHECK(1024);
  volatile char frame[400];
  frame[n % 400] = static_cast<char>(n);
  return (n > 0 ? recurse(n - 1) : 0) + frame[n % 400];
}

// Starts a runtime and does a little of everything, recovering where weft lets a program
// recover: a spawn that cannot have a stack or memory is skipped.
int small_program() {
  return weft::run([] {
    std::vector<weft::task<long>> ts;
    for (int i = 0; i < 200; ++i) {
      try {
        ts.push_back(weft::spawn([i] { return recurse(i % 64); }));
      } catch (const weft::resource_error&) {
      } catch (const std::bad_alloc&) {
      }
    }
    for (auto& t : ts) (void)t.join();
    weft::chan<int> c(4);
    try {
      weft::go([c]() mutable {
        for (int i = 0; i < 100; ++i) c.send(i);
        c.close();
      });
    } catch (const weft::resource_error&) {
      return 0;  // no stack for it: recovered
    } catch (const std::bad_alloc&) {
      return 0;
    }
    long sum = 0;
    for (int v : c) sum += v;
    return sum == 4950 ? 0 : 1;
  });
}

TEST(OutOfMemory, StartingUnderSmallAddressSpaceLimitsRecoversOrIsANamedExit2) {
  SKIP_UNDER_SANITIZERS();
  for (std::uint64_t kib : {20'000u, 40'000u, 60'000u, 100'000u}) {
    for (int run = 0; run < 20; ++run) {
      outcome o = in_child_with_limit(kib, small_program);
      std::string bad = judge(o);
      ASSERT_EQ(bad, "") << "ulimit -v " << kib << ", run " << run;
    }
  }
}

// Spawning in waves until memory runs out, over and over, with the scan and sysmon's memory
// release running often (WEFT_SCAN_MS-like 5 ms): the path the issue found aborting.
int churn_program() {
  weft::options o;
  o.scan_interval = 5ms;
  return weft::run(
      [] {
        const auto end = std::chrono::steady_clock::now() + 600ms;
        long made = 0;
        while (std::chrono::steady_clock::now() < end) {
          weft::chan<int> gate;
          weft::wait_group wg;
          for (int i = 0; i < 3000; ++i) {
            try {
              wg.add(1);
              weft::go([gate, &wg, i]() mutable {
                std::vector<char> heap(static_cast<std::size_t>(4096 + (i % 7) * 1024));
                heap[0] = static_cast<char>(recurse(i % 32));
                (void)gate.recv();
                wg.done();
              });
              ++made;
            } catch (const weft::resource_error&) {  // out of stacks: this wave is done
              wg.done();
              break;
            } catch (const std::bad_alloc&) {
              wg.done();
              break;
            }
          }
          gate.close();
          wg.wait();
        }
        return made > 0 ? 0 : 4;
      },
      o);
}

TEST(OutOfMemory, ASpawnChurnAtTheLimitRecoversOrIsANamedExit2) {
  SKIP_UNDER_SANITIZERS();
  for (int run = 0; run < 20; ++run) {
    outcome o = in_child_with_limit(1'000'000, churn_program);
    std::string bad = judge(o);
    ASSERT_EQ(bad, "") << "ulimit -v 1000000, run " << run;
  }
}

// The program's own operator new, with weft linked, fails the standard way.  (Debian's
// mimalloc, when it was weft's allocator, replaced malloc and new for the whole process and
// aborted instead.)
int own_new_program() {
  (void)weft::default_stack_min();  // weft is linked and used
  std::vector<char*> held;
  try {
    for (;;) held.push_back(new char[1 << 20]);
  } catch (const std::bad_alloc&) {
    for (char* p : held) delete[] p;
    return held.size() > 0 ? 0 : 3;
  }
}

TEST(OutOfMemory, TheProgramsOwnNewStillThrowsBadAllocWithWeftLinked) {
  SKIP_UNDER_SANITIZERS();
  outcome o = in_child_with_limit(200'000, own_new_program);
  ASSERT_TRUE(WIFEXITED(o.status)) << "killed by signal " << WTERMSIG(o.status) << ": " << o.err;
  EXPECT_EQ(WEXITSTATUS(o.status), 0) << o.err;
}

}  // namespace
