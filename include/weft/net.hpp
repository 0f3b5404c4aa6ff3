// SPDX-License-Identifier: Apache-2.0
// weft/net.hpp — sockets for goroutines: Go's net package (net.Listen, net.Dial, Conn with
// SetDeadline), in the style of the C++ standard library.
//
// Every operation that would block parks the calling goroutine in the netpoller (or, on a
// plain thread, blocks that thread) until the socket is ready, its deadline passes (throws
// weft::net::timeout_error) or it is closed by someone else (throws weft::net::closed_error).
// A goroutine per connection is the intended shape:
//
//     auto ln = weft::net::tcp_listener::listen("127.0.0.1:8080");
//     for (;;) weft::go([c = ln.accept()]() mutable { ... c.read_some(...) ... });
//
// Addresses: "host:port" (IPv4, a name resolved with getaddrinfo), "[v6]:port", ":port" (every
// interface, IPv6 and IPv4), "unix:/path" (a Unix domain socket; "unix:@name" is abstract).
// Errors are std::system_error whose message names the call and the address:
// "weft::net: read 127.0.0.1:8080: Connection reset by peer".
//
// Closing: close() (or the destructor) wakes every goroutine or thread waiting on the socket,
// from any goroutine or thread.  Close sockets through these classes (or weft::close_fd), never
// with a raw ::close on native_handle(): weft could not wake the waiters.
//
// Plain threads: all of it (the thread blocks).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "weft/export.hpp"
#include "weft/io.hpp"

namespace weft::net {

// An operation's deadline passed (Go's os.ErrDeadlineExceeded, "i/o timeout").  code() is
// std::errc::timed_out.
struct WEFT_API timeout_error : std::system_error {
  using std::system_error::system_error;
};

// The socket was closed (by another goroutine or thread, or before the call): Go's
// net.ErrClosed, "use of closed network connection".  code() is std::errc::bad_file_descriptor.
struct WEFT_API closed_error : std::system_error {
  using std::system_error::system_error;
};

using deadline = std::chrono::steady_clock::time_point;
inline constexpr deadline no_deadline = deadline::max();

// What every socket has: the descriptor, its deadlines, its name for messages, close.
class WEFT_API socket {
 public:
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;
  // Closes the socket (waking its waiters).  Safe to call from any goroutine or thread, more
  // than once; the descriptor is closed once.
  void close() noexcept;
  bool is_open() const noexcept { return fd_.load(std::memory_order_acquire) >= 0; }
  int native_handle() const noexcept { return fd_.load(std::memory_order_acquire); }
  // The address this socket is known by in messages (the peer's for a stream, the local one
  // for a listener or an unconnected datagram socket).
  const std::string& name() const noexcept { return name_; }
  // Deadlines for every later operation (Go's SetDeadline / SetReadDeadline /
  // SetWriteDeadline); no_deadline clears.  An operation already waiting keeps the deadline it
  // started with.
  void set_deadline(deadline d) noexcept {
    set_read_deadline(d);
    set_write_deadline(d);
  }
  void set_read_deadline(deadline d) noexcept { rdeadline_.store(to_ns(d), std::memory_order_relaxed); }
  void set_write_deadline(deadline d) noexcept { wdeadline_.store(to_ns(d), std::memory_order_relaxed); }
  std::string local_address() const;

 protected:
  socket() noexcept = default;
  socket(int fd, std::string name);
  socket(socket&& o) noexcept;
  socket& operator=(socket&& o) noexcept;
  ~socket();
  static std::int64_t to_ns(deadline d) noexcept {
    return d == no_deadline ? 0 : std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_since_epoch()).count();
  }
  // The descriptor, or throws closed_error naming `call`.
  int fd_or_throw(const char* call) const;
  // Waits until the socket is ready for `write` (after EAGAIN), or throws timeout_error /
  // closed_error naming `call`.  deadline_ns: CLOCK_MONOTONIC, 0 none.
  void wait(int fd, bool write, std::int64_t deadline_ns, const char* call) const;
  // The deadline of one operation: the socket's, or `timeout` from now if earlier.
  std::int64_t op_deadline(bool write, std::chrono::nanoseconds timeout) const noexcept;
  [[noreturn]] void fail(int err, const char* call) const;
  // The locally bound TCP or UDP port (0 for a Unix socket): the listeners' and datagram
  // sockets' port().
  std::uint16_t local_port() const;
  // Held across one operation: close() waits for operations in flight to leave (waking them
  // until they do) before it closes the descriptor, so none of them ever uses a number that
  // has been closed and reused meanwhile (Go's fdMutex, in its simplest form).
  class op_scope {
   public:
    op_scope(const socket& s, const char* call);
    ~op_scope() { s_.refs_.fetch_sub(1, std::memory_order_release); }
    op_scope(const op_scope&) = delete;
    op_scope& operator=(const op_scope&) = delete;
    int fd;

   private:
    const socket& s_;
  };

  std::atomic<int> fd_{-1};
  mutable std::atomic<std::uint32_t> refs_{0};
  std::atomic<std::int64_t> rdeadline_{0}, wdeadline_{0};
  std::string name_;
};

// A connected byte stream: TCP or a Unix domain stream socket.  Move-only; closed by its
// destructor.
class WEFT_API tcp_stream : public socket {
 public:
  tcp_stream() noexcept = default;
  tcp_stream(tcp_stream&&) noexcept = default;
  tcp_stream& operator=(tcp_stream&&) noexcept = default;
  ~tcp_stream() = default;
  // Connects to `address` (Go's net.DialTimeout): throws timeout_error if that takes longer
  // than `timeout`, std::system_error (ECONNREFUSED, ...) naming the address otherwise.
  // TCP_NODELAY is set, as Go sets it.
  static tcp_stream connect(std::string_view address, std::chrono::nanoseconds timeout = no_timeout);
  // Adopts a connected socket (made non-blocking here).
  explicit tcp_stream(int fd, std::string name = {});

  // Reads what is there, at most n bytes, waiting until at least one is; 0 at end of stream.
  std::size_t read_some(void* buf, std::size_t n, std::chrono::nanoseconds timeout = no_timeout);
  // Reads exactly n bytes; throws std::system_error (std::errc::connection_aborted, "unexpected
  // end of stream") if the stream ends first.
  void read_exactly(void* buf, std::size_t n, std::chrono::nanoseconds timeout = no_timeout);
  // Writes every byte (as many partial writes and waits as it takes).  A peer that has gone
  // gives EPIPE or ECONNRESET (never SIGPIPE).
  void write_all(const void* buf, std::size_t n, std::chrono::nanoseconds timeout = no_timeout);
  void write_all(std::string_view s, std::chrono::nanoseconds timeout = no_timeout) { write_all(s.data(), s.size(), timeout); }
  // Writes what fits now, at least one byte (waits until one fits).
  std::size_t write_some(const void* buf, std::size_t n, std::chrono::nanoseconds timeout = no_timeout);
  enum class shutdown_how { read = 0, write = 1, both = 2 };
  void shutdown(shutdown_how how = shutdown_how::write);
  void set_nodelay(bool on);
  std::string remote_address() const { return name_; }

 private:
  friend class tcp_listener;
};

// A listening stream socket (TCP or Unix domain).  Move-only; closed by its destructor.
class WEFT_API tcp_listener : public socket {
 public:
  tcp_listener() noexcept = default;
  tcp_listener(tcp_listener&&) noexcept = default;
  tcp_listener& operator=(tcp_listener&&) noexcept = default;
  ~tcp_listener() = default;
  // Binds and listens (Go's net.Listen): SO_REUSEADDR for TCP; port 0 picks a free port
  // (port() says which).  A Unix socket's path must not exist.
  static tcp_listener listen(std::string_view address, int backlog = 4096);
  // Adopts a socket that already listens (systemd socket activation, a parent's), made
  // non-blocking here.
  explicit tcp_listener(int fd);
  // Waits for the next connection.  Out of descriptors (EMFILE/ENFILE), it throws a
  // std::system_error that says so; the listener stays usable (the caller may retry later).
  tcp_stream accept(std::chrono::nanoseconds timeout = no_timeout);
  std::uint16_t port() const;  // the bound TCP port (0 for Unix sockets)
};

// A datagram socket (UDP, or a Unix domain datagram socket).  Move-only.
class WEFT_API udp_socket : public socket {
 public:
  udp_socket() noexcept = default;
  udp_socket(udp_socket&&) noexcept = default;
  udp_socket& operator=(udp_socket&&) noexcept = default;
  ~udp_socket() = default;
  // Binds to `address` (":0" for any port).
  static udp_socket bind(std::string_view address);
  std::size_t send_to(const void* buf, std::size_t n, std::string_view address, std::chrono::nanoseconds timeout = no_timeout);
  // Receives one datagram (truncated to n); `from`, if given, gets the sender's address.
  std::size_t recv_from(void* buf, std::size_t n, std::string* from = nullptr, std::chrono::nanoseconds timeout = no_timeout);
  std::uint16_t port() const;
};

}  // namespace weft::net
