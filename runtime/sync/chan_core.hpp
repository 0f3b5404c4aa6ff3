// SPDX-License-Identifier: Apache-2.0
// chan_core.hpp — the channel record (Go's hchan) and the moves shared by chan.cpp and
// select.cpp.  See chan.cpp for the design.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstring>

#include "runtime/sync/waitq.hpp"
#include "weft/chan.hpp"

namespace weft::detail {

struct chan_core {
  std::atomic<std::uint32_t> lock{0};   // guards everything below
  std::atomic<std::int64_t> refs{1};    // handles naming this channel
  const chan_elem_ops* ops = nullptr;
  std::size_t cap = 0;                  // buffer capacity in elements (0: unbuffered)
  std::size_t count = 0;                // elements buffered
  std::size_t recvx = 0;                // index of the oldest buffered element
  std::size_t sendx = 0;                // index the next buffered element goes to
  bool closed = false;
  wait_queue recvq;                     // blocked receivers (their nodes' elem: room)
  wait_queue sendq;                     // blocked senders (their nodes' elem: the value)
  unsigned char* buf = nullptr;         // cap * ops->size bytes, aligned for the element
  void* mem = nullptr;                  // the allocation holding this record and buf

  void* slot(std::size_t i) noexcept { return buf + i * ops->size; }
};

inline void elem_move(const chan_elem_ops* o, void* dst, void* src) noexcept {
  if (o->move_construct) o->move_construct(dst, src);
  // Inline for a word or half of one (the common int, long, pointer): no libc call.
  else if (o->size == sizeof(std::uint64_t)) std::memcpy(dst, src, sizeof(std::uint64_t));
  else if (o->size == sizeof(std::uint32_t)) std::memcpy(dst, src, sizeof(std::uint32_t));
  else std::memcpy(dst, src, o->size);
}

inline void elem_destroy(const chan_elem_ops* o, void* p) noexcept {
  if (o->destroy) o->destroy(p);
}

// Moves *src to dst and destroys *src (a buffer slot becoming empty).
inline void elem_relocate(const chan_elem_ops* o, void* dst, void* src) noexcept {
  elem_move(o, dst, src);
  elem_destroy(o, src);
}

// The ready-case moves, with c->lock held.  Each returns the node to wake after unlocking
// (or nullptr), having claimed it and filled in what its owner will read.

// A receive that can proceed now (a sender waits, or the buffer holds a value): moves the
// value into dst.  Returns false if it cannot proceed.
inline bool chan_recv_ready(chan_core* c, void* dst, wait_node** to_wake) noexcept {
  if (wait_node* s = wq_pop_claimed(c->sendq)) {
    if (c->cap == 0) {
      elem_move(c->ops, dst, s->elem);  // hand to hand
    } else {
      // The buffer is full (a sender waits): take its head, and put the sender's value at
      // the tail, which is the same slot (Go's recv).
      void* head = c->slot(c->recvx);
      elem_relocate(c->ops, dst, head);
      elem_move(c->ops, head, s->elem);
      if (++c->recvx == c->cap) c->recvx = 0;
      c->sendx = c->recvx;
    }
    s->ok = true;
    s->w->result = s->index;
    *to_wake = s;
    return true;
  }
  if (c->count > 0) {
    elem_relocate(c->ops, dst, c->slot(c->recvx));
    if (++c->recvx == c->cap) c->recvx = 0;
    --c->count;
    *to_wake = nullptr;
    return true;
  }
  return false;
}

// A send that can proceed now (a receiver waits, or the buffer has room), on an open
// channel: moves from *src.  Returns false if it cannot proceed.
inline bool chan_send_ready(chan_core* c, void* src, wait_node** to_wake) noexcept {
  if (wait_node* r = wq_pop_claimed(c->recvq)) {
    elem_move(c->ops, r->elem, src);
    r->ok = true;
    r->w->result = r->index;
    *to_wake = r;
    return true;
  }
  if (c->count < c->cap) {
    elem_move(c->ops, c->slot(c->sendx), src);
    if (++c->sendx == c->cap) c->sendx = 0;
    ++c->count;
    *to_wake = nullptr;
    return true;
  }
  return false;
}

}  // namespace weft::detail
