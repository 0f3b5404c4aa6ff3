// SPDX-License-Identifier: Apache-2.0
// Goroutine dumps (issue 15): on demand, on SIGQUIT, and appended to a fatal error — every
// goroutine with its state, wait reason, creator and a parked one's frames by name; a million
// goroutines grouped by kind.  Frames are named from the symbol table, so the functions below
// are noinline and not static-inlined away; the build keeps frame pointers (weft's package
// adds -fno-omit-frame-pointer).
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "weft/weft.hpp"

namespace {

weft::options procs(unsigned n) {
  weft::options o;
  o.procs = n;
  return o;
}

__attribute__((noinline)) void dump_test_waits_on_channel(weft::chan<int> c) {
  (void)c.recv();
  asm volatile("" ::: "memory");  // keeps the frame (and the call above not a tail call)
}

__attribute__((noinline)) int dump_test_recurses(int n, weft::chan<int> c) {
  if (n == 0) {
    dump_test_waits_on_channel(c);
    return 0;
  }
  int r = dump_test_recurses(n - 1, c) + 1;
  asm volatile("" ::: "memory");
  return r;
}

__attribute__((noinline)) void dump_test_sleeps() {
  weft::sleep_for(std::chrono::seconds(1));
  asm volatile("" ::: "memory");  // not a tail call: the frame stays
}

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (std::size_t p = 0; (p = s.find(what, p)) != std::string::npos; p += what.size()) ++n;
  return n;
}

TEST(Dump, OnDemandNamesEveryGoroutineItsWaitItsFramesAndItsCreator) {
  weft::runtime rt(procs(2));
  weft::chan<int> c;
  weft::wait_group started;
  started.add(2);
  weft::go([c, &started] {
    started.done();
    dump_test_recurses(3, c);
  });
  weft::go([&started] {
    started.done();
    dump_test_sleeps();
  });
  started.wait();
  // Parked: their states say so (the dump itself shows it; poll it, bounded).
  std::string d;
  for (int i = 0; i < 2000; ++i) {
    d = weft::dump_goroutines();
    if (count(d, "[waiting, ") == 2) break;
    std::this_thread::yield();
  }
  ASSERT_EQ(count(d, "[waiting, "), 2) << d;
  EXPECT_NE(d.find("goroutine dump: 2 live"), std::string::npos) << d;
  EXPECT_NE(d.find("[waiting, chan receive, "), std::string::npos) << d;
  EXPECT_NE(d.find("[waiting, sleep, "), std::string::npos) << d;
  // The channel waiter's frames, innermost first: the wait, then the recursion four deep.
  const std::size_t wait_at = d.find("dump_test_waits_on_channel");
  ASSERT_NE(wait_at, std::string::npos) << d;
  EXPECT_EQ(count(d, "dump_test_recurses("), 4) << d;
  EXPECT_LT(wait_at, d.find("dump_test_recurses(")) << d;
  EXPECT_NE(d.find("dump_test_sleeps()"), std::string::npos) << d;
  // Where each was made: this test's body (demangled, with its module and offset).
  EXPECT_EQ(count(d, "created by (anonymous namespace)::Dump_OnDemandNamesEveryGoroutineItsWaitItsFramesAndItsCreator_Test::TestBody"), 2) << d;
  EXPECT_TRUE(std::regex_search(d, std::regex("\\(/[^ ]*weft_test_diag\\+0x[0-9a-f]+\\)"))) << d;
  c.close();
  // The sleeper ends when its timer does (a second), and the runtime's end waits for it.
}

// Past 64 goroutines the dump groups them: 5,000 parked the same way make one group.
TEST(Dump, ManyGoroutinesAreGroupedByKind) {
  weft::runtime rt(procs(2));
  weft::chan<int> c;
  weft::wait_group started;
  constexpr int kN = 5000;
  started.add(kN);
  for (int i = 0; i < kN; ++i)
    weft::go([c, &started] {
      started.done();
      dump_test_waits_on_channel(c);
    });
  started.wait();
  std::string d;
  for (int i = 0; i < 2000; ++i) {
    d = weft::dump_goroutines();
    if (d.find("5000 goroutines [waiting, chan receive") != std::string::npos) break;
    std::this_thread::yield();
  }
  EXPECT_NE(d.find("5000 goroutines [waiting, chan receive"), std::string::npos) << d.substr(0, 4000);
  EXPECT_LT(d.size(), 4000u) << "grouped output stays short";
  c.close();
}

// In a fresh process: a runtime with one goroutine parked `depth` deep on a channel, then
// `then()` — which must end the process.
template <class Then>
[[noreturn]] void with_one_parked(int depth, Then then) {
  ::alarm(30);
  weft::runtime rt(procs(2));
  weft::chan<int> c;
  weft::wait_group started;
  started.add(1);
  weft::go([c, &started, depth] {
    started.done();
    dump_test_recurses(depth, c);
  });
  started.wait();
  while (weft::dump_goroutines().find("[waiting, chan receive") == std::string::npos) std::this_thread::yield();
  then();
  for (;;) ::pause();
}

// SIGQUIT: the dump on stderr, then exit 2, as Go does.
TEST(DumpDeath, SigquitPrintsEveryGoroutineAndExits2) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(with_one_parked(2, [] { ::kill(::getpid(), SIGQUIT); }), ::testing::ExitedWithCode(2),
              "SIGQUIT: quit\n(.|\n)*goroutine dump: 1 live(.|\n)*dump_test_waits_on_channel");
}

// A program's own SIGQUIT handler, installed before the runtime starts, is left alone.
std::atomic<bool> g_own_quit{false};
TEST(DumpDeath, AProgramsOwnSigquitHandlerIsKept) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::alarm(30);
        std::signal(SIGQUIT, [](int) { g_own_quit = true; });
        {
          weft::runtime rt(procs(1));
          ::kill(::getpid(), SIGQUIT);
          while (!g_own_quit) std::this_thread::yield();
        }
        std::exit(7);
      },
      ::testing::ExitedWithCode(7), "");
}

// A fatal error carries the dump, frames included.
TEST(DumpDeath, AFatalErrorCarriesTheFramesOfParkedGoroutines) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(with_one_parked(1, [] { weft::go([] { throw std::runtime_error("boom"); }); }),
              ::testing::ExitedWithCode(2), "uncaught exception: boom(.|\n)*dump_test_waits_on_channel");
}

}  // namespace

namespace {

// ---- stats an operator exports (issue 15, part 5) --------------------------------------------

TEST(Stats, CountGoroutinesByStateTimersDescriptorsAndStacks) {
  weft::runtime rt(procs(2));
  weft::chan<int> c;
  weft::wait_group started;
  constexpr int kParked = 100, kSleepers = 3;
  started.add(kParked + kSleepers + 1);
  for (int i = 0; i < kParked; ++i)
    weft::go([c, &started] {
      started.done();
      dump_test_waits_on_channel(c);
    });
  weft::chan<int> quit;  // the "sleepers" wait with a deadline (an armed timer) until it closes
  for (int i = 0; i < kSleepers; ++i)
    weft::go([&started, quit] {
      started.done();
      weft::select(weft::on_recv(quit, [](std::optional<int>) {}), weft::on_timeout(std::chrono::seconds(60), [] {}));
    });
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  weft::go([fd = fds[0], &started] {
    started.done();
    (void)weft::wait_readable(fd);
  });
  started.wait();
  weft::stats st{};
  for (int i = 0; i < 20000; ++i) {  // until all have parked and every M has gone idle (bounded)
    st = weft::get_stats();
    if (st.goroutines_waiting == kParked + kSleepers + 1 && st.threads_idle == st.threads) break;
    std::this_thread::yield();
  }
  EXPECT_EQ(st.goroutines_waiting, static_cast<std::uint64_t>(kParked + kSleepers + 1));
  EXPECT_EQ(st.goroutines_running + st.goroutines_runnable + st.goroutines_blocking, 0u);
  EXPECT_EQ(st.timers, static_cast<std::uint64_t>(kSleepers));
  EXPECT_EQ(st.netpoll_waiters, 1u);
  EXPECT_GE(st.stack_bytes_in_use, static_cast<std::uint64_t>(kParked + kSleepers + 1) * weft::default_stack_min());
  EXPECT_EQ(st.runq_global + st.runq_local, 0u);
  EXPECT_EQ(st.threads_idle + st.threads_spinning + st.threads_blocking, st.threads) << "every M is idle now";
  c.close();
  quit.close();
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  ::close(fds[1]);
}

// ---- the scheduler trace (issue 15, part 3) ------------------------------------------------

// Reads this process's stderr through a pipe until `lines` SCHED lines came, returns them.
void schedtrace_scenario() {
  ::alarm(30);
  int p[2];
  if (::pipe(p) != 0) std::exit(3);
  if (::dup2(p[1], 2) < 0) std::exit(4);
  weft::options o = procs(2);
  o.schedtrace = std::chrono::milliseconds(20);
  o.scheddetail = true;
  weft::runtime rt(o);
  weft::chan<int> c;
  for (int i = 0; i < 10; ++i) weft::go([c] { dump_test_waits_on_channel(c); });
  std::string got;
  char buf[4096];
  int sched_lines = 0;
  while (sched_lines < 3) {
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n <= 0) std::exit(5);
    got.append(buf, static_cast<std::size_t>(n));
    sched_lines = count(got, "SCHED ");
  }
  // Shape: Go's line, then a line per P and per M.
  const std::regex line("SCHED [0-9]+ms: procs=2 idleprocs=[0-2] threads=[0-9]+ spinningthreads=[0-9]+ "
                        "idlethreads=[0-9]+ blockingthreads=[0-9]+ runqueue=[0-9]+ \\[[0-9]+ [0-9]+\\] goroutines=[0-9]+ "
                        "waiting=[0-9]+ stackbytes=[0-9]+ scans=[0-9]+ timers=[0-9]+ netpoll=[0-9]+\n");
  if (!std::regex_search(got, line)) std::exit(6);
  if (count(got, "  P0: status=") < 2 || count(got, "  P1: status=") < 2 || count(got, "  M0: p=") < 2) std::exit(7);
  if (got.find("goroutines=10 waiting=10") == std::string::npos) std::exit(8);  // all parked by the 3rd
  c.close();
  std::exit(0);
}

TEST(SchedTraceDeath, PrintsGosSummaryLineAndADetailLinePerPAndM) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(schedtrace_scenario(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
