// SPDX-License-Identifier: Apache-2.0
// Stack growth, copying, shrinking, pins, quarantine and fault reports (DESIGN §3, issue 5).
//
// This one source is built four times (tests/grow/CMakeLists.txt): at -O2 and -O0, each with
// explicit checks only (WEFT_STACK_CHECK in every recursive frame) and with -fsplit-stack +
// gold (WEFT_TEST_SPLIT_STACK: no explicit checks at all; the compiler's prologues call
// __morestack).  The value-parameterized cases run under four stack configurations:
//   in_place   the default: growth in place inside an 8 MiB slot, never a copy;
//   copy       stack_strategy::copy with its 256 KiB reserve: in place inside it, copies past it;
//   pure_copy  stack_reserve = 0: every doubling and every halving copies (Go);
//   segmented  stack_strategy::segmented: prologues link segments, frames never move (with
//              explicit checks only it cannot segment, so it gets a reserve to grow into).
// Cases whose rule a configuration cannot keep (a std::map local across a copy; a pinned
// stack growing past its slot with explicit checks only) are skipped there, with the reason.
#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "runtime/testing/testing.hpp"
#include "runtime/sched/g.hpp"
#include "weft/weft.hpp"

#if defined(WEFT_TEST_SPLIT_STACK)
#define GROW_CHECK(n) ((void)0)
#else
#define GROW_CHECK(n) WEFT_STACK_CHECK(n)
#endif
// Code without checks of either kind (also when WEFT_SPLIT_STACK builds everything with
// -fsplit-stack): a fault is all that notices it running out.
#define NO_CHECKS __attribute__((noinline, no_split_stack))

namespace {

using namespace std::chrono_literals;

#if defined(WEFT_SANITIZE_ADDRESS) || defined(WEFT_SANITIZE_THREAD)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#if defined(WEFT_TEST_SPLIT_STACK)
constexpr bool kSplit = true;
#else
constexpr bool kSplit = false;
#endif

// ---- configurations ---------------------------------------------------------------------

struct config {
  const char* name;
  std::optional<std::size_t> reserve;
  weft::stack_strategy strategy;
};

const config kConfigs[] = {
    {"in_place", std::nullopt, weft::stack_strategy::in_place},  // the default
    {"copy", std::nullopt, weft::stack_strategy::copy},          // in place up to 256 KiB, then copies
    {"pure_copy", std::size_t{0}, weft::stack_strategy::copy},
    // With explicit checks a segmented stack can only grow in place: give it room.
    {"segmented", kSplit ? std::optional<std::size_t>{} : std::optional<std::size_t>{std::size_t{16} << 20},
     weft::stack_strategy::segmented},
};

weft::options options_for(const config& c, unsigned procs = 2) {
  weft::options o;
  o.procs = procs;
  o.stack_reserve = c.reserve;
  o.strategy = c.strategy;
  o.scan_interval = 0ms;  // scans only when a test asks
  return o;
}

class Grow : public ::testing::TestWithParam<config> {
 protected:
  weft::options opts(unsigned procs = 2) const { return options_for(GetParam(), procs); }
  bool pure_copy() const { return GetParam().reserve == std::size_t{0} && GetParam().strategy == weft::stack_strategy::copy; }
  bool segmented() const { return GetParam().strategy == weft::stack_strategy::segmented; }
};

std::string config_name(const ::testing::TestParamInfo<config>& i) { return i.param.name; }

std::atomic<long> g_bad{0};  // frames that found their own state damaged

// ---- deep, pointer-rich recursion ---------------------------------------------------------

// One frame's worth of state whose pointers into the stack a copy must adjust: a parent
// pointer (the chain runs through every frame), a reference to a local of the top frame,
// a short std::string (its SSO buffer is inside this frame), and a std::function capturing
// locals by reference (stored inline, in the frame).
//
// The string is made with every byte of its buffer written (set_tag).  Made the usual way —
// "d" + std::to_string(depth) — a short string keeps in the unused bytes of its buffer
// whatever the stack held there, often the top bytes of a dead pointer into this stack, and
// with "21" below them the word reads as an address in the stack, which a copy's conservative
// adjustment then changes: "d21" became "d2\xb1" (issue 22, item 8; runtime/sched/grow.cpp,
// move_stack).  These cases are about pointers; plain data that looks like one is
// idioms_test.cpp's PlainData.
struct frame_state {
  frame_state* parent;
  long depth;
  long& total;
  std::string tag;
  std::function<long()> get;
  unsigned char pad[256];
};

// Appended rather than "d" + to_string(...): GCC 12 at -O3 warns (-Wrestrict) about the
// memcpy inside operator+(const char*, string&&), a false positive that -Werror turns fatal.
std::string tag_for(long depth) {
  std::string s = "d";
  s += std::to_string(depth % 10000);
  return s;
}

// tag_for's characters in a buffer whose every byte is written.
struct tag_text {
  char s[16] = {};
  explicit tag_text(long depth) { std::snprintf(s, sizeof s, "d%ld", depth % 10000); }
};

// A frame's tag: `tag` was made of 15 '\0's, so the characters go into a buffer with nothing
// left over from the stack.
void set_tag(std::string& tag, long depth) { tag.assign(tag_text(depth).s); }

bool intact(const frame_state& f) {
  if (f.tag != tag_text(f.depth).s) return false;
  for (unsigned char b : f.pad)
    if (b != static_cast<unsigned char>(f.depth)) return false;
  return f.get() == f.depth * 8;
}

__attribute__((noinline)) long descend(frame_state* parent, long depth, long n, long& total) {
  GROW_CHECK(1024);
  long local = depth * 7;
  frame_state me{parent, depth, total, std::string(15, '\0'), {}, {}};
  set_tag(me.tag, depth);
  me.get = [&] { return local + me.depth; };
  std::memset(me.pad, static_cast<int>(depth & 0xff), sizeof me.pad);
  total += depth;
  long r;
  if (depth == n) {
    r = 0;
    long expect = n;
    for (frame_state* f = &me; f; f = f->parent, --expect) {
      if (f->depth != expect || !intact(*f) || &f->total != &total) g_bad.fetch_add(1);
      r += f->depth;
    }
    if (expect != -1) g_bad.fetch_add(1);
  } else {
    r = descend(&me, depth + 1, n, total);
  }
  if (!intact(me) || me.parent != parent || &me.total != &total) g_bad.fetch_add(1);
  return r;
}

long deep_checksum(long n) {
  long total = 0;
  long r = descend(nullptr, 0, n, total);
  if (total != n * (n + 1) / 2) g_bad.fetch_add(1);
  return r;
}

TEST_P(Grow, DeepPointerRichRecursionSurvivesGrowthAndCopies) {
  g_bad = 0;
  weft::stats after{};
  long sum = weft::run(
      [&] {
        long s = deep_checksum(4000);  // ~2 MiB of frames: past the default reserve
        s += deep_checksum(200);
        after = weft::get_stats();
        return s;
      },
      opts());
  EXPECT_EQ(sum, 4000L * 4001 / 2 + 200L * 201 / 2);
  EXPECT_EQ(g_bad.load(), 0);
  // 8 KiB to 2 MiB is eight doublings; split-stack code starts by asking for 16 KiB more
  // (gold's room for calls into code without checks), so six.  Sanitizers' 32 KiB headroom
  // makes the first growth 8 KiB -> 64 KiB: five.
  EXPECT_GE(after.stack_grows, kSanitized ? 5u : 6u);
  if (pure_copy()) {
    EXPECT_GE(after.stack_copies, kSanitized ? 5u : 6u);
  }
  if (segmented()) {
    EXPECT_EQ(after.stack_copies, 0u);
  }
}

// A small closure is built in the goroutine's record (weft/runtime.hpp), beside the stack that
// gets copied: its captures — a short std::string, whose data pointer points into the string
// itself, and a vector — must still read right after copies, and its destructor must run
// (the shared_ptr's count drops back).
TEST_P(Grow, AGoroutinesOwnClosureSurvivesCopiesOfItsStack) {
  g_bad = 0;
  auto token = std::make_shared<int>(5);
  std::string seen;
  long sum = 0, copies = 0;
  weft::run(
      [&] {
        const weft::stats before = weft::get_stats();
        std::string word = "short";  // in the string's own buffer (SSO)
        std::vector<int> nums{1, 2, 3};
        weft::spawn([word, nums, token, &seen, &sum] {
          sum = deep_checksum(4000);  // grows past the reserve: the copy strategies copy
          seen = word + std::to_string(nums[0] + nums[1] + nums[2]) + std::to_string(*token);
        }).join();
        copies = static_cast<long>(weft::get_stats().stack_copies - before.stack_copies);
      },
      opts());
  EXPECT_EQ(seen, "short65");
  EXPECT_EQ(sum, 4000L * 4001 / 2);
  EXPECT_EQ(g_bad.load(), 0);
  EXPECT_EQ(token.use_count(), 1) << "the closure was not destroyed";
  if (pure_copy()) {
    EXPECT_GE(copies, 1) << "the stack was never copied: the test proves nothing";
  }
}

// join returns only once the goroutine's closure is destroyed and its pins released (as
// std::thread::join does): a capture whose destructor parks, and a capture pointing into the
// joiner's stack.  On one P the parking destructor lets the joiner run at once if it was woken
// early; it then finds the capture alive and, growing past its stack (copies), still pinned.
TEST_P(Grow, AJoinerWakesOnlyAfterTheClosureIsGone) {
  g_bad = 0;
  struct parks_when_destroyed {
    std::shared_ptr<int> token;
    explicit parks_when_destroyed(std::shared_ptr<int> t) : token(std::move(t)) {}
    parks_when_destroyed(parks_when_destroyed&&) noexcept = default;
    ~parks_when_destroyed() {
      if (!token) return;  // moved from
      for (int i = 0; i < 3; ++i) weft::yield();
      weft::sleep_for(1ms);
    }
  };
  auto token = std::make_shared<int>(7);
  long use_after_join = -1, sum = 0;
  weft::run(
      [&] {
        long local = 0;  // the capture below points here: the child pins this stack
        weft::spawn([p = parks_when_destroyed(token), &local] { local = *p.token; }).join();
        use_after_join = token.use_count();
        sum = deep_checksum(4000) + local;  // grows past the reserve: copies, unless pinned
      },
      opts(1));
  EXPECT_EQ(use_after_join, 1) << "join returned before the closure was destroyed";
  EXPECT_EQ(sum, 4000L * 4001 / 2 + 7);
  EXPECT_EQ(g_bad.load(), 0);
}

// A mutable closure may store the address of one of its goroutine's locals in a capture.  The
// closure lives off the stack (in the G record, or on the heap when big), so a copy of the
// stack must adjust that capture as it adjusts the stack's own words (move_stack).  Both kinds.
TEST_P(Grow, AClosureCapturePointingIntoItsOwnStackFollowsACopy) {
  g_bad = 0;
  bool same_small = false, same_big = false;
  long sum = 0, copies = 0;
  weft::run(
      [&] {
        const weft::stats before = weft::get_stats();
        weft::spawn([&same_small, &sum, where = static_cast<volatile int*>(nullptr)]() mutable {
          volatile int local = 7;
          where = &local;
          sum = deep_checksum(4000);  // grows past the reserve: the copy strategies copy
          same_small = where == &local && *where == 7;
        }).join();
        std::array<char, 2 * weft::detail::kInlineClosureMax> pad{};  // too big for the record
        weft::spawn([&same_big, pad, where = static_cast<volatile int*>(nullptr)]() mutable {
          volatile int local = 8;
          where = &local;
          (void)deep_checksum(4000);
          same_big = where == &local && *where == 8 && pad[0] == 0;
        }).join();
        copies = static_cast<long>(weft::get_stats().stack_copies - before.stack_copies);
      },
      opts());
  EXPECT_TRUE(same_small) << "a capture in the record still points where the local was before the copy";
  EXPECT_TRUE(same_big) << "a capture on the heap still points where the local was before the copy";
  EXPECT_EQ(sum, 4000L * 4001 / 2);
  EXPECT_EQ(g_bad.load(), 0);
  if (pure_copy()) {
    EXPECT_GE(copies, 2) << "the stacks were not copied: the test proves nothing";
  }
}

TEST_P(Grow, ManyGoroutinesRecurseAtOnce) {
  g_bad = 0;
  std::atomic<long> sum{0};
  weft::run(
      [&] {
        std::vector<weft::task<void>> ts;
        for (int i = 0; i < 64; ++i)
          ts.push_back(weft::spawn([&sum, i] { sum += deep_checksum(300 + 37 * i); }));
        for (auto& t : ts) t.join();
      },
      opts());
  long expect = 0;
  for (int i = 0; i < 64; ++i) expect += (300L + 37 * i) * (301L + 37 * i) / 2;
  EXPECT_EQ(sum.load(), expect);
  EXPECT_EQ(g_bad.load(), 0);
}

// ---- exceptions through copied frames ------------------------------------------------------

struct boom {
  long depth;
  std::string where;
};

__attribute__((noinline)) long thrower(long depth, long n, long& unwound) {
  GROW_CHECK(1024);
  struct guard {
    long& n;
    ~guard() { ++n; }
  } g{unwound};
  std::string sso = tag_for(depth);
  unsigned char pad[400];
  std::memset(pad, static_cast<int>(depth), sizeof pad);
  if (depth == n) throw boom{depth, "bottom " + sso};
  long r = thrower(depth + 1, n, unwound);
  return r + pad[depth % 400] + static_cast<long>(sso.size());
}

TEST_P(Grow, ExceptionThrownAtTheBottomIsCaughtAtTheTopAfterCopies) {
  long unwound = 0, caught_depth = -1;
  std::string where;
  weft::stats before{}, after{};
  weft::run(
      [&] {
        before = weft::get_stats();
        try {
          thrower(0, 3000, unwound);
        } catch (const boom& b) {
          caught_depth = b.depth;
          where = b.where;
        }
        after = weft::get_stats();
        // And again on the now-big stack, then from a fresh goroutine.
        try {
          thrower(0, 500, unwound);
        } catch (const boom&) {
        }
        weft::spawn([&] {
          try {
            thrower(0, 1000, unwound);
          } catch (const boom& b) {
            caught_depth += b.depth;
          }
        }).join();
      },
      opts());
  EXPECT_EQ(caught_depth, 3000 + 1000);
  EXPECT_EQ(where, "bottom d3000");
  EXPECT_EQ(unwound, 3001 + 501 + 1001);  // every frame's destructor ran
  if (pure_copy()) {
    EXPECT_GE(after.stack_copies - before.stack_copies, 3u);
  }
}

// ---- parked goroutines shrunk by scans ------------------------------------------------------

// A few frames of pointer-rich state, parked at the bottom until `go_on` says so.
__attribute__((noinline)) long park_in_chain(frame_state* parent, long depth, long& total, weft::chan<int>& go_on,
                                             weft::wait_group& parked) {
  GROW_CHECK(1024);
  long local = depth * 7;
  frame_state me{parent, depth, total, std::string(15, '\0'), {}, {}};
  set_tag(me.tag, depth);
  me.get = [&] { return local + me.depth; };
  std::memset(me.pad, static_cast<int>(depth & 0xff), sizeof me.pad);
  long r = 0;
  if (depth == 8) {
    parked.done();
    (void)go_on.recv();
    for (frame_state* f = &me; f; f = f->parent) r += intact(*f) ? f->depth : -1000;
  } else {
    r = park_in_chain(&me, depth + 1, total, go_on, parked);
  }
  if (!intact(me)) g_bad.fetch_add(1);
  return r;
}

TEST_P(Grow, ParkedGoroutinesAreShrunkByScans) {
  constexpr int kN = 32;
  g_bad = 0;
  std::atomic<long> sum{0};
  std::atomic<std::size_t> max_before{0}, max_after{0};
  weft::stats st{};
  weft::run(
      [&] {
        weft::chan<int> go_on(kN);
        weft::wait_group parked, finished;
        parked.add(kN);
        finished.add(kN);
        for (int i = 0; i < kN; ++i) {
          weft::go([&] {
            deep_checksum(2000);  // grow to ~1 MiB, then come back up
            std::size_t big = weft::this_stack().size;
            std::size_t m = max_before.load();
            while (big > m && !max_before.compare_exchange_weak(m, big)) {
            }
            long total = 0;
            sum += park_in_chain(nullptr, 0, total, go_on, parked);
            std::size_t small = weft::this_stack().size;
            m = max_after.load();
            while (small > m && !max_after.compare_exchange_weak(m, small)) {
            }
            finished.done();
          });
        }
        parked.wait();
        // parked.done() comes just before the park: a goroutine can still be running (its
        // thread descheduled, or waking this one) while the scans begin, and a scan skips a
        // running goroutine by design.  Scan only once all kN are parked on go_on.
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        weft::detail::testing::runtime_snapshot snap{};
        while (weft::detail::testing::snapshot(&snap) && snap.g_waiting < std::uint64_t{kN} &&
               std::chrono::steady_clock::now() < give_up)
          weft::sleep_for(std::chrono::microseconds(200));
        EXPECT_GE(snap.g_waiting, std::uint64_t{kN}) << "the goroutines did not all park within 30 s";
        // Each scan halves every parked goroutine once; ten take 1 MiB down to the smallest
        // size that still holds what is used plus the headroom.
        for (int i = 0; i < 12; ++i) weft::scan();
        st = weft::get_stats();
        for (int i = 0; i < kN; ++i) go_on.send(1);
        finished.wait();
      },
      opts());
  long one = 0;
  for (long d = 0; d <= 8; ++d) one += d;
  EXPECT_EQ(sum.load(), one * kN);
  EXPECT_EQ(g_bad.load(), 0);
  EXPECT_LE(max_after.load(), std::size_t{64} << 10) << "parked stacks were not shrunk";
  if (!(kSplit && segmented())) {  // (split-stack segmented: the deep part ran on segments)
    EXPECT_GE(max_before.load(), std::size_t{512} << 10);
    EXPECT_GE(st.stack_shrinks, std::uint64_t{kN} * 4);
  }
}

// ---- scans while goroutines run on two Ps --------------------------------------------------

TEST_P(Grow, ScansRunConcurrentlyWithRunningGoroutinesOnTwoPs) {
  constexpr int kG = 8;
  g_bad = 0;
  std::atomic<bool> done{false};
  std::atomic<long> rounds{0};
  std::atomic<std::uint64_t> scans{0};
  weft::stats st{};
  weft::runtime rt(opts(2));
  std::thread scanner([&] {
    while (!done.load()) {
      weft::scan();
      scans.fetch_add(1);
    }
  });
  {
    weft::wait_group wg;
    wg.add(kG);
    for (int i = 0; i < kG; ++i) {
      weft::go([&, i] {
        // A small generator: this frame runs without a check on an 8 KiB stack (pure_copy has
        // no reserve to fault into), and sanitizer builds lay it out several times bigger.
        std::minstd_rand rng(1234 + i);
        // At least 40 rounds, and on until the scanner has shrunk something (a loaded machine
        // may keep the new scanner thread off the CPU for the first 40), for at most 10 s.
        const auto until = std::chrono::steady_clock::now() + 10s;
        for (int r = 0; r < 40 || ((scans.load() < 3 || weft::get_stats().stack_shrinks == 0) &&
                                   std::chrono::steady_clock::now() < until);
             ++r) {
          long n = 50 + static_cast<long>(rng() % 1500);
          if (deep_checksum(n) != n * (n + 1) / 2) g_bad.fetch_add(1);
          weft::sleep_for(std::chrono::microseconds(rng() % 200));  // parked: scannable
          rounds.fetch_add(1);
        }
        wg.done();
      });
    }
    wg.wait();
  }
  st = weft::get_stats();
  done = true;
  scanner.join();
  EXPECT_GE(rounds.load(), kG * 40);
  EXPECT_EQ(g_bad.load(), 0);
  EXPECT_GT(scans.load(), 0u);
  EXPECT_GT(st.stack_shrinks, 0u);
}

// ---- node containers: pointers into the stack that the scan cannot see ----------------------

// The rule kept by the default configuration: a stack that stays within its reserve grows and
// shrinks in place, never by copying, so a local std::map (whose root points back at the
// header inside the map object) and friends stay valid.
__attribute__((noinline)) void mutate_deep(int depth, std::map<int, std::string>& m, std::set<int>& s, std::list<int>& l,
                                           std::unordered_map<int, int>& u) {
  GROW_CHECK(1024);
  unsigned char pad[400];
  std::memset(pad, depth, sizeof pad);
  if (depth % 10 == 0) {
    m[depth] = tag_for(depth);
    s.insert(depth);
    l.push_back(depth);
    l.push_front(-depth);
    u[depth] = depth * 2;
  }
  if (depth > 0) mutate_deep(depth - 1, m, s, l, u);
  if (pad[depth % 400] != static_cast<unsigned char>(depth)) g_bad.fetch_add(1);
}

TEST_P(Grow, NodeContainerLocalsSurviveGrowthAndScansInTheDefaultConfiguration) {
  if (pure_copy())
    GTEST_SKIP() << "pure copying moves the stack at every doubling: a local std::map cannot survive that (by design)";
  g_bad = 0;
  bool ok = false;
  std::vector<std::size_t> sizes;
  weft::stats before{}, after{};
  weft::run(
      [&] {
        std::map<int, std::string> m;
        std::set<int> s;
        std::list<int> l;
        std::unordered_map<int, int> u;
        before = weft::get_stats();
        for (int round = 0; round < 4; ++round) {
          mutate_deep(300, m, s, l, u);    // ~150 KiB: grows in place, inside the reserve
          weft::go([] { weft::scan(); });  // runs while this goroutine sleeps (one P): shrinks it
          weft::sleep_for(1ms);
          m.erase(round * 10);
          s.erase(round * 10);
          l.pop_front();
          u.erase(round * 10);
        }
        after = weft::get_stats();
        // 31 keys (0, 10 ... 300) each round; the last round erased 30 after re-inserting 0-20.
        sizes = {m.size(), s.size(), u.size(), l.size()};
        bool good = true;
        for (auto& [k, v] : m) good = good && v == tag_for(k) && s.count(k) && u.at(k) == 2 * k;
        int prev = -1;
        for (int k : s) good = good && k > prev && (prev = k, true);
        long list_sum = 0;
        for (int v : l) list_sum += v;
        // Each round pushes d at the back and -d at the front for d = 300, 290 ... 0, and pops
        // the front (-0) once: the sum stays 0, the front is -10, the back 0.
        ok = good && list_sum == 0 && l.front() == -10 && l.back() == 0;
      },
      opts(1));
  EXPECT_TRUE(ok);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{30, 30, 30, 4 * 62 - 4}));
  EXPECT_EQ(g_bad.load(), 0);
  EXPECT_EQ(after.stack_copies, before.stack_copies) << "the stack was copied: the containers' sentinels went stale";
  EXPECT_GT(after.stack_grows, before.stack_grows);
}

// ---- go([&]...) children writing into the parent's stack ---------------------------------------

__attribute__((noinline)) long grow_and_park(int depth) {
  GROW_CHECK(1024);
  unsigned char pad[400];
  std::memset(pad, depth, sizeof pad);
  long r = depth;
  if (depth % 200 == 0) weft::sleep_for(100us);  // parks (and lets children run) mid-way
  if (depth > 0) r += grow_and_park(depth - 1);
  return r + (pad[depth % 400] == static_cast<unsigned char>(depth) ? 0 : 1'000'000);
}

// Yields until the running goroutine's stack has no pins, or 10 s have passed: a go() child
// unpins after its last statement, and a loaded machine may hold its M off the CPU in between.
bool wait_until_unpinned() {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (weft::this_stack().pinned) {
    if (std::chrono::steady_clock::now() > until) return false;
    weft::yield();
  }
  return true;
}

TEST_P(Grow, GoChildrenWriteIntoTheParentStackWhileItGrowsAndParks) {
  if (!kSplit && pure_copy())
    GTEST_SKIP() << "with explicit checks only, a pinned stack cannot grow past its slot (fatal by design; a death "
                    "test covers it); split-stack prologues link a segment instead";
  constexpr int kChildren = 64;
  // With explicit checks a pinned stack must stay inside its slot: ~180 KiB (the default
  // reserve holds it).  Split-stack prologues link a segment past it: ~900 KiB.
  // (Sanitizer frames are several times bigger: fewer of them.)
  constexpr long kDepth = kSplit ? 2000 : kSanitized ? 120 : 400;
  bool pinned_while_children = false, unpinned_after = false;
  long grown = 0;
  int slots_ok = 0;
  weft::run(
      [&] {
        long slots[kChildren] = {};
        std::atomic<int> running{kChildren};
        weft::chan<int> done(kChildren);  // the channel lives on the heap; only its handle is local
        weft::chan<int> gate;             // closed once the parent has looked at its pin
        for (int i = 0; i < kChildren; ++i) {
          weft::go([&, i] {
            slots[i] = i + 1;
            (void)gate.recv();
            weft::sleep_for(std::chrono::microseconds(50 * (i % 7)));
            slots[i] += 1000;  // written after the parent may have grown (and, segmented, moved on)
            running.fetch_sub(1);
            done.send(i);
          });
        }
        pinned_while_children = weft::this_stack().pinned;
        gate.close();
        grown = grow_and_park(kDepth);  // in place within the reserve, or a segment past the slot
        for (int i = 0; i < kChildren; ++i) (void)done.recv();
        for (int i = 0; i < kChildren; ++i) slots_ok += slots[i] == i + 1001;
        // The pins end when each child's closure is gone, just after its send: wait for it.
        unpinned_after = wait_until_unpinned();
      },
      opts());
  EXPECT_TRUE(pinned_while_children);
  EXPECT_TRUE(unpinned_after);
  EXPECT_EQ(slots_ok, kChildren);
  EXPECT_EQ(grown, kDepth * (kDepth + 1) / 2);
}

TEST(GrowPins, ClosuresWithoutStackPointersDoNotPin) {
  bool pinned_by_value = true, pinned_by_ref = false, pinned_by_pin = false;
  weft::run([&] {
    int x = 5;
    weft::chan<int> c(2), gate1, gate2;  // each child waits at its gate until looked at
    weft::go([x, c, gate1]() mutable {
      (void)gate1.recv();
      c.send(x);
    });
    pinned_by_value = weft::this_stack().pinned;
    gate1.close();
    (void)c.recv();
    weft::go([&x, c, gate2]() mutable {
      (void)gate2.recv();
      c.send(x);
    });
    pinned_by_ref = weft::this_stack().pinned;
    gate2.close();
    (void)c.recv();
    (void)wait_until_unpinned();
    {
      weft::stack_pin pin;
      pinned_by_pin = weft::this_stack().pinned;
    }
  });
  EXPECT_FALSE(pinned_by_value);
  EXPECT_TRUE(pinned_by_ref);
  EXPECT_TRUE(pinned_by_pin);
}

// A child whose closure points into its parent's stack pins the parent until the child ends;
// a parent that ends first leaves the child's unpin with nowhere to go.  It must not land on
// whichever goroutine gets the parent's record next (whose pin count it would wrap).  One P
// fixes the order: the child hands the parent a value, yields so that the parent runs and
// exits, and only then ends; the next two goroutines get both dead records.
TEST(GrowPins, AChildThatOutlivesItsParentPinsNothingAfterIt) {
  bool parent_was_pinned = false, next_pinned[2] = {true, true};
  weft::options o;
  o.procs = 1;
  weft::run(
      [&] {
        weft::spawn([&] {
          weft::chan<int> ch;
          weft::go([&ch] {
            ch.send(1);
            weft::yield();  // the parent, readied by the send, runs and exits meanwhile
          });
          (void)ch.recv();
          parent_was_pinned = weft::this_stack().pinned;
        }).join();
        for (int i = 0; i < 10; ++i) weft::yield();  // let the child end
        // Both at once, so that they take both records.
        auto a = weft::spawn([&] { next_pinned[0] = weft::this_stack().pinned; });
        auto b = weft::spawn([&] { next_pinned[1] = weft::this_stack().pinned; });
        a.join();
        b.join();
      },
      o);
  EXPECT_TRUE(parent_was_pinned) << "the child did not pin its parent: the test proves nothing";
  EXPECT_FALSE(next_pinned[0]);
  EXPECT_FALSE(next_pinned[1]);
}

// ---- faults in the reserve: code without checks grows in place ----------------------------------

NO_CHECKS long unchecked(int depth);  // (GCC takes no_split_stack only before the definition)
long unchecked(int depth) {
  volatile unsigned char pad[480];
  pad[0] = static_cast<unsigned char>(depth);
  long r = depth > 0 ? unchecked(depth - 1) : 0;
  return r + pad[0];
}

// With copy, moved-from stacks stay quarantined (on by default there): at most 16 per
// goroutine (its oldest go back first), all given back when it exits, counted in weft::stats.
TEST(GrowQuarantine, AGoroutineKeepsAtMostSixteenMovedFromRangesAndGivesThemBackAtExit) {
  weft::options o;
  o.strategy = weft::stack_strategy::copy;
  o.stack_reserve = 0;
  o.scan_interval = 0ms;
  o.stack_max = std::size_t{8} << 30;
  std::uint64_t base = 0, moves = 0, kept = 0, kept_bytes = 0, after = 0;
  weft::run(
      [&] {
        base = weft::get_stats().stack_quarantined;  // (the main goroutine may have moved too)
        weft::spawn([&] {
          const std::uint64_t before = weft::get_stats().stack_copies;
          // Doubles: from 8 KiB (16 KiB in split-stack builds) to 4 GiB, address space only.
          while (weft::this_stack().size < (std::size_t{4} << 30)) weft::ensure_stack(weft::this_stack().size);
          moves = weft::get_stats().stack_copies - before;
          kept = weft::get_stats().stack_quarantined - base;
          kept_bytes = weft::get_stats().stack_bytes_quarantined;
        }).join();
        after = weft::get_stats().stack_quarantined;
      },
      o);
  // (Sanitizers' 32 KiB headroom makes the first growth bigger: 16 moves to 4 GiB there.)
  if (!kSanitized) {
    EXPECT_GT(moves, 16u) << "the bound was never reached: the case proves nothing";
  }
  EXPECT_EQ(kept, std::min<std::uint64_t>(moves, 16));
  EXPECT_GE(kept_bytes, std::uint64_t{2} << 30) << "the newest range alone is the 2 GiB stack";
  EXPECT_EQ(after, base);
}

TEST(GrowFaults, CodeWithoutChecksGrowsInPlaceThroughFaultsInTheReserve) {
  long r = 0;
  std::uint32_t grows = 0;
  std::size_t size = 0;
  weft::options o;
  o.stack_reserve = std::size_t{1} << 20;
  weft::run(
      [&] {
        r = unchecked(1000);  // ~500 KiB, no checks: every doubling is a fault
        grows = weft::this_stack().grows;
        size = weft::this_stack().size;
      },
      o);
  EXPECT_GE(size, std::size_t{512} << 10);
  long expect = 0;
  for (int d = 0; d <= 1000; ++d) expect += static_cast<unsigned char>(d);
  EXPECT_EQ(r, expect);
  EXPECT_GE(grows, 3u);  // 8 KiB to 512 KiB: six doublings, some taken in one step
}

// ---- headroom: the runtime's own work below a frame fits in kStackHeadroom -------------------------

constexpr unsigned char kPattern = 0xA5;

// Fills the accessible stack below the caller with a pattern, runs op, and returns how many
// bytes below this frame were written (the deepest point the op, and anything that ran on
// this stack meanwhile — post-switch actions of other goroutines — reached).
__attribute__((noinline)) std::size_t depth_of(const std::function<void()>& op) {
  auto si = weft::this_stack();
  auto* here = static_cast<unsigned char*>(__builtin_frame_address(0));
  auto* lo = reinterpret_cast<unsigned char*>(si.lo);
  unsigned char* top = here - 256;
  std::memset(lo, kPattern, static_cast<std::size_t>(top - lo));
  op();
  unsigned char* p = lo;
  while (p < top && *p == kPattern) ++p;
  return static_cast<std::size_t>(here - p);
}

TEST(GrowHeadroom, TheRuntimesOwnWorkFitsInTheHeadroom) {
  if (kSanitized) GTEST_SKIP() << "sanitizer frames are not representative (the headroom is raised for them)";
  std::vector<std::pair<const char*, std::size_t>> seen;
  weft::options o;
  o.procs = 2;
  o.stack_reserve = std::size_t{4} << 20;
  o.scan_interval = 0ms;
  weft::run(
      [&] {
        weft::ensure_stack(64 * 1024);  // room, so that nothing below grows the stack
        seen.emplace_back("baseline", depth_of([] {}));
        seen.emplace_back("yield to a new goroutine", depth_of([] {
                            weft::go([] {});
                            weft::yield();
                          }));
        seen.emplace_back("chan recv (parks)", depth_of([] {
                            weft::chan<int> c;
                            weft::go([c]() mutable { c.send(1); });
                            (void)c.recv();
                          }));
        seen.emplace_back("chan send (parks)", depth_of([] {
                            weft::chan<int> c;
                            weft::go([c]() mutable { (void)c.recv(); });
                            c.send(1);
                          }));
        seen.emplace_back("join", depth_of([] { weft::spawn([] { return 1; }).join(); }));
        seen.emplace_back("sleep", depth_of([] { weft::sleep_for(50us); }));
        seen.emplace_back("wait_group", depth_of([] {
                            weft::wait_group wg;
                            wg.add(1);
                            weft::go([&] { wg.done(); });
                            wg.wait();
                          }));
        seen.emplace_back("mutex, contended", depth_of([] {
                            static weft::mutex mu;
                            mu.lock();
                            weft::go([] {
                              mu.lock();
                              mu.unlock();
                            });
                            weft::yield();
                            mu.unlock();
                            weft::yield();
                          }));
        seen.emplace_back("go x300", depth_of([] {
                            for (int i = 0; i < 300; ++i) weft::go([] {});
                            weft::yield();
                          }));
        seen.emplace_back("ensure_stack slow path (grows in place)", depth_of([] {
                            weft::ensure_stack(weft::this_stack().size);
                          }));
      },
      o);
  std::size_t base = seen.front().second, worst = 0;
  for (auto& [what, d] : seen) {
    std::printf("  %-45s %5zu bytes below the caller\n", what, d - base);
    worst = std::max(worst, d - base);
  }
  // Twice the deepest seen must fit: paths not exercised here (a new M, an allocator slow
  // path) go a little deeper.
  EXPECT_LE(2 * worst, weft::detail::kStackHeadroom);
  EXPECT_GT(worst, 256u) << "the measurement saw nothing: is the pattern being written?";
}

// ---- split-stack specifics -----------------------------------------------------------------

#if defined(WEFT_TEST_SPLIT_STACK)

// Six integer and eight vector argument registers, stack arguments past them, varargs: all
// must reach the body intact through __morestack, whatever it did (grow, copy, segment).
__attribute__((noinline)) double many_args(long a, long b, long c, long d, long e, long f, double x0, double x1,
                                           double x2, double x3, double x4, double x5, double x6, double x7, long s1,
                                           double s2, const long* p, int depth) {
  unsigned char pad[300];
  std::memset(pad, depth, sizeof pad);
  double here = a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + x0 + 2 * x1 + 3 * x2 + 4 * x3 + 5 * x4 + 6 * x5 + 7 * x6 +
                8 * x7 + 9 * s1 + 10 * s2 + *p;
  if (depth == 0) return here;
  long local = depth;
  return here + many_args(a, b, c, d, e, f, x0, x1, x2, x3, x4, x5, x6, x7, s1, s2, &local, depth - 1) - local +
         (pad[depth % 300] == static_cast<unsigned char>(depth) ? 0 : 1e9);
}

__attribute__((noinline)) long sum_varargs(int n, ...) {
  va_list ap;
  va_start(ap, n);
  long s = 0;
  for (int i = 0; i < n; ++i) s += va_arg(ap, long);
  va_end(ap);
  return s;
}

__attribute__((noinline)) long varargs_deep(int depth) {
  unsigned char pad[300];
  std::memset(pad, depth, sizeof pad);
  long r = sum_varargs(10, 1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L, 9L, long{depth});  // four on the stack
  if (depth > 0) r += varargs_deep(depth - 1);
  return r + pad[depth % 300] - static_cast<unsigned char>(depth);
}

struct two_words {
  long a, b;
};
struct big_ret {
  long v[6];
};
__attribute__((noinline)) two_words ret_pair(int depth) {
  unsigned char pad[600];
  std::memset(pad, depth, sizeof pad);
  if (depth == 0) return {1, 2};
  two_words t = ret_pair(depth - 1);
  return {t.a + 1, t.b + 2 + pad[depth % 600] - static_cast<unsigned char>(depth)};
}
__attribute__((noinline)) big_ret ret_big(int depth) {
  unsigned char pad[600];
  std::memset(pad, depth, sizeof pad);
  if (depth == 0) return {{1, 2, 3, 4, 5, 6}};
  big_ret r = ret_big(depth - 1);
  for (long& x : r.v) x += 1 + pad[depth % 600] - static_cast<unsigned char>(depth);
  return r;
}
__attribute__((noinline)) long double ret_ld(int depth) {
  unsigned char pad[600];
  std::memset(pad, depth, sizeof pad);
  if (depth == 0) return 0.5L;
  return ret_ld(depth - 1) + 1.0L + pad[depth % 600] - static_cast<unsigned char>(depth);
}
__attribute__((noinline)) double ret_double(int depth) {
  unsigned char pad[600];
  std::memset(pad, depth, sizeof pad);
  if (depth == 0) return 0.25;
  return ret_double(depth - 1) + 1.0 + pad[depth % 600] - static_cast<unsigned char>(depth);
}

TEST_P(Grow, SplitStackPassesEveryArgumentAndReturnValueThrough) {
  double args = 0;
  long va = 0;
  two_words pair{};
  big_ret big{};
  long double ld = 0;
  double dbl = 0;
  weft::run(
      [&] {
        long one = 1;
        args = many_args(1, 2, 3, 4, 5, 6, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 11, 0.25, &one, 1500);
        va = varargs_deep(1500);
        pair = ret_pair(1000);
        big = ret_big(1000);
        ld = ret_ld(1000);
        dbl = ret_double(1000);
      },
      opts());
  double one_call = 1 + 4 + 9 + 16 + 25 + 36 + 0.5 + 3 + 7.5 + 14 + 22.5 + 33 + 45.5 + 60 + 99 + 2.5;
  // Each level adds its own sum with *p = the caller's `local` (its depth), minus that local.
  EXPECT_DOUBLE_EQ(args, one_call * 1501 + 1);
  EXPECT_EQ(va, 1501L * 45 + 1500L * 1501 / 2);
  EXPECT_EQ(pair.a, 1001);
  EXPECT_EQ(pair.b, 2002);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(big.v[i], i + 1 + 1000);
  EXPECT_EQ(ld, 1000.5L);
  EXPECT_EQ(dbl, 1000.25);
}

TEST(GrowSplit, PlainThreadsRunSplitStackCodeWithoutGoroutines) {
  // Limit word 0: no check fires, calls into code without checks take the fast path.
  long r = 0;
  std::thread t([&] { r = deep_checksum(2000); });
  t.join();
  EXPECT_EQ(r, 2000L * 2001 / 2);
}

__attribute__((noinline)) long spin_calls(std::atomic<bool>& stop) {
  long n = 0;
  while (!stop.load(std::memory_order_relaxed)) n += deep_checksum(3);
  return n;
}

TEST(GrowSplit, PrologueChecksCarrySysmonsPreemptionRequest) {
  // One P: main runs again only if the spinner — which calls no weft function and has no
  // explicit check — yields when its prologues see sysmon's poisoned limit.
  bool main_ran = false;
  weft::options o;
  o.procs = 1;
  weft::run(
      [&] {
        std::atomic<bool> stop{false};
        auto spinner = weft::spawn([&] { return spin_calls(stop); });
        weft::yield();
        main_ran = true;
        stop = true;
        EXPECT_GT(spinner.join(), 0);
      },
      o);
  EXPECT_TRUE(main_ran);
}

__attribute__((noinline)) long sum_of_a_vla(std::size_t n) {
  char buf[n];  // split-stack code: __morestack_allocate_stack_space when it does not fit
  std::memset(buf, 1, n);
  long s = 0;
  for (std::size_t i = 0; i < n; i += 4096) s += buf[i];
  return s;
}

// A VLA whose stack must be copied to make room: the stack grows as far as the block needs
// (the alloca path once added the copy's distance to its stack pointer twice, and grew the
// stack to 64 MiB for a 200 KiB block).
TEST(GrowSplit, AVlaThatNeedsACopyGrowsTheStackOnlyAsFarAsItNeeds) {
  weft::options o;
  o.strategy = weft::stack_strategy::copy;
  o.stack_reserve = 0;
  long r = 0;
  std::size_t size = 0;
  weft::stats st{};
  weft::run(
      [&] {
        weft::spawn([&] {
          r = sum_of_a_vla(200 * 1024);
          size = weft::this_stack().size;
        }).join();
        st = weft::get_stats();
      },
      o);
  EXPECT_EQ(r, 50);
  EXPECT_GE(st.stack_copies, 1u);
  EXPECT_LE(size, std::size_t{1} << 20) << "the stack grew far past what the block needed";
}

TEST(GrowSplit, SegmentedStacksKeepFramesStillAndReuseASpareSegment) {
  weft::options o;
  o.strategy = weft::stack_strategy::segmented;
  std::uintptr_t addr_before = 0, addr_after = 0;
  long r = 0;
  weft::stats st{};
  weft::run(
      [&] {
        long anchor = 7;
        addr_before = reinterpret_cast<std::uintptr_t>(&anchor);
        for (int i = 0; i < 100; ++i) r += deep_checksum(400);  // crosses segment boundaries, back and forth
        addr_after = reinterpret_cast<std::uintptr_t>(&anchor);
        st = weft::get_stats();
      },
      o);
  EXPECT_EQ(r, 100 * 400L * 401 / 2);
  EXPECT_EQ(addr_before, addr_after);
  EXPECT_EQ(st.stack_copies, 0u);
  EXPECT_GT(st.stack_grows, 100u);
}

#endif  // WEFT_TEST_SPLIT_STACK

INSTANTIATE_TEST_SUITE_P(Configs, Grow, ::testing::ValuesIn(kConfigs), config_name);

// ---- fatal errors ---------------------------------------------------------------------------

class GrowDeath : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

NO_CHECKS long checked_deep(int depth);
long checked_deep(int depth) {
  WEFT_STACK_CHECK(1024);
  volatile unsigned char pad[480];
  pad[0] = static_cast<unsigned char>(depth);
  return (depth > 0 ? checked_deep(depth - 1) : 0) + pad[0];
}

TEST_F(GrowDeath, ExceedingStackMaxIsFatal) {
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_max = 256 * 1024;
        weft::run([] { return static_cast<int>(deep_checksum(100000)); }, o);
      },
      ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+ stack exceeds 262144-byte limit");
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_max = 256 * 1024;
        o.stack_reserve = 0;
        o.strategy = weft::stack_strategy::copy;
        weft::run([] { return static_cast<int>(checked_deep(100000)); }, o);
      },
      ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+ stack exceeds 262144-byte limit");
  // in_place: stack_max below the reserve still bounds the stack, by a check or by a fault.
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_max = 256 * 1024;
        weft::run([] { return static_cast<int>(checked_deep(100000)); }, o);
      },
      ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+ stack exceeds 262144-byte limit");
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_max = 256 * 1024;
        weft::run([] { return static_cast<int>(unchecked(100000)); }, o);
      },
      ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+ stack exceeds 262144-byte limit");
}

// A request too big to be a stack (1 << 62 bytes, or the wrapped result of a subtraction)
// is the stack_max error, not a silent return: sp - bytes used to wrap past zero and pass
// the fast path's compare.
TEST_F(GrowDeath, AnAbsurdRequestIsTheStackMaxErrorNotASilentReturn) {
  for (std::size_t bytes : {std::size_t{1} << 62, ~std::size_t{0}}) {
    EXPECT_EXIT(
        {
          weft::run([bytes] {
            weft::ensure_stack(bytes);
            std::exit(0);  // returned without growing: the bug
          });
        },
        ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+ stack exceeds 1073741824-byte limit");
  }
}

// The default strategy never moves a stack: past its slot, a check and a fault alike stop
// with the error that names the reserve and the ways out.
TEST_F(GrowDeath, InPlacePastTheReserveNamesTheReserveAndTheWaysOut) {
  const char* expected =
      "weft: fatal error: goroutine [0-9]+ needs a [0-9]+-byte stack \\(%s.*\\), more than its slot holds: "
      "[0-9]+ bytes of the 2097152-byte WEFT_STACK_RESERVE, and with WEFT_STACK=in_place a stack never moves.*"
      "Raise WEFT_STACK_RESERVE.*to 4194304 or more.*WEFT_STACK=copy.*WEFT_STACK=segmented";
  char with_check[512], with_fault[512];
  std::snprintf(with_check, sizeof with_check, expected, kSplit ? "at a -fsplit-stack prologue" : "at a WEFT_STACK_CHECK");
  std::snprintf(with_fault, sizeof with_fault, expected, "a fault at");
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_reserve = 2 * 1024 * 1024;
        weft::run([] { return static_cast<int>(deep_checksum(100000)); }, o);
      },
      ::testing::ExitedWithCode(2), with_check);
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_reserve = 2 * 1024 * 1024;
        weft::run([] { return static_cast<int>(unchecked(100000)); }, o);
      },
      ::testing::ExitedWithCode(2), with_fault);
}

TEST_F(GrowDeath, OverflowIntoTheGuardNamesTheGoroutineAndWhatToDo) {
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_reserve = 0;
        o.strategy = weft::stack_strategy::copy;
        weft::run([] { return static_cast<int>(unchecked(100000)); }, o);
      },
      ::testing::ExitedWithCode(2),
      "weft: fatal error: goroutine [0-9]+ overflowed its [0-9]+-byte stack.*split-stack checks.*WEFT_STACK_CHECK.*"
      "WEFT_STACK_RESERVE.*WEFT_STACK=in_place");
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_reserve = 64 * 1024;  // faults grow it in place up to here and the slack, then the guard
        o.strategy = weft::stack_strategy::copy;
        weft::run([] { return static_cast<int>(unchecked(100000)); }, o);
      },
      ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+ overflowed its [0-9]+-byte stack.*its slot allows [0-9]+ bytes");
}

TEST_F(GrowDeath, APinnedStackThatMustBeCopiedNamesThePinAndTheSetting) {
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_reserve = 0;
        o.strategy = weft::stack_strategy::copy;
        weft::run(
            [] {
              weft::stack_pin pin;
              return static_cast<int>(checked_deep(2000));
            },
            o);
      },
      ::testing::ExitedWithCode(2),
      "weft: fatal error: goroutine [0-9]+ needs a [0-9]+-byte stack but its [0-9]+-byte slot is full and the stack is "
      "pinned.*weft::stack_pin.*WEFT_STACK_RESERVE");
}

TEST_F(GrowDeath, AnExplicitCheckCannotSegment) {
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_reserve = 0;
        o.strategy = weft::stack_strategy::segmented;
        weft::run([] { return static_cast<int>(checked_deep(2000)); }, o);
      },
      ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+ needs a [0-9]+-byte stack.*WEFT_STACK=segmented");
}

// A fault in another goroutine's slot (its band below its stack) is weft's report, naming the
// slot, not a bare SIGSEGV: faults are classified by the slot holding the address.
TEST_F(GrowDeath, TouchingBelowAnotherGoroutinesStackNamesItsSlot) {
  if (kSanitized) GTEST_SKIP() << "sanitizer builds touch the headroom below the stack at every switch: the parking "
                                  "goroutine grows over the address";
  EXPECT_EXIT(
      {
        weft::run([] {
          weft::chan<std::uintptr_t> below(1);
          weft::chan<int> never;
          weft::go([below, never]() mutable {
            below.send(weft::this_stack().lo - 64);  // in the band under its stack
            (void)never.recv();
          });
          *reinterpret_cast<volatile char*>(*below.recv()) = 1;
        });
        std::exit(0);
      },
      ::testing::ExitedWithCode(2),
      "weft: fatal error: goroutine [0-9]+ touched 0x[0-9a-f]+, an inaccessible address in the stack slot "
      "\\[0x[0-9a-f]+, 0x[0-9a-f]+\\) of another goroutine");
}

long* g_stale = nullptr;  // out of the scan's sight

__attribute__((noinline)) void use_stale_pointer() {
  long object = 42;
  g_stale = &object;  // a global holds the address: the copy cannot adjust it
  weft::detail::ensure_stack_slow(512 * 1024);  // forces a copy (reserve 0)
  std::fprintf(stderr, "object now at %p\n", static_cast<void*>(&object));
  *static_cast<volatile long*>(g_stale) = 1;
  std::fprintf(stderr, "not caught: %ld\n", object);
}

// The report must give the object's new address: the child prints where the object really
// is, and this checks that the report says the same (gtest's regex cannot back-reference).
class stale_report : public ::testing::MatcherInterface<const std::string&> {
 public:
  bool MatchAndExplain(const std::string& out, ::testing::MatchResultListener* why) const override {
    static const std::regex shape(
        "object now at (0x[0-9a-f]+)\n[^]*weft: fatal error: goroutine ([0-9]+) touched 0x[0-9a-f]+, a stale address "
        "in the old stack of goroutine ([0-9]+) \\(quarantine\\): that stack moved from \\[0x[0-9a-f]+, "
        "0x[0-9a-f]+\\) to \\[0x[0-9a-f]+, 0x[0-9a-f]+\\), and the object that was at 0x[0-9a-f]+ now lives at "
        "(0x[0-9a-f]+)[^0-9a-f][^]*weft::stack_pin",
        std::regex::ECMAScript);
    std::smatch mt;
    if (!std::regex_search(out, mt, shape)) {
      *why << "the report does not have the expected shape";
      return false;
    }
    if (mt[2] != mt[3]) *why << "the goroutine that touched is not the one that moved";
    if (mt[1] != mt[4]) *why << "the report says " << mt[4] << " but the object is at " << mt[1];
    return mt[2] == mt[3] && mt[1] == mt[4];
  }
  void DescribeTo(std::ostream* os) const override { *os << "a quarantine report naming the object's new address"; }
};

// Quarantine is on by default with copy: the stale pointer fails loudly, not silently.
TEST_F(GrowDeath, QuarantineCatchesAStalePointerAndSaysWhereTheObjectLivesNow) {
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_reserve = 0;
        o.strategy = weft::stack_strategy::copy;
        weft::run([] { use_stale_pointer(); }, o);
      },
      ::testing::ExitedWithCode(2), ::testing::MakeMatcher(new stale_report));
  // Turned off, the moved-from range is released at once: the stale write is not caught.
  EXPECT_EXIT(
      {
        weft::options o;
        o.stack_reserve = 0;
        o.strategy = weft::stack_strategy::copy;
        o.quarantine = false;
        weft::run([] { use_stale_pointer(); }, o);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "not caught");
}

int* volatile g_wild = reinterpret_cast<int*>(16);  // not weft's: no stack, no quarantine

void user_segv_handler(int) {
  static const char msg[] = "the user's own SIGSEGV handler ran\n";
  (void)!::write(2, msg, sizeof msg - 1);
  ::_exit(3);
}

TEST_F(GrowDeath, FaultsThatAreNotWeftsReachTheHandlerInstalledBefore) {
  EXPECT_EXIT(
      {
        struct sigaction sa {};
        sa.sa_handler = user_segv_handler;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGSEGV, &sa, nullptr);
        weft::run([] {
          *g_wild = 1;
        });
      },
      ::testing::ExitedWithCode(3), "the user's own SIGSEGV handler ran");
  // With no handler of the user's, the one before weft's gets it: the default action (death
  // by SIGSEGV) — or, in a sanitizer build, the sanitizer's report.
  if (kSanitized) {
    EXPECT_EXIT({ weft::run([] { *g_wild = 1; }); }, [](int) { return true; }, "SEGV on unknown address");
  } else {
    EXPECT_EXIT({ weft::run([] { *g_wild = 1; }); }, ::testing::KilledBySignal(SIGSEGV), "");
  }
}

}  // namespace
