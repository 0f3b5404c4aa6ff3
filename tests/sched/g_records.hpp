// SPDX-License-Identifier: Apache-2.0
// Blank G records for tests of the run and free queues, which only store and link them.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "runtime/sched/g.hpp"

namespace weft_test {

inline std::vector<std::unique_ptr<weft::detail::g>> make_gs(std::size_t n) {
  std::vector<std::unique_ptr<weft::detail::g>> gs;
  for (std::size_t i = 0; i < n; ++i) gs.push_back(std::make_unique<weft::detail::g>());
  return gs;
}

}  // namespace weft_test
