// SPDX-License-Identifier: Apache-2.0
// The stack-cache model: glibc's reuse rule on paper, its guards on real mappings in both
// styles, and a create/join sequence replayed on real pthreads where every reuse decision,
// reported size and guard must match the model's, step by step.
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tests/kmodel/test_util.hpp"
#include "weft/kmodel.hpp"

namespace km = weft::kmodel;

namespace {

constexpr std::size_t KiB = 1024, MiB = 1024 * 1024;

km::cache_config paper() {
  km::cache_config c;
  c.page_size = 4096;
  c.static_tls_size = 4224;
  c.static_tls_align = 64;
  c.tcb_size = 2368;
  c.default_stack_size = 8 * MiB;
  c.default_guard_size = 4096;
  c.max_cached_bytes = 40 * MiB;
  c.guard = km::guard_style::mprotect;
  c.map_memory = false;
  return c;
}

TEST(StackCacheModel, ExactMatchBeatsAnEarlierFit) {
  km::stack_cache c(paper());
  auto a = c.allocate(64 * KiB);
  auto b = c.allocate(72 * KiB);
  EXPECT_FALSE(a.hit);
  EXPECT_EQ(a.block.size, 64 * KiB + 4096);
  c.release(a.block.id);
  c.release(b.block.id);  // list: b, a — b fits 64K too, but a matches exactly
  auto again = c.allocate(64 * KiB);
  EXPECT_TRUE(again.hit);
  EXPECT_EQ(again.block.id, a.block.id);
}

TEST(StackCacheModel, SmallestFitFirstAmongEqualsAndFourTimesCap) {
  km::stack_cache c(paper());
  auto big = c.allocate(1 * MiB);
  auto mid1 = c.allocate(128 * KiB);
  auto mid2 = c.allocate(128 * KiB);
  c.release(big.block.id);
  c.release(mid1.block.id);
  c.release(mid2.block.id);  // list: mid2, mid1, big
  auto x = c.allocate(100 * KiB);  // no exact match: the smallest that fits, first of equals
  EXPECT_TRUE(x.hit);
  EXPECT_EQ(x.block.id, mid2.block.id);
  EXPECT_EQ(x.reported_stack_size, 128 * KiB);  // the block's size, not the request's
  auto y = c.allocate(16 * KiB);  // mid1 is 132K > 4 x 20K: refused, and big even more so
  EXPECT_FALSE(y.hit);
  auto z = c.allocate(256 * KiB);  // big (1M + 4K) <= 4 x 260K: taken
  EXPECT_TRUE(z.hit);
  EXPECT_EQ(z.block.id, big.block.id);
  km::cache_stats s = c.stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 4u);
  EXPECT_EQ(s.cached_blocks, 1u);  // mid1
  EXPECT_EQ(s.used_blocks, 3u);    // x, y, z
}

TEST(StackCacheModel, TrimsFromTheTailDownToTheCap) {
  km::stack_cache c(paper());
  std::vector<km::allocation> v;
  for (int i = 0; i < 5; ++i) v.push_back(c.allocate());
  for (auto& a : v) c.release(a.block.id);
  // 5 x (8 MiB + 4 KiB) > 40 MiB: the oldest (the tail) goes, which is enough.
  km::cache_stats s = c.stats();
  EXPECT_EQ(s.munmaps, 1u);
  EXPECT_EQ(s.cached_blocks, 4u);
  EXPECT_EQ(s.cached_bytes, 4 * (8 * MiB + 4096));
  std::vector<km::stack_block> left = c.cached();
  ASSERT_EQ(left.size(), 4u);
  EXPECT_EQ(left.front().id, v[4].block.id);
  EXPECT_EQ(left.back().id, v[1].block.id);
}

TEST(StackCacheModel, GuardGrowsAndShrinksOnReuse) {
  km::stack_cache c(paper());
  auto a = c.allocate(60 * KiB, 8 * KiB);  // 60K + 8K = 68K
  EXPECT_EQ(a.reported_stack_size, 60 * KiB);
  c.release(a.block.id);
  auto b = c.allocate(64 * KiB, 4 * KiB);  // 68K exactly: reused; the 8K guard is 4K too big
  EXPECT_TRUE(b.hit);
  EXPECT_EQ(b.guard_changed, km::guard_change::shrunk);
  EXPECT_EQ(b.block.guard, 4 * KiB);
  EXPECT_EQ(b.reported_stack_size, 64 * KiB);
  c.release(b.block.id);
  auto d = c.allocate(60 * KiB, 8 * KiB);
  EXPECT_EQ(d.guard_changed, km::guard_change::grown);
  EXPECT_EQ(d.reported_stack_size, 60 * KiB);
  c.release(d.block.id);
  // A guard larger than needed stays when the block's slack covers the difference.
  auto e = c.allocate(128 * KiB, 8 * KiB);
  c.release(e.block.id);
  auto f = c.allocate(100 * KiB, 4 * KiB);
  EXPECT_TRUE(f.hit);
  EXPECT_EQ(f.guard_changed, km::guard_change::none);
  EXPECT_EQ(f.block.guard, 8 * KiB);
  EXPECT_EQ(f.reported_stack_size, 128 * KiB);
}

TEST(StackCacheModel, RejectsWhatGlibcRejects) {
  km::stack_cache c(paper());
  EXPECT_THROW(c.allocate(10000), std::invalid_argument);
  km::cache_config big_tls = paper();
  big_tls.static_tls_size = 20000;
  km::stack_cache d(big_tls);
  EXPECT_THROW(d.allocate(16 * KiB), std::invalid_argument);  // 20K < round_up(4K + 20000 + 2048)
  EXPECT_NO_THROW(d.allocate(32 * KiB));
  EXPECT_THROW(c.release(12345), std::logic_error);
}

TEST(StackCacheModel, LayoutAndDontneedRange) {
  km::stack_cache c(paper());
  auto a = c.allocate(256 * KiB);
  const km::stack_layout l = c.layout(a.block);
  EXPECT_EQ(l.descriptor % 64, 0u);
  EXPECT_LE(l.descriptor + 2368, a.block.end());
  EXPECT_EQ(l.stack_top, l.descriptor + 2368 - 4224);
  EXPECT_EQ(l.stack_low, a.block.mem + 4096);
  auto r = c.dontneed_range(a.block, a.block.mem + 100000);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->start, a.block.mem);
  EXPECT_EQ(r->length, 98304u - 16384u);
  EXPECT_FALSE(c.dontneed_range(a.block, a.block.mem + 20000).has_value());  // within PTHREAD_STACK_MIN
}

// ---- real mappings --------------------------------------------------------------------------

km::cache_config real(km::guard_style g) {
  km::cache_config c = km::cache_config::for_this_process();
  c.guard = g;
  c.map_memory = true;
  return c;
}

const km::mapping* vma_at(const std::vector<km::mapping>& maps, std::uintptr_t addr) {
  for (const km::mapping& m : maps)
    if (m.start <= addr && addr < m.end) return &m;
  return nullptr;
}

// In a child: touching `addr` must kill it with SIGSEGV (or not).
bool faults(std::uintptr_t addr) {
  kmtest::run_result r = kmtest::in_child([addr] {
    struct sigaction dfl {};  // die of the signal, even where a sanitizer would catch it
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGSEGV, &dfl, nullptr);
    *reinterpret_cast<volatile char*>(addr) = 1;
    return 0;
  });
  return r.status == 128 + SIGSEGV;
}

TEST(StackCacheReal, MprotectGuardsSplitTheMapping) {
  WEFT_SKIP_UNDER_TSAN();
  km::stack_cache c(real(km::guard_style::mprotect));
  const std::size_t before = km::count_vmas();
  std::vector<km::allocation> v;
  for (int i = 0; i < 8; ++i) v.push_back(c.allocate(64 * KiB));
  const std::size_t after = km::count_vmas();
  EXPECT_GE(after - before, 14u);  // two per block (a neighbour may absorb one end)
  EXPECT_LE(after - before, 16u);
  const auto maps = km::read_maps();
  for (const auto& a : v) {
    const km::mapping* g = vma_at(maps, a.block.mem);
    const km::mapping* s = vma_at(maps, a.block.mem + a.block.guard);
    ASSERT_TRUE(g && s);
    EXPECT_STREQ(g->perms, "---p");
    EXPECT_EQ(g->end, a.block.mem + a.block.guard);
    EXPECT_EQ(s->perms[1], 'w');
  }
  EXPECT_TRUE(faults(v[3].block.mem + 100));
  EXPECT_FALSE(faults(v[3].block.mem + v[3].block.guard + 100));
}

TEST(StackCacheReal, GuardInstallKeepsOneVmaPerBlock) {
  WEFT_SKIP_UNDER_TSAN();
  if (!km::process_facts::probe().kernel_guard_install) GTEST_SKIP() << "this kernel has no MADV_GUARD_INSTALL (6.13+)";
  km::stack_cache c(real(km::guard_style::madvise));
  const std::size_t before = km::count_vmas();
  std::vector<km::allocation> v;
  for (int i = 0; i < 8; ++i) v.push_back(c.allocate(64 * KiB));
  EXPECT_LE(km::count_vmas() - before, 8u);  // never split; neighbours may even merge
  EXPECT_EQ(c.stats().guard_installs, 8u);
  EXPECT_FALSE(c.stats().fell_back_to_mprotect);
  const auto maps = km::read_maps();
  for (const auto& a : v) {
    const km::mapping* m = vma_at(maps, a.block.mem);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->perms[1], 'w');  // the guard is in the page tables, not the VMA
    EXPECT_GE(m->end, a.block.end());
  }
  EXPECT_TRUE(faults(v[5].block.mem + 100));
  EXPECT_FALSE(faults(v[5].block.mem + v[5].block.guard + 100));
  // Shrinking on reuse removes the guard advice from the excess.
  auto g = c.allocate(60 * KiB, 8 * KiB);
  c.release(g.block.id);
  auto h = c.allocate(64 * KiB, 4 * KiB);
  ASSERT_TRUE(h.hit);
  EXPECT_EQ(h.guard_changed, km::guard_change::shrunk);
  EXPECT_EQ(c.stats().guard_removes, 1u);
  EXPECT_TRUE(faults(h.block.mem + 100));
  EXPECT_FALSE(faults(h.block.mem + 4096 + 100));
}

TEST(StackCacheReal, WithoutGuardInstallFallsBackToMprotectForGood) {
  WEFT_SKIP_UNDER_TSAN();
  km::cache_config cfg = real(km::guard_style::madvise);
  cfg.kernel_guard_install = false;  // behave as on Linux < 6.13
  km::stack_cache c(cfg);
  auto a = c.allocate(64 * KiB);
  EXPECT_TRUE(c.stats().fell_back_to_mprotect);
  EXPECT_EQ(c.current_guard_style(), km::guard_style::mprotect);
  EXPECT_EQ(a.block.installed_by, km::guard_style::mprotect);
  const auto maps = km::read_maps();
  const km::mapping* g = vma_at(maps, a.block.mem);
  ASSERT_TRUE(g);
  EXPECT_STREQ(g->perms, "---p");
  EXPECT_EQ(g->size(), 4096u);
  EXPECT_TRUE(faults(a.block.mem));
}

std::size_t resident_pages(std::uintptr_t start, std::uintptr_t end) {
  const std::size_t page = 4096;
  std::vector<unsigned char> vec((end - start) / page);
  if (::mincore(reinterpret_cast<void*>(start), end - start, vec.data()) != 0) return ~std::size_t{0};
  std::size_t n = 0;
  for (unsigned char b : vec) n += b & 1;
  return n;
}

TEST(StackCacheReal, ReleaseGivesBackAllButTheTopOfTheStack) {
  WEFT_SKIP_UNDER_TSAN();
  km::stack_cache c(real(km::guard_style::mprotect));
  auto a = c.allocate(256 * KiB);
  const km::stack_layout l = c.layout(a.block);
  std::memset(reinterpret_cast<void*>(l.stack_low), 1, l.stack_top - l.stack_low);
  const std::uintptr_t sp = l.stack_top - 1000;
  auto r = c.dontneed_range(a.block, sp);
  ASSERT_TRUE(r.has_value());
  const std::uintptr_t cut = r->start + r->length;
  EXPECT_EQ(resident_pages(l.stack_low, cut), (cut - l.stack_low) / 4096);  // touched
  c.release(a.block.id, sp);
  EXPECT_EQ(resident_pages(l.stack_low, cut), 0u);
  EXPECT_EQ(resident_pages(cut, cut + 16384), 4u);  // PTHREAD_STACK_MIN under sp stays
  EXPECT_EQ(c.stats().dontneed_bytes, r->length);
}

// ---- against glibc --------------------------------------------------------------------------

std::vector<km::thread_op> mixed_sequence() {
  using op = km::thread_op;
  auto create = [](unsigned slot, std::size_t size, std::optional<std::size_t> guard = std::nullopt) {
    return op{op::create, slot, size, guard};
  };
  auto join = [](unsigned slot) { return op{op::join, slot, 0, std::nullopt}; };
  std::vector<op> s = {
      create(0, 64 * KiB), create(1, 128 * KiB), create(2, 100000), join(0), join(1), join(2),
      create(0, 64 * KiB),          // exact match
      create(1, 96 * KiB),          // smallest fit: the 100000-byte block, not the 128K one
      create(2, 16 * KiB),          // the 128K block is more than 4x: a new mapping
      join(0), create(0, 60 * KiB, 8 * KiB),  // same block size, bigger guard: grown in place
      join(0), create(0, 64 * KiB, 4 * KiB),  // and shrunk back
      join(0), join(1), join(2),
  };
  // Six 8 MiB stacks at once overflow the 40 MiB cache when they come back: the tail (the
  // small blocks, then the oldest big ones) is unmapped.  Then six again: four hits.  The size
  // is given, not glibc's default: that follows `ulimit -s` (2 MiB when unlimited, 1 MiB under
  // `ulimit -s 1024`), and with it what the sequence exercises.
  for (unsigned i = 3; i < 9; ++i) s.push_back(create(i, 8 * MiB));
  for (unsigned i = 3; i < 9; ++i) s.push_back(join(i));
  for (unsigned i = 3; i < 9; ++i) s.push_back(create(i, 8 * MiB));
  s.push_back(create(9, 2 * MiB));  // the 8 MiB blocks are all busy: new
  for (unsigned i = 3; i < 10; ++i) s.push_back(join(i));
  s.push_back(create(3, 3 * MiB));  // an 8 MiB block is within 4x of 3 MiB: reused
  s.push_back(create(4, 2 * MiB));  // exact: the 2 MiB one
  s.push_back(join(3));
  s.push_back(join(4));
  return s;
}

TEST(StackCacheValidation, ReuseMatchesGlibcStepForStep) {
  WEFT_SKIP_UNDER_TSAN();
  const std::vector<km::thread_op> ops = mixed_sequence();
  km::cache_config cfg = km::cache_config::for_this_process();
  cfg.map_memory = false;
  ASSERT_EQ(cfg.guard, km::guard_style::mprotect) << "this glibc guards with MADV_GUARD_INSTALL; the guard column "
                                                     "below assumes VMAs";
  km::stack_cache model(cfg);
  const std::vector<km::model_step> predicted = km::replay_on_model(model, ops);
  const std::vector<km::pthread_observation> real = km::replay_on_pthreads(ops);
  const std::vector<km::replay_verdict> verdicts = km::compare_replay(predicted, real);
  ASSERT_EQ(verdicts.size(), predicted.size());
  for (std::size_t i = 0; i < verdicts.size(); ++i)
    EXPECT_TRUE(verdicts[i].match) << "create #" << i << " (slot " << predicted[i].slot << ", model "
                                   << (predicted[i].hit ? "hit" : "miss") << "): " << verdicts[i].why;
  // The sequence exercised what it claims to.
  const km::cache_stats s = model.stats();
  EXPECT_GE(s.hits, 9u);
  EXPECT_GE(s.misses, 8u);
  EXPECT_GE(s.munmaps, 4u);
  int grown = 0, shrunk = 0;
  for (std::size_t i = 0; i < real.size(); ++i) {
    if (real[i].guard_vma == 8 * KiB) ++grown;
    if (i > 0 && real[i].slot == 0 && real[i - 1].guard_vma == 8 * KiB && real[i].guard_vma == 4 * KiB) ++shrunk;
  }
  EXPECT_EQ(grown, 1);
  EXPECT_EQ(shrunk, 1);
  std::size_t agree = 0;
  for (const auto& v : verdicts) agree += v.match;
  std::printf("[ cache replay ] %zu creates: model %llu hits, %llu misses, %llu unmapped by the cap; %zu of %zu agree "
              "with glibc %s\n",
              predicted.size(), static_cast<unsigned long long>(s.hits), static_cast<unsigned long long>(s.misses),
              static_cast<unsigned long long>(s.munmaps), agree, verdicts.size(),
              km::process_facts::probe().glibc_version().c_str());
}

TEST(StackCacheValidation, ComparisonCatchesADisagreement) {
  std::vector<km::model_step> m(2);
  m[0] = {0, false, 1, 65536, 4096, {}};
  m[1] = {1, true, 1, 65536, 4096, {}};
  std::vector<km::pthread_observation> r = {{0, 0x700000100000, 65536, 4096}, {1, 0x700000200000, 65536, 4096}};
  auto v = km::compare_replay(m, r);
  EXPECT_TRUE(v[0].match);
  EXPECT_FALSE(v[1].match);  // the model reused block 1; glibc's thread is elsewhere
  m[1] = {1, false, 2, 65536, 4096, {1}};
  r[1].stack_end = 0x700000100000;  // glibc reused block 1; the model mapped a new one
  r[1].reused = true;
  EXPECT_FALSE(km::compare_replay(m, r)[1].match);
  r[1].stack_end = 0x700000300000;
  r[1].reused = false;
  r[1].stack_size = 61440;
  EXPECT_FALSE(km::compare_replay(m, r)[1].match);
}

// A forked child's glibc cache starts with the stacks of its parent's other live threads
// (glibc's fork reclaims them), so a replay run from a process with live threads reuses blocks
// a fresh model never had.  The validator must see that, not call it a new mapping.
TEST(StackCacheValidation, InheritedStacksAreNotNewMappings) {
  WEFT_SKIP_UNDER_TSAN();
  kmtest::run_result r = kmtest::in_child([] {
    static std::atomic<int> gate{0};
    auto park = [](void*) -> void* {
      while (gate.load() == 0) ::syscall(SYS_futex, &gate, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
      return nullptr;
    };
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * KiB);
    pthread_t live[2];
    for (pthread_t& t : live)
      if (pthread_create(&t, &attr, park, nullptr) != 0) return 10;
    using op = km::thread_op;
    const std::vector<op> ops = {op{op::create, 0, 256 * KiB, {}}, op{op::create, 1, 256 * KiB, {}},
                                 op{op::join, 0, 0, {}}, op{op::join, 1, 0, {}}};
    km::cache_config cfg = km::cache_config::for_this_process();
    cfg.map_memory = false;
    km::stack_cache model(cfg);
    const auto predicted = km::replay_on_model(model, ops);
    const auto real = km::replay_on_pthreads(ops);
    const auto verdicts = km::compare_replay(predicted, real);
    int mismatches = 0, reused = 0;
    for (const auto& v : verdicts) mismatches += !v.match;
    for (const auto& o : real) reused += o.reused;
    std::printf("mismatches=%d\nreused=%d\nwhy=%s\n", mismatches, reused, verdicts.empty() ? "" : verdicts[0].why.c_str());
    gate.store(1);
    ::syscall(SYS_futex, &gate, FUTEX_WAKE_PRIVATE, 2, nullptr, nullptr, 0);
    for (pthread_t t : live) pthread_join(t, nullptr);
    return 0;
  });
  ASSERT_EQ(r.status, 0) << r.out;
  auto kv = kmtest::parse_kv(r.out);
  EXPECT_EQ(kmtest::num(kv, "reused"), 2u) << "glibc should have reused the two inherited stacks";
  EXPECT_EQ(kmtest::num(kv, "mismatches"), 2u) << "the model (empty cache) said new mapping twice: " << r.out;
  EXPECT_NE(kv["why"].find("already mapped"), std::string::npos) << r.out;
}

struct deep_info {
  std::uintptr_t first = 0, deep_lo = 0;
};

__attribute__((noinline)) void touch_512k(deep_info* i) {
  volatile char deep[512 * 1024];
  for (std::size_t k = 0; k < sizeof deep; k += 4096) deep[k] = 1;
  i->deep_lo = reinterpret_cast<std::uintptr_t>(&deep[0]);
}

TEST(StackCacheValidation, GlibcGivesBackAJoinedThreadsDeepPages) {
  WEFT_SKIP_UNDER_TSAN();
  // In a child (its thread's stack must not stay in this process's cache): a thread touches
  // 512 KiB of its 1 MiB stack; after the join, everything deeper than PTHREAD_STACK_MIN below
  // its first frame is no longer resident, as advise_stack_range promises.
  kmtest::run_result r = kmtest::in_child([] {
    deep_info in;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 * MiB);
    pthread_t t;
    auto body = [](void* p) -> void* {
      auto* i = static_cast<deep_info*>(p);
      volatile char first = 0;
      i->first = reinterpret_cast<std::uintptr_t>(&first);
      touch_512k(i);
      return nullptr;
    };
    if (pthread_create(&t, &attr, body, &in) != 0) return 10;
    pthread_join(t, nullptr);
    const std::uintptr_t cut = (in.first & ~std::uintptr_t{4095}) - 16384;
    const std::uintptr_t deep_lo = (in.deep_lo + 4095) & ~std::uintptr_t{4095};
    std::printf("resident_below_cut=%zu\n", resident_pages(deep_lo, cut));
    std::printf("resident_top=%zu\n", resident_pages(cut, (in.first & ~std::uintptr_t{4095}) + 4096));
    return 0;
  });
  ASSERT_EQ(r.status, 0) << r.out;
  auto kv = kmtest::parse_kv(r.out);
  EXPECT_EQ(kmtest::num(kv, "resident_below_cut"), 0u);
  EXPECT_GT(kmtest::num(kv, "resident_top"), 0u);
}

}  // namespace
