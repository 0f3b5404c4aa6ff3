// SPDX-License-Identifier: Apache-2.0
// dump.cpp — every goroutine, for a person: appended to a fatal error, printed on SIGQUIT
// (sched/signals.cpp), and on demand (weft::dump_goroutines).
//
// For each goroutine: id, state, what it waits for and for how long, its stack (bytes in use,
// size, the slot it may grow in), its pins, where it was made (the go/spawn call site), and,
// for a parked one, its frames.  Frames are walked by frame pointers from the saved context
// (arch/cpu.hpp names where the context keeps rbp and the return address): weft is built with
// -fno-omit-frame-pointer and its package adds the flag to its users' code; a frame built
// without one ends the walk early.  Names come from the modules' ELF symbol tables
// (diag/symbolize.hpp), with the module and offset that `addr2line -f -C -e` resolves to a
// line.
//
// Safety.  A parked goroutine is held still while its frames are read, by the scanner's
// protocol (g.hpp: waiting → scanning → waiting): ready() waits for it, and nothing moves or
// shrinks its stack meanwhile.  Reads stay inside its accessible stack [stk.lo, stk.hi) and go
// strictly upward.  A runnable or running goroutine's stack may change under the reader, so it
// is listed without frames (Go stops the world for a dump; weft does not).  No allocation when
// dying: one static table, snprintf into a buffer, write(2).
//
// Bounded.  Up to kDetailed goroutines are printed one by one.  Past that, goroutines with the
// same state, wait reason and frames print once, with their count and first ids — Go's
// goroutine profile at debug=1 — so a million parked goroutines make a few lines per kind.
// Rejected: a dump walking every stack from a signal handler without the scanning hold (a
// concurrent shrink installs guard markers above the old bottom, and the read would fault).
#include "runtime/sched/dump.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/cpu.hpp"
#include "runtime/diag/fatal.hpp"
#include "runtime/diag/symbolize.hpp"
#include "runtime/sched/pin.hpp"
#include "runtime/sched/sched.hpp"
#include "weft/stats.hpp"

namespace weft::detail {
namespace {

constexpr int kMaxFrames = 24;
constexpr std::uint64_t kDetailed = 64;  // more live goroutines than this: grouped
constexpr std::size_t kGroups = 256;     // kinds of stack told apart when grouped
constexpr int kIdsShown = 8;

struct out_buf {
  explicit out_buf(int f) noexcept : fd(f) {}
  int fd;
  char buf[8192];
  std::size_t n = 0;
  void flush() noexcept {
    const char* p = buf;
    std::size_t left = n;
    while (left > 0) {
      ssize_t w = ::write(fd, p, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        break;  // nowhere left to write to
      }
      p += w;
      left -= static_cast<std::size_t>(w);
    }
    n = 0;
  }
  void put(const char* s, std::size_t len) noexcept {
    while (len > 0) {
      if (n == sizeof buf) flush();
      std::size_t k = std::min(len, sizeof buf - n);
      std::memcpy(buf + n, s, k);
      n += k;
      s += k;
      len -= k;
    }
  }
  void printf(const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3))) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = std::vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k > 0) put(line, std::min<std::size_t>(static_cast<std::size_t>(k), sizeof line - 1));
  }
};

// Whether pc lies in one of the runtime's switch functions (switch_to, switch_away,
// switch_to_new...) or in park itself, which a parked goroutine's frames start with in a
// varying number (inlined or not, by optimisation level and path; the direct park leaves
// park's frame by a tail call, the park through g0 does not): they say nothing about the
// goroutine and would split identical stacks into kinds, so the walk drops them.  Decided by
// name, once per address, in a small table.
bool in_switch_code(std::uintptr_t pc) noexcept {
  struct entry {
    std::atomic<std::uintptr_t> pc{0};
    std::atomic<int> is_switch{0};
  };
  static entry cache[64];
  entry& e = cache[(pc >> 4) % 64];
  if (e.pc.load(std::memory_order_acquire) == pc) return e.is_switch.load(std::memory_order_relaxed) != 0;
  symbol sy;
  const bool yes = symbolize(pc - 1, &sy) && std::strncmp(sy.name, "_ZN4weft6detail", 15) == 0 &&
                   (std::strstr(sy.name, "switch_") != nullptr || std::strstr(sy.name, "6switch") != nullptr ||
                    std::strncmp(sy.name, "_ZN4weft6detail4parkE", 21) == 0 ||
                    std::strncmp(sy.name, "_ZN4weft6detailL4parkE", 22) == 0);
  e.is_switch.store(yes ? 1 : 0, std::memory_order_relaxed);
  e.pc.store(pc, std::memory_order_release);
  return yes;
}

// The frames of a goroutine parked with context ctx on [lo, hi): return addresses, innermost
// first, from the context's own return address on.  Leading frames in switch code (switch_to,
// switch_away, park... which a parked goroutine's stack starts with in a number that depends on
// the path and on inlining and tail calls) are left out: they say nothing about the goroutine
// and would split otherwise identical stacks into kinds.
// (Reads another goroutine's stack words: out of AddressSanitizer's sight, as a debugger's.)
__attribute__((no_sanitize("address"))) int walk_frames(std::uintptr_t ctx, std::uintptr_t lo, std::uintptr_t hi,
                                                        std::uintptr_t* pcs) noexcept {
  if (ctx < lo || ctx + arch::kContextReturnAddress + 8 > hi) return 0;
  int n = 0;
  // The context's return address: in whichever function called the switch — a switch
  // function, or, when that one left by a tail call, its caller (block, after a direct park).
  const std::uintptr_t first = *reinterpret_cast<const std::uintptr_t*>(ctx + arch::kContextReturnAddress);
  if (first >= 4096 && !in_switch_code(first)) pcs[n++] = first;
  std::uintptr_t fp = *reinterpret_cast<const std::uintptr_t*>(ctx + arch::kContextFramePointer);
  std::uintptr_t prev = ctx;
  while (n < kMaxFrames && fp > prev && fp >= lo && fp + 16 <= hi && (fp & 7) == 0) {
    const std::uintptr_t pc = reinterpret_cast<const std::uintptr_t*>(fp)[1];
    if (pc < 4096) break;
    if (n > 0 || !in_switch_code(pc)) pcs[n++] = pc;
    prev = fp;
    fp = reinterpret_cast<const std::uintptr_t*>(fp)[0];
  }
  return n;
}

void print_pc(out_buf& o, const char* prefix, std::uintptr_t pc, bool demangle) noexcept {
  char line[1024];
  // A return address points after its call: name the call instruction's function.
  std::size_t k = format_symbol(pc > 0 ? pc - 1 : pc, demangle, line, sizeof line);
  o.put(prefix, std::strlen(prefix));
  o.put(line, k);
  o.put("\n", 1);
}

void print_duration(char* buf, std::size_t n, std::int64_t ns) noexcept {
  if (ns < 0) ns = 0;
  if (ns < 1'000'000'000) std::snprintf(buf, n, "%lld ms", (long long)(ns / 1'000'000));
  else if (ns < 120'000'000'000LL) std::snprintf(buf, n, "%.1f s", double(ns) / 1e9);
  else std::snprintf(buf, n, "%lld minutes", (long long)(ns / 60'000'000'000LL));
}

// Holds gp still for reading its frames (waiting → scanning), if it is parked.
bool hold(g* gp) noexcept {
  gstatus w = gstatus::waiting;
  if (!gp->status.compare_exchange_strong(w, gstatus::scanning, std::memory_order_acq_rel)) return false;
  tsan_acquire_status(gp);
  return true;
}
void release(g* gp) noexcept { gp->status.store(gstatus::waiting, std::memory_order_release); }

struct group {
  gstatus st;
  const char* reason;
  int nframes;
  std::uintptr_t pcs[kMaxFrames];
  std::uintptr_t created_pc;
  std::uint64_t count;
  std::uint64_t ids[kIdsShown];
  std::int64_t oldest;
};
group g_groups[kGroups];
std::atomic_flag g_groups_busy = ATOMIC_FLAG_INIT;

// The records of goroutines that are not held (running, queued) are read as they change: a
// dump is a moment's picture, and its fields are words a torn read cannot make dangerous (no
// pointer read here is followed).  So ThreadSanitizer does not watch these two readers.
#define WEFT_DUMP_READER __attribute__((no_sanitize("thread")))

WEFT_DUMP_READER void print_one(out_buf& o, sched* s, g* gp, gstatus st, bool demangle, std::int64_t now) noexcept {
  char waited[32] = "";
  if (st == gstatus::waiting && gp->wait_since) {
    waited[0] = ',';
    waited[1] = ' ';
    print_duration(waited + 2, sizeof waited - 2, now - gp->wait_since);
  }
  const std::size_t slot = s->stacks.room(gp->stk);
  o.printf("\ngoroutine %llu [%s%s%s%s]: stack %zu bytes, slot %zu bytes at [%#lx, %#lx)",
           (unsigned long long)gp->id, status_name(st), st == gstatus::waiting ? ", " : "",
           st == gstatus::waiting ? gp->wait_reason : "", waited, gp->stk.size(), slot,
           (unsigned long)gp->stk.lo, (unsigned long)gp->stk.hi);
  const std::uint32_t pins = pin_count(gp);
  if (pins) o.printf(", %u pin%s", pins, pins == 1 ? "" : "s");
  std::uintptr_t pcs[kMaxFrames];
  int n = 0;
  if (st == gstatus::waiting && hold(gp)) {
    const auto ctx = reinterpret_cast<std::uintptr_t>(gp->ctx);
    if (ctx) {
      o.printf(", %zu in use", static_cast<std::size_t>(gp->stk.hi - ctx));
      n = walk_frames(ctx, gp->stk.lo, gp->stk.hi, pcs);
    }
    release(gp);
  }
  o.put("\n", 1);
  for (int i = 0; i < n; ++i) print_pc(o, "    ", pcs[i], demangle);
  if (gp->created_pc) print_pc(o, "  created by ", gp->created_pc, demangle);
}

WEFT_DUMP_READER void print_grouped(out_buf& o, sched* s, bool demangle, std::int64_t now, bool dying) noexcept {
  // One dump at a time uses the table; a second waits (or, dying, goes on without grouping).
  while (g_groups_busy.test_and_set(std::memory_order_acquire)) {
    if (dying) {
      o.printf("\n(another dump is running: goroutines not grouped)\n");
      return;
    }
    ::sched_yield();
  }
  std::size_t ngroups = 0;
  std::uint64_t ungrouped = 0, total = 0;
  bool locked = s->allg_lock.try_lock();
  for (g* gp = s->allg; gp; gp = gp->all_link) {
    const gstatus st = gp->status.load(std::memory_order_acquire);
    if (st == gstatus::dead) continue;
    ++total;
    std::uintptr_t pcs[kMaxFrames];
    int n = 0;
    if (st == gstatus::waiting && hold(gp)) {
      if (const auto ctx = reinterpret_cast<std::uintptr_t>(gp->ctx)) n = walk_frames(ctx, gp->stk.lo, gp->stk.hi, pcs);
      release(gp);
    }
    const char* reason = st == gstatus::waiting ? gp->wait_reason : "";
    std::size_t i = 0;
    for (; i < ngroups; ++i) {
      group& gr = g_groups[i];
      if (gr.st == st && gr.reason == reason && gr.nframes == n && gr.created_pc == gp->created_pc &&
          std::memcmp(gr.pcs, pcs, sizeof(std::uintptr_t) * static_cast<std::size_t>(n)) == 0)
        break;
    }
    if (i == ngroups) {
      if (ngroups == kGroups) {
        ++ungrouped;
        continue;
      }
      group& gr = g_groups[ngroups++];
      gr.st = st;
      gr.reason = reason;
      gr.nframes = n;
      std::memcpy(gr.pcs, pcs, sizeof(std::uintptr_t) * static_cast<std::size_t>(n));
      gr.created_pc = gp->created_pc;
      gr.count = 0;
      gr.oldest = now;
    }
    group& gr = g_groups[i];
    if (gr.count < kIdsShown) gr.ids[gr.count] = gp->id;
    ++gr.count;
    if (st == gstatus::waiting && gp->wait_since && gp->wait_since < gr.oldest) gr.oldest = gp->wait_since;
  }
  if (locked) s->allg_lock.unlock();
  // Most numerous first.
  std::sort(g_groups, g_groups + ngroups, [](const group& a, const group& b) { return a.count > b.count; });
  o.printf("%llu goroutines, %zu kinds (same state, wait reason, frames and creator):\n", (unsigned long long)total,
           ngroups);
  for (std::size_t i = 0; i < ngroups; ++i) {
    const group& gr = g_groups[i];
    char waited[40] = "";
    if (gr.st == gstatus::waiting && gr.oldest < now) {
      std::strcpy(waited, ", longest ");
      print_duration(waited + std::strlen(waited), sizeof waited - std::strlen(waited), now - gr.oldest);
    }
    o.printf("\n%llu goroutine%s [%s%s%s%s]: ids", (unsigned long long)gr.count, gr.count == 1 ? "" : "s",
             status_name(gr.st), gr.reason[0] ? ", " : "", gr.reason, waited);
    for (std::uint64_t k = 0; k < std::min<std::uint64_t>(gr.count, kIdsShown); ++k)
      o.printf(" %llu", (unsigned long long)gr.ids[k]);
    o.printf("%s\n", gr.count > kIdsShown ? " ..." : "");
    for (int k = 0; k < gr.nframes; ++k) print_pc(o, "    ", gr.pcs[k], demangle);
    if (gr.created_pc) print_pc(o, "  created by ", gr.created_pc, demangle);
  }
  if (ungrouped) o.printf("\n%llu more goroutines of other kinds (more than %zu kinds)\n", (unsigned long long)ungrouped, kGroups);
  g_groups_busy.clear(std::memory_order_release);
}

}  // namespace

void dump_goroutines_to(int fd, dump_context ctx) noexcept {
  sched* s = current_sched();
  if (!s) return;
  const bool demangle = ctx == dump_context::on_demand;
  const bool dying = ctx == dump_context::dying;
  out_buf o(fd);
  const std::int64_t now = monotonic_ns();
  const std::uint64_t live = live_goroutines(s);
  o.printf("\ngoroutine dump: %llu live, %zu procs, %llu threads (frames walked by frame pointers; "
           "`addr2line -f -C -e MODULE OFFSET` gives lines)\n",
           (unsigned long long)live, s->allp.size(), (unsigned long long)s->st.threads.load());
  if (live > kDetailed) {
    print_grouped(o, s, demangle, now, dying);
  } else {
    bool locked = s->allg_lock.try_lock();
    int shown = 0;
    for (g* gp = s->allg; gp && shown < 1000; gp = gp->all_link) {
      const gstatus st = gp->status.load(std::memory_order_acquire);
      if (st == gstatus::dead) continue;
      print_one(o, s, gp, st, demangle, now);
      ++shown;
    }
    if (locked) s->allg_lock.unlock();
  }
  o.flush();
}

}  // namespace weft::detail

namespace weft {

void dump_goroutines(int fd) { detail::dump_goroutines_to(fd, detail::dump_context::on_demand); }

std::string dump_goroutines() {
  const int fd = ::memfd_create("weft-goroutine-dump", MFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "weft::dump_goroutines: memfd_create failed");
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } c{fd};
  detail::dump_goroutines_to(fd, detail::dump_context::on_demand);
  if (::lseek(fd, 0, SEEK_SET) != 0)
    throw std::system_error(errno, std::generic_category(), "weft::dump_goroutines: lseek failed");
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "weft::dump_goroutines: read failed");
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace weft
