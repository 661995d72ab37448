#include "tramsync/sync/service.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <map>

#include "tramsync/core/time.h"
#include "tramsync/sync/auth.h"
#include "tramsync/sync/protocol.h"
#include "wire_json.h"

namespace tramsync::sync {

using json = nlohmann::json;

// --- who is calling ------------------------------------------------------------

Result<Caller> TokenAuthorizer::authorize(Store& store, const std::string& bearer_token) {
  if (bearer_token.size() != 64) return Error::not_found("token", "");
  const std::string hash = auth::sha256_hex(bearer_token);
  auto d = store.device_by_token_hash(hash);
  // The lookup is by hash; the comparison that decides is constant-time.
  if (!d) return Error::not_found("token", "");
  auto stored = store.device(d->id);
  if (!stored) return Error::not_found("token", "");
  if (d->revoked()) {
    return Error{ErrorCode::kRefused, "", "device",
                 "was revoked at " + d->revoked_at.substr(0, 16) + "; it can no longer sync (enroll it again if found)",
                 d->id};
  }
  Caller c;
  c.device = *d;
  if (d->role == kRoleReviewer) {
    c.read = Scope::everything();
    c.write = Scope::station("");
    c.may_write = false;
  } else {
    c.read = Scope::station(d->station_id);
    c.write = Scope::station(d->station_id);
  }
  return c;
}

// --- the store pool ------------------------------------------------------------

struct SyncService::Pool {
  std::string path;
  StoreOptions options;
  std::mutex mu;
  std::vector<std::unique_ptr<Store>> free;
};

SyncService::Lease::Lease(SyncService::Pool* pool, std::unique_ptr<Store> store)
    : pool_(pool), store_(std::move(store)) {}
SyncService::Lease::Lease(Lease&& o) noexcept : pool_(o.pool_), store_(std::move(o.store_)) {}
SyncService::Lease::~Lease() {
  if (store_) {
    std::lock_guard<std::mutex> lock(pool_->mu);
    pool_->free.push_back(std::move(store_));
  }
}

Result<SyncService::Lease> SyncService::lease() {
  {
    std::lock_guard<std::mutex> lock(pool_->mu);
    if (!pool_->free.empty()) {
      auto s = std::move(pool_->free.back());
      pool_->free.pop_back();
      return Lease(pool_.get(), std::move(s));
    }
  }
  auto s = Store::open(pool_->path, pool_->options);
  if (!s) return s.error();
  return Lease(pool_.get(), std::move(s.value()));
}

SyncService::SyncService(ServiceOptions options, std::shared_ptr<Authorizer> authorizer)
    : options_(std::move(options)), authorizer_(std::move(authorizer)), pool_(std::make_unique<Pool>()) {
  pool_->path = options_.db_path;
  pool_->options = options_.store_options;
}

SyncService::~SyncService() = default;

// --- the handlers ----------------------------------------------------------------

struct Handlers {
  SyncService& svc;

  struct Ctx {
    RequestLog log;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  };

  int64_t now_ms() {
    return svc.options_.store_options.clock ? svc.options_.store_options.clock->now_ms() : SystemClock().now_ms();
  }

  std::string new_request_id() {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx",
                  static_cast<unsigned long long>(svc.request_counter_.fetch_add(1) * 0x9E3779B97F4A7C15ULL));
    return buf;
  }

  void reply(httplib::Response& res, Ctx& ctx, int status, const json& body) {
    res.status = status;
    std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
    ctx.log.bytes_out = static_cast<int64_t>(text.size());
    res.set_content(text, "application/json");
  }

  void fail(httplib::Response& res, Ctx& ctx, int status, const std::string& code, const std::string& message) {
    ctx.log.error = code;
    ++svc.metrics_.errors;
    reply(res, ctx, status, {{"error", message}, {"code", code}, {"request_id", ctx.log.request_id}});
  }

  static int status_for(const Error& e) {
    switch (e.code) {
      case ErrorCode::kInvalid: return 400;
      case ErrorCode::kNotFound: return 404;
      case ErrorCode::kRefused: return 403;
      case ErrorCode::kConflict: return 409;
      case ErrorCode::kIo: return 503;
    }
    return 500;
  }

  void finish(Ctx& ctx, const httplib::Request& req, const httplib::Response& res) {
    ++svc.metrics_.requests;
    ctx.log.status = res.status;
    ctx.log.remote = req.remote_addr;
    ctx.log.bytes_in = static_cast<int64_t>(req.body.size());
    ctx.log.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - ctx.start).count();
    if (svc.options_.on_request) svc.options_.on_request(ctx.log);
  }

  // Runs a handler body, turning anything unexpected into a JSON 500 with the
  // request id (the cause goes to the log, not to the caller).
  template <typename F>
  void guarded(const char* endpoint, const httplib::Request& req, httplib::Response& res, F&& body) {
    Ctx ctx;
    ctx.log.endpoint = endpoint;
    ctx.log.request_id = new_request_id();
    try {
      body(ctx);
    } catch (const std::exception& e) {
      ctx.log.error = std::string("internal: ") + e.what();
      ++svc.metrics_.errors;
      reply(res, ctx, 500, {{"error", "internal error; the server log has the details"},
                            {"code", "internal"},
                            {"request_id", ctx.log.request_id}});
    }
    finish(ctx, req, res);
  }

  // Parses a JSON request body with its protocol version; replies and returns
  // nullopt when it is not acceptable.
  std::optional<json> body_json(const httplib::Request& req, httplib::Response& res, Ctx& ctx) {
    json doc = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
      fail(res, ctx, 400, "bad_request", "body must be a JSON object");
      return std::nullopt;
    }
    if (auto st = wire::check_protocol(doc); !st) {
      fail(res, ctx, 400, "unsupported_protocol",
           st.error().message() + "; this server speaks protocol " + std::to_string(protocol::kVersion));
      return std::nullopt;
    }
    return doc;
  }

  bool header_protocol_ok(const httplib::Request& req, httplib::Response& res, Ctx& ctx) {
    std::string v = req.get_header_value(protocol::kProtocolHeader);
    if (v.empty() || v == std::to_string(protocol::kVersion)) return true;
    fail(res, ctx, 400, "unsupported_protocol",
         "protocol version " + v.substr(0, 20) + " is not supported; this server speaks protocol " +
             std::to_string(protocol::kVersion));
    return false;
  }

  std::optional<Caller> authenticate(const httplib::Request& req, httplib::Response& res, Ctx& ctx, Store& store) {
    std::string h = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (h.compare(0, prefix.size(), prefix) != 0) {
      fail(res, ctx, 401, "unauthorized", "missing bearer token: enroll this device first");
      return std::nullopt;
    }
    auto c = svc.authorizer_->authorize(store, h.substr(prefix.size()));
    if (!c) {
      if (c.error().code == ErrorCode::kRefused) {
        fail(res, ctx, 401, "revoked", "this device was revoked: " + c.error().rule);
      } else {
        fail(res, ctx, 401, "unauthorized", "unknown token: this device is not enrolled here");
      }
      return std::nullopt;
    }
    ctx.log.device = c->device.id;
    ctx.log.station = c->device.station_code;
    return c.value();
  }

  int64_t client_skew(const httplib::Request& req) {
    std::string t = req.get_header_value(protocol::kClientTimeHeader);
    if (t.empty() || t.size() > 18 || t.find_first_not_of("0123456789") != std::string::npos) return 0;
    return std::stoll(t) - now_ms();
  }

  bool rate_limited(const std::string& remote) {
    std::lock_guard<std::mutex> lock(svc.rate_mu_);
    int64_t now = now_ms();
    auto& list = svc.enroll_attempts_;
    auto it = std::find_if(list.begin(), list.end(), [&](const auto& p) { return p.first == remote; });
    if (it == list.end()) {
      if (list.size() > 10000) list.clear();  // bounded memory under a flood
      list.push_back({remote, {}});
      it = list.end() - 1;
    }
    auto& times = it->second;
    times.erase(std::remove_if(times.begin(), times.end(), [&](int64_t t) { return now - t > 60'000; }), times.end());
    if (static_cast<int>(times.size()) >= svc.options_.enroll_attempts_per_minute) return true;
    times.push_back(now);
    return false;
  }

  void enroll(const httplib::Request& req, httplib::Response& res) {
    guarded("enroll", req, res, [&](Ctx& ctx) {
      if (rate_limited(req.remote_addr)) {
        res.set_header("Retry-After", "60");
        return fail(res, ctx, 429, "rate_limited", "too many enrollment attempts; wait a minute");
      }
      auto doc = body_json(req, res, ctx);
      if (!doc) return;
      auto str = [&](const char* k) { return doc->contains(k) && (*doc)[k].is_string() ? (*doc)[k].get<std::string>() : ""; };
      const std::string code = auth::normalize_enrollment_code(str("code"));
      if (code.empty()) return fail(res, ctx, 400, "bad_request", "code: must be the enrollment code from the centre");
      auto lease = svc.lease();
      if (!lease) return fail(res, ctx, 503, "unavailable", lease.error().message());
      Store& store = **lease;
      std::string token = auth::new_token();
      EnrollmentRequest er{auth::sha256_hex(code), str("device_id"), str("device_name"), auth::sha256_hex(token),
                           str("database_id"), str("station_code")};
      auto d = store.enroll_device(er);
      if (!d) {
        return fail(res, ctx, status_for(d.error()), d.error().code == ErrorCode::kConflict ? "conflict" : "refused",
                    d.error().message());
      }
      ++svc.metrics_.enrolled;
      ctx.log.device = d->id;
      ctx.log.station = d->station_code;
      auto id = store.identity();
      json station = nullptr;
      if (auto s = store.station_by_code(d->station_code)) {
        station = {{"id", s->id}, {"code", s->code}, {"name", s->name}, {"district", s->district},
                   {"province", s->province}};
      }
      reply(res, ctx, 200,
            {{"protocol", protocol::kVersion},
             {"device_id", d->id},
             {"token", token},
             {"role", d->role},
             {"station", station},
             {"server", {{"node_id", id ? id->device_id : ""}, {"name", id ? id->station_name : ""}}},
             {"server_time_ms", now_ms()}});
    });
  }

  void push(const httplib::Request& req, httplib::Response& res) {
    guarded("push", req, res, [&](Ctx& ctx) {
      auto lease = svc.lease();
      if (!lease) return fail(res, ctx, 503, "unavailable", lease.error().message());
      Store& store = **lease;
      auto caller = authenticate(req, res, ctx, store);
      if (!caller) return;
      if (!caller->may_write) return fail(res, ctx, 403, "forbidden", "a reviewer device cannot push records");
      auto doc = body_json(req, res, ctx);
      if (!doc) return;
      auto changes = wire::changes_from_json(*doc, "changes");
      if (!changes) return fail(res, ctx, 400, "bad_request", changes.error().message());
      if (static_cast<int64_t>(changes->size()) > protocol::kMaxChangesPerPush) {
        return fail(res, ctx, 413, "too_large",
                    "a push may carry at most " + std::to_string(protocol::kMaxChangesPerPush) + " changes");
      }
      ctx.log.changes = static_cast<int64_t>(changes->size());
      ApplyContext ac{caller->device.id, caller->write, caller->may_write_catalogue};
      auto out = store.apply_changes(*changes, ac);
      if (!out) {
        return fail(res, ctx, status_for(out.error()),
                    out.error().code == ErrorCode::kConflict ? "origin_reused" : "unavailable", out.error().message());
      }
      svc.metrics_.changes_applied += out->applied;
      svc.metrics_.duplicates += out->duplicates;
      svc.metrics_.quarantined += out->quarantined;
      svc.metrics_.conflicts += out->conflicts;
      (void)store.note_device_seen(caller->device.id, client_skew(req), false);
      json results = json::array();
      for (const auto& r : out->results) {
        if (r.status != ApplyStatus::kQuarantined) continue;  // the others are counted, not listed
        results.push_back({{"seq", r.seq},
                           {"origin", r.origin},
                           {"origin_seq", r.origin_seq},
                           {"status", to_string(r.status)},
                           {"reason", r.reason}});
      }
      reply(res, ctx, 200,
            {{"protocol", protocol::kVersion},
             {"acked_through", out->acked_through},
             {"applied", out->applied},
             {"duplicates", out->duplicates},
             {"quarantined", out->quarantined},
             {"conflicts", out->conflicts},
             {"results", results},
             {"server_time_ms", now_ms()}});
    });
  }

  static std::optional<int64_t> int_param(const httplib::Request& req, const char* name, int64_t def, int64_t lo,
                                          int64_t hi) {
    if (!req.has_param(name)) return def;
    std::string v = req.get_param_value(name);
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    int64_t n = std::stoll(v);
    if (n < lo || n > hi) return std::nullopt;
    return n;
  }

  void pull(const httplib::Request& req, httplib::Response& res) {
    guarded("pull", req, res, [&](Ctx& ctx) {
      if (!header_protocol_ok(req, res, ctx)) return;
      auto after = int_param(req, "after", 0, 0, int64_t{1} << 62);
      auto limit = int_param(req, "limit", protocol::kDefaultPullLimit, 1, protocol::kMaxPullLimit);
      auto max_bytes = int_param(req, "max_bytes", protocol::kDefaultPullBytes, 1024, protocol::kMaxPullBytes);
      if (!after) return fail(res, ctx, 400, "bad_request", "after: must be a log position, 0 or more");
      if (!limit) {
        return fail(res, ctx, 400, "bad_request",
                    "limit: must be between 1 and " + std::to_string(protocol::kMaxPullLimit));
      }
      if (!max_bytes) {
        return fail(res, ctx, 400, "bad_request",
                    "max_bytes: must be between 1024 and " + std::to_string(protocol::kMaxPullBytes));
      }
      auto lease = svc.lease();
      if (!lease) return fail(res, ctx, 503, "unavailable", lease.error().message());
      Store& store = **lease;
      auto caller = authenticate(req, res, ctx, store);
      if (!caller) return;
      LogPage page = store.changes_for_peer(*after, *limit, *max_bytes, caller->read, caller->device.id);
      ctx.log.changes = static_cast<int64_t>(page.changes.size());
      svc.metrics_.pulled += ctx.log.changes;
      (void)store.note_device_seen(caller->device.id, client_skew(req), !page.more);
      reply(res, ctx, 200,
            {{"protocol", protocol::kVersion},
             {"changes", wire::changes_to_json(page.changes)},
             {"next", page.next},
             {"more", page.more},
             {"server_time_ms", now_ms()}});
    });
  }

  void status(const httplib::Request& req, httplib::Response& res) {
    guarded("status", req, res, [&](Ctx& ctx) {
      auto lease = svc.lease();
      if (!lease) return fail(res, ctx, 503, "unavailable", lease.error().message());
      Store& store = **lease;
      auto id = store.identity();
      json body = {{"protocol", protocol::kVersion},
                   {"protocol_versions", {protocol::kVersion}},
                   {"node_id", id ? id->device_id : ""},
                   {"name", id ? id->station_name : ""},
                   {"server_time_ms", now_ms()}};
      if (req.has_header("Authorization")) {
        auto caller = authenticate(req, res, ctx, store);
        if (!caller) return;
        int64_t skew = client_skew(req);
        (void)store.note_device_seen(caller->device.id, skew, false);
        body["device"] = {{"id", caller->device.id},
                          {"role", caller->device.role},
                          {"station", caller->device.station_code},
                          {"clock_skew_ms", skew}};
      }
      reply(res, ctx, 200, body);
    });
  }
};

void SyncService::mount(httplib::Server& server) {
  auto h = std::make_shared<Handlers>(Handlers{*this});
  server.Post("/v1/enroll", [h](const httplib::Request& q, httplib::Response& r) { h->enroll(q, r); });
  server.Post("/v1/push", [h](const httplib::Request& q, httplib::Response& r) { h->push(q, r); });
  server.Get("/v1/pull", [h](const httplib::Request& q, httplib::Response& r) { h->pull(q, r); });
  server.Get("/v1/status", [h](const httplib::Request& q, httplib::Response& r) { h->status(q, r); });
}

std::string SyncService::metrics_text() {
  std::string out;
  auto counter = [&](const char* name, const char* help, int64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
           std::to_string(v) + "\n";
  };
  counter("tramsync_requests_total", "Sync requests handled.", metrics_.requests);
  counter("tramsync_request_errors_total", "Sync requests answered with an error.", metrics_.errors);
  counter("tramsync_changes_applied_total", "Changes applied from pushes.", metrics_.changes_applied);
  counter("tramsync_changes_duplicate_total", "Changes received again and ignored.", metrics_.duplicates);
  counter("tramsync_changes_quarantined_total", "Changes held in quarantine.", metrics_.quarantined);
  counter("tramsync_conflicts_total", "Concurrent edits recorded for review.", metrics_.conflicts);
  counter("tramsync_changes_pulled_total", "Changes sent in pull responses.", metrics_.pulled);
  counter("tramsync_devices_enrolled_total", "Devices enrolled.", metrics_.enrolled);
  auto l = lease();
  if (l) {
    out += "# HELP tramsync_station_last_sync_timestamp_seconds Last completed sync of any device of the station.\n"
           "# TYPE tramsync_station_last_sync_timestamp_seconds gauge\n";
    std::map<std::string, std::string> last;
    for (const auto& d : (*l)->devices()) {
      if (d.station_code.empty() || d.last_sync_at.empty()) continue;
      if (d.last_sync_at > last[d.station_code]) last[d.station_code] = d.last_sync_at;
    }
    auto id = (*l)->identity();
    int offset = id ? id->utc_offset_minutes : kDefaultUtcOffsetMinutes;
    for (const auto& [code, at] : last) {
      out += "tramsync_station_last_sync_timestamp_seconds{station=\"" + code + "\"} " +
             std::to_string(ms_from_local_time(at, offset) / 1000) + "\n";
    }
  }
  return out;
}

}  // namespace tramsync::sync
