// SPDX-License-Identifier: Apache-2.0
// weft_reserve_sweep — the measurement behind the default stack_reserve and stack_min
// (BENCHMARKS.md, "Stack growth (issue 5)"): for each (stack_min, stack_reserve) pair, in a
// fresh child process,
//   - N goroutines parked on a channel: RSS, page tables (VmPTE) and address space per
//     goroutine, and the time to start them;
//   - a fresh goroutine recursing 4000 frames of ~440 bytes (the growth benchmark), and one
//     recursing 200 (~88 KiB, a "busy but ordinary" goroutine): median time, stack copies.
//
//   weft_reserve_sweep [--goroutines N] [--configs MIN:RESERVE,...] [--reps N]
//   (default: 1000000 goroutines; 8K:0,8K:64K,8K:256K,8K:1M,8K:4M,16K:256K; 15 reps)
//
// A configuration whose estimated page tables and memory would not fit in half of
// MemAvailable is run with fewer goroutines (the table says how many): the per-goroutine
// figures do not depend on N.  Prints a Markdown table.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "recurse440.hpp"
#include "weft/weft.hpp"

namespace {

struct proc_status {
  double rss_kb = 0, pte_kb = 0, vm_kb = 0;
};

proc_status read_status() {
  proc_status s;
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    auto val = [&](const char* key, double& out) {
      if (line.rfind(key, 0) == 0) out = std::strtod(line.c_str() + std::strlen(key), nullptr);
    };
    val("VmRSS:", s.rss_kb);
    val("VmPTE:", s.pte_kb);
    val("VmSize:", s.vm_kb);
  }
  return s;
}

double mem_available_kb() {
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("MemAvailable:", 0) == 0) return std::strtod(line.c_str() + 13, nullptr);
  return 0;
}

std::size_t parse_size(const std::string& t) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(t.c_str(), &end, 10);
  std::string rest = end;
  if (rest == "K" || rest == "k") v <<= 10;
  else if (rest == "M" || rest == "m") v <<= 20;
  else if (rest == "G" || rest == "g") v <<= 30;
  else if (!rest.empty()) {
    std::fprintf(stderr, "weft_reserve_sweep: bad size '%s'\n", t.c_str());
    std::exit(2);
  }
  return static_cast<std::size_t>(v);
}

std::string size_text(std::size_t v) {
  if (v == 0) return "0";
  if (v % (1 << 20) == 0) return std::to_string(v >> 20) + " MiB";
  return std::to_string(v >> 10) + " KiB";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The child: one configuration.  Prints "key=value" pairs on one line.
int child(std::size_t min, std::size_t reserve, long n, int reps) {
  weft::options o;
  o.procs = 2;
  o.stack_min = min;
  o.stack_reserve = reserve;
  o.scan_interval = std::chrono::milliseconds(0);
  proc_status base = read_status();
  double spawn_s;
  proc_status parked;
  {
    weft::runtime rt(o);
    weft::chan<int> gate;
    weft::wait_group started;
    started.add(static_cast<int>(n));
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) {
      weft::go([gate, &started]() mutable {
        started.done();
        (void)gate.recv();
      });
    }
    started.wait();
    spawn_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    parked = read_status();
    gate.close();
  }
  auto growth = [&](long depth, double& us, double& copies, double& grows) {
    weft::runtime rt(o);
    std::vector<double> xs;
    weft::stats before = weft::get_stats();
    for (int r = 0; r < reps + 1; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      long v = weft::spawn([depth] { return recurse440(depth); }).join();
      if (v < 0) std::abort();
      if (r > 0) xs.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    weft::stats after = weft::get_stats();
    us = median(xs);
    copies = static_cast<double>(after.stack_copies - before.stack_copies) / (reps + 1);
    grows = static_cast<double>(after.stack_grows - before.stack_grows) / (reps + 1);
  };
  double deep_us, deep_copies, deep_grows, mid_us, mid_copies, mid_grows;
  growth(4000, deep_us, deep_copies, deep_grows);
  growth(200, mid_us, mid_copies, mid_grows);
  std::printf("n=%ld rss_b=%.0f pte_b=%.0f vm_b=%.0f spawn_us=%.3f deep_us=%.1f deep_copies=%.2f deep_grows=%.2f "
              "mid_us=%.1f mid_copies=%.2f mid_grows=%.2f\n",
              n, (parked.rss_kb - base.rss_kb) * 1024 / n, (parked.pte_kb - base.pte_kb) * 1024 / n,
              (parked.vm_kb - base.vm_kb) * 1024 / n, spawn_s * 1e6 / n, deep_us, deep_copies, deep_grows, mid_us,
              mid_copies, mid_grows);
  return 0;
}

double field(const std::string& line, const char* key) {
  std::string k = std::string(key) + "=";
  auto p = line.find(k);
  return p == std::string::npos ? -1 : std::strtod(line.c_str() + p + k.size(), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  long n = 1'000'000;
  int reps = 15;
  std::string configs = "8K:0,8K:64K,8K:256K,8K:1M,8K:4M,16K:256K";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--child" && i + 4 < argc)
      return child(parse_size(argv[i + 1]), parse_size(argv[i + 2]), std::atol(argv[i + 3]), std::atoi(argv[i + 4]));
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usage: weft_reserve_sweep [--goroutines N] [--configs MIN:RESERVE,...] [--reps N]\n");
      return 2;
    }
    if (a == "--goroutines") n = std::atol(argv[++i]);
    else if (a == "--configs") configs = argv[++i];
    else if (a == "--reps") reps = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: weft_reserve_sweep [--goroutines N] [--configs MIN:RESERVE,...] [--reps N]\n");
      return 2;
    }
  }
  std::printf("| stack_min | stack_reserve | parked goroutines | RSS / goroutine | VmPTE / goroutine | address space / "
              "goroutine | start / goroutine | 4000×440 B recursion | copies | 200×440 B recursion | copies |\n"
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::stringstream ss(configs);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto colon = item.find(':');
    std::size_t min = parse_size(item.substr(0, colon)), reserve = parse_size(item.substr(colon + 1));
    // Page tables: markers over guard + reserve (madvise guards live in PTEs) ~ slot / 512;
    // memory: ~4.5 KiB per parked goroutine measured, 6 KiB assumed.  Keep the child under
    // half of MemAvailable.
    double slot = 64.0 * 1024 + static_cast<double>(std::max(min, reserve));
    double per = slot / 512 + 6 * 1024;
    long run_n = n;
    double avail = mem_available_kb() * 1024 / 2;
    while (run_n > 1000 && per * static_cast<double>(run_n) > avail) run_n /= 2;
    std::fflush(stdout);
    int fds[2];
    if (::pipe(fds) != 0) return 1;
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      std::string sm = std::to_string(min), sr = std::to_string(reserve), sn = std::to_string(run_n),
                  sp = std::to_string(reps);
      ::execl("/proc/self/exe", argv[0], "--child", sm.c_str(), sr.c_str(), sn.c_str(), sp.c_str(), nullptr);
      _exit(127);
    }
    ::close(fds[1]);
    std::string out;
    char buf[4096];
    ssize_t r;
    while ((r = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(r));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::printf("| %s | %s | failed (status %d) | | | | | | | | |\n", size_text(min).c_str(), size_text(reserve).c_str(), status);
      continue;
    }
    std::printf("| %s | %s | %.0f | %.0f B | %.0f B | %.0f KiB | %.2f µs | %.0f µs | %.1f | %.1f µs | %.1f |\n",
                size_text(min).c_str(), size_text(reserve).c_str(), field(out, "n"), field(out, "rss_b"),
                field(out, "pte_b"), field(out, "vm_b") / 1024, field(out, "spawn_us"), field(out, "deep_us"),
                field(out, "deep_copies"), field(out, "mid_us"), field(out, "mid_copies"));
  }
  return 0;
}
