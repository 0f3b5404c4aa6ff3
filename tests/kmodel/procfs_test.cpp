// SPDX-License-Identifier: Apache-2.0
// /proc readers and the thread-capacity arithmetic.
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>
#include <linux/futex.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tests/kmodel/test_util.hpp"
#include "weft/kmodel.hpp"

namespace km = weft::kmodel;

namespace {

TEST(Maps, Parse) {
  const char* text =
      "55d0c6a00000-55d0c6a02000 r--p 00000000 fe:01 1835702                    /usr/bin/cat\n"
      "7f54affec000-7f54affed000 ---p 00000000 00:00 0 \n"
      "7f54affed000-7f54b07ed000 rw-p 00000000 00:00 0\n"
      "7f0000000000-7f0000001000 rw-s 00001000 00:05 77                         /dev/shm/a b (deleted)\n"
      "not a mapping\n"
      "7ffd457b0000-7ffd457d1000 rw-p 00000000 00:00 0                          [stack]\n";
  auto m = km::parse_maps(text);
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].start, 0x55d0c6a00000u);
  EXPECT_EQ(m[0].name, "/usr/bin/cat");
  EXPECT_EQ(m[0].inode, 1835702u);
  EXPECT_FALSE(m[1].accessible());
  EXPECT_EQ(m[1].size(), 4096u);
  EXPECT_TRUE(m[2].accessible());
  EXPECT_EQ(m[2].size(), 8u << 20);
  EXPECT_EQ(m[3].name, "/dev/shm/a b (deleted)");
  EXPECT_EQ(m[3].offset, 0x1000u);
  EXPECT_EQ(m[4].name, "[stack]");
}

TEST(ProcessMemory, ThisProcess) {
  WEFT_SKIP_UNDER_TSAN();
  volatile int local = 0;
  const auto here = reinterpret_cast<std::uintptr_t>(&local);
  km::process_memory pm = km::read_process_memory();
  EXPECT_GT(pm.vm_size, 0u);
  EXPECT_GT(pm.vm_rss, 0u);
  EXPECT_GE(pm.vm_size, pm.vm_rss);
  EXPECT_GE(pm.threads, 1u);
  ASSERT_TRUE(pm.main_stack.has_value());
  EXPECT_LE(pm.main_stack->start, here);  // gtest runs tests on the main thread
  EXPECT_GT(pm.main_stack->end, here);
  const std::size_t n = km::count_vmas();
  EXPECT_LE(pm.vma_count > n ? pm.vma_count - n : n - pm.vma_count, 4u);
  bool main_seen = false;
  for (const auto& ts : pm.thread_stacks) main_seen |= ts.main;
  EXPECT_TRUE(main_seen);
}

TEST(ProcessMemory, FindsAParkedPthreadsStackAndGuard) {
  // In a child, so this process's glibc stack cache stays empty for the replay tests.
  kmtest::run_result r = kmtest::in_child([] {
    static std::atomic<int> gate{0};
    pthread_t t;
    auto park = [](void*) -> void* {
      while (gate.load() == 0) ::syscall(SYS_futex, &gate, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
      return nullptr;
    };
    if (pthread_create(&t, nullptr, park, nullptr) != 0) return 10;
    pthread_attr_t a;
    pthread_getattr_np(t, &a);
    void* lo;
    std::size_t size, guard;
    pthread_attr_getstack(&a, &lo, &size);
    pthread_attr_getguardsize(&a, &guard);
    const auto low = reinterpret_cast<std::uintptr_t>(lo);
    int found = 0;
    for (int attempt = 0; attempt < 5000 && !found; ++attempt) {  // until it is blocked (bounded)
      for (const auto& ts : km::read_process_memory().thread_stacks) {
        if (ts.main || !ts.vma) continue;
        if (ts.vma->start <= low && ts.vma->end >= low + size && ts.guard_below == guard) found = 1;
      }
    }
    gate.store(1);
    ::syscall(SYS_futex, &gate, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    pthread_join(t, nullptr);
    std::printf("found=%d\n", found);
    return found ? 0 : 1;
  });
  EXPECT_EQ(r.status, 0) << r.out;
}

// Two parked threads on stacks that share one VMA: the upper one has no guard (guard size 0),
// so its stack merges with the guarded stack below it.  The guard under the merged VMA is the
// lower thread's; the upper one has none, and neither owns the merged VMA.  The layout is made
// by hand (one mapping, pthread_attr_setstack) so that the merge happens every run.
TEST(ProcessMemory, AGuardlessStackMergedWithAGuardedOneHasNoGuard) {
  WEFT_SKIP_UNDER_TSAN();
  kmtest::run_result r = kmtest::in_child([] {
    constexpr std::size_t page = 4096, stack = 64 * 1024;
    char* mem = static_cast<char*>(
        ::mmap(nullptr, page + 2 * stack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0));
    if (mem == MAP_FAILED) return 10;
    if (::mprotect(mem, page, PROT_NONE) != 0) return 11;  // the lower stack's guard
    char* lower = mem + page;
    char* upper = lower + stack;
    static std::atomic<int> gate{0};
    auto park = [](void*) -> void* {
      while (gate.load() == 0) ::syscall(SYS_futex, &gate, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
      return nullptr;
    };
    pthread_t t[2];
    char* bases[2] = {lower, upper};
    for (int i = 0; i < 2; ++i) {
      pthread_attr_t a;
      pthread_attr_init(&a);
      if (pthread_attr_setstack(&a, bases[i], stack) != 0) return 12;
      if (pthread_create(&t[i], &a, park, nullptr) != 0) return 13;
      pthread_attr_destroy(&a);
    }
    const auto in = [](const std::optional<std::uintptr_t>& sp, char* base) {
      return sp && *sp >= reinterpret_cast<std::uintptr_t>(base) && *sp < reinterpret_cast<std::uintptr_t>(base) + stack;
    };
    int seen = 0, ok = 0;
    std::string report;
    for (int attempt = 0; attempt < 5000 && seen < 2; ++attempt) {  // until both are blocked (bounded)
      seen = ok = 0;
      report.clear();
      for (const km::thread_stack& ts : km::read_process_memory().thread_stacks) {
        const bool is_lower = in(ts.sp, lower), is_upper = in(ts.sp, upper);
        if (!is_lower && !is_upper) continue;
        ++seen;
        report += std::string(is_lower ? "lower" : "upper") + ": guard_below " + std::to_string(ts.guard_below) +
                  ", own vma " + (ts.vma ? "yes" : "no") + ", shared " + (ts.vma_shared ? "yes" : "no") + "\n";
        if (is_lower && ts.guard_below == page && ts.vma_shared && !ts.vma) ++ok;
        if (is_upper && ts.guard_below == 0 && ts.vma_shared && !ts.vma && ts.containing_vma &&
            ts.containing_vma->start == reinterpret_cast<std::uintptr_t>(lower))
          ++ok;
      }
    }
    gate.store(1);
    ::syscall(SYS_futex, &gate, FUTEX_WAKE_PRIVATE, 2, nullptr, nullptr, 0);
    for (pthread_t x : t) pthread_join(x, nullptr);
    std::printf("%s", report.c_str());
    return seen == 2 && ok == 2 ? 0 : 1;
  });
  EXPECT_EQ(r.status, 0) << r.out;
}

// vm.max_map_count bounds mm->map_count, which does not include the gate area ([vsyscall],
// listed last in /proc/self/maps).  mm/mmap.c do_mmap refuses only once map_count exceeds the
// limit, so a process that maps single pages until mmap fails holds exactly max + 1 VMAs.
TEST(Maps, VmaCountIsWhatMaxMapCountBounds) {
  WEFT_SKIP_UNDER_TSAN();
  kmtest::run_result r = kmtest::in_child([] {
    const std::uint64_t max = km::take_snapshot().max_map_count;
    if (max > 1'000'000) return 20;  // too many to fill in a test
    for (std::uint64_t k = 0;; ++k) {
      // Alternate protections so that neighbours never merge.
      void* p = ::mmap(nullptr, 4096, (k & 1) ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {
        if (errno != ENOMEM) return 21;
        break;
      }
    }
    // With every mapping used, malloc may fail (glibc's cannot mmap a new chunk), so the lines
    // are counted here through a fixed buffer, as count_vmas does, not with read_maps.
    std::size_t lines = 0, gate = 0;
    {
      int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
      if (fd < 0) return 22;
      static char buf[1 << 16];
      static char line_start[32];
      std::size_t col = 0;
      for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return 23;
        if (n == 0) break;
        for (ssize_t i = 0; i < n; ++i) {
          if (col < sizeof line_start - 1) line_start[col] = buf[i];
          ++col;
          if (buf[i] != '\n') continue;
          ++lines;
          // The gate area ([vsyscall]) lies in the kernel's half: its address starts "ffffffffff".
          if (col > 10 && std::strncmp(line_start, "ffffffffff", 10) == 0) ++gate;
          col = 0;
        }
      }
      ::close(fd);
    }
    std::printf("max=%llu\ncount=%zu\nlines=%zu\ngate=%zu\n", static_cast<unsigned long long>(max), km::count_vmas(),
                lines, gate);
    return 0;
  });
  if (r.status == 20) GTEST_SKIP() << "vm.max_map_count is too large to fill here";
  ASSERT_EQ(r.status, 0) << r.out;
  auto kv = kmtest::parse_kv(r.out);
  EXPECT_EQ(kmtest::num(kv, "count"), kmtest::num(kv, "max") + 1) << r.out;
  EXPECT_EQ(kmtest::num(kv, "count"), kmtest::num(kv, "lines") - kmtest::num(kv, "gate")) << r.out;
}

TEST(Snapshot, ReadsTheSystemsNumbers) {
  km::system_snapshot s = km::take_snapshot();
  auto file = [](const char* p) {
    FILE* f = std::fopen(p, "r");
    unsigned long long v = 0;
    if (f) {
      if (std::fscanf(f, "%llu", &v) != 1) v = 0;
      std::fclose(f);
    }
    return v;
  };
  EXPECT_EQ(s.max_map_count, file("/proc/sys/vm/max_map_count"));
  EXPECT_EQ(s.pid_max, file("/proc/sys/kernel/pid_max"));
  EXPECT_EQ(s.threads_max, file("/proc/sys/kernel/threads-max"));
  EXPECT_GT(s.nr_threads, 0u);
  EXPECT_GT(s.vma_count, 10u);
  EXPECT_GT(s.mem_available, 0u);
  EXPECT_GE(s.user_tasks, 1u);  // this test, at least
  if (::getuid() == 0) {
    EXPECT_FALSE(s.nproc_enforced) << "root is exempt from RLIMIT_NPROC";
  }
}

km::system_snapshot synthetic() {
  km::system_snapshot s;
  s.max_map_count = 65530;
  s.vma_count = 30;
  s.pid_max = 32768;
  s.pids_in_use = 10;
  s.threads_max = 192730;
  s.nr_threads = 80;
  s.mem_available = std::uint64_t{23} << 30;
  s.vm_size = std::uint64_t{100} << 20;
  s.nproc_limit = 96365;
  s.nproc_enforced = false;
  s.user_tasks = 80;
  s.init_pid_ns = true;
  return s;
}

TEST(CapacityEstimate, NamesTheSmallestLimit) {
  km::system_snapshot s = synthetic();
  km::capacity_estimate e = km::estimate_capacity(s, 8u << 20, km::guard_style::mprotect);
  EXPECT_EQ(e.vmas_per_thread, 2u);
  EXPECT_EQ(e.block_size, (8u << 20) + 4096);
  EXPECT_EQ(e.binding().limit, km::capacity_limit::pid_max);  // (32768 - 300) - 10 = 32458
  EXPECT_EQ(e.binding().threads, 32458u);
  for (const auto& r : e.rows) {
    EXPECT_NE(r.limit, km::capacity_limit::rlimit_nproc) << "root is exempt from RLIMIT_NPROC";
    if (r.limit == km::capacity_limit::max_map_count) {
      EXPECT_EQ(r.threads, (65530u - 30u) / 2);
    }
    EXPECT_FALSE(r.basis.empty());
  }
  s.vma_count = 2000;  // now the mappings run out first
  EXPECT_EQ(km::estimate_capacity(s, 8u << 20, km::guard_style::mprotect).binding().limit,
            km::capacity_limit::max_map_count);
  // MADV_GUARD_INSTALL guards cost no VMA of their own.
  EXPECT_EQ(km::estimate_capacity(s, 8u << 20, km::guard_style::madvise).vmas_per_thread, 1u);
  s.nproc_enforced = true;
  s.nproc_limit = 500;
  km::capacity_estimate n = km::estimate_capacity(s, 8u << 20, km::guard_style::mprotect);
  EXPECT_EQ(n.binding().limit, km::capacity_limit::rlimit_nproc);
  EXPECT_EQ(n.binding().threads, 420u);
  s.nproc_enforced = false;
  s.as_limit = std::uint64_t{1} << 30;  // 1 GiB of address space: ~115 threads of 8 MiB
  EXPECT_EQ(km::estimate_capacity(s, 8u << 20, km::guard_style::mprotect).binding().limit,
            km::capacity_limit::address_space);
  s.as_limit.reset();
  s.overcommit_memory = 2;
  s.commit_limit = std::uint64_t{1} << 30;
  s.committed_as = 0;
  EXPECT_EQ(km::estimate_capacity(s, 8u << 20, km::guard_style::mprotect).binding().limit,
            km::capacity_limit::commit_limit);
}

TEST(CapacityEstimate, InsideAPidNamespaceTheInitialNamespaceIsAssumedAndSaidSo) {
  km::system_snapshot s = synthetic();
  s.pid_max = 4194304;  // a new namespace's own, since Linux 6.14
  s.init_pid_ns = false;
  s.pid_ns = "pid:[4026532175]";
  s.possible_cpus = 2;
  s.nr_threads = 116;
  km::capacity_estimate e = km::estimate_capacity(s, 64 * 1024, km::guard_style::mprotect);
  EXPECT_EQ(e.binding().limit, km::capacity_limit::ancestor_pid_max);
  EXPECT_EQ(e.binding().threads, 32768u - 300u - 116u);  // the kernel default, less every task on the machine
  EXPECT_TRUE(e.binding().assumed);
  ASSERT_FALSE(e.unknowns.empty());
  EXPECT_NE(e.unknowns.front().find("cannot be read"), std::string::npos) << e.unknowns.front();
  s.possible_cpus = 64;  // the default scales with CPUs: 1024 each (now mappings bind first)
  for (const auto& r : km::estimate_capacity(s, 64 * 1024, km::guard_style::mprotect).rows)
    if (r.limit == km::capacity_limit::ancestor_pid_max) {
      EXPECT_EQ(r.threads, 65536u - 300u - 116u);
    }
  s.init_pid_max = 4194304;  // told: a host that raised it; mappings bind again
  e = km::estimate_capacity(s, 64 * 1024, km::guard_style::mprotect);
  EXPECT_EQ(e.binding().limit, km::capacity_limit::max_map_count);
  for (const auto& r : e.rows) EXPECT_FALSE(r.assumed) << r.basis;
  s.init_pid_ns = true;  // the initial namespace: nothing hidden
  EXPECT_TRUE(km::estimate_capacity(s, 64 * 1024, km::guard_style::mprotect).unknowns.empty());
}

}  // namespace
