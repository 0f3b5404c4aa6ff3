// SPDX-License-Identifier: Apache-2.0
// Descriptors: goroutines park until a descriptor is ready, time out, and many of them share
// the poller; plain threads block in poll(2) instead.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <system_error>
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
    if (fd[0] >= 0) ::close(fd[0]);
    if (fd[1] >= 0) ::close(fd[1]);
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

// ---- issue 18's three hazards ------------------------------------------------------------

// Closing a descriptor through weft wakes the goroutine parked on it with a clear error (Go's
// netFD.Close wakes a blocked Read).  A raw ::close cannot be seen: it must go through weft.
TEST_P(Io, CloseFdWakesTheWaiterWithAClearError) {
  socket_pair sp;
  std::atomic<int> outcome{0};  // 1: woken with the error, 2: returned otherwise
  std::string what;
  weft::run(
      [&] {
        weft::go([&] {
          try {
            (void)weft::wait_readable(sp.fd[0]);
            outcome = 2;
          } catch (const std::system_error& e) {
            what = e.what();
            outcome = 1;
          }
        });
        weft::sleep_for(5ms);  // parked by now
        weft::close_fd(sp.fd[0]);
        sp.fd[0] = -1;
        for (int i = 0; i < 2000 && outcome.load() == 0; ++i) weft::sleep_for(1ms);
      },
      opts());
  ASSERT_EQ(outcome.load(), 1) << "a goroutine parked on a descriptor closed through weft was not woken";
  EXPECT_NE(what.find("closed"), std::string::npos) << what;
  EXPECT_NE(what.find("fd "), std::string::npos) << what;
}

// After a close through weft the descriptor number starts clean: a new socket that gets the
// same number can be waited on (it used to throw "another goroutine already waits").
TEST_P(Io, AReusedDescriptorNumberStartsClean) {
  socket_pair sp;
  weft::run(
      [&] {
        const int old = sp.fd[0];
        auto first = weft::spawn([&] {
          try {
            return weft::wait_readable(old, 10s);
          } catch (const std::system_error&) {
            return false;
          }
        });
        weft::sleep_for(5ms);
        weft::close_fd(old);
        sp.fd[0] = -1;
        int fresh[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fresh), 0);
        ASSERT_EQ(fresh[0], old) << "the kernel did not reuse the number; the test needs it";
        auto second = weft::spawn([&] { return weft::wait_readable(fresh[0], 10s); });
        weft::sleep_for(2ms);
        EXPECT_EQ(::write(fresh[1], "r", 1), 1);
        EXPECT_TRUE(second.join());
        weft::close_fd(fresh[0]);
        weft::close_fd(fresh[1]);
        EXPECT_FALSE(first.join());
      },
      opts());
}

// A timeout of zero or less polls once and returns; it never waits for ever.
TEST_P(Io, ATimeoutOfZeroOrLessPollsOnce) {
  socket_pair sp;
  std::atomic<int> returned{0};
  weft::run(
      [&] {
        weft::go([&] {
          if (!weft::wait_readable(sp.fd[0], 0ns)) returned.fetch_add(1);
          if (!weft::wait_readable(sp.fd[0], -5ms)) returned.fetch_add(1);
          if (weft::wait_writable(sp.fd[0], 0ns)) returned.fetch_add(1);  // writable now: true
        });
        for (int i = 0; i < 2000 && returned.load() < 3; ++i) weft::sleep_for(1ms);
        if (returned.load() < 3) weft::close_fd(sp.fd[0]), sp.fd[0] = -1;  // let the waiter go
      },
      opts());
  EXPECT_EQ(returned.load(), 3);
  // And on a plain thread, the same.
  int p[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p), 0);
  EXPECT_FALSE(weft::wait_readable(p[0], 0ns));
  EXPECT_FALSE(weft::wait_readable(p[0], -1s));
  ::close(p[0]);
  ::close(p[1]);
}

// A descriptor closed with a raw ::close (not through weft) whose number is reused: waiting on
// the new one still works (the level-triggered public wait asks epoll whether its registration
// survived).  It hung reliability_test's posix_spawn test before that check.
TEST_P(Io, ARawCloseAndReuseOfTheNumberStillWakes) {
  weft::run(
      [&] {
        for (int round = 0; round < 3; ++round) {
          int p[2];
          ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
          auto reader = weft::spawn([fd = p[0]] { return weft::wait_readable(fd, 2s); });
          weft::sleep_for(2ms);
          EXPECT_EQ(::write(p[1], "w", 1), 1);
          EXPECT_TRUE(reader.join()) << "round " << round << ": the waiter on a reused number was not woken";
          ::close(p[0]);  // raw: weft does not see it
          ::close(p[1]);
        }
      },
      opts());
}

INSTANTIATE_TEST_SUITE_P(Procs, Io, ::testing::Values(1u, 2u),
                         [](const ::testing::TestParamInfo<unsigned>& i) { return "procs" + std::to_string(i.param); });

}  // namespace

// A blocking call may do what other goroutine code does short of parking: here it wakes
// goroutines parked on a channel and spawns one.  The call lasts long enough (2 ms) for sysmon
// to hand its P to another M, which runs `busy` there meanwhile; so what the call readies or
// spawns must not go into that P's queues from this M (blocking.cpp: the M gives up its claim
// on the P for the call, as Go's entersyscall does).  Under ThreadSanitizer two Ms writing one
// P's queues are reported; anywhere, a wake-up or a goroutine lost that way hangs the test.
TEST(IoOneP, ABlockingCallMayWakeAndSpawnGoroutines) {
  weft::options o;
  o.procs = 1;
  weft::run(
      [] {
        constexpr int kRounds = 30, kWaiters = 8;
        std::atomic<int> woken{0}, spawned{0};
        std::atomic<bool> stop{false};
        auto busy = weft::spawn([&] {
          while (!stop.load()) weft::yield();
        });
        for (int r = 0; r < kRounds; ++r) {
          weft::chan<int> c(kWaiters);  // room for every send: the call never parks
          weft::wait_group wg;
          wg.add(kWaiters);
          for (int i = 0; i < kWaiters; ++i)
            weft::go([&] {
              if (c.recv()) woken.fetch_add(1);
              wg.done();
            });
          weft::yield();  // most of them park on the receive
          weft::blocking([&] {
            std::this_thread::sleep_for(2ms);
            for (int i = 0; i < kWaiters; ++i) c.send(i);
            weft::go([&] { spawned.fetch_add(1); });
          });
          wg.wait();
        }
        while (spawned.load() < kRounds) weft::yield();
        stop = true;
        busy.join();
        EXPECT_EQ(woken.load(), kRounds * kWaiters);
      },
      o);
}

// What a blocking call must not do: wait on weft itself.  A goroutine in a blocking call
// cannot park; the runtime stops with a fatal error naming the goroutine and the change.
TEST(IoOnePDeathTest, WaitingOnWeftInsideABlockingCallIsFatal) {
  auto yield_inside = [] {
    weft::options o;
    o.procs = 1;
    weft::run([] { weft::blocking([] { weft::yield(); }); }, o);
    std::exit(0);
  };
  auto sleep_inside = [] {
    weft::options o;
    o.procs = 1;
    weft::run([] { weft::blocking([] { weft::sleep_for(1ms); }); }, o);
    std::exit(0);
  };
  EXPECT_EXIT(yield_inside(), ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+: bad status change running -> runnable \\(it is blocking call\\)");
  EXPECT_EXIT(sleep_inside(), ::testing::ExitedWithCode(2), "weft: fatal error: goroutine [0-9]+: bad status change running -> waiting \\(it is blocking call\\)");
}
