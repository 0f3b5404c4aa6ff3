// SPDX-License-Identifier: Apache-2.0
// run_threads.cpp — the workloads on kernel threads: glibc pthreads (default attributes: the
// baseline) and the kernel model's clone tasks (weft::kmodel::start_task, raw clone3).
//
// Shapes as in bench/sched_bench.cpp (BM_PthreadCreateJoin, BM_SchedYieldPingPong) and
// bench/kmodel_bench.cpp (kmodel_clone3_join), so the figures agree.  Clone tasks run with no
// TLS and must not call libc (clone.hpp): they park and yield with raw system calls.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench/compare/child.hpp"
#include "bench/compare/limits.hpp"
#include "bench/compare/measure.hpp"
#include "bench/compare/probe.hpp"
#include "bench/compare/recurse.hpp"
#include "bench/compare/run.hpp"
#include "weft/kmodel.hpp"

namespace weft_compare {

namespace km = weft::kmodel;

namespace {

// ---- raw system calls for clone tasks (no errno, no libc) ------------------------------------

#if defined(__x86_64__)
WEFT_KMODEL_TASK_FN inline long raw_syscall3(long nr, long a, long b, long c) noexcept {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}
constexpr bool have_raw_syscalls = true;
#elif defined(__aarch64__)
WEFT_KMODEL_TASK_FN inline long raw_syscall3(long nr, long a, long b, long c) noexcept {
  register long x8 asm("x8") = nr;
  register long x0 asm("x0") = a;
  register long x1 asm("x1") = b;
  register long x2 asm("x2") = c;
  asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
}
constexpr bool have_raw_syscalls = true;
#else
inline long raw_syscall3(long, long, long, long) noexcept { return -38; }
constexpr bool have_raw_syscalls = false;
#endif

// futex(word, FUTEX_WAIT_PRIVATE, val, NULL): sleeps while *word == val.  The fourth argument
// (the timeout, r10 / x3) must be NULL, so it is passed explicitly.
WEFT_KMODEL_TASK_FN inline void raw_futex_wait(std::atomic<int>* word, int val) noexcept {
#if defined(__x86_64__)
  long ret;
  register long r10 asm("r10") = 0;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(SYS_futex), "D"(word), "S"(FUTEX_WAIT_PRIVATE), "d"(val), "r"(r10)
               : "rcx", "r11", "memory");
  (void)ret;
#elif defined(__aarch64__)
  register long x8 asm("x8") = SYS_futex;
  register long x0 asm("x0") = reinterpret_cast<long>(word);
  register long x1 asm("x1") = FUTEX_WAIT_PRIVATE;
  register long x2 asm("x2") = val;
  register long x3 asm("x3") = 0;
  asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
#else
  (void)word, (void)val;
#endif
}

WEFT_KMODEL_TASK_FN inline void raw_sched_yield() noexcept { raw_syscall3(SYS_sched_yield, 0, 0, 0); }

void check_pthread(int rc, const char* what) {
  if (rc != 0) throw std::system_error(rc, std::generic_category(), what);
}

// ---- the task bodies ------------------------------------------------------------------------

struct shared_state {
  std::atomic<std::uint64_t> ran{0};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> partner_turns{0};
  std::atomic<int> release{0};  // parked tasks wait on this word
  std::atomic<std::uint64_t> parked{0};
  unsigned depth = 0;
  std::atomic<unsigned> sink{0};
};
shared_state st;

WEFT_KMODEL_TASK_FN void task_nothing(void* arg) noexcept {
  static_cast<shared_state*>(arg)->ran.fetch_add(1, std::memory_order_relaxed);
}
void* thread_nothing(void* arg) {
  task_nothing(arg);
  return nullptr;
}

WEFT_KMODEL_TASK_FN void task_yielder(void* arg) noexcept {
  auto* s = static_cast<shared_state*>(arg);
  while (!s->stop.load(std::memory_order_relaxed)) {
    s->partner_turns.fetch_add(1, std::memory_order_relaxed);
    raw_sched_yield();
  }
}
void* thread_yielder(void* arg) {
  auto* s = static_cast<shared_state*>(arg);
  while (!s->stop.load(std::memory_order_relaxed)) {
    s->partner_turns.fetch_add(1, std::memory_order_relaxed);
    sched_yield();
  }
  return nullptr;
}

WEFT_KMODEL_TASK_FN void task_recurse(void* arg) noexcept {
  auto* s = static_cast<shared_state*>(arg);
  s->sink.fetch_xor(recurse_plain(s->depth), std::memory_order_relaxed);
}
void* thread_recurse(void* arg) {
  task_recurse(arg);
  return nullptr;
}

WEFT_KMODEL_TASK_FN void task_park(void* arg) noexcept {
  auto* s = static_cast<shared_state*>(arg);
  s->parked.fetch_add(1, std::memory_order_relaxed);
  while (s->release.load(std::memory_order_acquire) == 0) raw_futex_wait(&s->release, 0);
}
void* thread_park(void* arg) {
  task_park(arg);
  return nullptr;
}

// ---- one interface over both kinds ----------------------------------------------------------

// Starts and joins tasks of one kind.  Clone tasks come from one model cache for the run.
class starter {
 public:
  explicit starter(system_id sys) : clone_(sys == system_id::clone) {
    if (clone_) {
      if (!have_raw_syscalls) throw std::runtime_error("not available: no raw system calls for this architecture");
      cache_ = std::make_unique<km::stack_cache>();
    }
  }
  struct handle {
    pthread_t thread{};
    km::task task;
  };
  handle start(km::task_fn tf, void* (*pf)(void*), void* arg) {
    handle h;
    if (clone_) h.task = km::start_task(*cache_, km::clone_call::clone3, tf, arg);
    else check_pthread(pthread_create(&h.thread, nullptr, pf, arg), "pthread_create");
    return h;
  }
  void join(handle& h) {
    if (clone_) h.task.join();
    else check_pthread(pthread_join(h.thread, nullptr), "pthread_join");
  }
  bool is_clone() const noexcept { return clone_; }
  km::stack_cache* cache() noexcept { return cache_.get(); }

 private:
  bool clone_;
  std::unique_ptr<km::stack_cache> cache_;
};

void spawn_workload(starter& s, const params& p) {
  const std::uint64_t n1 = param_u64(p, "n1", 1000), nb = param_u64(p, "nb", 3000);
  const std::uint64_t batch = param_u64(p, "batch", 1000), reps = param_u64(p, "reps", 3);
  std::vector<starter::handle> hs;
  hs.reserve(batch);
  auto batched = [&](std::uint64_t n) {
    for (std::uint64_t done = 0; done < n; done += batch) {
      for (std::uint64_t k = 0; k < batch; ++k) hs.push_back(s.start(task_nothing, thread_nothing, &st));
      for (auto& h : hs) s.join(h);
      hs.clear();
    }
  };
  // No warm-up: the first repetition is the single-run figure.  One at a time first: the
  // batches leave work behind (a thousand exited threads for the kernel to reap, unmapped
  // stacks) that slows what follows by 2-3x here.
  emit_cold_warm("spawn_one_ns", cold_then_reps_ns(reps, n1, [&] {
                   for (std::uint64_t i = 0; i < n1; ++i) {
                     starter::handle h = s.start(task_nothing, thread_nothing, &st);
                     s.join(h);
                   }
                 }));
  emit_cold_warm("spawn_batch_ns", cold_then_reps_ns(reps, nb, [&] { batched(nb); }));
}

// procs=P: the process (and the threads it starts, which inherit it) may use only the first P
// CPUs it was allowed, as weft's procs and GOMAXPROCS limit the others.  Returns the set.
cpu_set_t restrict_cpus(unsigned procs) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) throw std::system_error(errno, std::generic_category(), "sched_getaffinity");
  if (procs == 0) return allowed;
  cpu_set_t some;
  CPU_ZERO(&some);
  unsigned taken = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && taken < procs; ++cpu)
    if (CPU_ISSET(cpu, &allowed)) CPU_SET(cpu, &some), ++taken;
  if (sched_setaffinity(0, sizeof some, &some) != 0) throw std::system_error(errno, std::generic_category(), "sched_setaffinity");
  return some;
}

// Unbuffered channel ping-pong's thread baseline: two threads handing a token over two POSIX
// semaphores (bench/sync_bench.cpp's BM_PthreadSemPingPong).
struct sem_pair {
  sem_t ping, pong;
  std::atomic<bool> stop{false};
};
void* thread_echo(void* arg) {
  auto* q = static_cast<sem_pair*>(arg);
  for (;;) {
    while (sem_wait(&q->ping) != 0) {}
    if (q->stop.load(std::memory_order_relaxed)) return nullptr;
    sem_post(&q->pong);
  }
}

void chanpp_workload(system_id sys, const params& p) {
  if (sys != system_id::pthread) throw std::runtime_error("not available: " + not_applicable(sys, workload::chanpp));
  const std::uint64_t n = param_u64(p, "n", 20000), reps = param_u64(p, "reps", 3);
  sem_pair q;
  if (sem_init(&q.ping, 0, 0) != 0 || sem_init(&q.pong, 0, 0) != 0) throw std::system_error(errno, std::generic_category(), "sem_init");
  pthread_t echo;
  check_pthread(pthread_create(&echo, nullptr, thread_echo, &q), "pthread_create");
  emit_cold_warm("chanpp_ns", cold_then_reps_ns(reps, n, [&q, n] {
                   for (std::uint64_t i = 0; i < n; ++i) {
                     sem_post(&q.ping);
                     while (sem_wait(&q.pong) != 0) {}
                   }
                 }));
  q.stop.store(true);
  sem_post(&q.ping);
  check_pthread(pthread_join(echo, nullptr), "pthread_join");
}

// Both tasks on one CPU (the first this process may use), as BM_SchedYieldPingPong: each
// sched_yield hands the CPU to the other.  A clone task inherits the creator's affinity.
void pingpong_workload(starter& s, const params& p) {
  const std::uint64_t n = param_u64(p, "n", 50000), reps = param_u64(p, "reps", 3);
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) throw std::system_error(errno, std::generic_category(), "sched_getaffinity");
  int cpu = 0;
  while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &allowed)) ++cpu;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) throw std::system_error(errno, std::generic_category(), "sched_setaffinity");
  starter::handle h = s.start(task_yielder, thread_yielder, &st);
  if (!s.is_clone()) check_pthread(pthread_setaffinity_np(h.thread, sizeof one, &one), "pthread_setaffinity_np");
  sched_yield();
  emit_cold_warm("pingpong_ns", cold_then_reps_ns(reps, n, [n] {
                   for (std::uint64_t i = 0; i < n; ++i) sched_yield();
                 }));
  st.stop.store(true);
  s.join(h);
  emit_note("both tasks pinned to CPU " + std::to_string(cpu));
  if (st.partner_turns.load() < n * (reps + 1) / 2)
    emit_note("the partner ran " + with_commas(st.partner_turns.load()) + " times for " + with_commas(n * (reps + 1)) +
              " yields: the switches did not alternate (another process on that CPU?)");
}

void grow_workload(starter& s, const params& p) {
  st.depth = static_cast<unsigned>(param_u64(p, "depth", 4000));
  const std::uint64_t reps = param_u64(p, "reps", 15);
  const cold_and_warm g = cold_then_reps(reps, [&s] {
    starter::handle h = s.start(task_recurse, thread_recurse, &st);
    s.join(h);
  });
  emit("grow_us", g.cold_us);
  emit("grow_us_warm", median(g.warm_us));
  emit("grow_mean_us", mean(g.warm_us));
  emit("grow_cold_us", g.cold_us);
  emit("frame_bytes", static_cast<double>(frame_bytes_plain()));
}

void parked_workload(starter& s, const params& p) {
  std::size_t stack_size;
  km::guard_style guards;
  if (s.is_clone()) {
    stack_size = s.cache()->config().default_stack_size;
    guards = s.cache()->current_guard_style();
  } else {
    km::cache_config c = km::cache_config::for_this_process();  // this glibc, as the model sees it
    stack_size = km::observe_default_stack().stack_size;
    guards = c.guard;
  }
  thread_limits limits(stack_size, guards);
  emit("capacity_estimate", static_cast<double>(limits.predicted_threads()));
  emit_text("capacity_estimate", limits.prediction());
  // A limit of this process alone (its VMAs, its address space) can be run into without harm
  // to anyone else, so the probe goes there whatever its cap; the machine-wide ones (pid_max,
  // threads-max, memory) and the per-user RLIMIT_NPROC only when the caller lifts the cap.
  params q = p;
  const km::capacity_limit binding = limits.predicted();
  if (param_u64(p, "cap", 0) != 0 &&
      (binding == km::capacity_limit::max_map_count || binding == km::capacity_limit::address_space))
    q["cap"] = std::to_string(~std::uint64_t{0} >> 1);
  // The tasks are never joined: the child exits with them (and a joinable kmodel task's
  // destructor would wait for it), so the handles are leaked on purpose.
  auto* handles = new std::vector<starter::handle>();
  handles->reserve(1 << 16);
  parker k;
  k.start_one = [&s, handles] {
    try {
      handles->push_back(s.start(task_park, thread_park, &st));
      return std::string();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  };
  k.parked = [] { return st.parked.load(std::memory_order_relaxed); };
  k.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  k.diagnose = [&limits](std::uint64_t created, const std::string&) { return limits.diagnose(created); };
  k.check_every = 1000;
  parked_and_capacity(q, k);
}

}  // namespace

int run_thread_child(system_id sys, workload w, const params& p) {
  if (std::string why = not_applicable(sys, w); !why.empty()) throw std::runtime_error("not available: " + why);
  restrict_cpus(static_cast<unsigned>(param_u64(p, "procs", 0)));
  starter s(sys);
  switch (w) {
    case workload::spawn: spawn_workload(s, p); break;
    case workload::pingpong: pingpong_workload(s, p); break;
    case workload::chanpp: chanpp_workload(sys, p); break;
    case workload::burst:
    case workload::skynet:
    case workload::create: break;  // not applicable (above)
    case workload::grow: grow_workload(s, p); break;
    case workload::parked:
    case workload::capacity:
      parked_workload(s, p);
      std::fflush(stdout);
      std::_Exit(0);  // thousands of parked tasks end with the process
  }
  return 0;
}

}  // namespace weft_compare
