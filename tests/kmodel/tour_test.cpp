// SPDX-License-Identifier: Apache-2.0
// weft-kmodel, the kernel-model tour: what its --json carries (the pid-namespace and
// randomisation facts, what the capacity estimate cannot know), what its help promises, and
// that it survives the tiny stack limits it describes — down to the smallest one under which
// it starts at all.  Skipped when the examples are not built.
#include <cstdio>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "tests/kmodel/test_util.hpp"
#include "weft/kmodel.hpp"

namespace km = weft::kmodel;

namespace {

#if defined(WEFT_KMODEL_TOUR)
const std::string kTour = WEFT_KMODEL_TOUR;
#define SKIP_WITHOUT_TOUR() (void)0
#else
const std::string kTour;
#define SKIP_WITHOUT_TOUR() GTEST_SKIP() << "weft-kmodel is not built (WEFT_BUILD_EXAMPLES=OFF)"
#endif

kmtest::run_result run_tour(const std::vector<std::string>& args, std::size_t limit, bool randomise) {
  return kmtest::exec_under_stack_limit(kTour, args, limit, randomise, 60);
}

// The limit this test runs under (whatever `ulimit -s` the suite has; it may be below 8 MiB
// and the hard limit with it).
std::size_t current_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_STACK, &rl) != 0) throw std::runtime_error("getrlimit(RLIMIT_STACK) failed");
  return static_cast<std::size_t>(rl.rlim_cur);
}

bool completed(const kmtest::run_result& r) {
  // Exit 0 (all agree) or 1 (something differs) with the whole JSON object printed.
  return (r.status == 0 || r.status == 1) && r.out.find("\"all_match\":") != std::string::npos;
}

TEST(Tour, HelpSaysHowLongTheCapacityRunTakes) {
  SKIP_WITHOUT_TOUR();
  const kmtest::run_result r = run_tour({"--help"}, current_limit(), true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("about a"), std::string::npos) << "the run takes seconds, not about one:\n" << r.out;
  EXPECT_NE(r.out.find("14 s"), std::string::npos) << r.out;
}

TEST(Tour, JsonCarriesTheNamespaceAndRandomisationFacts) {
  WEFT_SKIP_UNDER_TSAN();
  SKIP_WITHOUT_TOUR();
  const kmtest::run_result r = run_tour({"--json"}, current_limit(), true);
  ASSERT_TRUE(completed(r)) << r.status << "\n" << r.out;
  for (const char* key : {"\"pid_namespace\":{", "\"initial\":", "\"pid_max_here\":", "\"aslr\":{",
                          "\"randomize_va_space\":", "\"stack_random_offset_max\":", "\"process_start\":{",
                          "\"unknowns\":[", "\"assumed\":"})
    EXPECT_NE(r.out.find(key), std::string::npos) << key << " missing from\n" << r.out;
}

// Under the smallest limit at which it starts (randomisation off: deterministic), and with
// randomisation on under the smallest limit at which it always starts, every run of the tour
// must complete.  Before, its main thread read into a 4 KiB buffer and took lazy-binding frames
// there, and under `ulimit -s 16` it died by SIGSEGV with no message in most runs.
TEST(Tour, SurvivesTheSmallestLimitsItStartsUnder) {
  WEFT_SKIP_UNDER_TSAN();
  SKIP_WITHOUT_TOUR();
  const km::process_facts f = km::process_facts::probe();
  const std::size_t t = km::measure_start_threshold(kTour, {"--help"});
  const km::process_start_prediction p = km::predict_process_start(t, f.stack_random_offset_max, f.page_size);
  int ok_off = 0, ok_on = 0;
  constexpr int runs = 5;
  std::string last;
  for (int i = 0; i < runs; ++i) {
    kmtest::run_result r = run_tour({"--json"}, t, false);
    ok_off += completed(r);
    if (!completed(r)) last = "status " + std::to_string(r.status) + ": " + r.out;
    r = run_tour({"--json"}, p.always_from, true);
    ok_on += completed(r);
    if (!completed(r)) last = "status " + std::to_string(r.status) + ": " + r.out;
  }
  std::printf("[ tour ] starts from %zu without randomisation: %d/%d completed there; %d/%d completed under %zu with it\n",
              t, ok_off, runs, ok_on, runs, p.always_from);
  EXPECT_EQ(ok_off, runs) << last;
  EXPECT_EQ(ok_on, runs) << last;
}

}  // namespace
