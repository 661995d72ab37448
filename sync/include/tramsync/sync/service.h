// The sync endpoints (/v1/enroll, /v1/push, /v1/pull, /v1/status) over a node's
// store. handle() answers one Request with a Response and knows nothing of
// sockets, so the same code serves the central server, a station hub and an
// in-memory transport; mount() puts it on any cpp-httplib server.
// docs/protocol.md describes what the endpoints accept and answer.
//
// Thread-safety: a SyncService may be used by many threads at once (all of an
// HTTP server's workers). Each request borrows a Store (one SQLite connection)
// from a pool for its duration, so no connection is used by two threads at
// once; the pool grows to the number of concurrent requests. SQLite serialises
// writes.
// Handlers never throw: anything unexpected becomes a JSON 500 with a request
// id, and the cause goes to the request log.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tramsync/core/clock.h"
#include "tramsync/core/replica.h"
#include "tramsync/core/status.h"
#include "tramsync/core/store.h"
#include "tramsync/sync/message.h"

namespace httplib {
class Server;
}

namespace tramsync::sync {

// Who is calling, and what they may read and write.
struct Caller {
  DeviceInfo device;
  Scope read = Scope::station("");
  Scope write = Scope::station("");
  bool may_write = true;  // reviewers read only
  bool may_write_catalogue = false;
  // A station's own device (its hub) relays the changes of the station's
  // other devices; a mobile device sends only its own.
  bool may_relay = false;
};

// Decides who a bearer token belongs to.
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  // kNotFound: no such token (401); kRefused: revoked (401, saying so).
  virtual Result<Caller> authorize(Store& store, const std::string& bearer_token) = 0;
};

// Tokens as enrolled in the store's device registry (stored as SHA-256 hashes,
// compared in constant time).
class TokenAuthorizer final : public Authorizer {
 public:
  Result<Caller> authorize(Store& store, const std::string& bearer_token) override;
};

// One line per request for the server's log. Never holds a token, a code or a
// patient's name.
struct RequestLog {
  std::string request_id, endpoint, remote, device, station;
  int status = 0;
  int64_t changes = 0, bytes_in = 0, bytes_out = 0;
  double ms = 0;
  std::string error;
};

struct ServiceOptions {
  std::string db_path;
  StoreOptions store_options;           // clock for tests
  int enroll_attempts_per_minute = 10;  // per remote address, against guessing codes
  bool trust_forwarded_for = false;     // client_address below
  std::function<void(const RequestLog&)> on_request;
};

// The client's address for the log and the enrollment rate limit: `peer`, the
// connection's, unless `trust_forwarded_for` is set and the peer is a loopback
// address (a reverse proxy on the same machine): then the last entry of
// `x_forwarded_for`, the address the proxy saw (nginx's
// $proxy_add_x_forwarded_for appends it). Entries before the last are the
// client's own claims and are never used.
std::string client_address(const std::string& peer, const std::string& x_forwarded_for, bool trust_forwarded_for);

struct Metrics {
  std::atomic<int64_t> requests{0}, errors{0}, changes_applied{0}, duplicates{0}, quarantined{0}, conflicts{0},
      pulled{0}, enrolled{0};
};

class SyncService {
 public:
  SyncService(ServiceOptions options, std::shared_ptr<Authorizer> authorizer);
  ~SyncService();
  SyncService(const SyncService&) = delete;
  SyncService& operator=(const SyncService&) = delete;

  // Answers one request to /v1/enroll, /v1/push, /v1/pull or /v1/status (404
  // JSON for other paths, 405 for a wrong method). `req.body` is the plain
  // (decompressed) body.
  Response handle(const Request& req);

  // Answers `req` with a JSON error (status, code derived from it, message),
  // logged and counted like any request. For transports that refuse a request
  // before handle() sees it (a body over the limit, a corrupt gzip stream).
  Response reject(const Request& req, int status, const std::string& message);

  // Routes the four endpoints of `server` to handle(). Request bodies are read
  // through a bounded reader: more than protocol::kMaxRequestBytes after
  // decompression is refused with 413 without being held in memory.
  void mount(httplib::Server& server);

  // Prometheus text: request and change counters, per-station last sync.
  std::string metrics_text();
  const Metrics& metrics() const { return metrics_; }

  // Borrows a store for the calling thread's request (returned on destruction).
  class Lease;
  Result<Lease> lease();

 private:
  struct Pool;
  struct Writer;
  struct Handlers;
  ServiceOptions options_;
  std::shared_ptr<Authorizer> authorizer_;
  std::unique_ptr<Pool> pool_;
  std::unique_ptr<Writer> writer_;
  Metrics metrics_;
  std::mutex rate_mu_;
  std::vector<std::pair<std::string, std::vector<int64_t>>> enroll_attempts_;  // GUARDED_BY(rate_mu_)
  std::atomic<uint64_t> request_counter_{0};
};

class SyncService::Lease {
 public:
  Lease(SyncService::Pool* pool, std::unique_ptr<Store> store);
  Lease(Lease&& o) noexcept;
  Lease& operator=(Lease&&) = delete;
  ~Lease();
  Store& operator*() { return *store_; }
  Store* operator->() { return store_.get(); }

 private:
  SyncService::Pool* pool_;
  std::unique_ptr<Store> store_;
};

}  // namespace tramsync::sync
