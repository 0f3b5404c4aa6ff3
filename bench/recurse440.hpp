// SPDX-License-Identifier: Apache-2.0
// recurse440.hpp — the growth benchmarks' recursion (bench/grow_bench.cpp, bench/reserve_sweep.cpp):
// ~440-byte frames (a 400-byte array, the return address, saved registers), each with an
// explicit WEFT_STACK_CHECK.  bench/grow_bench_split.cpp has its split-stack twin, and
// bench/go/grow.go the same shape in Go.
//
// Internal linkage on purpose (one copy per program, as when each file defined its own): the
// compiler may treat it as a local function, exactly as before the two copies were merged.
#pragma once

#include "weft/stack.hpp"

namespace {

__attribute__((noinline)) long recurse440(long d) {
  WEFT_STACK_CHECK(512);
  volatile unsigned char buf[400];
  buf[d % 400] = static_cast<unsigned char>(d);
  if (d == 0) return buf[0];
  return recurse440(d - 1) ^ buf[(d * 7) % 400];
}

}  // namespace
