// weft_park_million: 1,000,000 goroutines parked at once on one channel, then released; prints
// RSS and page-table bytes per parked goroutine (issue 3; BENCHMARKS.md).
#include <weft/weft.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
static long status_kb(const char* key) {
  std::ifstream f("/proc/self/status"); std::string line;
  while (std::getline(f, line)) if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
  return -1;
}
int main() {
  constexpr int kN = 1'000'000;
  long rss0 = status_kb("VmRSS:"), pte0 = status_kb("VmPTE:");
  return weft::run([&] {
    weft::chan<int> gate;            // unbuffered: every goroutine parks in recv
    weft::wait_group started, done;
    started.add(kN); done.add(kN);
    for (int i = 0; i < kN; ++i) weft::go([&] { started.done(); (void)gate.recv(); done.done(); });
    started.wait();
    weft::sleep_for(std::chrono::milliseconds(200));  // let the last ones reach recv
    auto st = weft::get_stats();
    long rss = status_kb("VmRSS:") - rss0, pte = status_kb("VmPTE:") - pte0;
    std::printf("live goroutines %llu; RSS +%ld KiB (%.2f KiB each), VmPTE +%ld KiB (%.0f B each)\n",
                (unsigned long long)st.goroutines_live, rss, double(rss) / kN, pte, 1024.0 * pte / kN);
    gate.close();
    done.wait();
    return st.goroutines_live >= kN ? 0 : 1;
  });
}
