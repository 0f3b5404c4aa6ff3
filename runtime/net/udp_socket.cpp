// SPDX-License-Identifier: Apache-2.0
// udp_socket.cpp — a datagram socket (Go's net.UDPConn: WriteTo / ReadFrom).
#include <cerrno>

#include <netinet/in.h>
#include <sys/socket.h>

#include "runtime/net/address.hpp"
#include "weft/net.hpp"

namespace weft::net {

udp_socket udp_socket::bind(std::string_view address) {
  const detail::endpoint ep = detail::resolve(address, true, SOCK_DGRAM, "bind");
  int fd = detail::make_socket(ep.family(), SOCK_DGRAM, "bind", address);
  udp_socket u;
  u.fd_.store(fd);
  u.name_ = std::string(address);
  int zero = 0;
  if (ep.family() == AF_INET6 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) u.fail(errno, "bind (setsockopt IPV6_V6ONLY)");
  if (::bind(fd, ep.sa(), ep.len) != 0) u.fail(errno, "bind");
  u.name_ = u.local_address();
  return u;
}

std::size_t udp_socket::send_to(const void* buf, std::size_t n, std::string_view address, std::chrono::nanoseconds timeout) {
  const detail::endpoint ep = detail::resolve(address, false, SOCK_DGRAM, "send_to");
  op_scope op(*this, "send_to");
  std::int64_t deadline = -1;
  for (;;) {
    ssize_t r = ::sendto(op.fd, buf, n, MSG_NOSIGNAL, ep.sa(), ep.len);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      const int err = errno;
      throw std::system_error(err, std::generic_category(), "weft::net: send_to " + std::string(address) + " from " + name_);
    }
    if (deadline < 0) deadline = op_deadline(true, timeout);
    wait(op.fd, true, deadline, "send_to");
  }
}

std::size_t udp_socket::recv_from(void* buf, std::size_t n, std::string* from, std::chrono::nanoseconds timeout) {
  op_scope op(*this, "recv_from");
  std::int64_t deadline = -1;
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ssize_t r = ::recvfrom(op.fd, buf, n, 0, reinterpret_cast<sockaddr*>(&ss), &len);
    if (r >= 0) {
      if (from) *from = detail::format(reinterpret_cast<sockaddr*>(&ss), len);
      return static_cast<std::size_t>(r);
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) fail(errno, "recv_from");
    if (deadline < 0) deadline = op_deadline(false, timeout);
    wait(op.fd, false, deadline, "recv_from");
  }
}

std::uint16_t udp_socket::port() const { return local_port(); }

}  // namespace weft::net
