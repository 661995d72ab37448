// The server's log: one JSON object per line on stderr, so it can be read by
// a person and by a log shipper alike. Requests (the sync endpoints through
// ServiceOptions::on_request, the others through the HTTP layer) and events
// (started, stopped).
//
// What is logged is chosen here, field by field: never a token, an enrollment
// code, a request or response body, or a person's name -- sync's RequestLog
// holds none of those, and nothing else is copied in.
//
// Thread-safety: every method may be called from any thread; lines never
// interleave.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <mutex>
#include <string>

#include "tramsync/sync/service.h"

namespace tramsync::sync {

class RequestLogger {
 public:
  explicit RequestLogger(std::FILE* out = stderr) : out_(out) {}

  // A sync request, as SyncService reports it.
  void request(const RequestLog& r);
  // A request the server answered itself (/healthz, /metrics, an unknown path).
  void request(const std::string& endpoint, const std::string& method, const std::string& remote, int status,
               int64_t bytes_in, int64_t bytes_out, double ms, const std::string& error);
  // {"ts":..., "event": name, ...fields}, fields in the order given
  void event(const std::string& name, nlohmann::ordered_json fields = nlohmann::ordered_json::object());

 private:
  void write(nlohmann::ordered_json line);
  std::FILE* out_;
  std::mutex mu_;
};

// The current UTC time as ISO 8601 with milliseconds: "2025-06-01T03:04:05.678Z".
std::string utc_timestamp();

}  // namespace tramsync::sync
