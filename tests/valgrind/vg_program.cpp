// SPDX-License-Identifier: Apache-2.0
// vg_program.cpp — a small but real weft program for tests/valgrind/valgrind_test.sh to run
// under memcheck (README, "Running under valgrind").  It uses what an ordinary program does:
// spawn and join, a few thousand goroutines parked at once on channels, a pipeline whose
// stages hand values along unbuffered and buffered channels and end by close, and recursion
// that grows goroutine stacks well past their first pages.  Every result is checked here and
// printed, so the script can compare the output and valgrind's verdict separately.  No
// WEFT_* variables: the defaults are what it tests.
#include <cstdio>
#include <cstring>
#include <vector>

#include <weft/weft.hpp>

namespace {

// A few thousand goroutines at once: each waits for its number on `in`, answers on `out`.
// All of them are parked (on the unbuffered channel) before the first number is sent.
long fan_out_in(int n) {
  weft::chan<int> in;
  weft::chan<long> out(64);
  weft::wait_group started;
  started.add(n);
  for (int i = 0; i < n; ++i) {
    weft::go([in, out, &started]() mutable {
      started.done();
      const int v = *in.recv();
      out.send(3L * v + 1);
    });
  }
  started.wait();
  long sum = 0;
  weft::go([in, n]() mutable {
    for (int i = 0; i < n; ++i) in.send(i);
  });
  for (int i = 0; i < n; ++i) sum += *out.recv();
  return sum;
}

// Recursion with a real 1 KiB frame per level behind an explicit check: `levels` of it grow a
// goroutine's stack in place from its first 8 KiB to hundreds of KiB.  The frame is read after
// the call, so the compiler cannot fold the recursion into a loop.
long deep(int levels, unsigned seed) {
  WEFT_STACK_CHECK(2048);
  volatile unsigned char frame[1024];
  for (std::size_t i = 0; i < sizeof frame; i += 64) frame[i] = static_cast<unsigned char>(seed + i);
  const long below = levels == 0 ? 0 : deep(levels - 1, seed * 1103515245u + 12345u);
  long own = 0;
  for (std::size_t i = 0; i < sizeof frame; i += 64) own += frame[i];
  return below + own;
}

// The same sum on the calling thread's own stack, for the expected value.
long deep_expected(int levels, unsigned seed) {
  long total = 0;
  for (int l = levels; l >= 0; --l) {
    for (std::size_t i = 0; i < 1024; i += 64) total += static_cast<unsigned char>(seed + i);
    seed = seed * 1103515245u + 12345u;
  }
  return total;
}

// producer -> square -> sum, over an unbuffered and a buffered channel, ended by close().
long pipeline(int n) {
  weft::chan<int> numbers;
  weft::chan<long> squares(8);
  weft::go([numbers, n]() mutable {
    for (int i = 1; i <= n; ++i) numbers.send(i);
    numbers.close();
  });
  weft::go([numbers, squares]() mutable {
    for (int v : numbers) squares.send(static_cast<long>(v) * v);
    squares.close();
  });
  long sum = 0;
  for (long v : squares) sum += v;
  return sum;
}

}  // namespace

int main() {
  return weft::run([]() -> int {
    int bad = 0;
    constexpr int kParked = 2000;
    const long fan = fan_out_in(kParked);
    const long fan_want = 3L * kParked * (kParked - 1) / 2 + kParked;
    std::printf("fan-out/in: %d goroutines parked at once, sum %ld\n", kParked, fan);
    bad += fan != fan_want;

    constexpr int kDeep = 8, kLevels = 300;
    std::vector<weft::task<long>> tasks;
    for (int i = 0; i < kDeep; ++i) tasks.push_back(weft::spawn(deep, kLevels, 7u + i));
    long deep_sum = 0, deep_want = 0;
    for (int i = 0; i < kDeep; ++i) {
      deep_sum += tasks[i].join();
      deep_want += deep_expected(kLevels, 7u + i);
    }
    std::printf("deep recursion: %d goroutines, %d levels of 1 KiB frames, sum %s\n", kDeep, kLevels,
                deep_sum == deep_want ? "right" : "WRONG");
    bad += deep_sum != deep_want;

    const weft::stats st = weft::get_stats();
    std::printf("stacks grew: %s\n", st.stack_grows >= kDeep ? "yes" : "NO");
    bad += st.stack_grows < kDeep;

    constexpr int kPipe = 1000;
    const long pipe = pipeline(kPipe);
    const long pipe_want = static_cast<long>(kPipe) * (kPipe + 1) * (2 * kPipe + 1) / 6;
    std::printf("pipeline: sum of squares to %d = %ld\n", kPipe, pipe);
    bad += pipe != pipe_want;

    std::printf("%s\n", bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
  });
}
