// A Transport that hands requests to a SyncService in the same process: no
// sockets, no TLS. For tests and the simulator, with hooks that lose a request
// before it arrives or an answer after the server acted on it.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "tramsync/sync/service.h"
#include "tramsync/sync/transport.h"

namespace tramsync::sync {

class MemoryTransport final : public Transport {
 public:
  explicit MemoryTransport(SyncService& service, std::string remote = "memory")
      : service_(service), remote_(std::move(remote)) {}

  // Before delivery: an Error returned here is what the client sees; the
  // server never gets the request (a link that drops on the way out).
  std::function<std::optional<Error>(const Request&)> before;
  // After the server answered: an Error returned here replaces the answer (a
  // link that drops on the way back; the server did act).
  std::function<std::optional<Error>(const Request&, const Response&)> after;

  Result<Response> roundtrip(const Request& req) override {
    if (before) {
      if (auto e = before(req)) return *e;
    }
    Request r = req;
    r.remote = remote_;
    Response res = service_.handle(r);
    res.wire_bytes_sent = static_cast<int64_t>(req.body.size());
    res.wire_bytes_received = static_cast<int64_t>(res.body.size());
    if (after) {
      if (auto e = after(req, res)) return *e;
    }
    return res;
  }

 private:
  SyncService& service_;
  std::string remote_;
};

}  // namespace tramsync::sync
