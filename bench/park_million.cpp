// SPDX-License-Identifier: Apache-2.0
// weft_park_million: 1,000,000 goroutines parked at once on one channel, then released; prints
// what each parked goroutine costs — RSS, page tables (VmPTE), address space (VmSize), memory
// mappings — and how many would fit by memory and by address space (issues 3 and 22;
// BENCHMARKS.md).  Options come from the environment (WEFT_STACK, WEFT_STACK_RESERVE...), so
// the same binary measures every strategy; the count is the first argument.
#include <weft/weft.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

static long status_kb(const char* file, const char* key) {
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
  return -1;
}
static long mappings() {
  std::ifstream f("/proc/self/maps");
  std::string line;
  long n = 0;
  while (std::getline(f, line)) ++n;
  return n;
}

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  if (n <= 0) {
    std::fprintf(stderr, "usage: weft_park_million [count > 0]\n");
    return 2;
  }
  const long rss0 = status_kb("/proc/self/status", "VmRSS:"), pte0 = status_kb("/proc/self/status", "VmPTE:");
  const long vm0 = status_kb("/proc/self/status", "VmSize:"), maps0 = mappings();
  return weft::run([&] {
    weft::chan<int> gate;  // unbuffered: every goroutine parks in recv
    weft::wait_group started, done;
    started.add(static_cast<int>(n));
    done.add(static_cast<int>(n));
    for (long i = 0; i < n; ++i) weft::go([&] {
        started.done();
        (void)gate.recv();
        done.done();
      });
    started.wait();
    weft::sleep_for(std::chrono::milliseconds(200));  // let the last ones reach recv
    const auto st = weft::get_stats();
    const double rss = double(status_kb("/proc/self/status", "VmRSS:") - rss0) * 1024 / double(n);
    const double pte = double(status_kb("/proc/self/status", "VmPTE:") - pte0) * 1024 / double(n);
    const double vm = double(status_kb("/proc/self/status", "VmSize:") - vm0) * 1024 / double(n);
    const long maps = mappings() - maps0;
    const double avail = double(status_kb("/proc/meminfo", "MemAvailable:")) * 1024;
    std::printf("live goroutines %llu\n", (unsigned long long)st.goroutines_live);
    std::printf("per parked goroutine: RSS %.0f B, page tables %.0f B, total %.0f B; address space %.2f MiB\n", rss,
                pte, rss + pte, vm / 1048576.0);
    std::printf("memory mappings (VMAs) added: %ld for all of them\n", maps);
    std::printf("how many more would fit: ~%.0f by memory (MemAvailable / (RSS + page tables) each), ~%.0f by the "
                "128 TiB of user address space\n",
                avail / (rss + pte), double(std::uint64_t{128} << 40) / vm);
    gate.close();
    done.wait();
    return st.goroutines_live >= static_cast<std::uint64_t>(n) ? 0 : 1;
  });
}
