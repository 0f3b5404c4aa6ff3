// SPDX-License-Identifier: Apache-2.0
// weft/chan.hpp — channels: Go's `chan T` for C++.
//
// A chan<T> is a shared handle: copies name the same channel, which lives until the last
// handle goes.  Capacity 0 is a rendezvous (a send waits for a receiver, and the value passes
// hand to hand); capacity n buffers up to n values in FIFO order.  Go's rules:
//
//   recv on a closed channel    returns what is still buffered, then std::nullopt
//   send on a closed channel    throws weft::closed_channel (so does try_send)
//   close of a closed channel   throws weft::closed_channel
//   close                       wakes every blocked receiver (std::nullopt) and sender (throws)
//   a nil channel               (made from nullptr, or moved from) — select never picks a case
//                               on it; send/recv/close on it throw weft::error instead of
//                               blocking forever as in Go (see README, "Channels, select and sync")
//
// Every blocking operation parks a goroutine, or blocks a plain thread.  T must be movable
// without throwing (values move under the channel's lock); move-only types work.
//
// The template is a thin layer: the channel itself (buffer, wait queues, lock) lives in
// runtime/sync/chan.cpp, which sees elements only as bytes plus the two functions below.
//
// Plain threads: all of it; a blocking operation blocks the thread instead of parking a goroutine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "weft/errors.hpp"
#include "weft/export.hpp"

namespace weft {

namespace detail {

struct chan_core;  // runtime/sync/chan_core.hpp

// How the runtime moves and destroys an element it sees only as `size` bytes.
struct chan_elem_ops {
  std::size_t size;
  std::size_t align;
  // Constructs a T at dst by moving from *src (src stays a valid, moved-from T).  nullptr:
  // T is trivially copyable and memcpy does.
  void (*move_construct)(void* dst, void* src) noexcept;
  // Destroys the T at p.  nullptr: T is trivially destructible.
  void (*destroy)(void* p) noexcept;
};

template <class T>
void chan_move_construct(void* dst, void* src) noexcept {
  ::new (dst) T(std::move(*static_cast<T*>(src)));
}
template <class T>
void chan_destroy(void* p) noexcept {
  static_cast<T*>(p)->~T();
}

template <class T>
inline constexpr chan_elem_ops chan_elem_ops_of{
    sizeof(T), alignof(T), std::is_trivially_copyable_v<T> ? nullptr : &chan_move_construct<T>,
    std::is_trivially_destructible_v<T> ? nullptr : &chan_destroy<T>};

// Uninitialized room for one T, which the runtime may construct a received value in.
template <class T>
struct elem_slot {
  alignas(T) unsigned char bytes[sizeof(T)];
  T* ptr() noexcept { return std::launder(reinterpret_cast<T*>(bytes)); }
  // Moves the constructed T out into an optional and destroys it here.
  std::optional<T> take() noexcept {
    std::optional<T> v(std::move(*ptr()));
    ptr()->~T();
    return v;
  }
};

// A new channel with one reference.  Throws std::bad_alloc, std::length_error.
WEFT_API chan_core* chan_make(const chan_elem_ops* ops, std::size_t capacity);
WEFT_API void chan_retain(chan_core* c) noexcept;
// Drops a reference; the last one destroys what is still buffered and frees the channel.
WEFT_API void chan_release(chan_core* c) noexcept;
// Moves *src into the channel or to a receiver, blocking until it can.  Throws closed_channel.
WEFT_API void chan_send(chan_core* c, void* src);
// Moves *src in if a receiver waits or the buffer has room; else returns false.  Throws
// closed_channel.
WEFT_API bool chan_try_send(chan_core* c, void* src);
// Constructs the next value at dst and returns true, or returns false once the channel is
// closed and drained.  Blocks while it is open and empty.
WEFT_API bool chan_recv(chan_core* c, void* dst);
// As chan_recv without blocking: false if nothing is ready now (or closed and drained).
WEFT_API bool chan_try_recv(chan_core* c, void* dst);
// Throws closed_channel if already closed.
WEFT_API void chan_close(chan_core* c);
WEFT_API bool chan_closed(chan_core* c) noexcept;
WEFT_API std::size_t chan_size(chan_core* c) noexcept;
WEFT_API std::size_t chan_capacity(const chan_core* c) noexcept;
// Throws weft::error for an operation on a nil channel.
[[noreturn]] WEFT_API void chan_nil(const char* op);

}  // namespace detail

// A channel of T values (DESIGN.md §6).  See the top of this file for the rules.
template <class T>
class chan {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_array_v<T>,
                "weft::chan<T>: T must be a non-const object type (not a reference or an array)");
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "weft::chan<T>: T must be nothrow move constructible and destructible, since values "
                "move under the channel's lock; wrap the type in std::unique_ptr if it is not");

 public:
  using value_type = T;

  // A new channel buffering up to `capacity` values (0: unbuffered).
  explicit chan(std::size_t capacity = 0) : c_(detail::chan_make(&detail::chan_elem_ops_of<T>, capacity)) {}
  // Any integer capacity (so that `chan<int> c(0)` does not also match the nil constructor).
  // Throws std::invalid_argument if negative (Go panics).
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  explicit chan(I capacity) : chan(checked_capacity(capacity)) {}
  // A nil channel: select never picks it; send, recv and close throw weft::error.
  chan(std::nullptr_t) noexcept {}
  chan(const chan& o) noexcept : c_(o.c_) {
    if (c_) detail::chan_retain(c_);
  }
  chan(chan&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  chan& operator=(const chan& o) noexcept {
    if (o.c_) detail::chan_retain(o.c_);
    if (c_) detail::chan_release(c_);
    c_ = o.c_;
    return *this;
  }
  chan& operator=(chan&& o) noexcept {
    if (this != &o) {
      if (c_) detail::chan_release(c_);
      c_ = std::exchange(o.c_, nullptr);
    }
    return *this;
  }
  ~chan() {
    if (c_) detail::chan_release(c_);
  }

  // Sends v: waits until a receiver takes it or the buffer has room.  Throws closed_channel.
  void send(T v) { detail::chan_send(core("send"), &v); }
  // The next value, waiting for one; std::nullopt once the channel is closed and drained.
  std::optional<T> recv() {
    detail::elem_slot<T> s;
    if (!detail::chan_recv(core("recv"), s.bytes)) return std::nullopt;
    return s.take();
  }
  // Sends without waiting: false if no receiver waits and the buffer is full (v is left as it
  // was).  Throws closed_channel.
  bool try_send(T&& v) { return detail::chan_try_send(core("try_send"), &v); }
  bool try_send(const T& v) {
    T copy(v);
    return detail::chan_try_send(core("try_send"), &copy);
  }
  // Receives without waiting: std::nullopt if nothing is ready (or closed and drained).
  std::optional<T> try_recv() {
    detail::elem_slot<T> s;
    if (!detail::chan_try_recv(core("try_recv"), s.bytes)) return std::nullopt;
    return s.take();
  }
  // Closes the channel.  Throws closed_channel if it was already closed.
  void close() { detail::chan_close(core("close")); }

  bool closed() const { return detail::chan_closed(core("closed")); }
  std::size_t size() const { return detail::chan_size(core("size")); }
  std::size_t capacity() const { return detail::chan_capacity(core("capacity")); }

  explicit operator bool() const noexcept { return c_ != nullptr; }  // false: nil
  friend bool operator==(const chan& a, const chan& b) noexcept { return a.c_ == b.c_; }
  friend bool operator==(const chan& a, std::nullptr_t) noexcept { return a.c_ == nullptr; }

  // range-for: receives until the channel is closed and drained.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    T& operator*() noexcept { return *cur_; }
    T* operator->() noexcept { return &*cur_; }
    iterator& operator++() {
      cur_ = ch_->recv();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return !it.cur_; }

   private:
    friend class chan;
    iterator(chan* ch, std::optional<T> v) : ch_(ch), cur_(std::move(v)) {}
    chan* ch_ = nullptr;
    std::optional<T> cur_;
  };
  iterator begin() { return iterator(this, recv()); }
  std::default_sentinel_t end() noexcept { return {}; }

  // For select (weft/select.hpp).
  detail::chan_core* native_handle() const noexcept { return c_; }

 private:
  template <class I>
  static std::size_t checked_capacity(I capacity) {
    if constexpr (std::is_signed_v<I>)
      if (capacity < 0) throw std::invalid_argument("weft::chan: negative capacity");
    return static_cast<std::size_t>(capacity);
  }
  detail::chan_core* core(const char* op) const {
    if (__builtin_expect(c_ == nullptr, 0)) detail::chan_nil(op);
    return c_;
  }
  detail::chan_core* c_ = nullptr;
};

}  // namespace weft
