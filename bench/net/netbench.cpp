// SPDX-License-Identifier: Apache-2.0
// weft-netbench: servers on loopback (issue 18).  Starts each server in its own process —
// weft's echo server (examples/echo's shape), Go's (bench/go/echo.go, built with `go build` at
// run time), a thread-per-connection echo server, a Boost.Asio C++20-coroutine echo server on one
// thread (asio_echo.cpp), weft's HTTP/1.1 keep-alive server
// (examples/http's shape) and Go's net/http (bench/go/http.go) — and drives each with the same
// bounded client: one thread, epoll, `conns` connections each sending a request and waiting
// for the whole answer, for a fixed time.  It reports requests/s, p50/p99 latency and the
// server's CPU time per request (utime+stime of its process over the measured window, from
// /proc/PID/stat), each as a ratio to Go.  It stops by itself.
//
//   weft-netbench [--seconds S] [--rounds R] [--conns 50,1000] [--size BYTES] [--procs N]
//                 [--only echo|http]
//
// Servers get N threads' worth of parallelism (WEFT_PROCS=N, GOMAXPROCS=N; default 2); the
// client shares the machine with them, the same for every server.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft/weft.hpp"

#ifndef WEFT_SOURCE_DIR
#error "the build defines WEFT_SOURCE_DIR (to find bench/go/*.go)"
#endif

// Boost.Asio with C++20 coroutines on one thread (asio_echo.cpp).
int serve_asio_echo(const std::string& address);

namespace {

using clk = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "weft-netbench: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

// ---- the servers run in child processes (--serve KIND ADDRESS) ----------------------------

int serve_weft_echo(const std::string& address) {
  return weft::run([&] {
    auto listener = weft::net::tcp_listener::listen(address);
    for (;;) {
      weft::net::tcp_stream conn;
      try {
        conn = listener.accept();
      } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        weft::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      weft::go([conn = std::move(conn)]() mutable {
        char buf[16384];
        try {
          for (;;) {
            std::size_t n = conn.read_some(buf, sizeof buf);
            if (n == 0) return;
            conn.write_all(buf, n);
          }
        } catch (const std::system_error&) {
        }
      });
    }
  });
}

constexpr std::string_view kHttpResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

int serve_weft_http(const std::string& address) {
  return weft::run([&] {
    auto listener = weft::net::tcp_listener::listen(address);
    for (;;) {
      weft::net::tcp_stream conn;
      try {
        conn = listener.accept();
      } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        weft::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      weft::go([conn = std::move(conn)]() mutable {
        std::string buf, out;
        char chunk[16384];
        try {
          for (;;) {
            std::size_t n = conn.read_some(chunk, sizeof chunk);
            if (n == 0) return;
            buf.append(chunk, n);
            std::size_t start = 0;
            for (std::size_t end; (end = buf.find("\r\n\r\n", start)) != std::string::npos; start = end + 4) out.append(kHttpResponse);
            buf.erase(0, start);
            if (!out.empty()) {
              conn.write_all(out);
              out.clear();
            }
          }
        } catch (const std::system_error&) {
        }
      });
    }
  });
}

int serve_thread_echo(const std::string& address) {
  auto colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::atoi(address.c_str() + colon + 1)));
  if (::inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) die("thread server: bad address");
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (l < 0 || ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(l, 4096) != 0)
    die("thread server: listen");
  for (;;) {
    int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      die("thread server: accept");
    }
    if (::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("thread server: TCP_NODELAY");
    std::thread([c] {
      char buf[16384];
      for (;;) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t done = 0; done < n;) {
          ssize_t w = ::send(c, buf + done, static_cast<std::size_t>(n - done), MSG_NOSIGNAL);
          if (w <= 0) goto out;
          done += w;
        }
      }
    out:
      ::close(c);
    }).detach();
  }
}

// ---- the client -----------------------------------------------------------------------------

struct result {
  double rps = 0, p50_us = 0, p99_us = 0, cpu_us_per_req = 0;
  std::uint64_t requests = 0;
  bool ok = false;
};

double proc_cpu_seconds(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char buf[2048];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  // After ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return static_cast<double>(ut + st) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

int connect_to(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("client: socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("client: TCP_NODELAY");
  if (::fcntl(fd, F_SETFL, O_NONBLOCK) != 0) die("client: O_NONBLOCK");
  return fd;
}

struct conn_state {
  int fd = -1;
  clk::time_point sent;
  std::string in;
};

// Drives `conns` connections for warmup + seconds; measures the last `seconds`.
result drive(pid_t server, std::uint16_t port, int conns, double seconds, std::size_t size, bool http) {
  result r;
  const std::string request = http ? "GET / HTTP/1.1\r\nHost: bench\r\n\r\n" : std::string(size, 'x');
  std::vector<conn_state> cs(conns);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("client: epoll_create1");
  for (int i = 0; i < conns; ++i) {
    cs[i].fd = connect_to(port);
    if (cs[i].fd < 0) {
      std::fprintf(stderr, "weft-netbench: connection %d to port %u failed: %s\n", i, port, std::strerror(errno));
      for (int j = 0; j < i; ++j) ::close(cs[j].fd);
      ::close(ep);
      return r;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0) die("client: epoll_ctl");
  }
  auto send_req = [&](conn_state& c) {
    c.sent = clk::now();
    ssize_t w = ::send(c.fd, request.data(), request.size(), MSG_NOSIGNAL);
    if (w != static_cast<ssize_t>(request.size())) die("client: send (a short write of a small request)");
  };
  // Whether c.in holds a whole answer; if so, consumes it.
  auto complete = [&](conn_state& c) -> bool {
    if (!http) {
      if (c.in.size() < size) return false;
      c.in.erase(0, size);
      return true;
    }
    std::size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::size_t len = 0;
    for (std::size_t p = 0; p < end;) {
      std::size_t eol = c.in.find("\r\n", p);
      if (eol == std::string::npos || eol > end) eol = end;
      if (eol - p > 15 && strncasecmp(c.in.data() + p, "Content-Length:", 15) == 0) len = std::strtoul(c.in.c_str() + p + 15, nullptr, 10);
      p = eol + 2;
    }
    if (c.in.size() < end + 4 + len) return false;
    c.in.erase(0, end + 4 + len);
    return true;
  };
  std::vector<std::uint32_t> lat;
  lat.reserve(1 << 22);
  const auto start = clk::now();
  const auto measure_from = start + std::chrono::milliseconds(500);
  const auto stop_at = measure_from + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(seconds));
  double cpu0 = -1;
  bool measuring = false;
  for (auto& c : cs) send_req(c);
  epoll_event evs[256];
  char buf[65536];
  for (;;) {
    auto now = clk::now();
    if (!measuring && now >= measure_from) {
      measuring = true;
      cpu0 = proc_cpu_seconds(server);
    }
    if (now >= stop_at) break;
    int n = ::epoll_wait(ep, evs, 256, 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("client: epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      conn_state& c = cs[evs[i].data.u32];
      for (;;) {
        ssize_t got = ::recv(c.fd, buf, sizeof buf, 0);
        if (got > 0) {
          c.in.append(buf, static_cast<std::size_t>(got));
          continue;
        }
        if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          std::fprintf(stderr, "weft-netbench: the server closed or reset a connection\n");
          for (auto& x : cs) ::close(x.fd);
          ::close(ep);
          return r;
        }
        if (errno == EAGAIN) break;
      }
      while (complete(c)) {
        auto t = clk::now();
        if (measuring) lat.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t - c.sent).count(), UINT32_MAX)));
        send_req(c);
      }
    }
  }
  const double cpu1 = proc_cpu_seconds(server);
  for (auto& c : cs) ::close(c.fd);
  ::close(ep);
  if (lat.empty()) return r;
  std::sort(lat.begin(), lat.end());
  r.requests = lat.size();
  r.rps = static_cast<double>(lat.size()) / seconds;
  r.p50_us = lat[lat.size() / 2] / 1000.0;
  r.p99_us = lat[static_cast<std::size_t>(0.99 * static_cast<double>(lat.size() - 1))] / 1000.0;
  r.cpu_us_per_req = cpu0 >= 0 && cpu1 >= 0 ? (cpu1 - cpu0) * 1e6 / static_cast<double>(lat.size()) : -1;
  r.ok = true;
  return r;
}

// ---- starting servers -------------------------------------------------------------------------

pid_t spawn_server(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  pid_t pid = ::fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> av;
    for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    ::execv(av[0], av.data());
    std::fprintf(stderr, "weft-netbench: exec %s: %s\n", av[0], std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

bool wait_listening(std::uint16_t port, pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    int fd = connect_to(port);
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void stop_server(pid_t pid) {
  if (::kill(pid, SIGKILL) != 0) die("kill of a server");
  int status;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) die("waitpid");
}

std::string build_go(const std::string& dir, const char* name) {
  const std::string out = dir + "/" + name;
  std::string cmd = "cd '" + dir + "' && ";
  if (!std::getenv("HOME") && !std::getenv("GOCACHE")) cmd += "GOCACHE='" + dir + "/.gocache' ";
  cmd += "go build -o '" + out + "' '" WEFT_SOURCE_DIR "/bench/go/" + name + ".go'";
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "weft-netbench: `%s` failed; Go columns left out\n", cmd.c_str());
    return {};
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--serve") {
    ::signal(SIGPIPE, SIG_IGN);
    const std::string kind = argv[2], addr = argv[3];
    if (kind == "weft-echo") return serve_weft_echo(addr);
    if (kind == "weft-http") return serve_weft_http(addr);
    if (kind == "thread-echo") return serve_thread_echo(addr);
    if (kind == "asio-echo") return serve_asio_echo(addr);
    std::fprintf(stderr, "weft-netbench: unknown server kind %s\n", kind.c_str());
    return 2;
  }
  double seconds = 5;
  int rounds = 3, procs = 2;
  std::size_t size = 64;
  std::vector<int> conn_counts{50, 1000};
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "weft-netbench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seconds") seconds = std::atof(next().c_str());
    else if (a == "--rounds") rounds = std::atoi(next().c_str());
    else if (a == "--size") size = static_cast<std::size_t>(std::atoi(next().c_str()));
    else if (a == "--procs") procs = std::atoi(next().c_str());
    else if (a == "--only") only = next();
    else if (a == "--conns") {
      conn_counts.clear();
      std::string v = next();
      for (std::size_t p = 0; p < v.size();) {
        conn_counts.push_back(std::atoi(v.c_str() + p));
        std::size_t c = v.find(',', p);
        p = c == std::string::npos ? v.size() : c + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: weft-netbench [--seconds S] [--rounds R] [--conns 50,1000] [--size BYTES] [--procs N] [--only echo|http]\n");
      return 2;
    }
  }
  if (seconds <= 0 || rounds <= 0 || procs <= 0 || size == 0 || conn_counts.empty() ||
      std::any_of(conn_counts.begin(), conn_counts.end(), [](int c) { return c <= 0; })) {
    std::fprintf(stderr, "weft-netbench: --seconds, --rounds, --procs, --size and every --conns must be positive\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;  // the servers inherit it
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit(RLIMIT_NOFILE)");
  }
  char tmpl[] = "/tmp/weft-netbench-XXXXXX";
  if (!::mkdtemp(tmpl)) die("mkdtemp");
  const std::string dir = tmpl;
  const std::string go_echo = only == "http" ? "" : build_go(dir, "echo");
  const std::string go_http = only == "echo" ? "" : build_go(dir, "http");
  char self[4096];
  ssize_t sl = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl < 0) die("readlink /proc/self/exe");
  self[sl] = '\0';
  const std::vector<std::string> env{"WEFT_PROCS=" + std::to_string(procs), "GOMAXPROCS=" + std::to_string(procs)};

  struct server {
    const char* name;
    bool http;
    std::vector<std::string> argv;  // the address is appended
  };
  std::vector<server> servers;
  if (only != "http") {
    if (!go_echo.empty()) servers.push_back({"go-echo", false, {go_echo}});
    servers.push_back({"weft-echo", false, {self, "--serve", "weft-echo"}});
    servers.push_back({"thread-echo", false, {self, "--serve", "thread-echo"}});
    servers.push_back({"asio-echo", false, {self, "--serve", "asio-echo"}});
  }
  if (only != "echo") {
    if (!go_http.empty()) servers.push_back({"go-http", true, {go_http}});
    servers.push_back({"weft-http", true, {self, "--serve", "weft-http"}});
  }
  std::printf("weft-netbench: %g s per run (after 0.5 s warm-up), %d round(s), %zu-byte echo messages, servers at %d procs\n",
              seconds, rounds, size, procs);
  std::printf("%-5s %-12s %6s %12s %9s %9s %10s %8s %8s\n", "round", "server", "conns", "requests/s", "p50 us", "p99 us",
              "cpu us/req", "rps/Go", "cpu/Go");
  std::uint16_t port = static_cast<std::uint16_t>(20000 + ::getpid() % 20000);
  for (int round = 1; round <= rounds; ++round) {
    for (int conns : conn_counts) {
      result go_r[2];
      for (const server& s : servers) {
        std::vector<std::string> av = s.argv;
        av.push_back("127.0.0.1:" + std::to_string(++port));
        pid_t pid = spawn_server(av, env);
        if (!wait_listening(port, pid)) {
          std::fprintf(stderr, "weft-netbench: %s did not start listening\n", s.name);
          stop_server(pid);
          continue;
        }
        result r = drive(pid, port, conns, seconds, size, s.http);
        stop_server(pid);
        if (!r.ok) {
          std::printf("%-5d %-12s %6d   (failed)\n", round, s.name, conns);
          continue;
        }
        if (std::strncmp(s.name, "go-", 3) == 0) go_r[s.http] = r;
        const result& g = go_r[s.http];
        std::printf("%-5d %-12s %6d %12.0f %9.1f %9.1f %10.2f %8.2f %8.2f\n", round, s.name, conns, r.rps, r.p50_us, r.p99_us,
                    r.cpu_us_per_req, g.ok ? r.rps / g.rps : 0.0, g.ok ? r.cpu_us_per_req / g.cpu_us_per_req : 0.0);
        std::fflush(stdout);
      }
    }
  }
  std::string rm = "rm -rf '" + dir + "'";
  if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "weft-netbench: could not remove %s\n", dir.c_str());
  return 0;
}
