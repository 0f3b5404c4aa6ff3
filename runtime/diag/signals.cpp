// signals.cpp — what a fault on a goroutine stack means.
//
// The handler runs on the M's alternate stack and classifies the faulting address against the
// goroutine running on this M:
//   - in its slot's reserve (below the accessible stack, above the permanent guard): code
//     without checks ran past the stack's bottom.  The stack grows in place to cover the
//     address — the kernel's VM_GROWSDOWN done in user space — and the instruction restarts.
//   - in its slot's permanent guard, or past the reserve: the goroutine overflowed; a fatal
//     error names it, its stack size, and what to change.
//   - in a quarantined range (options::quarantine: a stack that moved, kept inaccessible): a
//     stale pointer; the report names the goroutine, both ranges and the object's new address
//     (runtime/stack/quarantine.cpp).
//   - anything else: not weft's.  The handler the process had before weft gets it; with none,
//     the default action runs (the process dies by the signal, as it would have without weft).
// Not all of it is async-signal-safe, and it need not be: the fault is synchronous (the
// goroutine's own instruction on this thread), so the handler never interrupts the runtime in
// the middle of its own work.  Classifying, a successful grow in place (one madvise/mprotect)
// and chaining are safe: they read the M's records and make system calls.  A failed grow
// builds a resource_error (allocation, an exception), and every report goes through fatal(),
// which formats with snprintf; if the faulting code was inside malloc those can deadlock on
// its lock — accepted, since the process is dying then anyway.
#include "runtime/diag/signals.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/diag/fatal.hpp"
#include "runtime/sched/sched.hpp"
#include "runtime/stack/grow.hpp"
#include "runtime/stack/quarantine.hpp"
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

void on_fault(int sig, siginfo_t* info, void* uctx) noexcept {
  int saved_errno = errno;
  m* mp = current_m();
  g* gp = mp ? mp->curg : nullptr;
  auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  if (gp && addr < gp->stk.lo && addr >= gp->stk.slot_lo) {
    sched* s = mp->s;
    const stack_config& cfg = s->stacks.config();
    std::uintptr_t guard_top = gp->stk.slot_lo + cfg.guard_bytes;
    // Grow to cover the faulting page, as a check asking for 0 bytes below it would.
    const std::size_t need = size_needed(gp, addr & ~std::uintptr_t{4095}, 0);
    if (addr >= guard_top && need <= s->stacks.capacity(gp->stk)) {
      check_stack_max(s, gp, need);
      bool grown = false;
      try {
        grown = try_grow_in_place(s, gp, need);
      } catch (...) {
        // madvise/mprotect refused: report the overflow below.
      }
      if (grown) {
        errno = saved_errno;
        return;
      }
    }
    fatal("goroutine %llu overflowed its %zu-byte stack (fault at %#lx, %zu bytes below its bottom; "
          "its slot allows %zu bytes, and code without checks cannot be moved to a bigger one).\n"
          "  Build the code it runs with split-stack checks (WEFT_SPLIT_STACK / weft::split_stack), add "
          "WEFT_STACK_CHECK(bytes) before deep recursion or large frames, or raise WEFT_STACK_MIN (or "
          "WEFT_STACK_RESERVE, the room a stack grows into in place)",
          (unsigned long long)gp->id, gp->stk.size(), (unsigned long)addr, (std::size_t)(gp->stk.lo - addr),
          s->stacks.capacity(gp->stk));
  }
  quarantine_check_fault(addr);  // returns only if addr is not in a quarantined range
  errno = saved_errno;
  chain(sig, info, uctx);
}

}  // namespace

void install_process_signal_handlers() {
  quarantine_reset();  // a runtime is starting: records of an earlier one name its old arenas
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
