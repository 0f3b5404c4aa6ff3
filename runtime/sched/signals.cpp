// SPDX-License-Identifier: Apache-2.0
// signals.cpp — what a fault on a goroutine stack means.
//
// The handler runs on the M's alternate stack and classifies the faulting address by the
// stack slot that holds it (stack_pool::find_slot), not only by who runs here:
//   - the slot of the goroutine running on this M, below its accessible stack: code without
//     checks ran past the stack's bottom (into the band, or the slack).  The stack grows in
//     place to cover the address and the interrupted sp — the kernel's VM_GROWSDOWN done in
//     user space — and the instruction restarts.
//   - the same, but in the slot's guard or past what the slot allows: the goroutine
//     overflowed; a fatal error names it, its stack, and what to change (with in_place: the
//     reserve, and the ways past it).
//   - a quarantined range (options::quarantine: a stack that moved, kept inaccessible): a
//     stale pointer; the report names the goroutine, both ranges and the object's new address
//     (runtime/sched/quarantine.cpp).
//   - another slot: a stale pointer into a stack that shrank, or a frame that jumped from the
//     slot above; a fatal error says so.  (The switch code touches its footprint before it
//     names the next goroutine as running, so its own pushes fault as the leaving one's.)
//   - anything else: not weft's.  The handler the process had before weft gets it; with none,
//     the default action runs (the process dies by the signal, as it would have without weft).
// Not all of it is async-signal-safe, and it need not be: the fault is synchronous (the
// goroutine's own instruction on this thread), so the handler never interrupts the runtime in
// the middle of its own work.  Classifying, a successful grow in place (one madvise/mprotect)
// and chaining are safe: they read the M's records and make system calls.  A failed grow
// builds a resource_error (allocation, an exception), and every report goes through fatal(),
// which formats with snprintf; if the faulting code was inside malloc those can deadlock on
// its lock — accepted, since the process is dying then anyway.
#include "runtime/sched/signals.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <mutex>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/cpu.hpp"
#include "runtime/diag/fatal.hpp"
#include "runtime/sched/dump.hpp"
#include "runtime/sched/sched.hpp"
#include "runtime/sched/grow.hpp"
#include "runtime/sched/quarantine.hpp"
#include "weft/errors.hpp"

namespace weft::detail {
namespace {

constexpr std::size_t kAltStackSize = 64 * 1024;

struct sigaction g_prev_segv, g_prev_bus;
std::once_flag g_installed;

void chain(int sig, siginfo_t* info, void* uctx) noexcept {
  struct sigaction* prev = sig == SIGSEGV ? &g_prev_segv : &g_prev_bus;
  if (prev->sa_flags & SA_SIGINFO) {
    if (prev->sa_sigaction) {
      prev->sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
    prev->sa_handler(sig);
    return;
  }
  // Default action: restore it and return; the faulting instruction runs again and kills the
  // process with the signal, with the right core dump and exit status.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  // Were the handler left in place, the instruction would fault again forever: die as the
  // signal would have killed the process (the exit status a shell reports for it).
  if (::sigaction(sig, &dfl, nullptr) != 0) ::_exit(128 + sig);
}

// A fault in the slot of the goroutine running here, below its accessible stack: grow in
// place to cover the address and the interrupted stack pointer (a frame too big for the
// band may have jumped it without a fault), or report the overflow.  Returns if it grew.
void stack_fault(sched* s, g* gp, std::uintptr_t addr, std::uintptr_t guard_top, const void* uctx) noexcept {
  const std::uintptr_t sp = arch::interrupted_sp(uctx);
  const std::uintptr_t low = (sp - gp->stk.slot_lo < addr - gp->stk.slot_lo ? sp : addr) & ~std::uintptr_t{4095};
  const std::size_t room = s->stacks.room(gp->stk);
  // Grow as a check asking for 0 bytes below that point would, into the slack too.
  const std::size_t need = low >= guard_top ? size_needed(gp, low, 0, room) : ~std::size_t{0};
  if (addr >= guard_top && need <= room) {
    check_stack_max(s, gp, need);
    bool grown = false;
    try {
      grown = s->stacks.grow_in_place(gp->stk, need, true);
    } catch (...) {
      // madvise/mprotect refused: report the overflow below.
    }
    if (grown) {
      ++gp->grows;
      s->st.stack_grows.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  if (s->opts.strategy == stack_strategy::in_place) {
    char what[96];
    std::snprintf(what, sizeof what, "a fault at %#lx, %zu bytes below its stack", (unsigned long)addr,
                  (std::size_t)(gp->stk.lo - addr));
    fatal_past_reserve(s, gp, gp->stk.hi - std::min(addr, sp) + kStackHeadroom, what);
  }
  fatal("goroutine %llu overflowed its %zu-byte stack (fault at %#lx, %zu bytes below its bottom; "
        "its slot allows %zu bytes, and code without checks cannot be moved to a bigger one).\n"
        "  Build the code it runs with split-stack checks (WEFT_SPLIT_STACK / weft::split_stack), add "
        "WEFT_STACK_CHECK(bytes) before deep recursion or large frames (bytes must cover what the frames "
        "below the check use, inlined calls included), raise WEFT_STACK_RESERVE (the room a stack grows into "
        "in place), or use WEFT_STACK=in_place",
        (unsigned long long)gp->id, gp->stk.size(), (unsigned long)addr, (std::size_t)(gp->stk.lo - addr), room);
}

void on_fault(int sig, siginfo_t* info, void* uctx) noexcept {
  int saved_errno = errno;
  // No split-stack prologue may fire in here: the alternate stack lies anywhere relative to
  // the goroutine's limit.  Put back (or publish anew, after growth) on the way out.
  const std::uintptr_t saved_limit = arch::load_limit();
  arch::store_limit(0);
  m* mp = current_m();
  g* gp = mp ? mp->curg : nullptr;
  auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  sched* s = mp ? mp->s : current_sched();
  // Classified by the slot that holds the address, not only by who runs here.
  std::uintptr_t slot_lo = 0, slot_hi = 0, guard_top = 0;
  if (s && s->stacks.find_slot(addr, &slot_lo, &slot_hi, &guard_top)) {
    if (gp && gp->stk.slot_lo == slot_lo && addr < gp->stk.lo) {
      stack_fault(s, gp, addr, guard_top, uctx);
      if (saved_limit != 0) publish_limit(gp);  // the new limit (0: a slow path was running)
      errno = saved_errno;
      return;
    }
    quarantine_check_fault(addr);  // returns only if addr is not in a quarantined range
    char who[64];
    describe_current(who, sizeof who);
    fatal("%s touched %#lx, an inaccessible address in the stack slot [%#lx, %#lx) of another goroutine "
          "(its guard, or the reserve below its stack): a pointer into a stack that has shrunk since, or a "
          "frame that ran past the bottom of its own stack into the slot below.  Big frames need "
          "-fstack-clash-protection (weft's package adds it) or WEFT_STACK_CHECK(bytes)",
          who, (unsigned long)addr, (unsigned long)slot_lo, (unsigned long)slot_hi);
  }
  quarantine_check_fault(addr);  // returns only if addr is not in a quarantined range
  arch::store_limit(saved_limit);
  errno = saved_errno;
  chain(sig, info, uctx);
}

// SIGQUIT (^\ at a terminal, `kill -QUIT`): as in Go, every goroutine is printed and the
// process exits with status 2 (runtime/signal_unix.go, sighandler's crash path).  Installed
// only over the default action: a program that handles SIGQUIT itself keeps it.  On an M it
// runs on the M's alternate stack (SA_ONSTACK), never on a goroutine's few KiB.
void on_quit(int) noexcept {
  if (!current_sched()) {  // no runtime runs any more: what the default action would have done
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    if (::sigaction(SIGQUIT, &dfl, nullptr) == 0) ::raise(SIGQUIT);
    ::_exit(128 + SIGQUIT);
  }
  static const char head[] = "SIGQUIT: quit\n";
  write_stderr(head, sizeof head - 1);
  dump_goroutines_to(2, dump_context::dying);
  ::_exit(2);
}

void install_quit_handler() {
  struct sigaction cur;
  if (::sigaction(SIGQUIT, nullptr, &cur) != 0)
    throw resource_error(errno, std::generic_category(), "weft: sigaction(SIGQUIT) could not be read");
  if ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL) return;  // the program's own, or ours
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_quit;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGQUIT, &sa, nullptr) != 0)
    throw resource_error(errno, std::generic_category(), "weft: sigaction(SIGQUIT) failed");
}

}  // namespace

void install_process_signal_handlers() {
  quarantine_reset();  // a runtime is starting: records of an earlier one name its old arenas
  install_quit_handler();
  std::call_once(g_installed, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGSEGV, &sa, &g_prev_segv) != 0 || ::sigaction(SIGBUS, &sa, &g_prev_bus) != 0)
      throw resource_error(errno, std::generic_category(), "weft: sigaction(SIGSEGV/SIGBUS) failed");
  });
}

void install_thread_signal_stack(m* mp) noexcept {
  void* mem = ::mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED)
    fatal("cannot map a %zu-byte signal stack for thread %u: %s; stack overflows could not be reported", kAltStackSize,
          mp->id, std::strerror(errno));
  stack_t ss;
  ss.ss_sp = mem;
  ss.ss_size = kAltStackSize;
  ss.ss_flags = 0;
  if (::sigaltstack(&ss, nullptr) != 0) fatal("sigaltstack failed for thread %u: %s", mp->id, std::strerror(errno));
  mp->sigaltstack_mem = mem;
}

void remove_thread_signal_stack(m* mp) noexcept {
  if (!mp->sigaltstack_mem) return;
  stack_t ss;
  std::memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  if (::sigaltstack(&ss, nullptr) != 0) fatal("sigaltstack(SS_DISABLE) failed for thread %u: %s", mp->id, std::strerror(errno));
  if (::munmap(mp->sigaltstack_mem, kAltStackSize) != 0) fatal("munmap of a signal stack failed: %s", std::strerror(errno));
  mp->sigaltstack_mem = nullptr;
}

}  // namespace weft::detail
