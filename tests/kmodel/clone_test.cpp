// SPDX-License-Identifier: Apache-2.0
// Kernel tasks from raw clone and clone3 on model stacks: they run, are joined through the
// CLONE_CHILD_CLEARTID futex, show up in /proc with their stacks, and their stacks go back to
// the model cache (with the memory below the last stack pointer given back).
#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "weft/errors.hpp"
#include "weft/kmodel.hpp"

namespace km = weft::kmodel;

namespace {

constexpr std::size_t KiB = 1024;

// Tasks may not call libc's syscall() (it writes errno through the creator's TLS): raw calls.
inline long raw_syscall4(long n, long a, long b, long c, long d) {
  long r;
  register long r10 asm("r10") = d;
  asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return r;
}

struct shared {
  std::atomic<int> ran{0};
  std::atomic<std::uint64_t> sigmask{0};
  std::atomic<int> tid{0};
  std::atomic<std::uintptr_t> sp{0};
  std::atomic<int> waiting{0};
  std::atomic<int> gate{0};
  std::atomic<int>* counter = nullptr;
};

WEFT_KMODEL_TASK_FN void record(void* p) noexcept {
  auto* s = static_cast<shared*>(p);
  volatile char here = 0;
  s->sp.store(reinterpret_cast<std::uintptr_t>(&here));
  s->tid.store(static_cast<int>(raw_syscall4(SYS_gettid, 0, 0, 0, 0)));
  if (s->counter) s->counter->fetch_add(1);
  s->ran.store(1);
}

// The task's own signal mask, as the kernel holds it (64 bits on x86_64).
WEFT_KMODEL_TASK_FN void record_sigmask(void* p) noexcept {
  auto* s = static_cast<shared*>(p);
  std::uint64_t mask = 0;
  if (raw_syscall4(SYS_rt_sigprocmask, SIG_BLOCK, 0, reinterpret_cast<long>(&mask), 8) == 0) s->sigmask.store(mask);
  s->ran.store(1);
}

WEFT_KMODEL_TASK_FN void block_until_gate(void* p) noexcept {
  auto* s = static_cast<shared*>(p);
  record(p);
  s->waiting.store(1);
  while (s->gate.load() == 0)
    raw_syscall4(SYS_futex, reinterpret_cast<long>(&s->gate), FUTEX_WAIT_PRIVATE, 0, 0);
}

__attribute__((noinline)) WEFT_KMODEL_TASK_FN void touch_192k() noexcept {
  volatile char deep[192 * 1024];
  for (std::size_t k = 0; k < sizeof deep; k += 4096) deep[k] = 1;
}

WEFT_KMODEL_TASK_FN void touch_deep(void* p) noexcept {
  auto* s = static_cast<shared*>(p);
  volatile char first = 0;  // this frame is above touch_192k's
  s->sp.store(reinterpret_cast<std::uintptr_t>(&first));
  touch_192k();
  s->ran.store(1);
}

km::cache_config real_cache() {
  km::cache_config c = km::cache_config::for_this_process();
  c.map_memory = true;
  c.guard = km::guard_style::mprotect;
  return c;
}

class Tasks : public ::testing::TestWithParam<km::clone_call> {
 protected:
  void SetUp() override {
#if defined(WEFT_SANITIZE_THREAD)
    GTEST_SKIP() << "ThreadSanitizer keeps per-thread state in TLS, which a task shares with its creator";
#endif
  }
};

TEST_P(Tasks, RunJoinAndReturnTheirStack) {
  km::stack_cache cache(real_cache());
  shared s;
  km::task t = km::start_task(cache, GetParam(), record, &s, 64 * KiB);
  EXPECT_EQ(t.call(), GetParam());
  EXPECT_TRUE(t.joinable());
  EXPECT_GT(t.tid(), 0);
  const km::allocation a = t.stack();
  EXPECT_FALSE(a.hit);
  t.join();
  EXPECT_FALSE(t.joinable());
  EXPECT_EQ(s.ran.load(), 1);
  EXPECT_EQ(s.tid.load(), t.tid());
  EXPECT_NE(s.tid.load(), static_cast<int>(::getpid()));
  const km::stack_layout l = cache.layout(a.block);
  EXPECT_GT(s.sp.load(), l.stack_low);  // it ran on the model stack, below the descriptor
  EXPECT_LT(s.sp.load(), l.stack_top);
  km::cache_stats st = cache.stats();
  EXPECT_EQ(st.used_blocks, 0u);
  EXPECT_EQ(st.cached_blocks, 1u);
  // The next task of that size gets the same block back.
  shared s2;
  km::task t2 = km::start_task(cache, GetParam(), record, &s2, 64 * KiB);
  EXPECT_TRUE(t2.stack().hit);
  EXPECT_EQ(t2.stack().block.id, a.block.id);
  EXPECT_EQ(t2.stack().block.mem, a.block.mem);
  t2.join();
  EXPECT_EQ(s2.ran.load(), 1);
  EXPECT_EQ(cache.stats().hits, 1u);
}

// clone.hpp promises a task runs with every signal blocked.  glibc's pthread_sigmask leaves
// its SIGCANCEL (32) and SIGSETXID (33) unblocked, so blocking through it is not enough.
TEST_P(Tasks, RunWithEverySignalBlocked) {
  km::stack_cache cache(real_cache());
  shared s;
  km::task t = km::start_task(cache, GetParam(), record_sigmask, &s, 64 * KiB);
  t.join();
  ASSERT_EQ(s.ran.load(), 1);
  // Every bit but SIGKILL (9) and SIGSTOP (19), which the kernel never lets anyone block.
  const std::uint64_t want = ~((std::uint64_t{1} << (SIGKILL - 1)) | (std::uint64_t{1} << (SIGSTOP - 1)));
  EXPECT_EQ(s.sigmask.load(), want) << std::hex << "missing: " << (want & ~s.sigmask.load());
  // And the creator's own mask is back as it was.
  sigset_t now;
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, nullptr, &now), 0);
  EXPECT_EQ(sigismember(&now, SIGUSR1), 0);
}

TEST_P(Tasks, ManyAtOnce) {
  km::stack_cache cache(real_cache());
  std::atomic<int> counter{0};
  std::vector<shared> s(100);
  std::vector<km::task> tasks;
  for (auto& x : s) {
    x.counter = &counter;
    tasks.push_back(km::start_task(cache, GetParam(), record, &x, 64 * KiB));
  }
  EXPECT_EQ(cache.stats().used_blocks, 100u);
  for (auto& t : tasks) t.join();
  EXPECT_EQ(counter.load(), 100);
  EXPECT_EQ(cache.stats().cached_blocks, 100u);  // 100 x 68 KiB is well under the cap
  EXPECT_EQ(cache.stats().used_blocks, 0u);
}

TEST_P(Tasks, JoinGivesBackTheDeepPages) {
  km::stack_cache cache(real_cache());
  shared s;
  km::task t = km::start_task(cache, GetParam(), touch_deep, &s, 256 * KiB);
  const km::allocation a = t.stack();
  t.join();
  ASSERT_EQ(s.ran.load(), 1);
  const km::stack_layout l = cache.layout(a.block);
  const std::uintptr_t cut = (s.sp.load() & ~std::uintptr_t{4095}) - 16384;
  std::vector<unsigned char> vec((cut - l.stack_low) / 4096);
  ASSERT_EQ(::mincore(reinterpret_cast<void*>(l.stack_low), cut - l.stack_low, vec.data()), 0);
  std::size_t resident = 0;
  for (unsigned char b : vec) resident += b & 1;
  EXPECT_GE(vec.size(), 40u);  // touch_192k reached well below the cut
  EXPECT_EQ(resident, 0u) << "pages the task touched deep in its stack are still resident after the join";
  EXPECT_GT(cache.stats().dontneed_bytes, 128 * KiB);
}

TEST_P(Tasks, ShowUpInProcWithTheirStacks) {
  km::stack_cache cache(real_cache());
  std::vector<shared> s(3);
  std::vector<km::task> tasks;
  for (auto& x : s) tasks.push_back(km::start_task(cache, GetParam(), block_until_gate, &x, 128 * KiB));
  // Wait (bounded) until /proc shows each task blocked with its stack pointer in its block.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::size_t found = 0;
  km::process_memory pm;
  while (std::chrono::steady_clock::now() < deadline) {
    pm = km::read_process_memory();
    found = 0;
    for (const km::task& t : tasks)
      for (const km::thread_stack& ts : pm.thread_stacks)
        if (ts.tid == t.tid() && ts.vma && ts.vma->start >= t.stack().block.mem && ts.vma->end <= t.stack().block.end() &&
            ts.guard_below == t.stack().block.guard)
          ++found;
    if (found == tasks.size()) break;
  }
  EXPECT_EQ(found, tasks.size());
  EXPECT_GE(pm.threads, 4u);
  ASSERT_TRUE(pm.main_stack.has_value());
  for (auto& x : s) {
    x.gate.store(1);
    raw_syscall4(SYS_futex, reinterpret_cast<long>(&x.gate), FUTEX_WAKE_PRIVATE, 1, 0);
  }
  for (auto& t : tasks) t.join();
  for (auto& x : s) EXPECT_EQ(x.ran.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(Calls, Tasks, ::testing::Values(km::clone_call::clone, km::clone_call::clone3),
                         [](const auto& info) { return std::string(km::to_string(info.param)); });

TEST(TaskErrors, AreClear) {
  km::cache_config dry = real_cache();
  dry.map_memory = false;
  km::stack_cache paper(dry);
  shared s;
  EXPECT_THROW(km::start_task(paper, km::clone_call::clone3, record, &s), std::logic_error);
  km::stack_cache cache(real_cache());
  EXPECT_THROW(km::start_task(cache, km::clone_call::clone3, nullptr, &s), std::invalid_argument);
  // 32 TiB of stack: the kernel refuses the memory; the error names the call.
  try {
    km::task t = km::start_task(cache, km::clone_call::clone3, record, &s, std::size_t{1} << 45);
    t.join();
    ADD_FAILURE() << "a 32 TiB stack was granted";
  } catch (const weft::resource_error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(what.find("mprotect") != std::string::npos || what.find("mmap") != std::string::npos) << what;
    EXPECT_EQ(cache.stats().used_blocks, 0u);
  }
}

}  // namespace
