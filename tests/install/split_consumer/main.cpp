// SPDX-License-Identifier: Apache-2.0
// A program outside weft's tree whose own code has -fsplit-stack prologue checks, built
// against an installed (or embedded) weft the ways a user would: pkg-config, find_package,
// add_subdirectory, Meson (split_stack_test.sh builds it every way).  It exits 0 only if
//  - the link adjusted this code's prologues for calls into code without checks by the room
//    weft's __morestack_non_split gives (argv[1]: 16384, or gold's own 1 MiB when the link
//    was not told), which also shows the link used gold or LLD;
//  - weft's usage requirement -fstack-clash-protection reached this code (a big frame probes
//    its pages);
//  - goroutines grow through the prologues: deep recursion (in place, and on segments), a
//    dynamic allocation (__morestack_allocate_stack_space), a big frame, and a goroutine that
//    sysmon preempts while it recurses through split-stack code that reads a std::atomic
//    (at -O0 the program's out-of-line, split-stack copy of std::atomic<bool>::load may be
//    the one the runtime calls too);
//  - a plain thread this code creates (pthread_create, which GCC's driver wraps when
//    -fsplit-stack is on the link line) runs split-stack code on its own stack.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <pthread.h>

#include <weft/weft.hpp>

namespace {

std::atomic<bool> stop{false};

constexpr int kFrame = 600;  // big enough for the prologue's `lea -FRAME(%rsp), %r11` form

__attribute__((noinline)) long recurse(int n) {
  volatile char buf[kFrame];
  std::memset(const_cast<char*>(buf), n & 0x7f, sizeof buf);
  volatile std::uint64_t id = weft::this_goroutine();  // a call into code without checks (libweft)
  (void)id;
  if (n == 0 || stop.load()) return buf[0];
  return recurse(n - 1) + buf[n % kFrame];
}

long expected(int n) {
  long s = 0;
  for (int k = 1; k <= n; ++k) s += k & 0x7f;
  return s;
}

__attribute__((noinline)) int big_frame(int i) {
  volatile char b[64 * 1024];
  b[i] = static_cast<char>(i);
  return b[i];
}

__attribute__((noinline)) long dynamic(std::size_t bytes) {
  auto* p = static_cast<unsigned char*>(__builtin_alloca(bytes));
  std::memset(p, 3, bytes);
  return p[0] + p[bytes - 1];
}

const unsigned char* code_of(const void* fn) {
  auto* p = static_cast<const unsigned char*>(fn);
  if (std::memcmp(p, "\xf3\x0f\x1e\xfa", 4) == 0) p += 4;  // endbr64
  return p;
}

// The room recurse's prologue asks for beyond its own frame: what the linker added.
long prologue_adjustment() {
  const unsigned char* p = code_of(reinterpret_cast<const void*>(&recurse));
  if (p[0] != 0x4c || p[1] != 0x8d || (p[2] != 0x9c && p[2] != 0x94) || p[3] != 0x24) return -1;
  std::int32_t disp;
  std::memcpy(&disp, p + 4, 4);
  return -static_cast<long>(disp) - kFrame;  // frame + adjustment - kFrame: the adjustment, plus a little
}

bool probes_pages() {
  const unsigned char* p = code_of(reinterpret_cast<const void*>(&big_frame));
  for (int i = 0; i < 96; ++i)
    if (std::memcmp(p + i, "\x48\x83\x0c\x24\x00", 5) == 0) return true;  // orq $0, (%rsp)
  return false;
}

int fail(const char* what) {
  std::fprintf(stderr, "split_consumer: FAILED: %s\n", what);
  return 1;
}

int workload(bool segmented) {
  weft::options o = weft::options::from_env();
  if (segmented) {
    o.strategy = weft::stack_strategy::segmented;
    o.stack_reserve = 64 * 1024;
  }
  return weft::run([segmented] {
    auto deep = weft::spawn([] { return recurse(2000); });
    if (deep.join() != expected(2000)) return fail("deep recursion returned a wrong value");
    if (segmented) return 0;
    auto busy = weft::spawn([] {
      long s = 0;
      auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(150);
      while (std::chrono::steady_clock::now() < end) s += recurse(50) == expected(50) ? 0 : 1;
      return s;
    });
    auto dyn = weft::spawn([] { return dynamic(48 * 1024); });
    auto big = weft::spawn([] { return big_frame(60000); });
    if (busy.join() != 0) return fail("a preempted recursion returned a wrong value");
    if (dyn.join() != 6) return fail("alloca on a goroutine");
    if (big.join() != static_cast<char>(60000)) return fail("a 64 KiB frame on a goroutine");
    return 0;
  }, o);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: split_consumer EXPECTED-SPLIT-STACK-ADJUST-SIZE\n");
    return 2;
  }
  const long want = std::atol(argv[1]), got = prologue_adjustment();
  std::printf("split_consumer: prologue adjustment %ld (want %ld), page probes %s\n", got, want,
              probes_pages() ? "yes" : "no");
  if (got < want || got > want + 1024)
    return fail("the link did not adjust split-stack prologues by the expected room (not linked with gold or LLD, "
                "or without --split-stack-adjust-size)");
  if (!probes_pages()) return fail("-fstack-clash-protection did not reach this code");

  // pthread_create itself, not std::thread (libstdc++ calls it from its own library, which
  // --wrap does not reach).
  long on_thread = 0;
  pthread_t t;
  if (pthread_create(&t, nullptr, [](void* r) -> void* {
        *static_cast<long*>(r) = recurse(300);
        return nullptr;
      }, &on_thread) != 0 || pthread_join(t, nullptr) != 0)
    return fail("pthread_create");
  if (on_thread != expected(300)) return fail("split-stack code on a plain thread");

  if (int rc = workload(false)) return rc;
  if (int rc = workload(true)) return rc;
  std::printf("split_consumer: ok\n");
  return 0;
}
