// SPDX-License-Identifier: Apache-2.0
// run.hpp — the child side: run one workload on one system and print its figures
// (child.hpp's protocol).  Each throws on failure; the caller prints the reason and exits 1.
#pragma once

#include "bench/compare/child.hpp"
#include "bench/compare/systems.hpp"
#include "bench/compare/workloads.hpp"

namespace weft_compare {

int run_weft_child(system_id sys, workload w, const params& p);     // run_weft.cpp
int run_thread_child(system_id sys, workload w, const params& p);   // run_threads.cpp
int run_fiber_child(workload w, const params& p);                   // run_fiber.cpp

}  // namespace weft_compare
