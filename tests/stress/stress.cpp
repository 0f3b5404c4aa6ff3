// weft-stress — stack-growth stress (DESIGN §7): many goroutines doing random, deep,
// pointer-rich recursion while scans run concurrently; every frame's state is checked on the
// way back up and every round's checksum against its closed form.
//
//   weft-stress [--seconds N] [--goroutines N] [--strategy copy|segmented] [--reserve SIZE]
//               [--procs N] [--max-depth N] [--seed N]
//
// Exit status: 0 when every checksum held, 1 when any failed (each failure is reported),
// 2 for bad arguments (with the usage).  Built twice: weft-stress with explicit checks
// (WEFT_STACK_CHECK in every recursive frame) and, on x86_64, weft-stress-split with
// -fsplit-stack prologues and no explicit checks.
//
// What a round does, in one goroutine: pick a depth, recurse; each frame holds a parent
// pointer, a reference to the round's accumulator, a short std::string (its buffer is in the
// frame), a std::function capturing locals by reference, and a filled pad.  At the bottom:
// walk the parent chain; sometimes throw an exception and catch it at the top (destructors
// counted); sometimes spawn a child that writes into the bottom frame through a [&] capture
// (pinning the stack) while this goroutine parks.  Between rounds it parks briefly, so the
// scanner — a plain thread calling weft::scan() in a loop — can shrink it.
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

std::atomic<long> g_failures{0};

void fail(const char* what, long depth, long round) {
  if (g_failures.fetch_add(1) < 20)
    std::fprintf(stderr, "weft-stress: FAILED: %s (depth %ld, round %ld, goroutine %" PRIu64 ")\n", what, depth, round,
                 weft::this_goroutine());
}

struct round_state {
  long round;
  long depth;          // bottom of this round
  bool throw_at_bottom;
  bool child_at_bottom;
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

std::string tag_for(long depth, long round) { return "r" + std::to_string(round % 100) + "d" + std::to_string(depth % 1000); }

bool intact(const frame& f) {
  if (f.tag != tag_for(f.depth, f.rs.round)) return false;
  for (unsigned char b : f.pad)
    if (b != static_cast<unsigned char>(f.depth + f.rs.round)) return false;
  return f.get() == 3 * f.depth + f.rs.round;
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
  if (!intact(me) || me.parent != parent) fail("a frame's own state changed across growth, scans or copies", depth, rs.round);
  return r;
}

struct config {
  double seconds = 10;
  int goroutines = 64;
  weft::stack_strategy strategy = weft::stack_strategy::copy;
  std::optional<std::size_t> reserve;
  unsigned procs = 2;
  long max_depth = 3000;
  std::uint64_t seed = 1;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "weft-stress: %s\n"
               "usage: weft-stress [--seconds N] [--goroutines N] [--strategy copy|segmented] [--reserve SIZE]\n"
               "                   [--procs N] [--max-depth N] [--seed N]\n"
               "  --seconds N       run for N seconds (default 10; decimals allowed)\n"
               "  --goroutines N    goroutines recursing at once (default 64)\n"
               "  --strategy S      copy (default) or segmented: how stacks grow past their slot\n"
               "  --reserve SIZE    address space per stack slot: 0 (pure copying) or a power of two\n"
               "                    with an optional K/M/G suffix (default: the runtime's)\n"
               "  --procs N         processors (default 2)\n"
               "  --max-depth N     deepest recursion (default 3000 frames of ~400 bytes)\n"
               "  --seed N          random seed (default 1)\n",
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
    if (i + 1 >= argc) usage(("missing value for " + std::string(a)).c_str());
    const char* v = argv[++i];
    if (a == "--seconds") {
      char* end = nullptr;
      c.seconds = std::strtod(v, &end);
      if (end == v || *end || !(c.seconds > 0) || c.seconds > 86400) usage("--seconds wants a number from 0 to 86400");
    } else if (a == "--goroutines") {
      c.goroutines = static_cast<int>(parse_int("--goroutines", v, 1, 100000));
    } else if (a == "--strategy") {
      if (std::string_view(v) == "copy") c.strategy = weft::stack_strategy::copy;
      else if (std::string_view(v) == "segmented") c.strategy = weft::stack_strategy::segmented;
      else usage("--strategy wants copy or segmented");
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

}  // namespace

int main(int argc, char** argv) {
  config cfg = parse(argc, argv);
  weft::options o = weft::options::from_env();
  o.procs = cfg.procs;
  o.strategy = cfg.strategy;
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
          round_state rs{round, 0, false, false};
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
  long failures = g_failures.load();
  std::printf("weft-stress: %.1f s, %d goroutines on %u procs, strategy %s, reserve %s%s: %ld rounds, %ld frames, "
              "%ld exceptions, %ld go([&]) children, %" PRIu64 " scans; stacks grown %" PRIu64 ", copied %" PRIu64
              " (%.1f MiB), shrunk %" PRIu64 "; %ld checksum failures\n",
              secs, cfg.goroutines, cfg.procs, cfg.strategy == weft::stack_strategy::copy ? "copy" : "segmented",
              cfg.reserve ? std::to_string(*cfg.reserve).c_str() : "default",
#if defined(WEFT_STRESS_SPLIT_STACK)
              ", split-stack checks",
#else
              ", explicit checks",
#endif
              rounds.load(), frames.load(), throws.load(), children.load(), scans.load(), st.stack_grows, st.stack_copies,
              st.stack_bytes_copied / 1048576.0, st.stack_shrinks, failures);
  if (rounds.load() == 0) {
    std::fprintf(stderr, "weft-stress: FAILED: no round completed\n");
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
