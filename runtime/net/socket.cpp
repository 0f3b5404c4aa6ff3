// SPDX-License-Identifier: Apache-2.0
// socket.cpp — what every weft::net socket shares: waiting, deadlines, closing.
//
// The design follows Go's internal/poll.FD (fd_unix.go, fd_poll_runtime.go): every operation
// first tries the system call on the non-blocking descriptor and parks in the netpoller only
// after EAGAIN, so a busy connection makes no poller call at all; the netpoller registers the
// descriptor once, edge-triggered (runtime/io/netpoll.cpp).
//
// Closing, from any goroutine or thread, while others use the socket (Go's fdMutex, reduced):
//   1. fd_ becomes -1: no new operation starts, and one that wakes up sees it and throws
//      closed_error;
//   2. netpoll_close wakes whoever is parked on the descriptor ("closed");
//   3. the closer waits until no operation is inside a system call on the descriptor
//      (refs_ == 0) — repeating step 2, since one may have parked just after it — and only then
//      close(2)s it.  So no operation can ever touch a number that was closed and then reused
//      by another socket.
// Deadlines are absolute CLOCK_MONOTONIC times (steady_clock is CLOCK_MONOTONIC on Linux);
// an operation computes its own from the socket's and its timeout argument once, so a retry
// after a spurious wake-up never extends it.
//
// Rejected: waking parked operations when a deadline is changed (Go does); here the new
// deadline applies from the next operation on, which is simpler and enough for the
// per-connection idle timeout servers use.
#include <cerrno>
#include <cstring>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/diag/fatal.hpp"
#include "runtime/io/netpoll.hpp"
#include "runtime/net/address.hpp"
#include "runtime/sched/sched.hpp"
#include "weft/net.hpp"
#include "weft/runtime.hpp"

namespace weft::net {

socket::socket(int fd, std::string name) : name_(std::move(name)) { fd_.store(fd, std::memory_order_release); }

socket::socket(socket&& o) noexcept : name_(std::move(o.name_)) {
  fd_.store(o.fd_.exchange(-1), std::memory_order_release);
  rdeadline_.store(o.rdeadline_.load());
  wdeadline_.store(o.wdeadline_.load());
}

socket& socket::operator=(socket&& o) noexcept {
  if (this != &o) {
    close();
    fd_.store(o.fd_.exchange(-1), std::memory_order_release);
    rdeadline_.store(o.rdeadline_.load());
    wdeadline_.store(o.wdeadline_.load());
    name_ = std::move(o.name_);
  }
  return *this;
}

socket::~socket() { close(); }

void socket::close() noexcept {
  const int fd = fd_.exchange(-1, std::memory_order_acq_rel);
  if (fd < 0) return;
  weft::detail::netpoll_close(fd);
  for (unsigned spins = 0; refs_.load(std::memory_order_acquire) != 0; ++spins) {
    // An operation between its system call and its wait: wake it again once it parks.
    if (weft::this_goroutine()) weft::yield();
    else std::this_thread::yield();
    if (spins % 16 == 15) weft::detail::netpoll_close(fd);
  }
  if (::close(fd) != 0 && errno != EINTR)  // EINTR: Linux has closed it anyway
    weft::detail::fatal("weft::net: close of fd %d (%s) failed: %s — was it closed behind weft's back?", fd,
                        name_.c_str(), std::strerror(errno));
}

socket::op_scope::op_scope(const socket& s, const char* call) : s_(s) {
  s.refs_.fetch_add(1, std::memory_order_acq_rel);
  fd = s.fd_.load(std::memory_order_acquire);
  if (fd < 0) {
    s.refs_.fetch_sub(1, std::memory_order_release);
    throw closed_error(std::make_error_code(std::errc::bad_file_descriptor),
                       std::string("weft::net: ") + call + " " + s.name_ + ": use of closed network connection");
  }
}

int socket::fd_or_throw(const char* call) const {
  int fd = fd_.load(std::memory_order_acquire);
  if (fd < 0)
    throw closed_error(std::make_error_code(std::errc::bad_file_descriptor),
                       std::string("weft::net: ") + call + " " + name_ + ": use of closed network connection");
  return fd;
}

void socket::fail(int err, const char* call) const {
  if (err == EBADF && fd_.load(std::memory_order_acquire) < 0) fd_or_throw(call);
  throw std::system_error(err, std::generic_category(), std::string("weft::net: ") + call + " " + name_);
}

std::int64_t socket::op_deadline(bool write, std::chrono::nanoseconds timeout) const noexcept {
  std::int64_t d = (write ? wdeadline_ : rdeadline_).load(std::memory_order_relaxed);
  if (timeout == no_timeout) return d;
  std::int64_t mine = timeout.count() <= 0 ? weft::detail::monotonic_ns() : weft::detail::deadline_after(timeout.count());
  if (mine == 0) return d;  // too far to matter
  return d == 0 || mine < d ? mine : d;
}

void socket::wait(int fd, bool write, std::int64_t deadline_ns, const char* call) const {
  using namespace weft::detail;
  auto timed_out = [&] {
    return timeout_error(std::make_error_code(std::errc::timed_out),
                         std::string("weft::net: ") + call + " " + name_ + ": i/o timeout (deadline exceeded)");
  };
  if (deadline_ns && monotonic_ns() >= deadline_ns) throw timed_out();
  sched* s = current_sched();
  poll_result r = s ? netpoll_wait(netpoll_get(s), fd, write, deadline_ns, false) : poll_plain(fd, write, deadline_ns);
  if (r == poll_result::closed || fd_.load(std::memory_order_acquire) < 0)
    throw closed_error(std::make_error_code(std::errc::bad_file_descriptor),
                       std::string("weft::net: ") + call + " " + name_ + ": use of closed network connection");
  if (r == poll_result::timeout) throw timed_out();
}

std::string socket::local_address() const {
  op_scope op(*this, "getsockname");
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(op.fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) fail(errno, "getsockname");
  return detail::format(reinterpret_cast<sockaddr*>(&ss), len);
}

std::uint16_t socket::local_port() const {
  op_scope op(*this, "getsockname");
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(op.fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) fail(errno, "getsockname");
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

}  // namespace weft::net
