// SPDX-License-Identifier: Apache-2.0
// chan.cpp — channels (Go's runtime/chan.go, for C++).
//
// A channel is one heap record (chan_core.hpp): a lock, a ring buffer of `cap` elements, and
// two wait queues — receivers blocked on an empty channel, senders blocked on a full one.
// chan<T> handles share it by reference count.  Elements are opaque bytes here; the handle's
// chan_elem_ops say how to move and destroy them (memcpy for trivially copyable T).
//
// Invariants (under the lock):
//   - recvq non-empty ⇒ the buffer is empty;  sendq non-empty ⇒ the buffer is full.
//   - closed ⇒ sendq and recvq are empty (close wakes everyone), and nothing is added again.
// The operations, as in Go:
//   send: closed → throw.  A receiver waits → move the value straight into its room, wake it.
//         Room in the buffer → append.  Else queue a node pointing at the sender's value and
//         block; the receiver that takes it moves the value out and wakes the sender.
//   recv: a sender waits → unbuffered: move its value straight over; buffered (so full):
//         take the head and move the sender's value into the freed tail slot (FIFO holds).
//         Else a buffered value → take it.  Else closed → "closed and drained".  Else queue a
//         node pointing at the receiver's room and block.
//   close: mark closed, unlink every waiter, then wake them: receivers see "closed",
//         senders throw.
// Values pass through the blocked party's own memory (its room or its value, on its pinned
// stack; waitq.hpp) or the channel's buffer; a waker finishes every move before it wakes.
//
// Wake after unlock: a waker claims and unlinks the node under the lock, and wakes it only
// after releasing the lock (waitq.hpp), so the woken goroutine — typically put in its P's
// runnext and run by the very next switch — never finds the lock still held.
//
// Rejected: a lock-free fast path for buffered channels (Go has one only for the "empty and
// open" / "full and open" checks).  One uncontended lock is cheap (BENCHMARKS.md, "Architecture (issue 17)") and keeps
// select's lock-all-in-address-order protocol (select.cpp) simple and obviously correct.
#include <cstdlib>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "runtime/sync/chan_core.hpp"
#include "weft/errors.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {

chan_core* chan_make(const chan_elem_ops* ops, std::size_t capacity) {
  std::size_t align = ops->align < alignof(std::max_align_t) ? alignof(std::max_align_t) : ops->align;
  if (capacity > (std::numeric_limits<std::size_t>::max() / 2 - sizeof(chan_core) - align) / ops->size)
    throw std::length_error("weft::chan: capacity too large for the element size");
  std::size_t bytes = sizeof(chan_core) + align + capacity * ops->size;
  void* mem = heap_alloc(bytes);
  auto* c = new (mem) chan_core();
  c->mem = mem;
  c->ops = ops;
  c->cap = capacity;
  auto after = reinterpret_cast<std::uintptr_t>(c + 1);
  c->buf = reinterpret_cast<unsigned char*>((after + align - 1) & ~(std::uintptr_t(align) - 1));
  return c;
}

void chan_retain(chan_core* c) noexcept { c->refs.fetch_add(1, std::memory_order_relaxed); }

void chan_release(chan_core* c) noexcept {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // Nobody can be blocked on it: a blocked party holds a handle.
  for (std::size_t i = 0, x = c->recvx; i < c->count; ++i) {
    elem_destroy(c->ops, c->slot(x));
    if (++x == c->cap) x = 0;
  }
  void* mem = c->mem;
  c->~chan_core();
  heap_free(mem);
}

void chan_nil(const char* op) {
  throw error(std::string("weft::chan::") + op +
              ": the channel is nil (made from nullptr or moved from); in Go this would block forever");
}

namespace {

// Takes c's lock for an operation a closed channel refuses (send, close): if it is closed,
// releases the lock again and throws closed_channel.
void lock_open(chan_core* c) {
  word_lock(c->lock);
  if (c->closed) {
    word_unlock(c->lock);
    throw closed_channel();
  }
}

}  // namespace

void chan_send(chan_core* c, void* src) {
  lock_open(c);
  wait_node* to_wake;
  if (chan_send_ready(c, src, &to_wake)) {
    word_unlock(c->lock);
    if (to_wake) wake_node(to_wake);
    return;
  }
  waiter w;
  wait_node n;
  n.w = &w;
  n.elem = src;
  wq_push_back(c->sendq, &n);
  block(w, word_unlock_cb, &c->lock, "chan send");
  // A receiver took the value (ok), or close woke us.
  if (!n.ok) throw closed_channel();
}

bool chan_try_send(chan_core* c, void* src) {
  lock_open(c);
  wait_node* to_wake;
  bool sent = chan_send_ready(c, src, &to_wake);
  word_unlock(c->lock);
  if (sent && to_wake) wake_node(to_wake);
  return sent;
}

bool chan_recv(chan_core* c, void* dst) {
  word_lock(c->lock);
  wait_node* to_wake;
  if (chan_recv_ready(c, dst, &to_wake)) {
    word_unlock(c->lock);
    if (to_wake) wake_node(to_wake);
    return true;
  }
  if (c->closed) {
    word_unlock(c->lock);
    return false;
  }
  waiter w;
  wait_node n;
  n.w = &w;
  n.elem = dst;
  wq_push_back(c->recvq, &n);
  block(w, word_unlock_cb, &c->lock, "chan receive");
  return n.ok;
}

bool chan_try_recv(chan_core* c, void* dst) {
  word_lock(c->lock);
  wait_node* to_wake;
  bool got = chan_recv_ready(c, dst, &to_wake);
  word_unlock(c->lock);
  if (got && to_wake) wake_node(to_wake);
  return got;
}

void chan_close(chan_core* c) {
  lock_open(c);
  c->closed = true;
  // Unlink everyone first (chained through `next`, free once unlinked), wake after unlock.
  wait_node* wake_list = nullptr;
  for (wait_queue* q : {&c->recvq, &c->sendq}) {
    while (wait_node* n = wq_pop_claimed(*q)) {
      n->ok = false;
      n->w->result = n->index;
      n->next = wake_list;
      wake_list = n;
    }
  }
  word_unlock(c->lock);
  wake_chain(wake_list);
}

bool chan_closed(chan_core* c) noexcept {
  word_guard g(c->lock);
  return c->closed;
}

std::size_t chan_size(chan_core* c) noexcept {
  word_guard g(c->lock);
  return c->count;
}

std::size_t chan_capacity(const chan_core* c) noexcept { return c->cap; }

}  // namespace weft::detail
