// SPDX-License-Identifier: Apache-2.0
// address.hpp — weft::net's addresses: parsing "host:port" / "[v6]:port" / "unix:/path" into a
// sockaddr, and printing one back (for messages and local_address()).
#pragma once

#include <string>
#include <string_view>

#include <sys/socket.h>

namespace weft::net::detail {

struct endpoint {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const noexcept { return ss.ss_family; }
  const sockaddr* sa() const noexcept { return reinterpret_cast<const sockaddr*>(&ss); }
};

// Resolves `address` for `call` (named in errors, with the address): numeric addresses
// directly, names with getaddrinfo (inside weft::blocking, since it may block on DNS).  An
// empty host means every interface when `passive` (listen, bind), else the loopback.
// Throws std::invalid_argument for a malformed address, std::system_error if a name does not
// resolve.
endpoint resolve(std::string_view address, bool passive, int socktype, const char* call);

// "1.2.3.4:80", "[::1]:80", "unix:/path", "unix:@abstract", "unix:" (unnamed).
std::string format(const sockaddr* sa, socklen_t len);

// A non-blocking, close-on-exec socket, registered with the running runtime's netpoller;
// throws std::system_error naming call and address.
int make_socket(int family, int type, const char* call, std::string_view address);

// Registers an adopted or accepted descriptor with the running runtime's netpoller, if any.
void poll_register(int fd);

}  // namespace weft::net::detail
