// SPDX-License-Identifier: Apache-2.0
// weft-echo-server: a TCP echo server, one goroutine per connection (Go's shape).
//
//   weft-echo-server [address]        default 127.0.0.1:7000; WEFT_PROCS sets the threads
//
// Every connection gets an idle deadline: one that sends nothing for a minute is closed.
#include <cstdio>
#include <string>

#include "weft/weft.hpp"

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:7000";
  return weft::run([&] {
    auto listener = weft::net::tcp_listener::listen(address);
    std::printf("echo server listening on %s\n", listener.name().c_str());
    std::fflush(stdout);
    for (;;) {
      weft::net::tcp_stream conn;
      try {
        conn = listener.accept();
      } catch (const std::system_error& e) {  // out of descriptors: wait for some to be freed
        std::fprintf(stderr, "%s\n", e.what());
        weft::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      weft::go([conn = std::move(conn)]() mutable {
        char buf[16384];
        try {
          for (;;) {
            conn.set_read_deadline(std::chrono::steady_clock::now() + std::chrono::minutes(1));
            std::size_t n = conn.read_some(buf, sizeof buf);
            if (n == 0) return;  // the client closed its side
            conn.write_all(buf, n);
          }
        } catch (const std::system_error&) {
          // reset by the peer, or idle for a minute: the destructor closes the connection
        }
      });
    }
  });
}
