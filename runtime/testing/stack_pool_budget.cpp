// SPDX-License-Identifier: Apache-2.0
// stack_pool_budget.cpp — FOR TESTS ONLY: stack_pool::set_map_budget_for_testing, kept out of
// the release library (runtime/stack/stack_pool.hpp declares it).
#include "runtime/stack/stack_pool.hpp"

namespace weft::detail {

void stack_pool::set_map_budget_for_testing(std::size_t limit) noexcept {
  test_limit_->store(limit, std::memory_order_relaxed);
}

}  // namespace weft::detail
