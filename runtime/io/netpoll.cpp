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
// (netpoll_close: EPOLL_CTL_DEL, sequence number + 1).  So no wait in weft::net makes an
// epoll_ctl call (the raw wait_readable makes one MOD, still_registered_locked, since its
// caller may have closed the descriptor behind weft's back):
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
// Who polls (Go's findRunnable and sysmon, runtime/proc.go).  No thread of its own: a P that
// runs out of work polls without blocking (epoll_wait, timeout 0) before it steals, and readies
// what it finds on its own run queue; an M about to sleep with no P becomes *the* blocker — one
// at a time — and sleeps in epoll_wait instead of on its futex, with the earliest timer as its
// timeout; it takes an idle P for what it finds and runs it itself, so a wake-up costs no
// hand-off between threads.  sysmon polls if nobody has for 10 ms (every P busy in long-running
// goroutines).  The blocker is broken out through an eventfd (netpoll_break) when the runtime
// stops; only the blocker drains it.  A plain thread that registers a waiter wakes an idle M
// (wakep), which becomes the blocker if nobody is.  Known gap: a blocker whose last waiter
// left (a timeout, a close) sleeps on until the next event or timer, and while it does the
// deadlock check (deadlock.cpp) sees a busy M and reports nothing.  Rejected: the dedicated poller thread of
// the first design (a futex wake-up and a thread hand-off per readiness event, ~0.5 futex calls
// per echo request against Go's 0.07).
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
#include "runtime/sched/poller.hpp"  // the same declarations, the scheduler's view

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
  futex_mutex lock;
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

void unlock_spin(void* l) noexcept { static_cast<futex_mutex*>(l)->unlock(); }

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
  }

  ~netpoller() {
    ::close(wakefd_);
    ::close(epfd_);
    for (auto& c : chunks_) delete[] c.load(std::memory_order_relaxed);
  }

  unsigned long waiters() const noexcept { return nwait_.load(std::memory_order_acquire); }
  std::atomic<bool> blocking{false};       // an M sleeps in epoll_wait (the blocker)
  std::atomic<m*> blocker{nullptr};        // which (stats count it as idle)
  std::atomic<std::int64_t> last_poll{0};  // monotonic ns of the last poll (sysmon's cue)

  // Breaks the blocker out of epoll_wait (Go's netpollBreak).
  void interrupt() noexcept {
    std::uint64_t one = 1;
    if (::write(wakefd_, &one, sizeof one) != sizeof one && errno != EAGAIN)
      fatal("netpoller: write to its eventfd failed: %s", std::strerror(errno));
  }

  // One epoll_wait (timeout_ms: 0 polls, -1 blocks).  Goroutines whose descriptor is ready are
  // claimed and stored in out[] (at most 2 per event: max_out / 2 events are taken); plain
  // threads are woken here.  Returns how many goroutines.
  int poll(int timeout_ms, g** out, int max_out) noexcept {
    epoll_event evs[128];
    const int max_ev = std::min(128, max_out / 2);
    int n = ::epoll_wait(epfd_, evs, max_ev, timeout_ms);
    last_poll.store(monotonic_ns(), std::memory_order_relaxed);
    if (n < 0) {
      if (errno == EINTR) return 0;
      fatal("netpoller: epoll_wait failed: %s", std::strerror(errno));
    }
    int got = 0;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t data = evs[i].data.u64;
      if (data == kWakeTag) {
        if (timeout_ms != 0) {  // only the blocker drains it (a poll must not eat its break)
          std::uint64_t v;
          if (::read(wakefd_, &v, sizeof v) < 0 && errno != EAGAIN) fatal("netpoller: read of its eventfd failed: %s", std::strerror(errno));
        }
        continue;
      }
      const int fd = static_cast<int>(data & 0xffffffffu);
      const auto seq = static_cast<std::uint32_t>(data >> 32);
      poll_desc* pd = find(fd);
      if (!pd) continue;
      const std::uint32_t ev = evs[i].events;
      std::lock_guard<futex_mutex> l(pd->lock);
      if (pd->seq != seq || !pd->registered) continue;  // for a descriptor closed since
      const bool err = ev & (EPOLLERR | EPOLLHUP);
      if (err || (ev & (EPOLLIN | EPOLLRDHUP))) fire(pd->rw, pd->rtoken, out, got);
      if (err || (ev & EPOLLOUT)) fire(pd->ww, pd->wtoken, out, got);
    }
    return got;
  }
  std::uint64_t registrations() const noexcept { return registrations_.load(std::memory_order_relaxed); }

  void open(int fd) {
    poll_desc& pd = desc(fd);
    std::lock_guard<futex_mutex> l(pd.lock);
    register_locked(fd, pd);
  }

  poll_result wait(int fd, bool write, std::int64_t deadline_ns, bool level) {
    poll_desc& pd = desc(fd);
    if (level) {
      {
        std::lock_guard<futex_mutex> l(pd.lock);
        if (pd.registered) pd.registered = still_registered_locked(fd, pd);
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
    // A goroutine's own M goes looking for work and polls; a plain thread has no M: wake an
    // idle one, which becomes the blocker (a busy runtime's Ps and sysmon poll anyway).
    if (!w.gp && !blocking.load(std::memory_order_acquire))
      if (sched* s = current_sched()) wakep(s);
    const bool woken = block(w, unlock_spin, &pd.lock, "fd wait", deadline_ns);
    {
      std::lock_guard<futex_mutex> l(pd.lock);
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
    std::lock_guard<futex_mutex> l(pd->lock);
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

  // The public wait_readable/wait_writable take raw descriptors, which their owner may have
  // closed with a raw ::close (epoll then forgot them) and the number been reused since: ask
  // epoll (one epoll_ctl, the price of the raw API; weft::net never pays it).  False if the
  // registration is gone; its readiness tokens are then stale too.
  bool still_registered_locked(int fd, poll_desc& pd) noexcept {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = static_cast<std::uint32_t>(fd) | (std::uint64_t{pd.seq} << 32);
    if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0) return true;
    return false;  // ENOENT (closed and reused) or EBADF (closed): register_locked says which
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

  void fire(waiter*& slot, bool& token, g** out, int& got) noexcept {
    if (slot && slot->try_claim()) {
      waiter* w = slot;
      slot = nullptr;
      nwait_.fetch_sub(1, std::memory_order_acq_rel);
      if (w->gp) out[got++] = w->gp;  // readied by the caller, who knows where to put it
      else w->wake();
    } else {
      token = true;  // nobody (or a waiter its timer already claimed): keep the edge
    }
  }

  int epfd_ = -1, wakefd_ = -1;
  std::atomic<unsigned long> nwait_{0};
  std::atomic<std::uint64_t> registrations_{0};
  std::mutex grow_;
  std::atomic<poll_desc*> chunks_[kChunks] = {};
};

// Made outside any lock (it makes an epoll instance); of two made at once, the first published wins and
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

namespace {
constexpr int kPollBatch = 256;
}

bool netpoll_poll_ready(sched* s) noexcept {
  netpoller* np = s->netpoll.load(std::memory_order_acquire);
  if (!np || np->waiters() == 0) return false;
  g* gs[kPollBatch];
  const int n = np->poll(0, gs, kPollBatch);
  for (int i = 0; i < n; ++i) ready(gs[i]);
  return n > 0;
}

bool netpoll_block(sched* s, m* mp) noexcept {
  netpoller* np = s->netpoll.load(std::memory_order_acquire);
  if (!np || np->waiters() == 0 || np->blocking.load(std::memory_order_relaxed)) return false;
  bool no = false;
  if (!np->blocking.compare_exchange_strong(no, true, std::memory_order_seq_cst)) return false;
  if (s->stopping.load(std::memory_order_seq_cst)) {  // (stop breaks a blocker only after setting it)
    np->blocking.store(false);
    return false;
  }
  int timeout_ms = -1;
  const std::int64_t next = s->timers.next_when();
  if (next != timer_heap::kNever) {
    const std::int64_t left = next - monotonic_ns();
    timeout_ms = left <= 0 ? 0 : static_cast<int>(std::min<std::int64_t>((left + 999'999) / 1'000'000, 1 << 30));
  }
  g* gs[kPollBatch];
  np->blocker.store(mp, std::memory_order_relaxed);
  const int n = np->poll(timeout_ms, gs, kPollBatch);
  np->blocker.store(nullptr, std::memory_order_relaxed);
  np->blocking.store(false, std::memory_order_seq_cst);
  s->coarse_now.store(monotonic_ns(), std::memory_order_relaxed);
  if (n == 0) return true;
  // Run them here: take an idle P for them (Go's findRunnable after its blocking netpoll).
  p* pp = nullptr;
  {
    std::lock_guard<futex_mutex> l(s->lock);
    for (int i = 0; i < n; ++i) {
      if (gs[i]->locked_m) continue;
      cas_status(gs[i], gstatus::waiting, gstatus::runnable);
      s->gq.push(gs[i]);
    }
    if (!mp->pp && !mp->nextp.load(std::memory_order_acquire)) pp = pidle_get_locked(s);
  }
  for (int i = 0; i < n; ++i)
    if (gs[i]->locked_m) ready(gs[i]);  // wired: to its own M
  if (pp) acquirep(mp, pp);
  if (n > 1 || !pp) wakep(s);  // more than this M runs, or no P for it here
  return true;
}

m* netpoll_blocker(sched* s) noexcept {
  netpoller* np = s->netpoll.load(std::memory_order_acquire);
  return np ? np->blocker.load(std::memory_order_relaxed) : nullptr;
}

void netpoll_break(sched* s) noexcept {
  if (netpoller* np = s->netpoll.load(std::memory_order_acquire)) np->interrupt();
}

void netpoll_sysmon(sched* s, std::int64_t now) noexcept {
  netpoller* np = s->netpoll.load(std::memory_order_acquire);
  if (!np || np->waiters() == 0 || np->blocking.load(std::memory_order_relaxed)) return;
  if (now - np->last_poll.load(std::memory_order_relaxed) < 10'000'000) return;
  netpoll_poll_ready(s);
}

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
