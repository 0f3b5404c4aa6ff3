// SPDX-License-Identifier: Apache-2.0
// run_fiber.cpp — the workloads on Boost.Fiber (the boost-fiber column, issue 21): the C++ peer
// a user choosing a runtime compares against first.
//
// Set up as its documentation describes a multi-threaded program ("Scheduling", "work_stealing"
// in libs/fiber/doc): every one of `procs` threads — this child's main thread and procs - 1
// helpers — installs algo::work_stealing(procs), whose constructor waits for all of them; a
// helper's main fiber then blocks on a fiber condition variable so its dispatcher runs whatever
// it steals.  Idle threads spin looking for work (work_stealing's default, suspend = false).
// The work_stealing algorithm keeps its schedulers in process-wide statics, one pool per
// process: every child is a fresh process, so that is no constraint here, and the children
// end with _Exit without tearing the pool down.
//
// Stacks: boost::fibers::fixedsize_stack of 16 KiB (malloc'd, no guard page) for every fiber
// that ends, as the skynet programs in Boost.Fiber's performance tests use small fixed stacks;
// the parked rows use pooled_fixedsize_stack(16 KiB) (never freed there, so its pool, which is
// not thread-safe, is only touched by the creating thread).  protected_fixedsize_stack (mmap
// plus an mprotect guard: two VMAs a fiber) stops at vm.max_map_count, about 32K fibers, like
// pthreads.
//
// Two parameters exist only for runs by hand (weft-compare --child-run boost-fiber skynet ...),
// for BENCHMARKS.md: dispatch=1 starts fibers with launch::dispatch, as Boost.Fiber's own skynet
// examples do, and pool=1 (procs 1 only, where one thread makes and frees every stack) takes
// stacks from a pooled_fixedsize_stack.
//
// Built only when Boost.Fiber was found at configure time (WEFT_COMPARE_BOOST_FIBER); otherwise
// the column is absent and have_boost_fiber() says why.
#include <string>

#include "bench/compare/child.hpp"
#include "bench/compare/run.hpp"
#include "bench/compare/systems.hpp"

#if WEFT_COMPARE_BOOST_FIBER

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <boost/fiber/all.hpp>
#include <boost/version.hpp>

#include "bench/compare/limits.hpp"
#include "bench/compare/measure.hpp"
#include "bench/compare/probe.hpp"

namespace weft_compare {

bool have_boost_fiber() { return true; }
const char* boost_fiber_absent_reason() { return ""; }
std::string boost_fiber_version() {
  return std::to_string(BOOST_VERSION / 100000) + "." + std::to_string(BOOST_VERSION / 100 % 1000);
}

namespace {

namespace bf = boost::fibers;

constexpr std::size_t kStack = 16 * 1024;

// Starts procs - 1 helper threads and installs work_stealing on all of them and on the caller.
// The helpers serve fibers until the process ends.
void start_pool(unsigned procs) {
  if (procs == 0) procs = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 1; i < procs; ++i) {
    std::thread([procs] {
      bf::use_scheduling_algorithm<bf::algo::work_stealing>(procs);
      bf::mutex m;
      bf::condition_variable cv;
      std::unique_lock<bf::mutex> lk(m);
      cv.wait(lk, [] { return false; });  // never: this thread's dispatcher runs stolen fibers
    }).detach();
  }
  bf::use_scheduling_algorithm<bf::algo::work_stealing>(procs);
}

// Go's sync.WaitGroup, from a fiber mutex and condition variable (Boost.Fiber has none).
class wait_group {
 public:
  void add(long n) {
    std::lock_guard<bf::mutex> lk(m_);
    n_ += n;
  }
  void done() {
    std::lock_guard<bf::mutex> lk(m_);
    if (--n_ == 0) cv_.notify_all();
  }
  void wait() {
    std::unique_lock<bf::mutex> lk(m_);
    cv_.wait(lk, [this] { return n_ == 0; });
  }

 private:
  bf::mutex m_;
  bf::condition_variable cv_;
  long n_ = 0;
};

// launch::post (the default: the new fiber is queued, as `go` queues a goroutine) unless a
// child is run by hand with dispatch=1 (the new fiber runs at once, as Boost.Fiber's own skynet
// examples start theirs; not a column of the report, a figure for BENCHMARKS.md).
bf::launch launch_policy = bf::launch::post;

bf::pooled_fixedsize_stack* one_thread_pool;  // pool=1 by hand at procs 1: a figure for BENCHMARKS.md

template <class Fn>
bf::fiber make_fiber(Fn&& fn) {
  if (one_thread_pool) return bf::fiber(launch_policy, std::allocator_arg, *one_thread_pool, std::forward<Fn>(fn));
  return bf::fiber(launch_policy, std::allocator_arg, bf::fixedsize_stack(kStack), std::forward<Fn>(fn));
}

void spawn_workload(const params& p) {
  const std::uint64_t n1 = param_u64(p, "n1", 20000), nb = param_u64(p, "nb", 50000);
  const std::uint64_t batch = param_u64(p, "batch", 1000), reps = param_u64(p, "reps", 3);
  std::vector<bf::fiber> fs;
  fs.reserve(batch);
  auto batched = [&](std::uint64_t n) {
    for (std::uint64_t done = 0; done < n; done += batch) {
      for (std::uint64_t k = 0; k < batch; ++k) fs.push_back(make_fiber([] {}));
      for (auto& f : fs) f.join();
      fs.clear();
    }
  };
  // One at a time first, then the batches, as every column does; no warm-up: the first
  // repetition is the single-run figure.
  emit_cold_warm("spawn_one_ns", cold_then_reps_ns(reps, n1, [n1] {
                   for (std::uint64_t i = 0; i < n1; ++i) make_fiber([] {}).join();
                 }));
  emit_cold_warm("spawn_batch_ns", cold_then_reps_ns(reps, nb, [&] { batched(nb); }));
}

void burst_workload(const params& p) {
  const std::uint64_t n = param_u64(p, "n", 200000), reps = param_u64(p, "reps", 1);
  emit_cold_warm("burst_ns", cold_then_reps_ns(reps, n, [n] {
                   wait_group wg;
                   wg.add(static_cast<long>(n));
                   for (std::uint64_t i = 0; i < n; ++i) make_fiber([&wg] { wg.done(); }).detach();
                   wg.wait();
                 }));
}

void pingpong_workload(const params& p) {
  const std::uint64_t n = param_u64(p, "n", 500000), reps = param_u64(p, "reps", 3);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> partner_turns{0};
  bf::fiber partner = make_fiber([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      partner_turns.fetch_add(1, std::memory_order_relaxed);
      boost::this_fiber::yield();
    }
  });
  boost::this_fiber::yield();  // let the partner start
  emit_cold_warm("pingpong_ns", cold_then_reps_ns(reps, n, [n] {
                   for (std::uint64_t i = 0; i < n; ++i) boost::this_fiber::yield();
                 }));
  stop.store(true);
  partner.join();
  if (partner_turns.load() < n * (reps + 1) / 2)
    emit_note("the partner ran " + with_commas(partner_turns.load()) + " times for " + with_commas(n * (reps + 1)) +
              " yields: the switches did not alternate");
}

void chanpp_workload(const params& p) {
  const std::uint64_t n = param_u64(p, "n", 200000), reps = param_u64(p, "reps", 3);
  bf::unbuffered_channel<int> ping, pong;
  bf::fiber echo = make_fiber([&] {
    int v;
    while (ping.pop(v) == bf::channel_op_status::success) pong.push(v);
  });
  emit_cold_warm("chanpp_ns", cold_then_reps_ns(reps, n, [&] {
                   int v = 0;
                   for (std::uint64_t i = 0; i < n; ++i) {
                     ping.push(1);
                     pong.pop(v);
                   }
                 }));
  ping.close();
  echo.join();
}

// skynet (https://github.com/atemerev/skynet), the shape of bench/go/skynet.go.  A node's
// channel is shared with its children: a child may still be inside push() after its parent's
// last pop() returned, so the channel must outlive the node's frame.
using skynet_chan = bf::unbuffered_channel<long>;
void skynet(std::shared_ptr<skynet_chan> c, long num, long size, long div) {
  if (size == 1) {
    c->push(num);
    return;
  }
  auto rc = std::make_shared<skynet_chan>();
  for (long i = 0; i < div; ++i)
    make_fiber([rc, num, size, div, i] { skynet(rc, num + i * (size / div), size / div, div); }).detach();
  long sum = 0;
  for (long i = 0; i < div; ++i) sum += rc->value_pop();
  c->push(sum);
}

void skynet_workload(const params& p) {
  const long leaves = static_cast<long>(param_u64(p, "leaves", 1000000));
  const std::uint64_t reps = param_u64(p, "reps", 1);
  const long want = leaves * (leaves - 1) / 2;
  long got = 0;
  const cold_and_warm t = cold_then_reps(reps, [&] {
    auto c = std::make_shared<skynet_chan>();
    make_fiber([c, leaves] { skynet(c, 0, leaves, 10); }).detach();
    got = c->value_pop();
  });
  if (got != want) throw std::runtime_error("skynet summed " + std::to_string(got) + ", not " + std::to_string(want));
  emit("skynet_us", t.cold_us);
  if (!t.warm_us.empty()) emit("skynet_us_warm", median(t.warm_us));
}

// Tasks that park on a channel nobody sends on, and the count of those that reached it.
bf::buffered_channel<int>* park_chan;
std::atomic<std::uint64_t> parked_count{0};

void create_workload(const params& p) {
  const std::uint64_t n = param_u64(p, "n", 100000);
  park_chan = new bf::buffered_channel<int>(2);
  wait_group started;
  started.add(static_cast<long>(n));
  const steady::time_point t = steady::now();
  for (std::uint64_t i = 0; i < n; ++i)
    make_fiber([&started] {
      started.done();
      int v;
      park_chan->pop(v);
    }).detach();
  started.wait();
  emit("create_ns", ns_per(t, n));
}

void parked_workload(const params& p) {
  park_chan = new bf::buffered_channel<int>(2);
  auto* pool = new bf::pooled_fixedsize_stack(kStack);
  parker k;
  k.start_one = [pool] {
    try {
      bf::fiber(std::allocator_arg, *pool, [] {
        parked_count.fetch_add(1, std::memory_order_relaxed);
        int v;
        park_chan->pop(v);
      }).detach();
      return std::string();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  };
  k.parked = [] { return parked_count.load(std::memory_order_relaxed); };
  k.sleep = [](std::chrono::milliseconds d) { boost::this_fiber::sleep_for(d); };
  k.diagnose = [](std::uint64_t, const std::string& error) { return "creating a fiber threw: " + error; };
  k.check_every = 10000;
  parked_and_capacity(p, k);
}

}  // namespace

int run_fiber_child(workload w, const params& p) {
  if (std::string why = not_applicable(system_id::boost_fiber, w); !why.empty())
    throw std::runtime_error("not available: " + why);
  unsigned procs = static_cast<unsigned>(param_u64(p, "procs", 0));
  if (w == workload::pingpong) procs = 1;  // both fibers on one thread, as every column
  if (param_u64(p, "dispatch", 0)) launch_policy = bf::launch::dispatch;
  if (param_u64(p, "pool", 0) && procs == 1) one_thread_pool = new bf::pooled_fixedsize_stack(kStack);
  start_pool(procs);
  switch (w) {
    case workload::spawn: spawn_workload(p); break;
    case workload::burst: burst_workload(p); break;
    case workload::pingpong: pingpong_workload(p); break;
    case workload::chanpp: chanpp_workload(p); break;
    case workload::skynet: skynet_workload(p); break;
    case workload::create: create_workload(p); break;
    case workload::parked:
    case workload::capacity: parked_workload(p); break;
    case workload::grow: break;  // not applicable (above)
  }
  // Neither the helpers nor the parked fibers are ever stopped: the process ends with them.
  std::fflush(stdout);
  std::_Exit(0);
}

}  // namespace weft_compare

#else  // !WEFT_COMPARE_BOOST_FIBER

#include <stdexcept>

namespace weft_compare {

bool have_boost_fiber() { return false; }
const char* boost_fiber_absent_reason() {
  return "Boost.Fiber (Debian libboost-fiber-dev) was not found when weft-compare was configured; "
         "install it (.ci/deps does) and configure again";
}
std::string boost_fiber_version() { return {}; }
int run_fiber_child(workload, const params&) { throw std::runtime_error(std::string("not available: ") + boost_fiber_absent_reason()); }

}  // namespace weft_compare

#endif
