// SPDX-License-Identifier: Apache-2.0
// A randomized model-based test of channels and select.  Goroutines and plain threads do
// random blocking sends, try_sends, two-way select sends (with and without default or
// timeout), blocking receives, try_recvs, selects over every channel, and range-for loops on a
// handful of channels of different capacities, while closers (a goroutine and a plain thread)
// close the channels one by one — and try to close them twice.  Every value carries a unique
// id, and each party records what happened to it:
//   - a send that completed records the channel; one that threw closed_channel, or a try_send
//     or select that took another path, records nothing;
//   - every receive records the id and the channel.
// At the end the sequential reference is checked: each id is received exactly once if and only
// if its send completed, on the very channel it was sent on; per channel, completed sends equal
// receives; nothing is left buffered.  Values are move-only (unique_ptr), so AddressSanitizer's
// leak check also sees any value dropped or duplicated inside the runtime.
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/sync/sync_test_util.hpp"

namespace {

using namespace synctest;
using namespace std::chrono_literals;

#if defined(WEFT_SANITIZE_THREAD)
constexpr int kAttempts = 300;
#elif defined(WEFT_SANITIZE_ADDRESS)
constexpr int kAttempts = 1000;
#else
constexpr int kAttempts = 3000;
#endif
constexpr int kChans = 4;
constexpr std::size_t kCaps[kChans] = {0, 1, 3, 16};
constexpr int kGProducers = 6, kTProducers = 2, kGConsumers = 6, kTConsumers = 2;
constexpr int kProducers = kGProducers + kTProducers;
constexpr int kTotal = kProducers * kAttempts;

using token = std::unique_ptr<std::uint32_t>;

struct world {
  std::vector<weft::chan<token>> ch;
  std::vector<std::atomic<int>> sent_on;    // channel the send completed on, or -1
  std::vector<std::atomic<int>> recv_on;    // channel it was received from, or -1
  std::vector<std::atomic<int>> recv_times;
  std::atomic<long> sent_count[kChans] = {};
  std::atomic<long> recv_count[kChans] = {};
  std::atomic<long> closed_throws{0}, double_close_throws{0};
  std::atomic<long> sent_total{0};
  std::atomic<int> producers_left{kProducers};
  std::atomic<int> closed_chans{0};

  world() : sent_on(kTotal), recv_on(kTotal), recv_times(kTotal) {
    for (int k = 0; k < kChans; ++k) ch.emplace_back(kCaps[k]);
    for (auto& v : sent_on) v = -1;
    for (auto& v : recv_on) v = -1;
  }

  void sent(std::uint32_t id, int k) {
    sent_on[id] = k;
    sent_count[k].fetch_add(1);
    sent_total.fetch_add(1);
  }
  void received(const token& t, int k) {
    ASSERT_TRUE(t);
    std::uint32_t id = *t;
    ASSERT_LT(id, std::uint32_t(kTotal));
    recv_times[id].fetch_add(1);
    recv_on[id] = k;
    recv_count[k].fetch_add(1);
  }
};

void producer(world& w, int index, unsigned seed) {
  std::mt19937 rng(seed);
  for (int a = 0; a < kAttempts && w.closed_chans.load() < kChans; ++a) {
    auto id = static_cast<std::uint32_t>(index * kAttempts + a);
    int k = static_cast<int>(rng() % kChans), k2 = static_cast<int>(rng() % kChans);
    try {
      switch (rng() % 4) {
        case 0:
          w.ch[k].send(std::make_unique<std::uint32_t>(id));
          w.sent(id, k);
          break;
        case 1:
          if (w.ch[k].try_send(std::make_unique<std::uint32_t>(id))) w.sent(id, k);
          break;
        case 2: {
          std::size_t i = weft::select(weft::on_send(w.ch[k], std::make_unique<std::uint32_t>(id)),
                                       weft::on_send(w.ch[k2], std::make_unique<std::uint32_t>(id)));
          w.sent(id, i == 0 ? k : k2);
          break;
        }
        default: {
          std::size_t i;
          if (rng() % 2)
            i = weft::select(weft::on_send(w.ch[k], std::make_unique<std::uint32_t>(id)),
                             weft::on_send(w.ch[k2], std::make_unique<std::uint32_t>(id)), weft::on_default([] {}));
          else
            i = weft::select(weft::on_send(w.ch[k], std::make_unique<std::uint32_t>(id)),
                             weft::on_send(w.ch[k2], std::make_unique<std::uint32_t>(id)),
                             weft::on_timeout(std::chrono::microseconds(rng() % 100), [] {}));
          if (i < 2) w.sent(id, i == 0 ? k : k2);
        }
      }
    } catch (const weft::closed_channel&) {
      w.closed_throws.fetch_add(1);
    }
  }
  w.producers_left.fetch_sub(1);
}

void consumer(world& w, unsigned seed) {
  std::mt19937 rng(seed);
  bool drained[kChans] = {};
  int left = kChans;
  while (left > 0) {
    int k;
    do k = static_cast<int>(rng() % kChans);
    while (drained[k]);
    auto mark_drained = [&](int c) {
      if (!drained[c]) {
        drained[c] = true;
        --left;
      }
    };
    switch (rng() % 5) {
      case 0:
        if (auto v = w.ch[k].recv()) w.received(*v, k);
        else mark_drained(k);
        break;
      case 1:
        if (auto v = w.ch[k].try_recv()) w.received(*v, k);
        break;
      case 2: {
        int n = 0;
        for (auto& v : w.ch[k]) {
          w.received(v, k);
          if (++n == 5) break;
        }
        if (n < 5) mark_drained(k);  // the loop ended: closed and drained
        break;
      }
      default: {
        // Every channel not yet seen drained (a nil handle stands in for the others), plus,
        // sometimes, a default or a timeout.
        weft::chan<token> c[kChans] = {nullptr, nullptr, nullptr, nullptr};
        for (int j = 0; j < kChans; ++j)
          if (!drained[j]) c[j] = w.ch[j];
        int got = -1;
        std::optional<token> v;
        auto on = [&](int j) { return [&, j](std::optional<token> x) { got = j, v = std::move(x); }; };
        unsigned extra = rng() % 3;
        if (extra == 0)
          weft::select(weft::on_recv(c[0], on(0)), weft::on_recv(c[1], on(1)), weft::on_recv(c[2], on(2)),
                       weft::on_recv(c[3], on(3)));
        else if (extra == 1)
          weft::select(weft::on_recv(c[0], on(0)), weft::on_recv(c[1], on(1)), weft::on_recv(c[2], on(2)),
                       weft::on_recv(c[3], on(3)), weft::on_default([] {}));
        else
          weft::select(weft::on_recv(c[0], on(0)), weft::on_recv(c[1], on(1)), weft::on_recv(c[2], on(2)),
                       weft::on_recv(c[3], on(3)), weft::on_timeout(std::chrono::microseconds(rng() % 200), [] {}));
        if (got >= 0) {
          if (v) w.received(*v, got);
          else mark_drained(got);
        }
      }
    }
  }
}

// Closes its channels in turn, each once enough has been sent or a time has passed (which only
// guarantees progress when every party happens to wait on a channel nobody feeds; the checks
// do not depend on when closes happen).  Then tries each again: that must throw.
void closer(world& w, std::vector<int> mine, std::chrono::steady_clock::time_point start, unsigned seed) {
  std::mt19937 rng(seed);
  for (int k : mine) {
    long threshold = kTotal / 8 + static_cast<long>(rng() % (kTotal / 2));
    auto deadline = start + std::chrono::milliseconds(30 * (k + 1));
    while (w.sent_total.load() < threshold && w.producers_left.load() > 0 && std::chrono::steady_clock::now() < deadline)
      weft::sleep_for(100us);
    w.ch[k].close();
    w.closed_chans.fetch_add(1);
  }
  for (int k : mine) {
    try {
      w.ch[k].close();
    } catch (const weft::closed_channel&) {
      w.double_close_throws.fetch_add(1);
    }
  }
}

class Model : public Procs {};

TEST_P(Model, EveryValueReceivedExactlyOnceOrAccountedForByClose) {
  for (unsigned trial = 0; trial < 3; ++trial) {
    world w;
    unsigned base = 1000 * GetParam() + 17 * trial;
    {
      weft::runtime rt(opts());
      auto start = std::chrono::steady_clock::now();
      std::vector<std::thread> threads;
      int index = 0;
      for (int i = 0; i < kGProducers; ++i, ++index) weft::go(producer, std::ref(w), index, base + index);
      for (int i = 0; i < kTProducers; ++i, ++index) threads.emplace_back(producer, std::ref(w), index, base + index);
      for (int i = 0; i < kGConsumers; ++i) weft::go(consumer, std::ref(w), base + 100 + i);
      for (int i = 0; i < kTConsumers; ++i) threads.emplace_back(consumer, std::ref(w), base + 200 + i);
      weft::go(closer, std::ref(w), std::vector<int>{0, 2}, start, base + 300);
      threads.emplace_back(closer, std::ref(w), std::vector<int>{1, 3}, start, base + 301);
      for (auto& t : threads) t.join();
    }  // the runtime's destructor waits for every goroutine

    long sent = 0, received = 0;
    for (int k = 0; k < kChans; ++k) {
      EXPECT_EQ(w.sent_count[k].load(), w.recv_count[k].load()) << "channel " << k;
      EXPECT_TRUE(w.ch[k].closed());
      EXPECT_EQ(w.ch[k].size(), 0u);
      sent += w.sent_count[k];
      received += w.recv_count[k];
    }
    for (int id = 0; id < kTotal; ++id) {
      int s = w.sent_on[id], r = w.recv_on[id], times = w.recv_times[id];
      ASSERT_EQ(times, s >= 0 ? 1 : 0) << "id " << id << " sent on " << s << " received " << times << " times";
      ASSERT_EQ(r, s) << "id " << id;
    }
    EXPECT_EQ(w.double_close_throws.load(), kChans);
    EXPECT_GT(sent, 0);
    EXPECT_EQ(sent, received);
    std::printf("[ model    ] procs %u trial %u: %ld of %d values sent and received, %ld sends met a close\n",
                GetParam(), trial, sent, kTotal, w.closed_throws.load());
  }
}

INSTANTIATE_TEST_SUITE_P(Procs, Model, ::testing::Values(1u, 2u, 4u),
                         [](const auto& info) { return "procs" + std::to_string(info.param); });

}  // namespace
