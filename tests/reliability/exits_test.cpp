// SPDX-License-Identifier: Apache-2.0
// How a program ends (issue 20): weft::run returns as soon as main_fn returns, whatever the
// other goroutines are doing; a program whose goroutines can never run again is reported as
// a deadlock (Go's "all goroutines are asleep"), and one that is only quiet is not.
//
// Every scenario runs in a fresh process (gtest's threadsafe death-test style) and bounds
// itself with alarm(): a hang ends as SIGALRM, which fails the test.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tests/reliability/reliability_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;

#if defined(__GNUC__) && !defined(__clang__)
#define NO_CHECKS __attribute__((noinline, no_split_stack))
#else
#define NO_CHECKS __attribute__((noinline))
#endif

weft::options procs(unsigned n) {
  weft::options o;
  o.procs = n;
  return o;
}

std::atomic<long> g_spins{0};

// A loop with no check of any kind: sysmon's request to yield never reaches it.
NO_CHECKS void spin_forever();
void spin_forever() {
  for (;;) g_spins.fetch_add(1, std::memory_order_relaxed);
}

// ---- weft::run returns when main_fn returns --------------------------------------------------

void run_returns_beside_a_spinner(unsigned n) {
  ::alarm(60);
  reltest::failures f;
  int r = weft::run(
      [n] {
        if (n > 1) {
          // With two Ps, main_fn waits until the spinner runs.  Not by yielding: with the
          // spinner on this P's queue and the other M asleep, nothing would steal main_fn
          // back (the scheduler's fairness is issue 21's).  A plain thread's go() puts the
          // spinner on the global queue and wakes an M for the idle P; main_fn keeps its P,
          // busy-waiting without a check.
          std::thread([] { weft::go(spin_forever); }).join();
          while (g_spins.load(std::memory_order_relaxed) == 0) {
          }
        } else {
          // With one, the spinner can only start once main_fn has returned, and it takes the
          // only P for good.
          weft::go(spin_forever);
        }
        return 7;
      },
      procs(n));
  f.check(r == 7, "run returned %d, not main_fn's 7", r);
  // With two Ps the spinner was running when run() stopped the runtime, and its M was left
  // to run it: it still spins while the program goes on.  (With one it may have started
  // before the stop or never: both are right, as in Go, whose process would have ended.)
  if (n > 1) {
    const long seen = g_spins.load(std::memory_order_relaxed);
    while (g_spins.load(std::memory_order_relaxed) == seen) std::this_thread::yield();
  }
  reltest::scenario_exit(f);
}

TEST(ExitsDeath, RunReturnsWhenMainReturnsThoughAGoroutineSpinsWithoutChecks) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(run_returns_beside_a_spinner(1), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(run_returns_beside_a_spinner(2), ::testing::ExitedWithCode(0), "");
}

void run_returns_beside_a_blocking_read(unsigned n) {
  ::alarm(60);
  reltest::failures f;
  int fds[2];
  if (::pipe(fds) != 0) std::exit(3);
  static std::atomic<bool> entered{false};
  int r = weft::run(
      [fd = fds[0]] {
        weft::go([fd] {
          char c;
          entered = true;
          (void)weft::blocking([&] { return ::read(fd, &c, 1); });  // nobody ever writes
        });
        while (!entered.load()) weft::yield();
        return 3;
      },
      procs(n));
  f.check(r == 3, "run returned %d, not main_fn's 3", r);
  reltest::scenario_exit(f);
}

TEST(ExitsDeath, RunReturnsWhenMainReturnsThoughAGoroutineSitsInABlockingCall) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(run_returns_beside_a_blocking_read(1), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(run_returns_beside_a_blocking_read(2), ::testing::ExitedWithCode(0), "");
}

// A runtime after one that left a spinning M behind starts and runs normally.
TEST(ExitsDeath, ARuntimeStartsAgainAfterOneLeftAnMRunning) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::alarm(60);
        reltest::failures f;
        (void)weft::run([] { weft::go(spin_forever); }, procs(1));
        int r = weft::run([] { return weft::spawn([] { return 40; }).join() + 2; }, procs(2));
        f.check(r == 42, "the second runtime's main_fn returned %d, not 42", r);
        reltest::scenario_exit(f);
      },
      ::testing::ExitedWithCode(0), "");
}

// ---- deadlocks ------------------------------------------------------------------------------

// ThreadSanitizer runs a background thread of its own: a thread weft cannot account for, so
// the check (rightly) never reports there.
#if defined(WEFT_SANITIZE_THREAD)
#define SKIP_WHERE_A_HIDDEN_THREAD_RUNS() GTEST_SKIP() << "ThreadSanitizer's own thread may wake goroutines, as far as weft can tell"
#else
#define SKIP_WHERE_A_HIDDEN_THREAD_RUNS() (void)0
#endif

constexpr const char* kDeadlock = "weft: fatal error: all goroutines are asleep - deadlock!";

TEST(ExitsDeath, MainFnParkedForeverIsADeadlockWithTheDump) {
  SKIP_WHERE_A_HIDDEN_THREAD_RUNS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (unsigned n : {1u, 2u}) {
    EXPECT_EXIT(
        {
          ::alarm(60);
          weft::run(
              [] {
                weft::chan<int> c;
                weft::go([c]() mutable { c.send(1); });  // one value, then that goroutine ends
                (void)c.recv();
                (void)c.recv();  // nobody sends again, and nobody holds c but this goroutine
              },
              procs(n));
          std::exit(0);
        },
        ::testing::ExitedWithCode(2), std::string(kDeadlock) + "(.|\n)*goroutine 1 \\[waiting, chan receive");
  }
}

TEST(ExitsDeath, TheRuntimesDestructorWaitingForAParkedGoroutineIsADeadlock) {
  SKIP_WHERE_A_HIDDEN_THREAD_RUNS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::alarm(60);
        {
          weft::runtime rt(procs(2));
          weft::mutex mu;
          mu.lock();
          weft::go([&mu] { mu.lock(); });  // never unlocked
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(2), kDeadlock);
}

// Quiet is not dead: while a plain thread runs code weft cannot see, a timer is armed, or a
// goroutine sits in a blocking call, the program is not reported.  Each of these waits long
// enough (300 ms) for sysmon to look many times (every 10-100 ms while all Ps are idle); a
// check that ignored any of them would report a deadlock and exit 2.
TEST(ExitsDeath, QuietIsNotDead) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::alarm(60);
        {
          weft::runtime rt(procs(2));
          weft::chan<int> c;
          weft::go([c]() mutable { (void)c.recv(); });
          std::thread later([c]() mutable {
            std::this_thread::sleep_for(300ms);  // user code weft cannot see
            c.send(1);
          });
          later.join();
        }
        {
          weft::runtime rt(procs(1));
          weft::go([] { weft::sleep_for(300ms); });  // an armed timer
        }
        {
          weft::runtime rt(procs(1));
          int fds[2];
          if (::pipe(fds) != 0) std::exit(3);
          weft::go([fd = fds[0]] {
            char ch;
            (void)weft::blocking([&] { return ::read(fd, &ch, 1); });
          });
          std::thread writer([fd = fds[1]] {
            std::this_thread::sleep_for(300ms);
            if (::write(fd, "x", 1) != 1) std::exit(4);
          });
          writer.join();
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// A plain thread and a goroutine hand a value back and forth: at every hand-off one of them
// is blocked and the other is being woken, which the check must not mistake for the end.
void hand_off_scenario() {
  ::alarm(60);
  weft::runtime rt(procs(1));
  weft::chan<int> ping;
  weft::chan<int> pong;
  constexpr int kRounds = 20000;
  weft::go([ping, pong]() mutable {
    for (int i = 0; i < kRounds; ++i) pong.send(*ping.recv() + 1);
  });
  int v = 0;
  for (int i = 0; i < kRounds; ++i) {
    ping.send(v);
    v = *pong.recv();
  }
  if (v != kRounds) std::exit(5);
  // The same through a wait_group (its waiters are woken without a claim) and a mutex, with
  // two plain threads beside the goroutines.
  weft::mutex mu;
  long shared = 0;
  auto plain = [&] {
    for (int i = 0; i < kRounds / 4; ++i) {
      weft::wait_group wg;
      wg.add(1);
      weft::go([&wg, &mu, &shared] {
        std::lock_guard<weft::mutex> l(mu);
        ++shared;
        wg.done();
      });
      wg.wait();
      std::lock_guard<weft::mutex> l(mu);
      ++shared;
    }
  };
  std::thread a(plain), b(plain);
  a.join();
  b.join();
  std::exit(shared == 4L * (kRounds / 4) ? 0 : 6);
}

TEST(ExitsDeath, AHandOffBetweenAThreadAndAGoroutineIsNeverADeadlock) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(hand_off_scenario(), ::testing::ExitedWithCode(0), "");
}

}  // namespace

namespace {

// A plain thread blocked on a channel when the runtime ends is woken later, after the
// runtime's scheduler is gone: its wait record (the deadlock check's) must not touch it.
// Run under AddressSanitizer in CI, which would see the use after free.
TEST(Exits, APlainThreadBlockedAcrossTheRuntimesEndWakesCleanly) {
  weft::chan<int> c;
  std::atomic<pid_t> tid{0};
  std::thread t;
  {
    weft::runtime rt(procs(1));
    t = std::thread([c, &tid]() mutable {
      tid = static_cast<pid_t>(::syscall(SYS_gettid));
      (void)c.recv();
    });
    // Until the thread sleeps (its state in /proc is 'S': inside recv's futex wait, bounded).
    for (int i = 0; i < 100000; ++i) {
      const pid_t id = tid.load();
      if (id != 0) {
        char path[64], buf[512] = {};
        std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(id));
        if (FILE* f = std::fopen(path, "r")) {
          const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
          std::fclose(f);
          const char* close = n ? std::strrchr(buf, ')') : nullptr;
          if (close && close[1] == ' ' && close[2] == 'S') break;
        }
      }
      std::this_thread::yield();
    }
  }
  c.send(7);  // with no runtime: a plain thread's send wakes the plain thread's receive
  t.join();
  SUCCEED();
}

}  // namespace
