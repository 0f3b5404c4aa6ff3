// SPDX-License-Identifier: Apache-2.0
// netpoll.cpp — goroutines waiting on file descriptors.
//
// One epoll instance per runtime, and one poller thread blocked in epoll_wait on it.  A
// goroutine that waits on a descriptor records itself in that descriptor's entry (one reader
// and one writer slot), arms the descriptor with EPOLLONESHOT for the union of the interests
// present, and parks.  The poller looks the descriptor up *by number* under the table lock —
// never through a pointer into a goroutine's stack carried by the kernel, since a stale event
// may arrive after the waiter gave up — and wakes the recorded waiters whose interest fired.
// A timeout and an event race through waiter::try_claim: exactly one wakes the goroutine, and
// the waiter leaves the table before returning either way.
//
// Rejected for now: polling from the schedulers' idle path as Go does (no extra thread, one
// fewer hand-off per wake-up).  The dedicated thread keeps the scheduler loop simple; the
// price is a futex wake per readiness event.
#include "runtime/io/netpoll.hpp"
#include "runtime/sched/poller.hpp"  // the same declarations, the scheduler's view

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/diag/fatal.hpp"
#include "runtime/sched/sched.hpp"
#include "weft/errors.hpp"
#include "weft/io.hpp"

namespace weft::detail {

class netpoller {
 public:
  netpoller() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw resource_error(errno, std::generic_category(), "weft: epoll_create1 for the netpoller failed");
    wakefd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakefd_ < 0) {
      int e = errno;
      ::close(epfd_);
      throw resource_error(e, std::generic_category(), "weft: eventfd for the netpoller failed");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wakefd_;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) != 0) {
      int e = errno;
      ::close(wakefd_);
      ::close(epfd_);
      throw resource_error(e, std::generic_category(), "weft: epoll_ctl(ADD) of the netpoller's eventfd failed");
    }
    thread_ = std::thread([this] { loop(); });
  }

  ~netpoller() {
    stopping_.store(true);
    std::uint64_t one = 1;
    if (::write(wakefd_, &one, sizeof one) != sizeof one) fatal("netpoller: write to its eventfd failed: %s", std::strerror(errno));
    thread_.join();
    ::close(wakefd_);
    ::close(epfd_);
  }

  bool has_waiters() noexcept { return waiters() != 0; }
  unsigned long waiters() noexcept {
    std::lock_guard<spinlock> l(lock_);
    return table_.size();
  }

  bool wait(int fd, std::uint32_t events, std::int64_t deadline_ns) {
    waiter w;
    lock_.lock();  // released by block() once the goroutine is committed to sleep
    entry* ep;
    try {
      ep = &table_[fd];
    } catch (...) {  // std::bad_alloc: the lock must not stay held
      lock_.unlock();
      throw;
    }
    entry& e = *ep;
    waiter*& slot = (events & EPOLLIN) ? e.reader : e.writer;
    if (slot) {
      lock_.unlock();
      throw error("weft: wait_readable/wait_writable: another goroutine already waits for fd " + std::to_string(fd) +
                  " in the same direction");
    }
    slot = &w;
    try {
      arm_locked(fd, e);
    } catch (...) {
      slot = nullptr;
      if (!e.reader && !e.writer) table_.erase(fd);
      lock_.unlock();
      throw;
    }
    bool ready = block(w, [](void* l) noexcept { static_cast<spinlock*>(l)->unlock(); }, &lock_, "fd wait", deadline_ns);
    {
      std::lock_guard<spinlock> l(lock_);
      auto it = table_.find(fd);
      if (it != table_.end()) {
        if (it->second.reader == &w) it->second.reader = nullptr;
        if (it->second.writer == &w) it->second.writer = nullptr;
        if (!it->second.reader && !it->second.writer) {
          // Disarm; ENOENT/EBADF: the descriptor was closed meanwhile, which is the caller's affair.
          if (::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr) != 0 && errno != ENOENT && errno != EBADF)
            fatal("netpoller: epoll_ctl(DEL) of fd %d failed: %s", fd, std::strerror(errno));
          table_.erase(it);
        }
      }
    }
    return ready;
  }

 private:
  struct entry {
    waiter* reader = nullptr;
    waiter* writer = nullptr;
    bool added = false;
  };

  void arm_locked(int fd, entry& e) {
    epoll_event ev{};
    ev.events = EPOLLONESHOT | (e.reader ? EPOLLIN | EPOLLRDHUP : 0u) | (e.writer ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    int r = ::epoll_ctl(epfd_, e.added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    if (r != 0 && errno == EEXIST) r = ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
    if (r != 0 && errno == ENOENT) r = ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    if (r != 0) {
      int err = errno;
      throw std::system_error(err, std::generic_category(),
                              "weft: cannot wait for fd " + std::to_string(fd) + " (epoll_ctl; regular files and closed descriptors cannot be polled)");
    }
    e.added = true;
  }

  void loop() noexcept {
    epoll_event evs[128];
    while (!stopping_.load()) {
      int n = ::epoll_wait(epfd_, evs, 128, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        fatal("netpoller: epoll_wait failed: %s", std::strerror(errno));
      }
      std::lock_guard<spinlock> l(lock_);
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        if (fd == wakefd_) continue;
        auto it = table_.find(fd);
        if (it == table_.end()) continue;
        entry& e = it->second;
        std::uint32_t got = evs[i].events;
        bool err = got & (EPOLLERR | EPOLLHUP);
        if (e.reader && (err || (got & (EPOLLIN | EPOLLRDHUP)))) {
          if (e.reader->try_claim()) e.reader->wake();
          e.reader = nullptr;
        }
        if (e.writer && (err || (got & EPOLLOUT))) {
          if (e.writer->try_claim()) e.writer->wake();
          e.writer = nullptr;
        }
        if (e.reader || e.writer) arm_locked_noexcept(fd, e);  // one-shot fired: re-arm for the rest
      }
    }
  }

  void arm_locked_noexcept(int fd, entry& e) noexcept {
    try {
      arm_locked(fd, e);
    } catch (...) {
      // The descriptor went away: wake whoever still waits, they will see the error themselves.
      for (waiter** w : {&e.reader, &e.writer})
        if (*w && (*w)->try_claim()) (*w)->wake();
    }
  }

  int epfd_ = -1, wakefd_ = -1;
  std::atomic<bool> stopping_{false};
  spinlock lock_;
  std::unordered_map<int, entry> table_;
  std::thread thread_;
};

// Made outside any lock (it starts a thread); of two made at once, the first published wins and
// the other is dropped.
netpoller* netpoll_get(sched* s) {
  if (netpoller* np = s->netpoll.load(std::memory_order_acquire)) return np;
  auto* made = new netpoller();
  netpoller* seen = nullptr;
  if (s->netpoll.compare_exchange_strong(seen, made, std::memory_order_acq_rel, std::memory_order_acquire)) return made;
  delete made;
  return seen;
}

void netpoll_destroy(sched* s) noexcept { delete s->netpoll.exchange(nullptr, std::memory_order_acq_rel); }

bool netpoll_has_waiters(sched* s) noexcept {
  netpoller* np = s->netpoll.load(std::memory_order_acquire);
  return np && np->has_waiters();
}

unsigned long netpoll_waiters(sched* s) noexcept {
  netpoller* np = s->netpoll.load(std::memory_order_acquire);
  return np ? np->waiters() : 0;
}

bool netpoll_wait(netpoller* np, int fd, std::uint32_t events, std::int64_t deadline_ns) {
  return np->wait(fd, events, deadline_ns);
}

}  // namespace weft::detail

namespace weft {

namespace {
bool wait_fd(int fd, short poll_events, std::uint32_t epoll_events, std::chrono::nanoseconds timeout) {
  if (fd < 0) throw std::invalid_argument("weft::wait_readable/wait_writable: fd " + std::to_string(fd) + " is not a descriptor");
  using namespace detail;
  std::int64_t deadline = timeout.count() > 0 ? deadline_after(timeout.count()) : 0;
  sched* s = current_sched();
  if (current_g() && s) return netpoll_wait(netpoll_get(s), fd, epoll_events, deadline);
  // A plain thread: poll(2) blocks just this thread.
  for (;;) {
    int ms = -1;
    if (deadline) {
      std::int64_t left = deadline - monotonic_ns();
      if (left <= 0) return false;
      ms = static_cast<int>((left + 999'999) / 1'000'000);
    }
    pollfd p{fd, poll_events, 0};
    int r = ::poll(&p, 1, ms);
    if (r > 0) return true;
    if (r == 0) {
      if (deadline && monotonic_ns() >= deadline) return false;
      continue;
    }
    if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "weft: poll on fd " + std::to_string(fd) + " failed");
  }
}
}  // namespace

bool wait_readable(int fd, std::chrono::nanoseconds timeout) { return wait_fd(fd, POLLIN, EPOLLIN, timeout); }
bool wait_writable(int fd, std::chrono::nanoseconds timeout) { return wait_fd(fd, POLLOUT, EPOLLOUT, timeout); }

}  // namespace weft
