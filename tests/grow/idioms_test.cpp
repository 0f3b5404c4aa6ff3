// SPDX-License-Identifier: Apache-2.0
// Ordinary C++ on goroutine stacks (issue 22): what runs on a default pthread stack runs
// unchanged on a goroutine, in the default configuration, and no frame of it ever moves.
//
// The matrix: idioms whose objects a stack copy would break (pointers into the stack held
// off it) or could break (exceptions unwinding through grown frames) × how deep the
// goroutine then recurses (100 KB to 6 MB, with WEFT_STACK_CHECK in every frame).  Each case
// builds its objects, recurses, parks at the bottom while a scan runs, uses the objects from
// the bottom, returns, parks again while a scan halves the stack, and checks every object.
//
// Then the same idioms with WEFT_STACK=copy and stack_reserve 0 (Go's pure copying): every
// idiom a copy breaks must end in the quarantine report, exit status 2 — none silently — and
// the copy-safe ones must pass.  And the plain-data hazard of a copy, which no quarantine
// catches: what the README says happens, happens, only with copy, and only to words that look
// like addresses in the part of the stack in use.
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include <gtest/gtest.h>

#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;

// ---- parking while a scan runs ---------------------------------------------------------------

// A goroutine that runs scan phases each time it is asked, while the asker is parked (and so
// scanned: halved if it uses under a quarter of its stack).  On two Ps the asker may not have
// parked yet when the first scan runs: asked to see a shrink, it scans until one happens
// (10 s at most); otherwise it scans a few times, yielding between.
struct scanner {
  weft::chan<int> ask{0}, done{0};
  weft::task<void> t = weft::spawn([ask = ask, done = done]() mutable {
    for (int expect_shrink : ask) {
      const std::uint64_t before = weft::get_stats().stack_shrinks;
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      for (int n = 0;; ++n) {
        weft::scan();
        if (expect_shrink ? weft::get_stats().stack_shrinks != before || std::chrono::steady_clock::now() > deadline
                          : n >= 3)
          break;
        weft::yield();
      }
      done.send(0);
    }
  });
  void park_while_scanned(bool expect_shrink = true) {
    ask.send(expect_shrink ? 1 : 0);
    (void)done.recv();
  }
  ~scanner() {
    ask.close();
    t.join();
  }
};

scanner* g_scanner = nullptr;

// Recurses until `bytes` of the stack are in use (whatever the frames' size: sanitizers grow
// them), parks while a scan runs, then runs `at_bottom` in the deepest frame.
__attribute__((noinline)) long recurse_to(std::size_t bytes, const std::function<void()>& at_bottom) {
  WEFT_STACK_CHECK(4096);
  volatile unsigned char pad[960];
  pad[0] = static_cast<unsigned char>(bytes);
  pad[sizeof pad - 1] = 1;
  long r;
  if (weft::this_stack().used >= bytes) {
    g_scanner->park_while_scanned(false);  // deep in use: nothing to halve
    at_bottom();
    r = 1;
  } else {
    r = recurse_to(bytes, at_bottom) + 1;
  }
  return r + pad[0] - static_cast<unsigned char>(bytes) + pad[sizeof pad - 1] - 1;
}

// ---- the idioms ------------------------------------------------------------------------------
// Each builds its objects in its own frame, runs the deep part, parks to be scanned (and
// shrunk), and reports whether every object still reads right.

enum class idiom { map, set, list, unordered_map, function_ref, heap_holds_local, self_pointer, go_children, exception };

const char* name_of(idiom i) {
  switch (i) {
    case idiom::map: return "map";
    case idiom::set: return "set";
    case idiom::list: return "list";
    case idiom::unordered_map: return "unordered_map";
    case idiom::function_ref: return "function_ref";
    case idiom::heap_holds_local: return "heap_holds_local";
    case idiom::self_pointer: return "self_pointer";
    case idiom::go_children: return "go_children";
    case idiom::exception: return "exception";
  }
  return "?";
}

bool run_idiom(idiom i, std::size_t depth) {
  switch (i) {
    case idiom::map: {
      std::map<int, std::string> m;
      for (int k = 0; k < 64; ++k) m[k] = "value " + std::to_string(k);
      recurse_to(depth, [&] { m[1000] = "from the bottom"; });
      g_scanner->park_while_scanned();
      int k = 0;
      for (const auto& [key, v] : m) {  // walks the tree, up to the header inside `m`
        if (key != (k < 64 ? k : 1000) || v != (k < 64 ? "value " + std::to_string(k) : "from the bottom")) return false;
        ++k;
      }
      return k == 65 && m.rbegin()->first == 1000;
    }
    case idiom::set: {
      std::set<long> s;
      for (long k = 0; k < 64; ++k) s.insert(k * 3);
      recurse_to(depth, [&] { s.insert(-1); });
      g_scanner->park_while_scanned();
      long expect = -1, n = 0;
      for (long v : s) {
        if (v != expect) return false;
        expect = n++ * 3;
      }
      return n == 65 && s.count(63 * 3) == 1;
    }
    case idiom::list: {
      std::list<int> l;
      for (int k = 0; k < 64; ++k) l.push_back(k);
      recurse_to(depth, [&] { l.push_back(64); });
      g_scanner->park_while_scanned();
      int k = 0;
      for (int v : l)  // the last node points at the sentinel inside `l`
        if (v != k++) return false;
      l.push_front(-1);
      return k == 65 && l.size() == 66 && l.front() == -1 && l.back() == 64;
    }
    case idiom::unordered_map: {
      std::unordered_map<int, int> u;
      for (int k = 0; k < 64; ++k) u[k] = k * k;
      u[-5] = 25;  // the newest node comes first: its bucket points at the before-begin node in `u`
      long at_bottom = 0;
      recurse_to(depth, [&] { at_bottom = u.at(7) + u.at(-5); });
      g_scanner->park_while_scanned();
      long sum = 0;
      for (const auto& [key, v] : u) sum += v - key * key;
      // The first node's bucket points at the before-begin node inside `u`: an insert into
      // that bucket writes through it.
      const int first = u.begin()->first;
      int k = 1000;
      while (u.bucket(k) != u.bucket(first)) ++k;
      u[k] = k * k;
      u.erase(3);
      for (const auto& [key, v] : u) sum += v - key * key;
      return sum == 0 && at_bottom == 74 && u.size() == 65 && u.at(-5) == 25 && u.begin()->first == k;
    }
    case idiom::function_ref: {
      long counter = 0;
      std::string label = "counted";
      std::array<char, 48> more{};  // captured too: the closure outgrows std::function's inline buffer
      std::function<void(long)> add = [&counter, &label, more](long x) { counter += x + more[0] + (label.empty() ? 1000 : 0); };
      add(1);
      recurse_to(depth, [&] { add(10); });
      g_scanner->park_while_scanned();
      add(100);
      return counter == 111 && label == "counted";
    }
    case idiom::heap_holds_local: {
      long local = 5;
      auto holder = std::make_unique<long*>(&local);  // the heap keeps the address of a local
      recurse_to(depth, [&] { **holder += 10; });
      g_scanner->park_while_scanned();
      **holder += 100;
      return local == 115;
    }
    case idiom::self_pointer: {
      struct node {
        node* self;
        node* next;
        long v;
      };
      node a{nullptr, nullptr, 1}, b{nullptr, nullptr, 2};
      a.self = &a;
      b.self = &b;
      a.next = &b;
      b.next = &a;
      recurse_to(depth, [&] { a.next->v += 10; });
      g_scanner->park_while_scanned();
      return a.self == &a && b.self == &b && a.next == &b && b.next->next == &b && b.v == 12;
    }
    case idiom::go_children: {
      // Children write into the parent's locals while it grows, parks and is scanned.
      std::array<long, 4> slots{};
      weft::wait_group wg;
      for (std::size_t c = 0; c < slots.size(); ++c) {
        wg.add(1);
        weft::go([&, c] {
          for (int k = 0; k < 200; ++k) {
            ++slots[c];
            weft::yield();
          }
          wg.done();
        });
      }
      recurse_to(depth, [&] { weft::yield(); });
      g_scanner->park_while_scanned();
      wg.wait();
      for (long v : slots)
        if (v != 200) return false;
      return true;
    }
    case idiom::exception: {
      std::map<int, int> m{{1, 1}, {2, 4}};
      std::string what;
      try {
        recurse_to(depth, [&] { throw std::runtime_error("thrown " + std::to_string(depth)); });
      } catch (const std::runtime_error& e) {
        what = e.what();
      }
      g_scanner->park_while_scanned();
      return what == "thrown " + std::to_string(depth) && m.at(2) == 4 && m.size() == 2 &&
             std::uncaught_exceptions() == 0;
    }
  }
  return false;
}

// One case on a goroutine of its own; the result, and what its stack did.
struct outcome {
  bool ok = false;
  std::size_t grown_to = 0;
  std::uint32_t shrinks = 0;
};

outcome run_case(idiom i, std::size_t depth) {
  outcome out;
  scanner sc;
  g_scanner = &sc;
  weft::spawn([&] {
    out.ok = run_idiom(i, depth);
    out.grown_to = weft::this_stack().size;  // before the last scan: it shrank once at least
    out.shrinks = weft::this_stack().shrinks;
  }).join();
  g_scanner = nullptr;
  return out;
}

// ---- the matrix, in the default configuration ----------------------------------------------

constexpr idiom kIdioms[] = {idiom::map,          idiom::set,          idiom::list,
                             idiom::unordered_map, idiom::function_ref, idiom::heap_holds_local,
                             idiom::self_pointer,  idiom::go_children,  idiom::exception};
constexpr std::size_t kDepths[] = {100'000, 300'000, 600'000, 2'000'000, 6'000'000};

class Idioms : public ::testing::TestWithParam<std::tuple<idiom, std::size_t>> {};

TEST_P(Idioms, SurviveDeepRecursionParkingAndScansInTheDefaultConfiguration) {
  const auto [i, depth] = GetParam();
  outcome out;
  weft::stats st{};
  // The default options, as a user who changes nothing gets them (the environment is not
  // read: CI must not be able to change what this proves).
  weft::run(
      [&] {
        out = run_case(i, depth);
        st = weft::get_stats();
      },
      weft::options{});
  EXPECT_TRUE(out.ok) << name_of(i) << " at " << depth << " bytes";
  EXPECT_EQ(st.stack_copies, 0u) << "the default strategy moved a stack";
  EXPECT_GE(out.shrinks, 1u) << "no scan shrank the stack: the case proves less than it says";
}

INSTANTIATE_TEST_SUITE_P(Matrix, Idioms, ::testing::Combine(::testing::ValuesIn(kIdioms), ::testing::ValuesIn(kDepths)),
                         [](const auto& info) {
                           return std::string(name_of(std::get<0>(info.param))) + "_" +
                                  std::to_string(std::get<1>(info.param) / 1000) + "KB";
                         });

// ---- the same idioms with Go's copying: loud, never silent ----------------------------------

class IdiomsCopyDeath : public ::testing::TestWithParam<idiom> {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// Copy-safe under the conservative scan: every pointer into the stack lives on the stack.
bool copy_safe(idiom i) { return i == idiom::self_pointer || i == idiom::exception; }

TEST_P(IdiomsCopyDeath, EveryIdiomACopyBreaksEndsInTheQuarantineReport) {
#if defined(WEFT_SANITIZE_ADDRESS) || defined(WEFT_SANITIZE_THREAD)
  GTEST_SKIP() << "a stale access is the sanitizer's report there, not weft's";
#endif
  const idiom i = GetParam();
  auto child = [i] {
    weft::options o;
    o.strategy = weft::stack_strategy::copy;
    o.stack_reserve = 0;  // every doubling copies (quarantine is on by default with copy)
    bool ok = false;
    weft::run([&] { ok = run_case(i, 300'000).ok; }, o);
    std::fprintf(stderr, "idiom finished: %s\n", ok ? "correct" : "WRONG");
    std::exit(ok ? 0 : 1);
  };
  if (copy_safe(i)) {
    EXPECT_EXIT(child(), ::testing::ExitedWithCode(0), "idiom finished: correct");
  } else if (i == idiom::go_children) {
    // The children pin their parent: it cannot move, and says so.
    EXPECT_EXIT(child(), ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+ needs a [0-9]+-byte stack .*pinned");
  } else {
    EXPECT_EXIT(child(), ::testing::ExitedWithCode(2),
                "weft: fatal error: goroutine [0-9]+ touched 0x[0-9a-f]+, a stale address in the old stack of goroutine "
                "[0-9]+ \\(quarantine\\)");
  }
}

INSTANTIATE_TEST_SUITE_P(PureCopy, IdiomsCopyDeath, ::testing::ValuesIn(kIdioms),
                         [](const auto& info) { return std::string(name_of(info.param)); });

// ---- plain data that looks like an old stack address ---------------------------------------

// A record with padding, as users write them: only the fields are assigned, so the padding
// keeps whatever bytes were there — here, on purpose, the bytes of an address in this stack
// (as a dead frame's saved pointer would leave them), and `port` holds the address's low
// bytes, so that the record's first word is that address.
struct record {
  std::uint16_t port;
  std::uint64_t n;
};

enum class looks_like {
  in_use,      // the records' own address: in the part of the stack in use
  below_used,  // the page below the stack's bottom: in its slot, but below anything in use
};

// Fills `recs` with records whose first word is an address of the kind asked for; forces the
// stack to grow by `grow` bytes and counts the records whose first word (or `n`) changed.
__attribute__((noinline)) int records_changed_by_growth(std::size_t grow, looks_like kind) {
  std::array<record, 48> recs;
  const std::uintptr_t addr = kind == looks_like::in_use ? reinterpret_cast<std::uintptr_t>(recs.data())
                                                         : weft::this_stack().lo - 4096;
  for (record& r : recs) {
    std::memcpy(&r, &addr, sizeof addr);  // the address's bytes in the padding
    r.port = static_cast<std::uint16_t>(addr);
    r.n = 7;
  }
  // What the first words should still hold, kept inverted and in memory: the address itself,
  // held in this frame or a register, would be adjusted by a copy as the records are.
  volatile std::uintptr_t expect_inverted = ~addr;
  asm volatile("" : : "r"(recs.data()) : "memory");  // the records live in memory, in this frame
  WEFT_STACK_CHECK(grow);  // growth: in place, or a copy
  asm volatile("" : : "r"(recs.data()) : "memory");
  int changed = 0;
  for (const record& r : recs) {
    std::uintptr_t word;
    std::memcpy(&word, &r, sizeof word);
    changed += word != ~expect_inverted || r.n != 7;
  }
  return changed;
}

// The hazard the README names: a copy "adjusts" plain data that looks like an address in the
// part of the stack in use (it cannot tell it from a pointer); growth in place never does.
// records_changed_by_growth on a fresh goroutine of a runtime with options `o`; *copies gets
// the runtime's stack copies.
int changed_on_a_goroutine(const weft::options& o, looks_like kind, std::uint64_t* copies) {
  int changed = -1;
  weft::run(
      [&] {
        weft::spawn([&] { changed = records_changed_by_growth(1 << 20, kind); }).join();
        *copies = weft::get_stats().stack_copies;
      },
      o);
  return changed;
}

weft::options pure_copy() {
  weft::options o;
  o.strategy = weft::stack_strategy::copy;
  o.stack_reserve = 0;
  return o;
}

TEST(PlainData, ACopyChangesPlainDataThatLooksLikeAnAddressInUseAndInPlaceNever) {
  std::uint64_t copies = 0;
  const int in_place = changed_on_a_goroutine(weft::options{}, looks_like::in_use, &copies);
  EXPECT_EQ(copies, 0u);
  weft::stats st{};
  const int copied = changed_on_a_goroutine(pure_copy(), looks_like::in_use, &st.stack_copies);
  EXPECT_EQ(in_place, 0);
  ASSERT_GE(st.stack_copies, 1u);
  // The README, "Known limits": every such word is "adjusted".
  EXPECT_EQ(copied, 48) << "the conservative adjustment left plain data alone: the README overstates the hazard";
}

// What the hazard is limited to: nothing below the stack pointer is live when a stack is
// copied, so a word that looks like an address there — in the slot's free part or its guard —
// is plain data, and a copy leaves it alone (runtime/sched/grow.cpp, move_stack).  Such words
// were common: a short std::string's unused bytes kept the top of a dead pointer into the
// stack, and its few characters below them made an address just past a 16 MiB boundary in the
// slot ("d21" became "d2\xb1" in the -O0 split-stack grow test; issue 22, item 8).
TEST(PlainData, ACopyLeavesPlainDataThatLooksLikeAnAddressBelowTheUsedPartAlone) {
  weft::stats st{};
  const int copied = changed_on_a_goroutine(pure_copy(), looks_like::below_used, &st.stack_copies);
  ASSERT_GE(st.stack_copies, 1u);
  EXPECT_EQ(copied, 0) << "a copy changed words that look like addresses below the stack's used part";
}

}  // namespace
