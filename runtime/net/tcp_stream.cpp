// SPDX-License-Identifier: Apache-2.0
// tcp_stream.cpp — a connected stream socket (Go's net.TCPConn / net.UnixConn).
//
// Reads and writes try the system call first and wait only after EAGAIN (socket.cpp).
// Writes use send(MSG_NOSIGNAL), so a vanished peer is an EPIPE error, never SIGPIPE.
// connect is Go's (net/fd_unix.go connect): a non-blocking connect, EINPROGRESS, a wait for
// writability with the deadline, then SO_ERROR says how it went.
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/net/address.hpp"
#include "runtime/sched/futex.hpp"
#include "weft/net.hpp"

namespace weft::net {

namespace {
void set_nonblocking(int fd, const char* what) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
    throw std::system_error(errno, std::generic_category(), std::string("weft::net: ") + what + ": fcntl(O_NONBLOCK) of fd " + std::to_string(fd));
}

std::string peer_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "fd " + std::to_string(fd);
  return detail::format(reinterpret_cast<sockaddr*>(&ss), len);
}
}  // namespace

tcp_stream::tcp_stream(int fd, std::string name) : socket(fd, name.empty() ? peer_of(fd) : std::move(name)) {
  if (fd < 0) throw std::invalid_argument("weft::net::tcp_stream: fd " + std::to_string(fd) + " is not a descriptor");
  set_nonblocking(fd, "tcp_stream");
  detail::poll_register(fd);
}

tcp_stream tcp_stream::connect(std::string_view address, std::chrono::nanoseconds timeout) {
  const detail::endpoint ep = detail::resolve(address, false, SOCK_STREAM, "connect");
  const std::int64_t deadline = timeout == no_timeout ? 0
                                : timeout.count() <= 0 ? weft::detail::monotonic_ns()
                                                       : weft::detail::deadline_after(timeout.count());
  int fd = detail::make_socket(ep.family(), SOCK_STREAM, "connect", address);
  tcp_stream c;
  c.fd_.store(fd);
  c.name_ = std::string(address);
  if (ep.family() != AF_UNIX) c.set_nodelay(true);
  if (::connect(fd, ep.sa(), ep.len) == 0) return c;
  if (errno != EINPROGRESS && errno != EINTR) c.fail(errno, "connect");
  c.wait(fd, true, deadline, "connect");
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) c.fail(errno, "connect (getsockopt SO_ERROR)");
  if (err != 0) c.fail(err, "connect");
  return c;
}

std::size_t tcp_stream::read_some(void* buf, std::size_t n, std::chrono::nanoseconds timeout) {
  op_scope op(*this, "read");
  std::int64_t deadline = -1;  // computed at the first wait only: the fast path reads no clock
  for (;;) {
    ssize_t r = ::recv(op.fd, buf, n, 0);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) fail(errno, "read");
    if (deadline < 0) deadline = op_deadline(false, timeout);
    wait(op.fd, false, deadline, "read");
  }
}

void tcp_stream::read_exactly(void* buf, std::size_t n, std::chrono::nanoseconds timeout) {
  auto* p = static_cast<char*>(buf);
  const std::int64_t deadline = op_deadline(false, timeout);
  op_scope op(*this, "read");
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(op.fd, p + got, n - got, 0);
    if (r > 0) {
      got += static_cast<std::size_t>(r);
      continue;
    }
    if (r == 0)
      throw std::system_error(std::make_error_code(std::errc::connection_aborted),
                              "weft::net: read " + name_ + ": unexpected end of stream after " + std::to_string(got) + " of " +
                                  std::to_string(n) + " bytes");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) fail(errno, "read");
    wait(op.fd, false, deadline, "read");
  }
}

std::size_t tcp_stream::write_some(const void* buf, std::size_t n, std::chrono::nanoseconds timeout) {
  op_scope op(*this, "write");
  std::int64_t deadline = -1;
  for (;;) {
    ssize_t r = ::send(op.fd, buf, n, MSG_NOSIGNAL);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) fail(errno, "write");
    if (deadline < 0) deadline = op_deadline(true, timeout);
    wait(op.fd, true, deadline, "write");
  }
}

void tcp_stream::write_all(const void* buf, std::size_t n, std::chrono::nanoseconds timeout) {
  const auto* p = static_cast<const char*>(buf);
  op_scope op(*this, "write");
  std::int64_t deadline = -1;
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = ::send(op.fd, p + done, n - done, MSG_NOSIGNAL);
    if (r >= 0) {
      done += static_cast<std::size_t>(r);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) fail(errno, "write");
    if (deadline < 0) deadline = op_deadline(true, timeout);
    wait(op.fd, true, deadline, "write");
  }
}

void tcp_stream::shutdown(shutdown_how how) {
  op_scope op(*this, "shutdown");
  if (::shutdown(op.fd, static_cast<int>(how)) != 0) fail(errno, "shutdown");
}

void tcp_stream::set_nodelay(bool on) {
  op_scope op(*this, "setsockopt TCP_NODELAY");
  int v = on ? 1 : 0;
  if (::setsockopt(op.fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0) fail(errno, "setsockopt TCP_NODELAY");
}

}  // namespace weft::net
