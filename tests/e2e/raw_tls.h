// A raw connection to a server under test, for requests no well-behaved client
// sends: bytes written exactly as given over TLS (OpenSSL directly, the
// server's certificate not checked) or over plain TCP, and what comes back
// read until the server closes, a whole HTTP answer has come, or a deadline.
//
// Blocking sockets; reads wait with poll, never with sleeps. One RawConnection
// per connection; not thread-safe.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

#include "server_process.h"

namespace tramsync::e2e {

class RawConnection {
 public:
  // Connects to 127.0.0.1:port, then does the TLS handshake when `tls`.
  // Throws when either fails.
  explicit RawConnection(int port, bool tls = true) {
    ignore_sigpipe();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed");
    }
    if (!tls) return;
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      ERR_clear_error();
      throw std::runtime_error("TLS handshake with 127.0.0.1:" + std::to_string(port) + " failed");
    }
  }
  ~RawConnection() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Writes all of `bytes`; false when the server has closed the connection.
  bool send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const size_t n = bytes.size() - done;
      const int chunk = static_cast<int>(n > (1u << 20) ? (1u << 20) : n);
      ssize_t w = ssl_ ? SSL_write(ssl_, bytes.data() + done, chunk)
                       : ::send(fd_, bytes.data() + done, static_cast<size_t>(chunk), MSG_NOSIGNAL);
      if (w <= 0) {
        ERR_clear_error();
        return false;
      }
      done += static_cast<size_t>(w);
    }
    return true;
  }

  struct Received {
    std::string data;
    bool closed = false;  // the server closed (or reset) the connection
    // The status of the first answer in `data`, 0 when there is none.
    int status() const {
      if (data.rfind("HTTP/1.", 0) != 0 || data.size() < 12) return 0;
      return std::atoi(data.substr(9, 3).c_str());
    }
    // The body of the first answer (after the blank line).
    std::string body() const {
      auto p = data.find("\r\n\r\n");
      return p == std::string::npos ? "" : data.substr(p + 4);
    }
    // How many answers `data` holds.
    int answers() const {
      int n = 0;
      for (size_t p = data.find("HTTP/1."); p != std::string::npos; p = data.find("HTTP/1.", p + 1)) ++n;
      return n;
    }
  };

  // Reads until the server closes, or, when `stop_at_answer`, until one whole
  // answer (headers and Content-Length bytes) has come; at most `timeout`.
  Received receive(std::chrono::milliseconds timeout, bool stop_at_answer = true) {
    Received r;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (stop_at_answer && whole_answer(r.data)) return r;
      if (!ssl_ || SSL_pending(ssl_) == 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return r;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      }
      char buf[16384];
      ssize_t n = ssl_ ? SSL_read(ssl_, buf, sizeof buf) : ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        ERR_clear_error();
        r.closed = true;
        return r;
      }
      r.data.append(buf, static_cast<size_t>(n));
    }
  }

  // Waits (poll, at most `timeout`) for the server to close the connection,
  // discarding anything it sends; true if it did.
  bool closed_within(std::chrono::milliseconds timeout) { return receive(timeout, false).closed; }

 private:
  static bool whole_answer(const std::string& d) {
    auto end = d.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::string head = d.substr(0, end);
    for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto cl = head.find("\r\ncontent-length:");
    if (cl == std::string::npos) return true;
    return d.size() >= end + 4 + std::stoul(head.substr(cl + 17));
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

}  // namespace tramsync::e2e
