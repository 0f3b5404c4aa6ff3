// SPDX-License-Identifier: Apache-2.0
// address.cpp — parsing and printing weft::net's addresses.  The forms are Go's
// (net.SplitHostPort: "host:port", "[v6]:port", ":port") plus "unix:/path" for Unix domain
// sockets (Go takes the network as a separate argument; one string is simpler to pass around).
#include "runtime/net/address.hpp"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include "runtime/io/netpoll.hpp"
#include "runtime/sched/sched.hpp"
#include "weft/io.hpp"

namespace weft::net::detail {

namespace {

[[noreturn]] void bad(std::string_view address, const char* call, const char* why) {
  throw std::invalid_argument(std::string("weft::net: ") + call + " \"" + std::string(address) + "\": " + why +
                              " (expected host:port, [ipv6]:port, :port or unix:/path)");
}

}  // namespace

endpoint resolve(std::string_view address, bool passive, int socktype, const char* call) {
  endpoint ep;
  if (address.substr(0, 5) == "unix:") {
    std::string_view path = address.substr(5);
    auto* un = reinterpret_cast<sockaddr_un*>(&ep.ss);
    if (path.empty()) bad(address, call, "empty Unix socket path");
    if (path.size() >= sizeof un->sun_path) bad(address, call, "Unix socket path too long");
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    const bool abstract = path[0] == '@';
    if (abstract) un->sun_path[0] = '\0';
    ep.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
    return ep;
  }
  std::string_view host, port;
  if (!address.empty() && address[0] == '[') {
    auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
      bad(address, call, "missing ']:port'");
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos) bad(address, call, "missing port");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) bad(address, call, "an IPv6 address must be in brackets");
  }
  unsigned long pn = 0;
  if (port.empty() || port.size() > 5) bad(address, call, "bad port");
  for (char c : port) {
    if (c < '0' || c > '9') bad(address, call, "bad port");
    pn = pn * 10 + static_cast<unsigned long>(c - '0');
  }
  if (pn > 65535) bad(address, call, "port out of range");
  const auto nport = htons(static_cast<std::uint16_t>(pn));
  std::string h(host);
  auto* in4 = reinterpret_cast<sockaddr_in*>(&ep.ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ep.ss);
  if (h.empty()) {
    if (passive) {  // every interface: IPv6 and IPv4 (listen clears IPV6_V6ONLY), as Go does
      in6->sin6_family = AF_INET6;
      in6->sin6_addr = in6addr_any;
      in6->sin6_port = nport;
      ep.len = sizeof(sockaddr_in6);
    } else {
      in4->sin_family = AF_INET;
      in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      in4->sin_port = nport;
      ep.len = sizeof(sockaddr_in);
    }
    return ep;
  }
  if (::inet_pton(AF_INET, h.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = nport;
    ep.len = sizeof(sockaddr_in);
    return ep;
  }
  if (::inet_pton(AF_INET6, h.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = nport;
    ep.len = sizeof(sockaddr_in6);
    return ep;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_ADDRCONFIG | (passive ? AI_PASSIVE : 0);
  addrinfo* res = nullptr;
  int rc = weft::blocking([&] { return ::getaddrinfo(h.c_str(), nullptr, &hints, &res); });
  if (rc != 0) {
    std::string msg = std::string("weft::net: ") + call + " " + std::string(address) + ": cannot resolve \"" + h +
                      "\": " + ::gai_strerror(rc);
    if (rc == EAI_SYSTEM) throw std::system_error(errno, std::generic_category(), msg);
    throw std::system_error(std::make_error_code(std::errc::host_unreachable), msg);
  }
  std::memcpy(&ep.ss, res->ai_addr, res->ai_addrlen);
  ep.len = res->ai_addrlen;
  ::freeaddrinfo(res);
  if (ep.family() == AF_INET) in4->sin_port = nport;
  else if (ep.family() == AF_INET6) in6->sin6_port = nport;
  return ep;
}

std::string format(const sockaddr* sa, socklen_t len) {
  char buf[INET6_ADDRSTRLEN + 16];
  switch (sa->sa_family) {
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
      if (!::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf)) return "?";
      return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
    }
    case AF_INET6: {
      const auto* in = reinterpret_cast<const sockaddr_in6*>(sa);
      if (!::inet_ntop(AF_INET6, &in->sin6_addr, buf, sizeof buf)) return "?";
      // Appended, not "[" + std::string(...): GCC 12 at -O3 warns (-Wrestrict) about the
      // inlined insert of a literal before a temporary, a false positive that -Werror fails.
      std::string out = "[";
      out.append(buf).append("]:").append(std::to_string(ntohs(in->sin6_port)));
      return out;
    }
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
      const std::size_t off = offsetof(sockaddr_un, sun_path);
      if (len <= off) return "unix:";
      std::size_t n = len - off;
      std::string out = "unix:";  // (appended, as above)
      if (un->sun_path[0] == '\0') return out.append("@").append(un->sun_path + 1, n - 1);
      return out.append(un->sun_path, strnlen(un->sun_path, n));
    }
    default: return "?";
  }
}

void poll_register(int fd) {
  using namespace weft::detail;
  if (sched* s = current_sched()) netpoll_open(netpoll_get(s), fd);
}

int make_socket(int family, int type, const char* call, std::string_view address) {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(), std::string("weft::net: ") + call + " " + std::string(address) + ": socket");
  try {
    poll_register(fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
  return fd;
}

}  // namespace weft::net::detail
