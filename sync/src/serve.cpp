// serve_until_signal: a node's HTTPS server until SIGTERM or SIGINT (serve.h).
#include "tramsync/sync/serve.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "tramsync/sync/address.h"
#include "tramsync/sync/tls.h"

namespace tramsync::sync {

namespace {

// Stops `server` when SIGTERM or SIGINT arrives. The signals are blocked in
// every thread (the mask is set before any thread exists and inherited), and
// this one thread takes them with sigtimedwait, so no handler runs at an
// arbitrary point and stop() is called from an ordinary thread.
class SignalStopper {
 public:
  SignalStopper() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  ~SignalStopper() { finish(); }
  SignalStopper(const SignalStopper&) = delete;
  SignalStopper& operator=(const SignalStopper&) = delete;

  void start(HttpsServer& server) {
    thread_ = std::thread([this, &server] {
      while (!finished_) {
        timespec wait{0, 100'000'000};
        int sig = sigtimedwait(&set_, nullptr, &wait);
        if (sig > 0) {
          signal_ = sig;
          break;
        }
      }
      // stop() is not heard before the accept loop runs: keep telling.
      while (signal_ != 0 && !finished_ && !server.stop()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }

  // The server has returned (or never started): let the thread go.
  void finish() {
    finished_ = true;
    if (thread_.joinable()) thread_.join();
  }

  int signal() const { return signal_; }

 private:
  sigset_t set_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
  std::atomic<int> signal_{0};
};

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    default: return "";
  }
}

}  // namespace

// A worker serves one connection at a time, and a station's sync keeps its
// connection for all its requests: with 8 workers, 100 stations syncing at
// once left most of them waiting past the client's TLS handshake timeout
// (bench/ingest_bench.cpp). Pushes queue for the one writer anyway
// (SyncService), so the workers mostly wait; each costs a stack and, while it
// holds one, a pooled store's page cache.
unsigned default_threads() { return std::max(64u, 8 * std::thread::hardware_concurrency()); }

Result<ServeSetup> serve_setup(const ServeParams& o, bool* usage) {
  *usage = false;
  auto listen = parse_listen_address(o.listen);
  if (!listen) {
    *usage = true;
    return std::move(listen.error()).in("serve");
  }
  ServeSetup s;
  s.config.db_path = o.db_path;
  s.config.listen = *listen;
  s.config.threads = o.threads ? o.threads : default_threads();
  s.config.cache_mib = o.cache_mib;
  if (o.read_timeout_s > 0) s.config.read_timeout_s = o.read_timeout_s;
  if (o.write_timeout_s > 0) s.config.write_timeout_s = o.write_timeout_s;
  if (o.keep_alive_timeout_s > 0) s.config.keep_alive_timeout_s = o.keep_alive_timeout_s;
  s.config.max_waiting_connections = o.max_waiting_connections;
  if (o.enroll_attempts_per_minute > 0) s.config.enroll_attempts_per_minute = o.enroll_attempts_per_minute;
  s.config.trust_forwarded_for = o.trust_forwarded_for;
  if (o.insecure_http) {
    if (!is_loopback_host(listen->host)) {
      return Error{ErrorCode::kInvalid, "serve", "--insecure-http",
                   "is allowed only on a loopback address (127.0.0.1, ::1, localhost): anyone on the network could "
                   "read the records and the tokens. Use --cert/--key or --self-signed DIR",
                   listen->host};
    }
  } else if (!o.self_signed_dir.empty()) {
    auto files = tls::ensure_self_signed(o.self_signed_dir);
    if (!files) return std::move(files.error()).in("serve");
    s.config.cert_path = files->cert_path;
    s.config.key_path = files->key_path;
    s.fingerprint = files->fingerprint;
  } else if (!o.cert.empty() && !o.key.empty()) {
    auto fp = tls::certificate_fingerprint(o.cert);
    if (!fp) return std::move(fp.error()).in("serve");
    s.config.cert_path = o.cert;
    s.config.key_path = o.key;
    s.fingerprint = *fp;
  } else {
    *usage = true;
    return Error{ErrorCode::kInvalid, "serve", "certificate",
                 "give one (--cert FILE --key FILE), or --self-signed DIR to make one, or --insecure-http for a "
                 "loopback-only test server",
                 ""};
  }
  return s;
}

Status serve_until_signal(const ServeSetup& setup, RequestLogger& log,
                          const std::function<void(const Listening&)>& on_listening) {
  // Blocks the signals before any thread exists (httplib starts its workers
  // in run()), so all of them inherit the mask.
  SignalStopper stopper;
  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error on that connection, not the end of the server

  auto made = HttpsServer::create(setup.config, log);
  if (!made) return made.error();
  HttpsServer& server = **made;
  auto port = server.bind();
  if (!port) return port.error();

  Listening l;
  l.tls = !setup.config.cert_path.empty();
  l.port = *port;
  l.url = setup.config.listen.url(l.tls ? "https" : "http", *port);
  on_listening(l);
  const auto started = std::chrono::steady_clock::now();
  log.event("started", {{"listening", l.url}, {"tls", l.tls}, {"threads", setup.config.threads},
                        {"db", setup.config.db_path}});

  stopper.start(server);
  const bool ran = server.run();
  stopper.finish();

  const double uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  log.event("stopped", {{"signal", signal_name(stopper.signal())},
                        {"sync_requests", server.sync_requests()},
                        {"uptime_s", static_cast<int64_t>(uptime)}});
  if (!ran && stopper.signal() == 0) {
    return Error{ErrorCode::kIo, "serve", "", "the server stopped accepting connections", ""};
  }
  return {};
}

}  // namespace tramsync::sync
