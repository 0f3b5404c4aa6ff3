// SPDX-License-Identifier: Apache-2.0
// tcp_listener.cpp — a listening stream socket (Go's net.TCPListener / net.UnixListener).
//
// accept is accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) first, a wait only after EAGAIN; the new
// connection is registered with the netpoller at once (one epoll_ctl for its whole life).
// Out of descriptors (EMFILE, ENFILE) the pending connection stays in the kernel's queue and
// accept throws a message that says what ran out: the server decides (Go's http.Server
// sleeps and retries; examples/echo does the same).
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/net/address.hpp"
#include "weft/net.hpp"

namespace weft::net {

tcp_listener::tcp_listener(int fd) {
  if (fd < 0) throw std::invalid_argument("weft::net::tcp_listener: fd " + std::to_string(fd) + " is not a descriptor");
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
    throw std::system_error(errno, std::generic_category(), "weft::net::tcp_listener: fcntl(O_NONBLOCK) of fd " + std::to_string(fd));
  fd_.store(fd);
  name_ = "fd " + std::to_string(fd);
  name_ = local_address();
  detail::poll_register(fd);
}

tcp_listener tcp_listener::listen(std::string_view address, int backlog) {
  const detail::endpoint ep = detail::resolve(address, true, SOCK_STREAM, "listen");
  int fd = detail::make_socket(ep.family(), SOCK_STREAM, "listen", address);
  tcp_listener l;
  l.fd_.store(fd);
  l.name_ = std::string(address);
  int one = 1, zero = 0;
  if (ep.family() != AF_UNIX && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) l.fail(errno, "listen (setsockopt SO_REUSEADDR)");
  if (ep.family() == AF_INET6 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) l.fail(errno, "listen (setsockopt IPV6_V6ONLY)");
  if (::bind(fd, ep.sa(), ep.len) != 0) l.fail(errno, "listen (bind)");
  if (::listen(fd, backlog) != 0) l.fail(errno, "listen");
  l.name_ = l.local_address();
  return l;
}

tcp_stream tcp_listener::accept(std::chrono::nanoseconds timeout) {
  op_scope op(*this, "accept");
  std::int64_t deadline = -1;
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int c = ::accept4(op.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      try {
        detail::poll_register(c);
      } catch (...) {
        ::close(c);
        throw;
      }
      tcp_stream s;
      s.fd_.store(c);
      s.name_ = detail::format(reinterpret_cast<sockaddr*>(&ss), len);
      if (ss.ss_family != AF_UNIX) {
        int one = 1;  // as Go does for every TCP connection
        if (::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) s.fail(errno, "accept (setsockopt TCP_NODELAY)");
      }
      return s;
    }
    const int err = errno;
    if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;  // the next one, as Go does
    if (err == EMFILE || err == ENFILE)
      throw std::system_error(err, std::generic_category(),
                              "weft::net: accept " + name_ + ": out of file descriptors (" +
                                  (err == EMFILE ? "the process's RLIMIT_NOFILE, `ulimit -n`" : "the system's fs.file-max") +
                                  "); the connection waits in the listen queue — close connections or raise the limit, then accept again");
    if (err != EAGAIN) fail(err, "accept");
    if (deadline < 0) deadline = op_deadline(false, timeout);
    wait(op.fd, false, deadline, "accept");
  }
}

std::uint16_t tcp_listener::port() const { return local_port(); }

}  // namespace weft::net
