// SPDX-License-Identifier: Apache-2.0
// asio_echo.cpp — the C++ server author's alternative in weft-netbench (issue 18): a TCP echo
// server on Boost.Asio with C++20 coroutines (boost::asio::awaitable, co_spawn), one
// io_context run on one thread — the shape of Asio's own coroutine echo example, written for
// this benchmark.  A coroutine per connection; TCP_NODELAY as the other servers set it.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>  // (Boost 1.74's awaitable.hpp uses std::exchange without it)

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(tcp::socket s) {
  char buf[16384];
  try {
    for (;;) {
      std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
      co_await asio::async_write(s, asio::buffer(buf, n), asio::use_awaitable);
    }
  } catch (const std::exception&) {
    // the client closed or reset the connection
  }
}

asio::awaitable<void> listen(tcp::acceptor& a) {
  for (;;) {
    tcp::socket s = co_await a.async_accept(asio::use_awaitable);
    s.set_option(tcp::no_delay(true));
    asio::co_spawn(a.get_executor(), echo(std::move(s)), asio::detached);
  }
}

}  // namespace

int serve_asio_echo(const std::string& address) {
  const auto colon = address.rfind(':');
  try {
    asio::io_context io(1);
    tcp::endpoint ep(asio::ip::make_address(address.substr(0, colon)),
                     static_cast<unsigned short>(std::atoi(address.c_str() + colon + 1)));
    tcp::acceptor a(io);
    a.open(ep.protocol());
    a.set_option(tcp::acceptor::reuse_address(true));
    a.bind(ep);
    a.listen(4096);
    asio::co_spawn(io, listen(a), asio::detached);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-netbench: asio echo server: %s\n", e.what());
    return 1;
  }
  return 0;
}
