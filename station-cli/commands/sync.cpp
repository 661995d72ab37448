// enroll and sync: joining a server and exchanging changes with it.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "tramsync/sync/client.h"
#include "tramsync/sync/protocol.h"
#include "tramsync/sync/transport.h"

namespace tramsync::cli {

namespace {

struct EnrollOptions {
  std::string server, code, ca, pin, name;
};

struct SyncCmdOptions {
  std::string server;
  int attempts = 6;
  int64_t batch = 0;   // changes per request; 0: the protocol's default
  int timeout_s = 60;  // per read or write on the link
};

std::string human_bytes(int64_t b) {
  char buf[32];
  if (b < 1024) {
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  } else if (b < 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(b) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(b) / (1024 * 1024));
  }
  return buf;
}

// The peer `server` names (its URL or node id), or the only / first one.
std::optional<PeerState> choose_peer(Store& store, const std::string& server) {
  auto peers = store.peers();
  for (const auto& p : peers) {
    if (server.empty() ? !p.url.empty() : (p.url == server || p.id == server)) return p;
  }
  return std::nullopt;
}

// A one-line progress bar on stderr, rewritten in place.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  // "link problem (REASON); retry N in S s", the reason cut to `reason_max`.
  static std::string retry_text(const sync::SyncProgress& p, size_t reason_max) {
    return "link problem (" + p.retry_reason.substr(0, reason_max) + "); retry " + std::to_string(p.attempt) +
           " in " + std::to_string((p.retry_in_ms + 999) / 1000) + " s";
  }
  ~ProgressLine() { finish(); }
  void show(const sync::SyncProgress& p) {
    if (!enabled_) {
      // No terminal (a script, a log file): no bar, but a retry still gets
      // one line, so whoever reads the log knows why the sync took so long.
      if (p.phase == sync::SyncProgress::Phase::kRetry) {
        std::fprintf(stderr, "sync: %s\n", retry_text(p, std::string::npos).c_str());
        std::fflush(stderr);
      }
      return;
    }
    std::string line;
    if (p.phase == sync::SyncProgress::Phase::kRetry) {
      line = retry_text(p, 60);
    } else if (p.phase == sync::SyncProgress::Phase::kPull && p.pull_end > 0) {
      // Receiving: how far through the server's log (a new device's first sync).
      const int width = 20;
      const int64_t pos = std::min(p.pull_position, p.pull_end);
      const int filled = static_cast<int>(width * pos / p.pull_end);
      line = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] " +
             std::to_string(100 * pos / p.pull_end) + "% · sent " + std::to_string(p.sent) + " · received " +
             std::to_string(p.received) + " · " + human_bytes(p.bytes_sent) + " up, " + human_bytes(p.bytes_received) +
             " down";
    } else {
      const int64_t total = std::max<int64_t>(p.to_send, 1);
      const int width = 20;
      const int filled = static_cast<int>(width * std::min<int64_t>(p.sent, total) / total);
      line = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] sent " + std::to_string(p.sent) +
             "/" + std::to_string(p.to_send) + " · received " + std::to_string(p.received) + " · " +
             human_bytes(p.bytes_sent) + " up, " + human_bytes(p.bytes_received) + " down";
    }
    std::fprintf(stderr, "\r%-100s", line.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void finish() {
    if (shown_) std::fprintf(stderr, "\r%-100s\r", "");
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
};

Result<std::unique_ptr<sync::Transport>> transport_for(const std::string& url, const std::string& pin,
                                                       const std::string& ca_file, int timeout_s = 0) {
  sync::HttpsOptions o;
  o.url = url;
  o.pin = pin;
  o.ca_file = ca_file;
  if (timeout_s > 0) o.read_timeout_ms = timeout_s * 1000;
  return sync::make_https_transport(o);
}

}  // namespace

void setup_sync(CLI::App& app, Context& ctx) {
  {
    auto opt = std::make_shared<EnrollOptions>();
    auto* cmd = app.add_subcommand("enroll", "Join a server (the centre or a station hub) with a one-time code");
    cmd->add_option("--server", opt->server, "The server's address, https://HOST:PORT")->required();
    cmd->add_option("--code", opt->code, "The one-time enrollment code the server printed")->required();
    auto* ca = cmd->add_option("--ca", opt->ca, "Trust the server's certificate if this CA file (PEM) signed it");
    auto* pin = cmd->add_option("--pin", opt->pin,
                                "Trust exactly the certificate with this SHA-256 fingerprint (as the server printed)");
    ca->excludes(pin);
    cmd->add_option("--name", opt->name, "This device's name, for a new file (default: device)");
    cmd->footer(
        "Works on a new file (it is created as a device of the code's station) and on a station file made with\n"
        "`init` before the station ever reached the centre (its records then sync like any others).\n"
        "Example:\n"
        "  station-cli enroll --server https://10.0.0.5:8443 --code 7KQ4-MZ2W-HX9C --pin AB:CD:...:EF");
    on_run(cmd, ctx, [opt](Context& c) {
      // The URL, the pin or CA file: all checked before a file is made.
      auto transport = transport_for(opt->server, opt->pin, opt->ca);
      if (!transport) return c.fail(std::move(transport.error()).in("enroll"));
      const bool existed = std::filesystem::exists(c.db_path);
      auto cleanup = [&](std::unique_ptr<Store>& s) {
        // A file this command created and could not enroll is removed, so a
        // retry starts clean.
        s.reset();
        if (!existed) {
          std::error_code ec;
          for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(c.db_path + suffix, ec);
        }
      };
      auto store = c.open(/*create=*/true);
      if (!store) return kExitFailed;
      sync::EnrollParams params{opt->server, opt->code, opt->pin, opt->ca, opt->name};
      auto r = sync::enroll(*store, **transport, params);
      if (!r) {
        if (!store->initialized()) cleanup(store);
        return c.fail(r.error());
      }
      const auto& id = r->identity;
      if (c.as_json) {
        c.print_json({{"device_id", id.device_id},
                      {"device", id.device_name},
                      {"role", r->role},
                      {"station", {{"id", id.station_id}, {"code", id.station_code}, {"name", id.station_name}}},
                      {"server", opt->server},
                      {"server_node_id", r->peer.id},
                      {"new_file", r->new_file},
                      {"db", c.db_path}});
      } else {
        std::cout << "Enrolled " << id.device_name << " (" << id.device_id << ") as a " << r->role << " device"
                  << (id.station_code.empty() ? std::string() : " of " + id.station_code) << " with "
                  << opt->server << ".\nRun `station-cli sync` to exchange records.\n";
      }
      return kExitOk;
    });
  }
  {
    auto opt = std::make_shared<SyncCmdOptions>();
    auto* cmd = app.add_subcommand("sync", "Send this file's new changes to the server and receive the others'");
    cmd->add_option("--server", opt->server, "Which enrolled server (its URL); default: the first enrolled");
    cmd->add_option("--attempts", opt->attempts, "Tries per request on a dropped link before giving up (default 6)")
        ->check(CLI::Range(1, 100));
    cmd->add_option("--batch", opt->batch,
                    "Changes per request, each way (default " + std::to_string(protocol::kMaxChangesPerBatch) +
                        "); smaller batches lose less to a link that keeps dropping")
        ->check(CLI::Range(int64_t{1}, protocol::kMaxChangesPerBatch));
    cmd->add_option("--timeout", opt->timeout_s,
                    "Seconds of silence on the link before a request is given up and retried (default 60)")
        ->check(CLI::Range(1, 3600));
    cmd->footer(
        "Safe to interrupt at any moment and to run again: what was sent and received is kept, and the next\n"
        "sync goes on from there.\nExample:\n  station-cli sync");
    on_run(cmd, ctx, [opt](Context& c) {
      auto store = c.open();
      if (!store) return kExitFailed;
      auto peer = choose_peer(*store, opt->server);
      if (!peer) {
        return c.fail(opt->server.empty()
                          ? std::string("this file is not enrolled with any server: run `station-cli enroll` first")
                          : "this file is not enrolled with " + opt->server + " (see `station-cli status`)");
      }
      auto settings = sync::peer_settings(*peer);
      auto transport = transport_for(peer->url, settings.pin, settings.ca_file, opt->timeout_s);
      if (!transport) return c.fail(transport.error());
      ProgressLine bar(!c.as_json && isatty(STDERR_FILENO));
      sync::SyncOptions o;
      o.max_attempts = opt->attempts;
      if (opt->batch > 0) o.batch_changes = o.pull_limit = opt->batch;
      o.on_progress = [&bar](const sync::SyncProgress& p) { bar.show(p); };
      const auto start = std::chrono::steady_clock::now();
      auto r = sync::sync_with_peer(*store, **transport, peer->id, o);
      bar.finish();
      if (!r) return c.fail(r.error());
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (c.as_json) {
        json refused = json::array();
        for (const auto& x : r->refused) {
          refused.push_back({{"seq", x.seq}, {"origin_seq", x.origin_seq}, {"reason", x.reason}});
        }
        c.print_json({{"sent", r->sent},
                      {"received", r->received},
                      {"duplicates", r->server_duplicates + r->duplicates},
                      {"quarantined", r->server_quarantined + r->quarantined},
                      {"conflicts", r->server_conflicts + r->conflicts},
                      {"server", {{"url", peer->url},
                                  {"applied", r->server_applied},
                                  {"duplicates", r->server_duplicates},
                                  {"quarantined", r->server_quarantined},
                                  {"conflicts", r->server_conflicts}}},
                      {"here", {{"applied", r->applied},
                                {"duplicates", r->duplicates},
                                {"quarantined", r->quarantined},
                                {"conflicts", r->conflicts}}},
                      {"refused", refused},
                      {"bytes_sent", r->bytes_sent},
                      {"bytes_received", r->bytes_received},
                      {"requests", r->requests},
                      {"retries", r->retries},
                      {"clock_skew_ms", r->clock_skew_ms},
                      {"clock_warning", r->clock_warning},
                      {"server_replaced", r->server_replaced},
                      {"scope_widened", r->scope_widened},
                      {"new_device_id", r->new_device_id.empty() ? json(nullptr) : json(r->new_device_id)},
                      {"renewed_from", r->renewed_from.empty() ? json(nullptr) : json(r->renewed_from)},
                      {"renumbered", r->renumbered},
                      {"seconds", secs}});
        return kExitOk;
      }
      char took[32];
      std::snprintf(took, sizeof took, "%.1f s", secs);
      std::cout << "Synced with " << peer->url << ": sent " << r->sent << ", received " << r->received
                << ", duplicates " << r->server_duplicates + r->duplicates << ", quarantined "
                << r->server_quarantined + r->quarantined << ", conflicts " << r->server_conflicts + r->conflicts
                << "; " << human_bytes(r->bytes_sent) << " up, " << human_bytes(r->bytes_received) << " down in "
                << took << (r->retries ? ", " + std::to_string(r->retries) + " retries" : std::string()) << '\n';
      for (const auto& x : r->refused) {
        std::cout << "  refused by the server: change " << x.seq << ": " << x.reason << '\n';
      }
      if (r->server_replaced) {
        std::cout << "  note: the server's file is not the one this device synced with before; everything was "
                     "exchanged again\n";
      }
      if (!r->new_device_id.empty()) {
        std::cout << "  note: this file is an old backup or a copy of device " << r->renewed_from
                  << " (the server holds changes of it this file does not): it now writes as the new device "
                  << r->new_device_id << "; " << r->renumbered
                  << " of its changes were sent under that name, and the other copy's records were received\n";
      }
      if (r->scope_widened) {
        std::cout << "  note: this device's villages were widened; their records were received\n";
      }
      if (r->clock_warning) {
        std::cout << "  warning: this device's clock is " << (r->clock_skew_ms < 0 ? "ahead of" : "behind")
                  << " the server's by " << std::abs(r->clock_skew_ms) / 60000
                  << " minutes: set the date and time right (records keep the time they are entered)\n";
      }
      return kExitOk;
    });
  }
}

}  // namespace tramsync::cli
