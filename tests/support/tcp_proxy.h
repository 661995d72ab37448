// A TCP proxy on 127.0.0.1 for the benchmarks and the fault tests: sits
// between a client and a server, counts the bytes each way (TLS records
// included: it never looks inside), can shape the link like a slow mobile one
// and can break it (cut connections, stall them).
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
// Faults (set_faults, drawn for each connection when it is accepted, from one
// seeded generator, so a seed gives the same faults to the same sequence of
// connections):
//   cut         the probability that a connection is cut: after a number of
//               bytes (both directions together) drawn in [cut_min_bytes,
//               cut_max_bytes], the rest of the chunk that crosses it is
//               dropped and both sockets are shut down, as when a mobile
//               link drops mid-request or mid-answer;
//   stall_min_bytes, stall_max_bytes  every so many bytes (drawn in that
//               range; 0: never) a connection stalls: nothing moves in the
//               direction that crossed the mark for a time drawn in
//               [stall_min_ms, stall_max_ms];
//   max_cuts, max_stalls  bound the faults of the whole run, so a sync with
//               a bounded number of retries is sure to get through.
// fault_counts() says how many of each happened.
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
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace tramsync::testing {

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
  struct Faults {
    uint64_t seed = 0;
    double cut = 0;  // probability per connection
    int64_t cut_min_bytes = 0, cut_max_bytes = 0;
    int64_t stall_min_bytes = 0, stall_max_bytes = 0;  // 0: no stalls
    int64_t stall_min_ms = 0, stall_max_ms = 0;
    int64_t max_cuts = 1'000'000, max_stalls = 1'000'000;
  };
  struct FaultCounts {
    int64_t cuts = 0, stalls = 0;
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
  void set_faults(const Faults& f) {
    std::lock_guard<std::mutex> l(mu_);
    faults_ = f;
    fault_rng_.seed(f.seed);
    planned_cuts_ = 0;
  }
  FaultCounts fault_counts() const { return FaultCounts{cuts_.load(), stalls_.load()}; }
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
    bool cut = false;  // end of stream by a cut link: both sockets go down
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
    int64_t cut_at = -1;            // bytes; -1: never
    std::atomic<int64_t> moved{0};  // bytes, both directions
    std::mutex fault_mu;            // the next stall, and its generator
    int64_t stall_at = -1;
    std::mt19937_64 rng;
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
        plan_faults(*conn);
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
      bool cut_now = false, stall_now = false;
      int64_t stall_ms = 0;
      if (n > 0) {
        const int64_t before = c.moved.fetch_add(n);
        if (c.cut_at >= 0 && before + n > c.cut_at) {
          n = std::max<int64_t>(0, c.cut_at - before);  // what got through before the link dropped
          cut_now = true;
        } else {
          stall_ms = next_stall(c, before + n);
          stall_now = stall_ms > 0;
        }
      }
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
        if (stall_now) {
          start += std::chrono::milliseconds(stall_ms);
        }
        if (n > 0 && c.shape.rate_bps > 0) {
          const double secs = static_cast<double>(n) * 8.0 / c.shape.rate_bps;
          p.link_free = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs));
        } else {
          p.link_free = start;
        }
        ch.deliver_at = p.link_free + std::chrono::milliseconds(c.shape.delay_ms);
        if (cut_now) {
          if (!ch.bytes.empty()) p.queue.push_back(ch);
          ch.bytes.clear();
          ch.cut = true;
          ++cuts_;
        }
        p.queue.push_back(std::move(ch));
      }
      p.cv.notify_one();
      if (n <= 0 || cut_now) return;  // end of stream (or an error, or a cut): the writer passes it on
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
      if (ch.cut) {
        {
          std::lock_guard<std::mutex> l(p.mu);
          p.broken = true;
        }
        ::shutdown(c.client, SHUT_RDWR);
        ::shutdown(c.server, SHUT_RDWR);
        break;
      }
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

  static int64_t draw(std::mt19937_64& rng, int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, std::max(lo, hi))(rng);
  }

  // Draws this connection's faults (under mu_, in accept order, so a seed
  // gives the same faults to the same sequence of connections).
  void plan_faults(Conn& c) {
    const Faults& f = faults_;
    c.rng.seed(fault_rng_());
    if (f.cut > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(fault_rng_) < f.cut &&
        planned_cuts_ < f.max_cuts) {
      ++planned_cuts_;
      c.cut_at = draw(fault_rng_, f.cut_min_bytes, f.cut_max_bytes);
    }
    if (f.stall_max_bytes > 0) c.stall_at = draw(c.rng, f.stall_min_bytes, f.stall_max_bytes);
  }

  // The stall (ms) due once the connection has moved `moved` bytes, or 0;
  // the next one is drawn further on.
  int64_t next_stall(Conn& c, int64_t moved) {
    std::lock_guard<std::mutex> l(c.fault_mu);
    if (c.stall_at < 0 || moved <= c.stall_at) return 0;
    Faults f;
    {
      std::lock_guard<std::mutex> g(mu_);
      f = faults_;
    }
    c.stall_at = moved + draw(c.rng, f.stall_min_bytes, f.stall_max_bytes);
    if (stalls_.load() >= f.max_stalls) return 0;
    ++stalls_;
    return draw(c.rng, f.stall_min_ms, f.stall_max_ms);
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
  Faults faults_;
  std::mt19937_64 fault_rng_;
  int64_t planned_cuts_ = 0;
  std::vector<std::shared_ptr<Conn>> conns_;
  std::vector<Capture> captures_;
  std::atomic<int64_t> up_{0}, down_{0}, connections_{0}, active_{0}, cuts_{0}, stalls_{0};
};

}  // namespace tramsync::testing
