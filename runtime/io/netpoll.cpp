// SPDX-License-Identifier: Apache-2.0
// netpoll.cpp — goroutines waiting on file descriptors (Go's runtime/netpoll.go and
// runtime/netpoll_epoll.go).
//
// The record.  Every descriptor number has one poll_desc (Go's pollDesc), in a table indexed
// by the number and never freed while the poller lives, so an event can always find it.  It
// holds a reader slot and a writer slot (the waiter parked there, if any), a readiness token
// per direction (Go's pdReady: an edge that arrived with nobody waiting), whether the number
// is registered with epoll, and a sequence number (Go's fdseq).
//
// Registration.  A descriptor is added to epoll once — at its first wait, or when weft::net
// makes the socket — edge-triggered for EPOLLIN|EPOLLOUT|EPOLLRDHUP, with its number and
// sequence number in the event's data; it stays registered until closed through weft
// (netpoll_close: EPOLL_CTL_DEL, sequence number + 1).  So no wait makes an epoll_ctl call:
// the old design re-armed with EPOLLONESHOT and deleted after every wait (two calls per wait,
// ~9% of an echo server's time).  An event whose sequence number is not the record's is for a
// descriptor closed since — the number may already name a new socket — and is dropped.
//
// The protocol (all under the record's lock).  A waiter consumes its direction's token if set
// and returns; else it parks in the slot.  An event wakes the slot's waiter if it can claim it
// (waiter::try_claim: a timer may have claimed it first), else sets the token, so an edge is
// never lost.  netpoll_close claims and wakes every waiter with "closed", clears the tokens and
// deregisters, so a descriptor that reuses the number starts clean.  Edge-triggered means a
// waiter must first have seen EAGAIN (as weft::net does); the public wait_readable keeps its
// level-triggered contract by asking poll(2) once before parking (`level`).
//
// Who polls.  One thread per runtime, blocked in epoll_wait, wakes the readied goroutines
// (ready(): they go to the global queue and an M is woken).  Go instead polls from the
// scheduler — every P without work polls without blocking, one idle M blocks in epoll_wait —
// which saves the thread's futex hand-off per wake-up; that integration (find_runnable,
// stopm, sysmon) is issue 18's remaining step, left while the scheduler loop is being reworked
// for issue 21.
//
// Plain threads: with a runtime they wait in the same poller (their thread sleeps on the
// waiter's note); with none they block in poll(2), and netpoll_close wakes them with
// shutdown(2) — close(2) does not wake a poll(2) on Linux.
//
// Rejected: a hash map keyed by descriptor (a lookup per event under one lock — the old
// design's); a pointer to the record in the event's data (Go does that with pollDesc memory
// it never frees; a table indexed by number is as cheap here and needs no tagging); a raw
// close(2) interposer (a library must not replace libc's close).
#include "runtime/io/netpoll.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/diag/fatal.hpp"
#include "runtime/sched/sched.hpp"
#include "weft/errors.hpp"
#include "weft/io.hpp"

namespace weft::detail {

namespace {

constexpr std::uintptr_t kClosedResult = 1;  // waiter::result of one woken by netpoll_close
constexpr std::uint64_t kWakeTag = ~std::uint64_t{0};

struct poll_desc {
  spinlock lock;
  std::uint32_t seq = 0;      // bumped at every close through weft
  bool registered = false;
  bool rtoken = false, wtoken = false;
  waiter* rw = nullptr;
  waiter* ww = nullptr;
};

constexpr int kChunkBits = 10;
constexpr int kChunkSize = 1 << kChunkBits;
constexpr int kChunks = 1024;  // descriptors below 2^20 (Linux's default fs.nr_open)
constexpr int kMaxFd = kChunkSize * kChunks;

void unlock_spin(void* l) noexcept { static_cast<spinlock*>(l)->unlock(); }

}  // namespace

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
    ev.data.u64 = kWakeTag;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) != 0) {
      int e = errno;
      ::close(wakefd_);
      ::close(epfd_);
      throw resource_error(e, std::generic_category(), "weft: epoll_ctl(ADD) of the netpoller's eventfd failed");
    }
    try {
      thread_ = std::thread([this] { loop(); });
    } catch (const std::system_error& e) {
      ::close(wakefd_);
      ::close(epfd_);
      throw resource_error(e.code(), "weft: cannot start the netpoller's thread");
    }
  }

  ~netpoller() {
    stopping_.store(true);
    std::uint64_t one = 1;
    if (::write(wakefd_, &one, sizeof one) != sizeof one) fatal("netpoller: write to its eventfd failed: %s", std::strerror(errno));
    thread_.join();
    ::close(wakefd_);
    ::close(epfd_);
    for (auto& c : chunks_) delete[] c.load(std::memory_order_relaxed);
  }

  unsigned long waiters() const noexcept { return nwait_.load(std::memory_order_acquire); }
  std::uint64_t registrations() const noexcept { return registrations_.load(std::memory_order_relaxed); }

  void open(int fd) {
    poll_desc& pd = desc(fd);
    std::lock_guard<spinlock> l(pd.lock);
    register_locked(fd, pd);
  }

  poll_result wait(int fd, bool write, std::int64_t deadline_ns, bool level) {
    poll_desc& pd = desc(fd);
    if (level) {
      {
        std::lock_guard<spinlock> l(pd.lock);
        register_locked(fd, pd);
        (write ? pd.wtoken : pd.rtoken) = false;  // poll(2) below tells the truth instead
      }
      pollfd p{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
      int r = ::poll(&p, 1, 0);
      if (r > 0) return poll_result::ready;
      if (r < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "weft: poll on fd " + std::to_string(fd) + " failed");
    }
    waiter w;
    pd.lock.lock();  // released by block() once the caller is committed to sleep
    try {
      register_locked(fd, pd);
    } catch (...) {
      pd.lock.unlock();
      throw;
    }
    bool& token = write ? pd.wtoken : pd.rtoken;
    if (token) {
      token = false;
      pd.lock.unlock();
      return poll_result::ready;
    }
    waiter*& slot = write ? pd.ww : pd.rw;
    if (slot) {
      pd.lock.unlock();
      throw error("weft: wait_readable/wait_writable: another goroutine already waits for fd " + std::to_string(fd) +
                  " in the same direction");
    }
    slot = &w;
    nwait_.fetch_add(1, std::memory_order_acq_rel);
    const bool woken = block(w, unlock_spin, &pd.lock, "fd wait", deadline_ns);
    {
      std::lock_guard<spinlock> l(pd.lock);
      if (slot == &w) {  // the timer woke it: nobody else took it out
        slot = nullptr;
        nwait_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
    if (w.result == kClosedResult) return poll_result::closed;
    return woken ? poll_result::ready : poll_result::timeout;
  }

  void close(int fd) noexcept {
    if (fd < 0 || fd >= kMaxFd) return;
    poll_desc* pd = find(fd);
    if (!pd) return;
    std::lock_guard<spinlock> l(pd->lock);
    ++pd->seq;
    pd->rtoken = pd->wtoken = false;
    if (pd->registered) {
      // ENOENT/EBADF: closed (raw) already, which removed it.
      if (::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr) != 0 && errno != ENOENT && errno != EBADF)
        fatal("netpoller: epoll_ctl(DEL) of fd %d failed: %s", fd, std::strerror(errno));
      pd->registered = false;
    }
    for (waiter** slot : {&pd->rw, &pd->ww}) {
      waiter* w = *slot;
      if (!w) continue;
      *slot = nullptr;
      nwait_.fetch_sub(1, std::memory_order_acq_rel);
      if (w->try_claim()) {
        w->result = kClosedResult;
        w->wake();
      }
    }
  }

 private:
  poll_desc* find(int fd) const noexcept {
    poll_desc* c = chunks_[fd >> kChunkBits].load(std::memory_order_acquire);
    return c ? &c[fd & (kChunkSize - 1)] : nullptr;
  }

  poll_desc& desc(int fd) {
    if (fd < 0) throw std::invalid_argument("weft: fd " + std::to_string(fd) + " is not a descriptor");
    if (fd >= kMaxFd)
      throw std::system_error(EMFILE, std::generic_category(),
                              "weft: fd " + std::to_string(fd) + " is beyond the netpoller's table (descriptors below " +
                                  std::to_string(kMaxFd) + ")");
    if (poll_desc* pd = find(fd)) return *pd;
    std::lock_guard<std::mutex> l(grow_);
    auto& slot = chunks_[fd >> kChunkBits];
    poll_desc* c = slot.load(std::memory_order_acquire);
    if (!c) {
      c = new poll_desc[kChunkSize];
      slot.store(c, std::memory_order_release);
    }
    return c[fd & (kChunkSize - 1)];
  }

  // Adds fd to epoll if it is not yet (pd.lock held).  Go's netpollopen: both directions,
  // edge-triggered, once.
  void register_locked(int fd, poll_desc& pd) {
    if (pd.registered) return;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = static_cast<std::uint32_t>(fd) | (std::uint64_t{pd.seq} << 32);
    int r = ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    // EEXIST: closed raw (not through weft) while registered under a dup, or reused: take it
    // over with this record's sequence number.
    if (r != 0 && errno == EEXIST) r = ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
    if (r != 0) {
      int err = errno;
      throw std::system_error(err, std::generic_category(),
                              "weft: cannot wait for fd " + std::to_string(fd) +
                                  " (epoll_ctl ADD; regular files and closed descriptors cannot be polled)");
    }
    registrations_.fetch_add(1, std::memory_order_relaxed);
    pd.registered = true;
    pd.rtoken = pd.wtoken = false;
  }

  void fire(waiter*& slot, bool& token) noexcept {
    if (slot && slot->try_claim()) {
      waiter* w = slot;
      slot = nullptr;
      nwait_.fetch_sub(1, std::memory_order_acq_rel);
      w->wake();
    } else {
      token = true;  // nobody (or a waiter its timer already claimed): keep the edge
    }
  }

  void loop() noexcept {
    epoll_event evs[128];
    while (!stopping_.load(std::memory_order_acquire)) {
      int n = ::epoll_wait(epfd_, evs, 128, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        fatal("netpoller: epoll_wait failed: %s", std::strerror(errno));
      }
      for (int i = 0; i < n; ++i) {
        const std::uint64_t data = evs[i].data.u64;
        if (data == kWakeTag) continue;
        const int fd = static_cast<int>(data & 0xffffffffu);
        const auto seq = static_cast<std::uint32_t>(data >> 32);
        poll_desc* pd = find(fd);
        if (!pd) continue;
        const std::uint32_t got = evs[i].events;
        std::lock_guard<spinlock> l(pd->lock);
        if (pd->seq != seq || !pd->registered) continue;  // for a descriptor closed since
        const bool err = got & (EPOLLERR | EPOLLHUP);
        if (err || (got & (EPOLLIN | EPOLLRDHUP))) fire(pd->rw, pd->rtoken);
        if (err || (got & EPOLLOUT)) fire(pd->ww, pd->wtoken);
      }
    }
  }

  int epfd_ = -1, wakefd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<unsigned long> nwait_{0};
  std::atomic<std::uint64_t> registrations_{0};
  std::mutex grow_;
  std::atomic<poll_desc*> chunks_[kChunks] = {};
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

bool netpoll_has_waiters(sched* s) noexcept { return netpoll_waiters(s) != 0; }

unsigned long netpoll_waiters(sched* s) noexcept {
  netpoller* np = s->netpoll.load(std::memory_order_acquire);
  return np ? np->waiters() : 0;
}

std::uint64_t netpoll_registrations(sched* s) noexcept {
  netpoller* np = s ? s->netpoll.load(std::memory_order_acquire) : nullptr;
  return np ? np->registrations() : 0;
}

void netpoll_open(netpoller* np, int fd) { np->open(fd); }

poll_result netpoll_wait(netpoller* np, int fd, bool write, std::int64_t deadline_ns, bool level) {
  return np->wait(fd, write, deadline_ns, level);
}

// ---- plain threads without a runtime ---------------------------------------------------
namespace {
struct plain_poll {
  int waiting = 0;           // threads in poll(2) on the descriptor
  std::uint64_t closes = 0;  // closes through weft since the entry was made
};
std::mutex plain_lock;
std::map<int, plain_poll> plain_polls;  // only descriptors a thread polls now
}  // namespace

void netpoll_close(int fd) noexcept {
  if (sched* s = current_sched())
    if (netpoller* np = s->netpoll.load(std::memory_order_acquire)) np->close(fd);
  std::lock_guard<std::mutex> l(plain_lock);
  auto it = plain_polls.find(fd);
  if (it == plain_polls.end()) return;
  ++it->second.closes;
  (void)::shutdown(fd, SHUT_RDWR);  // wakes its poll(2); ENOTSOCK: nothing else can
}

poll_result poll_plain(int fd, bool write, std::int64_t deadline_ns) {
  std::uint64_t closes;
  {
    std::lock_guard<std::mutex> l(plain_lock);
    plain_poll& pp = plain_polls[fd];
    ++pp.waiting;
    closes = pp.closes;
  }
  auto leave = [&]() -> bool {  // true if closed through weft meanwhile
    std::lock_guard<std::mutex> l(plain_lock);
    auto it = plain_polls.find(fd);
    bool closed = it->second.closes != closes;
    if (--it->second.waiting == 0) plain_polls.erase(it);
    return closed;
  };
  for (;;) {
    int ms = -1;
    if (deadline_ns) {
      std::int64_t left = deadline_ns - monotonic_ns();
      if (left <= 0) return leave() ? poll_result::closed : poll_result::timeout;
      ms = static_cast<int>(std::min<std::int64_t>((left + 999'999) / 1'000'000, 1 << 30));
    }
    pollfd p{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    int r = ::poll(&p, 1, ms);
    if (r > 0) return leave() ? poll_result::closed : poll_result::ready;
    if (r < 0 && errno != EINTR) {
      int e = errno;
      leave();
      throw std::system_error(e, std::generic_category(), "weft: poll on fd " + std::to_string(fd) + " failed");
    }
  }
}

}  // namespace weft::detail

namespace weft {

namespace {
bool wait_fd(int fd, bool write, std::chrono::nanoseconds timeout, const char* what) {
  if (fd < 0) throw std::invalid_argument("weft::wait_readable/wait_writable: fd " + std::to_string(fd) + " is not a descriptor");
  using namespace detail;
  if (timeout.count() <= 0) {  // poll once, as select's on_timeout(d <= 0) does
    pollfd p{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    for (;;) {
      int r = ::poll(&p, 1, 0);
      if (r >= 0) return r > 0;
      if (errno != EINTR) throw std::system_error(errno, std::generic_category(), std::string("weft::") + what + ": poll on fd " + std::to_string(fd) + " failed");
    }
  }
  std::int64_t deadline = timeout == no_timeout ? 0 : deadline_after(timeout.count());
  sched* s = current_sched();
  poll_result r = s ? netpoll_wait(netpoll_get(s), fd, write, deadline, true) : poll_plain(fd, write, deadline);
  if (r == poll_result::closed)
    throw std::system_error(EBADF, std::generic_category(),
                            std::string("weft::") + what + ": fd " + std::to_string(fd) + " was closed (weft::close_fd) while waiting");
  return r == poll_result::ready;
}
}  // namespace

bool wait_readable(int fd, std::chrono::nanoseconds timeout) { return wait_fd(fd, false, timeout, "wait_readable"); }
bool wait_writable(int fd, std::chrono::nanoseconds timeout) { return wait_fd(fd, true, timeout, "wait_writable"); }

void close_fd(int fd) {
  if (fd < 0) throw std::invalid_argument("weft::close_fd: fd " + std::to_string(fd) + " is not a descriptor");
  detail::netpoll_close(fd);
  if (::close(fd) != 0 && errno != EINTR)  // EINTR: Linux has closed it anyway
    throw std::system_error(errno, std::generic_category(), "weft::close_fd: close of fd " + std::to_string(fd) + " failed");
}

}  // namespace weft
