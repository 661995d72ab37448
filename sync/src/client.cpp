// The sync client (see client.h and docs/protocol.md).
#include "tramsync/sync/client.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <thread>

#include "tramsync/core/text.h"
#include "tramsync/sync/protocol.h"
#include "tramsync/sync/wire.h"
#include "wire_json.h"

namespace tramsync::sync {

using json = nlohmann::json;

PeerSettings peer_settings(const PeerState& p) {
  PeerSettings s;
  json j = json::parse(p.settings.empty() ? std::string("{}") : p.settings, nullptr, false);
  if (!j.is_object()) return s;
  s.token = j.value("token", "");
  s.pin = j.value("pin", "");
  s.ca_file = j.value("ca_file", "");
  s.role = j.value("role", "");
  s.database_id = j.value("database_id", "");
  s.clock_skew_ms = j.value("clock_skew_ms", int64_t{0});
  s.last_error = j.value("last_error", "");
  if (auto v = j.find("scope_villages"); v != j.end() && v->is_array()) {
    s.scope_villages.emplace();
    for (const auto& x : *v) {
      if (x.is_string()) s.scope_villages->push_back(x.get<std::string>());
    }
  }
  return s;
}

std::string settings_json(const PeerSettings& s) {
  json j{{"token", s.token},
         {"pin", s.pin},
         {"ca_file", s.ca_file},
         {"role", s.role},
         {"database_id", s.database_id},
         {"clock_skew_ms", s.clock_skew_ms},
         {"last_error", s.last_error}};
  if (s.scope_villages) j["scope_villages"] = *s.scope_villages;
  return j.dump();
}

namespace {

// Whether the villages a device reads grew: a village added, or the limit
// lifted (empty: the whole station). Names compare without diacritics or case.
bool widened(const std::vector<std::string>& before, const std::vector<std::string>& now) {
  if (before.empty()) return false;
  if (now.empty()) return true;
  std::vector<std::string> had;
  for (const auto& v : before) had.push_back(fold_for_search(v));
  return std::any_of(now.begin(), now.end(), [&](const std::string& v) {
    return std::find(had.begin(), had.end(), fold_for_search(v)) == had.end();
  });
}

Error refused(const std::string& rule) { return Error{ErrorCode::kRefused, "sync", "", rule, ""}; }

// One request with retries: what every exchange with the server goes through.
class Exchanger {
 public:
  Exchanger(Transport& transport, const SyncOptions& options, Clock& clock, std::string token, SyncReport& report,
            SyncProgress& progress)
      : transport_(transport),
        options_(options),
        clock_(clock),
        token_(std::move(token)),
        report_(report),
        progress_(progress),
        rng_(std::random_device{}()) {}

  // The answer's JSON body for a 200. Retries a dropped link, 429 and 5xx
  // with backoff; any other refusal is returned at once, in words.
  Result<json> call(Request req) {
    clash.reset();
    std::string last;
    for (int attempt = 1;; ++attempt) {
      req.headers[protocol::kClientTimeHeader] = std::to_string(clock_.now_ms());
      if (!token_.empty()) req.headers["Authorization"] = "Bearer " + token_;
      const int64_t sent_at = clock_.now_ms();
      auto res = transport_.roundtrip(req);
      const int64_t received_at = clock_.now_ms();
      ++report_.requests;
      int64_t retry_after_ms = 0;
      if (!res) {
        if (res.error().code != ErrorCode::kIo) return res.error();
        last = res.error().message();
      } else {
        report_.bytes_sent += res->wire_bytes_sent;
        report_.bytes_received += res->wire_bytes_received;
        progress_.bytes_sent = report_.bytes_sent;
        progress_.bytes_received = report_.bytes_received;
        json doc = wire::parse_body(res->body);
        if (res->status == 200) {
          if (doc.is_object()) {
            note_clock(doc, sent_at, received_at);
            return doc;
          }
          last = "the server's answer was not JSON (cut short?)";
        } else if (res->status == 507) {
          // The centre's disk is full: retrying in seconds will not help.
          return refused("the server cannot store anything: its disk is full (HTTP 507" +
                         (doc.is_object() && doc.contains("error") && doc["error"].is_string()
                              ? ": " + doc["error"].get<std::string>()
                              : std::string()) +
                         "). Everything sent and received so far is kept; sync again once the centre has freed space");
        } else if (res->status == 429 || res->status >= 500) {
          last = "the server is busy or failed (HTTP " + std::to_string(res->status) + ")";
          if (doc.is_object() && doc.contains("error") && doc["error"].is_string()) {
            last += ": " + doc["error"].get<std::string>();
          }
          const std::string ra = res->header("Retry-After");
          if (!ra.empty() && ra.size() < 6 && ra.find_first_not_of("0123456789") == std::string::npos) {
            retry_after_ms = std::stoll(ra) * 1000;
          }
        } else {
          return refusal(res->status, doc);
        }
      }
      if (attempt >= options_.max_attempts) {
        return Error{ErrorCode::kIo, "sync", "",
                     "stopped after " + std::to_string(attempt) + " attempts (" + last +
                         "); everything sent and received so far is kept, and the next sync resumes from there",
                     ""};
      }
      int64_t wait = std::min(options_.backoff_max_ms, options_.backoff_initial_ms << std::min(attempt - 1, 20));
      wait = wait / 2 + static_cast<int64_t>(rng_() % static_cast<uint64_t>(wait / 2 + 1));  // jitter
      wait = std::max(wait, std::min<int64_t>(retry_after_ms, 300'000));  // the server's word, up to 5 minutes
      ++report_.retries;
      progress_.phase = SyncProgress::Phase::kRetry;
      progress_.attempt = attempt + 1;
      progress_.retry_in_ms = wait;
      progress_.retry_reason = last;
      if (options_.on_progress) options_.on_progress(progress_);
      if (options_.sleep) {
        options_.sleep(wait);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(wait));
      }
    }
  }

  std::optional<int64_t> clock_skew() const { return skew_; }
  void set_token(std::string token) { token_ = std::move(token); }
  std::string server_database;
  // Set by call() when the server refused a push because it holds other
  // changes under a device's numbers (409 origin_reused): whose, and from which.
  struct Clash {
    std::string origin;
    int64_t origin_seq = 0;
  };
  std::optional<Clash> clash;

 private:
  void note_clock(const json& doc, int64_t sent_at, int64_t received_at) {
    if (doc.contains("server_time_ms") && doc["server_time_ms"].is_number_integer()) {
      // The server read its clock about half-way through the exchange.
      skew_ = doc["server_time_ms"].get<int64_t>() - (sent_at + received_at) / 2;
    }
    if (doc.contains("database_id") && doc["database_id"].is_string()) server_database = doc["database_id"];
  }

  Error refusal(int status, const json& doc) {
    std::string code, message;
    if (doc.is_object()) {
      if (doc.contains("code") && doc["code"].is_string()) code = doc["code"];
      if (doc.contains("error") && doc["error"].is_string()) message = doc["error"];
    }
    if (message.empty()) message = "no reason given";
    if (status == 401 && code == "revoked") {
      return refused("the server refused this device: " + message);
    }
    if (status == 401) {
      return refused("the server does not know this device (" + message +
                     "); enroll it again with a new code from the centre");
    }
    if (code == "unsupported_protocol") {
      return refused("the server does not speak this version of the sync protocol (" + message +
                     "); update station-cli or the server");
    }
    if (code == "origin_reused" && doc.contains("origin_seq") && doc["origin_seq"].is_number_integer() &&
        doc.contains("origin") && doc["origin"].is_string()) {
      // Which change clashed: the caller may take a new identity (run_sync).
      clash = Clash{doc["origin"].get<std::string>(), doc["origin_seq"].get<int64_t>()};
      return Error{ErrorCode::kConflict, "sync", "origin_seq", message, clash->origin};
    }
    if (code == "origin_reused") {
      return refused(
          "the server already holds different changes under this device's numbers (" + message +
          "); this file looks restored from an old backup or copied from another device. Stop writing to it "
          "and ask the centre: the records it holds are safe, but it needs a new device identity");
    }
    return refused("the server refused the request (HTTP " + std::to_string(status) + " " + code + "): " + message);
  }

  Transport& transport_;
  const SyncOptions& options_;
  Clock& clock_;
  std::string token_;
  SyncReport& report_;
  SyncProgress& progress_;
  std::mt19937_64 rng_;
  std::optional<int64_t> skew_;
};

Request make_request(const char* method, const char* path) {
  Request r;
  r.method = method;
  r.path = path;
  r.headers[protocol::kProtocolHeader] = std::to_string(protocol::kVersion);
  return r;
}

int64_t int_field(const json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// This file is a copy or an old backup of its device (DESIGN "A file restored
// from backup"): the server gives it a new device identity, and its own changes
// after origin_seq `keep_through` are renumbered under it, in one transaction
// with the new token.
Status renew_identity(Store& store, Exchanger& ex, const std::string& peer_id, PeerSettings& settings,
                      int64_t keep_through, SyncReport& report) {
  auto id = store.identity();
  if (!id) return id.error();
  const std::string new_id = RandomIdSource().new_id();
  Request req = make_request("POST", "/v1/renew");
  req.body = json{{"protocol", protocol::kVersion}, {"device_id", new_id}, {"database_id", store.database_id()}}.dump();
  auto doc = ex.call(std::move(req));
  if (!doc) return doc.error();
  auto text = [&](const char* key) {
    auto it = doc->find(key);
    return it != doc->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string token = text("token");
  if (token.size() != 64 || text("device_id") != new_id) {
    return Error{ErrorCode::kIo, "sync", "answer", "from the server to a new device identity is incomplete", ""};
  }
  const int64_t renumbered = std::max<int64_t>(0, store.max_origin_seq(id->device_id) - keep_through);
  auto peer = store.peer(peer_id);
  if (!peer) return Error{ErrorCode::kNotFound, "sync", "server", "is no longer known to this file", peer_id};
  // The new token is this device's only once the file is the new device: if
  // the renumbering fails, the settings saved after the sync keep the old one.
  PeerSettings renewed = settings;
  renewed.token = token;
  peer->settings = settings_json(renewed);
  if (auto st = store.take_new_origin(new_id, keep_through, *peer); !st) return st.error();
  settings = renewed;
  ex.set_token(token);
  report.renewed_from = id->device_id;
  report.new_device_id = new_id;
  report.renumbered += renumbered;
  return {};
}

Result<SyncReport> run_sync(Store& store, Exchanger& ex, const std::string& peer_id, PeerSettings& settings,
                            const SyncOptions& o, SyncReport& report, SyncProgress& progress) {
  auto notify = [&](SyncProgress::Phase phase) {
    progress.phase = phase;
    if (o.on_progress) o.on_progress(progress);
  };

  // Who answers at that address, and whether the file behind it is still the
  // one this device has exchanged with (a replaced server has forgotten what it
  // acknowledged: everything is sent and asked for again; duplicates are harmless).
  auto hello = ex.call(make_request("GET", "/v1/status"));
  if (!hello) return hello.error();
  if (!ex.server_database.empty() && !settings.database_id.empty() && ex.server_database != settings.database_id) {
    if (auto st = store.reset_peer_cursors(peer_id); !st) return st.error();
    report.server_replaced = true;
  }
  if (!ex.server_database.empty()) settings.database_id = ex.server_database;
  // The same server file, but restored from an older backup: it has lost the
  // end of its log, or some of what it acknowledged of this device. Ask again
  // from the start / send again what it lost (duplicates are recognised).
  int64_t server_has = -1;  // of this device's own changes
  if (auto d = hello->find("device"); d != hello->end() && d->is_object()) {
    server_has = d->value("max_origin_seq", int64_t{-1});
  }
  // More of this device's changes than the file holds: the file is an old
  // backup, or a copy another copy got ahead of. It takes a new identity once
  // what it holds is sent (below), before it writes anything new.
  auto own = store.identity();
  if (!own) return own.error();
  const bool behind = server_has > store.max_origin_seq(own->device_id);
  if (!report.server_replaced) {
    auto p = store.peer(peer_id);
    const int64_t log_end = hello->value("log_end", int64_t{-1});
    const bool lost_log = p && log_end >= 0 && p->pull_cursor > log_end;
    const bool lost_ours = server_has >= 0 && store.acked_own_origin_seq(peer_id) > server_has;
    if (lost_log || lost_ours) {
      if (auto st = store.reset_peer_cursors(peer_id, lost_ours, lost_log); !st) return st.error();
      report.server_replaced = true;
    }
  }

  progress.pull_end = hello->value("log_end", int64_t{0});
  if (auto p = store.peer(peer_id)) progress.pull_position = std::min(p->pull_cursor, progress.pull_end);
  progress.to_send = store.count_to_push(peer_id);
  notify(SyncProgress::Phase::kPush);
  for (int round = 0; round < 100; ++round) {
    // Push: in log order, one bounded batch at a time; the cursor moves only
    // on the server's acknowledgement.
    for (;;) {
      LogPage page = store.changes_to_push(peer_id, o.batch_changes, o.batch_bytes);
      if (page.changes.empty()) break;
      Request req = make_request("POST", "/v1/push");
      req.body = wire::encode_batch(page.changes);
      auto ack = ex.call(std::move(req));
      if (!ack && ex.clash) {
        // The server holds other changes under this device's numbers, from
        // the clash on: this file is an old backup or a copy. Those changes of
        // its own become a new device's and are sent again as such (once).
        const Exchanger::Clash clash = *ex.clash;
        if (clash.origin == own->device_id && clash.origin_seq > 0 && report.new_device_id.empty()) {
          if (auto st = renew_identity(store, ex, peer_id, settings, clash.origin_seq - 1, report); !st) {
            return st.error();
          }
          continue;
        }
        return refused("the server already holds different changes under the numbers of device " + clash.origin +
                       " (" + ack.error().rule +
                       "); this file looks restored from an old backup or copied. Stop writing to it and ask the "
                       "centre: the records it holds are safe");
      }
      if (!ack) return ack.error();
      const int64_t acked = int_field(*ack, "acked_through");
      if (acked < page.changes.back().seq) {
        return Error{ErrorCode::kIo, "sync", "acked_through",
                     "from the server does not cover the batch sent (up to " +
                         std::to_string(page.changes.back().seq) + ")",
                     std::to_string(acked)};
      }
      std::vector<ApplyResult> refused_here;
      if (auto rs = ack->find("results"); rs != ack->end() && rs->is_array()) {
        for (const auto& r : *rs) {
          if (!r.is_object() || r.value("status", "") != "quarantined") continue;
          ApplyResult x;
          x.seq = r.value("seq", int64_t{0});
          x.origin = r.value("origin", "");
          x.origin_seq = r.value("origin_seq", int64_t{0});
          x.status = ApplyStatus::kQuarantined;
          x.reason = r.value("reason", "");
          refused_here.push_back(x);
        }
      }
      if (auto st = store.acknowledge_push(peer_id, page.next, refused_here); !st) return st.error();
      report.sent += static_cast<int64_t>(page.changes.size());
      report.server_applied += int_field(*ack, "applied");
      report.server_duplicates += int_field(*ack, "duplicates");
      report.server_quarantined += int_field(*ack, "quarantined");
      report.server_conflicts += int_field(*ack, "conflicts");
      report.refused.insert(report.refused.end(), refused_here.begin(), refused_here.end());
      progress.sent = report.sent;
      progress.to_send = std::max(progress.to_send, progress.sent);
      notify(SyncProgress::Phase::kPush);
    }

    if (behind && report.new_device_id.empty()) {
      if (auto st = renew_identity(store, ex, peer_id, settings, store.max_origin_seq(own->device_id), report); !st) {
        return st.error();
      }
    }

    // Pull: each page stored with its cursor in one transaction.
    for (;;) {
      auto ps = store.peer(peer_id);
      const int64_t after = ps ? ps->pull_cursor : 0;
      Request req = make_request("GET", "/v1/pull");
      req.params = {{"after", std::to_string(after)},
                    {"limit", std::to_string(o.pull_limit)},
                    {"max_bytes", std::to_string(o.pull_bytes)}};
      auto page = ex.call(std::move(req));
      if (!page) return page.error();
      if (auto st = wire::check_protocol(*page); !st) return refused("the server's answer: " + st.error().message());
      auto changes = wire::changes_from_json(*page, "changes");
      if (!changes) return Error{ErrorCode::kIo, "sync", "", "the server's pull answer: " + changes.error().message(), ""};
      if (auto sc = page->find("scope"); sc != page->end() && sc->is_object() && (*sc)["villages"].is_array()) {
        std::vector<std::string> now;
        for (const auto& v : (*sc)["villages"]) {
          if (v.is_string()) now.push_back(v.get<std::string>());
        }
        const bool grew = settings.scope_villages && widened(*settings.scope_villages, now);
        settings.scope_villages = now;  // saved with the peer when the sync ends
        if (grew) {
          // Records of the added villages may lie anywhere before the cursor:
          // ask for everything again (what is here already is a duplicate).
          if (auto st = store.reset_peer_cursors(peer_id, /*push=*/false, /*pull=*/true); !st) return st.error();
          report.scope_widened = true;
          continue;
        }
      }
      const int64_t next = int_field(*page, "next");
      const bool more = page->value("more", false);
      if (next < after) {
        return Error{ErrorCode::kIo, "sync", "next", "from the server goes back before the cursor asked for",
                     std::to_string(next)};
      }
      ApplyContext ctx;
      ctx.from_peer = peer_id;
      ctx.check_clock = false;
      auto out = store.apply_changes(*changes, ctx, CursorUpdate{peer_id, next});
      if (!out) return out.error();
      report.received += static_cast<int64_t>(changes->size());
      report.applied += out->applied;
      report.duplicates += out->duplicates;
      report.quarantined += out->quarantined;
      report.conflicts += out->conflicts;
      progress.received = report.received;
      progress.pull_position = next;
      progress.pull_end = std::max(progress.pull_end, next);
      notify(SyncProgress::Phase::kPull);
      if (!more || (changes->empty() && next == after)) break;
    }

    // Both directions are empty unless staff wrote while this ran.
    if (store.count_to_push(peer_id) == 0) break;
    progress.to_send += store.count_to_push(peer_id);
  }
  return report;
}

}  // namespace

Result<SyncReport> sync_with_peer(Store& store, Transport& transport, const std::string& peer_id,
                                  const SyncOptions& options) {
  auto peer = store.peer(peer_id);
  if (!peer) {
    return Error{ErrorCode::kNotFound, "sync", "server", "is not known to this file: enroll with it first", peer_id};
  }
  PeerSettings settings = peer_settings(*peer);
  SystemClock system_clock;
  Clock& clock = options.clock ? *options.clock : static_cast<Clock&>(system_clock);
  SyncReport report;
  SyncProgress progress;
  Exchanger ex(transport, options, clock, settings.token, report, progress);
  auto r = run_sync(store, ex, peer_id, settings, options, report, progress);

  // What was learnt about the server is kept whether or not the sync finished.
  if (auto skew = ex.clock_skew()) {
    settings.clock_skew_ms = *skew;
    report.clock_skew_ms = *skew;
    report.clock_warning = protocol::clock_warning(*skew);
  }
  settings.last_error = r ? "" : r.error().message();
  PeerState saved = *store.peer(peer_id);
  saved.settings = settings_json(settings);
  (void)store.save_peer(saved);
  if (!r) return r.error();
  if (auto st = store.mark_synced(peer_id); !st) return st.error();
  return report;
}

Result<EnrollResult> enroll(Store& store, Transport& transport, const EnrollParams& params, Clock* clock) {
  EnrollResult result;
  result.new_file = !store.initialized();
  std::string device_id, device_name, station_code;
  if (result.new_file) {
    device_id = RandomIdSource().new_id();
    device_name = params.device_name.empty() ? "device" : params.device_name;
  } else {
    auto id = store.identity();
    if (!id) return id.error();
    device_id = id->device_id;
    device_name = id->device_name;
    station_code = id->station_code;
  }
  Request req = make_request("POST", "/v1/enroll");
  req.body = json{{"protocol", protocol::kVersion},
                  {"code", params.code},
                  {"device_id", device_id},
                  {"device_name", device_name},
                  {"database_id", store.database_id()},
                  {"station_code", station_code}}
                 .dump(-1, ' ', false, json::error_handler_t::replace);

  const SyncOptions options;  // retries as for a sync
  SystemClock system_clock;
  SyncReport report;
  SyncProgress progress;
  Exchanger ex(transport, options, clock ? *clock : static_cast<Clock&>(system_clock), "", report, progress);
  auto doc = ex.call(std::move(req));
  if (!doc) {
    Error e = doc.error();
    e.context = "enroll";
    return e;
  }
  auto str = [&](const char* k) {
    return doc->contains(k) && (*doc)[k].is_string() ? (*doc)[k].get<std::string>() : std::string();
  };
  PeerSettings settings;
  settings.token = str("token");
  settings.role = str("role");
  settings.pin = params.pin;
  settings.ca_file = params.ca_file;
  settings.database_id = str("database_id");
  if (auto skew = ex.clock_skew()) settings.clock_skew_ms = *skew;
  const std::string node = str("node_id");
  if (settings.token.size() != 64 || node.empty() || str("device_id") != device_id) {
    return Error{ErrorCode::kIo, "enroll", "answer", "from the server is incomplete (no token or node id)", ""};
  }
  if (result.new_file) {
    StationInfo station;
    if (auto s = doc->find("station"); s != doc->end() && s->is_object()) {
      station.id = s->value("id", "");
      station.code = s->value("code", "");
      station.name = s->value("name", "");
      station.district = s->value("district", "");
      station.province = s->value("province", "");
    }
    auto id = store.init_device(station, device_id, device_name);
    if (!id) return id.error();
  }
  PeerState peer;
  peer.id = node;
  peer.url = params.server_url;
  peer.settings = settings_json(settings);
  if (auto st = store.save_peer(peer); !st) return st.error();
  auto id = store.identity();
  if (!id) return id.error();
  result.identity = *id;
  result.role = settings.role;
  result.peer = *store.peer(node);
  return result;
}

Result<PeerState> add_server(Store& store, Transport& transport, const AddServerParams& params, Clock* clock) {
  auto id = store.identity();
  if (!id) return id.error();
  std::optional<PeerSettings> known;
  for (const auto& p : store.peers()) {
    auto s = peer_settings(p);
    if (!s.token.empty()) {
      known = s;
      break;
    }
  }
  if (!known) {
    return Error{ErrorCode::kNotFound, "server add", "token",
                 "this file is not enrolled anywhere yet: run `station-cli enroll` first", ""};
  }
  const SyncOptions options;
  SystemClock system_clock;
  SyncReport report;
  SyncProgress progress;
  Exchanger ex(transport, options, clock ? *clock : static_cast<Clock&>(system_clock), known->token, report, progress);
  auto doc = ex.call(make_request("GET", "/v1/status"));
  if (!doc) {
    Error e = doc.error();
    e.context = "server add";
    if (e.code == ErrorCode::kRefused && e.rule.find("does not know this device") != std::string::npos) {
      e.rule = "the server does not know this device yet: sync its hub with that server first (the hub carries "
               "the device's registration), or enroll there with a code";
    }
    return e;
  }
  const std::string node = doc->value("node_id", "");
  auto dev = doc->find("device");
  if (node.empty() || dev == doc->end() || !dev->is_object() || dev->value("id", "") != id->device_id) {
    return Error{ErrorCode::kIo, "server add", "answer", "from the server does not name this device", node};
  }
  PeerSettings settings;
  if (auto existing = store.peer(node)) settings = peer_settings(*existing);
  settings.token = known->token;
  settings.pin = params.pin;
  settings.ca_file = params.ca_file;
  settings.role = dev->value("role", "");
  settings.database_id = doc->value("database_id", "");
  if (auto skew = ex.clock_skew()) settings.clock_skew_ms = *skew;
  PeerState peer;
  peer.id = node;
  peer.url = params.server_url;
  peer.settings = settings_json(settings);
  if (auto st = store.save_peer(peer); !st) return st.error();
  return *store.peer(node);
}

}  // namespace tramsync::sync
