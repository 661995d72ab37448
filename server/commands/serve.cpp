// serve: run the central node's HTTPS server until SIGTERM or SIGINT.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>

#include "central_server.h"
#include "cli.h"
#include "listen_address.h"
#include "tramsync/sync/address.h"
#include "request_log.h"
#include "tramsync/sync/tls.h"

namespace tramsync::server {

namespace {

struct ServeOptions {
  std::string listen;
  std::string cert, key, self_signed_dir;
  bool insecure_http = false;
  unsigned threads = 0;  // 0: the default
  std::string name = kDefaultCentralName;
};

// Idle kept-alive connections and slow 2G transfers each hold a worker for
// their whole length, so the pool is not sized by CPUs alone.
unsigned default_threads() { return std::max(8u, std::thread::hardware_concurrency()); }

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

  void start(CentralServer& server) {
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

int run_serve(Context& c, const ServeOptions& o) {
  c.one_line_json = true;
  auto listen = parse_listen_address(o.listen);
  if (!listen) {
    c.fail(std::move(listen.error()).in("serve"));
    return kExitUsage;
  }

  ServerConfig config;
  config.db_path = c.db_path;
  config.listen = *listen;
  config.threads = o.threads ? o.threads : default_threads();
  std::string fingerprint;
  if (o.insecure_http) {
    if (!sync::is_loopback_host(listen->host)) {
      return c.fail("serve: --insecure-http is allowed only on a loopback address (127.0.0.1, ::1, localhost), "
                    "not " + listen->host +
                    ": anyone on the network could read the records and the tokens. Use --cert/--key or "
                    "--self-signed DIR");
    }
  } else if (!o.self_signed_dir.empty()) {
    auto files = tls::ensure_self_signed(o.self_signed_dir);
    if (!files) return c.fail(std::move(files.error()).in("serve"));
    config.cert_path = files->cert_path;
    config.key_path = files->key_path;
    fingerprint = files->fingerprint;
  } else if (!o.cert.empty() && !o.key.empty()) {
    auto fp = tls::certificate_fingerprint(o.cert);
    if (!fp) return c.fail(std::move(fp.error()).in("serve"));
    config.cert_path = o.cert;
    config.key_path = o.key;
    fingerprint = *fp;
  } else {
    c.fail("serve: give a certificate (--cert FILE --key FILE), or --self-signed DIR to make one, or "
           "--insecure-http for a loopback-only test server");
    return kExitUsage;
  }

  // Make or check the central file before anything listens.
  if (!c.open(/*create=*/true, o.name)) return kExitFailed;

  RequestLogger log;
  // Blocks the signals before any thread exists (httplib starts its workers
  // in run()), so all of them inherit the mask.
  SignalStopper stopper;
  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error on that connection, not the end of the server

  auto made = CentralServer::create(config, log);
  if (!made) return c.fail(made.error());
  CentralServer& server = **made;
  auto port = server.bind();
  if (!port) return c.fail(port.error());

  const bool tls = !config.cert_path.empty();
  const std::string url = listen->url(tls ? "https" : "http", *port);
  if (c.as_json) {
    nlohmann::ordered_json line = {{"listening", url}, {"port", *port}};
    if (tls) line["fingerprint"] = fingerprint;
    std::cout << line.dump() << std::endl;
  } else {
    if (tls) std::cout << "fingerprint SHA256 " << fingerprint << '\n';
    std::cout << "listening on " << url << std::endl;
  }
  const auto started = std::chrono::steady_clock::now();
  log.event("started", {{"listening", url}, {"tls", tls}, {"threads", config.threads}, {"db", c.db_path}});

  stopper.start(server);
  const bool ran = server.run();
  stopper.finish();

  const double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  log.event("stopped", {{"signal", signal_name(stopper.signal())},
                        {"sync_requests", server.sync_requests()},
                        {"uptime_s", static_cast<int64_t>(uptime)}});
  if (!ran && stopper.signal() == 0) return c.fail("serve: the server stopped accepting connections");
  return kExitOk;
}

}  // namespace

void setup_serve(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Run the sync server (HTTPS) until stopped with SIGTERM or Ctrl-C");
  cmd->add_option("--listen", o->listen, "HOST:PORT to listen on; port 0 picks a free one (it is printed)")
      ->type_name("HOST:PORT")
      ->required();
  auto* cert = cmd->add_option("--cert", o->cert, "PEM certificate (chain) for HTTPS")->type_name("FILE");
  auto* key = cmd->add_option("--key", o->key, "PEM private key of --cert")->type_name("FILE");
  auto* self = cmd->add_option("--self-signed", o->self_signed_dir,
                               "Use (making it the first time) a self-signed certificate in DIR; stations pin its "
                               "fingerprint")
                   ->type_name("DIR");
  auto* insecure = cmd->add_flag("--insecure-http", o->insecure_http,
                                 "Plain HTTP, for tests on this machine only (loopback addresses)");
  cert->needs(key);
  key->needs(cert);
  self->excludes(cert)->excludes(key);
  insecure->excludes(cert)->excludes(key)->excludes(self);
  cmd->add_option("--threads", o->threads, "Worker threads (default: the number of CPUs, at least 8)")
      ->check(CLI::Range(1u, 1024u));
  cmd->add_option("--name", o->name, "Name of the centre, when the central file is new (default: centre)");
  cmd->footer(
      "On start it prints the certificate's fingerprint (stations pin it) and the address:\n"
      "  fingerprint SHA256 AB:CD:...\n"
      "  listening on https://HOST:PORT\n"
      "(with --json one line: {\"listening\":...,\"port\":...,\"fingerprint\":...}). The request log goes to stderr,\n"
      "one JSON object per line. SIGTERM or Ctrl-C stops it after the requests in progress.\n"
      "Endpoints: /v1/enroll, /v1/push, /v1/pull, /v1/status (docs/protocol.md), /healthz, /metrics.\n"
      "Examples:\n"
      "  tramsync-server --db central.db serve --listen 0.0.0.0:8443 --self-signed /var/lib/tramsync/tls\n"
      "  tramsync-server --db central.db serve --listen [::]:443 --cert fullchain.pem --key privkey.pem\n"
      "  tramsync-server --db test.db serve --listen 127.0.0.1:0 --insecure-http --json");
  on_run(cmd, ctx, [o](Context& c) { return run_serve(c, *o); });
}

}  // namespace tramsync::server
