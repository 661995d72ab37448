// What cpp-httplib 0.11.4 does not bound on its own, bounded for a TLS server:
// how long a request may take to arrive and how many bytes its headers may
// take, and how many accepted connections may wait for a worker.
//
// httplib's read timeout applies to each read, not to a request: a client that
// trickles one byte per read timeout (slowloris) holds a worker forever, and
// its header reader keeps every header line, however many, however long. A
// worker serves one connection at a time, so 64 such clients stop the server.
//
// The guard watches each connection through OpenSSL callbacks on the server's
// SSL_CTX, which run on the worker thread that serves the connection: the
// handshake's start (a new connection: its socket is noted), and each TLS
// record's header as it is read (its length counts the bytes received). The
// HTTP layer tells it when a request's headers are in (pre-routing), when its
// body has been read, and when the answer has gone (the logger). A watchdog
// thread shuts down, with shutdown(2), the socket of a connection that
// - has not delivered a request's line and headers within `header_timeout`
//   (counted from the handshake's start, or after the previous answer plus
//   `keep_alive`), or
// - delivers a body slower than `min_body_bytes_per_s` once `header_timeout`
//   has passed.
// A connection whose request line and headers exceed `header_bytes` is shut
// down at once, from the record callback. The worker's blocked read then sees
// the end of the stream and httplib closes the connection.
//
// The guard holds a dup of each socket it watches, so a descriptor number the
// kernel hands to a newer connection is never shut down by mistake; the dup
// is closed when its worker takes its next connection (at most one per worker
// stays open meanwhile, its socket already shut down by httplib).
//
// Plain HTTP (--insecure-http, loopback only) has no such hooks and is not
// guarded; in production a proxy in front does this (docs/deployment.md).
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <condition_variable>

namespace tramsync::sync {

struct GuardLimits {
  std::chrono::milliseconds header_timeout{30'000};
  std::chrono::milliseconds keep_alive{5'000};
  int64_t header_bytes = 64 * 1024;
  int64_t min_body_bytes_per_s = 1024;
};

class ConnectionGuard {
 public:
  // `on_cut(reason, remote)` is called (from the watchdog or a worker) for
  // each connection the guard shuts down.
  ConnectionGuard(GuardLimits limits, std::function<void(const std::string&, const std::string&)> on_cut);
  ~ConnectionGuard();  // stops the watchdog
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  // Sets the callbacks on `ctx`, which must outlive nothing of the guard's:
  // the guard must outlive every connection of `ctx`.
  void install(SSL_CTX* ctx);

  // Starts and stops the watchdog thread (idempotent).
  void start();
  void stop();

  // On the worker thread, about the connection it serves (no-ops elsewhere):
  // the request's headers are in and `body_length` bytes of body follow
  // (-1: chunked, unknown);
  static void headers_read(int64_t body_length);
  // its body has been read;
  static void body_read();
  // its answer has been written: the next request may come, unless
  static void answered();
  // the request was refused before its body was read whole: then the
  // connection is closed once the answer has been written, so that the rest
  // of the body is never read as a request of its own. (httplib keeps a
  // connection alive whatever the answer's Connection header says.)
  static void close_after_answer();

  // Runs `fn` (httplib's task for a newly accepted connection) so that the
  // connection's handshake is refused at once: for a connection that would
  // otherwise wait behind too many others.
  static void run_refused(const std::function<void()>& fn);

  struct Slot;

 private:
  static void info_callback(const SSL* ssl, int where, int ret);
  static void msg_callback(int write_p, int version, int content_type, const void* buf, size_t len, SSL* ssl,
                           void* arg);
  static ConnectionGuard* of(const SSL* ssl);
  Slot& slot_of_this_thread();
  void cut(Slot& s, const std::string& reason);  // s.mu held
  void watch();

  GuardLimits limits_;
  std::function<void(const std::string&, const std::string&)> on_cut_;
  std::mutex mu_;
  std::vector<std::shared_ptr<Slot>> slots_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                     // GUARDED_BY(mu_)
  std::condition_variable wake_;
  std::thread watchdog_;
};

}  // namespace tramsync::sync
