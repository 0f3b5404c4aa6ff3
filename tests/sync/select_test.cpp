// SPDX-License-Identifier: Apache-2.0
// select: one test per rule of weft/select.hpp, fairness over 10,000 trials, and timeouts
// that never fire early — at procs = 1, 2, 4.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/sync/sync_test_util.hpp"

namespace {

using namespace synctest;
using namespace std::chrono_literals;
using Select = Procs;

TEST_P(Select, RunsTheReadyCaseAndReturnsItsIndex) {
  weft::run(
      [] {
        weft::chan<int> a(1), b(1);
        b.send(42);
        int got = 0;
        bool a_ran = false;
        std::size_t i = weft::select(weft::on_recv(a, [&](std::optional<int>) { a_ran = true; }),
                                     weft::on_recv(b, [&](std::optional<int> v) { got = *v; }));
        EXPECT_EQ(i, 1u);
        EXPECT_EQ(got, 42);
        EXPECT_FALSE(a_ran);
      },
      opts());
}

TEST_P(Select, DefaultRunsWhenNothingIsReady) {
  weft::run(
      [] {
        weft::chan<int> a, b(1);
        b.send(0);  // full: a send case on it is not ready
        bool dflt = false;
        std::size_t i = weft::select(weft::on_recv(a, [](std::optional<int>) {}), weft::on_send(b, 1, [] {}),
                                     weft::on_default([&] { dflt = true; }));
        EXPECT_EQ(i, 2u);
        EXPECT_TRUE(dflt);
        EXPECT_EQ(b.size(), 1u);
        EXPECT_EQ(blocked_receivers(a), 0u);  // default never queues anything
      },
      opts());
}

TEST_P(Select, BlocksUntilACaseBecomesReady) {
  weft::run(
      [] {
        weft::chan<int> a, b;
        auto t = weft::spawn([&] {
          std::optional<int> got;
          std::size_t i = weft::select(weft::on_recv(a, [&](std::optional<int> v) { got = v; }),
                                       weft::on_recv(b, [&](std::optional<int> v) { got = v; }));
          return std::pair<std::size_t, std::optional<int>>(i, got);
        });
        wait_until([&] { return blocked_receivers(a) == 1 && blocked_receivers(b) == 1; });
        b.send(9);
        auto [i, got] = t.join();
        EXPECT_EQ(i, 1u);
        EXPECT_EQ(got, 9);
        // The losing case's node is gone from a's queue: nobody is receiving on a any more.
        EXPECT_EQ(blocked_receivers(a), 0u);
        EXPECT_FALSE(a.try_send(1));
      },
      opts());
}

TEST_P(Select, SendCaseHandsTheValueToAWaitingReceiver) {
  weft::run(
      [] {
        weft::chan<std::string> c;
        auto t = weft::spawn([&] { return c.recv(); });
        wait_until([&] { return blocked_receivers(c) == 1; });
        bool ran = false;
        std::size_t i = weft::select(weft::on_send(c, "via select", [&] { ran = true; }));
        EXPECT_EQ(i, 0u);
        EXPECT_TRUE(ran);
        EXPECT_EQ(t.join(), "via select");
      },
      opts());
}

TEST_P(Select, BlockedSendCaseCompletesWhenAReceiverComes) {
  weft::run(
      [] {
        weft::chan<std::unique_ptr<int>> c, other;
        auto t = weft::spawn([&] {
          return weft::select(weft::on_send(c, std::make_unique<int>(5)), weft::on_recv(other, [] {}));
        });
        wait_until([&] { return blocked_senders(c) == 1; });
        auto v = c.recv();
        ASSERT_TRUE(v && *v);
        EXPECT_EQ(**v, 5);
        EXPECT_EQ(t.join(), 0u);
      },
      opts());
}

TEST_P(Select, RecvCaseOnClosedChannelGetsNullopt) {
  weft::run(
      [] {
        weft::chan<int> c;
        c.close();
        bool got_nullopt = false;
        EXPECT_EQ(weft::select(weft::on_recv(c, [&](std::optional<int> v) { got_nullopt = !v; })), 0u);
        EXPECT_TRUE(got_nullopt);
      },
      opts());
}

TEST_P(Select, SendCaseOnClosedChannelThrows) {
  weft::run(
      [] {
        weft::chan<int> c;
        c.close();
        EXPECT_THROW(weft::select(weft::on_send(c, 1), weft::on_default([] {})), weft::closed_channel);
      },
      opts());
}

TEST_P(Select, CloseWakesABlockedSelect) {
  weft::run(
      [] {
        weft::chan<int> r, s;
        auto receiver = weft::spawn([&] {
          std::optional<int> got = 1;
          weft::select(weft::on_recv(r, [&](std::optional<int> v) { got = v; }));
          return got;
        });
        auto sender = weft::spawn([&] {
          try {
            weft::select(weft::on_send(s, 1));
          } catch (const weft::closed_channel&) {
            return true;
          }
          return false;
        });
        wait_until([&] { return blocked_receivers(r) == 1 && blocked_senders(s) == 1; });
        r.close();
        s.close();
        EXPECT_EQ(receiver.join(), std::nullopt);
        EXPECT_TRUE(sender.join());
      },
      opts());
}

TEST_P(Select, FairAmongReadyCases) {
  weft::run(
      [] {
        constexpr int kTrials = 10'000;
        weft::chan<int> a(1), b(1);
        int na = 0, nb = 0;
        for (int t = 0; t < kTrials; ++t) {
          if (a.size() == 0) a.send(1);
          if (b.size() == 0) b.send(2);
          weft::select(weft::on_recv(a, [&] { ++na; }), weft::on_recv(b, [&] { ++nb; }));
        }
        EXPECT_EQ(na + nb, kTrials);
        EXPECT_GE(na, kTrials * 45 / 100) << "a " << na << " b " << nb;
        EXPECT_LE(na, kTrials * 55 / 100) << "a " << na << " b " << nb;
        // Two ready send cases too.
        weft::chan<int> x(kTrials), y(kTrials);
        for (int t = 0; t < kTrials; ++t) weft::select(weft::on_send(x, t), weft::on_send(y, t));
        EXPECT_GE(x.size(), std::size_t(kTrials * 45 / 100));
        EXPECT_LE(x.size(), std::size_t(kTrials * 55 / 100));
      },
      opts());
}

TEST_P(Select, FairAmongThreeReadyCases) {
  weft::run(
      [] {
        constexpr int kTrials = 9'000;
        weft::chan<int> c[3] = {weft::chan<int>(1), weft::chan<int>(1), weft::chan<int>(1)};
        int n[3] = {};
        for (int t = 0; t < kTrials; ++t) {
          for (auto& ch : c)
            if (ch.size() == 0) ch.send(0);
          n[weft::select(weft::on_recv(c[0], [] {}), weft::on_recv(c[1], [] {}), weft::on_recv(c[2], [] {}))]++;
        }
        for (int k : n) {
          EXPECT_GE(k, kTrials / 3 * 90 / 100);
          EXPECT_LE(k, kTrials / 3 * 110 / 100);
        }
      },
      opts());
}

// A timeout never fires before its duration has passed, on a goroutine or a plain thread,
// and a ready case wins over it.
TEST_P(Select, TimeoutNeverEarly) {
  weft::runtime rt(opts());
  auto check = [] {
    weft::chan<int> never;
    for (auto d : {1ms, 2ms, 5ms}) {
      for (int k = 0; k < 5; ++k) {
        auto t0 = std::chrono::steady_clock::now();
        bool fired = false;
        std::size_t i = weft::select(weft::on_recv(never, [] {}), weft::on_timeout(d, [&] { fired = true; }));
        auto elapsed = std::chrono::steady_clock::now() - t0;
        EXPECT_EQ(i, 1u);
        EXPECT_TRUE(fired);
        EXPECT_GE(elapsed, d);
      }
    }
    EXPECT_EQ(blocked_receivers(never), 0u);  // the timed-out select left nothing behind
  };
  auto g = weft::spawn(check);
  std::thread th(check);
  g.join();
  th.join();
  // Only a timeout: a pure sleep.
  auto t0 = std::chrono::steady_clock::now();
  weft::spawn([] { weft::select(weft::on_timeout(3ms, [] {})); }).join();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 3ms);
}

TEST_P(Select, ReadyCaseWinsOverTimeoutAndZeroTimeoutActsAsDefault) {
  weft::run(
      [] {
        weft::chan<int> c(1);
        c.send(1);
        EXPECT_EQ(weft::select(weft::on_timeout(1h, [] {}), weft::on_recv(c, [] {})), 1u);
        EXPECT_EQ(weft::select(weft::on_timeout(0ms, [] {}), weft::on_recv(c, [] {})), 0u);
        EXPECT_EQ(weft::select(weft::on_timeout(-5ms, [] {}), weft::on_recv(c, [] {})), 0u);
        // Several timeouts: the earliest runs.
        EXPECT_EQ(weft::select(weft::on_timeout(1h, [] {}), weft::on_timeout(1ms, [] {}), weft::on_recv(c, [] {})), 1u);
      },
      opts());
}

TEST_P(Select, ValueArrivingAfterTimeoutIsNotLost) {
  weft::run(
      [] {
        weft::chan<int> c;
        for (int k = 0; k < 200; ++k) {
          // A sender racing the select's timeout: its value goes either to the select or, if the
          // timeout won, stays with the sender for the plain recv below — never lost or doubled.
          auto t = weft::spawn([&, k] { c.send(k); });
          std::optional<int> got;
          weft::select(weft::on_recv(c, [&](std::optional<int> v) { got = v; }), weft::on_timeout(20us, [] {}));
          if (!got) got = c.recv();
          EXPECT_EQ(got, k);
          t.join();
        }
      },
      opts());
}

TEST_P(Select, UnsentValueIsDestroyedAndNilCasesNeverRun) {
  counted::live = 0;
  weft::run(
      [] {
        weft::chan<counted> full(1), nil = nullptr;
        full.send(counted(0));
        weft::chan<int> ready(1);
        ready.send(1);
        bool nil_ran = false;
        std::size_t i = weft::select(weft::on_send(full, counted(1)), weft::on_recv(nil, [&] { nil_ran = true; }),
                                     weft::on_send(nil, counted(2)), weft::on_recv(ready, [] {}));
        EXPECT_EQ(i, 3u);
        EXPECT_FALSE(nil_ran);
        EXPECT_EQ(counted::live.load(), 1);  // only the one in `full`
        EXPECT_THROW(weft::select(weft::on_recv(nil, [] {})), weft::error);  // would wait forever
        EXPECT_EQ(weft::select(weft::on_recv(nil, [] {}), weft::on_default([] {})), 1u);
      },
      opts());
  EXPECT_EQ(counted::live.load(), 0);
}

TEST_P(Select, SameChannelForSendAndRecvCases) {
  weft::run(
      [] {
        weft::chan<int> c;
        // Two selects, each offering both directions on c: one sends to the other.
        auto one = weft::spawn([&] {
          int got = -1;
          weft::select(weft::on_send(c, 1), weft::on_recv(c, [&](std::optional<int> v) { got = *v; }));
          return got;
        });
        auto two = weft::spawn([&] {
          int got = -1;
          weft::select(weft::on_send(c, 2), weft::on_recv(c, [&](std::optional<int> v) { got = *v; }));
          return got;
        });
        int a = one.join(), b = two.join();
        EXPECT_TRUE((a == -1 && b == 1) || (a == 2 && b == -1)) << a << " " << b;
      },
      opts());
}

TEST_P(Select, ManySelectorsOnSharedChannels) {
  weft::run(
      [] {
        constexpr int kEach = 2000, kSenders = 4, kReceivers = 4;
        weft::chan<int> a, b(3), done;
        std::atomic<long> sum{0};
        std::atomic<int> count{0};
        weft::wait_group senders;
        senders.add(kSenders);
        for (int s = 0; s < kSenders; ++s)
          weft::go([&] {
            for (int i = 1; i <= kEach; ++i) weft::select(weft::on_send(a, i), weft::on_send(b, i));
            senders.done();
          });
        weft::wait_group receivers;
        receivers.add(kReceivers);
        for (int r = 0; r < kReceivers; ++r)
          weft::go([&] {
            bool open = true;
            while (open) {
              auto take = [&](std::optional<int> v) {
                sum += *v;
                ++count;
              };
              weft::select(weft::on_recv(a, take), weft::on_recv(b, take),
                           weft::on_recv(done, [&](std::optional<int>) { open = false; }));
            }
            receivers.done();
          });
        senders.wait();
        // Everything sent has been received or sits in b's buffer; stop the receivers once
        // drained.
        while (b.size() != 0) weft::yield();
        done.close();
        receivers.wait();
        EXPECT_EQ(count.load(), kSenders * kEach);
        EXPECT_EQ(sum.load(), long(kSenders) * kEach * (kEach + 1) / 2);
      },
      opts());
}

INSTANTIATE_TEST_SUITE_P(Procs, Select, ::testing::Values(1u, 2u, 4u),
                         [](const auto& info) { return "procs" + std::to_string(info.param); });

}  // namespace
