// SPDX-License-Identifier: Apache-2.0
// A task destroyed without join(): the goroutine runs on, detached, and an exception that
// escaped it is reported, never lost silently.  sleep_until with clocks other than
// steady_clock (as std::this_thread::sleep_until takes any clock).  Where the joiner of a
// batch resumes.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;

TEST(Task, DestroyedUnjoinedDetachesAndRunsOn) {
  std::atomic<bool> ran{false};
  {
    weft::runtime rt;
    {
      auto t = weft::spawn([&] {
        weft::sleep_for(20ms);
        ran = true;
        return 1;
      });
    }  // destroyed unjoined: detached, not waited for, not cancelled
    EXPECT_FALSE(ran.load());
  }  // the runtime's destructor waits for every goroutine
  EXPECT_TRUE(ran.load());
}

TEST(Task, DestroyedUnjoinedReportsItsException) {
  testing::internal::CaptureStderr();
  {
    weft::runtime rt;
    // Dropped before the goroutine ends (it sleeps first), and after (it is waited for).
    { auto t = weft::spawn([] { weft::sleep_for(10ms); throw std::runtime_error("lost-late"); }); }
    auto t2 = weft::spawn([]() -> int { throw std::runtime_error("lost-early"); });
    weft::sleep_for(30ms);
    t2 = {};
  }
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("destroyed without join()"), std::string::npos) << err;
  EXPECT_NE(err.find("lost-late"), std::string::npos) << err;
  EXPECT_NE(err.find("lost-early"), std::string::npos) << err;
}

TEST(Task, JoinedExceptionIsNotReportedAgain) {
  testing::internal::CaptureStderr();
  {
    weft::runtime rt;
    auto t = weft::spawn([] { throw std::runtime_error("caught-by-join"); });
    EXPECT_THROW(t.join(), std::runtime_error);
  }
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("caught-by-join"), std::string::npos) << err;
}

// sleep_until on a goroutine and on a plain thread, with system_clock and with a steady_clock
// time point of another duration; never wakes early.
template <class TimePoint>
void sleeps_until(TimePoint (*now)(), std::chrono::milliseconds d) {
  const auto t0 = std::chrono::steady_clock::now();
  weft::sleep_until(now() + d);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, d);
}

TEST(Task, AJoinerWokenByAnEndingTaskWaitsBehindTheQueuedSiblings) {
  // One P: main spawns a batch (none runs yet), then joins the first.  The task that wakes it
  // ends, so it has no time slice to hand on: main goes behind the siblings already queued
  // (which it would only park on again, one by one) instead of into runnext.  Before, main
  // resumed after two tasks had run, and parked once per task of the batch.
  constexpr int kBatch = 100;  // within one P's ring (256): no global queue involved
  weft::options o;
  o.procs = 1;
  int ran_when_resumed = -1, ran = 0;  // one P: no data race
  weft::run(
      [&] {
        std::vector<weft::task<void>> ts;
        for (int i = 0; i < kBatch; ++i) ts.push_back(weft::spawn([&ran] { ++ran; }));
        ts.front().join();
        ran_when_resumed = ran;
        for (std::size_t i = 1; i < ts.size(); ++i) ts[i].join();
      },
      o);
  EXPECT_EQ(ran_when_resumed, kBatch);
  EXPECT_EQ(ran, kBatch);
}

TEST(Task, ResultsSurviveTaskStatesReusedAcrossBatchesAndPs) {
  // Task states come from a per-P list of freed blocks (capped at 1024): batches bigger than
  // the cap, joined on whichever P main is on, some dropped unjoined (the goroutine frees its
  // block, on its own P), results with heap memory of their own.
  weft::options o;
  o.procs = 2;
  weft::run(
      [] {
        for (int round = 0; round < 4; ++round) {
          std::vector<weft::task<std::string>> ts;
          for (int i = 0; i < 3000; ++i) {
            auto t = weft::spawn([round, i] { return std::string(40, char('a' + (i + round) % 26)) + std::to_string(i); });
            if (i % 7 == 3) continue;  // dropped: detached
            ts.push_back(std::move(t));
          }
          int i = 0;
          for (auto& t : ts) {
            while (i % 7 == 3) ++i;
            std::string want(40, char('a' + (i + round) % 26));
            want.append(std::to_string(i));
            ASSERT_EQ(t.join(), want);
            ++i;
          }
        }
      },
      o);
}

TEST(SleepUntil, AnyClock) {
  using ms_steady = std::chrono::time_point<std::chrono::steady_clock, std::chrono::milliseconds>;
  auto steady_ms = +[] { return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now()) + 1ms; };
  auto system_now = +[] { return std::chrono::system_clock::now(); };
  sleeps_until<std::chrono::system_clock::time_point>(system_now, 20ms);  // a plain thread
  sleeps_until<ms_steady>(steady_ms, 20ms);
  int r = weft::run([&] {
    sleeps_until<std::chrono::system_clock::time_point>(system_now, 20ms);
    sleeps_until<ms_steady>(steady_ms, 20ms);
    weft::sleep_until(std::chrono::system_clock::now() - 1h);  // in the past: returns
    return 7;
  });
  EXPECT_EQ(r, 7);
}

}  // namespace
