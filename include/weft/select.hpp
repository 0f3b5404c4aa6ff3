// SPDX-License-Identifier: Apache-2.0
// weft/select.hpp — Go's select statement.
//
//   std::size_t i = weft::select(
//       weft::on_recv(in, [](std::optional<int> v) { ... }),   // v: nullopt if `in` is closed
//       weft::on_send(out, 42, [] { ... }),
//       weft::on_timeout(10ms, [] { ... }),
//       weft::on_default([] { ... }));                          // nothing ready: don't wait
//
// Waits until one case can proceed, runs it and its function, and returns the case's index
// (its position among the arguments).  Among cases ready at once one is chosen uniformly at
// random, as Go does.  A case on a nil channel is never ready.  The rules of each case:
//   on_recv(ch, f)       ready when a value is there or ch is closed; f(std::optional<T>), or
//                        f() if f takes no argument
//   on_send(ch, v, f)    ready when a receiver waits or the buffer has room; chosen on a
//                        closed channel it throws weft::closed_channel (Go panics).  v is
//                        moved into the case when select is called; if another case runs, it
//                        is destroyed unsent.
//   on_timeout(d, f)     runs if nothing else became ready within d (never earlier); d <= 0
//                        acts like on_default.  With several, the earliest counts.
//   on_default(f)        runs at once if nothing is ready (at most one per select).
// A select with no timeout, no default and only nil channels would wait forever: it throws
// weft::error instead.  An exception from f propagates; the case has completed by then.
// Build the cases inside the select call, as above: a case refers to its channel without
// owning it, so it must not outlive the full expression.
//
// Plain threads: select blocks the thread, as every channel operation does.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/chan.hpp"
#include "weft/detail/duration.hpp"
#include "weft/export.hpp"

namespace weft {

namespace detail {

enum class select_kind : std::uint8_t { recv, send, timeout, fallback };

// One case as the runtime sees it.
struct select_slot {
  chan_core* c = nullptr;        // recv/send: the channel (nullptr: nil, never ready)
  void* elem = nullptr;          // send: the value to move from; recv: room to construct into
  std::int64_t timeout_ns = 0;   // timeout: the duration
  select_kind kind = select_kind::fallback;
};

// Runs the select over n slots and returns the index of the case that proceeded.  For a recv
// case, *received says whether a value was constructed in its room (false: closed).  Throws
// closed_channel (a send case on a closed channel) or weft::error (nothing could ever be ready).
WEFT_API std::size_t select_run(select_slot* slots, std::size_t n, bool* received);

template <class T, class F>
struct recv_case {
  chan_core* c;
  F f;
  elem_slot<T> room;
  select_slot slot() noexcept { return {c, room.bytes, 0, select_kind::recv}; }
  void finish(bool received) {
    std::optional<T> v;
    if (received) v = room.take();
    if constexpr (std::is_invocable_v<F&, std::optional<T>>) f(std::move(v));
    else f();
  }
};

template <class T, class F>
struct send_case {
  chan_core* c;
  T v;
  F f;
  select_slot slot() noexcept { return {c, &v, 0, select_kind::send}; }
  void finish(bool) { f(); }
};

template <class F>
struct timeout_case {
  std::int64_t ns;
  F f;
  select_slot slot() noexcept { return {nullptr, nullptr, ns, select_kind::timeout}; }
  void finish(bool) { f(); }
};

template <class F>
struct default_case {
  F f;
  select_slot slot() noexcept { return {nullptr, nullptr, 0, select_kind::fallback}; }
  void finish(bool) { f(); }
};

template <class C>
struct is_default_case : std::false_type {};
template <class F>
struct is_default_case<default_case<F>> : std::true_type {};

struct no_op {
  void operator()() const noexcept {}
};

}  // namespace detail

// A case that receives from ch and calls f(std::optional<T>) (nullopt: ch is closed), or f().
template <class T, class F>
detail::recv_case<T, std::decay_t<F>> on_recv(const chan<T>& ch, F&& f) {
  return {ch.native_handle(), std::forward<F>(f), {}};
}

// A case that sends v on ch and then calls f().
template <class T, class V, class F>
detail::send_case<T, std::decay_t<F>> on_send(const chan<T>& ch, V&& v, F&& f) {
  return {ch.native_handle(), T(std::forward<V>(v)), std::forward<F>(f)};
}
template <class T, class V>
detail::send_case<T, detail::no_op> on_send(const chan<T>& ch, V&& v) {
  return {ch.native_handle(), T(std::forward<V>(v)), {}};
}

// A case that runs f() if no other case became ready within d.
template <class Rep, class Period, class F>
detail::timeout_case<std::decay_t<F>> on_timeout(std::chrono::duration<Rep, Period> d, F&& f) {
  // Saturate: a duration near what int64 nanoseconds hold (~292 years) means "no limit".
  const std::int64_t ns = detail::ceil_ns_capped(d, 9'000'000'000'000'000'000, INT64_MAX);
  return {ns, std::forward<F>(f)};
}

// A case that runs f() at once when no other case is ready.
template <class F>
detail::default_case<std::decay_t<F>> on_default(F&& f) {
  return {std::forward<F>(f)};
}

// Go's select: see the top of this file.  Returns the index of the case that ran.
template <class... Cases>
std::size_t select(Cases&&... cases) {
  constexpr std::size_t n = sizeof...(Cases);
  static_assert(n > 0, "weft::select needs at least one case");
  static_assert((0 + ... + (detail::is_default_case<std::decay_t<Cases>>::value ? 1 : 0)) <= 1,
                "weft::select takes at most one on_default");
  detail::select_slot slots[n] = {cases.slot()...};
  bool received = false;
  std::size_t chosen = detail::select_run(slots, n, &received);
  std::size_t i = 0;
  ((i++ == chosen ? cases.finish(received) : void()), ...);
  return chosen;
}

}  // namespace weft
