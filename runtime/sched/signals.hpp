// SPDX-License-Identifier: Apache-2.0
// signals.hpp — weft's SIGSEGV/SIGBUS handling (process-wide, as the ABI forces).
#pragma once

namespace weft::detail {

struct m;

// Installs the SIGSEGV and SIGBUS handlers once per process, remembering the handlers that
// were there before so faults that are not weft's reach them.
void install_process_signal_handlers();
// Gives this M's thread an alternate signal stack (a fault on an exhausted goroutine stack
// must be handled somewhere else), and removes it.
void install_thread_signal_stack(m* mp) noexcept;
void remove_thread_signal_stack(m* mp) noexcept;

}  // namespace weft::detail
