// SPDX-License-Identifier: Apache-2.0
// args.cpp — parsing and the usage text.
#include "bench/compare/args.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace weft_compare {

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: weft-compare [--quick | --full] [--only LIST] [--out DIR] [--depth N] [--servers]\n"
               "\n"
               "Runs the same workloads on weft goroutines, pthreads, kernel-model clone tasks, Go and\n"
               "Boost.Fiber, and prints a table of single-run figures (warm medians beside them) and their\n"
               "ratios to Go, Boost.Fiber and pthreads; writes DIR/report.md and DIR/ratios.svg.\n"
               "\n"
               "  --quick       small sizes (about 15 s): a smoke test, not a measurement\n"
               "  --full        large sizes: a million parked goroutines (created, and their memory), a burst of a\n"
               "                million, every weft column on every workload, and threads until the real limit\n"
               "                (kernel.pid_max or threads-max: other processes cannot fork for a moment)\n"
               "  --only LIST   comma-separated workloads and/or systems to run (default: all)\n"
               "                  workloads: spawn, burst, pingpong, chanpp, skynet, create, grow, parked, capacity\n"
               "                  systems:   weft-copy, weft, weft-copy256, weft-segmented, pthread, clone, go,\n"
               "                             boost-fiber (when Boost.Fiber was found at configure time)\n"
               "                (ratios need pthread)\n"
               "  --out DIR     where the reports go (default: ./weft-compare-report)\n"
               "  --depth N     frames the grow workload recurses (default 4000, at most 16000)\n"
               "  --servers     also run weft-netbench (bench/net): TCP echo and HTTP keep-alive servers, weft vs\n"
               "                Go vs a thread per connection, one bounded client; its table goes to\n"
               "                DIR/servers.txt and the end of report.md (2 s per cell with --quick, 5 s, 10 s --full)\n"
               "  --help        this text\n"
               "\n"
               "Each system's workload runs in a child process; one that fails or hits a limit is\n"
               "recorded as such and the run goes on.  The default run takes about 1.5 minutes on 2 cores.\n");
}

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

config parse_args(const std::vector<std::string>& args) {
  config c;
  bool quick = false, full = false;
  std::vector<workload> only_w;
  std::vector<system_id> only_s;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    // --name VALUE or --name=VALUE
    auto value = [&](const char* name) -> std::string {
      std::string n = name;
      if (a.size() > n.size() && a.compare(0, n.size() + 1, n + "=") == 0) return a.substr(n.size() + 1);
      if (i + 1 >= args.size()) throw usage_error(n + " needs a value");
      return args[++i];
    };
    auto is = [&](const char* name) {
      std::string n = name;
      return a == n || a.compare(0, n.size() + 1, n + "=") == 0;
    };
    if (a == "--help" || a == "-h") {
      c.help = true;
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--full") {
      full = true;
    } else if (a == "--servers") {
      c.servers = true;
    } else if (is("--out")) {
      c.out = value("--out");
      if (c.out.empty()) throw usage_error("--out needs a directory");
    } else if (is("--depth")) {
      std::string v = value("--depth");
      char* end = nullptr;
      long d = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || d < 1 || d > 16000)
        throw usage_error("--depth wants a number of frames from 1 to 16000 (deeper would overflow 8 MiB thread stacks), not '" + v + "'");
      c.depth = static_cast<unsigned>(d);
    } else if (is("--only")) {
      std::vector<std::string> names = split_commas(value("--only"));
      if (names.empty()) throw usage_error("--only needs a comma-separated list of workloads and/or systems");
      for (const std::string& n : names) {
        bool found = false;
        for (const workload_desc& w : all_workloads())
          if (n == w.name) only_w.push_back(w.id), found = true;
        for (const system_desc& s : all_systems())
          if (n == s.name) only_s.push_back(s.id), found = true;
        if (!found && n == "boost-fiber")
          throw usage_error(std::string("--only: boost-fiber is not in this build: ") + boost_fiber_absent_reason());
        if (!found) throw usage_error("--only: '" + n + "' is neither a workload nor a system");
      }
    } else {
      throw usage_error("unknown argument '" + a + "'");
    }
  }
  if (quick && full) throw usage_error("--quick and --full exclude each other");
  c.sc = quick ? scale::quick : full ? scale::full : scale::normal;
  for (const workload_desc& w : all_workloads())
    if (only_w.empty() || std::find(only_w.begin(), only_w.end(), w.id) != only_w.end()) c.workloads.push_back(w.id);
  for (const system_desc& s : all_systems())
    if (only_s.empty() || std::find(only_s.begin(), only_s.end(), s.id) != only_s.end()) c.systems.push_back(s.id);
  return c;
}

}  // namespace weft_compare
