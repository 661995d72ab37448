// One HTTP exchange as the sync protocol sees it, independent of any HTTP
// library: the handlers (SyncService::handle) take a Request and give a
// Response, and a client's Transport carries them. cpp-httplib is one way to
// move them (sync/src/http_transport.cpp, SyncService::mount); a simulator or a
// unit test can hand them over in memory.
//
// Bodies are always the plain (decompressed) JSON text; compression is the
// transport's business.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace tramsync::sync {

// Header names compare case-insensitively, as HTTP says.
struct HeaderLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using Headers = std::map<std::string, std::string, HeaderLess>;

struct Request {
  std::string method;                         // "GET" or "POST"
  std::string path;                           // "/v1/push"
  std::map<std::string, std::string> params;  // query parameters, decoded
  Headers headers;
  std::string body;
  std::string remote;  // the caller's address, for rate limits and logs

  std::string header(const std::string& name) const;
};

struct Response {
  int status = 0;
  Headers headers;
  std::string body;
  // Bytes that crossed the wire for this exchange, as the transport counted
  // them (request and response bodies as sent, i.e. compressed, plus headers
  // where the transport can see them). 0 when not measured.
  int64_t wire_bytes_sent = 0, wire_bytes_received = 0;

  std::string header(const std::string& name) const;
};

}  // namespace tramsync::sync
