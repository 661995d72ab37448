#include "connection_guard.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace tramsync::sync {

using Clock = std::chrono::steady_clock;

struct ConnectionGuard::Slot {
  enum class Phase { kIdle, kHeaders, kBody, kHandling };
  std::mutex mu;
  ConnectionGuard* guard = nullptr;
  int fd = -1;  // our dup of the connection's socket
  Phase phase = Phase::kIdle;
  Clock::time_point since;
  std::chrono::milliseconds allowance{0};  // of kHeaders: header_timeout, plus keep_alive after an answer
  int64_t bytes = 0;                       // application data received in this phase
  int64_t body_length = 0;                 // of kBody; -1 unknown
  bool close_after = false;                // close once the answer is written
  bool cut = false;
};

namespace {

thread_local std::shared_ptr<ConnectionGuard::Slot> t_slot;
thread_local bool t_refuse = false;

int guard_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

std::string peer_of(int fd) {
  sockaddr_storage a{};
  socklen_t n = sizeof a;
  if (fd < 0 || ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) != 0) return "";
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&a)->sin_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&a)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

}  // namespace

ConnectionGuard::ConnectionGuard(GuardLimits limits,
                                 std::function<void(const std::string&, const std::string&)> on_cut)
    : limits_(limits), on_cut_(std::move(on_cut)) {}

ConnectionGuard::~ConnectionGuard() {
  stop();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : slots_) {
    std::lock_guard<std::mutex> sl(s->mu);
    if (s->fd >= 0) ::close(s->fd);
    s->fd = -1;
    s->guard = nullptr;
  }
}

void ConnectionGuard::install(SSL_CTX* ctx) {
  SSL_CTX_set_ex_data(ctx, guard_index(), this);
  SSL_CTX_set_info_callback(ctx, &ConnectionGuard::info_callback);
  SSL_CTX_set_msg_callback(ctx, &ConnectionGuard::msg_callback);
}

ConnectionGuard* ConnectionGuard::of(const SSL* ssl) {
  return static_cast<ConnectionGuard*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), guard_index()));
}

ConnectionGuard::Slot& ConnectionGuard::slot_of_this_thread() {
  if (!t_slot || t_slot->guard != this) {
    t_slot = std::make_shared<Slot>();
    t_slot->guard = this;
    std::lock_guard<std::mutex> lock(mu_);
    slots_.push_back(t_slot);
  }
  return *t_slot;
}

void ConnectionGuard::info_callback(const SSL* ssl, int where, int) {
  // A new connection: its handshake starts before anything is read. (A TLS
  // 1.3 post-handshake message also starts a "handshake"; SSL_in_before
  // tells the first one.)
  if (!(where & SSL_CB_HANDSHAKE_START) || !SSL_in_before(ssl)) return;
  ConnectionGuard* g = of(ssl);
  if (!g) return;
  Slot& s = g->slot_of_this_thread();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.fd >= 0) ::close(s.fd);
  const int sock = SSL_get_fd(ssl);
  s.fd = sock >= 0 ? ::fcntl(sock, F_DUPFD_CLOEXEC, 0) : -1;
  s.phase = Slot::Phase::kHeaders;
  s.since = Clock::now();
  s.allowance = g->limits_.header_timeout;
  s.bytes = 0;
  s.close_after = false;
  s.cut = false;
  if (t_refuse) g->cut(s, "too many connections wait for a worker");
}

void ConnectionGuard::msg_callback(int write_p, int, int content_type, const void* buf, size_t len, SSL* ssl,
                                   void*) {
  // Every record read is announced with its 5-byte header: type, version, length.
  if (write_p || content_type != SSL3_RT_HEADER || len < 5) return;
  const auto* h = static_cast<const unsigned char*>(buf);
  if (h[0] != SSL3_RT_APPLICATION_DATA || !t_slot) return;
  ConnectionGuard* g = of(ssl);
  if (!g || t_slot->guard != g) return;
  Slot& s = *t_slot;
  std::lock_guard<std::mutex> lock(s.mu);
  s.bytes += (int64_t{h[3]} << 8) | h[4];
  if (s.phase == Slot::Phase::kHeaders && s.bytes > g->limits_.header_bytes) {
    g->cut(s, "request line and headers over " + std::to_string(g->limits_.header_bytes) + " bytes");
  }
}

void ConnectionGuard::headers_read(int64_t body_length) {
  if (!t_slot || !t_slot->guard) return;
  std::lock_guard<std::mutex> lock(t_slot->mu);
  t_slot->phase = body_length == 0 ? Slot::Phase::kHandling : Slot::Phase::kBody;
  t_slot->body_length = body_length;
  t_slot->since = Clock::now();
  t_slot->bytes = 0;
}

void ConnectionGuard::body_read() {
  if (!t_slot || !t_slot->guard) return;
  std::lock_guard<std::mutex> lock(t_slot->mu);
  t_slot->phase = Slot::Phase::kHandling;
}

void ConnectionGuard::close_after_answer() {
  if (!t_slot || !t_slot->guard) return;
  std::lock_guard<std::mutex> lock(t_slot->mu);
  t_slot->close_after = true;
}

void ConnectionGuard::answered() {
  if (!t_slot || !t_slot->guard) return;
  std::lock_guard<std::mutex> lock(t_slot->mu);
  if (t_slot->close_after && !t_slot->cut && t_slot->fd >= 0) {
    // The answer is in the socket's send queue; the end of the stream follows
    // it. What the client still sends is read and dropped for a moment (at
    // most 1 s and 16 MiB), until it closes: closing a socket with unread
    // input resets the connection, and the client could lose the answer.
    const int fd = t_slot->fd;
    ::shutdown(fd, SHUT_WR);
    const auto until = Clock::now() + std::chrono::seconds(1);
    int64_t dropped = 0;
    char buf[16384];
    while (dropped < (int64_t{16} << 20)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      pollfd p{fd, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      dropped += n;
    }
    ::shutdown(fd, SHUT_RD);
    t_slot->cut = true;
    t_slot->phase = Slot::Phase::kIdle;
    return;
  }
  if (t_slot->phase == Slot::Phase::kIdle) return;
  t_slot->phase = Slot::Phase::kHeaders;
  t_slot->since = Clock::now();
  t_slot->allowance = t_slot->guard->limits_.header_timeout + t_slot->guard->limits_.keep_alive;
  t_slot->bytes = 0;
}

void ConnectionGuard::run_refused(const std::function<void()>& fn) {
  t_refuse = true;
  fn();
  t_refuse = false;
}

void ConnectionGuard::cut(Slot& s, const std::string& reason) {
  if (s.cut || s.fd < 0) return;
  s.cut = true;
  s.phase = Slot::Phase::kIdle;
  // A connection httplib has closed already (after its keep-alive timeout,
  // say) is over, not cut: nothing to do or say.
  tcp_info info{};
  socklen_t n = sizeof info;
  if (::getsockopt(s.fd, IPPROTO_TCP, TCP_INFO, &info, &n) == 0 && info.tcpi_state != TCP_ESTABLISHED &&
      info.tcpi_state != TCP_CLOSE_WAIT) {
    return;
  }
  const std::string remote = peer_of(s.fd);
  ::shutdown(s.fd, SHUT_RDWR);
  // A refused connection is counted in the once-a-second connections_refused
  // line instead: a connect flood must not write a line per connection.
  if (on_cut_ && !t_refuse) on_cut_(reason, remote);
}

void ConnectionGuard::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (watchdog_.joinable()) return;
  stopping_ = false;
  watchdog_ = std::thread([this] { watch(); });
}

void ConnectionGuard::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

void ConnectionGuard::watch() {
  // Checks ten times per header timeout, at most every 100 ms.
  const auto tick = std::clamp<std::chrono::milliseconds>(limits_.header_timeout / 10, std::chrono::milliseconds(10),
                                                          std::chrono::milliseconds(100));
  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_for(lock, tick, [this] { return stopping_; })) {
    const auto now = Clock::now();
    for (auto& sp : slots_) {
      Slot& s = *sp;
      std::lock_guard<std::mutex> sl(s.mu);
      if (s.cut || s.fd < 0) continue;
      const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - s.since);
      if (s.phase == Slot::Phase::kHeaders && elapsed > s.allowance) {
        cut(s, "request line and headers not received within " +
                   std::to_string(limits_.header_timeout.count() / 1000.0).substr(0, 4) + " s");
      } else if (s.phase == Slot::Phase::kBody && (s.body_length < 0 || s.bytes < s.body_length)) {
        // Behind when fewer bytes came than the minimum rate asks for after
        // the grace of one header timeout.
        const auto owed = elapsed - limits_.header_timeout;
        if (owed.count() > 0 && s.bytes * 1000 < limits_.min_body_bytes_per_s * owed.count()) {
          cut(s, "body arriving slower than " + std::to_string(limits_.min_body_bytes_per_s) + " bytes/s");
        }
      }
    }
  }
}

}  // namespace tramsync::sync
