// SPDX-License-Identifier: Apache-2.0
// observe.cpp — the real system, measured, to put beside each model.
//
// Each measurement is an experiment the caller should not run on itself: replaying threads
// through glibc's cache needs a cache nobody else touches, recursing until SIGSEGV ends the
// process, and creating threads until pthread_create fails leaves nothing to create anything
// else with.  So each runs in a forked child (child.hpp run_for_report) that writes "key=value"
// lines to a pipe and exits; the parent has a deadline and kills a child that misses it, and
// the child's exit takes its threads, mappings and limits with it.
//
// What counts as the answer, per experiment:
//   default stack  pthread_getattr_default_np, in this process — glibc fixed it at start-up, so
//                  other limits need a process exec'd under them (the tests do that).
//   cache reuse    pthread_getattr_np of each new thread: stackaddr + stacksize is the end of
//                  the block, which stays put while a block is reused, and stacksize is the
//                  block size less the guard; the inaccessible VMA just below the stack is the
//                  guard as the kernel sees it.
//   main stack     the SIGSEGV address when a recursion runs off the stack's reach; the handler
//                  runs on a sigaltstack (the stack itself has no room left) and siglongjmps back.
//   capacity       the count when pthread_create fails, and which limit stopped it, by evidence:
//                  pthread_create says EAGAIN for all of them, so the child repeats its steps
//                  one at a time (mmap, the guard's mprotect split, a raw clone3) and the call
//                  that fails, with its errno, names the resource; counters at that moment only
//                  tell apart the limits that fail clone alike (threads-max, RLIMIT_NPROC, pid
//                  ids — in this namespace or, when it had room, an ancestor's).
//
// Rejected: running the experiments in threads of the caller (a SIGSEGV cannot be survived
// portably, and a thread flood starves the caller too); guessing the limit from
// pthread_create's errno (it is EAGAIN whether mmap, a split or clone failed); and naming it by
// running the estimate on the counters at failure — inside a pid namespace the counters cannot
// see the limit that ran out, and that answer only repeats the model's own blind spot.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csetjmp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/kmodel/child.hpp"
#include "runtime/kmodel/sys.hpp"
#include "weft/kmodel/clone.hpp"
#include "weft/kmodel/observe.hpp"

namespace weft::kmodel {
namespace {

// ---- the child's report ------------------------------------------------------------------

void put(std::string& out, const std::string& key, std::uint64_t v) {
  out += key;
  out += '=';
  out += std::to_string(v);
  out += '\n';
}

void put(std::string& out, const std::string& key, rlimit_value v) {
  out += key;
  out += '=';
  out += v ? std::to_string(*v) : std::string("unlimited");
  out += '\n';
}

using report = std::map<std::string, std::string, std::less<>>;

report parse_report(const std::string& text, const char* what) {
  report r;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.rfind("error: ", 0) == 0) detail::throw_errno(EIO, std::string("the ") + what + " child: " + line.substr(7));
    std::size_t eq = line.find('=');
    if (eq != std::string::npos) r[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return r;
}

const std::string& field(const report& r, const std::string& key) {
  auto it = r.find(key);
  if (it == r.end()) detail::throw_errno(EIO, "a kmodel child's report lacks '" + key + "'");
  return it->second;
}

std::uint64_t u64(const report& r, const std::string& key) { return std::strtoull(field(r, key).c_str(), nullptr, 10); }

rlimit_value rl(const report& r, const std::string& key) {
  const std::string& v = field(r, key);
  if (v == "unlimited") return std::nullopt;
  return std::strtoull(v.c_str(), nullptr, 10);
}

void put_snapshot(std::string& out, const std::string& p, const system_snapshot& s) {
  put(out, p + "max_map_count", s.max_map_count);
  put(out, p + "threads_max", s.threads_max);
  put(out, p + "pid_max", s.pid_max);
  put(out, p + "nr_threads", s.nr_threads);
  put(out, p + "pids_in_use", s.pids_in_use);
  put(out, p + "mem_available", s.mem_available);
  put(out, p + "overcommit_memory", static_cast<std::uint64_t>(s.overcommit_memory));
  put(out, p + "commit_limit", s.commit_limit);
  put(out, p + "committed_as", s.committed_as);
  put(out, p + "vma_count", s.vma_count);
  put(out, p + "vm_size", s.vm_size);
  put(out, p + "nproc_limit", s.nproc_limit);
  put(out, p + "nproc_enforced", static_cast<std::uint64_t>(s.nproc_enforced));
  put(out, p + "user_tasks", s.user_tasks);
  put(out, p + "as_limit", s.as_limit);
  put(out, p + "task_size", s.task_size);
  put(out, p + "init_pid_ns", static_cast<std::uint64_t>(s.init_pid_ns ? (*s.init_pid_ns ? 1 : 0) : 2));
  out += p + "pid_ns=" + s.pid_ns + "\n";
  put(out, p + "pid_ns_levels_seen", s.pid_ns_levels_seen);
  put(out, p + "possible_cpus", s.possible_cpus);
}

system_snapshot get_snapshot(const report& r, const std::string& p) {
  system_snapshot s;
  s.max_map_count = u64(r, p + "max_map_count");
  s.threads_max = u64(r, p + "threads_max");
  s.pid_max = u64(r, p + "pid_max");
  s.nr_threads = u64(r, p + "nr_threads");
  s.pids_in_use = u64(r, p + "pids_in_use");
  s.mem_available = u64(r, p + "mem_available");
  s.overcommit_memory = static_cast<int>(u64(r, p + "overcommit_memory"));
  s.commit_limit = u64(r, p + "commit_limit");
  s.committed_as = u64(r, p + "committed_as");
  s.vma_count = u64(r, p + "vma_count");
  s.vm_size = u64(r, p + "vm_size");
  s.nproc_limit = rl(r, p + "nproc_limit");
  s.nproc_enforced = u64(r, p + "nproc_enforced") != 0;
  s.user_tasks = u64(r, p + "user_tasks");
  s.as_limit = rl(r, p + "as_limit");
  s.task_size = u64(r, p + "task_size");
  const std::uint64_t init = u64(r, p + "init_pid_ns");
  if (init < 2) s.init_pid_ns = init == 1;
  s.pid_ns = field(r, p + "pid_ns");
  s.pid_ns_levels_seen = static_cast<unsigned>(u64(r, p + "pid_ns_levels_seen"));
  s.possible_cpus = static_cast<unsigned>(u64(r, p + "possible_cpus"));
  return s;
}

void put_inputs(std::string& out, const main_stack_inputs& in) {
  put(out, "rlimit_stack", in.rlimit_stack);
  put(out, "page_size", in.page_size);
  put(out, "stack_end", in.stack_end);
  put(out, "stack_start", in.stack_start);
  put(out, "below_end", in.below_end);
  put(out, "below_accessible", static_cast<std::uint64_t>(in.below_accessible));
  put(out, "guard_gap", in.guard_gap);
}

main_stack_inputs get_inputs(const report& r) {
  main_stack_inputs in;
  in.rlimit_stack = rl(r, "rlimit_stack");
  in.page_size = u64(r, "page_size");
  in.stack_end = u64(r, "stack_end");
  in.stack_start = u64(r, "stack_start");
  in.below_end = u64(r, "below_end");
  in.below_accessible = u64(r, "below_accessible") != 0;
  in.guard_gap = u64(r, "guard_gap");
  return in;
}

// ---- parked threads -----------------------------------------------------------------------

long futex(std::atomic<int>* word, int op, int val) {
  return ::syscall(SYS_futex, reinterpret_cast<int*>(word), op, val, nullptr, nullptr, 0);
}

// Waits until *gate is non-zero.
void park_on(std::atomic<int>* gate) {
  while (gate->load(std::memory_order_acquire) == 0) futex(gate, FUTEX_WAIT_PRIVATE, 0);
}

void* parked_thread(void* arg) {
  park_on(static_cast<std::atomic<int>*>(arg));
  return nullptr;
}

void open_gate(std::atomic<int>* gate) {
  gate->store(1, std::memory_order_release);
  futex(gate, FUTEX_WAKE_PRIVATE, 1 << 30);
}

// The length of inaccessible memory right below `addr` (a stack's low end), or 0.  A guard
// grown on reuse is two VMAs: the part mprotect'ed from read-write keeps VM_ACCOUNT and so does
// not merge with the part that was mapped PROT_NONE; both are the guard.
std::size_t guard_vma_below(std::uintptr_t addr) {
  const std::vector<mapping> maps = read_maps();
  std::size_t total = 0;
  for (std::size_t i = maps.size(); i-- > 0;) {
    const mapping& m = maps[i];
    if (m.end != addr || m.accessible()) continue;
    total += m.size();
    addr = m.start;
  }
  return total;
}

// ---- main-stack recursion -----------------------------------------------------------------

sigjmp_buf g_unwind;
volatile std::uintptr_t g_fault = 0;
volatile std::uint64_t g_frames = 0;
volatile bool g_keep_diving = true;

void on_segv(int, siginfo_t* info, void*) {
  g_fault = reinterpret_cast<std::uintptr_t>(info->si_addr);
  siglongjmp(g_unwind, 1);
}

// One 256-byte frame per call, until the stack runs out.  Not instrumented: sanitizer
// redzones and fake stacks would move the frames away from the stack being measured.
__attribute__((noinline, no_sanitize("address", "undefined"))) void dive(std::uint64_t depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  g_frames = depth;
  if (g_keep_diving) dive(depth + 1);
  frame[255] = frame[0];  // keeps the call from becoming a jump
}

// ---- why thread creation stopped --------------------------------------------------------

WEFT_KMODEL_TASK_FN void noop_task(void*) noexcept {}

// After pthread_create has failed, its steps one at a time, each with its own errno: the stack
// block's mmap, the mprotect that splits off the guard, and a raw clone3 of a task (on a small
// block of its own).  -1: not tried (an earlier step failed); 0: it worked.
struct failure_steps {
  int mmap = -1, mprotect = -1, clone = -1;
  std::string clone_what;
};

failure_steps retry_steps(std::size_t block, std::size_t guard, guard_style style) {
  failure_steps f;
  const int rw = PROT_READ | PROT_WRITE;
  const bool none_first = style == guard_style::mprotect && guard != 0;
  void* mem = ::mmap(nullptr, block, none_first ? PROT_NONE : rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  f.mmap = mem == MAP_FAILED ? errno : 0;
  if (f.mmap != 0) return f;
  f.mprotect = 0;
  if (none_first && ::mprotect(static_cast<char*>(mem) + guard, block - guard, rw) != 0) f.mprotect = errno;
  if (::munmap(mem, block) != 0) detail::throw_errno(errno, "munmap of the retried stack block");
  if (f.mprotect != 0) return f;
  try {
    cache_config cfg = cache_config::for_this_process();
    cfg.guard = guard_style::mprotect;
    stack_cache cache(cfg);
    task t = start_task(cache, clone_call::clone3, noop_task, nullptr, 64 * 1024);
    t.join();
    f.clone = 0;
  } catch (const std::system_error& e) {
    f.clone = e.code().value();
    f.clone_what = e.what();
  }
  return f;
}

std::string step_text(int err) {
  if (err < 0) return "not tried";
  if (err == 0) return "ok";
  const char* name = ::strerrorname_np(err);
  return name ? name : std::to_string(err);
}

}  // namespace

default_stack_observation observe_default_stack() {
  default_stack_observation o;
  const process_facts f = process_facts::probe();
  o.rlimit_stack = current_rlimit_stack();
  o.page_size = f.page_size;
  o.static_tls_size = f.static_tls_size;
  pthread_attr_t attr;
  if (int e = ::pthread_getattr_default_np(&attr); e != 0) detail::throw_errno(e, "pthread_getattr_default_np");
  ::pthread_attr_getstacksize(&attr, &o.stack_size);
  ::pthread_attr_getguardsize(&attr, &o.guard_size);
  ::pthread_attr_destroy(&attr);
  return o;
}

std::vector<pthread_observation> replay_on_pthreads(const std::vector<thread_op>& ops, std::chrono::seconds deadline) {
  unsigned slots = 0;
  {
    std::set<unsigned> busy;
    for (const thread_op& op : ops) {
      if (op.kind == thread_op::create && !busy.insert(op.slot).second)
        throw std::invalid_argument("weft: kmodel: replay creates into slot " + std::to_string(op.slot) + ", which is busy");
      if (op.kind == thread_op::join && busy.erase(op.slot) == 0)
        throw std::invalid_argument("weft: kmodel: replay joins slot " + std::to_string(op.slot) + ", which is empty");
      if (op.slot + 1 > slots) slots = op.slot + 1;
    }
  }
  const std::string text = detail::run_for_report("pthread replay", deadline, [&](int fd) {
    std::vector<pthread_t> threads(slots);
    std::vector<std::atomic<int>> gates(slots);
    std::vector<bool> live(slots, false);
    std::string out;
    for (const thread_op& op : ops) {
      if (op.kind == thread_op::join) {
        open_gate(&gates[op.slot]);
        if (int e = ::pthread_join(threads[op.slot], nullptr); e != 0) detail::throw_errno(e, "pthread_join");
        live[op.slot] = false;
        continue;
      }
      pthread_attr_t attr;
      ::pthread_attr_init(&attr);
      if (op.stack_size)
        if (int e = ::pthread_attr_setstacksize(&attr, op.stack_size); e != 0) detail::throw_errno(e, "pthread_attr_setstacksize");
      if (op.guard)
        if (int e = ::pthread_attr_setguardsize(&attr, *op.guard); e != 0) detail::throw_errno(e, "pthread_attr_setguardsize");
      gates[op.slot].store(0);
      // What was mapped before the create decides reuse: a new block lands where nothing was.
      const std::vector<mapping> before = read_maps();
      if (int e = ::pthread_create(&threads[op.slot], &attr, parked_thread, &gates[op.slot]); e != 0)
        detail::throw_errno(e, "pthread_create");
      ::pthread_attr_destroy(&attr);
      live[op.slot] = true;
      pthread_attr_t got;
      if (int e = ::pthread_getattr_np(threads[op.slot], &got); e != 0) detail::throw_errno(e, "pthread_getattr_np");
      void* low = nullptr;
      std::size_t size = 0;
      ::pthread_attr_getstack(&got, &low, &size);
      ::pthread_attr_destroy(&got);
      const auto lo = reinterpret_cast<std::uintptr_t>(low);
      bool was_mapped = false;
      for (const mapping& m : before) was_mapped |= m.start < lo + size && lo < m.end;
      out += "C " + std::to_string(op.slot) + " " + std::to_string(lo + size) + " " + std::to_string(size) + " " +
             std::to_string(guard_vma_below(lo)) + " " + (was_mapped ? "1" : "0") + "\n";
    }
    for (unsigned s = 0; s < slots; ++s) {
      if (!live[s]) continue;
      open_gate(&gates[s]);
      ::pthread_join(threads[s], nullptr);
    }
    detail::write_all(fd, out);
    return 0;
  });
  std::vector<pthread_observation> result;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.rfind("C ", 0) != 0) continue;
    pthread_observation o;
    unsigned long long slot = 0, end = 0, size = 0, guard = 0, reused = 0;
    if (std::sscanf(line.c_str(), "C %llu %llu %llu %llu %llu", &slot, &end, &size, &guard, &reused) != 5)
      detail::throw_errno(EIO, "the pthread replay child wrote a line that does not parse: " + line);
    o.slot = static_cast<unsigned>(slot);
    o.stack_end = static_cast<std::uintptr_t>(end);
    o.stack_size = static_cast<std::size_t>(size);
    o.guard_vma = static_cast<std::size_t>(guard);
    o.reused = reused != 0;
    result.push_back(o);
  }
  return result;
}

std::vector<model_step> replay_on_model(stack_cache& cache, const std::vector<thread_op>& ops) {
  std::map<unsigned, std::uint64_t> slot_block;
  std::vector<model_step> steps;
  for (const thread_op& op : ops) {
    if (op.kind == thread_op::join) {
      auto it = slot_block.find(op.slot);
      if (it == slot_block.end())
        throw std::invalid_argument("weft: kmodel: replay joins slot " + std::to_string(op.slot) + ", which is empty");
      cache.release(it->second);
      slot_block.erase(it);
      continue;
    }
    model_step s;
    s.slot = op.slot;
    for (const stack_block& b : cache.cached()) s.cached_before.push_back(b.id);
    allocation a = cache.allocate(op.stack_size, op.guard);
    s.hit = a.hit;
    s.block_id = a.block.id;
    s.reported_stack_size = a.reported_stack_size;
    s.guard = a.block.guard;
    slot_block[op.slot] = a.block.id;
    steps.push_back(std::move(s));
  }
  return steps;
}

static bool end_of_known(const std::map<std::uint64_t, std::uintptr_t>& end_of, std::uintptr_t end) {
  for (const auto& [id, e] : end_of)
    if (e == end) return true;
  return false;
}

std::vector<replay_verdict> compare_replay(const std::vector<model_step>& model,
                                           const std::vector<pthread_observation>& real) {
  std::vector<replay_verdict> out;
  std::map<std::uint64_t, std::uintptr_t> end_of;  // model block -> where glibc put it
  auto hex = [](std::uintptr_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%#lx", static_cast<unsigned long>(v));
    return std::string(buf);
  };
  for (std::size_t i = 0; i < model.size() || i < real.size(); ++i) {
    replay_verdict v;
    if (i >= model.size() || i >= real.size()) {
      v.match = false;
      v.why = "the model made " + std::to_string(model.size()) + " threads, glibc " + std::to_string(real.size());
      out.push_back(v);
      continue;
    }
    const model_step& m = model[i];
    const pthread_observation& r = real[i];
    std::string why;
    // Reuse or a new mapping, as the child's /proc/self/maps showed it: a model that says "new"
    // where glibc took a block it already had is wrong even at an address the model never held
    // (a forked child's cache starts with the stacks of its parent's other live threads).
    if (m.hit && !r.reused) {
      why = "the model reused block " + std::to_string(m.block_id) + "; glibc mapped a new block (ends at " +
            hex(r.stack_end) + ")";
    } else if (!m.hit && r.reused) {
      why = "the model mapped a new block; glibc reused one already mapped at " + hex(r.stack_end) +
            (end_of_known(end_of, r.stack_end) ? "" : ", which the model never had (inherited from the parent's live "
                                                       "threads, or an earlier join?)");
    }
    if (!why.empty()) {
      if (!m.hit) end_of[m.block_id] = r.stack_end;
    } else if (m.hit) {
      auto it = end_of.find(m.block_id);
      if (it == end_of.end()) {
        why = "the model reused block " + std::to_string(m.block_id) + ", which glibc never had";
      } else if (it->second != r.stack_end) {
        why = "the model reused block " + std::to_string(m.block_id) + " (ends at " + hex(it->second) +
              "); glibc's stack ends at " + hex(r.stack_end);
      }
    } else {
      for (std::uint64_t id : m.cached_before) {
        auto it = end_of.find(id);
        if (it != end_of.end() && it->second == r.stack_end)
          why = "the model mapped a new block; glibc reused block " + std::to_string(id) + " at " + hex(r.stack_end);
      }
      end_of[m.block_id] = r.stack_end;
    }
    if (why.empty() && m.reported_stack_size != r.stack_size)
      why = "stack size: model " + std::to_string(m.reported_stack_size) + ", glibc " + std::to_string(r.stack_size);
    if (why.empty() && m.guard != r.guard_vma)
      why = "guard: model " + std::to_string(m.guard) + ", kernel VMA " + std::to_string(r.guard_vma);
    v.match = why.empty();
    v.why = why;
    out.push_back(v);
  }
  return out;
}

main_stack_observation measure_main_stack(rlimit_value rlimit_stack, std::size_t obstacle_below,
                                          std::chrono::seconds deadline) {
  if (::gettid() != ::getpid())
    throw std::logic_error("weft: kmodel: measure_main_stack must run on the main thread (its stack is [stack])");
  {
    rlimit lim{};
    if (::getrlimit(RLIMIT_STACK, &lim) != 0) detail::throw_errno(errno, "getrlimit(RLIMIT_STACK)");
    const bool above = lim.rlim_max != RLIM_INFINITY && (!rlimit_stack || *rlimit_stack > lim.rlim_max);
    if (above)
      throw std::invalid_argument("weft: kmodel: cannot measure the main stack under RLIMIT_STACK " +
                                  size_text(rlimit_stack) + ": the hard limit here is " +
                                  size_text(static_cast<std::uint64_t>(lim.rlim_max)) +
                                  "; the child sets the soft limit only (ulimit -Hs)");
  }
  main_stack_inputs guess = current_main_stack_inputs();
  guess.rlimit_stack = rlimit_stack;
  std::uintptr_t obstacle = 0;
  if (obstacle_below) {
    obstacle = detail::round_down(guess.stack_end - obstacle_below, guess.page_size);
    if (obstacle >= guess.stack_start)
      throw std::invalid_argument("weft: kmodel: the obstacle would sit inside the current [stack] VMA");
    guess.below_end = obstacle + guess.page_size;
    guess.below_accessible = true;
  }
  const main_stack_prediction p = predict_main_stack(guess);
  if (p.max_size > (std::size_t{256} << 20))
    throw std::invalid_argument("weft: kmodel: the main stack could grow to " + size_text(p.max_size) +
                                " under RLIMIT_STACK " + size_text(rlimit_stack) +
                                "; measuring that would touch too much memory (limit 256 MiB)");

  const std::string text = detail::run_for_report("main-stack recursion", deadline, [&](int fd) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_STACK, &lim) != 0) detail::throw_errno(errno, "getrlimit(RLIMIT_STACK)");
    lim.rlim_cur = rlimit_stack ? static_cast<rlim_t>(*rlimit_stack) : RLIM_INFINITY;
    if (::setrlimit(RLIMIT_STACK, &lim) != 0)
      detail::throw_errno(errno, "setrlimit(RLIMIT_STACK, " + size_text(rlimit_stack) + ") (above the hard limit?)");
    if (obstacle) {
      void* at = ::mmap(reinterpret_cast<void*>(obstacle), guess.page_size, PROT_READ,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (at == MAP_FAILED) detail::throw_errno(errno, "mmap of the obstacle page below [stack]");
      if (at != reinterpret_cast<void*>(obstacle)) detail::throw_errno(EEXIST, "the obstacle page landed elsewhere");
    }
    std::string out;
    put_inputs(out, current_main_stack_inputs());
    void* alt = ::mmap(nullptr, 256 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (alt == MAP_FAILED) detail::throw_errno(errno, "mmap of a signal stack");
    stack_t ss{};
    ss.ss_sp = alt;
    ss.ss_size = 256 * 1024;
    if (::sigaltstack(&ss, nullptr) != 0) detail::throw_errno(errno, "sigaltstack");
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGSEGV, &sa, nullptr) != 0) detail::throw_errno(errno, "sigaction(SIGSEGV)");
    if (sigsetjmp(g_unwind, 1) == 0) dive(0);
    put(out, "fault", static_cast<std::uint64_t>(g_fault));
    put(out, "frames", static_cast<std::uint64_t>(g_frames));
    detail::write_all(fd, out);
    return 0;
  });
  const report r = parse_report(text, "main-stack recursion");
  main_stack_observation o;
  o.inputs = get_inputs(r);
  o.fault_address = u64(r, "fault");
  o.frames = u64(r, "frames");
  o.lowest = detail::round_down(o.fault_address, o.inputs.page_size) + o.inputs.page_size;
  o.reached = o.inputs.stack_end > o.lowest ? o.inputs.stack_end - o.lowest : 0;
  return o;
}

std::size_t measure_start_threshold(const std::string& path, const std::vector<std::string>& args,
                                    std::chrono::seconds deadline) {
  const std::size_t page = process_facts::probe().page_size;
  rlimit hard{};
  if (::getrlimit(RLIMIT_STACK, &hard) != 0) detail::throw_errno(errno, "getrlimit(RLIMIT_STACK)");
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (std::size_t limit = page; limit <= 256 * 1024; limit += page) {
    if (hard.rlim_max != RLIM_INFINITY && limit > hard.rlim_max)
      throw std::invalid_argument("weft: kmodel: " + path + " did not start under any RLIMIT_STACK up to the hard limit " +
                                  size_text(static_cast<std::uint64_t>(hard.rlim_max)));
    const std::string text = detail::run_for_report("start-threshold", deadline, [&](int fd) {
      if (::personality(ADDR_NO_RANDOMIZE) == -1) detail::throw_errno(errno, "personality(ADDR_NO_RANDOMIZE)");
      rlimit rl = hard;
      rl.rlim_cur = static_cast<rlim_t>(limit);
      if (::setrlimit(RLIMIT_STACK, &rl) != 0) detail::throw_errno(errno, "setrlimit(RLIMIT_STACK)");
      const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
      if (null < 0 || ::dup2(null, 1) < 0 || ::dup2(null, 2) < 0) detail::throw_errno(errno, "redirecting to /dev/null");
      detail::write_all(fd, "exec\n");  // what follows is the program's, not ours
      // The pipe is close-on-exec: the parent's read ends when exec succeeds or the child dies.
      const pid_t pid = ::fork();
      if (pid < 0) detail::throw_errno(errno, "fork for the start-threshold try");
      if (pid == 0) {
        ::execve(argv[0], argv.data(), environ);
        ::_exit(127);
      }
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) detail::throw_errno(errno, "waitpid for the start-threshold try");
      const std::string verdict = WIFEXITED(status) ? "exit=" + std::to_string(WEXITSTATUS(status)) + "\n"
                                                    : "signal=" + std::to_string(WTERMSIG(status)) + "\n";
      detail::write_all(fd, verdict);
      return 0;
    });
    const report r = parse_report(text, "start-threshold");
    if (r.count("exit") && r.at("exit") == "127") throw std::invalid_argument("weft: kmodel: cannot execute " + path);
    if (r.count("exit") && r.at("exit") == "0") return limit;
  }
  throw std::invalid_argument("weft: kmodel: " + path + " did not start under any RLIMIT_STACK up to 256 KiB");
}

capacity_observation measure_thread_capacity(const capacity_options& opts) {
  const process_facts facts = process_facts::probe();
  const guard_style style =
      facts.glibc_uses_guard_install() && facts.kernel_guard_install ? guard_style::madvise : guard_style::mprotect;
  const std::string text = detail::run_for_report("thread capacity", opts.deadline, [&](int fd) {
    // Belt and braces: the parent kills us at the deadline; this stops us if it cannot.
    ::alarm(static_cast<unsigned>(opts.deadline.count()) + 5);
    if (opts.nproc) {
      rlimit lim{};
      if (::getrlimit(RLIMIT_NPROC, &lim) != 0) detail::throw_errno(errno, "getrlimit(RLIMIT_NPROC)");
      lim.rlim_cur = static_cast<rlim_t>(*opts.nproc);
      if (lim.rlim_max != RLIM_INFINITY && lim.rlim_cur > lim.rlim_max) lim.rlim_cur = lim.rlim_max;
      if (::setrlimit(RLIMIT_NPROC, &lim) != 0) detail::throw_errno(errno, "setrlimit(RLIMIT_NPROC)");
    }
    if (opts.run_as && ::getuid() == 0) {
      const auto id = static_cast<uid_t>(*opts.run_as);
      if (::setgroups(0, nullptr) != 0) detail::throw_errno(errno, "setgroups");
      if (::setgid(id) != 0) detail::throw_errno(errno, "setgid");
      if (::setuid(id) != 0) detail::throw_errno(errno, "setuid");
      ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);  // keep /proc/self readable as ourselves
    }
    const std::size_t page = facts.page_size;
    if (opts.extra_vmas) {
      // Alternate protections split one mapping into extra_vmas VMAs.
      void* p = ::mmap(nullptr, opts.extra_vmas * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) detail::throw_errno(errno, "mmap for the extra VMAs");
      for (std::size_t i = 1; i < opts.extra_vmas; i += 2)
        if (::mprotect(static_cast<char*>(p) + i * page, page, PROT_NONE) != 0)
          detail::throw_errno(errno, "mprotect splitting the extra VMAs");
    }
    pthread_attr_t attr;
    ::pthread_attr_init(&attr);
    std::size_t stack_size = opts.stack_size;
    if (stack_size) {
      if (int e = ::pthread_attr_setstacksize(&attr, stack_size); e != 0) detail::throw_errno(e, "pthread_attr_setstacksize");
    } else {
      pthread_attr_t def;
      if (int e = ::pthread_getattr_default_np(&def); e != 0) detail::throw_errno(e, "pthread_getattr_default_np");
      ::pthread_attr_getstacksize(&def, &stack_size);
      ::pthread_attr_destroy(&def);
    }
    static std::atomic<int> gate{0};
    std::string out;
    put(out, "stack_size", stack_size);
    put_snapshot(out, "before.", take_snapshot());
    detail::write_all(fd, out);  // the report so far survives whatever comes next
    out.clear();
    const auto t0 = std::chrono::steady_clock::now();
    std::uint64_t created = 0;
    int err = 0;
    for (;;) {
      pthread_t t;
      err = ::pthread_create(&t, &attr, parked_thread, &gate);
      if (err != 0) break;
      ++created;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    put(out, "created", created);
    put(out, "error", static_cast<std::uint64_t>(err));
    put(out, "milliseconds", static_cast<std::uint64_t>(seconds * 1000));
    put_snapshot(out, "after.", take_snapshot());
    const std::size_t guard = page;
    const failure_steps f = retry_steps(detail::round_up(stack_size, page) + guard, guard, style);
    out += "step.mmap=" + std::to_string(f.mmap) + "\nstep.mprotect=" + std::to_string(f.mprotect) +
           "\nstep.clone=" + std::to_string(f.clone) + "\n";
    detail::write_all(fd, out);
    return 0;  // _exit takes every parked thread with it
  });
  const report r = parse_report(text, "thread capacity");
  capacity_observation o;
  o.before = get_snapshot(r, "before.");
  o.at_failure = get_snapshot(r, "after.");
  const std::size_t stack_size = static_cast<std::size_t>(u64(r, "stack_size"));
  o.estimate = estimate_capacity(o.before, stack_size, style, 4096, facts.page_size);
  o.created = u64(r, "created");
  o.error = static_cast<int>(u64(r, "error"));
  o.seconds = static_cast<double>(u64(r, "milliseconds")) / 1000.0;

  // Which limit stopped us, by evidence: pthread_create says EAGAIN for all of them, so the
  // child repeated its steps one by one (retry_steps) and the first that failed, with its
  // errno, says which resource it was; the counters at that moment only tell apart the limits
  // that fail the same call the same way (clone's EAGAIN: threads-max, RLIMIT_NPROC, pid ids).
  const system_snapshot& a = o.at_failure;
  o.steps.mmap = static_cast<int>(std::strtol(field(r, "step.mmap").c_str(), nullptr, 10));
  o.steps.mprotect = static_cast<int>(std::strtol(field(r, "step.mprotect").c_str(), nullptr, 10));
  o.steps.clone = static_cast<int>(std::strtol(field(r, "step.clone").c_str(), nullptr, 10));
  const std::uint64_t slack = 16 + o.created / 100;  // machine-wide counts move while we look
  const std::uint64_t ns_range = a.pid_max > reserved_pids ? a.pid_max - reserved_pids : a.pid_max;
  std::string ev = "pthread_create " + step_text(o.error) + " after " + std::to_string(o.created) +
                   " threads; retried alone: mmap of the stack block " + step_text(o.steps.mmap) +
                   ", mprotect of its guard split " + step_text(o.steps.mprotect) + ", clone3 of a task " +
                   step_text(o.steps.clone) + "; at failure: VMAs " + std::to_string(a.vma_count) + "/" +
                   std::to_string(a.max_map_count) + ", tasks " + std::to_string(a.nr_threads) + "/" +
                   std::to_string(a.threads_max) + ", task ids in use " + std::to_string(a.pids_in_use) + " of " +
                   std::to_string(ns_range) + (a.init_pid_ns == true ? "" : " in this pid namespace (" + a.pid_ns + ")");
  if (a.nproc_enforced && a.nproc_limit)
    ev += ", this user's tasks " + std::to_string(a.user_tasks) + "/" + std::to_string(*a.nproc_limit);
  auto decide = [&](capacity_limit l, const std::string& why) {
    o.observed = l;
    o.evidence = ev + ": " + why;
  };
  if (o.steps.mmap > 0 || o.steps.mprotect > 0) {
    const bool split = o.steps.mmap == 0;
    const int e = split ? o.steps.mprotect : o.steps.mmap;
    const std::string call = split ? "the guard split" : "the mmap";
    if (e == ENOMEM && a.vma_count + (split ? 2 : 1) > a.max_map_count) {
      decide(capacity_limit::max_map_count, call + " needs a VMA and the process has " + std::to_string(a.vma_count));
    } else if (a.as_limit && a.vm_size + detail::round_up(stack_size, facts.page_size) >= *a.as_limit) {
      decide(capacity_limit::address_space, call + " failed with RLIMIT_AS reached");
    } else if (a.overcommit_memory == 2) {
      decide(capacity_limit::commit_limit, call + " failed under vm.overcommit_memory=2");
    } else {
      decide(capacity_limit::memory, call + " failed with mappings to spare");
    }
  } else if (o.steps.clone > 0) {
    if (o.steps.clone != EAGAIN) {
      decide(capacity_limit::memory, "clone3 failed with " + step_text(o.steps.clone) + " (kernel memory)");
    } else if (a.nr_threads + slack >= a.threads_max) {
      decide(capacity_limit::threads_max, "clone3 EAGAIN with the machine's tasks at kernel.threads-max");
    } else if (a.nproc_enforced && a.nproc_limit && a.user_tasks + slack >= *a.nproc_limit) {
      decide(capacity_limit::rlimit_nproc, "clone3 EAGAIN with this user's tasks at RLIMIT_NPROC");
    } else if (a.pids_in_use + slack >= ns_range) {
      decide(capacity_limit::pid_max, "clone3 EAGAIN with this namespace's task ids used up");
    } else if (a.init_pid_ns != true) {
      decide(capacity_limit::ancestor_pid_max,
             "clone3 EAGAIN while this pid namespace, threads-max and RLIMIT_NPROC all had room: an ancestor "
             "namespace ran out of task ids");
    } else {
      decide(capacity_limit::pid_max,
             "clone3 EAGAIN while threads-max and RLIMIT_NPROC had room: task ids, counted short (ids held "
             "by tasks /proc does not list)");
    }
  } else {
    // Every step worked when repeated: whatever ran out was freed meanwhile (another process
    // exited).  Fall back to the counters: the tightest task limit, if it was nearly used up.
    const capacity_estimate left = estimate_capacity(a, stack_size, style, 4096, facts.page_size);
    capacity_limit best = capacity_limit::memory;
    std::uint64_t best_left = ~std::uint64_t{0};
    for (const capacity_row& row : left.rows) {
      const bool task_limit = row.limit == capacity_limit::pid_max || row.limit == capacity_limit::threads_max ||
                              row.limit == capacity_limit::rlimit_nproc || row.limit == capacity_limit::ancestor_pid_max;
      if (task_limit && row.threads < best_left) {
        best = row.limit;
        best_left = row.threads;
      }
    }
    if (best_left > slack) best = capacity_limit::memory;
    decide(best, "not reproduced (every step worked when retried); judged from the counters alone");
  }
  return o;
}

}  // namespace weft::kmodel
