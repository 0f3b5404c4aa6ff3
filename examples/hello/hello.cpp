// SPDX-License-Identifier: Apache-2.0
// weft-hello: the smallest real weft program.  It fans out goroutines that each recurse a
// little (so their stacks grow), joins them, and prints what the runtime did.  Configure it
// with the WEFT_* variables (README); a bad value is reported and it exits with status 2.
#include <cstdio>
#include <vector>

#include <weft/weft.hpp>

namespace {

// Recursion with a real frame on each level, guarded by an explicit check.
// The frame is used after the call, so the compiler cannot turn this into a loop.
long depth_sum(int n) {
  WEFT_STACK_CHECK(512);
  volatile char frame[256];
  frame[n % 256] = 1;
  long below = n == 0 ? 0 : depth_sum(n - 1);
  return below + n * frame[n % 256];
}

}  // namespace

int main() {
  return weft::run([] {
    constexpr int kGoroutines = 10000;
    std::vector<weft::task<long>> tasks;
    tasks.reserve(kGoroutines);
    for (int i = 0; i < kGoroutines; ++i) tasks.push_back(weft::spawn([i] { return depth_sum(i % 200); }));
    long total = 0;
    for (auto& t : tasks) total += t.join();
    weft::stats st = weft::get_stats();
    std::printf("weft-hello: %d goroutines on %llu Ps and %llu threads; sum %ld\n", kGoroutines,
                (unsigned long long)st.procs, (unsigned long long)st.threads, total);
    std::printf("  stack grows %llu, copies %llu (%llu bytes), steals %llu, address space reserved %llu MiB\n",
                (unsigned long long)st.stack_grows, (unsigned long long)st.stack_copies,
                (unsigned long long)st.stack_bytes_copied, (unsigned long long)st.steals,
                (unsigned long long)(st.stack_bytes_reserved >> 20));
    long expected = 0;
    for (int i = 0; i < kGoroutines; ++i) expected += (i % 200) * (i % 200 + 1) / 2;
    return total == expected ? 0 : 1;
  });
}
