// SPDX-License-Identifier: Apache-2.0
// Thread capacity: a child creates parked threads until pthread_create fails; the limit found
// exhausted must be the one the estimate named, and the count must be the estimate's.
//
// These run as their own ctest entry (weft_test_kmodel_capacity: RUN_SERIAL, label
// no-sanitizer), because while one runs the binding limit really is used up — if it is
// kernel.pid_max, nothing else on the machine can fork for those seconds (7-14 s each on a
// 2-core machine).
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/kmodel/test_util.hpp"

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

// Inside a pid namespace (any container) /proc/sys/kernel/pid_max is the namespace's own
// (4194304 for a new one since Linux 6.14), while every thread also takes an id in the initial
// namespace, whose pid_max cannot be read from inside.  The child unshares a pid and a mount
// namespace, mounts its own /proc (as `unshare -pf --mount-proc` does) and measures there.
TEST(Capacity, InsideAPidNamespaceTheInitialNamespacesPidMaxBinds) {
  SKIP_UNDER_SANITIZERS();
  const km::system_snapshot host = km::take_snapshot();
  if (host.init_pid_ns != true) GTEST_SKIP() << "this test must start in the initial pid namespace (" << host.pid_ns << ")";
  constexpr std::size_t stack = 64 * 1024;
  std::uint64_t pid_room = 0, map_room = 0;
  for (const km::capacity_row& r : km::estimate_capacity(host, stack, km::guard_style::mprotect).rows) {
    if (r.limit == km::capacity_limit::pid_max) pid_room = r.threads;
    if (r.limit == km::capacity_limit::max_map_count) map_room = r.threads;
  }
  if (pid_room + 200 > map_room)
    GTEST_SKIP() << "kernel.pid_max " << host.pid_max << " leaves vm.max_map_count to bind first here";
  const std::uint64_t kernel_default = std::max<std::uint64_t>(32768, 1024ull * host.possible_cpus);
  kmtest::run_result r = kmtest::in_child(
      [] {
        if (::unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
          std::printf("skip=unshare(CLONE_NEWPID | CLONE_NEWNS): %s\n", std::strerror(errno));
          return 30;
        }
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
          std::printf("skip=making / private in the new mount namespace: %s\n", std::strerror(errno));
          return 30;
        }
        std::fflush(stdout);
        const pid_t init = ::fork();
        if (init < 0) return 31;
        if (init == 0) {  // pid 1 of the new namespace
          if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
            std::printf("skip=mounting /proc for the new pid namespace: %s\n", std::strerror(errno));
            std::fflush(stdout);
            ::_exit(30);
          }
          int status = 0;
          try {
            km::capacity_options opts;
            opts.stack_size = stack;
            const km::capacity_observation o = km::measure_thread_capacity(opts);
            const km::capacity_row& b = o.estimate.binding();
            std::printf("inside_pid_max=%llu\ninit_pid_ns=%d\nbinding=%s\nassumed=%d\nestimate=%llu\nunknowns=%zu\n"
                        "observed=%s\ncreated=%llu\nclone=%d\nmmap=%d\nseconds=%.1f\nevidence=%s\nbasis=%s\n",
                        static_cast<unsigned long long>(o.before.pid_max), o.before.init_pid_ns == true ? 1 : 0,
                        km::to_string(b.limit), b.assumed ? 1 : 0, static_cast<unsigned long long>(b.threads),
                        o.estimate.unknowns.size(), km::to_string(o.observed),
                        static_cast<unsigned long long>(o.created), o.steps.clone, o.steps.mmap, o.seconds,
                        o.evidence.c_str(), b.basis.c_str());
          } catch (const std::exception& e) {
            std::printf("error=%s\n", e.what());
            status = 1;
          }
          std::fflush(stdout);
          ::_exit(status);
        }
        int status = 0;
        while (::waitpid(init, &status, 0) < 0)
          if (errno != EINTR) return 32;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 33;
      },
      120);
  auto kv = kmtest::parse_kv(r.out);
  if (r.status == 30) GTEST_SKIP() << "no pid namespace here: " << kv["skip"];
  ASSERT_EQ(r.status, 0) << r.out;
  std::printf("[ capacity in a pid namespace ] %s\n", r.out.c_str());
  EXPECT_EQ(kv["init_pid_ns"], "0");
  // Classified by what failed: clone3 said EAGAIN while mappings were to spare.
  EXPECT_EQ(kv["observed"], km::to_string(km::capacity_limit::ancestor_pid_max)) << r.out;
  EXPECT_EQ(kmtest::num(kv, "mmap"), 0u) << r.out;
  EXPECT_EQ(kmtest::num(kv, "clone"), static_cast<std::uint64_t>(EAGAIN)) << r.out;
  // The estimate names the initial namespace's pid_max, and says it assumed it.
  EXPECT_EQ(kv["binding"], km::to_string(km::capacity_limit::ancestor_pid_max)) << r.out;
  EXPECT_EQ(kv["assumed"], "1") << r.out;
  EXPECT_GE(kmtest::num(kv, "unknowns"), 1u);
  if (host.pid_max == kernel_default) {
    // The assumption (the kernel's default) is this machine's value: the count must agree.
    const std::uint64_t est = kmtest::num(kv, "estimate"), created = kmtest::num(kv, "created");
    EXPECT_LE(distance(created, est), 16 + est / 100) << r.out;
  }
}

}  // namespace
