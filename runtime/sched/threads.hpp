// SPDX-License-Identifier: Apache-2.0
// threads.hpp — the Ms (OS threads) between the files of the scheduler: starting, waking and
// parking them, and the idle lists (threads.cpp).  What runtime/io also uses is in sched.hpp.
#pragma once

#include <cstddef>
#include <system_error>

#include "runtime/sched/sched.hpp"

namespace weft::detail {

void pidle_put_locked(sched* s, p* pp) noexcept;  // sched.lock held
// Starts an M for pp; on failure drops its record again and says why in *err.
bool try_newm(sched* s, p* pp, bool spinning, std::system_error* err) noexcept;
// Why a thread could not be made (err: pthread_create's), as advice for the user.
void thread_failure_reason(int err, char* out, std::size_t n) noexcept;
// A wired goroutine and a P for it, handed to its M; wake_wired also wakes that M.
void hand_wired(m* owner, p* pp, g* gp) noexcept;
void wake_wired(m* owner, p* pp, g* gp) noexcept;
// Sleeps until handed a P or stopped, or (the timer sleeper) until the next timer is due.
void stopm(sched* s, m* mp) noexcept;
// The scheduling loop an M runs on g0 (schedule.cpp); returns when the runtime stops.
void schedule(sched* s, m* mp) noexcept;

}  // namespace weft::detail
