// SPDX-License-Identifier: Apache-2.0
// Dead G records kept for reuse (runtime/sched/gfree.hpp) on their own: a P reuses its most
// recently freed record first; a full P moves its older half to the global store and an empty
// one takes a batch back, last put first; nothing is lost when the global array cannot grow.
#include <memory>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/testing/testing.hpp"
#include "runtime/sched/gfree.hpp"
#include "tests/sched/g_records.hpp"

namespace {

using weft_test::make_gs;

using weft::detail::g;
using weft::detail::gfree_global;
using weft::detail::gfree_local;

TEST(GFree, APReusesItsLastFreedRecordFirst) {
  auto gs = make_gs(3);
  gfree_global global;
  gfree_local local;
  EXPECT_EQ(local.get(global), nullptr);
  for (auto& gp : gs) local.put(global, gp.get());
  EXPECT_EQ(local.get(global), gs[2].get());
  EXPECT_EQ(local.get(global), gs[1].get());
  EXPECT_EQ(local.get(global), gs[0].get());
  EXPECT_EQ(local.get(global), nullptr);
}

TEST(GFree, AFullPMovesItsOlderHalfAndAnEmptyOneTakesABatchBack) {
  auto gs = make_gs(gfree_local::kMax + 1);
  gfree_global global;
  gfree_local a, b;
  for (auto& gp : gs) a.put(global, gp.get());
  // The 65th put moved the oldest kBatch to the global store.
  EXPECT_EQ(a.size(), gfree_local::kMax - gfree_local::kBatch + 1);
  EXPECT_EQ(a.get(global), gs.back().get());
  // Another P, empty, takes one batch back: the last of them first.
  EXPECT_EQ(b.get(global), gs[gfree_local::kBatch - 1].get());
  EXPECT_EQ(b.size(), gfree_local::kBatch - 1);
  // Every record comes out exactly once.
  std::set<g*> seen{gs.back().get(), gs[gfree_local::kBatch - 1].get()};
  while (g* gp = a.get(global)) EXPECT_TRUE(seen.insert(gp).second);
  while (g* gp = b.get(global)) EXPECT_TRUE(seen.insert(gp).second);
  EXPECT_EQ(seen.size(), gs.size());
}

TEST(GFree, NothingIsLostWhenTheGlobalArrayCannotGrow) {
  auto gs = make_gs(300);
  gfree_global global;
  std::vector<g*> first;
  for (std::size_t i = 0; i < 256; ++i) first.push_back(gs[i].get());
  global.put(first.data(), static_cast<std::uint32_t>(first.size()));  // fills the first array
  weft::detail::testing::fail_heap_alloc(1);  // its growth fails: the rest overflow
  std::vector<g*> rest;
  for (std::size_t i = 256; i < gs.size(); ++i) rest.push_back(gs[i].get());
  global.put(rest.data(), static_cast<std::uint32_t>(rest.size()));
  weft::detail::testing::fail_heap_alloc(0);
  std::set<g*> seen;
  g* batch[64];
  while (std::uint32_t n = global.take(batch, 64))
    for (std::uint32_t i = 0; i < n; ++i) EXPECT_TRUE(seen.insert(batch[i]).second);
  EXPECT_EQ(seen.size(), gs.size());
}

}  // namespace
