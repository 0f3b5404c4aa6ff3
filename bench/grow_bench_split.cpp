// SPDX-License-Identifier: Apache-2.0
// The split-stack half of bench/grow_bench.cpp: compiled with -fsplit-stack, so every function
// here starts with a prologue check against the limit word (%fs:0x70) and no explicit checks.
long plain_leaf(long x);  // grow_bench.cpp: no prologue

__attribute__((noinline)) long recurse440_split(long d) {
  volatile unsigned char buf[400];
  buf[d % 400] = static_cast<unsigned char>(d);
  if (d == 0) return buf[0];
  return recurse440_split(d - 1) ^ buf[(d * 7) % 400];
}

__attribute__((noinline)) long fib_split(int n) { return n < 2 ? n : fib_split(n - 1) + fib_split(n - 2); }

// Every frame calls code without checks: gold turns this function's check into a call to
// __morestack_non_split, which looks for 16 KiB more room on every call.
__attribute__((noinline)) long fib_split_calling_plain(int n) {
  return n < 2 ? plain_leaf(n) : fib_split_calling_plain(n - 1) + fib_split_calling_plain(n - 2);
}
