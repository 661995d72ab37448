// serve: run the central node's HTTPS server until SIGTERM or SIGINT.
#include <iostream>

#include "cli.h"
#include "tramsync/sync/serve.h"

namespace tramsync::server {

namespace {

struct ServeOptions {
  sync::ServeParams params;
  std::string name = kDefaultCentralName;
};

int run_serve(Context& c, ServeOptions o) {
  c.one_line_json = true;
  o.params.db_path = c.db_path;
  bool usage = false;
  auto setup = sync::serve_setup(o.params, &usage);
  if (!setup) {
    c.fail(setup.error());
    return usage ? kExitUsage : kExitFailed;
  }
  // Make or check the central file before anything listens.
  if (!c.open(/*create=*/true, o.name)) return kExitFailed;

  sync::RequestLogger log;
  auto st = sync::serve_until_signal(*setup, log, [&](const sync::Listening& l) {
    if (c.as_json) {
      nlohmann::ordered_json line = {{"listening", l.url}, {"port", l.port}};
      if (l.tls) line["fingerprint"] = setup->fingerprint;
      std::cout << line.dump() << std::endl;
    } else {
      if (l.tls) std::cout << "fingerprint SHA256 " << setup->fingerprint << '\n';
      std::cout << "listening on " << l.url << std::endl;
    }
  });
  if (!st) return c.fail(st.error());
  return kExitOk;
}

}  // namespace

void setup_serve(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Run the sync server (HTTPS) until stopped with SIGTERM or Ctrl-C");
  cmd->add_option("--listen", o->params.listen, "HOST:PORT to listen on; port 0 picks a free one (it is printed)")
      ->type_name("HOST:PORT")
      ->required();
  auto* cert = cmd->add_option("--cert", o->params.cert, "PEM certificate (chain) for HTTPS")->type_name("FILE");
  auto* key = cmd->add_option("--key", o->params.key, "PEM private key of --cert")->type_name("FILE");
  auto* self = cmd->add_option("--self-signed", o->params.self_signed_dir,
                               "Use (making it the first time) a self-signed certificate in DIR; stations pin its "
                               "fingerprint")
                   ->type_name("DIR");
  auto* insecure = cmd->add_flag("--insecure-http", o->params.insecure_http,
                                 "Plain HTTP, for tests on this machine only (loopback addresses)");
  cert->needs(key);
  key->needs(cert);
  self->excludes(cert)->excludes(key);
  insecure->excludes(cert)->excludes(key)->excludes(self);
  cmd->add_option("--threads", o->params.threads, "Worker threads (default: 8 per CPU, at least 64)")
      ->check(CLI::Range(1u, 1024u));
  cmd->add_option("--cache-mib", o->params.cache_mib,
                  "SQLite page cache of each database connection, in MiB (default " +
                      std::to_string(sync::kDefaultServerCacheMib) + "; one connection per busy worker)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--read-timeout", o->params.read_timeout_s,
                  "Seconds a read may wait; with TLS also the most a request's line and headers may take, and the "
                  "grace before its body must come at 1 KiB/s or faster (default 30)")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--write-timeout", o->params.write_timeout_s, "Seconds a write may wait (default 30)")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--keep-alive-timeout", o->params.keep_alive_timeout_s,
                  "Seconds an idle connection is kept open for its next request (default 5)")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--max-waiting", o->params.max_waiting_connections,
                  "Connections that may wait for a worker; with TLS more are closed at once (default 8 per thread)")
      ->check(CLI::Range(1u, 1000000u));
  cmd->add_option("--enroll-attempts-per-minute", o->params.enroll_attempts_per_minute,
                  "Enrollment attempts allowed per client address and minute, against guessed codes (default 10)")
      ->check(CLI::Range(1, 100000));
  cmd->add_flag("--trust-forwarded-for", o->params.trust_forwarded_for,
                "Behind a reverse proxy on this machine: for connections from loopback, the client is the last "
                "X-Forwarded-For address (for the log and the enrollment limit)");
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
