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

// SIGQUIT: the dump on stderr, then exit 2, as Go does.
TEST(DumpDeath, SigquitPrintsEveryGoroutineAndExits2) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::alarm(30);
        weft::runtime rt(procs(2));
        weft::chan<int> c;
        weft::wait_group started;
        started.add(1);
        weft::go([c, &started] {
          started.done();
          dump_test_recurses(2, c);
        });
        started.wait();
        while (weft::dump_goroutines().find("[waiting, chan receive") == std::string::npos) std::this_thread::yield();
        ::kill(::getpid(), SIGQUIT);
        for (;;) ::pause();
      },
      ::testing::ExitedWithCode(2), "SIGQUIT: quit\n(.|\n)*goroutine dump: 1 live(.|\n)*dump_test_waits_on_channel");
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
  EXPECT_EXIT(
      {
        ::alarm(30);
        weft::runtime rt(procs(2));
        weft::chan<int> c;
        weft::wait_group started;
        started.add(1);
        weft::go([c, &started] {
          started.done();
          dump_test_recurses(1, c);
        });
        started.wait();
        while (weft::dump_goroutines().find("[waiting, chan receive") == std::string::npos) std::this_thread::yield();
        weft::go([] { throw std::runtime_error("boom"); });
        for (;;) ::pause();
      },
      ::testing::ExitedWithCode(2), "uncaught exception: boom(.|\n)*dump_test_waits_on_channel");
}

}  // namespace
