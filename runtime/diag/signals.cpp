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
// Only async-signal-safe work is done here: reading the M's records, madvise/mprotect, write.
#include "runtime/diag/signals.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/cpu.hpp"
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
  ::sigaction(sig, &dfl, nullptr);
}

std::size_t round_pow2(std::size_t v) noexcept {
  std::size_t r = 1;
  while (r < v) r <<= 1;
  return r;
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
    std::size_t need = round_pow2(gp->stk.hi - (addr & ~std::uintptr_t{4095}) + kStackHeadroom);
    if (need < gp->stk.size() * 2) need = gp->stk.size() * 2;
    if (addr >= guard_top && need <= s->stacks.capacity(gp->stk)) check_stack_max(s, gp, need);
    if (addr >= guard_top && need <= s->stacks.capacity(gp->stk)) {
      bool grown = false;
      try {
        grown = s->stacks.grow_in_place(gp->stk, need);
      } catch (...) {
        grown = false;
      }
      if (grown) {
        gp->limit = gp->stk.lo + kStackHeadroom;
        ++gp->grows;
        s->st.stack_grows.fetch_add(1, std::memory_order_relaxed);
        if (!gp->preempt.load(std::memory_order_relaxed)) arch::store_limit(gp->limit);
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
