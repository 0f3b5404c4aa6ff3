// SPDX-License-Identifier: Apache-2.0
// skynet.hpp — the skynet tree (https://github.com/atemerev/skynet) shared by
// bench/sync_bench.cpp (BM_WeftSkynet*) and bench/skynet_cpu.cpp: 1,111,111 goroutines, 10
// children per node, 1M leaves; each leaf sends its number up an unbuffered channel, each node
// sums ten.  bench/go/skynet.go is the same shape in Go.
#pragma once

#include "weft/weft.hpp"

namespace {

inline constexpr long kSkynetSum = 499'999'500'000L;  // 0 + 1 + ... + 999,999

inline void skynet(weft::chan<long> c, long num, long size, long div) {
  if (size == 1) {
    c.send(num);
    return;
  }
  weft::chan<long> rc;
  for (long i = 0; i < div; ++i) weft::go(skynet, rc, num + i * (size / div), size / div, div);
  long sum = 0;
  for (long i = 0; i < div; ++i) sum += *rc.recv();
  c.send(sum);
}

// One whole tree, from the calling goroutine; returns the root's sum (kSkynetSum if right).
inline long skynet_tree() {
  weft::chan<long> c;
  weft::go(skynet, c, 0L, 1'000'000L, 10L);
  return *c.recv();
}

}  // namespace
