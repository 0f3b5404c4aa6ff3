// SPDX-License-Identifier: Apache-2.0
// gdb_program.cpp — goroutines parked in known places, for tests/gdb/gdb_test.sh to inspect with
// tools/gdb/weft.py (issue 15, part 2).  Each goroutine parks from a function of its own name,
// so the test can find those names in its backtrace: on a channel receive, on a mutex, in a
// sleep, at the bottom of a recursion of `descend`, and one that stays running (in a blocking
// call weft does not know about).  Once all are parked it prints one line per goroutine,
// "<role> <id>", then "ready", and waits (at most a minute; the test kills it sooner).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>

#include <weft/weft.hpp>

namespace {

enum role { recv_role, mutex_role, sleep_role, deep_role, running_role, kRoles };
const char* const kRoleNames[kRoles] = {"recv", "mutex", "sleep", "deep", "running"};
std::atomic<std::uint64_t> ids[kRoles];
std::atomic<bool> done{false};

void announce(role r) { ids[r].store(weft::this_goroutine(), std::memory_order_release); }

[[gnu::noinline]] void park_on_recv(weft::chan<int> c) {
  announce(recv_role);
  auto v = c.recv();  // nobody sends
  std::printf("recv got %d\n", v ? *v : -1);
}

[[gnu::noinline]] void park_on_mutex(weft::mutex& m) {
  announce(mutex_role);
  m.lock();  // main holds it
  m.unlock();
}

[[gnu::noinline]] void park_in_sleep() {
  announce(sleep_role);
  weft::sleep_for(std::chrono::hours(1));
  std::printf("slept\n");  // no tail call: this frame stays on the stack
}

[[gnu::noinline]] void park_at_bottom(weft::chan<int> c) {
  announce(deep_role);
  (void)c.recv();
}

// Recursion the compiler can neither inline nor turn into a loop: the result is used after the call.
[[gnu::noinline]] int descend(int depth, weft::chan<int> c) {
  if (depth == 0) {
    park_at_bottom(c);
    return 0;
  }
  volatile int here = depth;
  return descend(depth - 1, c) + here;
}

// Stays `running`: usleep blocks its thread without telling weft.
[[gnu::noinline]] void spin_in_usleep() {
  announce(running_role);
  while (!done.load(std::memory_order_relaxed)) ::usleep(1000);
}

[[gnu::noinline]] void main_goroutine() {
  weft::chan<int> never;
  weft::mutex held;
  held.lock();
  weft::go([never] { park_on_recv(never); });
  weft::go([&held] { park_on_mutex(held); });
  weft::go([] { park_in_sleep(); });
  weft::go([never] { (void)descend(5, never); });
  weft::go([] { spin_in_usleep(); });
  for (int r = 0; r < kRoles; ++r) {
    while (ids[r].load(std::memory_order_acquire) == 0) weft::sleep_for(std::chrono::milliseconds(1));
  }
  weft::sleep_for(std::chrono::milliseconds(200));  // from announce() to parked: a few µs
  for (int r = 0; r < kRoles; ++r) std::printf("%s %llu\n", kRoleNames[r], (unsigned long long)ids[r].load());
  std::printf("main %llu\nready\n", (unsigned long long)weft::this_goroutine());
  std::fflush(stdout);
  weft::sleep_for(std::chrono::minutes(1));
  done.store(true);
  held.unlock();
}

}  // namespace

int main() {
  weft::options opts = weft::options::from_env();  // WEFT_GUARD: gdb_test.sh sets it for gcore
  opts.procs = 2;  // the running goroutine keeps one P busy
  return weft::run([] { main_goroutine(); }, opts);
}
