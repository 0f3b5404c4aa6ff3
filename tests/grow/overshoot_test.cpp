// SPDX-License-Identifier: Apache-2.0
// Frames bigger than the check in front of them (issue 22).
//
//   - Self-inlined recursion: GCC at -O2/-O3 inlines a recursive function into itself, so one
//     physical frame holds several logical ones, each starting with WEFT_STACK_CHECK(4096),
//     and the frame overshoots what its check asked for.  Growth must still work in every
//     strategy (by fault in the reserve, or in the slack a copy slot keeps below its
//     capacity), and the limit must still end in its own fatal message, exit status 2.
//     Built at -O2 and -O3 (tests/grow/CMakeLists.txt); the cases first prove that the
//     frames really are shared (logical levels with one frame address).
//   - A stack that runs out inside the runtime's switch code: whatever instruction of a
//     yield faults at the slot's end, the report is weft's, not a bare SIGSEGV.
//   - A frame of 320 KiB with no checks beside parked neighbours, in the default strategy:
//     it lands in its own slot's reserve; the neighbours' frames are untouched.  A frame past
//     the whole slot is caught by -fstack-clash-protection's probes (big_frame.cpp is built
//     with it, as weft's package asks of its users) and reported.
#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <cstdio>
#include <cstring>
#include <set>

#include <alloca.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft/weft.hpp"

// big_frame.cpp, built without -fstack-clash-protection (as Debian's GCC builds by default),
// and big_frame_probed.cpp, built with it: each writes the lowest 64 bytes of a local buffer
// of `bytes` (a frame that size), calls `inside` from that frame, and returns their sum.
long touch_big_frame(std::size_t bytes, void (*inside)());
long touch_big_frame_probed(std::size_t bytes, void (*inside)());
// self_inlined.cpp: recursion GCC inlines into itself; the stack pointer each level saw.
long run_self_inlined(int n);
extern std::uintptr_t g_sp_of_level[1 << 16];

namespace {

using namespace std::chrono_literals;

// ---- self-inlined recursion --------------------------------------------------------------------

constexpr int kMaxLevels = 1 << 16;

// Physical frames the levels 0..n-1 ran in (fewer than n: several logical frames per frame).
std::size_t distinct_frames(int n) {
  std::set<std::uintptr_t> frames(g_sp_of_level, g_sp_of_level + std::min(n, kMaxLevels));
  return frames.size();
}

struct strategy_case {
  const char* name;
  weft::stack_strategy strategy;
  std::optional<std::size_t> reserve;
};

const strategy_case kStrategies[] = {
    {"in_place", weft::stack_strategy::in_place, std::nullopt},
    {"copy", weft::stack_strategy::copy, std::nullopt},
    {"pure_copy", weft::stack_strategy::copy, std::size_t{0}},
};

class SelfInlined : public ::testing::TestWithParam<strategy_case> {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  weft::options opts() const {
    weft::options o;
    o.strategy = GetParam().strategy;
    o.stack_reserve = GetParam().reserve;
    return o;
  }
};

TEST_P(SelfInlined, RecursionGrowsTheStack) {
  const int n = 3000;  // ~3 MiB of logical frames
  long r = -1;
  std::size_t size = 0;
  weft::run(
      [&] {
        weft::spawn([&] {
          r = run_self_inlined(n);
          size = weft::this_stack().size;
        }).join();
      },
      opts());
  EXPECT_EQ(r, n + 1);
  EXPECT_GE(size, std::size_t{3} << 20);
  RecordProperty("physical_frames", static_cast<int>(distinct_frames(n)));
#if !defined(__OPTIMIZE__)
  GTEST_SKIP() << "-O0 inlines nothing: the growth worked, but this build proves nothing about overshoot";
#endif
}

TEST_P(SelfInlined, TheCompilerReallyPutSeveralLevelsInOneFrame) {
#if !defined(__OPTIMIZE__) || defined(WEFT_SANITIZE_ADDRESS) || defined(WEFT_SANITIZE_THREAD)
  GTEST_SKIP() << "only optimized builds without sanitizers inline the recursion";
#endif
  weft::run([] { weft::spawn([] { run_self_inlined(200); }).join(); }, opts());
  EXPECT_LT(distinct_frames(200), 200u / 2) << "GCC did not inline the recursion into itself: the cases prove less";
}

TEST_P(SelfInlined, PastTheLimitIsAFatalErrorThatSaysWhy) {
  const bool in_place = GetParam().strategy == weft::stack_strategy::in_place;
  EXPECT_EXIT(
      {
        weft::options o = opts();
        if (in_place) o.stack_reserve = std::size_t{2} << 20;  // the reserve is the limit
        else o.stack_max = std::size_t{1} << 20;                 // stack_max is
        weft::run([] { weft::spawn([] { run_self_inlined(50000); }).join(); }, o);
        std::exit(0);
      },
      ::testing::ExitedWithCode(2),
      in_place ? "weft: fatal error: goroutine [0-9]+ needs a [0-9]+-byte stack .*, more than its slot holds.*"
                 "2097152-byte WEFT_STACK_RESERVE"
               : "weft: fatal error: goroutine [0-9]+ stack exceeds 1048576-byte limit");
}

INSTANTIATE_TEST_SUITE_P(Strategies, SelfInlined, ::testing::ValuesIn(kStrategies),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- running out inside the switch ---------------------------------------------------------------

// Runs `fn` in a forked child; returns its wait status and what it wrote to stderr.
template <class F>
std::pair<int, std::string> in_child(F fn) {
  int fds[2];
  if (::pipe(fds) != 0) return {-1, "pipe failed"};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    fn();
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {status, out};
}

// Moves the stack pointer to `above` bytes over the bottom of the slot, then yields: the
// yield's own frames and the switch's pushes run out of stack at some instruction.
__attribute__((noinline)) void yield_at(std::uintptr_t bottom, std::size_t above) {
  const auto sp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)) - 64;
  volatile char* gap = static_cast<volatile char*>(alloca(sp - bottom - above));
  asm volatile("" : : "r"(gap) : "memory");
  weft::yield();
}

TEST(SwitchPath, AStackThatRunsOutInsideTheSwitchIsReportedAsWeftsError) {
#if defined(WEFT_SANITIZE_ADDRESS) || defined(WEFT_SANITIZE_THREAD)
  GTEST_SKIP() << "sanitizer frames are many times larger, and their hooks prefault the headroom";
#endif
  // Every position from inside the yield's first frame to past the deepest push of the
  // switch: the child either survives (its frames fit) or ends in weft's report; never in a
  // bare signal, and never in the report for another goroutine's slot (what a fault after
  // the switch has named the next goroutine as running would give).
  const std::regex report("weft: fatal error: goroutine [0-9]+ needs a [0-9]+-byte stack \\(a fault at 0x[0-9a-f]+, "
                          "[0-9]+ bytes below its stack\\), more than its slot holds");
  int reported = 0, survived = 0;
  for (std::size_t above = 0; above <= 2048; above += 16) {
    auto [status, out] = in_child([above] {
      weft::options o;
      o.stack_reserve = 64 * 1024;  // the slot allows 64 KiB
      o.procs = 1;
      weft::run([above] {
        weft::go([] {});  // something to switch to
        weft::ensure_stack(48 * 1024);  // the whole slot accessible: the next fault is at its bottom
        const weft::stack_info si = weft::this_stack();
        ASSERT_EQ(si.hi - si.lo, std::size_t{64} << 10);
        yield_at(si.lo, above);
      }, o);
    });
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      ++survived;
      continue;
    }
    ++reported;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2 && std::regex_search(out, report))
        << above << " bytes above the slot's bottom: status " << status << ", stderr:\n" << out;
  }
  EXPECT_GT(reported, 0) << "no position ran out of stack: the sweep tests nothing";
  EXPECT_GT(survived, 0) << "no position had room for a yield: the sweep does not reach past the switch";
}

// ---- a big frame beside parked neighbours ---------------------------------------------------------

TEST(BigFrames, AFrameOf320KiBWithoutChecksStaysInItsOwnSlot) {
  constexpr int kNeighbours = 16;
  std::array<long, kNeighbours> damaged{};
  long sum = -1;
  std::size_t grown_to = 0;
  weft::run([&] {
    weft::chan<int> release(0);
    weft::wait_group parked, done;
    for (int i = 0; i < kNeighbours; ++i) {
      parked.add(1);
      done.add(1);
      weft::go([&, i, release]() mutable {
        std::array<unsigned char, 4096> mine;
        mine.fill(static_cast<unsigned char>(0xa0 + i));
        parked.done();
        (void)release.recv();
        for (unsigned char b : mine) damaged[i] += b != static_cast<unsigned char>(0xa0 + i);
        done.done();
      });
    }
    parked.wait();
    weft::spawn([&] {
      // Without probes the frame jumps the band below the stack into the reserve, with no
      // fault: this_stack() (and the scan) must still see the stack as it is.
      static std::size_t* seen;
      seen = &grown_to;
      sum = touch_big_frame(329'520, [] { *seen = weft::this_stack().size; });
    }).join();
    release.close();
    done.wait();
  }, weft::options{});
  EXPECT_EQ(sum, 64 * 0x5a);
  EXPECT_GE(grown_to, std::size_t{329'520});
  for (int i = 0; i < kNeighbours; ++i) EXPECT_EQ(damaged[i], 0) << "neighbour " << i;
}

TEST(BigFrames, AFramePastTheWholeSlotIsCaughtByItsProbes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        weft::run([] { weft::spawn([] { touch_big_frame_probed(std::size_t{9} << 20, [] {}); }).join(); }, weft::options{});
        std::exit(0);
      },
      ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+ needs a [0-9]+-byte stack.*more than its slot holds");
}

}  // namespace
