// SPDX-License-Identifier: Apache-2.0
// weft-stress — stack-growth stress (DESIGN §7): many goroutines doing random, deep,
// pointer-rich recursion while scans run concurrently; every frame's state is checked on the
// way back up, every byte of plain data each frame wrote, and every round's checksum against
// its closed form.
//
//   weft-stress [--seconds N] [--goroutines N] [--strategy S] [--reserve SIZE]
//               [--procs N] [--max-depth N] [--seed N] [--expect-hazard]
//
// Exit status: 0 when every check held, 1 when any failed (each failure is reported),
// 2 for bad arguments (with the usage).  With --expect-hazard: 0 when the plain-data hazard
// of copying showed (some frame's bytes changed) and every other check held, 1 otherwise.
// Built twice: weft-stress with explicit checks (WEFT_STACK_CHECK in every recursive frame)
// and, on x86_64, weft-stress-split with -fsplit-stack prologues and no explicit checks.
//
// What a round does, in one goroutine: pick a depth, recurse; each frame holds a parent
// pointer, a reference to the round's accumulator, a short std::string (its buffer is in the
// frame), a std::function capturing locals by reference, and a filled pad.  At the bottom:
// walk the parent chain; sometimes throw an exception and catch it at the top (destructors
// counted); sometimes spawn a child that writes into the bottom frame through a [&] capture
// (pinning the stack) while this goroutine parks.  Between rounds it parks briefly, so the
// scanner — a plain thread calling weft::scan() in a loop — can shrink it.
//
// Plain data (issue 22): each frame also holds what ordinary C++ keeps on a stack without a
// second thought — a char buffer that is never cleared, into which snprintf and memcpy write
// a few bytes of each 8-byte word, and an array of {uint16_t port; uint64_t n;} whose fields
// are assigned one by one, so the 6 bytes of padding after each port are never written.  The
// unwritten bytes keep whatever dead frames left there, often part of a stack address; a word
// of fresh bytes beside such leftovers can read as a pointer into the stack, and the
// conservative pointer adjustment of a stack copy (WEFT_STACK=copy past the slot: every
// doubling and halving with --reserve 0) rewrites it, fresh bytes included.  When its callees
// have returned, each frame checks every byte it wrote.  Strategies that never move a frame
// (a reserve no stack outgrows; segmented; in_place) must show no such failure; copy that
// copies is expected to, which is what --expect-hazard is for.
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>

#include "weft/weft.hpp"

#if defined(WEFT_STRESS_SPLIT_STACK)
#define STRESS_CHECK(n) ((void)0)
#else
#define STRESS_CHECK(n) WEFT_STACK_CHECK(n)
#endif

namespace {

std::atomic<long> g_failures{0};        // sums, frame state, exceptions, destructors, children
std::atomic<long> g_plain_failures{0};  // frames whose plain data changed

__attribute__((noinline, cold)) void report(const char* what, long depth, long round) {
  // fprintf is code without checks: with explicit checks, make room for it first.
  STRESS_CHECK(16 * 1024);
  std::fprintf(stderr, "weft-stress: FAILED: %s (depth %ld, round %ld, goroutine %" PRIu64 ")\n", what, depth, round,
               weft::this_goroutine());
}

void fail(const char* what, long depth, long round) {
  if (g_failures.fetch_add(1) < 20) report(what, depth, round);
}

struct round_state {
  long round;
  long depth;          // bottom of this round
  bool throw_at_bottom;
  bool child_at_bottom;
  int goroutine;       // which of the stress's goroutines (0 .. --goroutines - 1)
  long accumulated = 0;
  long destructed = 0;
};

struct frame {
  frame* parent;
  long depth;
  round_state& rs;
  std::string tag;
  std::function<long()> get;
  unsigned char pad[200];
};

struct bottom_reached {
  long depth;
  std::string tag;
};

// Appended rather than "r" + to_string(...): GCC 12 at -O3 warns (-Wrestrict) about the
// memcpy inside operator+(const char*, string&&), a false positive that -Werror turns fatal.
std::string tag_for(long depth, long round) {
  std::string s = "r";
  s += std::to_string(round % 100);
  s += 'd';
  s += std::to_string(depth % 1000);
  return s;
}

bool intact(const frame& f) {
  if (f.tag != tag_for(f.depth, f.rs.round)) return false;
  for (unsigned char b : f.pad)
    if (b != static_cast<unsigned char>(f.depth + f.rs.round)) return false;
  return f.get() == 3 * f.depth + f.rs.round;
}

// ---- Plain data: bytes a frame writes and checks (see the top of this file) -----------------

constexpr unsigned kTextBytes = 64;  // 8 words
constexpr unsigned kPorts = 8;
struct port_entry {
  std::uint16_t port;  // 6 bytes of padding follow: never written
  std::uint64_t n;
};
static_assert(sizeof(port_entry) == 16, "port_entry: 2 bytes of port, 6 of padding, 8 of n");
// Byte i of a word is bits 8i..8i+7 here (x86_64, arm64): write_plain and plain_intact rely on it.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "weft-stress's plain-data check assumes little-endian");

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Everything a frame writes follows from (goroutine, depth, round): a frame at the same depth
// in the next round writes other values, so leftovers of the last round cannot pass for them.
std::uint64_t plain_key(int goroutine, long depth, long round) {
  return mix((static_cast<std::uint64_t>(goroutine) << 44) ^ (static_cast<std::uint64_t>(depth) << 24) ^
             static_cast<std::uint64_t>(round));
}
// The i-th value of a frame: one multiply from the key (mixed once per frame) is enough.
std::uint64_t plain_value(std::uint64_t key, unsigned i) {
  std::uint64_t x = (key ^ (0x9e3779b97f4a7c15ULL * (i + 1))) * 0xbf58476d1ce4e5b9ULL;
  return x ^ (x >> 29);
}

// What word w of the char buffer gets: `len` (1 to 3) fresh bytes from byte `start` (0 to 3),
// so bytes 6 and 7 — where a stack address has its 0x00007f.. — and some others always keep
// what was there.  One word of each frame by snprintf(dst, len, "%08x", v), which writes
// len - 1 hex digits and a NUL; the others by memcpy.  (A call to snprintf costs about as much
// as the rest of the frame: one keeps the rounds, and so the growth, copies and scans, coming.)
struct text_run {
  unsigned start, len;
  bool by_snprintf;
  std::uint64_t v;
};
text_run run_for(std::uint64_t key, unsigned w) {
  std::uint64_t v = plain_value(key, w);
  constexpr unsigned words = kTextBytes / 8;
  bool by_snprintf = w == key % words;
  return {static_cast<unsigned>(v & 3), 1 + static_cast<unsigned>((v >> 2) % 3), by_snprintf, v};
}
// Byte i of a run as it must read: computed here, not by the calls that wrote it.
unsigned char run_byte(const text_run& r, unsigned i) {
  if (!r.by_snprintf) return static_cast<unsigned char>(r.v >> (16 + 8 * i));
  if (i + 1 == r.len) return 0;
  return static_cast<unsigned char>("0123456789abcdef"[(static_cast<std::uint32_t>(r.v >> 32) >> (28 - 4 * i)) & 15]);
}
std::uint16_t port_for(std::uint64_t key, unsigned k) { return static_cast<std::uint16_t>(plain_value(key, 100 + k)); }
std::uint64_t n_for(std::uint64_t key, unsigned k) { return plain_value(key, 200 + k); }

// Writes the frame's plain data.  False if snprintf did not say it formatted 8 characters.
__attribute__((noinline)) bool write_plain(char* text, port_entry* ports, std::uint64_t key) {
  bool ok = true;
  for (unsigned w = 0; w < kTextBytes / 8; ++w) {
    text_run r = run_for(key, w);
    char* dst = text + 8 * w + r.start;
    if (r.by_snprintf) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation"  // cut short on purpose: len - 1 digits and a NUL
      ok &= std::snprintf(dst, r.len, "%08x", static_cast<unsigned>(r.v >> 32)) == 8;
#pragma GCC diagnostic pop
    } else {
      // Bytes 2, 3 and 4 of v, in that order (little-endian), and a constant length each:
      // stores in place, not a call to memmove.
      auto lo = static_cast<std::uint16_t>(r.v >> 16);
      auto hi = static_cast<unsigned char>(r.v >> 32);
      if (r.len == 1) std::memcpy(dst, &lo, 1);
      else if (r.len == 2) std::memcpy(dst, &lo, 2);
      else std::memcpy(dst, &lo, 2), std::memcpy(dst + 2, &hi, 1);
    }
  }
  for (unsigned k = 0; k < kPorts; ++k) {  // the fields only: the padding keeps its leftovers
    ports[k].port = port_for(key, k);
    ports[k].n = n_for(key, k);
  }
  return ok;
}

struct plain_damage {
  unsigned bad = 0, written = 0;  // bytes that differ, bytes written
  char where[40] = {};            // the first that differs: "text[37] (by memcpy)", "ports[2].port byte 1"
  unsigned expected = 0, found = 0;
  std::uint64_t word = 0;         // the aligned 8-byte word holding it, as it reads now
};

// Counts one written byte; true for the first that differs (the caller names it then).
bool note(plain_damage& d, const unsigned char* p, unsigned char expected) {
  ++d.written;
  if (*p == expected || d.bad++ != 0) return false;
  d.expected = expected;
  d.found = *p;
  std::memcpy(&d.word, reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{7}), 8);
  return true;
}

// Byte by byte, naming the first that differs: only for plain data known to be damaged.
// (Out of line, as the reports below, so that recurse's frame stays small.)
__attribute__((noinline, cold)) plain_damage describe_damage(const char* text, const port_entry* ports, std::uint64_t key) {
  plain_damage d;
  for (unsigned w = 0; w < kTextBytes / 8; ++w) {
    text_run r = run_for(key, w);
    for (unsigned i = 0; i < r.len; ++i) {
      unsigned at = 8 * w + r.start + i;
      if (note(d, reinterpret_cast<const unsigned char*>(text + at), run_byte(r, i)))
        std::snprintf(d.where, sizeof d.where, "text[%u] (by %s)", at, r.by_snprintf ? "snprintf" : "memcpy");
    }
  }
  for (unsigned k = 0; k < kPorts; ++k) {
    std::uint16_t port = port_for(key, k);
    std::uint64_t n = n_for(key, k);
    for (unsigned i = 0; i < sizeof port; ++i)
      if (note(d, reinterpret_cast<const unsigned char*>(&ports[k].port) + i, static_cast<unsigned char>(port >> (8 * i))))
        std::snprintf(d.where, sizeof d.where, "ports[%u].port byte %u", k, i);
    for (unsigned i = 0; i < sizeof n; ++i)
      if (note(d, reinterpret_cast<const unsigned char*>(&ports[k].n) + i, static_cast<unsigned char>(n >> (8 * i))))
        std::snprintf(d.where, sizeof d.where, "ports[%u].n byte %u", k, i);
  }
  return d;
}

// Checks every byte write_plain wrote: true if all read as written.  A word at a time, under
// a mask of the bytes written.
__attribute__((noinline)) bool plain_intact(const char* text, const port_entry* ports, std::uint64_t key) {
  std::uint64_t differ = 0;
  for (unsigned w = 0; w < kTextBytes / 8; ++w) {
    text_run r = run_for(key, w);
    std::uint64_t want = 0;
    if (r.by_snprintf) {
      for (unsigned i = 0; i < r.len; ++i) want |= std::uint64_t{run_byte(r, i)} << (8 * i);
    } else {
      want = r.v >> 16;
    }
    std::uint64_t mask = (~std::uint64_t{0} >> (64 - 8 * r.len)) << (8 * r.start);
    std::uint64_t got;
    std::memcpy(&got, text + 8 * w, 8);
    differ |= (got ^ (want << (8 * r.start))) & mask;
  }
  if (differ) return false;
  for (unsigned k = 0; k < kPorts; ++k)
    if (ports[k].port != port_for(key, k) || ports[k].n != n_for(key, k)) return false;
  return true;
}

__attribute__((noinline, cold)) void fail_plain(const plain_damage& d, long depth, const round_state& rs) {
  if (g_plain_failures.fetch_add(1) >= 20) return;
  char what[320];
  std::snprintf(what, sizeof what,
                "%u of the %u bytes of plain data a frame wrote changed (stress goroutine %d); the first, %s, "
                "should be 0x%02x and is 0x%02x, in the 8-byte word 0x%016" PRIx64,
                d.bad, d.written, rs.goroutine, d.where, d.expected, d.found, d.word);
  report(what, depth, rs.round);
}

__attribute__((noinline)) long recurse(frame* parent, long depth, round_state& rs) {
  STRESS_CHECK(1024);
  struct counter {
    round_state& rs;
    ~counter() { ++rs.destructed; }
  } c{rs};
  long local = 2 * depth + rs.round;
  frame me{parent, depth, rs, tag_for(depth, rs.round), {}, {}};
  me.get = [&] { return local + me.depth; };
  std::memset(me.pad, static_cast<int>((depth + rs.round) & 0xff), sizeof me.pad);
  // Plain data: neither is cleared first (the leftovers of dead frames are the point).
  alignas(16) char text[kTextBytes];
  port_entry ports[kPorts];
  const std::uint64_t key = plain_key(rs.goroutine, depth, rs.round);
  STRESS_CHECK(8 * 1024);  // snprintf is code without checks
  if (!write_plain(text, ports, key)) fail("snprintf did not format 8 characters", depth, rs.round);
  asm volatile("" : : "r"(text), "r"(ports) : "memory");  // in memory, as written, from here on
  rs.accumulated += depth;
  long r = 0;
  if (depth == rs.depth) {
    long expect = depth;
    for (frame* f = &me; f; f = f->parent, --expect) {
      if (f->depth != expect || !intact(*f) || &f->rs != &rs) {
        fail("a frame in the parent chain is damaged", f->depth, rs.round);
        break;
      }
      r += f->depth;
    }
    // What follows calls code without checks (weft, the unwinder): with explicit checks the
    // caller makes room for it, as gold does for split-stack code (16 KiB).
    if (rs.child_at_bottom || rs.throw_at_bottom) STRESS_CHECK(16 * 1024);
    if (rs.child_at_bottom) {
      // The child writes into this frame through a [&] capture: the stack is pinned until it
      // ends.  This goroutine parks meanwhile (scans may shrink it in place, never move it).
      long written = 0;
      weft::chan<int> done(1);
      weft::go([&] {
        written = local * 10;
        me.pad[0] = static_cast<unsigned char>(depth + rs.round);  // same value: stays intact
        done.send(1);
      });
      (void)done.recv();
      if (written != local * 10) fail("a go([&]) child's write into the parent's frame was lost", depth, rs.round);
    }
    if (rs.throw_at_bottom) throw bottom_reached{depth, me.tag};
  } else {
    r = recurse(&me, depth + 1, rs);
  }
  if (!plain_intact(text, ports, key)) fail_plain(describe_damage(text, ports, key), depth, rs);
  if (!intact(me) || me.parent != parent) fail("a frame's own state changed across growth, scans or copies", depth, rs.round);
  return r;
}

struct config {
  double seconds = 10;
  int goroutines = 64;
  std::optional<std::string> strategy;  // unset: WEFT_STACK, else the runtime's default
  std::optional<std::size_t> reserve;
  unsigned procs = 2;
  long max_depth = 3000;
  std::uint64_t seed = 1;
  bool expect_hazard = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "weft-stress: %s\n"
               "usage: weft-stress [--seconds N] [--goroutines N] [--strategy S] [--reserve SIZE]\n"
               "                   [--procs N] [--max-depth N] [--seed N] [--expect-hazard]\n"
               "  --seconds N       run for N seconds (default 10; decimals allowed)\n"
               "  --goroutines N    goroutines recursing at once (default 64)\n"
               "  --strategy S      how stacks grow past their slot, handed to the runtime as WEFT_STACK:\n"
               "                    copy, segmented, or any other strategy it knows (default: WEFT_STACK,\n"
               "                    else the runtime's default)\n"
               "  --reserve SIZE    address space per stack slot: 0 (pure copying) or a power of two\n"
               "                    with an optional K/M/G suffix (default: WEFT_STACK_RESERVE, else the\n"
               "                    runtime's)\n"
               "  --procs N         processors (default 2)\n"
               "  --max-depth N     deepest recursion (default 3000 frames of ~700 bytes)\n"
               "  --seed N          random seed (default 1)\n"
               "  --expect-hazard   for runs whose stacks get copied (copy with a small reserve): pass\n"
               "                    (exit 0) only if the copies' pointer adjustment changed plain data\n"
               "                    some frame wrote (the hazard DESIGN §3 describes) and every other\n"
               "                    check held; fail if no such change showed\n"
               "Every frame checks the bytes of plain data it wrote (a char buffer, structs with padding);\n"
               "a change there counts as a checksum failure and is reported with the goroutine, the depth\n"
               "and the first byte that differs.\n",
               why);
  std::exit(2);
}

long long parse_int(const char* flag, const char* v, long long lo, long long hi) {
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi) {
    std::string why = std::string("bad value '") + v + "' for " + flag;
    usage(why.c_str());
  }
  return x;
}

config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") usage("stack-growth stress test");
    if (a == "--expect-hazard") {
      c.expect_hazard = true;
      continue;
    }
    if (i + 1 >= argc) usage(("missing value for " + std::string(a)).c_str());
    const char* v = argv[++i];
    if (a == "--seconds") {
      char* end = nullptr;
      c.seconds = std::strtod(v, &end);
      if (end == v || *end || !(c.seconds > 0) || c.seconds > 86400) usage("--seconds wants a number from 0 to 86400");
    } else if (a == "--goroutines") {
      c.goroutines = static_cast<int>(parse_int("--goroutines", v, 1, 100000));
    } else if (a == "--strategy") {
      // Checked by the runtime, which knows its strategies (main: options::from_env).
      if (!*v) usage("--strategy wants the name of a strategy, e.g. copy");
      c.strategy = v;
    } else if (a == "--reserve") {
      char* end = nullptr;
      errno = 0;
      unsigned long long r = std::strtoull(v, &end, 10);
      std::string_view rest = end;
      unsigned shift = rest == "K" || rest == "k" ? 10 : rest == "M" || rest == "m" ? 20 : rest == "G" || rest == "g" ? 30 : 0;
      if (errno || end == v || (shift == 0 && !rest.empty()) || (r << shift >> shift) != r)
        usage("--reserve wants 0 or a power of two, e.g. 256K");
      r <<= shift;
      if (r != 0 && (r & (r - 1)) != 0) usage("--reserve wants 0 or a power of two, e.g. 256K");
      c.reserve = static_cast<std::size_t>(r);
    } else if (a == "--procs") {
      c.procs = static_cast<unsigned>(parse_int("--procs", v, 1, 1024));
    } else if (a == "--max-depth") {
      c.max_depth = parse_int("--max-depth", v, 1, 1000000);
    } else if (a == "--seed") {
      c.seed = static_cast<std::uint64_t>(parse_int("--seed", v, 0, (1LL << 62)));
    } else {
      usage(("unknown argument " + std::string(a)).c_str());
    }
  }
  return c;
}

// The strategy's name for the summary: as given (--strategy or WEFT_STACK), else the default's.
std::string strategy_name(const weft::options& o) {
  if (const char* v = std::getenv("WEFT_STACK"); v && *v) return v;
  switch (o.strategy) {
    case weft::stack_strategy::in_place: return "in_place";
    case weft::stack_strategy::copy: return "copy";
    case weft::stack_strategy::segmented: return "segmented";
  }
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  config cfg = parse(argc, argv);
  // --strategy reaches the runtime the way WEFT_STACK does, so this program accepts exactly
  // the strategies the runtime it is built with knows, by the runtime's names.
  if (cfg.strategy) ::setenv("WEFT_STACK", cfg.strategy->c_str(), 1);
  weft::options o;
  try {
    o = weft::options::from_env();
  } catch (const weft::config_error& e) {
    std::string why = e.what();
    if (cfg.strategy && why.find("WEFT_STACK=") != std::string::npos)
      why = "--strategy wants a strategy the runtime knows (" + why + ")";
    usage(why.c_str());
  }
  o.procs = cfg.procs;
  if (cfg.reserve) o.stack_reserve = cfg.reserve;
  o.scan_interval = std::chrono::milliseconds(0);  // the scanner thread below does it

  std::atomic<long> rounds{0}, frames{0}, throws{0}, children{0};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> scans{0};
  weft::stats st{};
  auto t0 = std::chrono::steady_clock::now();
  {
    weft::runtime rt(o);
    std::thread scanner([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        weft::scan();
        scans.fetch_add(1, std::memory_order_relaxed);
        std::this_thread::yield();
      }
    });
    auto deadline = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(cfg.seconds));
    weft::wait_group wg;
    wg.add(cfg.goroutines);
    for (int gi = 0; gi < cfg.goroutines; ++gi) {
      weft::go([&, gi] {
        std::mt19937_64 rng(cfg.seed * 1000003 + static_cast<std::uint64_t>(gi));
        for (long round = 0; std::chrono::steady_clock::now() < deadline; ++round) {
          round_state rs{round, 0, false, false, gi};
          // Mostly shallow, sometimes very deep: the doublings, copies and shrinks all happen.
          long pick = static_cast<long>(rng() % 100);
          rs.depth = pick < 60 ? static_cast<long>(rng() % 64) : pick < 90 ? static_cast<long>(rng() % 600)
                                                                            : static_cast<long>(rng() % cfg.max_depth);
          rs.throw_at_bottom = rng() % 8 == 0;
          rs.child_at_bottom = rng() % 6 == 0;
          long sum = 0;
          try {
            sum = recurse(nullptr, 0, rs);
            if (rs.throw_at_bottom) fail("the exception thrown at the bottom did not arrive", rs.depth, round);
          } catch (const bottom_reached& b) {
            if (!rs.throw_at_bottom || b.depth != rs.depth || b.tag != tag_for(rs.depth, round))
              fail("the exception arrived damaged", rs.depth, round);
            sum = rs.depth * (rs.depth + 1) / 2;  // the chain walk happened before the throw
            throws.fetch_add(1, std::memory_order_relaxed);
          }
          long closed = rs.depth * (rs.depth + 1) / 2;
          if (sum != closed || rs.accumulated != closed) fail("the round's checksum is wrong", rs.depth, round);
          if (rs.destructed != rs.depth + 1) fail("not every frame's destructor ran", rs.depth, round);
          if (rs.child_at_bottom) children.fetch_add(1, std::memory_order_relaxed);
          frames.fetch_add(rs.depth + 1, std::memory_order_relaxed);
          rounds.fetch_add(1, std::memory_order_relaxed);
          weft::sleep_for(std::chrono::microseconds(rng() % 100));  // parked: the scanner's turn
        }
        wg.done();
      });
    }
    wg.wait();
    st = weft::get_stats();
    stop = true;
    scanner.join();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long failures = g_failures.load(), plain = g_plain_failures.load();
  std::printf("weft-stress: %.1f s, %d goroutines on %u procs, strategy %s, reserve %s%s: %ld rounds, %ld frames, "
              "%ld exceptions, %ld go([&]) children, %" PRIu64 " scans; stacks grown %" PRIu64 ", copied %" PRIu64
              " (%.1f MiB), shrunk %" PRIu64 "; %ld checksum failures (%ld of them frames whose plain data changed)\n",
              secs, cfg.goroutines, cfg.procs, strategy_name(o).c_str(),
              o.stack_reserve ? std::to_string(*o.stack_reserve).c_str() : "default",
#if defined(WEFT_STRESS_SPLIT_STACK)
              ", split-stack checks",
#else
              ", explicit checks",
#endif
              rounds.load(), frames.load(), throws.load(), children.load(), scans.load(), st.stack_grows, st.stack_copies,
              st.stack_bytes_copied / 1048576.0, st.stack_shrinks, failures + plain, plain);
  if (rounds.load() == 0) {
    std::fprintf(stderr, "weft-stress: FAILED: no round completed\n");
    return 1;
  }
  if (!cfg.expect_hazard) return failures + plain == 0 ? 0 : 1;
  if (plain == 0) {
    std::fprintf(stderr,
                 "weft-stress: FAILED: --expect-hazard, but no frame's plain data changed (%" PRIu64
                 " stack copies): either nothing was copied, or the check no longer sees what a copy does\n",
                 st.stack_copies);
    return 1;
  }
  std::printf("weft-stress: as expected (--expect-hazard): the pointer adjustment of stack copies changed plain data "
              "in %ld frames; %s\n",
              plain, failures == 0 ? "every other check held" : "but other checks failed too");
  return failures == 0 ? 0 : 1;
}
