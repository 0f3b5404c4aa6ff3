// SPDX-License-Identifier: Apache-2.0
// go_system.hpp — the Go column: find the go command, build bench/go/compare.go into a
// scratch directory (never the report's), and say why not when either is missing.
#pragma once

#include <string>

namespace weft_compare {

struct go_program {
  bool ok = false;
  std::string path;     // the built program
  std::string why_not;  // when !ok: "Go not installed", "go build failed: ..."
  double build_seconds = 0;
};

// Looks for go on PATH (then /usr/lib/go/bin, /usr/local/go/bin) and builds the source named at
// configure time (WEFT_COMPARE_GO_SOURCE; the environment variable of the same name overrides
// it) into work_dir/weft-compare-go.  Never throws.
go_program prepare_go(const std::string& work_dir);

}  // namespace weft_compare
