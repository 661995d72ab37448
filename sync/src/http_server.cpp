// SyncService on a cpp-httplib server: turns httplib's request into a
// sync::Request (reading the body through a bounded reader) and the answer back.
#include <httplib.h>

#include <strings.h>

#include <string>

#include "connection_guard.h"
#include "tramsync/sync/address.h"
#include "tramsync/sync/protocol.h"
#include "tramsync/sync/service.h"

namespace tramsync::sync {

std::string client_address(const std::string& peer, const std::string& x_forwarded_for, bool trust_forwarded_for) {
  if (!trust_forwarded_for || !is_loopback_host(peer) || x_forwarded_for.empty()) return peer;
  std::string last = x_forwarded_for.substr(x_forwarded_for.rfind(',') + 1);
  const auto b = last.find_first_not_of(" \t");
  const auto e = last.find_last_not_of(" \t");
  last = b == std::string::npos ? "" : last.substr(b, e - b + 1);
  // An address, not text for the log: hex digits, dots and colons only.
  if (last.empty() || last.size() > 45 || last.find_first_not_of("0123456789abcdefABCDEF.:") != std::string::npos) {
    return peer;
  }
  return last;
}

namespace {

Request from_httplib(const httplib::Request& hreq, bool trust_forwarded_for) {
  Request req;
  req.method = hreq.method;
  req.path = hreq.path;
  for (const auto& [k, v] : hreq.params) req.params.emplace(k, v);  // the first of repeated names wins
  for (const auto& [k, v] : hreq.headers) req.headers.emplace(k, v);
  req.remote = client_address(hreq.remote_addr, hreq.get_header_value("X-Forwarded-For"), trust_forwarded_for);
  return req;
}

void to_httplib(const Response& res, httplib::Response& hres) {
  hres.status = res.status;
  std::string type = "application/json";
  for (const auto& [k, v] : res.headers) {
    if (strcasecmp(k.c_str(), "Content-Type") == 0) {
      type = v;
    } else {
      hres.set_header(k, v);
    }
  }
  // httplib gzips a JSON body when the client's Accept-Encoding allows it.
  hres.set_content(res.body, type);
}

}  // namespace

void SyncService::mount(httplib::Server& server) {
  // A client may gzip what it sends; httplib inflates it as it arrives, and
  // this reader stops taking bytes past the limit, so a small body that
  // inflates to gigabytes is refused without being held.
  auto with_body = [this](const httplib::Request& hreq, httplib::Response& hres,
                          const httplib::ContentReader& reader) {
    Request req = from_httplib(hreq, options_.trust_forwarded_for);
    bool too_large = false;
    bool ok = reader([&](const char* data, size_t n) {
      if (req.body.size() + n > static_cast<size_t>(protocol::kMaxRequestBytes)) {
        too_large = true;
        return false;
      }
      req.body.append(data, n);
      return true;
    });
    ConnectionGuard::body_read();
    // httplib itself refuses a Content-Length over the server's payload limit
    // (it drains the body and sets 413) before this reader sees a byte.
    if (!ok && hres.status == 413) too_large = true;
    if (too_large || !ok) {
      // What is left of the body must not be read as the next request.
      hres.set_header("Connection", "close");
      ConnectionGuard::close_after_answer();
      req.body.clear();
      to_httplib(reject(req, too_large ? 413 : 400,
                        too_large ? "body: must be at most " + std::to_string(protocol::kMaxRequestBytes) +
                                        " bytes after decompression"
                                  : "body: could not be read (truncated, or a corrupt gzip stream)"),
                 hres);
      return;
    }
    to_httplib(handle(req), hres);
  };
  auto without_body = [this](const httplib::Request& hreq, httplib::Response& hres) {
    to_httplib(handle(from_httplib(hreq, options_.trust_forwarded_for)), hres);
  };
  for (const char* path : {"/v1/enroll", "/v1/push", "/v1/renew", "/v1/pull", "/v1/status"}) {
    server.Post(path, with_body);
    server.Get(path, without_body);
  }
  // Reviewers' read-only reports (and a clear 405 for other methods).
  server.Get(R"(/v1/reports/([A-Za-z0-9_-]{1,40}))", without_body);
  server.Post(R"(/v1/reports/([A-Za-z0-9_-]{1,40}))", with_body);
  // Reviewers' conflicts and quarantine; resolving a conflict is their one write.
  for (const char* path : {"/v1/conflicts", "/v1/quarantine", R"(/v1/conflicts/([A-Za-z0-9-]{1,64})/resolve)"}) {
    server.Get(path, without_body);
    server.Post(path, with_body);
  }
}

}  // namespace tramsync::sync
