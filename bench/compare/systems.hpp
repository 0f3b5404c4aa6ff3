// SPDX-License-Identifier: Apache-2.0
// systems.hpp — what weft-compare runs the workloads on: the columns of every report.
//
//   weft-copy       goroutines, pure copying: stack_strategy::copy with stack_reserve = 0, every
//                   doubling copies (Go's way)
//   weft            goroutines with the runtime's defaults: stack_strategy::in_place, an 8 MiB
//                   slot (a default pthread stack here) committed on touch, never moved
//   weft-copy256    goroutines with stack_strategy::copy and its 256 KiB reserve: in place
//                   inside it, copies past it (the default before in_place)
//   weft-segmented  goroutines with stack_strategy::segmented (new segments, frames never move)
//   pthread         glibc threads with default attributes: the baseline every ratio divides by
//   clone           kernel tasks from raw clone3 on stacks from the kernel model's glibc cache
//   go              Go goroutines (bench/go/compare.go built with the installed go)
//   boost-fiber     Boost.Fiber fibers (libboost-fiber-dev): its work_stealing algorithm on as
//                   many threads as the others' procs, its channels; absent when Boost.Fiber
//                   was not found at configure time (run_fiber.cpp)
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "bench/compare/workloads.hpp"
#include "weft/options.hpp"

namespace weft_compare {

enum class system_id { weft_copy, weft, weft_copy256, weft_segmented, pthread, clone, go, boost_fiber };

struct system_desc {
  system_id id;
  const char* name;    // as --only and the child protocol spell it; the column header
  bool goroutines;     // cheap tasks (sized like goroutines) or kernel threads
  bool is_weft;
};
// The columns this build has (boost-fiber only when Boost.Fiber was found at configure time).
const std::vector<system_desc>& all_systems();
const system_desc& describe(system_id s);

// Whether this build has the boost-fiber column, and when not, why (run_fiber.cpp).
bool have_boost_fiber();
const char* boost_fiber_absent_reason();
std::string boost_fiber_version();  // "1.74", or "" when absent

// Why system s cannot run workload w at all (a cell "n/a" with this reason), or "" when it can.
std::string not_applicable(system_id s, workload w);

// The runtime options of a weft column (throws std::logic_error for the others).
weft::options weft_options(system_id s);

// How a column is configured, in words, for the report (reads this machine: the default stack
// size, the guard style glibc and the kernel use).
std::string configuration(system_id s);

}  // namespace weft_compare
