// SPDX-License-Identifier: Apache-2.0
// weft-http-server: a minimal HTTP/1.1 server with keep-alive that answers every request with
// the same small body, one goroutine per connection.
//
//   weft-http-server [address]        default 127.0.0.1:8080
//
// It understands just enough HTTP to be benchmarked: a request ends at its blank line (bodies
// are not read: only GET-like requests are served), "Connection: close" ends the connection,
// and pipelined requests are answered in order.  A real server would parse with a maintained
// parser such as llhttp (Debian: libllhttp-dev) — request bodies, chunked encoding, limits on
// header size, and the many malformed inputs a server on the internet receives.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "weft/weft.hpp"

namespace {

constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

bool wants_close(std::string_view head) {
  // Case-sensitive on purpose: this is a benchmark server, not a parser.
  return head.find("Connection: close") != std::string_view::npos || head.find("connection: close") != std::string_view::npos;
}

void serve(weft::net::tcp_stream conn) {
  std::string buf, out;
  char chunk[16384];
  try {
    for (;;) {
      std::size_t n = conn.read_some(chunk, sizeof chunk);
      if (n == 0) return;
      buf.append(chunk, n);
      if (buf.size() > (1 << 16)) return;  // a request head this large: not for this server
      bool close = false;
      std::size_t start = 0;
      for (;;) {  // every complete request head in the buffer
        std::size_t end = buf.find("\r\n\r\n", start);
        if (end == std::string::npos) break;
        close = close || wants_close(std::string_view(buf).substr(start, end - start));
        out.append(kResponse);
        start = end + 4;
        if (close) break;
      }
      buf.erase(0, start);
      if (!out.empty()) {
        conn.write_all(out);
        out.clear();
      }
      if (close) return;
    }
  } catch (const std::system_error&) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:8080";
  return weft::run([&] {
    auto listener = weft::net::tcp_listener::listen(address);
    std::printf("http server listening on %s\n", listener.name().c_str());
    std::fflush(stdout);
    for (;;) {
      try {
        weft::go(serve, listener.accept());
      } catch (const std::system_error& e) {  // out of descriptors: wait for some to be freed
        std::fprintf(stderr, "%s\n", e.what());
        weft::sleep_for(std::chrono::milliseconds(10));
      }
    }
  });
}
