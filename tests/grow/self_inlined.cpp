// SPDX-License-Identifier: Apache-2.0
// Recursion GCC inlines into itself, for tests/grow/overshoot_test.cpp: in a file of its own,
// because in a big one GCC's unit-wide inlining budget goes elsewhere first.  `inline`, so
// that -O2 self-inlines it too (objdump: an 8 KiB frame holding four 2 KiB buffers, behind one 4 KiB check).
//
// Each logical level checks 4 KiB, keeps 2 KiB of buffer, reads its caller's buffer through
// a pointer, records the stack pointer it sees (levels inlined into one physical frame see
// the same), and checks its own buffer on the way back.  Returns the number of levels; a
// damaged buffer subtracts 10^6.
#include <cstdint>

#include "weft/weft.hpp"

std::uintptr_t g_sp_of_level[1 << 16];

namespace {

inline std::uintptr_t stack_pointer() {
  std::uintptr_t sp;
#if defined(__x86_64__)
  asm volatile("mov %%rsp, %0" : "=r"(sp));
#else
  asm volatile("mov %0, sp" : "=r"(sp));
#endif
  return sp;
}

inline long self_inlined(int n, const unsigned char* parent) {
  WEFT_STACK_CHECK(4096);
  unsigned char buf[2048];
  buf[n % 2048] = static_cast<unsigned char>(n);
  buf[(n + 1) % 2048] = parent ? parent[(n + 1) % 2048] : static_cast<unsigned char>(n + 1);
  g_sp_of_level[n % (1 << 16)] = stack_pointer();
  asm volatile("" : : "r"(buf) : "memory");
  if (n == 0) return 1;
  const long r = self_inlined(n - 1, buf);
  return r + (buf[n % 2048] == static_cast<unsigned char>(n) && buf[(n + 1) % 2048] == static_cast<unsigned char>(n + 1)
                  ? 1
                  : -1'000'000);
}

}  // namespace

long run_self_inlined(int n) { return self_inlined(n, nullptr); }
