// SPDX-License-Identifier: Apache-2.0
// A frame of `bytes` for tests/grow/overshoot_test.cpp.  This file is built without
// -fstack-clash-protection and big_frame_probed.cpp (which includes it) with it, so the same
// code makes one frame that jumps whatever lies below the stack pointer and one that probes
// every page on the way down.
#include <cstddef>
#include <cstring>

#ifndef WEFT_BIG_FRAME_NAME
#define WEFT_BIG_FRAME_NAME touch_big_frame
#endif

long WEFT_BIG_FRAME_NAME(std::size_t bytes, void (*inside)()) {
  unsigned char* buf = static_cast<unsigned char*>(__builtin_alloca(bytes));
  std::memset(buf, 0x5a, 64);  // the lowest 64 bytes, the farthest from the caller
  asm volatile("" : : "r"(buf) : "memory");
  inside();
  long sum = 0;
  for (int i = 0; i < 64; ++i) sum += buf[i];
  return sum;
}
