// SPDX-License-Identifier: Apache-2.0
// weft-echo-client: a bounded load client for an echo server.  Each of `conns` connections
// (one goroutine each) sends a `size`-byte message and waits for it to come back, in a loop,
// for `seconds`; then it prints requests per second and the latency percentiles.
//
//   weft-echo-client [address] [conns] [seconds] [size]     defaults 127.0.0.1:7000 50 5 64
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "weft/weft.hpp"

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:7000";
  const int conns = argc > 2 ? std::atoi(argv[2]) : 50;
  const int seconds = argc > 3 ? std::atoi(argv[3]) : 5;
  const std::size_t size = argc > 4 ? static_cast<std::size_t>(std::atoi(argv[4])) : 64;
  if (conns <= 0 || seconds <= 0 || size == 0) {
    std::fprintf(stderr, "usage: weft-echo-client [address] [conns > 0] [seconds > 0] [size > 0]\n");
    return 2;
  }
  return weft::run([&] {
    using clk = std::chrono::steady_clock;
    const auto end = clk::now() + std::chrono::seconds(seconds);
    std::vector<std::vector<std::uint32_t>> lat(conns);  // microseconds, per connection
    std::atomic<int> failed{0};
    std::vector<weft::task<void>> clients;
    for (int i = 0; i < conns; ++i)
      clients.push_back(weft::spawn([&, i] {
        try {
          auto c = weft::net::tcp_stream::connect(address, std::chrono::seconds(5));
          std::string out(size, 'x'), in(size, '\0');
          while (clk::now() < end) {
            auto t0 = clk::now();
            c.write_all(out);
            c.read_exactly(in.data(), size);
            lat[i].push_back(static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(clk::now() - t0).count()));
          }
        } catch (const std::system_error& e) {
          if (failed.fetch_add(1) == 0) std::fprintf(stderr, "%s\n", e.what());
        }
      }));
    for (auto& t : clients) t.join();
    std::vector<std::uint32_t> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    auto pct = [&](double q) { return all.empty() ? 0u : all[static_cast<std::size_t>(q * (all.size() - 1))]; };
    std::printf("%zu requests in %d s: %.0f requests/s, p50 %u us, p99 %u us, %d connections failed\n", all.size(), seconds,
                static_cast<double>(all.size()) / seconds, pct(0.50), pct(0.99), failed.load());
    return failed.load() == 0 ? 0 : 1;
  });
}
