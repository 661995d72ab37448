// A TCP proxy on 127.0.0.1 for the benchmarks: sits between a client and a
// server, counts the bytes each way (TLS records included: it never looks
// inside), and can shape the link like a slow mobile one.
//
//   TcpProxy proxy;                       // listens on 127.0.0.1, a port the OS picks
//   proxy.start(upstream_port);           // forwards every connection there
//   ... client connects to 127.0.0.1:proxy.port() ...
//   proxy.wait_idle(...); auto c = proxy.counts();   // bytes up (client->server), down, connections
//
// Each accepted connection gets one upstream connection and four threads: a
// reader and a writer per direction, joined by a queue. Bytes are counted when
// the reader takes them off the socket, so a count read after the client saw
// the answer includes everything sent so far.
//
// Shaping (set_shape, taken by each connection when it is accepted):
//   rate_bps    each direction is a link of this many bits per second
//               (0: unlimited). A chunk (at most 1,400 bytes are read at a
//               time while shaped, about one TCP segment) leaves when the
//               link is free and occupies it for bytes*8/rate seconds;
//   delay_ms    one-way propagation delay added to every chunk after it has
//               left (round trip = 2 x delay_ms);
//   connect_rtt the TCP handshake's round trip before the client's first byte
//               can leave (SYN, SYN-ACK), which a loopback connect skips.
// What is not modelled: TCP/IP headers (about 40 bytes per segment on the
// real link, not counted here), loss, slow start, and queueing limits (the
// reader takes whatever arrives, like an unbounded router buffer).
//
// Capture (set_capture(true)): the bytes of each connection are kept, each way,
// for a plain-HTTP connection to be taken apart afterwards (take_captures()).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tramsync::bench {

class TcpProxy {
 public:
  struct Shape {
    double rate_bps = 0;   // per direction; 0: unlimited
    int64_t delay_ms = 0;  // one way
    bool connect_rtt = true;
  };
  struct Counts {
    int64_t up = 0;    // client -> server
    int64_t down = 0;  // server -> client
    int64_t connections = 0;
    int64_t total() const { return up + down; }
    Counts operator-(const Counts& o) const { return Counts{up - o.up, down - o.down, connections - o.connections}; }
  };
  struct Capture {
    std::string up, down;
  };

  TcpProxy() = default;
  ~TcpProxy() { stop(); }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  // Listens on 127.0.0.1:0 and forwards to 127.0.0.1:upstream_port. False, with `err`, if it cannot.
  bool start(int upstream_port, std::string* err) {
    upstream_port_ = upstream_port;
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return fail(err, "socket");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return fail(err, "bind");
    if (::listen(listen_fd_, 64) != 0) return fail(err, "listen");
    socklen_t len = sizeof a;
    if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return fail(err, "getsockname");
    port_ = ntohs(a.sin_port);
    if (::pipe2(wake_, O_CLOEXEC) != 0) return fail(err, "pipe2");
    accept_thread_ = std::thread([this] { accept_loop(); });
    return true;
  }

  int port() const { return port_; }
  void set_upstream(int port) { upstream_port_ = port; }
  void set_shape(const Shape& s) {
    std::lock_guard<std::mutex> l(mu_);
    shape_ = s;
  }
  void set_capture(bool on) {
    std::lock_guard<std::mutex> l(mu_);
    capture_ = on;
  }
  Counts counts() const { return Counts{up_.load(), down_.load(), connections_.load()}; }
  int64_t active() const { return active_.load(); }

  // Waits until no connection is open (the client closed and the proxy
  // forwarded its last bytes), at most `timeout`. True if idle.
  bool wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> l(mu_);
    return idle_cv_.wait_for(l, timeout, [this] { return active_.load() == 0; });
  }

  std::vector<Capture> take_captures() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<Capture> out;
    out.swap(captures_);
    return out;
  }

  void stop() {
    if (listen_fd_ < 0) return;
    stopping_ = true;
    if (wake_[1] >= 0) {
      char c = 0;
      (void)!::write(wake_[1], &c, 1);
    }
    if (accept_thread_.joinable()) accept_thread_.join();
    // Connections still open are cut.
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto& c : conns_) {
        if (!c->finished) {
          ::shutdown(c->client, SHUT_RDWR);
          ::shutdown(c->server, SHUT_RDWR);
        }
      }
    }
    for (auto& c : conns_) {
      for (auto& t : c->threads) {
        if (t.joinable()) t.join();
      }
    }
    conns_.clear();
    ::close(listen_fd_);
    listen_fd_ = -1;
    for (int& fd : wake_) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }

 private:
  using Clock = std::chrono::steady_clock;

  struct Chunk {
    std::string bytes;  // empty: end of stream
    Clock::time_point deliver_at;
  };
  struct Pipe {  // one direction of one connection
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Chunk> queue;
    bool broken = false;
    Clock::time_point link_free;
  };
  struct Conn {
    int client = -1, server = -1;
    Shape shape;
    bool capture = false;
    Capture cap;
    Pipe up, down;
    std::atomic<int> done{0};  // directions finished
    bool finished = false;
    std::vector<std::thread> threads;
  };

  static bool fail(std::string* err, const char* what) {
    if (err) *err = std::string("proxy: ") + what + ": " + std::strerror(errno);
    return false;
  }

  void accept_loop() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      int n = ::poll(fds, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      if (stopping_ || (fds[1].revents & POLLIN)) return;
      if (!(fds[0].revents & POLLIN)) continue;
      int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      const auto accepted = Clock::now();
      int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(upstream_port_.load()));
      if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(c);
        if (s >= 0) ::close(s);
        continue;
      }
      int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto conn = std::make_shared<Conn>();
      conn->client = c;
      conn->server = s;
      {
        std::lock_guard<std::mutex> l(mu_);
        conn->shape = shape_;
        conn->capture = capture_;
        ++active_;
        // Reap connections that are over, so a long run does not keep their threads.
        for (auto it = conns_.begin(); it != conns_.end();) {
          if ((*it)->finished) {
            for (auto& t : (*it)->threads) {
              if (t.joinable()) t.join();
            }
            it = conns_.erase(it);
          } else {
            ++it;
          }
        }
        conns_.push_back(conn);
      }
      ++connections_;
      conn->up.link_free = accepted + (conn->shape.connect_rtt && conn->shape.delay_ms > 0
                                           ? std::chrono::milliseconds(2 * conn->shape.delay_ms)
                                           : std::chrono::milliseconds(0));
      conn->down.link_free = accepted;
      Conn* raw = conn.get();
      raw->threads.emplace_back([this, raw] { read_side(*raw, raw->client, raw->up, up_, true); });
      raw->threads.emplace_back([this, raw] { write_side(*raw, raw->server, raw->up); });
      raw->threads.emplace_back([this, raw] { read_side(*raw, raw->server, raw->down, down_, false); });
      raw->threads.emplace_back([this, raw] { write_side(*raw, raw->client, raw->down); });
    }
  }

  void read_side(Conn& c, int fd, Pipe& p, std::atomic<int64_t>& counter, bool is_up) {
    const bool shaped = c.shape.rate_bps > 0 || c.shape.delay_ms > 0;
    std::vector<char> buf(shaped ? 1400 : 64 * 1024);
    for (;;) {
      ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      const auto now = Clock::now();
      Chunk ch;
      if (n > 0) {
        counter += n;
        ch.bytes.assign(buf.data(), static_cast<size_t>(n));
        if (c.capture) {
          std::lock_guard<std::mutex> l(p.mu);
          (is_up ? c.cap.up : c.cap.down).append(ch.bytes);
        }
      }
      {
        std::lock_guard<std::mutex> l(p.mu);
        if (p.broken) return;
        auto start = std::max(p.link_free, now);
        if (n > 0 && c.shape.rate_bps > 0) {
          const double secs = static_cast<double>(n) * 8.0 / c.shape.rate_bps;
          p.link_free = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs));
        } else {
          p.link_free = start;
        }
        ch.deliver_at = p.link_free + std::chrono::milliseconds(c.shape.delay_ms);
        p.queue.push_back(std::move(ch));
      }
      p.cv.notify_one();
      if (n <= 0) return;  // end of stream (or an error): the writer passes it on
    }
  }

  void write_side(Conn& c, int fd, Pipe& p) {
    for (;;) {
      Chunk ch;
      {
        std::unique_lock<std::mutex> l(p.mu);
        p.cv.wait(l, [&] { return !p.queue.empty(); });
        ch = std::move(p.queue.front());
        p.queue.pop_front();
      }
      std::this_thread::sleep_until(ch.deliver_at);
      if (ch.bytes.empty()) {
        ::shutdown(fd, SHUT_WR);
        break;
      }
      size_t off = 0;
      bool ok = true;
      while (off < ch.bytes.size()) {
        ssize_t w = ::send(fd, ch.bytes.data() + off, ch.bytes.size() - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          ok = false;
          break;
        }
        off += static_cast<size_t>(w);
      }
      if (!ok) {
        // The other end is gone: stop this direction and wake its reader.
        {
          std::lock_guard<std::mutex> l(p.mu);
          p.broken = true;
        }
        ::shutdown(c.client, SHUT_RDWR);
        ::shutdown(c.server, SHUT_RDWR);
        break;
      }
    }
    if (++c.done == 2) finish(c);
  }

  void finish(Conn& c) {
    // Both directions are over: the last thread closes the sockets.
    ::close(c.client);
    ::close(c.server);
    std::lock_guard<std::mutex> l(mu_);
    if (c.capture) captures_.push_back(std::move(c.cap));
    c.finished = true;
    --active_;
    idle_cv_.notify_all();
  }

  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<int> upstream_port_{0};
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::condition_variable idle_cv_;
  Shape shape_;
  bool capture_ = false;
  std::vector<std::shared_ptr<Conn>> conns_;
  std::vector<Capture> captures_;
  std::atomic<int64_t> up_{0}, down_{0}, connections_{0}, active_{0};
};

}  // namespace tramsync::bench
