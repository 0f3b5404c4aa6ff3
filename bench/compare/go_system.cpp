// SPDX-License-Identifier: Apache-2.0
// go_system.cpp — building the Go column's program on the fly.
#include "bench/compare/go_system.hpp"

#include <cstdlib>
#include <exception>
#include <sstream>
#include <vector>

#include <unistd.h>

#include "bench/compare/child.hpp"

#ifndef WEFT_COMPARE_GO_SOURCE
#define WEFT_COMPARE_GO_SOURCE ""
#endif

namespace weft_compare {

namespace {

bool executable(const std::string& p) { return !p.empty() && ::access(p.c_str(), X_OK) == 0; }

std::string find_go() {
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty() && executable(dir + "/go")) return dir + "/go";
  }
  for (const char* p : {"/usr/lib/go/bin/go", "/usr/local/go/bin/go"})
    if (executable(p)) return p;
  return {};
}

}  // namespace

go_program prepare_go(const std::string& work_dir) {
  go_program g;
  const std::string go = find_go();
  if (go.empty()) {
    g.why_not = "Go not installed (no go on PATH, /usr/lib/go/bin or /usr/local/go/bin)";
    return g;
  }
  std::string source = WEFT_COMPARE_GO_SOURCE;
  if (const char* env = std::getenv("WEFT_COMPARE_GO_SOURCE"); env && *env) source = env;
  if (source.empty() || ::access(source.c_str(), R_OK) != 0) {
    g.why_not = "the Go workloads (bench/go/compare.go) are not at '" + source +
                "': set WEFT_COMPARE_GO_SOURCE to the file";
    return g;
  }
  try {
    // The build cache needs a home; give it one in the scratch directory if there is none.
    std::vector<std::string> env;
    if (!std::getenv("HOME") && !std::getenv("GOCACHE") && !std::getenv("XDG_CACHE_HOME"))
      env.push_back("GOCACHE=" + work_dir + "/.gocache");
    g.path = work_dir + "/weft-compare-go";
    child_outcome b = run_child({go, "build", "-o", g.path, source}, std::chrono::seconds(300), env);
    g.build_seconds = b.seconds;
    if (!b.ok) {
      g.why_not = "go build " + source + " failed: " + b.failure;
      return g;
    }
    g.ok = true;
  } catch (const std::exception& e) {
    g.why_not = std::string("cannot run go: ") + e.what();
  }
  return g;
}

}  // namespace weft_compare
