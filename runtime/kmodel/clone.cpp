// SPDX-License-Identifier: Apache-2.0
// clone.cpp — kernel tasks on model stacks: what pthread_create does, minus the C library.
//
// What it mirrors.  glibc's create_thread (nptl/pthread_create.c) asks the kernel for a task
// that shares everything with its creator —
//     CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SYSVSEM | CLONE_SIGHAND | CLONE_THREAD |
//     CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID
// — through clone3 since 2.34 (sysdeps/unix/sysv/linux/clone-internal.c), falling back to
// clone when the kernel says ENOSYS.  clone3 takes the stack as its lowest address and its size
// (glibc passes the block start, guard included, and the distance to the stack top); clone
// takes the top.  Both the tid words point at one field of the descriptor at the top of the
// block: the kernel writes the tid there before clone returns (CLONE_PARENT_SETTID), and when
// the task exits it writes 0 and does FUTEX_WAKE on it (kernel/fork.c mm_release; a shared,
// not private, futex).  pthread_join waits on exactly that word (nptl/pthread_join_common.c),
// and so does task::join.  Only then is the stack free, so only then does it go back to the
// cache, with the DONTNEED advice start_thread would have given (stack_cache.cpp).
//
// What it leaves out: CLONE_SETTLS.  We build no TLS block and no struct pthread, so the task
// keeps its creator's %fs.  That decides what a task may do:
//   may      use its own stack; read and write memory handed to it through arg; std::atomic;
//            raw system calls made without libc wrappers (no errno); futex wake/wait by hand.
//   may not  call into libc where it touches TLS or errno (malloc, stdio, syscall(), locks,
//            most of it); use thread_local; throw (the unwinder takes locks and TLS); be
//            built with -fsplit-stack (the prologue compares against the creator's TCB slot).
//   and      the creating thread must outlive it: its %fs points at the creator's TCB (a stack
//            protector canary, if any, is read from there).
// Signals: the creator blocks all of them around the clone, so the task starts, and stays,
// with every signal blocked — a process-directed signal can never be handled on a task that
// has no TCB.  (glibc does the same dance and unblocks in start_thread; we never unblock.)
// "All" takes the raw rt_sigprocmask on a full set: glibc's sigfillset, pthread_sigmask and
// sigprocmask quietly leave its own SIGCANCEL (32) and SIGSETXID (33) unblocked
// (signal/sigfillset.c, nptl/pthread_sigmask.c: clear_internal_signals), and their handlers
// would then run on the task with the creator's TCB.  SIGKILL and SIGSTOP cannot be blocked.
// Synchronous faults (SIGSEGV on the guard) cannot be blocked and kill the process, as an
// overflow on a pthread does.
//
// The child's first instructions are assembly (arch/x86_64/clone_x86_64_sysv_elf_gas.S): after
// the syscall it is on a new stack with nothing to return to, so no C code can be there.
//
// Rejected: CLONE_SETTLS with a home-made TCB.  glibc reads fixed offsets of the TCB (the
// stack canary, pointer guard, errno's block, the DTV) from many places; half a TCB turns an
// accidental libc call from "uses the creator's errno" into a wild write.  Rejected: glibc's
// clone() wrapper — fine for clone, but there is no clone3 wrapper, and one small assembly file
// keeps both paths under the same contract.
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/diag/fatal.hpp"
#include "runtime/kmodel/clone_arch.hpp"
#include "runtime/kmodel/sys.hpp"
#include "weft/kmodel/clone.hpp"

namespace weft::kmodel {
namespace {

// Lives at the TCB's place at the top of the block (stack_cache::layout().descriptor).
struct task_descriptor {
  std::atomic<int> tid{0};  // CLONE_PARENT_SETTID and CLONE_CHILD_CLEARTID both point here
  task_fn fn = nullptr;
  void* arg = nullptr;
  std::atomic<std::uintptr_t> last_sp{0};  // the task's sp as it finished (advise_stack_range)
};
static_assert(sizeof(std::atomic<int>) == sizeof(int) && std::atomic<int>::is_always_lock_free,
              "the kernel writes the tid word as a plain int");

inline std::uintptr_t current_sp() noexcept {
#if defined(__x86_64__)
  std::uintptr_t sp;
  asm volatile("movq %%rsp, %0" : "=r"(sp));
  return sp;
#else
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
#endif
}

// The task's first C++ frame.  Runs on the model stack with the creator's %fs: see above.
WEFT_KMODEL_TASK_FN void weft_kmodel_task_entry(void* p) noexcept {
  auto* d = static_cast<task_descriptor*>(p);
  d->fn(d->arg);
  d->last_sp.store(current_sp(), std::memory_order_relaxed);
}

// rt_sigprocmask without glibc's wrapper, which filters out its internal signals (see above).
int raw_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  // The kernel's sigset is 64 bits on x86_64 (_NSIG / 8), not glibc's 1024-bit sigset_t.
  if (::syscall(SYS_rt_sigprocmask, how, set, old, 64 / 8) != 0) return errno;
  return 0;
}

const char* task_limits() {
  return "out of task ids (kernel.pid_max), threads (kernel.threads-max), RLIMIT_NPROC or kernel memory";
}

}  // namespace

const char* to_string(clone_call c) noexcept { return c == clone_call::clone3 ? "clone3" : "clone"; }

task start_task(stack_cache& cache, clone_call how, task_fn fn, void* arg, std::size_t stack_size,
                std::optional<std::size_t> guard) {
#if defined(__x86_64__)
  if (!cache.config().map_memory)
    throw std::logic_error("weft: kmodel: start_task needs a stack_cache that maps memory (map_memory = true)");
  if (!fn) throw std::invalid_argument("weft: kmodel: start_task needs a function");
  allocation a = cache.allocate(stack_size, guard);
  const stack_layout l = cache.layout(a.block);
  auto* d = new (reinterpret_cast<void*>(l.descriptor)) task_descriptor;
  d->fn = fn;
  d->arg = arg;
  const std::uintptr_t top = l.stack_top & ~std::uintptr_t{15};
  int* tid_word = reinterpret_cast<int*>(&d->tid);

  sigset_t all, old;
  std::memset(&all, 0xff, sizeof all);  // not sigfillset: it too leaves out glibc's 32 and 33
  if (int e = raw_sigmask(SIG_SETMASK, &all, &old); e != 0) {
    cache.release(a.block.id);
    detail::throw_errno(e, "rt_sigprocmask before clone");
  }
  long r = -ENOSYS;
  if (how == clone_call::clone3) {
    detail::clone3_args args{};
    args.flags = task_clone_flags;
    args.parent_tid = reinterpret_cast<std::uint64_t>(tid_word);
    args.child_tid = reinterpret_cast<std::uint64_t>(tid_word);
    args.exit_signal = 0;  // CLONE_THREAD: nobody is signalled
    args.stack = a.block.mem;
    args.stack_size = top - a.block.mem;
    r = weft_kmodel_clone3_x86_64(&args, sizeof args, &weft_kmodel_task_entry, d);
    if (r == -ENOSYS) how = clone_call::clone;  // a kernel before 5.3, as glibc handles it
  }
  if (how == clone_call::clone)
    r = weft_kmodel_clone_x86_64(task_clone_flags, reinterpret_cast<void*>(top), tid_word, tid_word,
                                 &weft_kmodel_task_entry, d);
  int restore = raw_sigmask(SIG_SETMASK, &old, nullptr);
  if (r < 0) {
    d->~task_descriptor();
    cache.release(a.block.id);
    detail::throw_errno(static_cast<int>(-r), std::string(to_string(how)) + " of a kernel task: " + task_limits());
  }
  task t;
  t.cache_ = &cache;
  t.alloc_ = a;
  t.descriptor_ = d;
  t.tid_ = static_cast<int>(r);
  t.call_ = how;
  if (restore != 0) {
    t.join();
    detail::throw_errno(restore, "rt_sigprocmask after clone");
  }
  return t;
#else
  (void)cache, (void)how, (void)fn, (void)arg, (void)stack_size, (void)guard;
  throw std::logic_error("weft: kmodel: kernel tasks are implemented for x86_64 only");
#endif
}

task::task(task&& o) noexcept
    : cache_(o.cache_), alloc_(o.alloc_), descriptor_(o.descriptor_), tid_(o.tid_), call_(o.call_) {
  o.cache_ = nullptr;
  o.descriptor_ = nullptr;
}

task& task::operator=(task&& o) noexcept {
  if (this != &o) {
    this->~task();
    new (this) task(std::move(o));
  }
  return *this;
}

task::~task() {
  if (!joinable()) return;
  try {
    join();
  } catch (const std::exception& e) {
    weft::detail::fatal("kmodel: joining kernel task %d in its destructor failed: %s", tid_, e.what());
  }
}

void task::join() {
  if (!joinable()) throw std::logic_error("weft: kmodel: task::join on a task that is not joinable");
  auto* d = static_cast<task_descriptor*>(descriptor_);
  for (;;) {
    int t = d->tid.load(std::memory_order_acquire);
    if (t == 0) break;
    // Not FUTEX_PRIVATE_FLAG: the kernel's wake on CLONE_CHILD_CLEARTID is a shared one.
    long r = ::syscall(SYS_futex, reinterpret_cast<int*>(&d->tid), FUTEX_WAIT, t, nullptr, nullptr, 0);
    if (r != 0 && errno != EAGAIN && errno != EINTR) detail::throw_errno(errno, "futex wait for a kernel task's exit");
  }
  const std::uintptr_t last_sp = d->last_sp.load(std::memory_order_relaxed);
  d->~task_descriptor();
  stack_cache* c = cache_;
  cache_ = nullptr;
  descriptor_ = nullptr;
  c->release(alloc_.block.id, last_sp);
}

}  // namespace weft::kmodel
