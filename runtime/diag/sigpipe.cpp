// SPDX-License-Identifier: Apache-2.0
// sigpipe.cpp — what a write to a closed socket does while a weft runtime runs.
//
// The problem.  write(2)/send(2) on a socket or pipe whose reader has gone raises SIGPIPE in
// the writing thread, and SIGPIPE's default action ends the process without a word.  A
// server that embeds weft writes to sockets from goroutines all day; a peer that hangs up
// must cost it one EPIPE, not its life.
//
// The choice.  While a runtime runs, if (and only if) the process's SIGPIPE disposition is
// the default, weft installs a handler that does nothing: the write returns -1/EPIPE, as
// with MSG_NOSIGNAL.  A disposition the program chose itself (SIG_IGN, its own handler) is
// left alone, and when the runtime ends SIG_DFL comes back if weft's handler is still there.
// Rejected:
//   - leaving SIG_DFL: the silent death above;
//   - SIG_IGN: an ignored signal stays ignored across exec, so every child started from a
//     goroutine (posix_spawn, std::system, a shell pipeline) would inherit it and, e.g.,
//     `yes | head` would print "Broken pipe" errors instead of ending quietly.  A *caught*
//     signal is reset to SIG_DFL by exec, so children see the default;
//   - blocking SIGPIPE in the Ms' signal masks: masks are inherited across exec too, and a
//     blocked SIGPIPE stays pending on the thread;
//   - Go's rule (a broken stdout/stderr still kills, other descriptors get EPIPE): it needs
//     every write to go through the runtime, which a C++ library cannot arrange.
// What users should know (README "Signals"): while a runtime runs, `prog | head` no longer
// stops prog by SIGPIPE — writes to stdout fail with EPIPE instead; a program that wants the
// old behaviour installs its own SIGPIPE disposition (even SIG_DFL's equivalent, a handler
// that calls _exit) before starting the runtime.  MSG_NOSIGNAL on send(2) needs none of this.
// The check-then-install is not atomic against another thread changing SIGPIPE at the same
// moment; signal dispositions are process setup, done before threads race over them.
#include "runtime/diag/sigpipe.hpp"

#include <atomic>
#include <cstring>

#include <signal.h>

namespace weft::detail {
namespace {

std::atomic<bool> g_installed{false};

void ignore_sigpipe(int) {}

bool is_ours(const struct sigaction& sa) noexcept {
  return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == ignore_sigpipe;
}

}  // namespace

void sigpipe_runtime_started() noexcept {
  struct sigaction cur;
  if (::sigaction(SIGPIPE, nullptr, &cur) != 0) return;
  if ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL) return;  // the program's choice
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = ignore_sigpipe;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGPIPE, &sa, nullptr) == 0) g_installed.store(true, std::memory_order_relaxed);
}

void sigpipe_runtime_stopped() noexcept {
  if (!g_installed.exchange(false, std::memory_order_relaxed)) return;
  struct sigaction cur;
  if (::sigaction(SIGPIPE, nullptr, &cur) != 0 || !is_ours(cur)) return;  // the program changed it since
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGPIPE, &dfl, nullptr);
}

}  // namespace weft::detail
