// SPDX-License-Identifier: Apache-2.0
// args.hpp — weft-compare's command line.
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/compare/systems.hpp"
#include "bench/compare/workloads.hpp"

namespace weft_compare {

struct config {
  scale sc = scale::normal;
  std::string out = "weft-compare-report";
  std::vector<workload> workloads;  // in the catalogue's order
  std::vector<system_id> systems;   // likewise
  unsigned depth = 4000;
  bool servers = false;  // --servers: also run weft-netbench (bench/net), the server comparison
  bool help = false;
};

// A bad command line: main prints the message and the usage to stderr and exits with 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

config parse_args(const std::vector<std::string>& args);
void print_usage(std::FILE* out);

// The hidden flag that makes the program a workload child (child.hpp).
inline constexpr const char* child_flag = "--child-run";

}  // namespace weft_compare
