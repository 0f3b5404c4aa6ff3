// SPDX-License-Identifier: Apache-2.0
// procfs.cpp — this process and the system as /proc shows them, and how many threads fit.
//
// What it reads.  /proc/self/maps (fs/proc/task_mmu.c) is the VMA list: its line count is the
// number vm.max_map_count bounds, and [stack] is the main thread's growable stack.  Thread
// stacks carry no name since Linux 4.5, so we find them the honest way: a blocked task's user
// stack pointer is the second-to-last field of /proc/self/task/<tid>/syscall, and the VMA that
// holds it is that thread's stack (an inaccessible VMA right below it is its guard, when the
// guard was made with mprotect).  /proc/self/status gives VIRT (VmSize) and RES (VmRSS).
//
// How many threads fit.  Each pthread_create needs, and can be refused, each of these:
//   vm.max_map_count    mm/mmap.c refuses a mapping, and mm/vma.c a split, once the process
//                       has that many VMAs.  glibc <= 2.41 costs two per thread (the block is
//                       mapped PROT_NONE and everything above the guard mprotect'ed, which
//                       splits it); with MADV_GUARD_INSTALL (2.42+) one, or less when
//                       neighbouring stacks merge.  A thread fits while count + per-thread <= max.
//   kernel.pid_max      kernel/pid.c alloc_pid: ids come from [RESERVED_PIDS, pid_max) once they
//                       have wrapped, and every task ever alive that still holds one — in any
//                       process on the machine — takes its slot.  A task takes an id in its pid
//                       namespace and in every ancestor, each bounded by that namespace's
//                       pid_max (per namespace since Linux 6.14; a new one starts at 4194304).
//                       Inside a namespace (a container) /proc shows only the namespace's own
//                       pid_max and tasks: the initial namespace's limit is assumed (the
//                       kernel's default, or the caller's value) and its ids in use bounded by
//                       the machine's task count, and the estimate says so (`unknowns`).
//   kernel.threads-max  kernel/fork.c copy_process: nr_threads >= max_threads refuses, counting
//                       every task in the system.  The default is memory / (8 * THREAD_SIZE).
//   RLIMIT_NPROC        copy_process again: tasks of the real uid, not enforced for root or for
//                       CAP_SYS_RESOURCE / CAP_SYS_ADMIN.
//   memory              each parked thread costs a kernel stack (THREAD_SIZE, 16 KiB on x86_64),
//                       its task_struct and friends, the touched top pages of its stack (TCB,
//                       static TLS, first frames) and, for blocks of 2 MiB or more, a page of
//                       page table; a rough figure, named as such.
//   address space       RLIMIT_AS, else the 128 TiB of a 4-level x86_64 user space, over the
//                       whole block per thread; and under vm.overcommit_memory=2 the commit
//                       limit over the writable part.
// The estimate computes every one and names the smallest.  pthread_create returns EAGAIN for
// all of them, so telling them apart afterwards needs the same counts at the moment of failure
// (observe.cpp).
//
// Rejected: estimating from memory alone ("VIRT / 8 MiB"), which is what most write-ups do; on
// a 64-bit machine the first wall is almost never memory.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <mutex>
#include <string>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "runtime/diag/proc.hpp"
#include "runtime/kmodel/sys.hpp"
#include "weft/kmodel/procfs.hpp"

namespace weft::kmodel {
namespace {

constexpr std::uint64_t kernel_half = std::uint64_t{1} << 63;

bool parse_hex(std::string_view& s, std::uint64_t& out) {
  std::size_t i = 0;
  std::uint64_t v = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
    else break;
    v = v * 16 + d;
  }
  if (i == 0) return false;
  out = v;
  s.remove_prefix(i);
  return true;
}

bool parse_dec(std::string_view& s, std::uint64_t& out) {
  std::size_t i = 0;
  std::uint64_t v = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) v = v * 10 + static_cast<unsigned>(s[i] - '0');
  if (i == 0) return false;
  out = v;
  s.remove_prefix(i);
  return true;
}

void skip_spaces(std::string_view& s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
}

bool parse_line(std::string_view line, mapping& m) {
  std::uint64_t a, b;
  if (!parse_hex(line, a) || line.empty() || line.front() != '-') return false;
  line.remove_prefix(1);
  if (!parse_hex(line, b)) return false;
  skip_spaces(line);
  if (line.size() < 4) return false;
  for (int i = 0; i < 4; ++i) m.perms[i] = line[static_cast<std::size_t>(i)];
  line.remove_prefix(4);
  skip_spaces(line);
  std::uint64_t off;
  if (!parse_hex(line, off)) return false;
  skip_spaces(line);
  std::size_t dev_end = line.find(' ');  // major:minor
  if (dev_end == std::string_view::npos) return false;
  line.remove_prefix(dev_end);
  skip_spaces(line);
  std::uint64_t inode;
  if (!parse_dec(line, inode)) return false;
  skip_spaces(line);
  m.start = static_cast<std::uintptr_t>(a);
  m.end = static_cast<std::uintptr_t>(b);
  m.offset = off;
  m.inode = inode;
  m.name.assign(line.data(), line.size());
  return true;
}

bool all_digits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s)
    if (*s < '0' || *s > '9') return false;
  return true;
}

rlimit_value soft_limit(int resource) {
  rlimit rl{};
  if (::getrlimit(resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return std::nullopt;
  return static_cast<std::uint64_t>(rl.rlim_cur);
}

// Task ids >= RESERVED_PIDS visible in /proc, and the tasks whose real uid is `uid`.
void count_tasks(unsigned uid, std::uint64_t& ids_in_use, std::uint64_t& user_tasks) {
  ids_in_use = 0;
  user_tasks = 0;
  DIR* proc = ::opendir("/proc");
  if (!proc) detail::throw_errno(errno, "opendir /proc");
  while (dirent* e = ::readdir(proc)) {
    if (!all_digits(e->d_name)) continue;
    std::string base = std::string("/proc/") + e->d_name;
    std::uint64_t tasks_here = 0;
    if (DIR* tasks = ::opendir((base + "/task").c_str())) {
      while (dirent* t = ::readdir(tasks)) {
        if (!all_digits(t->d_name)) continue;
        ++tasks_here;
        if (std::strtoull(t->d_name, nullptr, 10) >= reserved_pids) ++ids_in_use;
      }
      ::closedir(tasks);
    }
    // A process that exits while we look simply is not counted.
    if (std::optional<std::string> status = detail::read_file((base + "/status").c_str())) {
      if (std::optional<std::uint64_t> real_uid = detail::status_field(*status, "Uid"); real_uid && *real_uid == uid)
        user_tasks += tasks_here;
    }
  }
  ::closedir(proc);
}

}  // namespace

std::vector<mapping> parse_maps(std::string_view text) {
  std::vector<mapping> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    mapping m;
    if (parse_line(text.substr(pos, eol - pos), m)) out.push_back(std::move(m));
    pos = eol + 1;
  }
  return out;
}

std::vector<mapping> read_maps() { return parse_maps(detail::read_file_or_throw("/proc/self/maps")); }

std::size_t count_vmas() {
  // Streamed through a fixed buffer: this is also called when mappings have run out, when a
  // large allocation could fail.  The buffer is static (one reader at a time, under a lock):
  // this runs on main threads with a few KiB of stack too (the tour under `ulimit -s 16`).
  static std::mutex mu;
  static char buf[4096];
  std::lock_guard<std::mutex> lock(mu);
  // The gate area ([vsyscall]) starts in the kernel's half and is no VMA of ours (see
  // mapping::gate_area).
  const weft::detail::proc::maps_count c = weft::detail::proc::count_maps(kernel_half, buf, sizeof buf);
  if (c.failed) detail::throw_errno(c.error, std::string(c.failed) + " /proc/self/maps");
  return c.lines;
}

process_memory read_process_memory() {
  process_memory pm;
  const std::string status = detail::read_file_or_throw("/proc/self/status");
  pm.vm_size = detail::status_field(status, "VmSize").value_or(0) * 1024;
  pm.vm_rss = detail::status_field(status, "VmRSS").value_or(0) * 1024;
  pm.threads = detail::status_field(status, "Threads").value_or(0);
  const std::vector<mapping> maps = read_maps();
  pm.vma_count = 0;
  for (const mapping& m : maps) pm.vma_count += !m.gate_area();
  for (const mapping& m : maps)
    if (m.name == "[stack]") pm.main_stack = m;

  const int pid = static_cast<int>(::getpid());
  DIR* dir = ::opendir("/proc/self/task");
  if (!dir) detail::throw_errno(errno, "opendir /proc/self/task");
  while (dirent* e = ::readdir(dir)) {
    if (!all_digits(e->d_name)) continue;
    thread_stack ts;
    ts.tid = std::atoi(e->d_name);
    ts.main = ts.tid == pid;
    std::optional<std::string> sc = detail::read_file((std::string("/proc/self/task/") + e->d_name + "/syscall").c_str());
    if (sc && sc->rfind("running", 0) != 0) {
      // "nr args... sp pc" or "-1 sp pc": the stack pointer is the second-to-last field.
      std::vector<std::string_view> fields;
      std::string_view s(*sc);
      while (!s.empty()) {
        skip_spaces(s);
        std::size_t end = s.find_first_of(" \n");
        if (end == std::string_view::npos) end = s.size();
        if (end > 0) fields.push_back(s.substr(0, end));
        s.remove_prefix(end);
        if (!s.empty()) s.remove_prefix(1);
      }
      if (fields.size() >= 3) {
        std::string_view f = fields[fields.size() - 2];
        if (f.substr(0, 2) == "0x") f.remove_prefix(2);
        std::uint64_t sp;
        if (parse_hex(f, sp)) ts.sp = static_cast<std::uintptr_t>(sp);
      }
    }
    if (ts.main && !ts.sp) ts.vma = pm.main_stack;
    pm.thread_stacks.push_back(std::move(ts));
  }
  ::closedir(dir);

  // Which VMA holds each stack pointer.  Stacks of neighbouring threads can merge into one VMA
  // (a thread made with guard size 0 has nothing to keep its stack apart from the one mapped
  // below it); then the VMA is no single thread's stack, and an inaccessible VMA below it is
  // the guard of the lowest stack in it only — the thread whose sp is lowest there.
  std::vector<std::size_t> at(pm.thread_stacks.size(), maps.size());
  for (std::size_t t = 0; t < pm.thread_stacks.size(); ++t) {
    const thread_stack& ts = pm.thread_stacks[t];
    if (!ts.sp) continue;
    for (std::size_t i = 0; i < maps.size(); ++i)
      if (maps[i].start <= *ts.sp && *ts.sp < maps[i].end) at[t] = i;
  }
  for (std::size_t t = 0; t < pm.thread_stacks.size(); ++t) {
    if (at[t] == maps.size()) continue;
    thread_stack& ts = pm.thread_stacks[t];
    const std::size_t i = at[t];
    bool lowest = true;
    for (std::size_t u = 0; u < pm.thread_stacks.size(); ++u) {
      if (u == t || at[u] != i) continue;
      ts.vma_shared = true;
      if (*pm.thread_stacks[u].sp < *ts.sp) lowest = false;
    }
    if (ts.vma_shared) ts.containing_vma = maps[i];
    else ts.vma = maps[i];
    if (lowest && i > 0 && maps[i - 1].end == maps[i].start && !maps[i - 1].accessible())
      ts.guard_below = maps[i - 1].size();
  }
  return pm;
}

system_snapshot take_snapshot() {
  system_snapshot s;
  s.max_map_count = detail::read_u64_or_throw("/proc/sys/vm/max_map_count");
  s.threads_max = detail::read_u64_or_throw("/proc/sys/kernel/threads-max");
  s.pid_max = detail::read_u64_or_throw("/proc/sys/kernel/pid_max");
  s.overcommit_memory = static_cast<int>(detail::read_u64_or_throw("/proc/sys/vm/overcommit_memory"));
  {
    // "0.27 0.18 0.08 1/79 4630": the fourth field is running/total tasks.
    const std::string load = detail::read_file_or_throw("/proc/loadavg");
    std::size_t slash = load.find('/');
    if (slash == std::string::npos) detail::throw_errno(EINVAL, "/proc/loadavg has no task count");
    s.nr_threads = std::strtoull(load.c_str() + slash + 1, nullptr, 10);
  }
  {
    const std::string mem = detail::read_file_or_throw("/proc/meminfo");
    s.mem_available = detail::status_field(mem, "MemAvailable").value_or(0) * 1024;
    s.commit_limit = detail::status_field(mem, "CommitLimit").value_or(0) * 1024;
    s.committed_as = detail::status_field(mem, "Committed_AS").value_or(0) * 1024;
  }
  const std::string status = detail::read_file_or_throw("/proc/self/status");
  s.vm_size = detail::status_field(status, "VmSize").value_or(0) * 1024;
  s.vma_count = count_vmas();
  s.nproc_limit = soft_limit(RLIMIT_NPROC);
  s.as_limit = soft_limit(RLIMIT_AS);
  {
    // copy_process exempts the root user and holders of CAP_SYS_RESOURCE (24) or CAP_SYS_ADMIN (21).
    std::uint64_t caps = 0;
    std::size_t at = status.find("CapEff:");
    if (at != std::string::npos) caps = std::strtoull(status.c_str() + at + 7, nullptr, 16);
    const bool privileged = (caps >> 24 & 1) || (caps >> 21 & 1);
    s.nproc_enforced = ::getuid() != 0 && !privileged;
  }
  count_tasks(static_cast<unsigned>(::getuid()), s.pids_in_use, s.user_tasks);
  {
    char link[64];
    const ssize_t n = ::readlink("/proc/self/ns/pid", link, sizeof link - 1);
    if (n > 0) {
      s.pid_ns.assign(link, static_cast<std::size_t>(n));
      // include/linux/proc_ns.h: PROC_PID_INIT_INO, the initial namespace's fixed inode.
      s.init_pid_ns = s.pid_ns == "pid:[" + std::to_string(0xEFFFFFFCu) + "]";
    }
    std::size_t at = status.find("\nNSpid:");
    if (at != std::string::npos) {
      const std::size_t eol = status.find('\n', at + 1);
      unsigned levels = 0;
      bool in_number = false;
      for (std::size_t i = at + 7; i < eol && i < status.size(); ++i) {
        const bool digit = status[i] >= '0' && status[i] <= '9';
        levels += digit && !in_number;
        in_number = digit;
      }
      if (levels) s.pid_ns_levels_seen = levels;
    }
    // "0-1" or "0-3,8-11": the default pid_max is max(32768, 1024 per possible CPU).
    if (std::optional<std::string> cpus = detail::read_file("/sys/devices/system/cpu/possible")) {
      unsigned count = 0;
      std::string_view rest(*cpus);
      while (!rest.empty()) {
        std::uint64_t a = 0, b = 0;
        if (!parse_dec(rest, a)) break;
        b = a;
        if (!rest.empty() && rest.front() == '-') {
          rest.remove_prefix(1);
          if (!parse_dec(rest, b)) break;
        }
        count += static_cast<unsigned>(b - a + 1);
        if (rest.empty() || rest.front() != ',') break;
        rest.remove_prefix(1);
      }
      if (count) s.possible_cpus = count;
    }
  }
  return s;
}

const char* to_string(capacity_limit l) noexcept {
  switch (l) {
    case capacity_limit::max_map_count: return "vm.max_map_count";
    case capacity_limit::pid_max: return "kernel.pid_max";
    case capacity_limit::threads_max: return "kernel.threads-max";
    case capacity_limit::rlimit_nproc: return "RLIMIT_NPROC";
    case capacity_limit::memory: return "memory";
    case capacity_limit::address_space: return "address space";
    case capacity_limit::commit_limit: return "vm.overcommit_memory=2 commit limit";
    case capacity_limit::ancestor_pid_max: return "kernel.pid_max of an ancestor pid namespace";
  }
  return "?";
}

const capacity_row& capacity_estimate::binding() const {
  if (rows.empty()) throw std::logic_error("weft: kmodel: an empty capacity estimate has no binding limit");
  const capacity_row* best = &rows.front();
  for (const capacity_row& r : rows)
    if (r.threads < best->threads) best = &r;
  return *best;
}

capacity_estimate estimate_capacity(const system_snapshot& s, std::size_t stack_size, guard_style guards,
                                    std::size_t guard_size, std::size_t page_size) {
  capacity_estimate e;
  e.stack_size = stack_size;
  const std::size_t guard = detail::round_up(guard_size, page_size);
  e.block_size = detail::round_up(stack_size, page_size) + guard;
  e.vmas_per_thread = (guard != 0 && guards == guard_style::mprotect) ? 2 : 1;
  // A kernel stack, the task_struct and its companions, two touched stack pages, and a page
  // table page when each stack sits in its own 2 MiB region.
  e.bytes_per_thread = 16 * 1024 + 12 * 1024 + 2 * page_size + (e.block_size >= (std::size_t{2} << 20) ? page_size : 0);

  auto sub = [](std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; };
  auto n = [](std::uint64_t v) { return std::to_string(v); };

  e.rows.push_back({capacity_limit::max_map_count, sub(s.max_map_count, s.vma_count) / e.vmas_per_thread,
                    "(" + n(s.max_map_count) + " - " + n(s.vma_count) + " VMAs now) / " + n(e.vmas_per_thread) +
                        " per thread"});
  const std::uint64_t id_range = s.pid_max > reserved_pids ? s.pid_max - reserved_pids : s.pid_max;
  e.rows.push_back({capacity_limit::pid_max, sub(id_range, s.pids_in_use),
                    "(" + n(s.pid_max) + " - " + n(reserved_pids) + " reserved) - " + n(s.pids_in_use) +
                        (s.init_pid_ns == true ? " task ids in use on the machine" : " task ids in use in this pid namespace")});
  if (s.init_pid_ns != true) {
    // Inside a pid namespace every thread also needs an id in each ancestor.  Their pid_max and
    // their ids in use are not visible from here; what is: nr_threads (/proc/loadavg) counts
    // every task on the machine, and each holds an id in the initial namespace.  Ids below
    // RESERVED_PIDS (early kernel threads) are counted too, so this errs a little low.  The
    // initial namespace's pid_max is the caller's if given, else the kernel's default
    // (kernel/pid.c pid_idr_init: max(PID_MAX_DEFAULT, PIDS_PER_CPU_DEFAULT x possible CPUs)).
    const std::uint64_t dflt = std::max<std::uint64_t>(32768, 1024ull * s.possible_cpus);
    const std::uint64_t host = s.init_pid_max.value_or(dflt);
    const std::uint64_t range = host > reserved_pids ? host - reserved_pids : host;
    capacity_row r{capacity_limit::ancestor_pid_max, sub(range, s.nr_threads),
                   "(" + n(host) + (s.init_pid_max ? " given" : " assumed") + " - " + n(reserved_pids) +
                       " reserved) - " + n(s.nr_threads) + " tasks on the machine",
                   !s.init_pid_max.has_value()};
    e.rows.push_back(r);
    std::string where = s.init_pid_ns ? "this process is in pid namespace " + s.pid_ns + ", not the initial one"
                                      : std::string("/proc/self/ns/pid cannot be read, so the pid namespace is unknown");
    e.unknowns.push_back(where + ": kernel.pid_max here (" + n(s.pid_max) +
                         ") is this namespace's; the initial namespace's pid_max and its ids in use cannot be read "
                         "from inside" +
                         (s.init_pid_max ? std::string(" (given: ") + n(*s.init_pid_max) + ")"
                                         : " (assumed the kernel default " + n(dflt) + " = max(32768, 1024 x " +
                                               n(s.possible_cpus) + " possible CPUs); hosts often raise it)"));
    e.unknowns.push_back("an intermediate ancestor namespace's pid_max (nested containers) is not visible at all");
  }
  e.rows.push_back({capacity_limit::threads_max, sub(s.threads_max, s.nr_threads),
                    n(s.threads_max) + " - " + n(s.nr_threads) + " tasks on the machine"});
  if (s.nproc_enforced && s.nproc_limit) {
    e.rows.push_back({capacity_limit::rlimit_nproc, sub(*s.nproc_limit, s.user_tasks),
                      n(*s.nproc_limit) + " - " + n(s.user_tasks) + " tasks of this user"});
  }
  if (s.overcommit_memory == 2) {
    e.rows.push_back({capacity_limit::commit_limit, sub(s.commit_limit, s.committed_as) / (e.block_size - guard),
                      "(" + n(s.commit_limit) + " - " + n(s.committed_as) + " committed) / " +
                          size_text(e.block_size - guard) + " writable per thread"});
  }
  const std::uint64_t space = s.as_limit ? *s.as_limit : s.task_size;
  e.rows.push_back({capacity_limit::address_space, sub(space, s.vm_size) / e.block_size,
                    "(" + std::string(s.as_limit ? "RLIMIT_AS " : "") + size_text(space) + " - " + size_text(s.vm_size) +
                        " mapped) / " + size_text(e.block_size) + " per thread"});
  e.rows.push_back({capacity_limit::memory, s.mem_available / e.bytes_per_thread,
                    size_text(s.mem_available) + " available / ~" + n(e.bytes_per_thread / 1024) +
                        " KiB per parked thread (rough)"});
  return e;
}

}  // namespace weft::kmodel
