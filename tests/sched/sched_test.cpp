// SPDX-License-Identifier: Apache-2.0
// The scheduler: goroutines run, join, yield, sleep, steal, hand off blocking calls, carry
// their C++ thread state, and leave an idle runtime quiet.  Each case runs at several
// `procs` values.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <execinfo.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;

weft::options opts_with(unsigned procs) {
  weft::options o;
  o.procs = procs;
  return o;
}

class Sched : public ::testing::TestWithParam<unsigned> {
 protected:
  weft::options opts() const { return opts_with(GetParam()); }
};

TEST_P(Sched, RunReturnsMainResultAndGoroutineIds) {
  std::uint64_t outside = weft::this_goroutine();
  std::uint64_t inside = 0;
  int r = weft::run(
      [&] {
        inside = weft::this_goroutine();
        return 42;
      },
      opts());
  EXPECT_EQ(r, 42);
  EXPECT_EQ(outside, 0u);
  EXPECT_NE(inside, 0u);
}

TEST_P(Sched, MillionGoroutinesSpawnedAndJoined) {
#if defined(WEFT_SANITIZE_THREAD)
  // ThreadSanitizer registers every goroutine as a fiber, at most 8128 at once, and runs ~50x
  // slower: a tenth of the goroutines in smaller batches.
  constexpr int kTotal = 100'000, kBatch = 1'000;
#else
  constexpr int kTotal = 1'000'000, kBatch = 10'000;
#endif
  std::atomic<long> ran{0};
  long sum = weft::run(
      [&] {
        long total = 0;
        std::vector<weft::task<int>> batch;
        batch.reserve(kBatch);
        for (int b = 0; b < kTotal / kBatch; ++b) {
          for (int i = 0; i < kBatch; ++i)
            batch.push_back(weft::spawn([&ran, i] {
              ran.fetch_add(1, std::memory_order_relaxed);
              return i;
            }));
          for (auto& t : batch) total += t.join();
          batch.clear();
        }
        return static_cast<int>(total / (kTotal / kBatch));
      },
      opts());
  EXPECT_EQ(ran.load(), kTotal);
  EXPECT_EQ(sum, long(kBatch) * (kBatch - 1) / 2);
}

TEST_P(Sched, RuntimeDestructorWaitsForEveryGoroutine) {
  std::atomic<int> done{0};
  {
    weft::runtime rt(opts());
    for (int i = 0; i < 100; ++i)
      weft::go([&] {
        for (int k = 0; k < 10; ++k) weft::yield();
        weft::sleep_for(1ms);
        done.fetch_add(1);
      });
  }
  EXPECT_EQ(done.load(), 100);
}

TEST(SchedOneP, YieldingGoroutinesMakeRoundRobinProgress) {
  // On one P, N goroutines that yield in a loop must interleave: between two turns of one
  // goroutine, every other goroutine has had a turn.
  constexpr int kG = 4, kRounds = 50;
  std::vector<int> order;
  weft::run(
      [&] {
        std::vector<weft::task<void>> ts;
        for (int id = 0; id < kG; ++id)
          ts.push_back(weft::spawn([&order, id] {
            for (int r = 0; r < kRounds; ++r) {
              order.push_back(id);
              weft::yield();
            }
          }));
        for (auto& t : ts) t.join();
      },
      opts_with(1));
  ASSERT_EQ(order.size(), std::size_t(kG * kRounds));
  for (std::size_t i = kG; i < order.size(); ++i) {
    std::set<int> window(order.begin() + static_cast<long>(i) - kG, order.begin() + static_cast<long>(i));
    EXPECT_EQ(window.size(), std::size_t(kG)) << "at turn " << i;
  }
}

// A goroutine's stack is reserved when it is spawned but chosen when it first runs: it takes
// the stack its P freed last, which is likely still in the CPU's caches (start_context).  The
// pattern of a tree of goroutines: X is spawned first and Y second, so X (in runnext) runs
// first and Y waits in the ring (launch_goroutine); X hands a value to main, which is waiting and so runs next, and X exits — its stack
// is freed as main resumes.  When main waits again, Y starts, and must start on X's stack,
// not on the one reserved for it at its spawn (which cannot be X's: X's was in use then).
TEST(SchedOneP, AGoroutineFirstRunsOnTheStackItsPFreedLast) {
  std::uintptr_t x_top = 0, y_top = 0;
  std::vector<int> order;
  weft::run(
      [&] {
        weft::chan<int> from_x, from_y;
        weft::go([&] {
          order.push_back(1);
          x_top = weft::this_stack().hi;
          from_x.send(1);
        });
        weft::go([&] {
          order.push_back(2);
          y_top = weft::this_stack().hi;
          from_y.send(2);
        });
        (void)from_x.recv();
        (void)from_y.recv();
      },
      [] {
        // Big enough that X's stack does not grow (sanitizers' frames are large): a grown stack
        // is too much memory to keep per P, and goes to the global pool instead.
        weft::options o = opts_with(1);
        o.stack_min = 64 * 1024;
        return o;
      }());
  ASSERT_EQ(order, (std::vector<int>{1, 2})) << "the scheduler ran them in another order";
  EXPECT_NE(x_top, 0u);
  EXPECT_EQ(y_top, x_top);
}

TEST(SchedTwoP, StealingHappensUnderImbalancedLoad) {
  // One goroutine spawns all the work onto its own P; the other P can only get any by
  // stealing.  The children keep yielding (so the spawner's queue stays full) until one of them
  // has been seen on another thread — however long the OS takes to run the second M — or
  // until a generous bound, after which the assertions fail.  The thread is asked of the
  // kernel each time: pthread_self() (std::this_thread::get_id) is declared const, so the
  // compiler may hoist it out of the loop and keep the thread the child started on.
  std::atomic<int> on_other_thread{0};
  weft::stats st{};
  weft::run(
      [&] {
        std::vector<weft::task<void>> ts;
        long spawner_thread = ::syscall(SYS_gettid);
        auto give_up = std::chrono::steady_clock::now() + 10s;
        for (int i = 0; i < 64; ++i)
          ts.push_back(weft::spawn([&, spawner_thread, give_up] {
            for (;;) {
              if (::syscall(SYS_gettid) != spawner_thread) on_other_thread.fetch_add(1);
              if (on_other_thread.load() > 0 || std::chrono::steady_clock::now() > give_up) return;
              weft::yield();
            }
          }));
        for (auto& t : ts) t.join();
        st = weft::get_stats();
      },
      opts_with(2));
  EXPECT_GT(st.steals, 0u);
  EXPECT_GT(on_other_thread.load(), 0);
}

// A yield publishes the goroutine on its P's queue before its context is saved (the direct
// switch, runtime/sched/switch.hpp); an M that steals it in that window must wait for the
// save.  Many yielders on several Ps are stolen back and forth; each keeps state in its own
// frame and checks it after every yield — a goroutine resumed from a stale context would find
// it wrong, or crash.
TEST(SchedFourP, YieldersStolenBetweenPsResumeWhereTheyLeftOff) {
  constexpr int kG = 32, kYields = 20000;
  std::atomic<long> bad{0}, total{0}, moved{0};
  weft::stats st{};
  weft::run(
      [&] {
        std::vector<weft::task<void>> ts;
        for (int i = 0; i < kG; ++i)
          ts.push_back(weft::spawn([&, i] {
            volatile long frame[8];
            for (int k = 0; k < 8; ++k) frame[k] = i * 1000 + k;
            long tid = ::syscall(SYS_gettid), n = 0;
            for (int y = 0; y < kYields; ++y) {
              weft::yield();
              for (int k = 0; k < 8; ++k)
                if (frame[k] != i * 1000 + k + y) bad.fetch_add(1);
              for (int k = 0; k < 8; ++k) frame[k] = frame[k] + 1;
              long now = ::syscall(SYS_gettid);
              if (now != tid) moved.fetch_add(1, std::memory_order_relaxed);
              tid = now;
              ++n;
            }
            total.fetch_add(n);
          }));
        for (auto& t : ts) t.join();
        st = weft::get_stats();
      },
      opts_with(4));
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(total.load(), long{kG} * kYields);
  EXPECT_GT(st.steals, 0u) << "no goroutine was stolen: the case did not exercise the window";
  RecordProperty("migrations", std::to_string(moved.load()));
}

TEST_P(Sched, SleepNeverWakesEarly) {
  weft::run(
      [] {
        std::vector<weft::task<void>> ts;
        for (int i = 0; i < 50; ++i)
          ts.push_back(weft::spawn([i] {
            auto d = std::chrono::microseconds(100 * (i % 10) + 50);
            auto t0 = std::chrono::steady_clock::now();
            weft::sleep_for(d);
            EXPECT_GE(std::chrono::steady_clock::now() - t0, d);
          }));
        for (auto& t : ts) t.join();
        auto until = std::chrono::steady_clock::now() + 2ms;
        weft::sleep_until(until);
        EXPECT_GE(std::chrono::steady_clock::now(), until);
      },
      opts());
}

TEST_P(Sched, SpawnRethrowsFromJoin) {
  weft::run(
      [] {
        auto t = weft::spawn([]() -> int { throw std::runtime_error("from the child"); });
        try {
          t.join();
          ADD_FAILURE() << "join did not rethrow";
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "from the child");
        }
        EXPECT_FALSE(t.joinable());
        EXPECT_THROW(t.join(), std::logic_error);
      },
      opts());
}

TEST(SchedDeath, ExceptionEscapingGoIsFatalAndNamesTheGoroutine) {
  EXPECT_EXIT(
      {
        weft::run([] {
          weft::go([] { throw std::runtime_error("boom in child"); });
          weft::sleep_for(10s);
        });
      },
      ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+: uncaught exception: boom in child");
}

// sleep_for(nanoseconds::max()) sleeps for good: now + d used to overflow into the past, and it
// returned at once.  In a child process, which leaves by _exit with the sleeper still parked.
TEST(SchedDeath, SleepForTheLongestDurationDoesNotReturn) {
  EXPECT_EXIT(
      {
        std::atomic<bool> woke{false};
        weft::run([&] {
          weft::go([&] {
            weft::sleep_for(std::chrono::nanoseconds::max());
            woke.store(true);
          });
          weft::sleep_for(20ms);  // the sleeper has long parked, or (overflowed) come back
          ::_exit(woke.load() ? 1 : 0);
        });
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(SchedDeath, BadConfigurationExitsWithStatus2) {
  EXPECT_EXIT(
      {
        ::setenv("WEFT_PROCS", "abc", 1);
        weft::run([] {});
      },
      ::testing::ExitedWithCode(2), "WEFT_PROCS='abc' is not valid; allowed: an integer from 1 to 1024");
  EXPECT_EXIT(
      {
        ::setenv("WEFT_STACK_MIN", "3000", 1);
        weft::run([] {});
      },
      ::testing::ExitedWithCode(2), "WEFT_STACK_MIN='3000' is not valid; allowed: a power of two");
  EXPECT_EXIT(
      {
        ::setenv("WEFT_STACK", "spaghetti", 1);
        weft::run([] {});
      },
      ::testing::ExitedWithCode(2), "WEFT_STACK='spaghetti' is not valid; allowed: in_place \\(the default: stacks never move\\), copy");
}

TEST_P(Sched, BlockingOperationsFromAPlainThread) {
  weft::runtime rt(opts());
  // A plain thread spawns, joins, sleeps and yields: it blocks itself, not an M.
  std::thread plain([] {
    EXPECT_EQ(weft::this_goroutine(), 0u);
    auto t = weft::spawn([] {
      weft::sleep_for(2ms);
      return weft::this_goroutine();
    });
    EXPECT_NE(t.join(), 0u);
    auto t0 = std::chrono::steady_clock::now();
    weft::sleep_for(1ms);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 1ms);
    weft::yield();
  });
  plain.join();
  // And a goroutine joins a task that a plain thread is waiting on too... via its own task.
  auto outer = weft::spawn([] { return weft::spawn([] { return 5; }).join() + 1; });
  EXPECT_EQ(outer.join(), 6);
}

TEST_P(Sched, TwoRuntimesAtOnceIsAnError) {
  weft::runtime rt(opts());
  EXPECT_THROW(weft::runtime second(opts()), weft::error);
}

TEST(SchedApi, GoWithoutARuntimeThrows) {
  EXPECT_THROW(weft::go([] {}), weft::error);
}

TEST_P(Sched, LockThreadKeepsTheOsThreadAcrossParks) {
  weft::run(
      [] {
        // Busy neighbours so that, unwired, migration would be likely.
        std::atomic<bool> stop{false};
        std::vector<weft::task<void>> noise;
        for (int i = 0; i < 8; ++i)
          noise.push_back(weft::spawn([&] {
            while (!stop.load()) weft::yield();
          }));
        weft::lock_thread();
        long tid = ::syscall(SYS_gettid);  // not pthread_self(): see StealingHappensUnderImbalancedLoad
        for (int i = 0; i < 200; ++i) {
          if (i % 3 == 0) weft::sleep_for(50us);
          else weft::yield();
          EXPECT_EQ(::syscall(SYS_gettid), tid) << "moved after park " << i;
        }
        weft::unlock_thread();
        stop.store(true);
        for (auto& t : noise) t.join();
      },
      opts());
}

// errno through calls the compiler cannot fold: __errno_location() is declared const, so within
// one function GCC keeps &errno in a register across a park — and after a migration that is
// the old thread's errno (README, "Thread-local state").  Real code reads errno right after
// the call that set it; these helpers model that.
__attribute__((noinline)) void set_errno(int v) {
  asm volatile("" ::: "memory");
  errno = v;
}
__attribute__((noinline)) int get_errno() {
  asm volatile("" ::: "memory");
  return errno;
}

TEST_P(Sched, ErrnoAndUncaughtExceptionsFollowTheGoroutine) {
  // Each goroutine sets errno to its own value and parks inside a destructor that runs during
  // unwinding (uncaught_exceptions() == 1) while others do the same on the same threads.
  std::atomic<int> bad{0};
  weft::run(
      [&] {
        std::vector<weft::task<void>> ts;
        for (int i = 0; i < 64; ++i)
          ts.push_back(weft::spawn([&bad, i] {
            struct parks_while_unwinding {
              int id;
              std::atomic<int>& bad;
              ~parks_while_unwinding() {
                for (int k = 0; k < 20; ++k) {
                  set_errno(1000 + id);
                  if (k % 2) weft::yield();
                  else weft::sleep_for(10us);
                  if (get_errno() != 1000 + id) bad.fetch_add(1 << 20);
                  if (std::uncaught_exceptions() != 1) bad.fetch_add(1 << 10);
                }
              }
            };
            try {
              parks_while_unwinding p{i, bad};
              throw std::runtime_error("unwinding");
            } catch (const std::runtime_error&) {
              // Parked inside a catch block: current_exception must still be ours.
              for (int k = 0; k < 10; ++k) {
                weft::yield();
                try {
                  std::rethrow_exception(std::current_exception());
                } catch (const std::runtime_error& e) {
                  if (std::string(e.what()) != "unwinding") bad.fetch_add(1);
                }
              }
            }
            if (std::uncaught_exceptions() != 0) bad.fetch_add(1);
          }));
        for (auto& t : ts) t.join();
      },
      opts());
  EXPECT_EQ(bad.load(), 0);
}

TEST(SchedOneP, BlockingCallHandsThePOff) {
  // With one P, a goroutine blocks its thread in read(2) until a second goroutine writes to
  // the pipe.  Without the hand-off the second goroutine could never run: this would hang.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  weft::run(
      [&] {
        auto reader = weft::spawn([&] {
          char c = 0;
          ssize_t n = weft::blocking([&] { return ::read(fds[0], &c, 1); });
          return n == 1 ? c : '?';
        });
        auto writer = weft::spawn([&] {
          weft::sleep_for(1ms);
          return ::write(fds[1], "x", 1);
        });
        EXPECT_EQ(writer.join(), 1);
        EXPECT_EQ(reader.join(), 'x');
      },
      opts_with(1));
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(SchedOneP, LongRunningGoroutineIsAskedToYield) {
  // One P: the main goroutine yields to a spinner that loops (passing explicit stack checks)
  // until main sets a flag.  Main runs again only if sysmon's request makes the spinner yield.
  weft::run(
      [] {
        std::atomic<bool> flag{false};
        std::atomic<bool> started{false};
        auto spinner = weft::spawn([&] {
          started.store(true);
          long checks = 0;
          while (!flag.load(std::memory_order_relaxed)) {
            WEFT_STACK_CHECK(64);
            ++checks;
          }
          return checks;
        });
        while (!started.load()) weft::yield();
        flag.store(true);
        EXPECT_GT(spinner.join(), 0);
      },
      opts_with(1));
}

// ---- fairness (issue 21) -------------------------------------------------------------------
// Asserted by the order of events, not by wall time: sysmon asks a goroutine that ran 10 ms
// without a switch to yield and counts each request (stats::preemptions), so "the sleeper ran
// again within k preemptions" holds however slow the machine is.

class Fairness : public ::testing::TestWithParam<unsigned> {};

TEST_P(Fairness, ASleeperRunsBeforeTheBusyGoroutinesThirdPreemption) {
  // One busy goroutine per P, each passing explicit stack checks (so sysmon can preempt it),
  // and main sleeping 1 ms five times.  A woken sleeper must not wait behind the spinners'
  // preemptions: Go puts a preempted goroutine on the global queue and runs due timers from
  // every schedule (runtime/proc.go, gopreempt_m and checkTimers).
  const unsigned procs = GetParam();
  weft::run(
      [procs] {
        std::atomic<bool> stop{false};
        std::atomic<unsigned> started{0};
        std::vector<weft::task<long>> spinners;
        for (unsigned i = 0; i < procs; ++i)
          spinners.push_back(weft::spawn([&] {
            started.fetch_add(1);
            long checks = 0;
            while (!stop.load(std::memory_order_relaxed)) {
              WEFT_STACK_CHECK(64);
              ++checks;
            }
            return checks;
          }));
        while (started.load() < procs) weft::yield();
        std::vector<std::uint64_t> waited;
        for (int i = 0; i < 5; ++i) {
          const std::uint64_t before = weft::get_stats().preemptions;
          weft::sleep_for(1ms);
          waited.push_back(weft::get_stats().preemptions - before);
        }
        stop.store(true);
        for (auto& t : spinners) EXPECT_GT(t.join(), 0);
        for (std::uint64_t n : waited) EXPECT_LE(n, 3u * procs) << "preemptions while main slept 1 ms";
      },
      opts_with(procs));
}

TEST(FairnessTwoP, AGoroutineQueuedBehindASpinnerWithoutChecksIsStolen) {
  // A spinner that never reaches a check cannot be preempted; a goroutine queued behind it on
  // its P must still run, on the other P (sysmon wakes an idle P to steal it).  Twenty rounds,
  // so that in some the spinner starts on main's own P and main yields behind it.  A hang is
  // the failure: SIGALRM ends the test after 120 s.
  ::alarm(120);
  weft::run(
      [] {
        for (int round = 0; round < 20; ++round) {
          std::atomic<bool> stop{false}, started{false};
          auto spinner = weft::spawn([&] {
            started.store(true);
            long spins = 0;
            while (!stop.load(std::memory_order_relaxed)) ++spins;
            return spins;
          });
          // Let the M that go() woke give up looking (the spinner waits in this P's runnext),
          // then yield to the spinner: main is queued behind it with the other P asleep.
          for (;;) {
            if (started.load()) break;
            const weft::stats st = weft::get_stats();
            if (st.threads_spinning == 0 && st.threads_idle >= 1) break;
          }
          while (!started.load()) weft::yield();
          stop.store(true);
          EXPECT_GE(spinner.join(), 0);
        }
      },
      opts_with(2));
  ::alarm(0);
}

INSTANTIATE_TEST_SUITE_P(Procs, Fairness, ::testing::Values(1u, 2u));

TEST_P(Sched, UnwinderWalksAGoroutineStackToItsEnd) {
  // The unwinder (what gdb, perf and exceptions use) must find the goroutine's first frame and
  // stop there, not wander into another stack: backtrace() returns, with few frames.
  weft::run(
      [] {
        auto t = weft::spawn([] {
          void* frames[256];
          int n = ::backtrace(frames, 256);
          return n;
        });
        int n = t.join();
        EXPECT_GT(n, 2);
        EXPECT_LT(n, 32);
      },
      opts());
}

// ---- bursts (issue 21) ---------------------------------------------------------------------

long vm_pte_kb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmPTE: %ld", &kb) == 1) break;
  std::fclose(f);
  return kb;
}

TEST(SchedBurst, SpawnsBeforeAnyRunsSetUpNoStackSlots) {
  // One P, and main spawns 20,000 goroutines without yielding: none runs before the last is
  // made.  Each reserves an 8 MiB slot at its spawn, but a slot's guards (and the page-table
  // page they need) go in only at its first run — which, one at a time on one P, trades the
  // reserved slot for the stack the previous goroutine just left.  Installing the guards at
  // the spawn cost a page-table page per slot: 80 MB of page tables for this burst.
#if defined(WEFT_SANITIZE_THREAD)
  GTEST_SKIP() << "ThreadSanitizer maps state of its own for every goroutine (a fiber): page tables grow ~8 KiB "
                  "each whatever the stacks do, and at most 8128 fibers may exist at once";
#endif
  constexpr int kBurst = 20'000;
  weft::run(
      [] {
        const long before = vm_pte_kb();
        ASSERT_GE(before, 0);
        weft::wait_group wg;
        wg.add(kBurst);
        for (int i = 0; i < kBurst; ++i) weft::go([&wg] { wg.done(); });
        const long grown_kb = vm_pte_kb() - before;
        wg.wait();
        EXPECT_LT(grown_kb * 1024, kBurst * 4096L / 8) << "page tables grew by " << grown_kb << " KiB";
      },
      opts_with(1));
}

long cpu_usec() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1'000'000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

TEST(SchedIdle, AnIdleRuntimeUsesUnderTwoPercentOfACpu) {
  weft::options o = opts_with(2);
  weft::runtime rt(o);
  // Some work first, so every M and sysmon have started and gone idle.
  for (int i = 0; i < 100; ++i) weft::spawn([] { weft::yield(); }).join();
  long c0 = cpu_usec();
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(2s);
  long used = cpu_usec() - c0;
  long wall = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(used, wall / 50) << "idle runtime used " << used << " us of CPU in " << wall << " us";
}

INSTANTIATE_TEST_SUITE_P(Procs, Sched, ::testing::Values(1u, 2u, 4u),
                         [](const ::testing::TestParamInfo<unsigned>& i) { return "procs" + std::to_string(i.param); });

}  // namespace
