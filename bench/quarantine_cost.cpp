// SPDX-License-Identifier: Apache-2.0
// weft_quarantine_cost: what copy mode's quarantine costs (issue 22; BENCHMARKS.md).  N
// goroutines (first argument, default 10,000) each double their stack from stack_min to SIZE
// bytes (second argument, default 1 MiB) with checks — every doubling a copy at
// WEFT_STACK_RESERVE=0 — and park; prints per goroutine the ranges and bytes kept quarantined
// and what the process's page tables (VmPTE) and address space (VmSize) grew by.  Run it with
// WEFT_STACK=copy WEFT_STACK_RESERVE=0 and WEFT_QUARANTINE=1, then =0.
#include <weft/weft.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

static long status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
  return -1;
}

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 10'000;
  const long size = argc > 2 ? std::atol(argv[2]) : 1L << 20;
  if (n <= 0 || size <= 0) {
    std::fprintf(stderr, "usage: weft_quarantine_cost [goroutines > 0] [stack bytes > 0]\n");
    return 2;
  }
  const long pte0 = status_kb("VmPTE:"), vm0 = status_kb("VmSize:");
  return weft::run([&] {
    weft::chan<int> gate;
    weft::wait_group grown, done;
    grown.add(static_cast<int>(n));
    done.add(static_cast<int>(n));
    for (long i = 0; i < n; ++i) weft::go([&] {
        while (weft::this_stack().size < static_cast<std::size_t>(size)) weft::ensure_stack(weft::this_stack().size);
        grown.done();
        (void)gate.recv();
        done.done();
      });
    grown.wait();
    weft::sleep_for(std::chrono::milliseconds(200));
    const weft::stats st = weft::get_stats();
    std::printf("%ld goroutines grown to %ld bytes: %.1f copies each; quarantined %.1f ranges (%.0f KiB) each; "
                "VmPTE +%.0f B and VmSize +%.0f KiB each\n",
                n, size, double(st.stack_copies) / n, double(st.stack_quarantined) / n,
                double(st.stack_bytes_quarantined) / n / 1024, double(status_kb("VmPTE:") - pte0) * 1024 / n,
                double(status_kb("VmSize:") - vm0) / n);
    gate.close();
    done.wait();
  });
}
