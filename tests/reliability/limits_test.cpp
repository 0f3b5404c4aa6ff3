// SPDX-License-Identifier: Apache-2.0
// Reliability (issue 9) under resource limits, each in a fresh process (a threadsafe death
// test) bounded by alarm():
//   - RLIMIT_AS: stacks run out; go/spawn throw weft::resource_error naming what ran out; the
//     goroutines already running keep running; when the pressure goes, spawning works again;
//     goroutine and stack-slot counts return to their baseline;
//   - RLIMIT_NPROC: new Ms cannot be started; the runtime finishes its work on the Ms it has,
//     says so once on stderr, and does not deadlock; with no thread at all it says so and
//     throws instead of hanging.
// Not under sanitizers (label no-sanitizer): their runtimes reserve terabytes of shadow
// address space, start threads of their own and abort when mmap or clone fails.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include "runtime/testing/testing.hpp"
#include "tests/reliability/reliability_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using reltest::failures;
using reltest::kSanitized;

#define SKIP_UNDER_SANITIZERS()                                                                      \
  do {                                                                                               \
    if (kSanitized)                                                                                  \
      GTEST_SKIP() << "sanitizer runtimes reserve huge shadow mappings, start their own threads and " \
                      "abort when mmap/clone fail, so resource limits cannot be tested under them";  \
  } while (0)

__attribute__((noinline)) long use_stack(long bytes) {
  WEFT_STACK_CHECK(2048);
  volatile unsigned char pad[1000];
  pad[0] = static_cast<unsigned char>(bytes);
  return (bytes > 1100 ? use_stack(bytes - 1100) : 0) + pad[0];
}

weft::detail::testing::runtime_snapshot snap() {
  weft::detail::testing::runtime_snapshot s;
  weft::detail::testing::snapshot(&s);
  return s;
}

// Waits (yielding) until no goroutine but `keep` is alive: join() returns when a goroutine
// signals, and its stack goes back to the pool a moment later as it switches away.
bool settle(std::uint64_t keep) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (weft::get_stats().goroutines_live != keep) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    weft::yield();
  }
  return true;
}

// ---- RLIMIT_AS: stacks run out -------------------------------------------------------------

// Each stack slot reserves 64 MiB of address space (stack_reserve).  The limit set below admits
// the slots the warm-up's arenas already hold (stacks freed by goroutines stay in their P's
// cache, so spawns from this thread carved new ones: about a hundred) plus three more, and
// leaves the heap 48 MiB more than it had — less than one slot, so the stack pool runs out
// first and the heap does not (closures, G records and channels keep working).
[[noreturn]] void address_space_scenario() {
  ::alarm(120);
  failures f;
  constexpr std::size_t kSlot = std::size_t{64} << 20;
  weft::options o;
  o.procs = 2;
  o.stack_reserve = kSlot;
  o.scan_interval = 0ms;
  weft::runtime rt(o);

  // Warm up: both Ms started, the heap's segments made, a few slots carved and pooled.
  for (int i = 0; i < 8; ++i) {
    std::vector<weft::task<long>> ts;
    for (int k = 0; k < 8; ++k) ts.push_back(weft::spawn([] { return use_stack(16 * 1024); }));
    for (auto& t : ts) f.check(t.join() > 0, "warm-up");
  }
  f.check(settle(0), "warm-up goroutines did not finish");
  const weft::stats base_stats = weft::get_stats();
  const auto base = snap();

  rlimit old{};
  ::getrlimit(RLIMIT_AS, &old);
  const std::uint64_t vm = reltest::status_kib("VmSize") * 1024;
  rlimit tight = old;
  tight.rlim_cur = vm + 3 * kSlot + (std::size_t{48} << 20);
  f.check(::setrlimit(RLIMIT_AS, &tight) == 0, "setrlimit(RLIMIT_AS) failed: %s", std::strerror(errno));

  // Spawn parked goroutines from a goroutine until the stacks run out; then the failure must
  // repeat, cleanly, for go() on the same P (nothing was freed meanwhile).
  weft::chan<int> gate;
  weft::chan<long> results(4096);
  std::vector<weft::task<void>> parked;
  std::string what;
  int code = 0, repeated = 0;
  bool threw_other = false;
  auto spawner = weft::spawn([&] {
    try {
      for (int i = 0; i < 10000; ++i) {
        parked.push_back(weft::spawn([&] {
          (void)gate.recv();
          results.send(use_stack(32 * 1024));  // grows in place: no new address space
        }));
      }
      return;
    } catch (const weft::resource_error& e) {
      what = e.what();
      code = e.code().value();
    } catch (...) {
      threw_other = true;
      return;
    }
    for (int i = 0; i < 3; ++i) {
      try {
        weft::go([] {});
      } catch (const weft::resource_error&) {
        ++repeated;
      }
    }
  });
  spawner.join();
  const std::size_t n = parked.size();
  std::printf("RLIMIT_AS %llu MiB: %zu goroutines parked before the stacks ran out\n",
              (unsigned long long)(tight.rlim_cur >> 20), n);
  std::printf("resource_error: %s\n", what.c_str());
  f.check(!threw_other, "spawn threw something other than weft::resource_error");
  f.check(!what.empty(), "spawn never failed under RLIMIT_AS");
  f.check(n > 0 && n < 200, "%zu goroutines fit: the limit did not bind on stacks", n);
  f.check(code == ENOMEM, "error code %d, want ENOMEM", code);
  f.check(std::regex_search(what, std::regex("stack arena.*ran out of address space.*WEFT_STACK_RESERVE")),
          "the message does not say what ran out and what to change: %s", what.c_str());

  // Nothing was lost by the failures, and they repeat cleanly: from a goroutine (go) and
  // from this plain thread (spawn).
  f.check(settle(base_stats.goroutines_live + n), "the spawner did not finish");
  const std::uint64_t live = weft::get_stats().goroutines_live;
  const auto during = snap();
  f.check(live == base_stats.goroutines_live + n, "goroutines_live %llu, want %llu", (unsigned long long)live,
          (unsigned long long)(base_stats.goroutines_live + n));
  f.check(during.slots_in_use == base.slots_in_use + n, "slots in use %llu, want %llu",
          (unsigned long long)during.slots_in_use, (unsigned long long)(base.slots_in_use + n));
  // From this plain thread (the global pool: a stack freed into a P's cache is that P's).
  for (int i = 0; i < 2; ++i) {
    try {
      weft::spawn([] { return 1; }).join();
    } catch (const weft::resource_error&) {
      ++repeated;
    }
  }
  f.check(repeated == 5, "%d of 5 spawns under pressure threw resource_error", repeated);
  f.check(settle(live), "goroutines did not settle");
  f.check(snap().slots_in_use == during.slots_in_use, "a failed spawn leaked a stack slot");

  // The goroutines the runtime has keep running: release them; each grows its stack and reports.
  gate.close();
  long sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += *results.recv();
  for (auto& t : parked) t.join();
  f.check(sum == static_cast<long>(n) * use_stack(32 * 1024), "parked goroutines computed %ld", sum);
  f.check(settle(base_stats.goroutines_live), "goroutines did not finish");
  f.check(snap().slots_in_use == base.slots_in_use, "slots in use %llu after the goroutines ended, want %llu",
          (unsigned long long)snap().slots_in_use, (unsigned long long)base.slots_in_use);

  // Pressure gone (1): the freed stacks are reused, under the same limit.
  {
    std::vector<weft::task<long>> ts;
    for (std::size_t i = 0; i < n; ++i) ts.push_back(weft::spawn([] { return use_stack(8 * 1024); }));
    for (auto& t : ts) t.join();
  }
  // Pressure gone (2): the limit goes back up, and more goroutines than fitted before run at once.
  f.check(::setrlimit(RLIMIT_AS, &old) == 0, "restoring RLIMIT_AS failed");
  {
    weft::chan<int> gate2;
    std::vector<weft::task<long>> ts;
    for (std::size_t i = 0; i < 2 * n + 8; ++i)
      ts.push_back(weft::spawn([&] {
        (void)gate2.recv();
        return use_stack(8 * 1024);
      }));
    f.check(weft::get_stats().goroutines_live >= 2 * n + 8, "not all of them are alive at once");
    gate2.close();
    for (auto& t : ts) t.join();
  }
  f.check(settle(base_stats.goroutines_live), "goroutines did not finish");
  f.check(snap().slots_in_use == base.slots_in_use, "slots in use did not return to the baseline");
  reltest::scenario_exit(f);
}

TEST(ReliabilityLimits, StacksRunningOutThrowResourceErrorAndSpawningRecovers) {
  SKIP_UNDER_SANITIZERS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(address_space_scenario(), ::testing::ExitedWithCode(0), "");
}

// ---- RLIMIT_NPROC: no more threads -----------------------------------------------------------

// Becomes a user nobody else on the machine is (root is exempt from RLIMIT_NPROC, and a
// shared uid such as 65534 would count other processes' tasks too), then caps its tasks.
// Returns false if that is not possible here.
bool limit_tasks_to(rlim_t tasks) {
  if (::getuid() != 0) return false;
  const uid_t id = static_cast<uid_t>(2'000'000'000u + static_cast<unsigned>(::getpid()));
  if (::setgroups(0, nullptr) != 0 || ::setresgid(id, id, id) != 0 || ::setresuid(id, id, id) != 0) return false;
  rlimit r{tasks, tasks};
  return ::setrlimit(RLIMIT_NPROC, &r) == 0;
}

constexpr const char* kNoThreadMessage =
    "weft: cannot start another thread \\(.*\\); continuing with the threads already running";

// Work that needs every kind of hand-off — spawning, channels, yields, timers, blocking
// calls, wait groups — and can finish on any number of Ms.
long mixed_work() {
  constexpr int kPairs = 200, kRounds = 50;
  std::atomic<long> total{0};
  weft::wait_group wg;
  wg.add(2 * kPairs + 100);
  for (int i = 0; i < kPairs; ++i) {
    weft::chan<int> ping, pong;
    weft::go([=, &wg]() mutable {
      for (int r = 0; r < kRounds; ++r) {
        ping.send(r);
        (void)pong.recv();
      }
      wg.done();
    });
    weft::go([=, &wg, &total]() mutable {
      for (int r = 0; r < kRounds; ++r) {
        total.fetch_add(*ping.recv());
        pong.send(r);
        if (r % 10 == 0) weft::yield();
      }
      wg.done();
    });
  }
  for (int i = 0; i < 100; ++i) {
    weft::go([&wg, &total, i] {
      weft::sleep_for(1ms);
      weft::blocking([] { ::usleep(2000); });  // sysmon hands the P off: wants another M
      total.fetch_add(use_stack(24 * 1024) > 0 ? i : 0);
      wg.done();
    });
  }
  wg.wait();
  return total.load();
}

constexpr long kMixedWant = 200L * (50 * 49 / 2) + 100L * 99 / 2;

[[noreturn]] void nproc_scenario() {
  ::alarm(60);
  failures f;
  // This thread, sysmon and one M.
  if (!limit_tasks_to(3)) {
    std::printf("SKIP: cannot become a private unprivileged user here\n");
    ::_exit(0);
  }
  {
    weft::options o;
    o.procs = 4;
    weft::runtime rt(o);
    long got = weft::spawn(mixed_work).join();
    f.check(got == kMixedWant, "work result %ld, want %ld", got, kMixedWant);
    const weft::stats st = weft::get_stats();
    f.check(st.threads == 1, "%llu Ms started, want 1", (unsigned long long)st.threads);
    // Failed starts must not pile up: each wake-up that wanted an M tried and failed.
    const auto s = snap();
    f.check(s.m_records <= o.procs, "%llu M records kept for %llu running Ms", (unsigned long long)s.m_records,
            (unsigned long long)st.threads);
  }
  // A second runtime in the same process does the same work.  Its threads need the first
  // one's to be gone from the user's task count, which the kernel drops a little after the
  // join returned (release_task, after the exit wakes the joiner); the Threads field of
  // /proc/self/status falls after it.
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (reltest::status_kib("Threads") != 1 && std::chrono::steady_clock::now() < until) ::usleep(1000);
  {
    weft::runtime rt;
    long got = weft::spawn(mixed_work).join();
    f.check(got == kMixedWant, "second runtime: work result %ld", got);
  }
  reltest::scenario_exit(f);
}

// The message must appear, and only once, though every later wake-up fails the same way.
class said_exactly_once : public ::testing::MatcherInterface<const std::string&> {
 public:
  bool MatchAndExplain(const std::string& err, ::testing::MatchResultListener* why) const override {
    const std::regex re(kNoThreadMessage);
    const auto n = std::distance(std::sregex_iterator(err.begin(), err.end(), re), std::sregex_iterator());
    if (n != 1) *why << "the no-thread message appeared " << n << " times";
    return n == 1;
  }
  void DescribeTo(std::ostream* os) const override { *os << "stderr with the no-thread message exactly once"; }
};

TEST(ReliabilityLimits, NoNewThreadsTheRuntimeFinishesOnTheMsItHasAndSaysSoOnce) {
  SKIP_UNDER_SANITIZERS();
  if (::getuid() != 0) GTEST_SKIP() << "needs root to become a private user (RLIMIT_NPROC counts a uid's tasks)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(nproc_scenario(), ::testing::ExitedWithCode(0), ::testing::MakeMatcher(new said_exactly_once));
}

// Not even one M: the runtime cannot run a goroutine at all.  It must say so — as an
// exception from the runtime's constructor — instead of accepting goroutines that never run.
[[noreturn]] void no_m_scenario(rlim_t tasks) {
  ::alarm(30);
  failures f;
  if (!limit_tasks_to(tasks)) {
    std::printf("SKIP: cannot become a private unprivileged user here\n");
    ::_exit(0);
  }
  std::string what;
  try {
    weft::runtime rt;
    weft::spawn([] {}).join();  // would wait forever if no M can run it
    f.check(false, "a runtime with no thread to run goroutines started");
  } catch (const weft::resource_error& e) {
    what = e.what();
  }
  std::fprintf(stderr, "resource_error: %s\n", what.c_str());
  f.check(std::regex_search(what, std::regex("thread.*RLIMIT_NPROC")), "the message does not say what to raise");
  // Nothing of the failed runtime is left: no runtime runs, and go/spawn say so.
  f.check(weft::get_stats().threads == 0, "stats of a runtime that failed to start");
  bool said = false;
  try {
    weft::go([] {});
  } catch (const weft::error& e) {
    said = std::string(e.what()).find("no runtime running") != std::string::npos;
  }
  f.check(said, "go() after a failed start did not say no runtime runs");
  reltest::scenario_exit(f);
}

TEST(ReliabilityLimits, NoThreadAtAllIsAResourceErrorFromTheConstructor) {
  SKIP_UNDER_SANITIZERS();
  if (::getuid() != 0) GTEST_SKIP() << "needs root to become a private user (RLIMIT_NPROC counts a uid's tasks)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(no_m_scenario(2), ::testing::ExitedWithCode(0), "");  // sysmon starts, no M can
  EXPECT_EXIT(no_m_scenario(1), ::testing::ExitedWithCode(0), "");  // not even sysmon
}

// weft::run, which has nobody to throw to, reports it and exits 2 (it used to let the
// resource_error escape, and the program ended in std::terminate, status 134).
TEST(ReliabilityLimits, RunWithNoThreadAtAllIsANamedExit2) {
  SKIP_UNDER_SANITIZERS();
  if (::getuid() != 0) GTEST_SKIP() << "needs root to become a private user (RLIMIT_NPROC counts a uid's tasks)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::alarm(30);
        if (!limit_tasks_to(1)) std::exit(3);
        weft::run([] {});
        std::exit(4);
      },
      ::testing::ExitedWithCode(2),
      "weft: fatal error: the runtime cannot start: cannot start the runtime's threads \\(.*\\); the process is at its "
      "limit of threads: raise RLIMIT_NPROC");
}

}  // namespace
