// A node's HTTP(S) server (the centre's, or a station hub's): sync's endpoints (SyncService::mount)
// plus /healthz and /metrics, JSON errors for everything else, the request log,
// and the limits that keep one client from exhausting the node (request size,
// timeouts, a bounded worker pool).
//
// Lifecycle: create() loads the certificate and mounts the endpoints, bind()
// takes the port, run() serves on the calling thread until stop(). stop() may
// be called from any thread (serve's signal thread does); requests already
// being handled finish before run() returns, and each push is one SQLite
// transaction, so nothing is left half-written.
//
// httplib stays inside https_server.cpp: this header names no library type.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "tramsync/sync/listen_address.h"
#include "tramsync/sync/request_log.h"
#include "tramsync/core/status.h"

namespace httplib {
class Server;
}
namespace tramsync::sync {
class SyncService;
class ConnectionGuard;
}

namespace tramsync::sync {

// The page cache of each of the server's database connections, in MiB: the
// reports at the centre read the derived tables' indexes, and re-reading
// their pages from the OS costs more than the query (bench/README.md).
inline constexpr int kDefaultServerCacheMib = 64;

struct ServerConfig {
  std::string db_path;
  ListenAddress listen;
  // Both set: HTTPS with this PEM certificate and key. Both empty: plain HTTP,
  // which the caller allows only on loopback (--insecure-http).
  std::string cert_path, key_path;
  unsigned threads = 8;  // worker threads; each holds one connection at a time
  // One read or write. With TLS also: a request's line and headers must all
  // arrive within the read timeout (after the handshake starts, or after the
  // previous answer plus the keep-alive timeout), and its body at 1 KiB/s or
  // faster once that much time has passed; else the connection is cut
  // (ConnectionGuard, sync/src/connection_guard.h).
  int read_timeout_s = 30;
  int write_timeout_s = 30;
  int keep_alive_timeout_s = 5;  // an idle kept-alive connection holds a worker this long
  std::size_t keep_alive_max_count = 100;
  // Accepted connections waiting for a worker; with TLS, one more is refused
  // at once (closed). 0: 8 per worker thread.
  std::size_t max_waiting_connections = 0;
  int enroll_attempts_per_minute = 10;  // per client address (ServiceOptions)
  // Behind a reverse proxy on this machine: a connection from a loopback
  // address is the proxy's, and the client is the last X-Forwarded-For entry
  // (client_address in service.h). Off, X-Forwarded-For is ignored.
  bool trust_forwarded_for = false;
  int cache_mib = kDefaultServerCacheMib;  // SQLite page cache per pooled connection (StoreOptions::cache_mib)
};

class HttpsServer {
 public:
  // Makes the server. Errors: a certificate or key that cannot be loaded, or
  // TLS settings OpenSSL refuses (kInvalid / kIo). `log` must outlive the server.
  static Result<std::unique_ptr<HttpsServer>> create(const ServerConfig& config, RequestLogger& log);
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  // Binds and listens on the configured address; returns the port, the one
  // the system chose when the configured port is 0. Call once, before run().
  Result<int> bind();

  // Accepts and serves connections on the worker pool until stop(); returns
  // after the workers have finished. False if the listening socket failed.
  bool run();

  // Asks run() to return. Thread-safe and idempotent. Returns false while
  // run() has not started accepting yet (the request would be lost: call
  // again a little later), true once the server has been told.
  bool stop();

  // Sync requests handled so far (for the final log line).
  int64_t sync_requests() const;

 private:
  HttpsServer(const ServerConfig& config, RequestLogger& log);
  void install_handlers();

  ServerConfig config_;
  RequestLogger& log_;
  // Declared before http_: the server's workers use the service and the
  // guard (TLS only), so the server goes first.
  std::unique_ptr<SyncService> service_;
  std::unique_ptr<ConnectionGuard> guard_;
  std::unique_ptr<httplib::Server> http_;
  std::mutex stop_mu_;
  bool stopped_ = false;  // GUARDED_BY(stop_mu_)
};

}  // namespace tramsync::sync
