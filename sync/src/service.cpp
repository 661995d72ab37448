#include "tramsync/sync/service.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <random>

#include "tramsync/core/text.h"
#include "tramsync/core/timed_mutex.h"
#include "tramsync/core/time.h"
#include "tramsync/sync/auth.h"
#include "tramsync/sync/protocol.h"
#include "tramsync/sync/report_format.h"
#include "tramsync/sync/review_admin.h"
#include "wire_json.h"

namespace tramsync::sync {

using json = nlohmann::json;

// --- who is calling ------------------------------------------------------------

Result<Caller> TokenAuthorizer::authorize(Store& store, const std::string& bearer_token) {
  if (bearer_token.size() != 64) return Error::not_found("token", "");
  const std::string hash = auth::sha256_hex(bearer_token);
  auto d = store.device_by_token_hash(hash);
  // The lookup is by hash; the comparison that decides is constant-time.
  if (!d || !auth::constant_time_equal(d->token_hash, hash)) return Error::not_found("token", "");
  if (d->revoked()) {
    return Error{ErrorCode::kRefused, "", "device",
                 "was revoked at " + d->revoked_at.substr(0, 16) +
                     "; it can no longer sync (if it was found, ask the centre for a new code and enroll it again)",
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
    if (d->role == kRoleMobile) {
      // A mobile team reads the villages it serves (all of them when none are
      // set) and no device registrations; it writes anywhere in its station.
      for (const auto& v : d->villages) c.read.villages.push_back(fold_for_search(v));
      c.read.devices = false;
    } else {
      c.may_relay = true;
    }
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

// The one store that applies pushes, one at a time. Its page cache stays warm
// from push to push; a pooled store would find its cache invalidated by the
// other connections' writes and read the indexes again from the OS.
struct SyncService::Writer {
  TimedMutex mu;
  std::unique_ptr<Store> store;  // GUARDED_BY(mu), opened on first use
};

SyncService::SyncService(ServiceOptions options, std::shared_ptr<Authorizer> authorizer)
    : options_(std::move(options)),
      authorizer_(std::move(authorizer)),
      pool_(std::make_unique<Pool>()),
      writer_(std::make_unique<Writer>()) {
  // Request ids differ across restarts, so log lines of two runs never share one.
  std::random_device rd;
  request_counter_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  pool_->path = options_.db_path;
  pool_->options = options_.store_options;
}

SyncService::~SyncService() = default;

// --- the handlers ----------------------------------------------------------------

struct SyncService::Handlers {
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
                  static_cast<unsigned long long>((svc.request_counter_.fetch_add(1) + 1) * 0x9E3779B97F4A7C15ULL));
    return buf;
  }

  static void reply(Response& res, Ctx& ctx, int status, const json& body) {
    res.status = status;
    res.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
    res.headers["Content-Type"] = "application/json";
    ctx.log.bytes_out = static_cast<int64_t>(res.body.size());
  }

  void fail(Response& res, Ctx& ctx, int status, const std::string& code, const std::string& message) {
    ctx.log.error = code;
    ++svc.metrics_.errors;
    reply(res, ctx, status, {{"error", message}, {"code", code}, {"request_id", ctx.log.request_id}});
  }

  static int status_for(const Error& e) {
    if (e.disk_full()) return 507;  // Insufficient Storage: the centre's disk, not the device, must change
    switch (e.code) {
      case ErrorCode::kInvalid: return 400;
      case ErrorCode::kNotFound: return 404;
      case ErrorCode::kRefused: return 403;
      case ErrorCode::kConflict: return 409;
      case ErrorCode::kIo: return 503;
    }
    return 500;
  }

  // Runs a handler body, turning anything unexpected into a JSON 500 with the
  // request id (the cause goes to the log, not to the caller).
  template <typename F>
  Response guarded(const char* endpoint, const Request& req, F&& body) {
    Response res;
    Ctx ctx;
    ctx.log.endpoint = endpoint;
    ctx.log.request_id = new_request_id();
    ctx.log.remote = req.remote;
    ctx.log.bytes_in = static_cast<int64_t>(req.body.size());
    try {
      body(res, ctx);
    } catch (const std::exception& e) {
      ctx.log.error = std::string("internal: ") + e.what();
      ++svc.metrics_.errors;
      reply(res, ctx, 500, {{"error", "internal error; the server log has the details"},
                            {"code", "internal"},
                            {"request_id", ctx.log.request_id}});
    }
    ++svc.metrics_.requests;
    ctx.log.status = res.status;
    ctx.log.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - ctx.start).count();
    if (svc.options_.on_request) svc.options_.on_request(ctx.log);
    return res;
  }

  // Parses a JSON request body with its protocol version; replies and returns
  // nullopt when it is not acceptable.
  std::optional<json> body_json(const Request& req, Response& res, Ctx& ctx) {
    json doc = wire::parse_body(req.body);
    if (doc.is_discarded() || !doc.is_object()) {
      std::string why = "body: must be a JSON object";
      if (doc.is_discarded()) {
        why += wire::nested_too_deep(req.body)
                   ? " nested at most " + std::to_string(protocol::kMaxJsonDepth) + " deep"
                   : " (this is not valid JSON)";
      }
      fail(res, ctx, 400, "bad_request", why);
      return std::nullopt;
    }
    if (auto st = wire::check_protocol(doc); !st) {
      fail(res, ctx, 400, "unsupported_protocol",
           st.error().message() + "; this server speaks protocol " + std::to_string(protocol::kVersion));
      return std::nullopt;
    }
    return doc;
  }

  bool header_protocol_ok(const Request& req, Response& res, Ctx& ctx) {
    std::string v = req.header(protocol::kProtocolHeader);
    if (v.empty() || v == std::to_string(protocol::kVersion)) return true;
    fail(res, ctx, 400, "unsupported_protocol",
         "protocol version " + v.substr(0, 20) + " is not supported; this server speaks protocol " +
             std::to_string(protocol::kVersion));
    return false;
  }

  std::optional<Caller> authenticate(const Request& req, Response& res, Ctx& ctx, Store& store) {
    std::string h = req.header("Authorization");
    const std::string prefix = "bearer ";
    std::string scheme = h.substr(0, prefix.size());
    for (auto& ch : scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (scheme != prefix) {
      fail(res, ctx, 401, "unauthorized", "missing bearer token: enroll this device first");
      return std::nullopt;
    }
    auto c = svc.authorizer_->authorize(store, h.substr(prefix.size()));
    if (!c) {
      if (c.error().code == ErrorCode::kRefused) {
        fail(res, ctx, 401, "revoked", "this device " + c.error().rule);
      } else {
        fail(res, ctx, 401, "unauthorized", "unknown token: this device is not enrolled here");
      }
      return std::nullopt;
    }
    ctx.log.device = c->device.id;
    ctx.log.station = c->device.station_code;
    return c.value();
  }

  // The caller's clock minus this server's, from its X-TramSync-Time header;
  // nullopt without a usable header (then nothing is recorded).
  std::optional<int64_t> client_skew(const Request& req) {
    std::string t = req.header(protocol::kClientTimeHeader);
    if (t.empty() || t.size() > 18 || t.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
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

  // What every answer says about this node, so a client notices a server
  // replaced or restored from a backup (its database id changes).
  json node_fields(Store& store) {
    auto id = store.identity();
    return {{"node_id", id ? id->device_id : ""}, {"database_id", id ? id->database_id : ""}};
  }

  Response enroll(const Request& req) {
    return guarded("enroll", req, [&](Response& res, Ctx& ctx) {
      if (rate_limited(req.remote)) {
        res.headers["Retry-After"] = "60";
        return fail(res, ctx, 429, "rate_limited", "too many enrollment attempts; wait a minute");
      }
      auto doc = body_json(req, res, ctx);
      if (!doc) return;
      auto str = [&](const char* k) {
        return doc->contains(k) && (*doc)[k].is_string() ? (*doc)[k].get<std::string>() : std::string();
      };
      const std::string code = auth::normalize_enrollment_code(str("code"));
      if (code.empty()) return fail(res, ctx, 400, "bad_request", "code: must be the enrollment code from the centre");
      auto lease = svc.lease();
      if (!lease) return fail(res, ctx, 503, "unavailable", lease.error().message());
      Store& store = **lease;
      std::string token = auth::new_token();
      EnrollmentRequest er{auth::enrollment_code_hash(code), str("device_id"), str("device_name"), auth::sha256_hex(token),
                           str("database_id"), str("station_code")};
      auto d = store.enroll_device(er);
      if (!d) {
        const int status = status_for(d.error());
        return fail(res, ctx, status,
                    status == 400   ? "bad_request"
                    : status == 409 ? "conflict"
                    : status == 503 ? "unavailable"
                                    : "refused",
                    d.error().message());
      }
      ++svc.metrics_.enrolled;
      ctx.log.station = d->station_code;
      auto id = store.identity();
      json station = nullptr;
      if (auto s = store.station_by_code(d->station_code)) {
        station = {{"id", s->id}, {"code", s->code}, {"name", s->name}, {"district", s->district},
                   {"province", s->province}};
      }
      json body = {{"protocol", protocol::kVersion},
                   {"device_id", d->id},
                   {"token", token},
                   {"role", d->role},
                   {"station", station},
                   {"server", {{"name", id ? id->station_name : ""}}},
                   {"server_time_ms", now_ms()}};
      body.update(node_fields(store));
      reply(res, ctx, 200, body);
    });
  }

  // POST /v1/renew {"device_id": NEW, "database_id": ...}: the caller's file
  // is a copy or an old backup (its changes clash with what this server holds
  // of its device): it becomes a new device of the same station, role and
  // villages, with a new token. The old registration stays for the other copy.
  Response renew(const Request& req) {
    return guarded("renew", req, [&](Response& res, Ctx& ctx) {
      auto lease = svc.lease();
      if (!lease) return fail(res, ctx, 503, "unavailable", lease.error().message());
      Store& store = **lease;
      auto caller = authenticate(req, res, ctx, store);
      if (!caller) return;
      if (!caller->may_write) return fail(res, ctx, 403, "forbidden", "a reviewer device writes no records");
      auto doc = body_json(req, res, ctx);
      if (!doc) return;
      auto str = [&](const char* k) {
        return doc->contains(k) && (*doc)[k].is_string() ? (*doc)[k].get<std::string>() : std::string();
      };
      std::string token = auth::new_token();
      auto d = store.renew_device(caller->device.id, str("device_id"), auth::sha256_hex(token), str("database_id"));
      if (!d) {
        const int status = status_for(d.error());
        return fail(res, ctx, status, status == 409 ? "conflict" : status == 400 ? "bad_request" : "refused",
                    d.error().message());
      }
      json body = {{"protocol", protocol::kVersion},
                   {"device_id", d->id},
                   {"renewed_from", caller->device.id},
                   {"token", token},
                   {"role", d->role},
                   {"server_time_ms", now_ms()}};
      body.update(node_fields(store));
      reply(res, ctx, 200, body);
    });
  }

  Response push(const Request& req) {
    return guarded("push", req, [&](Response& res, Ctx& ctx) {
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
                    "changes: a push may carry at most " + std::to_string(protocol::kMaxChangesPerPush) +
                        " changes, got " + std::to_string(changes->size()));
      }
      ctx.log.changes = static_cast<int64_t>(changes->size());
      // A device writes under its own name; a station's own device also
      // relays for the station's other devices registered here.
      ApplyContext ac;
      ac.from_peer = caller->device.id;
      ac.write_scope = caller->write;
      ac.may_write_catalogue = caller->may_write_catalogue;
      ac.allowed_origins = {caller->device.id};
      if (caller->may_relay) ac.relay_station = caller->device.station_id;
      // Pushes take turns on the writer; one that waits past the busy timeout
      // is answered 503 and the client retries.
      std::unique_lock<TimedMutex> turn(svc.writer_->mu, std::defer_lock);
      if (!turn.try_lock_for(std::chrono::milliseconds(svc.options_.store_options.busy_timeout_ms))) {
        return fail(res, ctx, 503, "unavailable", "the server is busy applying other pushes; try again");
      }
      if (!svc.writer_->store) {
        auto w = Store::open(svc.options_.db_path, svc.options_.store_options);
        if (!w) return fail(res, ctx, 503, "unavailable", w.error().message());
        svc.writer_->store = std::move(w.value());
      }
      Store& writer = *svc.writer_->store;
      auto out = writer.apply_changes(*changes, ac);
      if (!out && out.error().code == ErrorCode::kConflict) {
        // The clash names the change: the device renews its identity and
        // renumbers its changes from that one on (docs/protocol.md).
        const std::string& v = out.error().value;
        const auto slash = v.rfind('/');
        ctx.log.error = "origin_reused";
        ++svc.metrics_.errors;
        return reply(res, ctx, 409,
                     {{"error", out.error().message()},
                      {"code", "origin_reused"},
                      {"origin", v.substr(0, slash)},
                      {"origin_seq", slash == std::string::npos ? 0 : std::stoll(v.substr(slash + 1))},
                      {"request_id", ctx.log.request_id}});
      }
      if (!out) {
        return fail(res, ctx, status_for(out.error()),
                    out.error().code == ErrorCode::kConflict ? "origin_reused"
                    : out.error().disk_full()                ? "disk_full"
                                                             : "unavailable",
                    out.error().message());
      }
      svc.metrics_.changes_applied += out->applied;
      svc.metrics_.duplicates += out->duplicates;
      svc.metrics_.quarantined += out->quarantined;
      svc.metrics_.conflicts += out->conflicts;
      (void)writer.note_device_seen(caller->device.id, client_skew(req), false);
      turn.unlock();
      json results = json::array();
      for (const auto& r : out->results) {
        if (r.status != ApplyStatus::kQuarantined) continue;  // the others are counted, not listed
        results.push_back({{"seq", r.seq},
                           {"origin", r.origin},
                           {"origin_seq", r.origin_seq},
                           {"status", to_string(r.status)},
                           {"reason", r.reason}});
      }
      json body = {{"protocol", protocol::kVersion},
                   {"acked_through", out->acked_through},
                   {"applied", out->applied},
                   {"duplicates", out->duplicates},
                   {"quarantined", out->quarantined},
                   {"conflicts", out->conflicts},
                   {"results", results},
                   {"server_time_ms", now_ms()}};
      body.update(node_fields(store));
      reply(res, ctx, 200, body);
    });
  }

  static std::optional<int64_t> int_param(const Request& req, const char* name, int64_t def, int64_t lo, int64_t hi) {
    auto it = req.params.find(name);
    if (it == req.params.end()) return def;
    const std::string& v = it->second;
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    int64_t n = std::stoll(v);
    if (n < lo || n > hi) return std::nullopt;
    return n;
  }

  Response pull(const Request& req) {
    return guarded("pull", req, [&](Response& res, Ctx& ctx) {
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
      // A pull that reaches the end of the log completes a sync (push comes first).
      (void)store.note_device_seen(caller->device.id, client_skew(req), !page.more);
      json body = {{"protocol", protocol::kVersion},
                   {"changes", wire::changes_to_json(page.changes)},
                   {"next", page.next},
                   {"more", page.more},
                   // What the caller reads here: a device whose villages were
                   // widened asks again from the start (docs/protocol.md).
                   {"scope", {{"villages", caller->device.villages}}},
                   {"server_time_ms", now_ms()}};
      body.update(node_fields(store));
      reply(res, ctx, 200, body);
    });
  }

  Response status(const Request& req) {
    return guarded("status", req, [&](Response& res, Ctx& ctx) {
      auto lease = svc.lease();
      if (!lease) return fail(res, ctx, 503, "unavailable", lease.error().message());
      Store& store = **lease;
      auto id = store.identity();
      json body = {{"protocol", protocol::kVersion},
                   {"protocol_versions", {protocol::kVersion}},
                   {"name", id ? id->station_name : ""},
                   {"log_end", store.last_seq()},
                   {"server_time_ms", now_ms()}};
      body.update(node_fields(store));
      if (!req.header("Authorization").empty()) {
        auto caller = authenticate(req, res, ctx, store);
        if (!caller) return;
        auto skew = client_skew(req);
        (void)store.note_device_seen(caller->device.id, skew, false);
        body["device"] = {{"id", caller->device.id},
                          {"role", caller->device.role},
                          {"station", caller->device.station_code},
                          {"clock_skew_ms", skew ? json(*skew) : json(nullptr)},
                          // What this server holds of the device's own changes:
                          // less than the device had acknowledged means the
                          // server was restored from a backup.
                          {"max_origin_seq", store.max_origin_seq(caller->device.id)}};
      }
      reply(res, ctx, 200, body);
    });
  }

  // Reviewer endpoints read the whole centre: only a reviewer's token may.
  std::optional<Caller> reviewer(const Request& req, Response& res, Ctx& ctx, Store& store) {
    auto caller = authenticate(req, res, ctx, store);
    if (!caller) return std::nullopt;
    if (caller->device.role != kRoleReviewer) {
      fail(res, ctx, 403, "forbidden",
           "this endpoint is for reviewer devices; a " + caller->device.role + " device syncs with /v1/push and /v1/pull");
      return std::nullopt;
    }
    return caller;
  }

  // GET /v1/reports/NAME?station=&district=&stale_days=&covid_days=&overdue_days=&date=&limit=&format=json|csv
  Response report(const Request& req) {
    return guarded("report", req, [&](Response& res, Ctx& ctx) {
      const std::string name = req.path.substr(std::string("/v1/reports/").size());
      CentralReportOptions o;  // its defaults are the parameters' defaults
      auto text = [&](const char* k) { return text_param(req, k); };
      o.station = text("station");
      o.district = text("district");
      if (!text("date").empty()) o.date = text("date");
      auto stale = int_param(req, "stale_days", o.stale_days, 0, 3650);
      auto covid = int_param(req, "covid_days", o.settings.covid_overdue_days, 0, 3650);
      auto other = int_param(req, "overdue_days", o.settings.other_overdue_days, 1, 3650);
      if (!stale) return fail(res, ctx, 400, "bad_request", "stale_days: must be a whole number from 0 to 3650");
      if (!covid) return fail(res, ctx, 400, "bad_request", "covid_days: must be a whole number from 0 to 3650");
      if (!other) return fail(res, ctx, 400, "bad_request", "overdue_days: must be a whole number from 1 to 3650");
      o.stale_days = static_cast<int>(*stale);
      o.settings.covid_overdue_days = static_cast<int>(*covid);
      o.settings.other_overdue_days = static_cast<int>(*other);
      if (!text("limit").empty()) {
        auto limit = int_param(req, "limit", 0, 0, 1'000'000);
        if (!limit) return fail(res, ctx, 400, "bad_request", "limit: must be a whole number from 0 to 1000000");
        o.list_limit = static_cast<int>(*limit);
      }
      const std::string format = text("format").empty() ? "json" : text("format");
      if (format != "json" && format != "csv") {
        return fail(res, ctx, 400, "bad_request", "format: must be json or csv, got \"" + format.substr(0, 20) + "\"");
      }
      auto lease = svc.lease();
      if (!lease) return fail(res, ctx, 503, "unavailable", lease.error().message());
      Store& store = **lease;
      if (!reviewer(req, res, ctx, store)) return;
      auto r = store.central_report(name, o);
      if (!r) {
        // An unknown report is a missing resource; a bad option a bad request.
        const int status = r.error().field == "report" ? 404 : status_for(r.error());
        return fail(res, ctx, status, status == 404 ? "not_found" : "bad_request", r.error().message());
      }
      if (format == "csv") {
        res.status = 200;
        res.body = report_to_csv(*r);
        res.headers["Content-Type"] = "text/csv; charset=utf-8";
        ctx.log.bytes_out = static_cast<int64_t>(res.body.size());
        return;
      }
      reply(res, ctx, 200, report_to_json(*r));
    });
  }

  // A query parameter's text ("" when absent).
  static std::string text_param(const Request& req, const char* name) {
    auto it = req.params.find(name);
    return it == req.params.end() ? std::string() : it->second;
  }

  // What every successful sync answer carries, added to a reviewer's answer.
  json with_node_fields(Store& store, json body) {
    body["protocol"] = protocol::kVersion;
    body["server_time_ms"] = now_ms();
    body.update(node_fields(store));
    return body;
  }

  // GET /v1/conflicts?status=open|all&station=CODE
  Response conflicts(const Request& req) {
    return guarded("conflicts", req, [&](Response& res, Ctx& ctx) {
      auto lease = svc.lease();
      if (!lease) return fail(res, ctx, 503, "unavailable", lease.error().message());
      Store& store = **lease;
      if (!reviewer(req, res, ctx, store)) return;
      const std::string status = text_param(req, "status").empty() ? "open" : text_param(req, "status");
      if (status != "open" && status != "all") {
        return fail(res, ctx, 400, "bad_request", "status: must be open or all, got \"" + status.substr(0, 20) + "\"");
      }
      auto r = conflict_list(store, ConflictQuery{status == "all", text_param(req, "station")});
      if (!r) return fail(res, ctx, 400, "bad_request", r.error().message());
      reply(res, ctx, 200, with_node_fields(store, {{"conflicts", r->json}, {"status", status}}));
    });
  }

  // POST /v1/conflicts/ID/resolve {"keep": "winner"|"loser"|"<value>", "note": "..."}: the one
  // write a reviewer makes. The decision is the centre's change (Store::resolve_conflict).
  Response resolve(const Request& req) {
    return guarded("resolve", req, [&](Response& res, Ctx& ctx) {
      const std::string prefix = "/v1/conflicts/", suffix = "/resolve";
      const std::string id = req.path.substr(prefix.size(), req.path.size() - prefix.size() - suffix.size());
      auto lease = svc.lease();
      if (!lease) return fail(res, ctx, 503, "unavailable", lease.error().message());
      Store& store = **lease;
      if (!reviewer(req, res, ctx, store)) return;
      json doc = wire::parse_body(req.body);
      if (doc.is_discarded() || !doc.is_object()) {
        return fail(res, ctx, 400, "bad_request",
                    "body: must be a JSON object {\"keep\": \"winner\" | \"loser\" | \"<value>\", \"note\": \"...\"}");
      }
      // The body may name its protocol version like a sync body; it need not.
      if (doc.contains("protocol")) {
        if (auto st = wire::check_protocol(doc); !st) {
          return fail(res, ctx, 400, "unsupported_protocol",
                      st.error().message() + "; this server speaks protocol " + std::to_string(protocol::kVersion));
        }
      }
      auto keep = doc.find("keep");
      if (keep == doc.end() || !keep->is_string() || keep->get<std::string>().empty()) {
        return fail(res, ctx, 400, "bad_request",
                    std::string("keep: ") + (keep == doc.end() ? "is required" : "must be a non-empty string") +
                        ": \"winner\", \"loser\" or the value to write, as text" +
                        (keep == doc.end() ? "" : ", got " + keep->dump().substr(0, 40)));
      }
      auto note = doc.find("note");
      if (note != doc.end() && !note->is_string() && !note->is_null()) {
        return fail(res, ctx, 400, "bad_request", "note: must be a string, got " + note->dump().substr(0, 40));
      }
      auto r = conflict_resolve(store, id, keep->get<std::string>(),
                                note != doc.end() && note->is_string() ? note->get<std::string>() : "",
                                Decider::kReviewer);
      if (!r) {
        // Bad input 400, not allowed to a reviewer 403, unknown 404, already resolved 409.
        const Error& e = r.error();
        const int status = status_for(e);
        return fail(res, ctx, status,
                    status == 400   ? "bad_request"
                    : status == 403 ? "forbidden"
                    : status == 404 ? "not_found"
                    : status == 409 ? "conflict"
                                    : "unavailable",
                    e.message());
      }
      ctx.log.changes = 1;
      reply(res, ctx, 200, with_node_fields(store, r->json));
    });
  }

  // GET /v1/quarantine?status=held|all (read-only: release and drop are the operator's commands).
  Response quarantine(const Request& req) {
    return guarded("quarantine", req, [&](Response& res, Ctx& ctx) {
      auto lease = svc.lease();
      if (!lease) return fail(res, ctx, 503, "unavailable", lease.error().message());
      Store& store = **lease;
      if (!reviewer(req, res, ctx, store)) return;
      const std::string status = text_param(req, "status").empty() ? "held" : text_param(req, "status");
      if (status != "held" && status != "all") {
        return fail(res, ctx, 400, "bad_request", "status: must be held or all, got \"" + status.substr(0, 20) + "\"");
      }
      Shown r = quarantine_list(store, status == "all");
      reply(res, ctx, 200, with_node_fields(store, {{"quarantine", r.json}, {"status", status}}));
    });
  }

  Response refuse(const Request& req, int status, const std::string& message) {
    const char* code = status == 405   ? "method_not_allowed"
                       : status == 404 ? "not_found"
                       : status == 413 ? "too_large"
                                       : "bad_request";
    return guarded("other", req, [&](Response& res, Ctx& ctx) { fail(res, ctx, status, code, message); });
  }
};

Response SyncService::handle(const Request& req) {
  Handlers h{*this};
  struct Route {
    const char* path;
    const char* method;
    Response (Handlers::*fn)(const Request&);
  };
  static const Route kRoutes[] = {
      {"/v1/enroll", "POST", &Handlers::enroll},
      {"/v1/push", "POST", &Handlers::push},
      {"/v1/renew", "POST", &Handlers::renew},
      {"/v1/pull", "GET", &Handlers::pull},
      {"/v1/status", "GET", &Handlers::status},
      {"/v1/conflicts", "GET", &Handlers::conflicts},
      {"/v1/quarantine", "GET", &Handlers::quarantine},
  };
  if (req.path.rfind("/v1/reports/", 0) == 0) {
    if (req.method != "GET") return h.refuse(req, 405, "/v1/reports/NAME takes GET, not " + req.method.substr(0, 10));
    return h.report(req);
  }
  // /v1/conflicts/ID/resolve
  if (const std::string prefix = "/v1/conflicts/", suffix = "/resolve";
      req.path.size() > prefix.size() + suffix.size() && req.path.rfind(prefix, 0) == 0 &&
      req.path.compare(req.path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    if (req.method != "POST") {
      return h.refuse(req, 405, "/v1/conflicts/ID/resolve takes POST, not " + req.method.substr(0, 10));
    }
    return h.resolve(req);
  }
  for (const auto& r : kRoutes) {
    if (req.path != r.path) continue;
    if (req.method != r.method) {
      return h.refuse(req, 405, std::string(r.path) + " takes " + r.method + ", not " + req.method.substr(0, 10));
    }
    return (h.*r.fn)(req);
  }
  return h.refuse(req, 404, "no such endpoint: " + req.path.substr(0, 100));
}

Response SyncService::reject(const Request& req, int status, const std::string& message) {
  return Handlers{*this}.refuse(req, status, message);
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
      std::string label;
      for (char ch : code) {
        if (ch == '\\' || ch == '"') label += '\\';
        if (ch == '\n') {
          label += "\\n";
          continue;
        }
        label += ch;
      }
      out += "tramsync_station_last_sync_timestamp_seconds{station=\"" + label + "\"} " +
             std::to_string(ms_from_local_time(at, offset) / 1000) + "\n";
    }
  }
  return out;
}

}  // namespace tramsync::sync
