// SPDX-License-Identifier: Apache-2.0
// dump.hpp — every goroutine, written for a person (dump.cpp).
#pragma once

namespace weft::detail {

enum class dump_context {
  dying,     // a fatal error or SIGQUIT: no allocation, no demangling, nothing that can wait
  on_demand  // weft::dump_goroutines from a running program: names demangled
};

// Writes the dump of the running runtime to fd (nothing if no runtime runs).
void dump_goroutines_to(int fd, dump_context ctx) noexcept;

}  // namespace weft::detail
