// SPDX-License-Identifier: Apache-2.0
// The stack allocator (runtime/stack/stack_pool.hpp), tested directly, without a scheduler.
//
// Accessibility is probed with process_vm_readv on this process: the kernel reads through
// get_user_pages, which fails with EFAULT on PROT_NONE pages and on MADV_GUARD_INSTALL markers
// alike (checked against a faulting write by the death tests), and never raises a signal.
// Residency is read with mincore.  A read probe maps the zero page, so every test reads
// mincore before it probes.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/stack/stackvm.hpp"
#include "runtime/stack/stack_pool.hpp"
#include "weft/errors.hpp"

namespace {

using weft::guard_mode;
using weft::detail::stack;
using weft::detail::stack_cache;
using weft::detail::stack_config;
using weft::detail::stack_pool;

constexpr std::size_t K = 1024;
const std::size_t kPage = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));

#if defined(WEFT_SANITIZE_ADDRESS) || defined(WEFT_SANITIZE_THREAD)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

stack_config config(guard_mode g, std::size_t reserve = 256 * K) {
  stack_config c;
  c.stack_min = 8 * K;
  c.stack_max = std::size_t{1} << 30;
  c.reserve = reserve;
  c.guard = g;
  c.guard_bytes = 64 * K;
  return c;
}

bool accessible(std::uintptr_t addr) {
  char byte;
  iovec local{&byte, 1};
  iovec remote{reinterpret_cast<void*>(addr), 1};
  return ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) == 1;
}

// Every page of [lo, hi) has the given accessibility.
::testing::AssertionResult all_pages(std::uintptr_t lo, std::uintptr_t hi, bool want) {
  for (std::uintptr_t p = lo; p < hi; p += kPage)
    if (accessible(p) != want)
      return ::testing::AssertionFailure() << "page " << std::hex << p << " of [" << lo << ", " << hi << ") is "
                                           << (want ? "not " : "") << "accessible";
  return ::testing::AssertionSuccess();
}

// What lies below a stack whose bottom is `lo`: with mprotect guards, nothing accessible down
// to the slot's bottom; with guard markers, the guard at the slot's bottom and a band of the
// guard's size just below lo, and between them the reserve with no markers at all (they would
// cost page tables: stack_pool.hpp).
::testing::AssertionResult guarded_below(guard_mode mode, const stack& s, std::uintptr_t lo) {
  const std::uintptr_t guard_top = s.slot_lo + 64 * K;
  if (mode == guard_mode::mprotect) return all_pages(s.slot_lo, lo, false);
  const std::uintptr_t band = lo - guard_top > 64 * K ? lo - 64 * K : guard_top;
  if (auto r = all_pages(s.slot_lo, guard_top, false); !r) return r;
  if (auto r = all_pages(band, lo, false); !r) return r;
  return all_pages(guard_top, band, true);
}

std::size_t resident_pages(std::uintptr_t lo, std::uintptr_t hi) {
  std::vector<unsigned char> v((hi - lo) / kPage);
  if (::mincore(reinterpret_cast<void*>(lo), hi - lo, v.data()) != 0) {
    ADD_FAILURE() << "mincore: " << std::strerror(errno);
    return 0;
  }
  return static_cast<std::size_t>(std::count_if(v.begin(), v.end(), [](unsigned char c) { return c & 1; }));
}

void touch(const stack& s) { std::memset(reinterpret_cast<void*>(s.lo), 0x5a, s.size()); }

// Writes to addr with SIGSEGV's default action, so the process dies by the signal even where a
// sanitizer installed its own handler (raw rt_sigaction: the sanitizers intercept sigaction).
[[noreturn]] void poke(std::uintptr_t addr) {
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
  } act{SIG_DFL, 0, nullptr, 0};
  ::syscall(SYS_rt_sigaction, SIGSEGV, &act, nullptr, sizeof act.mask);
  ::syscall(SYS_rt_sigaction, SIGBUS, &act, nullptr, sizeof act.mask);
  *reinterpret_cast<volatile char*>(addr) = 1;
  ::_exit(0);  // the write went through: no guard
}

// Makes madvise(MADV_GUARD_INSTALL) fail with EINVAL in this process, as on a kernel before 6.13.
void pretend_old_kernel() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[2])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, weft::detail::stackvm::kMadvGuardInstall, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    ::_exit(3);
}

// ---- configuration -------------------------------------------------------------------------

TEST(StackPool, AutomaticResolvesToMadviseOnThisKernel) {
  int err = 0;
  const bool have = weft::detail::stackvm::guard_install_works(&err);
  stack_pool pool(config(guard_mode::automatic));
  EXPECT_EQ(pool.config().guard, have ? guard_mode::madvise : guard_mode::mprotect);
}

TEST(StackPool, MadviseWithoutKernelSupportIsAConfigErrorAndAutomaticFallsBack) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        pretend_old_kernel();
        std::string msg;
        try {
          stack_pool pool(config(guard_mode::madvise));
        } catch (const weft::config_error& e) {
          msg = e.what();
        }
        for (const char* want : {"WEFT_GUARD=madvise", "MADV_GUARD_INSTALL", "6.13", "WEFT_GUARD=automatic",
                                 "WEFT_GUARD=mprotect", "WEFT_GUARD=none"})
          if (msg.find(want) == std::string::npos) ::_exit(4);
        stack_pool pool(config(guard_mode::automatic));
        if (pool.config().guard != guard_mode::mprotect) ::_exit(5);
        stack s = pool.alloc(8 * K);
        if (accessible(s.lo - 1) || !accessible(s.lo)) ::_exit(6);
        pool.free(s);
        ::_exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(StackPool, BadConfigNamesTheVariable) {
  auto message = [](stack_config c) -> std::string {
    try {
      stack_pool pool(c);
    } catch (const weft::config_error& e) {
      return e.what();
    }
    return "";
  };
  stack_config c = config(guard_mode::none);
  c.stack_min = 12 * K;
  EXPECT_NE(message(c).find("WEFT_STACK_MIN"), std::string::npos);
  c = config(guard_mode::none);
  c.stack_max = 3 * K * K;
  EXPECT_NE(message(c).find("WEFT_STACK_MAX"), std::string::npos);
  c = config(guard_mode::none);
  c.reserve = 100 * K;
  EXPECT_NE(message(c).find("WEFT_STACK_RESERVE"), std::string::npos);
  c = config(guard_mode::none, 2 * K * K);  // folded: the slot is the reserve, guard included
  c.stack_min = K * K;
  const std::string folded = message(c);
  EXPECT_NE(folded.find("WEFT_STACK_RESERVE"), std::string::npos) << folded;
  EXPECT_NE(folded.find("two stack_min"), std::string::npos) << folded;
}

TEST(StackPool, SlotLayoutAndClasses) {
  stack_pool pool(config(guard_mode::none));
  stack s = pool.alloc(8 * K);
  EXPECT_EQ(s.size(), 8 * K);
  EXPECT_EQ(pool.capacity(s), 256 * K);  // every small stack shares the reserve's class
  EXPECT_EQ(s.hi - s.slot_lo, 64 * K + 256 * K);
  EXPECT_EQ(s.hi % kPage, 0u);
  stack odd = pool.alloc(5000);  // rounded up to a power of two, at least stack_min
  EXPECT_EQ(odd.size(), 8 * K);
  stack big = pool.alloc(std::size_t{1} << 20);
  EXPECT_EQ(big.size(), std::size_t{1} << 20);
  EXPECT_EQ(pool.capacity(big), std::size_t{1} << 20);
  EXPECT_EQ(pool.class_capacity(big.cls), std::size_t{1} << 20);
  EXPECT_GT(big.cls, s.cls);
  EXPECT_THROW(pool.alloc(std::size_t{2} << 30), std::length_error);
  auto st = pool.stats();
  EXPECT_EQ(st.slots_in_use, 3u);
  EXPECT_EQ(st.in_use_per_class[s.cls], 2u);
  EXPECT_EQ(st.in_use_per_class[big.cls], 1u);
  // One first arena per class used: 64 MiB worth of whole slots each.
  const std::size_t small_slot = 64 * K + 256 * K, big_slot = 64 * K + (std::size_t{1} << 20);
  EXPECT_EQ(st.bytes_reserved, (std::size_t{64} << 20) / small_slot * small_slot + (std::size_t{64} << 20) / big_slot * big_slot);
  pool.free(s);
  pool.free(odd);
  pool.free(big);
  st = pool.stats();
  EXPECT_EQ(st.slots_in_use, 0u);
  EXPECT_EQ(st.slots_pooled, 3u);
}

TEST(StackPool, PureCopyingReserveZeroHasNoRoomToGrow) {
  stack_pool pool(config(guard_mode::madvise, 0));
  stack s = pool.alloc(16 * K);
  EXPECT_EQ(pool.capacity(s), 16 * K);
  EXPECT_FALSE(pool.grow_in_place(s, 32 * K));
  EXPECT_EQ(s.size(), 16 * K);
  EXPECT_FALSE(accessible(s.lo - 1));
  pool.free(s);
}

TEST(StackPool, SlackIsRoomOnlyAFaultGrowsInto) {
  stack_config c = config(guard_mode::madvise, 0);
  c.slack = 64 * K;
  stack_pool pool(c);
  stack s = pool.alloc(16 * K);
  EXPECT_EQ(pool.capacity(s), 16 * K);
  EXPECT_EQ(pool.room(s), 80 * K);
  EXPECT_EQ(s.hi - s.slot_lo, 64 * K + 64 * K + 16 * K);
  EXPECT_FALSE(pool.grow_in_place(s, 32 * K));  // a check: past the capacity, it must copy
  ASSERT_TRUE(pool.grow_in_place(s, 80 * K, true));  // a fault: into the slack
  EXPECT_EQ(s.lo, s.slot_lo + 64 * K);
  EXPECT_FALSE(pool.grow_in_place(s, 84 * K, true));
  EXPECT_TRUE(all_pages(s.lo, s.hi, true));
  EXPECT_FALSE(accessible(s.lo - 1));
  pool.free(s);
}

// Slots of 2 MiB or more are folded: the slot is the reserve, its guard included, and it starts
// 1 MiB off 2 MiB alignment (stack_pool.hpp).
TEST(StackPool, FoldedSlotsStartOffTheirPageTablesAlignment) {
  const std::size_t M = std::size_t{1} << 20;
  stack_pool pool(config(guard_mode::madvise, 8 * M));
  std::vector<stack> v;
  for (int i = 0; i < 20; ++i) v.push_back(pool.alloc(8 * K));  // more than one arena's worth
  for (const stack& s : v) {
    EXPECT_EQ(s.slot_lo % (2 * M), 1 * M);
    EXPECT_EQ(s.hi - s.slot_lo, 8 * M);
    EXPECT_EQ(s.size(), 8 * K);
    EXPECT_EQ(pool.capacity(s), 8 * M - 64 * K);
    EXPECT_TRUE(guarded_below(guard_mode::madvise, s, s.lo));
  }
  stack& s = v.front();
  ASSERT_TRUE(pool.grow_in_place(s, pool.capacity(s)));  // the last doubling ends at the guard
  EXPECT_EQ(s.lo, s.slot_lo + 64 * K);
  EXPECT_TRUE(all_pages(s.lo, s.lo + 16 * K, true));
  EXPECT_FALSE(accessible(s.lo - 1));
  EXPECT_FALSE(pool.grow_in_place(s, 8 * M));
  pool.shrink_in_place(s, 8 * K);
  EXPECT_TRUE(guarded_below(guard_mode::madvise, s, s.lo));
  for (const stack& t : v) pool.free(t);
}

// What the folded layout is for: a parked goroutine touches its stack's top page, and its
// page tables are that one page-table page (shared with the guard of the slot above), not
// one per 2 MiB of its 8 MiB reserve.  Read from the kernel's own count (VmPTE).
TEST(StackPool, AnEightMiBReserveCostsAboutOnePageTablePagePerStack) {
  if (kSanitized) GTEST_SKIP() << "sanitizer shadow memory has page tables of its own";
  int err = 0;
  if (!weft::detail::stackvm::guard_install_works(&err)) GTEST_SKIP() << "no MADV_GUARD_INSTALL on this kernel";
  auto vm_pte = [] {
    FILE* f = std::fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "VmPTE: %ld", &kb) == 1) break;
    if (f) std::fclose(f);
    return kb * 1024;
  };
  const std::size_t n = 4096;
  stack_pool pool(config(guard_mode::madvise, std::size_t{8} << 20));
  std::vector<stack> v;
  v.reserve(n);
  const long before = vm_pte();
  for (std::size_t i = 0; i < n; ++i) {
    v.push_back(pool.alloc(8 * K));
    *reinterpret_cast<volatile char*>(v.back().hi - 64) = 1;  // a parked goroutine's top frame
  }
  const long per_stack = (vm_pte() - before) / static_cast<long>(n);
  // One 4 KiB page-table page, and a little of the level above; markers over the whole slot
  // would cost four or five of them.
  EXPECT_LE(per_stack, 4400) << "page tables per stack";
  EXPECT_GE(per_stack, 4000) << "page tables per stack";
  for (const stack& s : v) pool.free(s);
}

// ---- a million guarded stacks ----------------------------------------------------------------

TEST(StackPool, MillionMadviseGuardedStacksInAHandfulOfMappings) {
  int err = 0;
  if (!weft::detail::stackvm::guard_install_works(&err)) GTEST_SKIP() << "no MADV_GUARD_INSTALL on this kernel";
  // Under the sanitizers each allocation is several times slower and the shadow of the slot
  // tables adds up: 100,000 stacks there, the full million otherwise.
  const std::size_t n = kSanitized ? 100'000 : 1'000'000;
  const std::size_t before = weft::detail::stackvm::count_mappings();
  std::vector<stack> stacks;
  stacks.reserve(n);
  {
    stack_pool pool(config(guard_mode::madvise));
    for (std::size_t i = 0; i < n; ++i) stacks.push_back(pool.alloc(8 * K));
    const std::size_t held = weft::detail::stackvm::count_mappings();
    auto st = pool.stats();
    std::printf("%zu madvise-guarded stacks held: %zu process mappings (%zu before), %llu arenas, %.1f GiB reserved\n",
                n, held, before, static_cast<unsigned long long>(st.mappings),
                static_cast<double>(st.bytes_reserved) / (1 << 30));
    // Under a sanitizer the runtime owns 150-250 mappings of its own and TSan adds shadow
    // mappings per arena, so there only the pool's own count is checked.
    EXPECT_LT(st.mappings, 20u);
    if (!kSanitized) {
      EXPECT_LT(held, 200u);
      EXPECT_LE(held - before, st.mappings + 2);
    }
    EXPECT_EQ(st.slots_in_use, n);
    // Spot-check that the guards are really there (and the stacks really usable).
    for (std::size_t i = 0; i < n; i += n / 10) {
      const stack& s = stacks[i];
      *reinterpret_cast<volatile char*>(s.hi - 1) = 1;
      EXPECT_FALSE(accessible(s.lo - 1));
      EXPECT_FALSE(accessible(s.slot_lo));
    }
    for (const stack& s : stacks) pool.free(s);
    st = pool.stats();
    EXPECT_EQ(st.slots_in_use, 0u);
    EXPECT_EQ(st.slots_pooled, n);
    if (!kSanitized) {
      EXPECT_LT(weft::detail::stackvm::count_mappings(), 200u);
    }
  }
  if (!kSanitized) {
    EXPECT_LE(weft::detail::stackvm::count_mappings(), before + 2);  // the destructor unmapped its arenas
  }
}

// ---- guards ----------------------------------------------------------------------------------

class Guarded : public ::testing::TestWithParam<guard_mode> {
 protected:
  void SetUp() override {
    int err = 0;
    if (GetParam() == guard_mode::madvise && !weft::detail::stackvm::guard_install_works(&err))
      GTEST_SKIP() << "no MADV_GUARD_INSTALL on this kernel";
  }
};

TEST_P(Guarded, WriteIntoTheGuardPageKillsWithSIGSEGV) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  stack_pool pool(config(GetParam()));
  stack s = pool.alloc(8 * K);
  EXPECT_EXIT(poke(s.slot_lo + 64 * K - 1), ::testing::KilledBySignal(SIGSEGV), "");
  EXPECT_EXIT(poke(s.slot_lo), ::testing::KilledBySignal(SIGSEGV), "");
  // Grown all the way, the permanent guard is still below.
  ASSERT_TRUE(pool.grow_in_place(s, pool.capacity(s)));
  EXPECT_EXIT(poke(s.lo - 1), ::testing::KilledBySignal(SIGSEGV), "");
  pool.free(s);
}

TEST_P(Guarded, WriteIntoTheReserveJustBelowLoKillsWithSIGSEGV) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  stack_pool pool(config(GetParam()));
  stack s = pool.alloc(8 * K);
  EXPECT_EXIT(poke(s.lo - 1), ::testing::KilledBySignal(SIGSEGV), "");
  // The stack itself is writable, so the same poke above lo survives.
  EXPECT_EXIT(poke(s.lo), ::testing::ExitedWithCode(0), "");
  pool.free(s);
}

TEST_P(Guarded, GrowAndShrinkOpenAndCloseExactlyTheRightPages) {
  const guard_mode mode = GetParam();
  stack_pool pool(config(mode));
  stack s = pool.alloc(8 * K);
  const std::uintptr_t hi = s.hi;
  const std::uintptr_t bottom = s.slot_lo + 64 * K;  // lowest address the stack can reach
  EXPECT_TRUE(all_pages(hi - 8 * K, hi, true));
  EXPECT_TRUE(guarded_below(mode, s, hi - 8 * K));

  ASSERT_TRUE(pool.grow_in_place(s, 64 * K));
  EXPECT_EQ(s.lo, hi - 64 * K);
  EXPECT_EQ(s.hi, hi);
  EXPECT_TRUE(all_pages(hi - 64 * K, hi, true));
  EXPECT_TRUE(guarded_below(mode, s, hi - 64 * K));

  EXPECT_FALSE(pool.grow_in_place(s, 512 * K));  // past the slot: the growth code must copy
  EXPECT_EQ(s.lo, hi - 64 * K);
  ASSERT_TRUE(pool.grow_in_place(s, 256 * K));
  EXPECT_EQ(s.lo, bottom);
  EXPECT_TRUE(all_pages(bottom, hi, true));
  EXPECT_TRUE(guarded_below(mode, s, bottom));

  // Touch everything, then shrink: the pages below the new lo go back to the OS, the top
  // keeps its contents.
  touch(s);
  std::memset(reinterpret_cast<void*>(hi - 16 * K), 0x77, 16 * K);
  EXPECT_EQ(resident_pages(bottom, hi), 256 * K / kPage);
  pool.shrink_in_place(s, 16 * K);
  EXPECT_EQ(s.lo, hi - 16 * K);
  EXPECT_EQ(resident_pages(bottom, s.lo), 0u);
  EXPECT_EQ(resident_pages(s.lo, hi), 16 * K / kPage);
  for (std::uintptr_t p = s.lo; p < hi; ++p) ASSERT_EQ(*reinterpret_cast<unsigned char*>(p), 0x77);
  EXPECT_TRUE(all_pages(hi - 16 * K, hi, true));
  EXPECT_TRUE(guarded_below(mode, s, hi - 16 * K));

  pool.shrink_in_place(s, 1 * K);  // never below stack_min
  EXPECT_EQ(s.size(), 8 * K);
  EXPECT_TRUE(guarded_below(mode, s, hi - 8 * K));

  // Growing again finds zeros, not the old contents.
  ASSERT_TRUE(pool.grow_in_place(s, 32 * K));
  EXPECT_EQ(*reinterpret_cast<unsigned char*>(s.lo), 0);
  pool.free(s);
}

INSTANTIATE_TEST_SUITE_P(Modes, Guarded, ::testing::Values(guard_mode::madvise, guard_mode::mprotect),
                         [](const auto& info) { return std::string(weft::detail::stackvm::mode_name(info.param)); });

TEST(StackPool, GuardNoneOpensEverythingButStillReleasesOnShrink) {
  stack_pool pool(config(guard_mode::none));
  stack s = pool.alloc(64 * K);
  EXPECT_TRUE(accessible(s.lo - 1));
  touch(s);
  pool.shrink_in_place(s, 8 * K);
  EXPECT_EQ(resident_pages(s.hi - 64 * K, s.lo), 0u);
  EXPECT_EQ(resident_pages(s.lo, s.hi), 8 * K / kPage);
  pool.free(s);
}

// ---- the mapping budget --------------------------------------------------------------------

TEST(StackPool, MprotectBudgetSaysWhatRanOutAndThePoolKeepsWorking) {
  stack_pool pool(config(guard_mode::mprotect));
  const std::size_t before = weft::detail::stackvm::count_mappings();
  const std::size_t budget = before + 2000;
  pool.set_map_budget_for_testing(budget);
  std::vector<stack> held;
  std::string msg;
  std::error_code code;
  try {
    for (int i = 0; i < 5000; ++i) held.push_back(pool.alloc(8 * K));
  } catch (const weft::resource_error& e) {
    msg = e.what();
    code = e.code();
  }
  ASSERT_FALSE(msg.empty()) << "5000 mprotect stacks fit in a budget of " << budget;
  std::printf("after %zu stacks: %s\n", held.size(), msg.c_str());
  EXPECT_EQ(code, std::errc::not_enough_memory);
  // It stopped short of the budget, but not absurdly short (the margin is 1% + 256).
  const std::size_t now = weft::detail::stackvm::count_mappings();
  EXPECT_LT(now, budget);
  EXPECT_GT(held.size(), 500u);
  // Each mprotect stack really costs about two mappings, as the pool estimates.
  EXPECT_NEAR(static_cast<double>(now - before), 2.0 * static_cast<double>(held.size()), 8.0);
  const auto st = pool.stats();
  EXPECT_EQ(st.map_limit, budget);
  EXPECT_NE(msg.find("vm.max_map_count is " + std::to_string(budget)), std::string::npos);
  EXPECT_NE(msg.find(std::to_string(st.mappings) + " of them weft's"), std::string::npos);
  EXPECT_NE(msg.find("sysctl -w vm.max_map_count="), std::string::npos);
  EXPECT_NE(msg.find("MADV_GUARD_INSTALL (Linux 6.13+)"), std::string::npos);
  EXPECT_NE(msg.find("WEFT_GUARD=madvise"), std::string::npos);
  EXPECT_NE(msg.find("WEFT_GUARD=none"), std::string::npos);
  EXPECT_EQ(st.slots_in_use, held.size());

  // Still full: a fresh slot is refused again (and the refusal changed nothing) ...
  EXPECT_THROW(pool.alloc(8 * K), weft::resource_error);
  EXPECT_EQ(pool.stats().slots_carved, held.size());
  // ... but freed stacks are reused without new mappings, and every stack still works.
  for (int i = 0; i < 10; ++i) {
    pool.free(held.back());
    held.pop_back();
  }
  for (int i = 0; i < 10; ++i) held.push_back(pool.alloc(8 * K));
  for (const stack& s : held) *reinterpret_cast<volatile char*>(s.hi - 1) = 1;
  for (const stack& s : held) pool.free(s);
  held.clear();
  stack again = pool.alloc(8 * K);
  EXPECT_TRUE(accessible(again.lo));
  EXPECT_FALSE(accessible(again.lo - 1));
  pool.free(again);
  // With the real limit back, new slots are carved again.
  pool.set_map_budget_for_testing(0);
  std::vector<stack> more;
  for (std::size_t i = 0; i < st.slots_carved + 10; ++i) more.push_back(pool.alloc(8 * K));
  EXPECT_GT(pool.stats().slots_carved, st.slots_carved);
  for (const stack& s : more) pool.free(s);
}

TEST(StackPool, MmapFailureIsAResourceErrorAndThePoolKeepsWorking) {
  if (kSanitized) GTEST_SKIP() << "RLIMIT_AS cannot be lowered under a sanitizer (its shadow needs terabytes)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        stack_pool pool(config(guard_mode::madvise));
        stack small = pool.alloc(8 * K);
        rlimit lim{};
        ::getrlimit(RLIMIT_AS, &lim);
        lim.rlim_cur = std::size_t{512} << 20;  // far more than this child uses, far less than 1 GiB
        ::setrlimit(RLIMIT_AS, &lim);
        std::string msg;
        try {
          (void)pool.alloc(std::size_t{1} << 30);
        } catch (const weft::resource_error& e) {
          msg = e.what();
        }
        for (const char* want : {"mmap", "WEFT_STACK_MAX", "ulimit -v", "overcommit"})
          if (msg.find(want) == std::string::npos) ::_exit(4);
        pool.free(small);
        stack again = pool.alloc(8 * K);
        *reinterpret_cast<volatile char*>(again.hi - 1) = 1;
        ::_exit(again.slot_lo == small.slot_lo ? 0 : 5);
      },
      ::testing::ExitedWithCode(0), "");
}

// ---- reuse: per-P caches and the global pool -------------------------------------------------

TEST(StackPool, PerPCacheReturnsTheSameSlot) {
  stack_pool pool(config(guard_mode::madvise));
  stack_cache cache;
  stack a = pool.alloc(8 * K, &cache);
  touch(a);
  pool.free(a, &cache);
  EXPECT_EQ(cache.free[a.cls].size(), 1u);
  stack b = pool.alloc(8 * K, &cache);
  EXPECT_EQ(b.slot_lo, a.slot_lo);
  EXPECT_EQ(b.lo, a.lo);
  EXPECT_EQ(resident_pages(b.lo, b.hi), 8 * K / kPage);  // pages kept: no faults on reuse
  pool.free(b, &cache);
  pool.drain(cache);
}

TEST(StackPool, CacheRefillsAndDrainsInBatches) {
  stack_pool pool(config(guard_mode::madvise));
  std::vector<stack> v;
  for (std::size_t i = 0; i < stack_cache::kBatch + 5; ++i) v.push_back(pool.alloc(8 * K));
  for (const stack& s : v) pool.free(s);  // to the global pool
  stack_cache cache;
  stack first = pool.alloc(8 * K, &cache);
  EXPECT_EQ(first.slot_lo, v.back().slot_lo);              // LIFO: the most recently freed
  EXPECT_EQ(cache.free[0].size(), stack_cache::kBatch - 1);  // one batch came over
  pool.free(first, &cache);
  pool.drain(cache);
  EXPECT_TRUE(cache.free[0].empty());

  // Over kMax, a cache drains down to kMax - kBatch, keeping its most recent stacks.
  stack_cache full;
  std::vector<stack> w;
  for (std::size_t i = 0; i < stack_cache::kMax + 1; ++i) w.push_back(pool.alloc(8 * K));
  for (const stack& s : w) pool.free(s, &full);
  EXPECT_EQ(full.free[0].size(), stack_cache::kMax - stack_cache::kBatch);
  EXPECT_EQ(full.free[0].back().slot_lo, w.back().slot_lo);

  // A P going away hands everything to another.
  pool.drain(full);
  EXPECT_TRUE(full.free[0].empty());
  stack_cache other;
  stack got = pool.alloc(8 * K, &other);
  EXPECT_EQ(got.slot_lo, w.back().slot_lo);
  pool.free(got, &other);
  pool.drain(other);
  EXPECT_EQ(pool.stats().slots_in_use, 0u);
  EXPECT_EQ(pool.stats().slots_carved, pool.stats().slots_pooled);
}

// The inline fast paths a spawn and an exit take (take_cached, put_cached) serve only what the
// cache can serve alone, count like the full calls, and step aside — an empty stack, false —
// for everything else, which the full call then does.
TEST(StackPool, CacheFastPathsServeOnlyWhatTheCacheHolds) {
  stack_pool pool(config(guard_mode::madvise));
  stack_cache cache;
  EXPECT_TRUE(pool.take_cached(cache).empty());  // never used with this pool
  stack a = pool.alloc(8 * K, &cache);
  EXPECT_TRUE(pool.take_cached(cache).empty());  // used, but empty: the full call refills
  EXPECT_EQ(pool.stats().slots_in_use, 1u);
  ASSERT_TRUE(pool.put_cached(a, cache));
  EXPECT_EQ(cache.free[0].size(), 1u);
  EXPECT_EQ(pool.stats().slots_in_use, 0u);
  EXPECT_TRUE(pool.take_cached(cache).empty());  // the warm end is kept for first runs
  // A first run trades a reservation for it; the stale end then serves the next spawn.
  const stack r = pool.alloc(8 * K);
  stack b = r;
  ASSERT_TRUE(pool.trade_for_warm(b, cache));
  EXPECT_EQ(b.slot_lo, a.slot_lo);
  EXPECT_EQ(b.size(), a.size());
  stack from_stale = pool.take_cached(cache);
  EXPECT_EQ(from_stale.slot_lo, r.slot_lo);
  EXPECT_EQ(pool.stats().slots_in_use, 2u);
  pool.free(from_stale);
  EXPECT_EQ(pool.stats().slots_in_use, 1u);

  // A full cache: the fast path declines, the full free drains it.
  std::vector<stack> v;
  for (std::size_t i = 0; i < stack_cache::kMax; ++i) v.push_back(pool.alloc(8 * K));
  for (const stack& s : v) pool.free(s, &cache);
  ASSERT_EQ(cache.free[0].size(), stack_cache::kMax);
  stack extra = pool.alloc(8 * K);
  EXPECT_FALSE(pool.put_cached(extra, cache));
  EXPECT_EQ(cache.free[0].size(), stack_cache::kMax);
  pool.free(extra, &cache);
  EXPECT_EQ(cache.free[0].size(), stack_cache::kMax - stack_cache::kBatch);

  // A grown stack is too big to keep per P: the full free sends it to the global pool.
  ASSERT_TRUE(pool.grow_in_place(b, 128 * K));
  EXPECT_FALSE(pool.put_cached(b, cache));
  pool.free(b, &cache);
  EXPECT_EQ(cache.free[0].size(), stack_cache::kMax - stack_cache::kBatch);
  EXPECT_EQ(pool.stats().slots_in_use, 0u);

  pool.drain(cache);
  EXPECT_EQ(pool.stats().slots_in_use, 0u);

  // With WEFT_DEBUG's checks on, both step aside: every free goes through the check.
  stack_config c = config(guard_mode::madvise);
  c.check_frees = true;
  stack_pool checked(c);
  stack_cache cc;
  stack s = checked.alloc(8 * K, &cc);
  EXPECT_FALSE(checked.put_cached(s, cc));
  checked.free(s, &cc);
  EXPECT_EQ(cc.free[0].size(), 1u);
  EXPECT_TRUE(checked.take_cached(cc).empty());
  checked.drain(cc);
}

// A goroutine's first run trades the stack reserved at its spawn for the one its P freed last
// (trade_for_warm); spawns reserve from the stale end, then the global pool, and only then the
// warm end; the stale end is bounded; nothing changes the in-use count.
TEST(StackPool, FirstRunsTradeForTheWarmEndAndSpawnsTakeTheStaleEnd) {
  stack_pool pool(config(guard_mode::madvise));
  stack_cache cache;
  const stack r = pool.alloc_min(&cache);  // a spawn's reservation
  const stack warm = pool.alloc_min(&cache);
  pool.free_own(warm, &cache);  // an exit
  ASSERT_EQ(cache.free[0].size(), 1u);
  EXPECT_EQ(pool.stats().slots_in_use, 1u);

  stack s = r;
  ASSERT_TRUE(pool.trade_for_warm(s, cache));
  EXPECT_EQ(s.slot_lo, warm.slot_lo);
  EXPECT_TRUE(cache.free[0].empty());
  ASSERT_EQ(cache.stale.size(), 1u);
  EXPECT_EQ(cache.stale.back().slot_lo, r.slot_lo);
  EXPECT_EQ(pool.stats().slots_in_use, 1u);  // one out, one in

  // Nothing warm: no trade, the reservation stays.
  stack t = pool.alloc_min(&cache);
  EXPECT_EQ(t.slot_lo, r.slot_lo);  // the stale end first
  const stack t0 = t;
  EXPECT_FALSE(pool.trade_for_warm(t, cache));
  EXPECT_EQ(t.slot_lo, t0.slot_lo);

  // With the stale end empty, the global pool before the warm end.
  pool.free_own(s, &cache);  // warm end: s
  const stack elsewhere = pool.alloc(8 * K);
  pool.free(elsewhere);  // global pool
  stack u = pool.alloc_min(&cache);
  EXPECT_EQ(u.slot_lo, elsewhere.slot_lo);
  ASSERT_EQ(cache.free[0].size(), 1u);
  EXPECT_EQ(cache.free[0].back().slot_lo, s.slot_lo);
  // And the warm end last, before a new slot is carved.
  pool.free(u);
  pool.free(t);
  pool.drain(cache);  // the global pool now holds every pooled stack: take them all
  std::vector<stack> all;
  for (int i = 0; i < 10000 && pool.stats().slots_pooled != 0; ++i) all.push_back(pool.alloc(8 * K));
  ASSERT_EQ(pool.stats().slots_pooled, 0u);
  const stack last = all.back();
  all.pop_back();
  pool.free_own(last, &cache);
  EXPECT_EQ(pool.alloc_min(&cache).slot_lo, last.slot_lo);

  // The stale end holds at most kMax: a trade into a full one first gives kBatch back.
  std::vector<stack> reserved, warmed;
  for (std::size_t i = 0; i <= stack_cache::kMax; ++i) reserved.push_back(pool.alloc(8 * K));
  const std::uint64_t in_use = pool.stats().slots_in_use;
  for (stack& rs : reserved) {
    pool.free_own(pool.alloc(8 * K), &cache);  // something warm to trade for
    ASSERT_TRUE(pool.trade_for_warm(rs, cache));
  }
  EXPECT_EQ(cache.stale.size(), stack_cache::kMax - stack_cache::kBatch + 1);
  EXPECT_EQ(pool.stats().slots_in_use, in_use);

  // A reservation grown past what a cache keeps (a grown stack from the global pool) is not
  // traded: run on, it goes back to the pool when freed, instead of cycling through `stale`.
  stack grown = pool.alloc(8 * K);
  ASSERT_TRUE(pool.grow_in_place(grown, 128 * K));
  pool.free_own(pool.alloc(8 * K), &cache);
  const stack grown0 = grown;
  EXPECT_FALSE(pool.trade_for_warm(grown, cache));
  EXPECT_EQ(grown.slot_lo, grown0.slot_lo);

  // Only stack_min's class trades, and not under WEFT_DEBUG's checks.
  stack big = pool.alloc(std::size_t{16} << 20, &cache);
  pool.free_own(pool.alloc(8 * K), &cache);
  const stack big0 = big;
  EXPECT_FALSE(pool.trade_for_warm(big, cache));
  EXPECT_EQ(big.slot_lo, big0.slot_lo);
  stack_config c = config(guard_mode::madvise);
  c.check_frees = true;
  stack_pool checked(c);
  stack_cache cc;
  stack x = checked.alloc_min(&cc);
  checked.free(checked.alloc_min(&cc), &cc);
  EXPECT_FALSE(checked.trade_for_warm(x, cc));
  checked.free(x, &cc);
  checked.drain(cc);
}

TEST(StackPool, GrownStacksAndLargeClassesBypassTheCache) {
  stack_pool pool(config(guard_mode::madvise));
  stack_cache cache;
  stack grown = pool.alloc(8 * K, &cache);
  ASSERT_TRUE(pool.grow_in_place(grown, 128 * K));
  pool.free(grown, &cache);
  EXPECT_TRUE(cache.free[0].empty());  // too much memory to park per P
  stack back = pool.alloc(8 * K);      // from the global pool, still grown
  EXPECT_EQ(back.slot_lo, grown.slot_lo);
  EXPECT_EQ(back.size(), 128 * K);
  pool.free(back);

  const std::size_t big_size = std::size_t{16} << 20;
  stack big = pool.alloc(big_size, &cache);
  EXPECT_GE(big.cls, stack_cache::kClasses);
  pool.free(big, &cache);
  for (auto& v : cache.free) EXPECT_TRUE(v.empty());
  stack big2 = pool.alloc(big_size, &cache);
  EXPECT_EQ(big2.slot_lo, big.slot_lo);  // Go's stackLarge: reused through the global list
  pool.free(big2, &cache);
}

TEST(StackPool, PooledStackSmallerThanTheRequestIsGrownInPlace) {
  stack_pool pool(config(guard_mode::mprotect));
  stack a = pool.alloc(8 * K);
  pool.free(a);
  stack b = pool.alloc(64 * K);
  EXPECT_EQ(b.slot_lo, a.slot_lo);
  EXPECT_EQ(b.size(), 64 * K);
  EXPECT_TRUE(all_pages(b.lo, b.hi, true));
  EXPECT_FALSE(accessible(b.lo - 1));
  pool.free(b);
}

// ---- release_idle ----------------------------------------------------------------------------

struct pooled_set {
  std::vector<stack> stacks;
  std::size_t resident() const {
    std::size_t n = 0;
    for (const stack& s : stacks) n += resident_pages(s.hi - 128 * K, s.hi);
    return n;
  }
};

pooled_set fill_pool(stack_pool& pool, std::size_t count) {
  pooled_set set;
  for (std::size_t i = 0; i < count; ++i) {
    stack s = pool.alloc(8 * K);
    EXPECT_TRUE(pool.grow_in_place(s, 128 * K));
    touch(s);
    set.stacks.push_back(s);
  }
  for (const stack& s : set.stacks) pool.free(s);
  return set;
}

TEST(StackPool, ReleaseIdleReturnsMemoryOfStacksIdleSinceThePreviousScan) {
  stack_pool pool(config(guard_mode::madvise));
  pooled_set set = fill_pool(pool, 32);  // 4 MiB, under the 16 MiB kept per class
  const std::size_t full = 32 * 128 * K / kPage;
  EXPECT_EQ(set.resident(), full);
  pool.release_idle();  // they were in use since the (implicit) previous scan: kept
  EXPECT_EQ(set.resident(), full);
  EXPECT_EQ(pool.stats().bytes_released, 0u);

  // Four of them get used between the scans; the other 28 sat idle.
  std::vector<stack> used;
  for (int i = 0; i < 4; ++i) used.push_back(pool.alloc(8 * K));
  for (const stack& s : used) pool.free(s);
  pool.release_idle();
  EXPECT_EQ(set.resident(), 4 * 128 * K / kPage);
  EXPECT_EQ(pool.stats().bytes_released, 28 * 128 * K);
  pool.release_idle();
  EXPECT_EQ(set.resident(), 0u);
  EXPECT_EQ(pool.stats().bytes_released, 32 * 128 * K);

  // A released stack comes back at stack_min, guarded below, zero-filled.
  stack s = pool.alloc(8 * K);
  EXPECT_EQ(s.size(), 8 * K);
  EXPECT_EQ(*reinterpret_cast<unsigned char*>(s.hi - 1), 0);
  EXPECT_FALSE(accessible(s.lo - 1));
  pool.free(s);
}

TEST(StackPool, ReleaseIdleKeepsAtMostPoolKeepBytes) {
  for (guard_mode mode : {guard_mode::madvise, guard_mode::mprotect, guard_mode::none}) {
    SCOPED_TRACE(weft::detail::stackvm::mode_name(mode));
    stack_config c = config(mode);
    c.pool_keep_bytes = 1 << 20;
    stack_pool pool(c);
    pooled_set set = fill_pool(pool, 32);
    pool.release_idle();
    // The oldest go first; what stays (the 8 most recently freed) fits in 1 MiB.
    EXPECT_EQ(set.resident(), 8 * 128 * K / kPage);
    for (std::size_t i = 0; i < 24; ++i)
      EXPECT_EQ(resident_pages(set.stacks[i].hi - 128 * K, set.stacks[i].hi), 0u) << i;
    EXPECT_EQ(pool.stats().bytes_released, 24 * 128 * K);
  }
}

// The pool's own consistency checks end the process with weft's fatal report: a stack it never
// gave out (always checked), and, with check_frees (WEFT_DEBUG), a stack freed twice.
TEST(StackPool, FreeingAStackThePoolNeverGaveOutIsFatal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        stack_pool pool(config(guard_mode::madvise));
        stack forged = pool.alloc(8 * K);
        forged.arena += 1000;
        pool.free(forged);
      },
      ::testing::ExitedWithCode(2), "weft: fatal error: stack pool: free of a stack .* that this pool never gave out");
}

TEST(StackPool, WithCheckFreesAStackFreedTwiceIsFatal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (bool through_cache : {false, true}) {
    SCOPED_TRACE(through_cache ? "through a cache" : "to the pool");
    EXPECT_EXIT(
        {
          stack_config c = config(guard_mode::madvise);
          c.check_frees = true;
          stack_pool pool(c);
          stack_cache cache;
          stack_cache* via = through_cache ? &cache : nullptr;
          stack s = pool.alloc(8 * K, via);
          pool.free(s, via);
          pool.free(s, via);
        },
        ::testing::ExitedWithCode(2), "weft: fatal error: stack pool: stack .* freed twice");
  }
}

TEST(StackPool, OneCacheUsedWithTwoPoolsIsFatal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        stack_pool first(config(guard_mode::madvise));
        stack_pool second(config(guard_mode::madvise));
        stack_cache cache;
        first.free(first.alloc(8 * K, &cache), &cache);
        (void)second.alloc(8 * K, &cache);
      },
      ::testing::ExitedWithCode(2), "weft: fatal error: stack pool: a stack cache used with two pools");
}

// slots_in_use counts stacks handed out through per-P caches too, also when a stack is freed
// through another cache than the one it came from, and after a cache is gone.
TEST(StackPool, InUseCountsStacksAcrossCaches) {
  stack_pool pool(config(guard_mode::madvise));
  std::vector<stack> v;
  {
    stack_cache a;
    {
      stack_cache b;
      for (int i = 0; i < 10; ++i) v.push_back(pool.alloc(8 * K, &a));
      v.push_back(pool.alloc(8 * K));
      EXPECT_EQ(pool.stats().slots_in_use, 11u);
      for (int i = 0; i < 4; ++i) {
        pool.free(v.back(), &b);
        v.pop_back();
      }
      EXPECT_EQ(pool.stats().slots_in_use, 7u);
      pool.drain(b);
    }
    EXPECT_EQ(pool.stats().slots_in_use, 7u);  // b's count stayed with the pool
    pool.drain(a);
  }
  EXPECT_EQ(pool.stats().slots_in_use, 7u);
  for (const stack& s : v) pool.free(s);
  EXPECT_EQ(pool.stats().slots_in_use, 0u);
}

// sysmon's periodic scans (runtime/sched/scan.cpp) release only what sat unused through every
// one of the last few scans, and never for the cap alone: a workload that reuses its stacks
// every second or so keeps them resident rather than faulting them in again each time.
TEST(StackPool, PacedReleaseGivesBackOnlyWhatSatUnusedThroughTheLastScans) {
  stack_config c = config(guard_mode::madvise);
  c.pool_keep_bytes = 1 << 20;  // below what is pooled: the paced release ignores it
  stack_pool pool(c);
  pooled_set set = fill_pool(pool, 32);
  const std::size_t full = 32 * 128 * K / kPage;
  pool.release_idle(3, false);  // just freed (scan 1)
  EXPECT_EQ(set.resident(), full);
  std::vector<stack> used;  // four of them are used between scans 1 and 2
  for (int i = 0; i < 4; ++i) used.push_back(pool.alloc(8 * K));
  for (const stack& s : used) pool.free(s);
  pool.release_idle(3, false);  // scan 2
  pool.release_idle(3, false);  // scan 3: the 28 sat unused through scans 2 and 3 only
  EXPECT_EQ(set.resident(), full);
  EXPECT_EQ(pool.stats().bytes_released, 0u);
  pool.release_idle(3, false);  // scan 4: the 28 sat unused through 2, 3 and 4
  EXPECT_EQ(set.resident(), 4 * 128 * K / kPage);
  EXPECT_EQ(pool.stats().bytes_released, 28 * 128 * K);
  pool.release_idle(3, false);  // scan 5: the four were last used before scan 2
  EXPECT_EQ(set.resident(), 0u);
  EXPECT_EQ(pool.stats().bytes_released, 32 * 128 * K);
}

// ---- threads -------------------------------------------------------------------------------

TEST(StackPool, ThreadsWithTheirOwnCachesShareOnePool) {
  for (guard_mode mode : {guard_mode::madvise, guard_mode::mprotect}) {
    SCOPED_TRACE(weft::detail::stackvm::mode_name(mode));
    stack_pool pool(config(mode));
    constexpr int kThreads = 4;
    const int iterations = kSanitized ? 5000 : 40000;
    std::mutex handoff_mu;
    std::vector<stack> handoff;  // stacks freed by a thread other than the one that got them
    std::atomic<int> errors{0};
    std::mutex live_mu;
    std::set<std::uintptr_t> live;  // slots handed out and not yet freed
    auto worker = [&](int id) {
      stack_cache cache;
      std::mt19937 rng(static_cast<unsigned>(id));
      std::vector<stack> mine;
      auto stamp = [&](const stack& s) { return static_cast<unsigned char>((s.slot_lo >> 12) ^ 0xa5); };
      auto check_and_free = [&](const stack& s) {
        if (*reinterpret_cast<unsigned char*>(s.hi - 1) != stamp(s) || *reinterpret_cast<unsigned char*>(s.lo) != stamp(s))
          errors.fetch_add(1);
        {
          std::lock_guard lk(live_mu);
          live.erase(s.slot_lo);
        }
        pool.free(s, &cache);
      };
      for (int i = 0; i < iterations; ++i) {
        const unsigned r = rng() % 100;
        if (r < 50 || mine.empty()) {
          static constexpr std::size_t sizes[] = {8 * K, 8 * K, 16 * K, 32 * K, 512 * K};
          stack s = pool.alloc(sizes[rng() % 5], &cache);
          {
            std::lock_guard lk(live_mu);
            if (!live.insert(s.slot_lo).second) errors.fetch_add(1);  // handed out twice at once
          }
          *reinterpret_cast<unsigned char*>(s.hi - 1) = stamp(s);
          *reinterpret_cast<unsigned char*>(s.lo) = stamp(s);
          mine.push_back(s);
        } else if (r < 90) {
          const std::size_t k = rng() % mine.size();
          check_and_free(mine[k]);
          mine[k] = mine.back();
          mine.pop_back();
        } else {
          std::lock_guard lk(handoff_mu);
          if (r < 95 || handoff.empty()) {
            handoff.push_back(mine.back());
            mine.pop_back();
          } else {
            check_and_free(handoff.back());
            handoff.pop_back();
          }
        }
        if (mine.size() > 200) {
          for (const stack& s : mine) check_and_free(s);
          mine.clear();
        }
        if (id == 0 && i % 1000 == 0) pool.release_idle();  // the scan runs beside the Ms
      }
      for (const stack& s : mine) check_and_free(s);
      pool.drain(cache);
    };
    std::vector<std::thread> threads;
    for (int id = 0; id < kThreads; ++id) threads.emplace_back(worker, id);
    for (auto& t : threads) t.join();
    for (const stack& s : handoff) {
      live.erase(s.slot_lo);
      pool.free(s);
    }
    EXPECT_EQ(errors.load(), 0);
    const auto st = pool.stats();
    EXPECT_EQ(st.slots_in_use, 0u);
    EXPECT_EQ(st.slots_pooled, st.slots_carved);
    EXPECT_TRUE(live.empty());
  }
}

}  // namespace
