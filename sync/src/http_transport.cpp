// The client's HTTPS transport over cpp-httplib (see transport.h).
#include <httplib.h>

#include <cctype>
#include <string>

#include "gzip.h"
#include "tramsync/sync/address.h"
#include "tramsync/sync/protocol.h"
#include "tramsync/sync/tls.h"
#include "tramsync/sync/transport.h"

namespace tramsync::sync {

namespace {

// Largest answer body accepted after inflating (a pull page is far smaller).
constexpr size_t kMaxResponseBytes = 64u * 1024 * 1024;

Error bad_url(const std::string& url, const std::string& rule) {
  return Error{ErrorCode::kInvalid, "", "server", rule, url};
}

}  // namespace

Result<ServerUrl> parse_server_url(const std::string& url) {
  ServerUrl u;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    u.scheme = "https";
    rest = url.substr(8);
    u.port = 443;
  } else if (url.rfind("http://", 0) == 0) {
    u.scheme = "http";
    rest = url.substr(7);
    u.port = 80;
  } else {
    return bad_url(url, "must start with https:// (for example https://192.168.1.10:8443)");
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos || rest.find('?') != std::string::npos) {
    return bad_url(url, "must be only https://HOST:PORT, without a path");
  }
  auto hp = split_host_port(rest);
  if (!hp) return bad_url(url, hp.error().rule);
  u.host = hp->host;
  if (u.host.empty()) return bad_url(url, "must name a host");
  for (char c : u.host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':') {
      return bad_url(url, "has a character a host name cannot have");
    }
  }
  if (!hp->port.empty() || rest.back() == ':') {
    auto port = parse_port(hp->port, 1);
    if (!port) return bad_url(url, "must have a port number between 1 and 65535");
    u.port = *port;
  }
  return u;
}

namespace {

class HttpsTransport final : public Transport {
 public:
  HttpsTransport(HttpsOptions options, ServerUrl url) : options_(std::move(options)), url_(std::move(url)) {}

  Status connect() {
    if (url_.scheme == "https") {
      if (!options_.pin.empty()) pin_ = std::make_unique<tls::PinnedVerifier>(options_.pin);
      auto ssl = std::make_unique<httplib::SSLClient>(url_.host, url_.port);
      if (pin_) {
        ssl->enable_server_certificate_verification(false);  // the pin decides; see tls.h
        if (auto st = pin_->install(ssl->ssl_context()); !st) return st;
      } else if (!options_.ca_file.empty()) {
        ssl->set_ca_cert_path(options_.ca_file.c_str());
        ssl->enable_server_certificate_verification(true);
        if (auto st = tls::harden_client_context(ssl->ssl_context()); !st) return st;
      } else {
        return Error{ErrorCode::kInvalid, "", "server certificate",
                     "must be pinned (--pin SHA256 as the server printed it) or checked against a CA file (--ca FILE)",
                     ""};
      }
      client_ = std::move(ssl);
    } else {
      if (!is_loopback_host(url_.host)) {
        return bad_url(options_.url, "must use https:// (plain http is only for a server on this same machine)");
      }
      client_ = std::make_unique<httplib::ClientImpl>(url_.host, url_.port);
    }
    client_->set_connection_timeout(options_.connect_timeout_ms / 1000, (options_.connect_timeout_ms % 1000) * 1000);
    client_->set_read_timeout(options_.read_timeout_ms / 1000, (options_.read_timeout_ms % 1000) * 1000);
    client_->set_write_timeout(options_.read_timeout_ms / 1000, (options_.read_timeout_ms % 1000) * 1000);
    client_->set_keep_alive(true);
    client_->set_decompress(false);  // inflated here, so the bytes on the wire are counted
    client_->set_follow_location(false);  // never: a redirect would escape the pin (tls.h)
    return {};
  }

  Result<Response> roundtrip(const Request& req) override {
    httplib::Headers headers;
    int64_t sent = static_cast<int64_t>(req.method.size() + req.path.size() + 12);  // "GET /p HTTP/1.1\r\n"
    auto add = [&](const std::string& k, const std::string& v) {
      headers.emplace(k, v);
      sent += static_cast<int64_t>(k.size() + v.size() + 4);
    };
    for (const auto& [k, v] : req.headers) add(k, v);
    if (options_.gzip) add("Accept-Encoding", "gzip");
    // httplib would add these two itself, uncounted (and its User-Agent is
    // longer): named here, every request header is in the count.
    if (!req.headers.count("Accept")) add("Accept", "*/*");
    if (!req.headers.count("User-Agent")) add("User-Agent", "tramsync/1");
    sent += static_cast<int64_t>(url_.host.size()) + 14 + 2;  // Host: host:port, and the blank line

    std::string path = req.path;
    if (!req.params.empty()) {
      path += '?';
      bool first = true;
      for (const auto& [k, v] : req.params) {
        if (!first) path += '&';
        first = false;
        path += httplib::detail::encode_query_param(k) + "=" + httplib::detail::encode_query_param(v);
      }
      sent += static_cast<int64_t>(path.size() - req.path.size());
    }

    httplib::Result res{nullptr, httplib::Error::Unknown};
    if (req.method == "POST") {
      std::string body = req.body;
      if (options_.gzip && body.size() > 256) {
        body = gzip::compress(req.body);
        add("Content-Encoding", "gzip");
      }
      sent += static_cast<int64_t>(body.size()) + 50;  // the body, Content-Type and Content-Length
      res = client_->Post(path, headers, body, "application/json");
    } else {
      res = client_->Get(path, headers);
    }
    if (!res) return transport_error(res.error());

    Response out;
    out.status = res->status;
    int64_t received = 17;  // "HTTP/1.1 200 OK\r\n"
    for (const auto& [k, v] : res->headers) {
      out.headers.emplace(k, v);
      received += static_cast<int64_t>(k.size() + v.size() + 4);
    }
    received += static_cast<int64_t>(res->body.size()) + 2;
    const std::string encoding = out.header("Content-Encoding");
    if (encoding.empty() || encoding == "identity") {
      out.body = std::move(res->body);
    } else if (encoding == "gzip" || encoding == "deflate") {
      auto plain = gzip::decompress(res->body, kMaxResponseBytes);
      if (!plain) {
        return Error{ErrorCode::kIo, "sync", "answer", "from the server is a corrupt or oversized gzip stream", ""};
      }
      out.body = std::move(*plain);
      out.headers.erase("Content-Encoding");
    } else {
      return Error{ErrorCode::kIo, "sync", "answer", "uses an encoding this client does not know", encoding};
    }
    out.wire_bytes_sent = sent;
    out.wire_bytes_received = received;
    return out;
  }

 private:
  Error transport_error(httplib::Error e) {
    const std::string where = url_.host + ":" + std::to_string(url_.port);
    if (pin_ && pin_->rejected()) return pin_->mismatch_error();
    switch (e) {
      case httplib::Error::Connection:
        return Error{ErrorCode::kIo, "connect", "server", "cannot be reached (no connection)", where};
      case httplib::Error::ConnectionTimeout:
        return Error{ErrorCode::kIo, "connect", "server", "did not answer in time (connection timed out)", where};
      case httplib::Error::SSLServerVerification:
        return Error{ErrorCode::kRefused, "connect", "server certificate",
                     "is not signed by the CA in " + options_.ca_file + " or does not name this host", where};
      case httplib::Error::SSLConnection:
        return Error{ErrorCode::kIo, "connect", "TLS handshake",
                     "failed (the link dropped, or this is not a TramSync HTTPS server)", where};
      case httplib::Error::SSLLoadingCerts:
        return Error{ErrorCode::kInvalid, "connect", "CA file", "cannot be read as PEM certificates",
                     options_.ca_file};
      case httplib::Error::Read:
        return Error{ErrorCode::kIo, "sync", "link", "dropped while reading the answer", where};
      case httplib::Error::Write:
        return Error{ErrorCode::kIo, "sync", "link", "dropped while sending", where};
      default:
        return Error{ErrorCode::kIo, "sync", "link", "failed: " + httplib::to_string(e), where};
    }
  }

  HttpsOptions options_;
  ServerUrl url_;
  std::unique_ptr<tls::PinnedVerifier> pin_;  // declared before the client: outlives its handshakes
  std::unique_ptr<httplib::ClientImpl> client_;
};

}  // namespace

Result<std::unique_ptr<Transport>> make_https_transport(const HttpsOptions& options) {
  auto url = parse_server_url(options.url);
  if (!url) return url.error();
  auto t = std::make_unique<HttpsTransport>(options, *url);
  if (auto st = t->connect(); !st) return st.error();
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace tramsync::sync
