// How a client's requests reach a server. The sync client (client.h) speaks in
// Requests and Responses (message.h); a Transport carries them: over HTTPS to a
// real server (make_https_transport), or in memory to a SyncService in the
// same process (tests and the simulator), where faults can be injected.
#pragma once

#include <memory>
#include <string>

#include "tramsync/core/status.h"
#include "tramsync/sync/message.h"

namespace tramsync::sync {

class Transport {
 public:
  virtual ~Transport() = default;
  // One exchange. A Response (of any status) means the server answered.
  // Errors:
  //   kIo      the exchange did not complete: no connection, the link dropped,
  //            a timeout. The server may or may not have processed the
  //            request; every sync request is safe to send again.
  //   kRefused the server is not the one this device trusts (certificate
  //            mismatch or not signed by the CA): never retried.
  //   kInvalid the request could not be made (a bad URL).
  virtual Result<Response> roundtrip(const Request& req) = 0;
};

struct HttpsOptions {
  std::string url;      // https://HOST:PORT (http:// only to a loopback address)
  std::string pin;      // SHA-256 fingerprint of the server's certificate, or
  std::string ca_file;  // a PEM file of CAs to verify it against (one of the two for https)
  int connect_timeout_ms = 10'000;
  int read_timeout_ms = 60'000;  // per read; a 2G link gets a whole batch in much less
  bool gzip = true;              // compress request bodies and accept compressed answers
};

// A transport over cpp-httplib with one kept-alive connection. Request bodies
// are gzipped here (Content-Encoding: gzip) and answers inflated here, so
// wire_bytes_sent/received count what crossed the link: bodies as sent plus
// the request line, status line and headers.
Result<std::unique_ptr<Transport>> make_https_transport(const HttpsOptions& options);

// The parts of a server URL. kInvalid (field "server") for anything but
// http(s)://HOST[:PORT][/], HOST a name, an IPv4 address or [IPv6].
struct ServerUrl {
  std::string scheme, host;
  int port = 0;
};
Result<ServerUrl> parse_server_url(const std::string& url);

}  // namespace tramsync::sync
