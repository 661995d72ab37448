#include "tramsync/sync/https_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>

#include "connection_guard.h"
#include "tramsync/sync/protocol.h"
#include "tramsync/sync/service.h"
#include "tramsync/sync/tls.h"

namespace tramsync::sync {

using json = nlohmann::json;

namespace {

const char* const kJson = "application/json";

// Per worker thread, what the HTTP layer knows of the request it is on. A
// request is handled start to end on one worker, so a thread_local carries
// it from the pre-routing handler to the logger without touching httplib's
// (const) request. `routed` stays false for a request httplib refused before
// routing (a malformed request line): its time is then unknown.
struct InFlight {
  std::chrono::steady_clock::time_point start;
  bool routed = false;
  bool logged = false;  // logged already, by SyncService
};
thread_local InFlight t_request;

std::string endpoint_name(const std::string& path) {
  if (path == "/healthz") return "healthz";
  if (path == "/metrics") return "metrics";
  return "other";
}

const char* error_code_for(int status) {
  switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "timeout";
    case 411: return "length_required";
    case 413: return "too_large";
    case 414: return "uri_too_long";
    case 415: return "unsupported_media_type";
    case 416: return "range_not_satisfiable";
    case 431: return "headers_too_large";
    case 500: return "internal";
    case 503: return "unavailable";
    default: return status >= 500 ? "server_error" : "bad_request";
  }
}

std::string error_message_for(int status, const httplib::Request& req) {
  switch (status) {
    case 404: return "no such endpoint: " + req.path.substr(0, 100);
    case 405: return req.method.substr(0, 10) + " is not allowed on " + req.path.substr(0, 100);
    case 413:
      return "body: must be at most " + std::to_string(protocol::kMaxRequestBytes) + " bytes";
    case 414: return "the request line is too long";
    case 415: return "the body's Content-Encoding is not supported (send gzip or none)";
    case 500: return "internal error; the server log has the details";
    default: return "the request could not be handled (HTTP " + std::to_string(status) + ")";
  }
}

void reply_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), kJson);
}

// Only SO_REUSEADDR: httplib's default also sets SO_REUSEPORT, with which a
// second server started on the same port by mistake would bind without error
// and silently take half of the connections.
void socket_options(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

}  // namespace

HttpsServer::HttpsServer(const ServerConfig& config, RequestLogger& log) : config_(config), log_(log) {}

HttpsServer::~HttpsServer() = default;

Result<std::unique_ptr<HttpsServer>> HttpsServer::create(const ServerConfig& config, RequestLogger& log) {
  std::unique_ptr<HttpsServer> s(new HttpsServer(config, log));
  if (!config.cert_path.empty()) {
    auto tls_server = std::make_unique<httplib::SSLServer>(config.cert_path.c_str(), config.key_path.c_str());
    if (!tls_server->is_valid()) {
      return Error{ErrorCode::kInvalid, "serve", "certificate",
                   "could not be loaded with its key (both must be readable PEM files, and the key must be the "
                   "certificate's)",
                   config.cert_path + ", " + config.key_path};
    }
    if (auto st = tls::harden_server_context(tls_server->ssl_context()); !st) {
      return std::move(st.error()).in("serve");
    }
    GuardLimits limits;
    limits.header_timeout = std::chrono::seconds(config.read_timeout_s);
    limits.keep_alive = std::chrono::seconds(config.keep_alive_timeout_s);
    s->guard_ = std::make_unique<ConnectionGuard>(limits, [logger = &log](const std::string& why,
                                                                           const std::string& remote) {
      logger->event("connection_cut", {{"reason", why}, {"remote", remote}});
    });
    s->guard_->install(tls_server->ssl_context());
    s->http_ = std::move(tls_server);
  } else {
    s->http_ = std::make_unique<httplib::Server>();
  }

  ServiceOptions options;
  options.db_path = config.db_path;
  options.store_options.cache_mib = config.cache_mib;
  // Pushes from many stations at once queue for the one writer (db::WriteTxn);
  // a push may wait its turn this long, well inside the client's 60 s read
  // timeout, before it is answered 503.
  options.store_options.busy_timeout_ms = 20'000;
  options.enroll_attempts_per_minute = config.enroll_attempts_per_minute;
  options.trust_forwarded_for = config.trust_forwarded_for;
  options.on_request = [logger = &log](const RequestLog& r) {
    t_request.logged = true;
    logger->request(r);
  };
  s->service_ = std::make_unique<SyncService>(std::move(options), std::make_shared<TokenAuthorizer>());
  s->install_handlers();
  return s;
}

namespace {
// httplib's worker pool, counting the connections accepted and not yet
// picked up by a worker. A worker serves one connection until the client
// closes it, so while connections wait, each answer says "Connection: close"
// (the post-routing handler below): the client closes and reconnects behind
// the others instead of keeping its worker for a whole sync. Without it, 100
// stations pushing 20 batches each at once to 64 workers left 36 of them
// waiting past their TLS handshake timeout, six attempts in a row
// (bench/ingest_bench.cpp).
//
// httplib's own queue has no bound: connections opened and left idle faster
// than the workers time them out would pile up, each an open descriptor. With
// a guard (TLS), a connection accepted while `max_waiting` others wait is
// refused at once, on the accepting thread: its handshake is cut before it
// reads a byte (ConnectionGuard::run_refused). The client retries later.
class FairPool final : public httplib::TaskQueue {
 public:
  FairPool(size_t threads, std::shared_ptr<std::atomic<int64_t>> waiting, int64_t max_waiting, bool can_refuse,
           std::function<void()> on_refused)
      : pool_(threads),
        waiting_(std::move(waiting)),
        max_waiting_(max_waiting),
        can_refuse_(can_refuse),
        on_refused_(std::move(on_refused)) {}
  void enqueue(std::function<void()> fn) override {
    if (can_refuse_ && waiting_->load() >= max_waiting_) {
      ConnectionGuard::run_refused(fn);
      on_refused_();
      return;
    }
    ++*waiting_;
    pool_.enqueue([fn = std::move(fn), waiting = waiting_] {
      --*waiting;
      fn();
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
  std::shared_ptr<std::atomic<int64_t>> waiting_;
  int64_t max_waiting_;
  bool can_refuse_;
  std::function<void()> on_refused_;
};

// What httplib 0.11.4 accepts and should not: a body coding other than gzip,
// a request whose body length is ambiguous (two Content-Length headers, a Content-Length that is not a
// number, Content-Length with Transfer-Encoding, a transfer coding other than
// chunked) -- the ground of request smuggling behind a proxy -- and headers by
// the thousand. The refusal closes the connection, so a body that was never
// read is not taken for the next request. Empty when the request may go on.
constexpr size_t kMaxHeaders = 100;
constexpr size_t kMaxHeaderBytes = 32 * 1024;

std::pair<int, std::string> framing_refusal(const httplib::Request& req) {
  const size_t lengths = req.get_header_value_count("Content-Length");
  const size_t codings = req.get_header_value_count("Transfer-Encoding");
  if (req.headers.size() > kMaxHeaders) {
    return {431, "headers: at most " + std::to_string(kMaxHeaders) + " are accepted, got " +
                     std::to_string(req.headers.size())};
  }
  size_t header_bytes = 0;
  for (const auto& [k, v] : req.headers) header_bytes += k.size() + v.size() + 4;
  if (header_bytes > kMaxHeaderBytes) {
    return {431, "headers: at most " + std::to_string(kMaxHeaderBytes) + " bytes are accepted"};
  }
  if (lengths > 1) return {400, "Content-Length: must be given once, got " + std::to_string(lengths)};
  if (lengths == 1) {
    const std::string v = req.get_header_value("Content-Length");
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) {
      return {400, "Content-Length: must be a decimal number of bytes, got \"" + v.substr(0, 20) + "\""};
    }
    // Refused here, not by httplib's payload limit: httplib would first read
    // and drop all the announced bytes, a worker held for as long as the
    // sender likes.
    if (std::stoll(v) > protocol::kMaxRequestBytes) {
      return {413, "Content-Length: a body of at most " + std::to_string(protocol::kMaxRequestBytes) +
                       " bytes is accepted, got " + v};
    }
  }
  // Without a length httplib reads a request's body until the connection
  // closes: one byte per read timeout would hold a worker for ever.
  if (lengths == 0 && codings == 0 && (req.method == "POST" || req.method == "PUT" || req.method == "PATCH")) {
    return {411, "Content-Length: a " + req.method + " must say how long its body is (Content-Length or chunked)"};
  }
  // httplib inflates gzip (and deflate) and passes any other coding on as if
  // it were none; the protocol has gzip only.
  if (req.get_header_value_count("Content-Encoding") > 1) return {400, "Content-Encoding: must be given once"};
  if (std::string enc = req.get_header_value("Content-Encoding"); !enc.empty()) {
    for (auto& ch : enc) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (enc != "gzip" && enc != "identity") {
      return {415, "Content-Encoding: " + enc.substr(0, 20) + " is not supported (send gzip or none)"};
    }
  }
  if (codings > 1) return {400, "Transfer-Encoding: must be given once, got " + std::to_string(codings)};
  if (codings == 1) {
    if (lengths == 1) return {400, "Content-Length and Transfer-Encoding: a request may carry only one of them"};
    std::string v = req.get_header_value("Transfer-Encoding");
    for (auto& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (v != "chunked") {
      return {400, "Transfer-Encoding: only chunked is accepted, got \"" + v.substr(0, 20) + "\""};
    }
  }
  return {0, ""};
}

// A request's body length as the guard needs it: -1 for chunked.
int64_t body_length(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding")) return -1;
  const std::string v = req.get_header_value("Content-Length");
  return v.empty() ? 0 : std::stoll(v);
}
}  // namespace

void HttpsServer::install_handlers() {
  httplib::Server& http = *http_;
  // The handlers hold plain pointers: the service and the log outlive the
  // server (members declared before http_, and the caller's log).
  SyncService* service = service_.get();
  RequestLogger* log = &log_;

  const unsigned threads = config_.threads;
  const int64_t max_waiting = config_.max_waiting_connections ? static_cast<int64_t>(config_.max_waiting_connections)
                                                              : 8 * static_cast<int64_t>(threads);
  auto waiting = std::make_shared<std::atomic<int64_t>>(0);
  // At most one line a second about refused connections, with how many.
  auto refused = std::make_shared<std::atomic<int64_t>>(0);
  auto last_said = std::make_shared<std::atomic<int64_t>>(0);
  auto on_refused = [log, refused, last_said, max_waiting] {
    ++*refused;
    const int64_t now_s =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    int64_t said = last_said->load();
    if (now_s > said && last_said->compare_exchange_strong(said, now_s)) {
      log->event("connections_refused", {{"count", refused->exchange(0)},
                                         {"reason", std::to_string(max_waiting) + " connections wait for a worker"}});
    }
  };
  const bool can_refuse = guard_ != nullptr;
  http.new_task_queue = [threads, waiting, max_waiting, can_refuse, on_refused] {
    return new FairPool(threads, waiting, max_waiting, can_refuse, on_refused);
  };
  http.set_post_routing_handler([waiting](const httplib::Request&, httplib::Response& res) {
    if (waiting->load() > 0) res.set_header("Connection", "close");
  });
  http.set_socket_options(socket_options);
  http.set_payload_max_length(static_cast<size_t>(protocol::kMaxRequestBytes));
  http.set_read_timeout(config_.read_timeout_s, 0);
  http.set_write_timeout(config_.write_timeout_s, 0);
  http.set_keep_alive_timeout(config_.keep_alive_timeout_s);
  http.set_keep_alive_max_count(config_.keep_alive_max_count);

  // Each request's start, for the log line of requests sync does not log,
  // and the framing checks, before anything reads the body. (A body announced
  // as larger than kMaxRequestBytes is refused here, before httplib would
  // read and drop it.)
  http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    t_request = InFlight{std::chrono::steady_clock::now(), true, false};
    auto [status, why] = framing_refusal(req);
    if (status != 0) {
      reply_json(res, status, {{"error", why}, {"code", error_code_for(status)}});
      res.set_header("Connection", "close");
      ConnectionGuard::headers_read(0);
      ConnectionGuard::close_after_answer();
      return httplib::Server::HandlerResponse::Handled;
    }
    ConnectionGuard::headers_read(body_length(req));
    return httplib::Server::HandlerResponse::Unhandled;
  });

  service->mount(http);

  http.Get("/healthz", [service](const httplib::Request&, httplib::Response& res) {
    // Cheap, but it touches the file: a store from the pool and its identity.
    auto lease = service->lease();
    if (!lease) {
      return reply_json(res, 503, {{"status", "unavailable"}, {"error", lease.error().message()},
                                   {"code", "unavailable"}});
    }
    auto id = (*lease)->identity();
    if (!id) {
      return reply_json(res, 503, {{"status", "unavailable"}, {"error", id.error().message()},
                                   {"code", "unavailable"}});
    }
    reply_json(res, 200, {{"status", "ok"}});
  });

  http.Get("/metrics", [service](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(service->metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  });

  // JSON for every error httplib answers itself (no route, a body too large,
  // a malformed request). Answers that already have a body -- sync's JSON
  // errors -- are left alone. This
  // runs before httplib sets Content-Length and compresses the body.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req,
                                                                   httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    reply_json(res, res.status,
               {{"error", error_message_for(res.status, req)}, {"code", error_code_for(res.status)}});
    return httplib::Server::HandlerResponse::Handled;
  }));

  // Only this server's own handlers can get here (sync's never throw): the
  // cause goes to the log, the caller gets a JSON 500.
  http.set_exception_handler([log](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    reply_json(res, 500, {{"error", error_message_for(500, req)}, {"code", "internal"}});
    log->event("handler_failed", {{"endpoint", endpoint_name(req.path)}, {"error", "internal: " + what}});
  });

  http.set_logger([log, trust = config_.trust_forwarded_for](const httplib::Request& req,
                                                             const httplib::Response& res) {
    ConnectionGuard::answered();
    InFlight seen = t_request;
    t_request = InFlight{};
    if (seen.logged) return;  // SyncService logged it (every request it answers, refusals included)
    double ms = seen.routed
                    ? std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - seen.start).count()
                    : 0.0;
    std::string error = res.status >= 400 ? error_code_for(res.status) : "";
    const std::string remote =
        client_address(req.remote_addr, req.get_header_value("X-Forwarded-For"), trust);
    log->request(endpoint_name(req.path), req.method, remote, res.status,
                static_cast<int64_t>(req.body.size()), static_cast<int64_t>(res.body.size()), ms, error);
  });
}

Result<int> HttpsServer::bind() {
  const ListenAddress& a = config_.listen;
  int port = a.port;
  if (port == 0) {
    port = http_->bind_to_any_port(a.host);
    if (port < 0) port = 0;
  } else if (!http_->bind_to_port(a.host, port)) {
    port = 0;
  }
  if (port == 0) {
    return Error{ErrorCode::kIo, "serve", "listen",
                 "could not be bound (the port is in use, the address is not one of this machine's, or a port "
                 "below 1024 needs privileges)",
                 a.host_port(a.port)};
  }
  return port;
}

bool HttpsServer::run() {
  if (guard_) guard_->start();
  const bool ok = http_->listen_after_bind();
  if (guard_) guard_->stop();
  return ok;
}

bool HttpsServer::stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_) return true;
  // httplib's stop() does nothing before the accept loop has started: the
  // caller must try again rather than believe the server told.
  if (!http_->is_running()) return false;
  http_->stop();
  stopped_ = true;
  return true;
}

int64_t HttpsServer::sync_requests() const { return service_->metrics().requests; }

}  // namespace tramsync::sync
