// SPDX-License-Identifier: Apache-2.0
// weft/kmodel/observe.hpp — what this machine actually does, measured, so each model can be put
// beside reality.  Experiments that could hurt the caller (recursing into a fault, creating
// threads until the system refuses) run in a forked child with a deadline; the caller gets
// numbers back, never the damage.
//
// Plain threads: all of it; the kernel-model layer needs no runtime.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "weft/export.hpp"
#include "weft/kmodel/facts.hpp"
#include "weft/kmodel/procfs.hpp"
#include "weft/kmodel/rlimit.hpp"
#include "weft/kmodel/stack_cache.hpp"

namespace weft::kmodel {

// ---- default stack size ---------------------------------------------------------------------

// What glibc chose for this process (pthread_getattr_default_np) and the inputs it chose from.
// Note glibc decided at start-up: a setrlimit since then changes the inputs, not its answer.
struct default_stack_observation {
  rlimit_value rlimit_stack;
  std::size_t page_size = 0;
  std::size_t static_tls_size = 0;
  std::size_t stack_size = 0;
  std::size_t guard_size = 0;
};
// Throws resource_error if pthread_getattr_default_np fails.
WEFT_API default_stack_observation observe_default_stack();

// ---- stack cache reuse ----------------------------------------------------------------------

// A step of a create/join sequence: create a thread in `slot` (stack_size 0: the default,
// guard nullopt: the default), or join the thread in `slot`.
struct thread_op {
  enum kind_t { create, join } kind = create;
  unsigned slot = 0;
  std::size_t stack_size = 0;
  std::optional<std::size_t> guard;
};

// What pthread_getattr_np said about a created thread.
struct pthread_observation {
  unsigned slot = 0;
  std::uintptr_t stack_end = 0;  // stackaddr + stacksize: the block's end, which identifies it
  std::size_t stack_size = 0;    // block size - guard
  std::size_t guard_vma = 0;     // length of the inaccessible VMA right below the stack (0: none)
  bool reused = false;           // the stack's range was already mapped before the create (/proc/self/maps)
};

// Replays `ops` on real pthreads in a forked child and reports each create in order.  Threads
// park until joined; joining a slot that holds no thread, or creating into a busy slot, throws
// std::invalid_argument.  The child's glibc cache starts as this process's, plus the stacks of
// this process's other live threads (glibc's fork reclaims them): with either non-empty the
// replay starts with blocks a fresh model does not know, and compare_replay says so.
// Throws resource_error if the child fails or misses the deadline.
WEFT_API std::vector<pthread_observation> replay_on_pthreads(const std::vector<thread_op>& ops,
                                                             std::chrono::seconds deadline = std::chrono::seconds(20));

// The model's decision for each create of `ops`, in order, on `cache` (a dry cache, normally).
struct model_step {
  unsigned slot = 0;
  bool hit = false;
  std::uint64_t block_id = 0;
  std::size_t reported_stack_size = 0;
  std::size_t guard = 0;
  std::vector<std::uint64_t> cached_before;  // the blocks the model held, head first, before this create
};
WEFT_API std::vector<model_step> replay_on_model(stack_cache& cache, const std::vector<thread_op>& ops);

// Step-by-step agreement between the model and real pthreads.  A model hit must be a real reuse
// and a model miss a new mapping (pthread_observation::reused, from /proc/self/maps); a hit on
// block B must come back at the address the real thread that first got B had; a miss must come
// back at an address the model does not hold in its cache; reported sizes and guards must be
// equal.
struct replay_verdict {
  bool match = true;
  std::string why;  // empty when it matches
};
WEFT_API std::vector<replay_verdict> compare_replay(const std::vector<model_step>& model,
                                                    const std::vector<pthread_observation>& real);

// ---- main-thread stack ----------------------------------------------------------------------

struct main_stack_observation {
  main_stack_inputs inputs;          // in the child, after setrlimit and the obstacle
  std::uintptr_t fault_address = 0;  // si_addr of the SIGSEGV
  std::uintptr_t lowest = 0;         // the lowest page the recursion reached (page after the fault's)
  std::size_t reached = 0;           // stack_end - lowest
  std::uint64_t frames = 0;
};

// Forks; the child sets RLIMIT_STACK (nullopt: unlimited), optionally maps a readable page
// `obstacle_below` bytes under the top of [stack] (0: none), then recurses until SIGSEGV, caught
// on a sigaltstack.  Call on the main thread.  Throws std::invalid_argument if the model says
// more than 256 MiB could be touched or the limit is above the hard limit (never raised),
// std::logic_error off the main thread, resource_error if
// the child fails or misses the deadline.
WEFT_API main_stack_observation measure_main_stack(rlimit_value rlimit_stack, std::size_t obstacle_below = 0,
                                                   std::chrono::seconds deadline = std::chrono::seconds(30));

// ---- starting a process under a small RLIMIT_STACK -------------------------------------------

// The smallest RLIMIT_STACK, a whole number of pages from one page up to 256 KiB, under which
// `path args...` (with this process's environment, stdout and stderr to /dev/null) exits 0 with
// address-space randomisation off — deterministic, unlike the same with it on.  Each try is a
// fork, personality(ADDR_NO_RANDOMIZE), setrlimit and execve.  Throws std::invalid_argument
// if it does not start even under 256 KiB (or that is above the hard limit), resource_error if
// fork, personality or setrlimit fail or a try misses the deadline.
WEFT_API std::size_t measure_start_threshold(const std::string& path, const std::vector<std::string>& args,
                                             std::chrono::seconds deadline = std::chrono::seconds(10));

// ---- thread capacity ------------------------------------------------------------------------

struct capacity_options {
  std::size_t stack_size = 0;      // 0: the default
  std::size_t extra_vmas = 0;      // VMAs to use up first, so vm.max_map_count binds sooner
  rlimit_value nproc;              // RLIMIT_NPROC soft limit for the child (nullopt: leave it)
  std::optional<unsigned> run_as;  // uid (and gid) the child switches to first, when run as root
  std::chrono::seconds deadline{60};
};

struct capacity_observation {
  system_snapshot before;            // in the child, just before the first thread
  capacity_estimate estimate;        // from `before`
  std::uint64_t created = 0;         // threads made before pthread_create failed
  int error = 0;                     // what it returned
  // pthread_create's steps retried one at a time after it failed: errno of each
  // (-1: not tried because an earlier one failed; 0: it worked).
  struct retried_steps {
    int mmap = -1, mprotect = -1, clone = -1;
  } steps;
  capacity_limit observed = capacity_limit::memory;  // the limit found exhausted, by the evidence below
  std::string evidence;
  system_snapshot at_failure;
  double seconds = 0;
};

// Forks; the child creates parked threads until pthread_create fails, then repeats its steps
// one at a time (mmap of a block, the guard's mprotect split, a raw clone3) to see which call
// fails with which errno, reads /proc at that moment and exits (its threads with it).  The
// limit is named from that evidence, never by running the estimate again.
// While it runs, the binding limit really is used up: if that is kernel.pid_max or
// threads-max, other processes on the machine cannot fork for that moment.  Throws
// resource_error if the child fails or misses the deadline (it is killed).
WEFT_API capacity_observation measure_thread_capacity(const capacity_options& opts);

}  // namespace weft::kmodel
