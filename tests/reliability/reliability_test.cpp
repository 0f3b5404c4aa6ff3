// SPDX-License-Identifier: Apache-2.0
// Reliability (issue 9), the part that runs under every build, sanitizers included:
//   - a runtime destroyed and started again, many times in one process, starts clean and gives
//     its pooled stacks back (LeakSanitizer checks the heap side in the ASan build);
//   - faults that are not weft's reach the SIGSEGV/SIGBUS handler the program installed before
//     weft, from goroutines and plain threads, and weft's handler runs on the M's sigaltstack;
//   - a stack overflow in code without checks is weft's fatal error (exit status 2);
//   - SIGPIPE: a write to a closed socket returns EPIPE while a runtime runs (runtime/diag/
//     sigpipe.cpp says why and how), and a disposition the program chose is left alone;
//   - fork: posix_spawn, std::system and fork-without-exec from goroutines on 2 Ps.
// The RLIMIT_AS / RLIMIT_NPROC cases cannot run under sanitizers: limits_test.cpp.
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/testing/testing.hpp"
#include "tests/reliability/reliability_util.hpp"
#include "weft/weft.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using reltest::failures;
using reltest::kSanitized;

weft::options procs(unsigned n) {
  weft::options o;
  o.procs = n;
  return o;
}

// Uses about `bytes` of stack below the caller, with explicit checks (grows in place), and
// returns a checksum of what it wrote.
__attribute__((noinline)) long touch_stack(long bytes) {
  WEFT_STACK_CHECK(2048);
  volatile unsigned char pad[1000];
  for (std::size_t i = 0; i < sizeof pad; i += 64) pad[i] = static_cast<unsigned char>(bytes + static_cast<long>(i));
  long below = bytes > 1100 ? touch_stack(bytes - 1100) : 0;
  return below + pad[0] + pad[960];
}

long touch_stack_expected(long bytes) {
  long sum = 0;
  for (long b = bytes;; b -= 1100) {
    sum += static_cast<unsigned char>(b) + static_cast<unsigned char>(b + 960);
    if (b <= 1100) break;
  }
  return sum;
}

// ---- leaks: restart the runtime N times --------------------------------------------------

// A cycle parks kG goroutines that each made ~kTouch bytes of their stack resident, so the
// pool ends the cycle holding kG grown stacks (scan_interval 0: nothing trims them).  The
// runtime's destructor must give all of it back: the arenas are unmapped.
TEST(Reliability, RuntimeRestartsCleanlyAndReleasesItsPooledStacks) {
  constexpr int kCycles = kSanitized ? 4 : 10;
  constexpr int kG = 400;
  constexpr long kTouch = 96 * 1024;
  struct figures {
    std::uint64_t rss_before, rss_peak, rss_after, vm_after;
    std::size_t maps_after;
  };
  std::vector<figures> f;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    const weft::stats idle = weft::get_stats();
    ASSERT_EQ(idle.goroutines_live, 0u);
    ASSERT_EQ(idle.threads, 0u) << "no runtime runs between cycles";
    weft::detail::testing::runtime_snapshot snap;
    ASSERT_FALSE(weft::detail::testing::snapshot(&snap));
    figures fig{};
    fig.rss_before = reltest::status_kib("VmRSS");
    std::vector<std::uintptr_t> stack_tops(kG);
    {
      weft::options o = procs(2);
      o.scan_interval = 0ms;
      weft::runtime rt(o);
      weft::wait_group touched;
      weft::chan<int> gate;
      std::vector<weft::task<long>> tasks;
      std::vector<std::uint64_t> ids(kG);
      touched.add(kG);
      for (int i = 0; i < kG; ++i) {
        tasks.push_back(weft::spawn([&, i] {
          ids[static_cast<std::size_t>(i)] = weft::this_goroutine();
          stack_tops[static_cast<std::size_t>(i)] = weft::this_stack().hi - 1;
          long c = touch_stack(kTouch);
          touched.done();
          (void)gate.recv();  // parked until every stack is resident
          return c;
        }));
      }
      touched.wait();
      fig.rss_peak = reltest::status_kib("VmRSS");
      gate.close();
      const long want = touch_stack_expected(kTouch);
      for (auto& t : tasks) ASSERT_EQ(t.join(), want);
      EXPECT_EQ(ids[0], 1u) << "a fresh runtime numbers goroutines from 1";
      const weft::stats st = weft::get_stats();
      EXPECT_EQ(st.goroutines_created, static_cast<std::uint64_t>(kG));
      // procs Ms and a few more: an M that gives up its P can be preempted before it goes idle,
      // and a wake-up meanwhile starts another.  (Not one per goroutine.)
      EXPECT_LE(st.threads, 2u + 8u) << "procs Ms, and a few more for hand-offs";
      // join() returns when the goroutine signals; its stack goes back as it switches away.
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (weft::get_stats().goroutines_live != 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
      ASSERT_EQ(weft::get_stats().goroutines_live, 0u);
      ASSERT_TRUE(weft::detail::testing::snapshot(&snap));
      EXPECT_EQ(snap.slots_in_use, 0u);
      EXPECT_GE(snap.slots_pooled, static_cast<std::uint64_t>(kG)) << "the grown stacks wait in the pool";
      EXPECT_EQ(reltest::count_mapped(stack_tops), static_cast<std::size_t>(kG)) << "the check below can see stacks";
    }
    fig.rss_after = reltest::status_kib("VmRSS");
    fig.vm_after = reltest::status_kib("VmSize");
    fig.maps_after = reltest::mapping_count();
    // The address space itself went back: no address where a goroutine's stack was is mapped.
    const std::size_t still = reltest::count_mapped(stack_tops);
    EXPECT_EQ(still, 0u) << "stacks of a destroyed runtime are still mapped";
    f.push_back(fig);
    std::printf("cycle %d: RSS before %llu KiB, peak %llu KiB, after %llu KiB; VmSize after %llu KiB; %zu mappings\n", cycle,
                (unsigned long long)fig.rss_before, (unsigned long long)fig.rss_peak, (unsigned long long)fig.rss_after,
                (unsigned long long)fig.vm_after, fig.maps_after);
  }
  if (kSanitized) return;  // shadow memory and quarantines make the figures meaningless
  // The measurement can see the stacks: a cycle's peak is at least 3/4 of their bytes above
  // where it started (400 x 96 KiB = 37.5 MiB).
  const std::uint64_t stacks_kib = kG * kTouch / 1024;
  for (const figures& x : f) EXPECT_GE(x.rss_peak, x.rss_before + stacks_kib * 3 / 4);
  // After the first cycle (which leaves the process's lasting state: mimalloc's segments,
  // glibc's cache of dead threads' stacks), nothing may accumulate.  One cycle's kept stacks
  // would add 37.5 MiB of RSS and two arenas (2 mappings, 192 MiB of address space); the
  // margins (8 MiB RSS, 8 mappings) are far below that and far above the noise measured here
  // (RSS within +-0.5 MiB, mappings constant).  VmSize is printed, not asserted: glibc malloc
  // makes a 64 MiB arena whenever threads happen to contend in it, in whichever cycle that is;
  // the check above (no old stack address is mapped) covers the address space instead.
  for (std::size_t i = 1; i < f.size(); ++i) {
    SCOPED_TRACE("cycle " + std::to_string(i));
    EXPECT_LE(f[i].rss_after, f[0].rss_after + 8 * 1024);
    EXPECT_LE(f[i].maps_after, f[0].maps_after + 8);
  }
  // And the stacks' memory left with the runtime: after a cycle the process holds much less
  // than at its peak.
  for (const figures& x : f) EXPECT_LE(x.rss_after + stacks_kib / 2, x.rss_peak);
}

// ---- messages a user meets (README, "Errors you can meet") -------------------------------------------

// Out of memory for a goroutine's own record, after its closure and stack were had: go()
// throws std::bad_alloc, and the closure (with what it captured) and the stack go back — the
// runtime carries on.  testing/testing.hpp makes the allocation fail at exactly that point.  Both
// kinds of closure: a small one built in the goroutine's record, a big one on the heap.
TEST(Reliability, OutOfMemoryForAGoroutineRecordGivesBackItsClosureAndStack) {
  weft::run(
      [] {
        auto attempt = [](const char* kind, unsigned nth, auto&& start) {
          SCOPED_TRACE(kind);
          weft::detail::testing::runtime_snapshot before{}, after{};
          ASSERT_TRUE(weft::detail::testing::snapshot(&before));
          auto token = std::make_shared<int>(7);
          bool threw = false;
          weft::detail::testing::fail_heap_alloc(nth);
          try {
            start(token);
          } catch (const std::bad_alloc&) {
            threw = true;
          }
          weft::detail::testing::fail_heap_alloc(0);
          EXPECT_TRUE(threw) << "go() did not report the failed allocation";
          EXPECT_EQ(token.use_count(), 1) << "the closure (and what it captured) was not freed";
          ASSERT_TRUE(weft::detail::testing::snapshot(&after));
          EXPECT_EQ(after.slots_in_use, before.slots_in_use) << "the stack taken for it was not given back";
        };
        // A fresh runtime has no dead G records to reuse.  A small closure is built in the G
        // record, which is go()'s first heap allocation (after the stack).
        attempt("in place", 1, [](const std::shared_ptr<int>& token) { weft::go([token] { (void)*token; }); });
        // A big one goes to the heap first (1st), then the stack, then the G record (2nd).
        attempt("on the heap", 2, [](const std::shared_ptr<int>& token) {
          std::array<char, 2 * weft::detail::kInlineClosureMax> big{};
          weft::go([token, big] { (void)*token, (void)big; });
        });
        auto t = weft::spawn([] { return 41 + 1; });
        EXPECT_EQ(t.join(), 42) << "the runtime did not carry on";
      },
      procs(1));
}

TEST(Reliability, MisuseIsNamedAndLosesNothing) {
  auto what_of = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "(nothing thrown)";
  };
  EXPECT_NE(what_of([] { weft::go([] {}); }).find("go/spawn called with no runtime running"), std::string::npos);
  {
    weft::runtime rt(procs(2));
    EXPECT_NE(what_of([] { weft::runtime second(procs(1)); }).find("a runtime is already running"), std::string::npos);
    // A regular file cannot be polled: the message says so, and the goroutine carries on.
    std::string msg = weft::spawn([&] {
      int fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);  // this test binary: a regular file
      std::string m = what_of([fd] { weft::wait_readable(fd); });
      ::close(fd);
      return m;
    }).join();
    EXPECT_NE(msg.find("regular files and closed descriptors cannot be polled"), std::string::npos) << msg;
    EXPECT_EQ(weft::spawn([] { return 7; }).join(), 7) << "the runtime still works after the misuses";
  }
}

// ---- signals: faults that are not weft's ---------------------------------------------------

// The program's own handler, installed before any runtime: it repairs the faults it knows
// (a PROT_NONE page it made accessible later; a file mapping past EOF it extends) and lets
// the instruction run again.  Everything it does is async-signal-safe.
constexpr int kFixPages = 9;  // page 0: one fault at a time; pages 1..8: one per goroutine
char* g_fix_page = nullptr;
std::size_t g_page_size = 0;
int g_bus_fd = -1;
char* g_bus_page = nullptr;
std::atomic<int> g_segv_fixed{0}, g_bus_fixed{0};
std::atomic<int> g_on_altstack{0};
std::atomic<std::uintptr_t> g_handler_local{0};

void user_fixup_handler(int sig, siginfo_t* si, void*) {
  char* a = static_cast<char*>(si->si_addr);
  stack_t ss;
  if (::sigaltstack(nullptr, &ss) == 0 && (ss.ss_flags & SS_ONSTACK)) g_on_altstack.fetch_add(1);
  int local = 0;
  g_handler_local.store(reinterpret_cast<std::uintptr_t>(&local));
  if (sig == SIGSEGV && a >= g_fix_page && a < g_fix_page + kFixPages * g_page_size) {
    char* page = g_fix_page + (a - g_fix_page) / g_page_size * g_page_size;
    ::mprotect(page, g_page_size, PROT_READ | PROT_WRITE);
    g_segv_fixed.fetch_add(1);
    return;
  }
  if (sig == SIGBUS && a >= g_bus_page && a < g_bus_page + g_page_size) {
    (void)!::ftruncate(g_bus_fd, static_cast<off_t>(g_page_size));
    g_bus_fixed.fetch_add(1);
    return;
  }
  static const char msg[] = "user handler: a fault it does not know\n";
  (void)!::write(2, msg, sizeof msg - 1);
  ::_exit(4);
}

void fault_on_guarded_page(failures& f, const char* where, int expect_fixed) {
  ::mprotect(g_fix_page, g_page_size, PROT_NONE);
  *static_cast<volatile char*>(g_fix_page) = 42;  // faults; the user's handler repairs it
  f.check(*static_cast<volatile char*>(g_fix_page) == 42, "%s: the write did not land after the repair", where);
  f.check(g_segv_fixed.load() == expect_fixed, "%s: SIGSEGV repairs = %d, want %d", where, g_segv_fixed.load(),
          expect_fixed);
}

void bus_on_truncated_file(failures& f, const char* where, int expect_fixed) {
  (void)!::ftruncate(g_bus_fd, 0);
  char v = *static_cast<volatile char*>(g_bus_page);  // past EOF: SIGBUS; repaired by extending the file
  f.check(v == 0, "%s: read %d from the extended file", where, v);
  f.check(g_bus_fixed.load() == expect_fixed, "%s: SIGBUS repairs = %d, want %d", where, g_bus_fixed.load(),
          expect_fixed);
}

[[noreturn]] void user_handler_scenario() {
  ::alarm(60);
  failures f;
  g_page_size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  g_fix_page =
      static_cast<char*>(::mmap(nullptr, kFixPages * g_page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  g_bus_fd = ::memfd_create("weft-sigbus", MFD_CLOEXEC);
  g_bus_page = static_cast<char*>(::mmap(nullptr, g_page_size, PROT_READ | PROT_WRITE, MAP_SHARED, g_bus_fd, 0));
  f.check(g_fix_page != MAP_FAILED && g_bus_fd >= 0 && g_bus_page != MAP_FAILED, "setup failed");
  // Installed before weft, without SA_ONSTACK: the program did not ask for an altstack.
  struct sigaction sa {};
  sa.sa_sigaction = user_fixup_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGSEGV, &sa, nullptr);
  ::sigaction(SIGBUS, &sa, nullptr);
  {
    weft::runtime rt(procs(2));
    struct sigaction now {};
    ::sigaction(SIGSEGV, nullptr, &now);
    f.check(now.sa_sigaction != user_fixup_handler, "weft's handler is not installed while a runtime runs");
    // From a goroutine: weft's handler sees a fault that is not on a goroutine stack and
    // passes it on — while running on the M's alternate stack, so the user's handler does too.
    weft::spawn([&f] {
      const weft::stack_info si = weft::this_stack();
      fault_on_guarded_page(f, "goroutine", 1);
      f.check(g_on_altstack.load() == 1, "goroutine: the chained handler did not run on the M's sigaltstack");
      const std::uintptr_t local = g_handler_local.load();
      f.check(local < si.lo - 64 * 1024 || local >= si.hi,
              "goroutine: the handler ran on the goroutine's own stack (local at %#lx, stack [%#lx, %#lx))",
              (unsigned long)local, (unsigned long)si.lo, (unsigned long)si.hi);
      bus_on_truncated_file(f, "goroutine", 1);
      f.check(g_on_altstack.load() == 2, "goroutine: the chained SIGBUS handler did not run on the sigaltstack");
    }).join();
    // From a plain thread and from the main thread, while the runtime runs.
    std::thread([&f] {
      fault_on_guarded_page(f, "plain thread", 2);
      bus_on_truncated_file(f, "plain thread", 2);
    }).join();
    fault_on_guarded_page(f, "main thread", 3);
    // Eight goroutines at once, on both Ps, each faulting on its own page: the handler
    // repairs whichever page faulted, on whichever M.
    const int before = g_segv_fixed.load();
    std::atomic<int> ok{0};
    std::vector<weft::task<void>> ts;
    for (int i = 1; i < kFixPages; ++i)
      ts.push_back(weft::spawn([&ok, i] {
        weft::yield();
        volatile char* mine = g_fix_page + static_cast<std::size_t>(i) * g_page_size;
        *mine = static_cast<char>(i);
        if (*mine == static_cast<char>(i)) ok.fetch_add(1);
      }));
    for (auto& t : ts) t.join();
    f.check(ok.load() == kFixPages - 1, "goroutines wrote %d of %d pages", ok.load(), kFixPages - 1);
    f.check(g_segv_fixed.load() - before == kFixPages - 1, "%d repairs for %d faulting goroutines",
            g_segv_fixed.load() - before, kFixPages - 1);
  }
  // After the runtime, faults still reach the program's handler.
  fault_on_guarded_page(f, "after the runtime", 3 + (kFixPages - 1) + 1);
  reltest::scenario_exit(f);
}

TEST(ReliabilityDeath, FaultsThatAreNotWeftsReachTheProgramsEarlierHandlerOnEveryThreadKind) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(user_handler_scenario(), ::testing::ExitedWithCode(0), "");
}

// ---- signals: weft's own faults -------------------------------------------------------------

#if defined(__GNUC__) && !defined(__clang__)
#define NO_CHECKS __attribute__((noinline, no_split_stack))
#else
#define NO_CHECKS __attribute__((noinline))
#endif

NO_CHECKS long unchecked_recursion(long n);
long unchecked_recursion(long n) {
  volatile char pad[512];
  pad[0] = static_cast<char>(n);
  return n <= 0 ? pad[0] : unchecked_recursion(n - 1) + pad[0];
}

void user_handler_must_not_run(int) {
  static const char msg[] = "the program's handler got weft's overflow\n";
  (void)!::write(2, msg, sizeof msg - 1);
  ::_exit(3);
}

// With copy and stack_reserve 0 a goroutine's 8 KiB stack sits right above the 64 KiB of slack
// a fault may grow into and its 64 KiB guard, and code without checks recurses into the
// guard: the fault happens with the stack pointer inside the guard.  weft's handler can only report it if it runs on another stack (the M's
// sigaltstack) — on the goroutine's stack it would fault again and the kernel would kill the
// process with SIGSEGV, not exit 2.  The program's own handler, installed before weft, must
// not see weft's fault (it would exit 3).
TEST(ReliabilityDeath, AnOverflowWithoutChecksIsWeftsFatalErrorReportedFromTheAltStack) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  if (kSanitized) GTEST_SKIP() << "the sanitizers' own SIGSEGV handling and shadow stacks change this path";
  EXPECT_EXIT(
      {
        struct sigaction sa {};
        sa.sa_handler = user_handler_must_not_run;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGSEGV, &sa, nullptr);
        weft::options o = procs(2);
        o.strategy = weft::stack_strategy::copy;
        o.stack_reserve = 0;
        weft::run([] { return static_cast<int>(unchecked_recursion(1'000'000)); }, o);
      },
      ::testing::ExitedWithCode(2),
      "weft: fatal error: goroutine [0-9]+ overflowed its [0-9]+-byte stack.*WEFT_STACK_CHECK.*\n+goroutine [0-9]+ "
      "\\[running\\]");
  // The default strategy: the same recursion runs through the whole 8 MiB slot, then stops.
  EXPECT_EXIT(
      {
        weft::options o = procs(2);
        weft::run([] { return static_cast<int>(unchecked_recursion(1'000'000)); }, o);
      },
      ::testing::ExitedWithCode(2),
      "weft: fatal error: goroutine [0-9]+ needs a [0-9]+-byte stack \\(a fault at .*more than its slot holds: "
      "[0-9]+ bytes of the 8388608-byte WEFT_STACK_RESERVE.*\n+goroutine [0-9]+ \\[running\\]");
}

// ---- SIGPIPE ---------------------------------------------------------------------------------

// Writes to a stream socket whose peer has closed; returns errno (0 if the write succeeded).
int write_to_closed_peer() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  ::close(sv[1]);
  errno = 0;
  ssize_t n = ::write(sv[0], "x", 1);
  int err = n < 0 ? errno : 0;
  ::close(sv[0]);
  return err;
}

bool sigpipe_is_default() {
  struct sigaction cur {};
  ::sigaction(SIGPIPE, nullptr, &cur);
  return !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL;
}

// What weft protects against: without a runtime, the default disposition ends the process.
TEST(ReliabilityDeath, WithoutARuntimeAWriteToAClosedSocketKillsTheProcessSilently) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::signal(SIGPIPE, SIG_DFL);
        write_to_closed_peer();
        ::_exit(0);
      },
      ::testing::KilledBySignal(SIGPIPE), "");
}

[[noreturn]] void sigpipe_default_scenario() {
  ::alarm(60);
  failures f;
  ::signal(SIGPIPE, SIG_DFL);
  {
    weft::runtime rt(procs(2));
    std::vector<weft::task<int>> ts;
    for (int i = 0; i < 8; ++i) ts.push_back(weft::spawn([] { return write_to_closed_peer(); }));
    for (auto& t : ts) {
      int err = t.join();
      f.check(err == EPIPE, "goroutine: write to a closed socket gave errno %d, want EPIPE", err);
    }
    int err = write_to_closed_peer();
    f.check(err == EPIPE, "main thread: errno %d, want EPIPE", err);
    // A child started from a goroutine gets the default back (exec resets caught signals):
    // a shell that sends itself SIGPIPE dies of it.
    int status = weft::spawn([] { return weft::blocking([] { return std::system("kill -PIPE $$"); }); }).join();
    f.check(WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE,
            "a child of a goroutine did not die of SIGPIPE (status %#x): it inherited a changed disposition",
            status);
  }
  f.check(sigpipe_is_default(), "SIGPIPE is not back to SIG_DFL after the runtime");
  reltest::scenario_exit(f);
}

TEST(ReliabilityDeath, WhileARuntimeRunsAWriteToAClosedSocketReturnsEPIPE) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(sigpipe_default_scenario(), ::testing::ExitedWithCode(0), "");
}

std::atomic<int> g_user_sigpipes{0};
void user_sigpipe_handler(int) { g_user_sigpipes.fetch_add(1); }

[[noreturn]] void sigpipe_user_scenario() {
  ::alarm(60);
  failures f;
  ::signal(SIGPIPE, user_sigpipe_handler);
  {
    weft::runtime rt(procs(2));
    int err = weft::spawn([] { return write_to_closed_peer(); }).join();
    f.check(err == EPIPE, "goroutine: errno %d, want EPIPE", err);
    f.check(g_user_sigpipes.load() == 1, "the program's SIGPIPE handler ran %d times, want 1", g_user_sigpipes.load());
  }
  struct sigaction cur {};
  ::sigaction(SIGPIPE, nullptr, &cur);
  f.check(cur.sa_handler == user_sigpipe_handler, "the program's SIGPIPE handler was replaced");
  ::signal(SIGPIPE, SIG_IGN);
  { weft::runtime rt(procs(1)); }
  ::sigaction(SIGPIPE, nullptr, &cur);
  f.check(cur.sa_handler == SIG_IGN, "SIG_IGN was not left alone");
  reltest::scenario_exit(f);
}

TEST(ReliabilityDeath, AProgramsOwnSigpipeDispositionIsLeftAlone) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(sigpipe_user_scenario(), ::testing::ExitedWithCode(0), "");
}

// ---- fork ------------------------------------------------------------------------------------

// Reads everything from a non-blocking pipe end, parking the goroutine between reads.
std::string read_all(int fd) {
  std::string out;
  char buf[256];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      weft::wait_readable(fd);
    } else {
      return out;
    }
  }
}

int wait_child(pid_t pid) {
  int status = 0;
  pid_t r = weft::blocking([&] {
    pid_t w;
    while ((w = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    return w;
  });
  return r == pid ? status : -1;
}

TEST(Reliability, PosixSpawnAndSystemFromManyGoroutinesOnTwoPs) {
  constexpr int kG = 8, kEach = 4;
  std::atomic<int> spawned_ok{0}, system_ok{0};
  std::atomic<long> busy_rounds{0};
  std::atomic<bool> stop{false};
  {
    weft::runtime rt(procs(2));
    // Something else keeps both Ps busy meanwhile.
    auto busy = weft::spawn([&] {
      while (!stop.load()) {
        busy_rounds.fetch_add(1);
        weft::yield();
      }
    });
    std::vector<weft::task<void>> ts;
    for (int g = 0; g < kG; ++g) {
      ts.push_back(weft::spawn([&, g] {
        for (int k = 0; k < kEach; ++k) {
          const int code = 10 + g * kEach + k;
          // posix_spawn with the child's stdout on a pipe this goroutine polls.
          int p[2];
          ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
          posix_spawn_file_actions_t fa;
          posix_spawn_file_actions_init(&fa);
          posix_spawn_file_actions_adddup2(&fa, p[1], 1);
          const std::string script = "echo child-" + std::to_string(code) + "; exit " + std::to_string(code);
          char* argv[] = {const_cast<char*>("sh"), const_cast<char*>("-c"), const_cast<char*>(script.c_str()), nullptr};
          pid_t pid = -1;
          int rc = ::posix_spawn(&pid, "/bin/sh", &fa, nullptr, argv, environ);
          posix_spawn_file_actions_destroy(&fa);
          ::close(p[1]);
          ASSERT_EQ(rc, 0) << std::strerror(rc);
          std::string out = read_all(p[0]);
          ::close(p[0]);
          int status = wait_child(pid);
          EXPECT_EQ(out, "child-" + std::to_string(code) + "\n");
          EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == code) << "status " << status;
          if (WIFEXITED(status) && WEXITSTATUS(status) == code) spawned_ok.fetch_add(1);
          // std::system blocks its thread until the shell exits: inside weft::blocking.
          const std::string cmd = "exit " + std::to_string(code + 100);
          int sys = weft::blocking([&] { return std::system(cmd.c_str()); });
          EXPECT_TRUE(WIFEXITED(sys) && WEXITSTATUS(sys) == code + 100) << "system status " << sys;
          if (WIFEXITED(sys) && WEXITSTATUS(sys) == code + 100) system_ok.fetch_add(1);
        }
      }));
    }
    for (auto& t : ts) t.join();
    stop.store(true);
    busy.join();
  }
  EXPECT_EQ(spawned_ok.load(), kG * kEach);
  EXPECT_EQ(system_ok.load(), kG * kEach);
  EXPECT_GT(busy_rounds.load(), 0);
}

// A forked child (no exec) of a goroutine: one thread — the one that called fork, still on
// the goroutine's stack — and only async-signal-safe calls are allowed there.  It reports its
// thread count (from /proc, with open/read only) and exits with _exit.
NO_CHECKS int child_thread_count();
int child_thread_count() {
  int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  static char buf[8192];  // not on the goroutine stack: keep the child's frames small
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* p = std::strstr(buf, "\nThreads:");
  if (!p) return -1;
  p += 9;
  while (*p == ' ' || *p == '\t') ++p;
  int v = 0;
  while (*p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
  return v;
}

TEST(Reliability, ForkWithoutExecFromAGoroutineLeavesOneThreadInTheChild) {
  std::atomic<bool> stop{false};
  weft::runtime rt(procs(2));
  auto busy = weft::spawn([&] {
    while (!stop.load()) weft::yield();
  });
  std::vector<weft::task<std::string>> ts;
  for (int i = 0; i < 4; ++i) {
    ts.push_back(weft::spawn([i]() -> std::string {
      int p[2];
      if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return "pipe failed";
      pid_t pid = ::fork();
      if (pid == 0) {
        // The child: async-signal-safe calls only.
        char msg[32] = "threads=";
        int t = child_thread_count();
        msg[8] = static_cast<char>('0' + (t >= 0 && t <= 9 ? t : 9));
        msg[9] = '\n';
        (void)!::write(p[1], msg, 10);
        ::_exit(20 + i);
      }
      ::close(p[1]);
      if (pid < 0) return "fork failed";
      std::string out = read_all(p[0]);
      ::close(p[0]);
      int status = wait_child(pid);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 20 + i) return "child status " + std::to_string(status);
      return out;
    }));
  }
  for (auto& t : ts) EXPECT_EQ(t.join(), "threads=1\n");
  stop.store(true);
  busy.join();
}

}  // namespace
