// SPDX-License-Identifier: Apache-2.0
// RLIMIT_STACK: the default pthread stack size glibc picks, checked in fresh processes exec'd
// under each limit; the main thread's first [stack] VMA; and how deep the main stack goes
// before SIGSEGV, checked by recursing in a child.
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/kmodel/test_util.hpp"
#include "weft/kmodel.hpp"

namespace km = weft::kmodel;

namespace {

constexpr std::uint64_t KiB = 1024, MiB = 1024 * 1024;

TEST(DefaultStackModel, FollowsGlibcsRule) {
  // x86_64, 4 KiB pages, 4224 bytes of static TLS (glibc 2.36's own, with no other TLS).
  EXPECT_EQ(km::predict_default_stack(std::nullopt, 4096, 4224).stack_size, 2 * MiB);
  EXPECT_EQ(km::predict_default_stack(std::nullopt, 4096, 4224).rule, km::default_stack_rule::arch_default);
  EXPECT_EQ(km::predict_default_stack(8 * MiB, 4096, 4224).stack_size, 8 * MiB);
  EXPECT_EQ(km::predict_default_stack(100000, 4096, 4224).stack_size, 102400u);  // rounded up to the page
  EXPECT_EQ(km::predict_default_stack(10000, 4096, 4224).stack_size, 16384u);
  EXPECT_EQ(km::predict_default_stack(10000, 4096, 4224).rule, km::default_stack_rule::pthread_stack_min);
  // A large static TLS raises the floor: page + TLS + MINIMAL_REST_STACK, page-rounded.
  auto big = km::predict_default_stack(16 * KiB, 4096, 70000);
  EXPECT_EQ(big.rule, km::default_stack_rule::tls_minimum);
  EXPECT_EQ(big.stack_size, (4096 + 70000 + 2048 + 4095) / 4096 * 4096);
  EXPECT_EQ(big.guard_size, 4096u);
  // 64 KiB pages round differently.
  EXPECT_EQ(km::predict_default_stack(100000, 65536, 4224).stack_size, 131072u);
}

// The limits the issue lists, one that is not a page multiple (100 KiB is one: 25 pages), and
// two below PTHREAD_STACK_MIN.
const std::vector<km::rlimit_value> kLimits = {std::nullopt, 8 * MiB,  4 * MiB, 100 * KiB, 100000,
                                               20 * KiB,     16 * KiB, 10000,   8 * KiB};

void check_probe(const char* probe, km::rlimit_value limit) {
  SCOPED_TRACE(std::string(probe) + " under RLIMIT_STACK " + km::size_text(limit));
  kmtest::run_result r = kmtest::exec_with_rlimit_stack(probe, {"default-stack"}, limit);
  if (r.status == 120) GTEST_SKIP() << "setrlimit(RLIMIT_STACK, " << km::size_text(limit) << ") refused here";
  ASSERT_EQ(r.status, 0) << r.out;
  auto kv = kmtest::parse_kv(r.out);
  // The probe saw the limit we set...
  EXPECT_EQ(kv["rlimit_stack"], limit ? std::to_string(*limit) : std::string("unlimited"));
  // ...and the model, given what the probe's process had, predicts what its glibc chose.
  const km::default_stack_prediction p =
      km::predict_default_stack(limit, kmtest::num(kv, "page_size"), kmtest::num(kv, "static_tls_size"));
  EXPECT_EQ(p.stack_size, kmtest::num(kv, "stack_size")) << "rule: " << km::to_string(p.rule);
  std::printf("[ default stack ] %s, RLIMIT_STACK %s, static TLS %s: model %zu (%s), glibc %s\n",
              std::strstr(probe, "bigtls") ? "big-TLS probe" : "probe", km::size_text(limit).c_str(),
              kv["static_tls_size"].c_str(), p.stack_size, km::to_string(p.rule), kv["stack_size"].c_str());
  EXPECT_EQ(p.guard_size, kmtest::num(kv, "guard_size"));
}

TEST(DefaultStackValidation, MatchesGlibcUnderEachLimit) {
  for (km::rlimit_value limit : kLimits) check_probe(WEFT_KMODEL_PROBE, limit);
}

TEST(DefaultStackValidation, MatchesGlibcWithLargeStaticTls) {
  // The floor rule only shows with TLS large enough to beat PTHREAD_STACK_MIN.
  for (km::rlimit_value limit : {km::rlimit_value{16 * KiB}, km::rlimit_value{64 * KiB}, km::rlimit_value{100000}})
    check_probe(WEFT_KMODEL_PROBE_BIGTLS, limit);
  kmtest::run_result r = kmtest::exec_with_rlimit_stack(WEFT_KMODEL_PROBE_BIGTLS, {"default-stack"}, 16 * KiB);
  auto kv = kmtest::parse_kv(r.out);
  EXPECT_EQ(km::predict_default_stack(16 * KiB, kmtest::num(kv, "page_size"), kmtest::num(kv, "static_tls_size")).rule,
            km::default_stack_rule::tls_minimum)
      << "the big-TLS probe should exercise the TLS floor";
}

TEST(DefaultStackValidation, ThisProcessAgreesWithItsOwnGlibc) {
  // Whatever `ulimit -s` ctest ran us under: glibc decided at our start from our limit then,
  // and nothing in this test binary has changed RLIMIT_STACK before this point.
  const km::default_stack_observation o = km::observe_default_stack();
  const km::default_stack_prediction p = km::predict_default_stack(o.rlimit_stack, o.page_size, o.static_tls_size);
  EXPECT_EQ(p.stack_size, o.stack_size) << "RLIMIT_STACK " << km::size_text(o.rlimit_stack);
  EXPECT_EQ(p.guard_size, o.guard_size);
}

TEST(MainStackModel, BoundsAndRounding) {
  km::main_stack_inputs in;
  in.page_size = 4096;
  in.stack_end = 0x7ffff0000000;
  in.stack_start = in.stack_end - 12 * KiB;
  in.rlimit_stack = 8 * MiB;
  in.below_end = 0x7fff00000000;  // far below
  in.guard_gap = 256 * 4096;
  km::main_stack_prediction p = km::predict_main_stack(in);
  EXPECT_EQ(p.bound, km::main_stack_bound::rlimit);
  EXPECT_EQ(p.max_size, 8 * MiB);
  in.rlimit_stack = 100000;  // not a page multiple: the VMA may not exceed it, so 24 pages
  EXPECT_EQ(km::predict_main_stack(in).max_size, 98304u);
  in.rlimit_stack = 8 * MiB;
  in.below_end = in.stack_end - 4 * MiB;  // a readable mapping 4 MiB down: the gap binds
  p = km::predict_main_stack(in);
  EXPECT_EQ(p.bound, km::main_stack_bound::guard_gap);
  EXPECT_EQ(p.lowest, in.below_end + 256 * 4096);
  in.below_accessible = false;  // PROT_NONE below: no gap is kept
  EXPECT_EQ(km::predict_main_stack(in).lowest, in.below_end);
  in.below_accessible = true;
  in.below_end = 0x7fff00000000;
  in.stack_start = in.stack_end - 132 * KiB;
  in.rlimit_stack = 64 * KiB;  // the VMA is already larger than the new limit: it stays
  p = km::predict_main_stack(in);
  EXPECT_EQ(p.bound, km::main_stack_bound::current_vma);
  EXPECT_EQ(p.lowest, in.stack_start);
}

TEST(MainStackModel, InitialVma) {
  EXPECT_EQ(km::predict_initial_stack_vma(100, 8 * MiB, 4096), 4096 + 128 * KiB);
  EXPECT_EQ(km::predict_initial_stack_vma(5000, std::nullopt, 4096), 8192 + 128 * KiB);
  EXPECT_EQ(km::predict_initial_stack_vma(100, 64 * KiB, 4096), 64 * KiB);
  EXPECT_EQ(km::predict_initial_stack_vma(100, 100000, 4096), 98304u);
}

TEST(MainStackValidation, FirstVmaIsStringsPlus128KiBCappedAtTheLimit) {
  std::string skipped;
  for (km::rlimit_value limit : {km::rlimit_value{}, km::rlimit_value{8 * MiB}, km::rlimit_value{100000},
                                 km::rlimit_value{64 * KiB}}) {
    SCOPED_TRACE("RLIMIT_STACK " + km::size_text(limit));
    if (std::string why = kmtest::rlimit_stack_unsettable(limit); !why.empty()) {
      skipped += (skipped.empty() ? "" : "; ") + why;
      continue;
    }
    kmtest::run_result r = kmtest::exec_with_rlimit_stack(WEFT_KMODEL_PROBE, {"initial-stack"}, limit);
    ASSERT_EQ(r.status, 0) << r.out;
    auto kv = kmtest::parse_kv(r.out);
    const std::uint64_t vma = kmtest::num(kv, "stack_end") - kmtest::num(kv, "stack_start");
    EXPECT_EQ(vma, km::predict_initial_stack_vma(kmtest::num(kv, "string_bytes"), limit, 4096));
  }
  if (!skipped.empty()) GTEST_SKIP() << "the other limits agree; not tried: " << skipped;
}

void check_recursion(km::rlimit_value limit, std::size_t obstacle, km::main_stack_bound want) {
  SCOPED_TRACE("RLIMIT_STACK " + km::size_text(limit) + (obstacle ? ", obstacle " + km::size_text(obstacle) : ""));
  if (std::string why = kmtest::rlimit_stack_unsettable(limit); !why.empty()) GTEST_SKIP() << why;
  const km::main_stack_observation o = km::measure_main_stack(limit, obstacle);
  const km::main_stack_prediction p = km::predict_main_stack(o.inputs);
  EXPECT_EQ(p.bound, want);
  EXPECT_GT(o.frames, 10u);
  const std::int64_t diff = static_cast<std::int64_t>(o.reached) - static_cast<std::int64_t>(p.max_size);
  EXPECT_LE(diff < 0 ? -diff : diff, 2 * static_cast<std::int64_t>(o.inputs.page_size))
      << "reached " << o.reached << " bytes, model " << p.max_size << " (" << km::to_string(p.bound) << ")";
  std::printf("[ main stack ] RLIMIT_STACK %s%s: reached %zu bytes in %llu frames, model %zu (%s)\n",
              km::size_text(limit).c_str(), obstacle ? (", obstacle " + km::size_text(obstacle) + " down").c_str() : "",
              o.reached, static_cast<unsigned long long>(o.frames), p.max_size, km::to_string(p.bound));
}

TEST(MainStackValidation, RecursionStopsWhereTheModelSays) {
  for (km::rlimit_value limit : {km::rlimit_value{256 * KiB}, km::rlimit_value{1 * MiB}, km::rlimit_value{8 * MiB},
                                 km::rlimit_value{1000000}})
    check_recursion(limit, 0, km::main_stack_bound::rlimit);
}

TEST(MainStackValidation, GuardGapStopsGrowthBeforeTheLimit) {
  // A readable page 4 MiB under the top of [stack]: growth stops stack_guard_gap above it.
  check_recursion(8 * MiB, 4 * MiB, km::main_stack_bound::guard_gap);
}

TEST(MainStackValidation, OffTheMainThreadIsRefused) {
  // In a child: a thread made here would leave its stack in this process's glibc cache, which
  // the pthread replay tests need empty.
  kmtest::run_result r = kmtest::in_child([] {
    std::string what;
    std::thread t([&] {
      try {
        (void)km::measure_main_stack(8 * MiB);
      } catch (const std::logic_error& e) {
        what = e.what();
      }
    });
    t.join();
    std::printf("%s\n", what.c_str());
    return what.find("main thread") != std::string::npos ? 0 : 1;
  });
  EXPECT_EQ(r.status, 0) << r.out;
}

// Whether a process starts at all under a tiny limit: the model takes the smallest limit with
// randomisation off (measured) and adds x86_64's random stack offset of up to 8 KiB.  Checked
// with randomisation on, as programs normally run: never below the first, always from the
// second — and at the first only sometimes (a probe run with randomisation off hides that).
TEST(ProcessStartValidation, ProbeStartsWhereTheModelSays) {
  const km::process_facts f = km::process_facts::probe();
  if (f.stack_random_offset_max == 0)
    GTEST_SKIP() << "address-space randomisation is off here (randomize_va_space " << f.randomize_va_space
                 << (f.addr_no_randomize ? ", ADDR_NO_RANDOMIZE" : "") << ")";
  const std::size_t t = km::measure_start_threshold(WEFT_KMODEL_PROBE, {"default-stack"});
  const km::process_start_prediction p = km::predict_process_start(t, f.stack_random_offset_max, f.page_size);
  auto starts = [](std::size_t limit, int runs) {
    int n = 0;
    for (int i = 0; i < runs; ++i)
      n += kmtest::exec_under_stack_limit(WEFT_KMODEL_PROBE, {"default-stack"}, limit, true, 10).status == 0;
    return n;
  };
  constexpr int runs = 40;
  const int always = starts(p.always_from, runs);
  const int at_threshold = starts(p.never_below, runs);
  const int below = p.never_below > f.page_size ? starts(p.never_below - f.page_size, runs) : 0;
  std::printf("[ process start ] probe: %zu without randomisation; with it: %d/%d start under %s, %d/%d under %s, "
              "%d/%d under %s\n",
              t, always, runs, km::size_text(p.always_from).c_str(), at_threshold, runs,
              km::size_text(p.never_below).c_str(), below, runs, km::size_text(p.never_below - f.page_size).c_str());
  EXPECT_EQ(always, runs) << "the model says every run starts under " << km::size_text(p.always_from);
  EXPECT_EQ(below, 0) << "the model says no run starts under " << km::size_text(p.never_below - f.page_size);
  // At most half the offsets leave room at the threshold (the need lies within its last page).
  EXPECT_LT(at_threshold, runs) << "randomisation should make some runs fail under " << km::size_text(p.never_below);
  EXPECT_EQ(p.at(p.never_below - f.page_size), km::process_start_prediction::verdict::never);
  EXPECT_EQ(p.at(std::nullopt), km::process_start_prediction::verdict::always);
}

// The validation tests above must hold, or skip saying why, whatever `ulimit -s` the suite runs
// under — with the hard limit lowered too, as `ulimit -s N` does.  This test runs the rest of
// this executable again under a few such limits (the capacity tests aside: they take seconds).
TEST(StackLimits, ValidationHoldsUnderOtherUlimits) {
  WEFT_SKIP_UNDER_TSAN();
  if (std::getenv("WEFT_KMODEL_UNDER_ULIMIT")) GTEST_SKIP() << "already running under a chosen ulimit -s";
  rlimit now{};
  ASSERT_EQ(::getrlimit(RLIMIT_STACK, &now), 0);
  std::vector<km::rlimit_value> limits = {64 * MiB, 1 * MiB, 100 * KiB};
  if (now.rlim_max == RLIM_INFINITY) limits.insert(limits.begin(), std::nullopt);
  for (km::rlimit_value limit : limits) {
    if (limit && now.rlim_max != RLIM_INFINITY && *limit > now.rlim_max) continue;  // cannot raise the hard limit
    SCOPED_TRACE("ulimit -s " + (limit ? std::to_string(*limit / KiB) : std::string("unlimited")));
    kmtest::run_result r = kmtest::in_child(
        [&] {
          rlimit rl{};
          rl.rlim_cur = rl.rlim_max = limit ? static_cast<rlim_t>(*limit) : RLIM_INFINITY;
          if (::setrlimit(RLIMIT_STACK, &rl) != 0) return 120;
          ::dup2(1, 2);
          ::setenv("WEFT_KMODEL_UNDER_ULIMIT", "1", 1);
          char self[] = "/proc/self/exe";
          char filter[] = "--gtest_filter=-Capacity.*:StackLimits.*";
          char* argv[] = {self, filter, nullptr};
          ::execv(self, argv);
          return 121;
        },
        120);
    ASSERT_NE(r.status, 120) << "setrlimit refused";
    std::string failures;
    for (std::size_t pos = 0; (pos = r.out.find("[  FAILED  ] ", pos)) != std::string::npos; ++pos)
      failures += r.out.substr(pos, r.out.find('\n', pos) - pos) + "\n";
    EXPECT_EQ(r.status, 0) << failures << (failures.empty() ? r.out.substr(r.out.size() > 3000 ? r.out.size() - 3000 : 0) : "");
    std::size_t skipped = 0;
    for (std::size_t pos = 0; (pos = r.out.find("[  SKIPPED ] ", pos)) != std::string::npos; ++pos) ++skipped;
    std::printf("[ ulimit ] -s %s: status %d, %zu skip lines\n",
                limit ? std::to_string(*limit / KiB).c_str() : "unlimited", r.status, skipped);
  }
}

}  // namespace
