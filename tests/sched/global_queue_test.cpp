// SPDX-License-Identifier: Apache-2.0
// The global run queue (runtime/sched/global_queue.hpp) on its own: first-in first-out across
// the ring's growth, and across the overflow list it falls back to when the ring cannot grow.
#include <deque>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/testing/testing.hpp"
#include "runtime/sched/global_queue.hpp"
#include "tests/sched/g_records.hpp"

namespace {

using weft_test::make_gs;

using weft::detail::g;
using weft::detail::global_queue;

TEST(GlobalQueue, FirstInFirstOutWhileTheRingGrowsAndWraps) {
  auto gs = make_gs(5000);
  global_queue q;
  std::deque<g*> model;
  EXPECT_EQ(q.pop(), nullptr);
  // Pushes and pops interleaved so that the ring's head wraps before each growth.
  std::size_t next = 0;
  for (int round = 0; round < 40 && next < gs.size(); ++round) {
    for (int i = 0; i < 150 && next < gs.size(); ++i) {
      q.push(gs[next].get());
      model.push_back(gs[next++].get());
    }
    for (int i = 0; i < 30; ++i) {
      ASSERT_EQ(q.pop(), model.front());
      model.pop_front();
    }
    ASSERT_EQ(q.size(), model.size());
  }
  while (!model.empty()) {
    ASSERT_EQ(q.pop(), model.front());
    model.pop_front();
  }
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(GlobalQueue, WhenTheRingCannotGrowGsQueueBehindItInOrderAndNoneIsLost) {
  auto gs = make_gs(2000);
  global_queue q;
  std::deque<g*> model;
  auto push = [&](std::size_t i) {
    q.push(gs[i].get());
    model.push_back(gs[i].get());
  };
  // Pops one and checks it against the model; false (with a failure recorded) on a mismatch,
  // which ends the loops below.
  auto pop_expect = [&] {
    g* got = q.pop();
    g* want = model.empty() ? nullptr : model.front();
    EXPECT_EQ(got, want) << "at " << model.size() << " left";
    if (!model.empty()) model.pop_front();
    return got == want && want != nullptr;
  };
  // The first push allocates the ring (256 slots): the 257th needs a bigger one, and that
  // allocation fails — so 257.. go to the overflow list.
  for (std::size_t i = 0; i < 256; ++i) push(i);
  weft::detail::testing::fail_heap_alloc(1);
  push(256);
  weft::detail::testing::fail_heap_alloc(0);
  for (std::size_t i = 257; i < 600; ++i) push(i);  // behind the list, though the ring could grow
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(pop_expect());  // room in the ring now: still behind the list
  for (std::size_t i = 600; i < 700; ++i) push(i);
  ASSERT_EQ(q.size(), model.size());
  while (model.size() > 50) ASSERT_TRUE(pop_expect());  // drains the ring, then the list
  for (std::size_t i = 700; i < 2000; ++i) push(i);  // the list is empty: the ring again, grown
  while (!model.empty()) ASSERT_TRUE(pop_expect());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.pop(), nullptr);
}

}  // namespace
