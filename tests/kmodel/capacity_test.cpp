// Thread capacity: a child creates parked threads until pthread_create fails; the limit found
// exhausted must be the one the estimate named, and the count must be the estimate's.
//
// These run as their own ctest entry (weft_test_kmodel_capacity: RUN_SERIAL, label
// no-sanitizer), because while one runs the binding limit really is used up — if it is
// kernel.pid_max, nothing else on the machine can fork for about a second.
#include <cstdint>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

#include "weft/kmodel.hpp"

namespace km = weft::kmodel;

namespace {

#if defined(WEFT_SANITIZE_ADDRESS) || defined(WEFT_SANITIZE_THREAD)
#define SKIP_UNDER_SANITIZERS()                                                                          \
  GTEST_SKIP() << "sanitizer runtimes add mappings and memory per thread and abort when mmap fails, so " \
                  "creating threads until the system refuses measures the sanitizer, not the kernel"
#else
#define SKIP_UNDER_SANITIZERS() (void)0
#endif

std::uint64_t distance(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : b - a; }

void expect_agreement(const km::capacity_observation& o, std::uint64_t tolerance) {
  const km::capacity_row& est = o.estimate.binding();
  EXPECT_EQ(o.error, EAGAIN);
  EXPECT_EQ(o.observed, est.limit) << "estimate named " << km::to_string(est.limit) << " (" << est.basis
                                   << "), the child ran out of " << km::to_string(o.observed) << "; "
                                   << o.evidence;
  EXPECT_LE(distance(o.created, est.threads), tolerance)
      << "created " << o.created << ", estimated " << est.threads << " (" << est.basis << "); " << o.evidence;
  std::printf("[ capacity ] %s: created %llu threads in %.2f s, estimated %llu (%s); %s\n",
              km::to_string(o.observed), static_cast<unsigned long long>(o.created), o.seconds,
              static_cast<unsigned long long>(est.threads), est.basis.c_str(), o.evidence.c_str());
}

// Whatever binds with this process's default stacks (8 MiB under the usual ulimit -s).
TEST(Capacity, DefaultStacksStopAtTheNamedLimit) {
  SKIP_UNDER_SANITIZERS();
  km::capacity_options opts;
  const km::capacity_observation o = km::measure_thread_capacity(opts);
  // Task ids and task counts are machine-wide: other processes come and go while we count.
  expect_agreement(o, 16 + o.estimate.binding().threads / 100);
}

// Use up VMAs first so that vm.max_map_count binds well before any task limit; small stacks
// keep memory down.  The VMA count is this process's own, so the count must be exact.
TEST(Capacity, MaxMapCountBindsWhenMappingsAreScarce) {
  SKIP_UNDER_SANITIZERS();
  const km::system_snapshot s = km::take_snapshot();
  const km::capacity_estimate e = km::estimate_capacity(s, 64 * 1024, km::guard_style::mprotect);
  std::uint64_t other = ~std::uint64_t{0};
  for (const auto& r : e.rows)
    if (r.limit != km::capacity_limit::max_map_count && r.threads < other) other = r.threads;
  if (e.vmas_per_thread != 2 || other < 6000) GTEST_SKIP() << "no room to make vm.max_map_count bind first here";
  const std::uint64_t target = other - 4000;  // threads the mappings should allow
  const std::uint64_t spare = s.max_map_count - s.vma_count;
  if (spare < 2 * target + 100) GTEST_SKIP() << "vm.max_map_count binds already";
  km::capacity_options opts;
  opts.stack_size = 64 * 1024;
  opts.extra_vmas = static_cast<std::size_t>(spare - 2 * target);
  const km::capacity_observation o = km::measure_thread_capacity(opts);
  EXPECT_EQ(o.estimate.binding().limit, km::capacity_limit::max_map_count);
  expect_agreement(o, 4);
}

// RLIMIT_NPROC counts this user's tasks; as root the child first becomes a uid of its own (root
// is exempt; a shared one such as nobody's could have other tasks coming and going), otherwise
// it lowers its own soft limit.
TEST(Capacity, RlimitNprocBindsForAnOrdinaryUser) {
  SKIP_UNDER_SANITIZERS();
  km::capacity_options opts;
  opts.stack_size = 64 * 1024;
  if (::getuid() == 0) {
    opts.run_as = 2'100'000'000u + static_cast<unsigned>(::getpid());
    opts.nproc = 300;
  } else {
    opts.nproc = km::take_snapshot().user_tasks + 300;
  }
  const km::capacity_observation o = km::measure_thread_capacity(opts);
  EXPECT_EQ(o.estimate.binding().limit, km::capacity_limit::rlimit_nproc);
  expect_agreement(o, 8);
}

}  // namespace
