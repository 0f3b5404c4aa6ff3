// SPDX-License-Identifier: Apache-2.0
// weft/kmodel/procfs.hpp — what /proc says about this process and the system, and how many
// threads fit before some limit stops them.
//
// Plain threads: all of it; the kernel-model layer needs no runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/export.hpp"
#include "weft/kmodel/facts.hpp"
#include "weft/kmodel/stack_cache.hpp"

namespace weft::kmodel {

// One line of /proc/<pid>/maps.
struct mapping {
  std::uintptr_t start = 0, end = 0;
  char perms[5] = {'-', '-', '-', '-', '\0'};
  std::uint64_t offset = 0, inode = 0;
  std::string name;  // "[stack]", a path, or empty for anonymous memory
  std::size_t size() const noexcept { return end - start; }
  // What the kernel's stack-gap check calls accessible (vma_is_accessible: r, w or x).
  bool accessible() const noexcept { return perms[0] == 'r' || perms[1] == 'w' || perms[2] == 'x'; }
  // The gate area (x86_64's [vsyscall] page): fs/proc/task_mmu.c lists it after the process's
  // VMAs (get_gate_vma), but it lives in the kernel's half of the address space, is no VMA of
  // the mm and does not count against vm.max_map_count.
  bool gate_area() const noexcept { return start >= (std::uintptr_t{1} << 63); }
};

// Parses maps text; lines that do not parse are skipped.
WEFT_API std::vector<mapping> parse_maps(std::string_view text);
// Reads and parses /proc/self/maps.  Throws resource_error if it cannot be read.
WEFT_API std::vector<mapping> read_maps();
// The number of VMAs of this process — the lines of /proc/self/maps less the gate area, i.e.
// what vm.max_map_count bounds (mm->map_count) — without building a list.
WEFT_API std::size_t count_vmas();

// A thread's stack as /proc shows it: the VMA holding the stack pointer it is blocked with
// (/proc/self/task/<tid>/syscall), and the inaccessible VMA right below it (a guard), if any.
// Stacks of neighbouring threads can merge into one VMA (a thread made with guard size 0 has
// nothing between its stack and the one below): then `vma` is empty, `containing_vma` is the
// merged VMA, and only the thread whose sp is lowest in it has the guard below.  /proc cannot
// tell a stack merged with a running thread's (whose sp it does not show), or with other
// memory, from a stack of its own.
struct thread_stack {
  int tid = 0;
  bool main = false;                 // the main thread: its stack is [stack]
  std::optional<std::uintptr_t> sp;  // unknown while the thread runs
  std::optional<mapping> vma;        // this thread's stack VMA, when it is its alone
  bool vma_shared = false;           // other threads' stack pointers are in the same VMA
  std::optional<mapping> containing_vma;  // with vma_shared: the merged VMA
  std::size_t guard_below = 0;
};

struct process_memory {
  std::uint64_t vm_size = 0;  // VIRT (VmSize)
  std::uint64_t vm_rss = 0;   // RES (VmRSS)
  std::size_t vma_count = 0;  // VMAs, without the gate area (as count_vmas)
  std::size_t threads = 0;
  std::optional<mapping> main_stack;  // [stack]
  std::vector<thread_stack> thread_stacks;
};
// Throws resource_error if /proc/self/status or maps cannot be read.
WEFT_API process_memory read_process_memory();

// The numbers that bound how many threads a process can make.
struct system_snapshot {
  std::uint64_t max_map_count = 0;  // /proc/sys/vm/max_map_count
  std::uint64_t threads_max = 0;    // /proc/sys/kernel/threads-max
  std::uint64_t pid_max = 0;        // /proc/sys/kernel/pid_max
  std::uint64_t nr_threads = 0;     // tasks in the system (/proc/loadavg)
  std::uint64_t pids_in_use = 0;    // visible task ids >= RESERVED_PIDS: they share the range pids cycle through
  std::uint64_t mem_available = 0;  // MemAvailable
  int overcommit_memory = 0;
  std::uint64_t commit_limit = 0, committed_as = 0;
  std::size_t vma_count = 0;  // this process
  std::uint64_t vm_size = 0;  // this process
  rlimit_value nproc_limit;   // RLIMIT_NPROC soft limit
  bool nproc_enforced = true;  // false for root and holders of CAP_SYS_RESOURCE or CAP_SYS_ADMIN
  std::uint64_t user_tasks = 0;  // tasks whose real uid is ours (what RLIMIT_NPROC counts)
  rlimit_value as_limit;         // RLIMIT_AS soft limit
  std::uint64_t task_size = std::uint64_t{1} << 47;  // user address space (x86_64, 4-level paging)
  // Pid namespaces.  Every task takes an id in its own namespace and in each ancestor, each
  // bounded by that namespace's pid_max (kernel/pid.c alloc_pid; per namespace since Linux
  // 6.14, a new one starting at 4194304).  /proc/sys/kernel/pid_max shows the reader's own
  // namespace only, and /proc only the tasks of the namespace it was mounted for.
  std::optional<bool> init_pid_ns;  // /proc/self/ns/pid is the initial namespace (nullopt: unreadable)
  std::string pid_ns;               // "pid:[4026531836]"
  unsigned pid_ns_levels_seen = 1;  // NSpid entries: levels from /proc's namespace down to ours
  unsigned possible_cpus = 1;       // /sys/devices/system/cpu/possible (the default pid_max scales with it)
  // The initial namespace's pid_max, when the caller knows it (it cannot be read from inside);
  // nullopt: the estimate assumes the kernel's default and says so.
  std::optional<std::uint64_t> init_pid_max;
};
// Throws resource_error if a /proc file it needs cannot be read.
WEFT_API system_snapshot take_snapshot();

enum class capacity_limit {
  max_map_count,
  pid_max,           // this pid namespace's (or, in the initial namespace, the machine's)
  threads_max,
  rlimit_nproc,
  memory,
  address_space,
  commit_limit,
  ancestor_pid_max,  // an ancestor pid namespace's: ids there run out first (inside a container)
};
WEFT_API const char* to_string(capacity_limit l) noexcept;  // "vm.max_map_count", "kernel.pid_max", ...

struct capacity_row {
  capacity_limit limit = capacity_limit::memory;
  std::uint64_t threads = 0;  // how many more threads this limit allows
  std::string basis;          // the arithmetic, for people
  bool assumed = false;       // an input could not be read here and was assumed (see basis)
};

struct capacity_estimate {
  std::size_t stack_size = 0;  // attribute stack size
  std::size_t block_size = 0;  // what each thread maps: stack + guard
  unsigned vmas_per_thread = 0;
  std::size_t bytes_per_thread = 0;  // memory each parked thread costs, roughly
  std::vector<capacity_row> rows;    // every limit that applies here
  std::vector<std::string> unknowns;  // what this estimate cannot know from here, for people
  // The limit that stops thread creation first.
  WEFT_API const capacity_row& binding() const;
};

// How many more threads with this stack size the process in `s` can create, per limit.
// guard_style picks the VMAs each thread costs (mprotect: 2, madvise: 1).
WEFT_API capacity_estimate estimate_capacity(const system_snapshot& s, std::size_t stack_size, guard_style guards,
                                             std::size_t guard_size = 4096, std::size_t page_size = 4096);

}  // namespace weft::kmodel
