// SPDX-License-Identifier: Apache-2.0
// Channels: one test per rule of weft/chan.hpp (Go's rules), at procs = 1, 2, 4.
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/sync/sync_test_util.hpp"

namespace {

using namespace synctest;
using Chan = Procs;

TEST_P(Chan, UnbufferedSendWaitsForAReceiver) {
  weft::run(
      [] {
        weft::chan<int> c;
        EXPECT_EQ(c.capacity(), 0u);
        EXPECT_FALSE(c.try_send(1));  // nobody receiving
        std::atomic<bool> sent{false};
        auto t = weft::spawn([&] {
          c.send(7);
          sent = true;
        });
        wait_until([&] { return blocked_senders(c) == 1; });
        EXPECT_FALSE(sent.load());  // blocked: only a receive can release it
        EXPECT_EQ(c.size(), 0u);    // an unbuffered channel never holds a value
        EXPECT_EQ(c.recv(), 7);
        t.join();
        EXPECT_TRUE(sent.load());
      },
      opts());
}

TEST_P(Chan, UnbufferedRecvWaitsForASender) {
  weft::run(
      [] {
        weft::chan<std::string> c;
        EXPECT_EQ(c.try_recv(), std::nullopt);
        auto t = weft::spawn([&] { return c.recv(); });
        wait_until([&] { return blocked_receivers(c) == 1; });
        EXPECT_TRUE(c.try_send("hand to hand"));  // a receiver waits: try_send succeeds
        EXPECT_EQ(t.join(), "hand to hand");
      },
      opts());
}

TEST_P(Chan, BufferedIsFifoAndBlocksOnlyWhenFull) {
  weft::run(
      [] {
        weft::chan<int> c(4);
        EXPECT_EQ(c.capacity(), 4u);
        for (int i = 0; i < 4; ++i) c.send(i);  // never blocks
        EXPECT_EQ(c.size(), 4u);
        EXPECT_FALSE(c.try_send(99));
        auto t = weft::spawn([&] { c.send(4); });  // blocks: full
        wait_until([&] { return blocked_senders(c) == 1; });
        for (int i = 0; i < 5; ++i) EXPECT_EQ(c.recv(), i);  // the blocked value comes last
        t.join();
        EXPECT_EQ(c.size(), 0u);
        EXPECT_EQ(c.try_recv(), std::nullopt);
      },
      opts());
}

TEST_P(Chan, RecvOnClosedDrainsThenReturnsNullopt) {
  weft::run(
      [] {
        weft::chan<int> c(3);
        c.send(1);
        c.send(2);
        c.close();
        EXPECT_TRUE(c.closed());
        EXPECT_EQ(c.recv(), 1);
        EXPECT_EQ(c.try_recv(), 2);
        EXPECT_EQ(c.recv(), std::nullopt);
        EXPECT_EQ(c.recv(), std::nullopt);  // and stays so
        EXPECT_EQ(c.try_recv(), std::nullopt);
      },
      opts());
}

TEST_P(Chan, SendOnClosedThrows) {
  weft::run(
      [] {
        weft::chan<int> c(1), u;
        c.close();
        u.close();
        EXPECT_THROW(c.send(1), weft::closed_channel);
        EXPECT_THROW(c.try_send(1), weft::closed_channel);
        EXPECT_THROW(u.send(1), weft::closed_channel);
        EXPECT_EQ(c.size(), 0u);
      },
      opts());
}

TEST_P(Chan, SecondCloseThrows) {
  weft::run(
      [] {
        weft::chan<int> c;
        c.close();
        EXPECT_THROW(c.close(), weft::closed_channel);
        try {
          c.close();
        } catch (const weft::error& e) {
          EXPECT_NE(std::string(e.what()).find("closed channel"), std::string::npos) << e.what();
        }
      },
      opts());
}

TEST_P(Chan, CloseWakesEveryBlockedReceiverWithNullopt) {
  weft::run(
      [] {
        weft::chan<int> c;
        constexpr int kN = 8;
        std::vector<weft::task<std::optional<int>>> ts;
        for (int i = 0; i < kN; ++i) ts.push_back(weft::spawn([&] { return c.recv(); }));
        std::optional<int> from_thread = 5;
        std::thread th([&] { from_thread = c.recv(); });
        wait_until([&] { return blocked_receivers(c) == kN + 1; });
        c.close();
        for (auto& t : ts) EXPECT_EQ(t.join(), std::nullopt);
        th.join();
        EXPECT_EQ(from_thread, std::nullopt);
      },
      opts());
}

TEST_P(Chan, CloseWakesEveryBlockedSenderWhichThrows) {
  weft::run(
      [] {
        weft::chan<int> c(1);
        c.send(0);  // full
        constexpr int kN = 8;
        std::atomic<int> threw{0};
        std::vector<weft::task<void>> ts;
        for (int i = 0; i < kN; ++i)
          ts.push_back(weft::spawn([&, i] {
            try {
              c.send(i + 1);
            } catch (const weft::closed_channel&) {
              ++threw;
            }
          }));
        std::thread th([&] {
          try {
            c.send(100);
          } catch (const weft::closed_channel&) {
            ++threw;
          }
        });
        wait_until([&] { return blocked_senders(c) == kN + 1; });
        c.close();
        for (auto& t : ts) t.join();
        th.join();
        EXPECT_EQ(threw.load(), kN + 1);
        EXPECT_EQ(c.recv(), 0);  // what was buffered before the close is still delivered
        EXPECT_EQ(c.recv(), std::nullopt);
      },
      opts());
}

TEST_P(Chan, MoveOnlyValuesBufferedAndUnbuffered) {
  weft::run(
      [] {
        for (std::size_t cap : {0u, 1u, 8u}) {
          weft::chan<std::unique_ptr<int>> c(cap);
          auto t = weft::spawn([&] {
            for (int i = 0; i < 100; ++i) c.send(std::make_unique<int>(i));
            auto p = std::make_unique<int>(100);
            while (!c.try_send(std::move(p))) weft::yield();
            EXPECT_EQ(p, nullptr);  // moved in only on success
            c.close();
          });
          int expect = 0;
          for (auto& p : c) {
            ASSERT_NE(p, nullptr);
            EXPECT_EQ(*p, expect++);
          }
          EXPECT_EQ(expect, 101);
          t.join();
        }
        // A failed try_send leaves the value where it was.
        weft::chan<std::unique_ptr<int>> full(1);
        full.send(std::make_unique<int>(1));
        auto keep = std::make_unique<int>(2);
        EXPECT_FALSE(full.try_send(std::move(keep)));
        ASSERT_NE(keep, nullptr);
        EXPECT_EQ(*keep, 2);
      },
      opts());
}

TEST_P(Chan, RangeForReceivesUntilClosedAndDrained) {
  weft::run(
      [] {
        weft::chan<int> c(2);
        weft::go([c]() mutable {  // a copy of the handle names the same channel
          for (int i = 1; i <= 100; ++i) c.send(i);
          c.close();
        });
        int sum = 0, n = 0;
        for (int v : c) {
          sum += v;
          ++n;
        }
        EXPECT_EQ(n, 100);
        EXPECT_EQ(sum, 5050);
        EXPECT_TRUE(c.closed());
      },
      opts());
}

TEST_P(Chan, BufferedValuesAreDestroyedWithTheLastHandle) {
  counted::live = 0;
  weft::run(
      [] {
        {
          weft::chan<counted> c(8);
          for (int i = 0; i < 5; ++i) c.send(counted(i));
          EXPECT_EQ(counted::live.load(), 5);
          weft::chan<counted> copy = c;
          c = nullptr;
          EXPECT_EQ(counted::live.load(), 5);  // the copy keeps the channel
          EXPECT_EQ(copy.recv()->v, 0);
          EXPECT_EQ(counted::live.load(), 4);
        }
        EXPECT_EQ(counted::live.load(), 0);
      },
      opts());
}

TEST_P(Chan, NilChannelOperationsThrowInsteadOfBlockingForever) {
  weft::run(
      [] {
        weft::chan<int> nil = nullptr;
        weft::chan<int> moved;
        weft::chan<int> taker = std::move(moved);
        EXPECT_FALSE(nil);
        EXPECT_TRUE(moved == nullptr);
        EXPECT_TRUE(taker);
        EXPECT_THROW(nil.send(1), weft::error);
        EXPECT_THROW(nil.recv(), weft::error);
        EXPECT_THROW(moved.close(), weft::error);
        EXPECT_THROW((void)nil.size(), weft::error);
      },
      opts());
}

TEST(ChanCreate, NegativeOrImpossibleCapacityThrows) {
  EXPECT_THROW(weft::chan<int>(-1), std::invalid_argument);
  EXPECT_THROW(weft::chan<int>(std::size_t(-1)), std::length_error);
  EXPECT_EQ(weft::chan<int>(3).capacity(), 3u);
  EXPECT_EQ(weft::chan<int>(std::size_t{0}).capacity(), 0u);
}

TEST_P(Chan, GoroutinesAndPlainThreadsShareChannels) {
  weft::runtime rt(opts());
  weft::chan<long> work(16), results;
  constexpr int kN = 2000;
  // Producers: a plain thread and a goroutine.  Consumers: two goroutines and a plain thread.
  std::thread producer([&] {
    for (int i = 0; i < kN; ++i) work.send(i);
  });
  weft::wait_group producers;
  producers.add(1);
  weft::go([&] {
    for (int i = kN; i < 2 * kN; ++i) work.send(i);
    producers.done();
  });
  auto consume = [&] {
    long s = 0;
    for (long v : work) s += v;
    results.send(s);
  };
  weft::go(consume);
  weft::go(consume);
  std::thread consumer(consume);
  producer.join();
  producers.wait();  // a plain thread waiting on a goroutine
  work.close();
  long total = 0;
  for (int i = 0; i < 3; ++i) total += *results.recv();
  consumer.join();
  EXPECT_EQ(total, long(2 * kN) * (2 * kN - 1) / 2);
}

TEST(ChanNoRuntime, PlainThreadsAloneCanUseChannels) {
  // No runtime at all: channels still work between plain threads.
  weft::chan<int> c;
  std::thread t([&] {
    for (int i = 0; i < 1000; ++i) c.send(i);
    c.close();
  });
  long sum = 0;
  for (int v : c) sum += v;
  t.join();
  EXPECT_EQ(sum, 999L * 1000 / 2);
}

TEST_P(Chan, ManyToManyEveryValueOnce) {
  weft::run(
      [] {
        constexpr int kProducers = 16, kConsumers = 16, kEach = 500;
        for (std::size_t cap : {0u, 1u, 64u}) {
          weft::chan<int> c(cap);
          std::vector<std::atomic<int>> seen(kProducers * kEach);
          weft::wait_group prod, cons;
          prod.add(kProducers);
          cons.add(kConsumers);
          for (int p = 0; p < kProducers; ++p)
            weft::go([&, p] {
              for (int i = 0; i < kEach; ++i) c.send(p * kEach + i);
              prod.done();
            });
          for (int k = 0; k < kConsumers; ++k)
            weft::go([&] {
              int last[kProducers];
              std::fill(std::begin(last), std::end(last), -1);
              for (int v : c) {
                seen[v].fetch_add(1);
                // Per producer, one consumer sees that producer's values in order (FIFO).
                EXPECT_GT(v % kEach, last[v / kEach]);
                last[v / kEach] = v % kEach;
              }
              cons.done();
            });
          prod.wait();
          c.close();
          cons.wait();
          for (auto& s : seen) ASSERT_EQ(s.load(), 1);
        }
      },
      opts());
}

INSTANTIATE_TEST_SUITE_P(Procs, Chan, ::testing::Values(1u, 2u, 4u),
                         [](const auto& info) { return "procs" + std::to_string(info.param); });

}  // namespace
