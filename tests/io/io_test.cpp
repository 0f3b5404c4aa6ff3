// SPDX-License-Identifier: Apache-2.0
// Descriptors: goroutines park until a descriptor is ready, time out, and many of them share
// the poller; plain threads block in poll(2) instead.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;

struct socket_pair {
  int fd[2] = {-1, -1};
  socket_pair() {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0);
  }
  ~socket_pair() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
};

class Io : public ::testing::TestWithParam<unsigned> {
 protected:
  weft::options opts() const {
    weft::options o;
    o.procs = GetParam();
    return o;
  }
};

TEST_P(Io, ReadableWakesTheWaiter) {
  socket_pair sp;
  weft::run(
      [&] {
        auto reader = weft::spawn([&] {
          EXPECT_TRUE(weft::wait_readable(sp.fd[0]));
          char c = 0;
          EXPECT_EQ(::read(sp.fd[0], &c, 1), 1);
          return c;
        });
        weft::sleep_for(1ms);  // the reader is parked by now, or will find the byte at once
        EXPECT_EQ(::write(sp.fd[1], "k", 1), 1);
        EXPECT_EQ(reader.join(), 'k');
      },
      opts());
}

TEST_P(Io, TimeoutReturnsFalseAndNeverEarly) {
  socket_pair sp;
  weft::run(
      [&] {
        auto t0 = std::chrono::steady_clock::now();
        EXPECT_FALSE(weft::wait_readable(sp.fd[0], 3ms));
        EXPECT_GE(std::chrono::steady_clock::now() - t0, 3ms);
        // The same descriptor can be waited on again after a timeout.
        EXPECT_EQ(::write(sp.fd[1], "x", 1), 1);
        EXPECT_TRUE(weft::wait_readable(sp.fd[0], 1s));
        EXPECT_TRUE(weft::wait_writable(sp.fd[0], 1s));
      },
      opts());
}

// A timeout too long to add to the clock means "no deadline": it used to overflow into the
// past, and the wait returned false at once.
TEST_P(Io, AHugeTimeoutWaitsForTheDescriptor) {
  socket_pair sp;
  weft::run(
      [&] {
        auto reader = weft::spawn([&] { return weft::wait_readable(sp.fd[0], std::chrono::nanoseconds::max()); });
        weft::sleep_for(1ms);
        EXPECT_EQ(::write(sp.fd[1], "h", 1), 1);
        EXPECT_TRUE(reader.join());
      },
      opts());
}

TEST_P(Io, ThousandGoroutinesPingPongOverSockets) {
  constexpr int kPairs = 500, kRounds = 20;
  std::vector<std::unique_ptr<socket_pair>> pairs;
  for (int i = 0; i < kPairs; ++i) pairs.push_back(std::make_unique<socket_pair>());
  std::atomic<int> echoed{0};
  weft::run(
      [&] {
        std::vector<weft::task<void>> ts;
        for (int i = 0; i < kPairs; ++i) {
          int a = pairs[i]->fd[0], b = pairs[i]->fd[1];
          ts.push_back(weft::spawn([a, &echoed] {  // echo side
            char c;
            for (int r = 0; r < kRounds; ++r) {
              while (::read(a, &c, 1) != 1) ASSERT_TRUE(weft::wait_readable(a));
              while (::write(a, &c, 1) != 1) ASSERT_TRUE(weft::wait_writable(a));
              echoed.fetch_add(1);
            }
          }));
          ts.push_back(weft::spawn([b, i] {  // client side
            for (int r = 0; r < kRounds; ++r) {
              char out = static_cast<char>('a' + (i + r) % 26), in = 0;
              while (::write(b, &out, 1) != 1) ASSERT_TRUE(weft::wait_writable(b));
              while (::read(b, &in, 1) != 1) ASSERT_TRUE(weft::wait_readable(b));
              ASSERT_EQ(in, out);
            }
          }));
        }
        for (auto& t : ts) t.join();
      },
      opts());
  EXPECT_EQ(echoed.load(), kPairs * kRounds);
}

TEST(IoOneP, TwoWaitersInOneDirectionIsAnError) {
  // One P: yielding runs the first waiter until it parks, so it is registered when main asks.
  socket_pair sp;
  weft::options o;
  o.procs = 1;
  weft::run(
      [&] {
        auto first = weft::spawn([&] { return weft::wait_readable(sp.fd[0], 10s); });
        weft::yield();
        EXPECT_THROW(weft::wait_readable(sp.fd[0], 1ms), weft::error);
        EXPECT_EQ(::write(sp.fd[1], "z", 1), 1);
        EXPECT_TRUE(first.join());
      },
      o);
}

TEST(IoPlainThread, WaitsWithPoll) {
  socket_pair sp;
  weft::runtime rt;
  std::thread writer([&] {
    std::this_thread::sleep_for(2ms);
    EXPECT_EQ(::write(sp.fd[1], "p", 1), 1);
  });
  EXPECT_TRUE(weft::wait_readable(sp.fd[0], 5s));
  writer.join();
  EXPECT_THROW(weft::wait_readable(-1), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Procs, Io, ::testing::Values(1u, 2u),
                         [](const ::testing::TestParamInfo<unsigned>& i) { return "procs" + std::to_string(i.param); });

}  // namespace
