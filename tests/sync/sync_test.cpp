// SPDX-License-Identifier: Apache-2.0
// wait_group, mutex, condition_variable, and the pins they take on a goroutine's stack — at
// procs = 1, 2, 4, from goroutines and plain threads.
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/sync/sync_test_util.hpp"

namespace {

using namespace synctest;
using namespace std::chrono_literals;
using Sync = Procs;

// The objects are standard-layout with their runtime state as the only member.
weft::detail::wait_list& waiters_of(weft::condition_variable& cv) { return *reinterpret_cast<weft::detail::wait_list*>(&cv); }
weft::detail::wait_list& waiters_of(weft::wait_group& wg) {
  return reinterpret_cast<weft::detail::wait_group_state*>(&wg)->waiters;
}
weft::detail::wait_list& waiters_of(weft::mutex& m) { return reinterpret_cast<weft::detail::mutex_state*>(&m)->waiters; }

// ---- wait_group -----------------------------------------------------------------------------

TEST_P(Sync, WaitGroupWaitsForEveryGoroutineAndThread) {
  weft::run(
      [] {
        weft::wait_group wg;
        std::atomic<int> finished{0};
        constexpr int kG = 100, kT = 3;
        wg.add(kG + kT);
        for (int i = 0; i < kG; ++i)
          weft::go([&] {
            weft::yield();
            ++finished;
            wg.done();
          });
        std::vector<std::thread> ts;
        for (int i = 0; i < kT; ++i)
          ts.emplace_back([&] {
            ++finished;
            wg.done();
          });
        wg.wait();
        EXPECT_EQ(finished.load(), kG + kT);
        for (auto& t : ts) t.join();
        wg.wait();  // zero: returns at once
      },
      opts());
}

TEST_P(Sync, WaitGroupWakesEveryWaiterGoroutinesAndThreads) {
  weft::run(
      [] {
        weft::wait_group gate;
        gate.add(1);
        std::atomic<int> through{0};
        std::vector<weft::task<void>> ts;
        for (int i = 0; i < 10; ++i) ts.push_back(weft::spawn([&] {
          gate.wait();
          ++through;
        }));
        std::thread th([&] {
          gate.wait();
          ++through;
        });
        wait_until([&] { return blocked_on(waiters_of(gate)) == 11; });
        EXPECT_EQ(through.load(), 0);
        gate.done();
        for (auto& t : ts) t.join();
        th.join();
        EXPECT_EQ(through.load(), 11);
      },
      opts());
}

TEST_P(Sync, WaitGroupNegativeCounterThrowsLogicErrorAndKeepsTheCount) {
  weft::run(
      [] {
        weft::wait_group wg;
        EXPECT_THROW(wg.done(), std::logic_error);
        wg.add(2);
        EXPECT_THROW(wg.add(-3), std::logic_error);
        wg.done();  // the counter is still 2: this leaves 1
        std::atomic<bool> passed{false};
        auto t = weft::spawn([&] {
          wg.wait();
          passed = true;
        });
        wait_until([&] { return blocked_on(waiters_of(wg)) == 1; });
        EXPECT_FALSE(passed.load());
        wg.done();
        t.join();
        EXPECT_TRUE(passed.load());
      },
      opts());
}

// ---- mutex ----------------------------------------------------------------------------------

TEST_P(Sync, MutexExcludesGoroutinesAndThreads) {
  weft::runtime rt(opts());
  weft::mutex mu;
  long counter = 0;  // unprotected but for mu
  constexpr int kG = 8, kT = 2, kIters = 20'000;
  weft::wait_group wg;
  wg.add(kG);
  for (int i = 0; i < kG; ++i)
    weft::go([&, i] {
      for (int k = 0; k < kIters; ++k) {
        if (k % 3 == 0) {
          std::lock_guard<weft::mutex> l(mu);
          ++counter;
        } else if (k % 3 == 1) {
          std::unique_lock<weft::mutex> l(mu);
          ++counter;
          if (k % 64 == 1) weft::yield();  // park inside the critical section now and then
        } else {
          while (!mu.try_lock()) weft::yield();
          ++counter;
          mu.unlock();
        }
      }
      (void)i;
      wg.done();
    });
  std::vector<std::thread> ts;
  for (int i = 0; i < kT; ++i)
    ts.emplace_back([&] {
      for (int k = 0; k < kIters; ++k) {
        std::scoped_lock l(mu);
        ++counter;
      }
    });
  for (auto& t : ts) t.join();
  wg.wait();
  std::lock_guard<weft::mutex> l(mu);
  EXPECT_EQ(counter, long(kG + kT) * kIters);
}

TEST_P(Sync, MutexTryLock) {
  weft::run(
      [] {
        weft::mutex mu;
        EXPECT_TRUE(mu.try_lock());
        EXPECT_FALSE(mu.try_lock());
        EXPECT_FALSE(weft::spawn([&] { return mu.try_lock(); }).join());
        mu.unlock();
        EXPECT_TRUE(weft::spawn([&] {
                      bool ok = mu.try_lock();
                      if (ok) mu.unlock();
                      return ok;
                    }).join());
      },
      opts());
}

TEST_P(Sync, MutexBlocksAWaiterUntilUnlock) {
  weft::run(
      [] {
        weft::mutex mu;
        mu.lock();
        std::atomic<bool> got{false};
        auto t = weft::spawn([&] {
          mu.lock();
          got = true;
          mu.unlock();
        });
        std::thread th([&] {
          std::lock_guard<weft::mutex> l(mu);
        });
        wait_until([&] { return blocked_on(waiters_of(mu)) == 2; });
        EXPECT_FALSE(got.load());
        mu.unlock();
        t.join();
        th.join();
        EXPECT_TRUE(got.load());
      },
      opts());
}

// Starvation mode.  On one P, A holds the mutex and yields while holding it, then unlocks and
// at once locks again.  In normal mode B — woken by each unlock but only run while A holds
// the mutex again — could never get it.  Once B has waited > 1 ms it puts the mutex in
// starvation mode, and A's next unlock hands the lock straight to B.  The outcome is decided
// by the protocol, not by timing: without starvation mode this loop never ends (the bound
// below turns that into a failure).
TEST(SyncOneP, MutexStarvationModeHandsTheLockToALongWaiter) {
  weft::run(
      [] {
        weft::mutex mu;
        std::atomic<bool> b_got{false};
        std::int64_t b_waited_ns = 0;
        mu.lock();
        auto b = weft::spawn([&] {
          auto t0 = std::chrono::steady_clock::now();
          mu.lock();
          b_waited_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
          b_got = true;
          mu.unlock();
        });
        auto give_up = std::chrono::steady_clock::now() + 20s;
        long rounds = 0;
        while (!b_got.load()) {
          weft::yield();  // B runs now and finds the mutex held
          mu.unlock();
          mu.lock();      // barging: A keeps it in normal mode
          ++rounds;
          ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "B never got the mutex after " << rounds << " rounds";
        }
        mu.unlock();
        b.join();
        EXPECT_GE(b_waited_ns, 1'000'000) << "B got the lock before starving, in " << rounds << " rounds";
        EXPECT_GT(rounds, 1);
        std::printf("[ starve   ] B waited %.2f ms, %ld rounds\n", b_waited_ns / 1e6, rounds);
      },
      opts_with(1));
}

TEST(SyncDeath, UnlockOfAnUnlockedMutexIsFatal) {
  EXPECT_EXIT(
      {
        weft::run([] {
          weft::mutex mu;
          mu.unlock();
        });
      },
      ::testing::ExitedWithCode(2), "weft: fatal error: unlock of an unlocked weft::mutex");
}

// ---- condition_variable ---------------------------------------------------------------------

TEST_P(Sync, ConditionVariableProducerConsumer) {
  weft::run(
      [] {
        weft::mutex mu;
        weft::condition_variable not_empty, not_full;
        std::vector<int> q;
        constexpr std::size_t kMax = 4;
        constexpr int kN = 5000;
        auto producer = weft::spawn([&] {
          for (int i = 0; i < kN; ++i) {
            std::unique_lock<weft::mutex> l(mu);
            not_full.wait(l, [&] { return q.size() < kMax; });
            q.push_back(i);
            not_empty.notify_one();
          }
        });
        long sum = 0;
        std::thread consumer_thread([&] {
          for (int i = 0; i < kN / 2; ++i) {
            std::unique_lock<weft::mutex> l(mu);
            not_empty.wait(l, [&] { return !q.empty(); });
            sum += q.front();
            q.erase(q.begin());
            not_full.notify_one();
          }
        });
        long sum2 = 0;
        for (int i = 0; i < kN - kN / 2; ++i) {
          std::unique_lock<weft::mutex> l(mu);
          not_empty.wait(l, [&] { return !q.empty(); });
          sum2 += q.front();
          q.erase(q.begin());
          not_full.notify_one();
        }
        producer.join();
        consumer_thread.join();
        EXPECT_EQ(sum + sum2, long(kN) * (kN - 1) / 2);
      },
      opts());
}

TEST_P(Sync, NotifyOneWakesOneAndNotifyAllWakesTheRest) {
  weft::run(
      [] {
        weft::mutex mu;
        weft::condition_variable cv;
        int tokens = 0, woke = 0;
        constexpr int kN = 6;
        std::vector<weft::task<void>> ts;
        for (int i = 0; i < kN; ++i)
          ts.push_back(weft::spawn([&] {
            std::unique_lock<weft::mutex> l(mu);
            cv.wait(l, [&] { return tokens > 0; });
            --tokens;
            ++woke;
          }));
        wait_until([&] { return blocked_on(waiters_of(cv)) == kN; });
        {
          std::lock_guard<weft::mutex> l(mu);
          tokens = 1;
        }
        cv.notify_one();
        wait_until([&] {
          std::lock_guard<weft::mutex> l(mu);
          return woke == 1;
        });
        EXPECT_EQ(blocked_on(waiters_of(cv)), std::size_t(kN - 1));  // one left the queue
        {
          std::lock_guard<weft::mutex> l(mu);
          tokens = kN - 1;
        }
        cv.notify_all();
        for (auto& t : ts) t.join();
        EXPECT_EQ(woke, kN);
        EXPECT_EQ(blocked_on(waiters_of(cv)), 0u);
      },
      opts());
}

TEST_P(Sync, WaitForTimesOutNeverEarlyAndReturnsNoTimeoutWhenNotified) {
  weft::runtime rt(opts());
  auto check = [] {
    weft::mutex mu;
    weft::condition_variable cv;
    std::unique_lock<weft::mutex> l(mu);
    for (auto d : {1ms, 3ms}) {
      auto t0 = std::chrono::steady_clock::now();
      std::cv_status st = cv.wait_for(l, d);
      auto elapsed = std::chrono::steady_clock::now() - t0;
      EXPECT_EQ(st, std::cv_status::timeout);
      EXPECT_GE(elapsed, d);
      EXPECT_TRUE(l.owns_lock());
    }
    EXPECT_FALSE(cv.wait_for(l, 2ms, [] { return false; }));
    auto t0 = std::chrono::system_clock::now();
    EXPECT_EQ(cv.wait_until(l, t0 + 2ms), std::cv_status::timeout);
    EXPECT_GE(std::chrono::system_clock::now(), t0 + 2ms);
    EXPECT_EQ(blocked_on(waiters_of(cv)), 0u);  // timed-out waits left nothing queued
  };
  auto g = weft::spawn(check);
  std::thread th(check);
  g.join();
  th.join();

  weft::spawn([] {
    weft::mutex mu;
    weft::condition_variable cv;
    bool flag = false;
    std::unique_lock<weft::mutex> l(mu);
    auto notifier = weft::spawn([&] {
      std::lock_guard<weft::mutex> g(mu);
      flag = true;
      cv.notify_one();
    });
    EXPECT_TRUE(cv.wait_for(l, 1h, [&] { return flag; }));
    l.unlock();
    notifier.join();
  }).join();
}

// A notify_one is never spent on a waiter whose timer already claimed it.  Each round a short
// timed waiter (0–95 µs, racing the notify) and a patient one wait; one notify_one is made
// once the patient is queued.  If the short waiter reports "timeout", the notify must have
// reached the patient; if it reports "no_timeout", it took the notify, and a second one
// releases the patient.  A lost notify shows as the patient timing out (after 10 s).
TEST_P(Sync, NotifyIsNotSpentOnATimedOutWaiter) {
  weft::run(
      [] {
        weft::mutex mu;
        weft::condition_variable cv;
        for (int round = 0; round < 200; ++round) {
          bool patient_in = false;
          auto shortw = weft::spawn([&, round] {
            std::unique_lock<weft::mutex> l(mu);
            return cv.wait_for(l, std::chrono::microseconds(round % 20 * 5));
          });
          auto patient = weft::spawn([&] {
            std::unique_lock<weft::mutex> l(mu);
            patient_in = true;
            return cv.wait_for(l, 10s);
          });
          // Holding mu after patient_in was set means the patient has queued and released it.
          wait_until([&] {
            std::lock_guard<weft::mutex> l(mu);
            return patient_in;
          });
          cv.notify_one();
          if (shortw.join() == std::cv_status::no_timeout) cv.notify_one();
          EXPECT_EQ(patient.join(), std::cv_status::no_timeout) << "round " << round;
        }
      },
      opts());
}

TEST_P(Sync, WaitWithoutHoldingTheLockThrows) {
  weft::run(
      [] {
        weft::mutex mu;
        weft::condition_variable cv;
        std::unique_lock<weft::mutex> l(mu, std::defer_lock);
        EXPECT_THROW(cv.wait(l), std::system_error);
      },
      opts());
}

// ---- pins -----------------------------------------------------------------------------------

TEST_P(Sync, SyncObjectsOnAGoroutineStackPinItWhileTheyLive) {
  weft::run(
      [] {
        EXPECT_FALSE(weft::this_stack().pinned);
        {
          weft::wait_group wg;
          EXPECT_TRUE(weft::this_stack().pinned);
          {
            weft::mutex mu;
            weft::condition_variable cv;
            EXPECT_TRUE(weft::this_stack().pinned);
          }
          EXPECT_TRUE(weft::this_stack().pinned);
        }
        EXPECT_FALSE(weft::this_stack().pinned);
        // On the heap: no pin.  A chan handle never pins (its channel is on the heap).
        auto heap = std::make_unique<weft::mutex>();
        weft::chan<int> c(1);
        EXPECT_FALSE(weft::this_stack().pinned);
        // Blocked in a channel operation (or a join): block() pins the stack while parked and
        // unpins it when it resumes.  The parked goroutine cannot look at itself, and
        // this_stack() reports only the caller's stack, so what is asserted is the edges: no
        // pin before the child parks in recv (a chan handle does not pin), none left after it
        // resumes; the same for this goroutine after send (which parks if the child is not yet
        // waiting) and join.  (The child takes the handle by value: a closure holding a
        // pointer into this stack would pin it itself until the child has ended, which is
        // after join() returns.)
        weft::chan<int> ping;
        auto t = weft::spawn([ping]() mutable {
          weft::chan<int> local(0);
          (void)local;
          EXPECT_FALSE(weft::this_stack().pinned) << "before parking in recv";
          int v = *ping.recv();
          EXPECT_FALSE(weft::this_stack().pinned) << "after resuming from recv";
          return v;
        });
        ping.send(1);
        EXPECT_FALSE(weft::this_stack().pinned) << "after send";
        EXPECT_EQ(t.join(), 1);
        EXPECT_FALSE(weft::this_stack().pinned);
      },
      opts());
  // On a plain thread: nothing to pin, nothing breaks.
  weft::mutex mu;
  weft::wait_group wg;
  std::lock_guard<weft::mutex> l(mu);
  wg.wait();
}

INSTANTIATE_TEST_SUITE_P(Procs, Sync, ::testing::Values(1u, 2u, 4u),
                         [](const auto& info) { return "procs" + std::to_string(info.param); });

}  // namespace
