// Running a node's sync server until SIGTERM or SIGINT: what `tramsync-server
// serve` (the centre) and `station-cli serve` (a station hub for its mobile
// devices) share. Both serve the same endpoints (SyncService) over HTTPS with
// the same limits; only the file behind them differs.
#pragma once

#include <functional>
#include <string>

#include "tramsync/core/status.h"
#include "tramsync/sync/https_server.h"
#include "tramsync/sync/request_log.h"

namespace tramsync::sync {

struct ServeParams {
  std::string db_path;
  std::string listen;                // HOST:PORT; port 0 picks a free one
  std::string cert, key;             // a PEM certificate and its key, or
  std::string self_signed_dir;       // a self-signed certificate made (once) in this directory, or
  bool insecure_http = false;        // plain HTTP, on loopback only
  unsigned threads = 0;              // 0: default_threads()
  int cache_mib = kDefaultServerCacheMib;  // SQLite page cache per connection
  // The guards (ServerConfig); 0 or unset keeps ServerConfig's default.
  int read_timeout_s = 0, write_timeout_s = 0, keep_alive_timeout_s = 0;
  unsigned max_waiting_connections = 0;
  int enroll_attempts_per_minute = 0;
  bool trust_forwarded_for = false;
};

struct ServeSetup {
  ServerConfig config;
  std::string fingerprint;  // SHA-256 of the certificate, for pinning ("" without TLS)
};

// Idle kept-alive connections and slow 2G transfers each hold a worker for
// their whole length, so the pool is not sized by CPUs alone.
unsigned default_threads();

// Checks the address and the certificate options and makes or loads the
// certificate, before the node's file is opened. On an error, `*usage` says
// whether it was the command line's (a bad address, no certificate option,
// plain HTTP off loopback) rather than the files'.
Result<ServeSetup> serve_setup(const ServeParams& params, bool* usage);

struct Listening {
  std::string url;  // https://HOST:PORT with the port actually bound
  int port = 0;
  bool tls = true;
};

// Binds, calls `on_listening`, and serves until SIGTERM or SIGINT; requests in
// progress finish first. Logs "started" and "stopped" events to `log`. Errors:
// the certificate cannot be loaded, the address cannot be bound, or the
// listening socket failed.
Status serve_until_signal(const ServeSetup& setup, RequestLogger& log,
                          const std::function<void(const Listening&)>& on_listening);

}  // namespace tramsync::sync
