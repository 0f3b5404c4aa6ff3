// SPDX-License-Identifier: Apache-2.0
// child.hpp — the one way weft's tools run a child process with a deadline: a program exec'd
// with its stdout and stderr captured, or a function called in a fork that reports through a
// pipe.  The kernel model's experiments (observe.cpp) use the function form; weft-compare
// (bench/compare/child.cpp) execs its workload children, Go and weft-netbench with the other.
//
// Both forms share every step after fork: the parent reads the pipes until EOF or the
// deadline, kills the child (SIGKILL) at the deadline, and reaps it — the deadline holds while
// it is reaped too, as a child may close its pipes and run on.  After a kill the pipes are
// read for at most a second more: a grandchild may hold them open.  Every call is checked;
// a failed one throws weft::resource_error naming it.  Between fork and exec the child makes
// only async-signal-safe calls (the argument and environment arrays are built before fork);
// the function form runs the caller's code, which is its own business.
//
// An internal header (not installed); run_program and run_in_fork are exported (WEFT_API)
// for weft-compare, which links weft_kmodel.
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/kmodel/sys.hpp"
#include "weft/export.hpp"

namespace weft::kmodel::detail {

// What became of a child.
struct child_result {
  std::string out;   // the program's stdout, or what the function wrote to its pipe
  std::string err;   // the program's stderr (its last 512 KiB to 1 MiB when it says more);
                     // empty for a function, whose stderr is the parent's
  int status = 0;    // as waitpid reports it
  bool killed = false;  // killed at the deadline
  std::chrono::steady_clock::duration took{};  // from fork until it was reaped
};

// Execs argv (argv[0] a path; no PATH search) with stdin from /dev/null, stdout and stderr
// captured and `env` ("NAME=value" each) as its whole environment.  When the exec fails the
// child says so on its stderr and exits 127 (126: it could not set up its descriptors).
// Throws resource_error, naming `what` and the call, if pipes or fork fail, or if reading or
// reaping does.
WEFT_API child_result run_program(const char* what, const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env, std::chrono::seconds deadline);

// Forks; the child calls body(ctx, fd) with the write end of a pipe and exits (_exit) with what
// it returns.  Otherwise as run_program; run_function is the typed front.
WEFT_API child_result run_in_fork(const char* what, std::chrono::seconds deadline, int (*body)(void* ctx, int fd),
                                  void* ctx);

// Forks and calls body(fd) in the child, which writes its report to fd and returns its exit
// status; an exception it throws becomes "error: <what()>" in the report and status 3.
template <class Body>
child_result run_function(const char* what, std::chrono::seconds deadline, Body&& body) {
  auto call = [](void* ctx, int fd) -> int {
    try {
      return (*static_cast<std::remove_reference_t<Body>*>(ctx))(fd);
    } catch (const std::exception& e) {
      write_all(fd, std::string("error: ") + e.what() + "\n");
    } catch (...) {
      write_all(fd, "error: unknown exception\n");
    }
    return 3;
  };
  return run_in_fork(what, deadline, call, static_cast<void*>(&body));
}

// The report of a function child that had to succeed: throws resource_error quoting what it
// reported if it missed its deadline (ETIMEDOUT), died from a signal or exited non-zero
// (ECHILD).
std::string report_or_throw(const char* what, std::chrono::seconds deadline, const child_result& r);

// run_function, then report_or_throw: the kernel model's experiments.
template <class Body>
std::string run_for_report(const char* what, std::chrono::seconds deadline, Body&& body) {
  return report_or_throw(what, deadline, run_function(what, deadline, std::forward<Body>(body)));
}

}  // namespace weft::kmodel::detail
