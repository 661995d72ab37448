// A server's registry: the central node's identity, stations, devices and
// one-time enrollment codes.
#include "entity.h"
#include "store_impl.h"
#include <algorithm>

#include "tramsync/core/text.h"
#include "tramsync/core/validate.h"

namespace tramsync {

namespace {
std::vector<std::string> villages_from(const std::string& text) {
  std::vector<std::string> out;
  json v = json::parse(text, nullptr, false);
  if (!v.is_array()) return out;
  for (const auto& x : v) {
    if (x.is_string()) out.push_back(x.get<std::string>());
  }
  return out;
}

std::string villages_json(const std::vector<std::string>& villages) { return json(villages).dump(); }

// Checks and tidies a mobile device's villages: each a name of at most 200
// characters, trimmed, each once (compared without diacritics or case).
Result<std::vector<std::string>> clean_villages(const std::vector<std::string>& in) {
  std::vector<std::string> out, folded;
  for (const auto& v : in) {
    std::string t = validate::trim(v);
    if (auto st = validate::required_text("villages", t, 200); !st) return std::move(st.error());
    std::string f = fold_for_search(t);
    if (std::find(folded.begin(), folded.end(), f) != folded.end()) continue;
    folded.push_back(f);
    out.push_back(t);
  }
  return out;
}

// The fields of a device registration as it syncs (kind::kDevice).
json device_fields(const DeviceInfo& d) {
  return {{"name", d.name},         {"role", d.role},
          {"token_hash", d.token_hash}, {"database_id", d.database_id},
          {"villages", villages_json(d.villages)}, {"revoked_at", d.revoked_at},
          {"created_at", d.created_at}, {"renewed_from", d.renewed_from}};
}

// Station and mobile devices sync with their station's records; a reviewer
// belongs to the centre alone.
bool replicated(const DeviceInfo& d) { return !d.station_id.empty() && d.role != kRoleReviewer; }

// Registers a new device. Its registration syncs with the station's records:
// the centre hears of a hub's mobile device (and accepts it), a hub of one the
// centre enrolled.
void insert_device(Action& a, const DeviceInfo& d) {
  a.db()
      .prepare(
          "INSERT INTO devices(id, station_id, name, role, token_hash, database_id, created_at, villages, _v, "
          "renewed_from) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
      .bind(1, d.id)
      .bind(2, d.station_id.empty() ? std::optional<std::string>() : std::optional(d.station_id))
      .bind(3, d.name)
      .bind(4, d.role)
      .bind(5, d.token_hash)
      .bind(6, d.database_id)
      .bind(7, d.created_at)
      .bind(8, villages_json(d.villages))
      .bind(9, replicated(d) ? new_entity_versions(a) : std::string("{}"))
      .bind(10, d.renewed_from)
      .run();
  if (replicated(d)) record_entity_insert(a, kind::kDevice, d.id, d.station_id, device_fields(d));
}

// The devices matching `where` (SQL over d = devices, s = stations, with
// `arg` bound to ?1 when given), in `order`.
std::vector<DeviceInfo> select_devices(db::Db& db, const std::string& where,
                                       const std::optional<std::string>& arg = std::nullopt, const char* order = "") {
  auto q = db.prepare(
      "SELECT d.id, coalesce(d.station_id, ''), coalesce(s.code, ''), d.name, d.role, d.database_id, d.created_at, "
      "d.revoked_at, d.last_seen_at, d.last_sync_at, d.clock_skew_ms, d.token_hash, d.villages, d.renewed_from "
      "FROM devices d LEFT JOIN stations s ON s.id = d.station_id WHERE " +
      where + " " + order);
  if (arg) q.bind(1, *arg);
  std::vector<DeviceInfo> out;
  while (q.step()) {
    out.push_back(DeviceInfo{q.str(0), q.str(1), q.str(2), q.str(3), q.str(4), q.str(5), villages_from(q.str(12)),
                             q.str(6), q.str(7), q.str(8), q.str(9), q.i64(10), q.str(11), q.str(13)});
  }
  return out;
}

std::optional<DeviceInfo> one_device(db::Db& db, const std::string& where, const std::string& arg) {
  auto v = select_devices(db, where, arg);
  if (v.empty()) return std::nullopt;
  return v.front();
}

// A device by its id or an unambiguous prefix of at least 4 characters.
Result<std::string> resolve_device(db::Db& db, const std::string& id_or_prefix) {
  std::string id = validate::trim(id_or_prefix);
  std::vector<std::string> found;
  {
    auto q = db.prepare("SELECT id FROM devices WHERE id >= ?1 AND id < ?2 LIMIT 2");
    q.bind(1, id).bind(2, id + "\x7f");
    while (q.step()) found.push_back(q.str(0));
  }
  if (id.size() < 4 || found.empty()) return Error::not_found("device", id_or_prefix);
  if (found.size() > 1) return Error::invalid("device", "matches more than one device; give more characters", id_or_prefix);
  return found.front();
}

Status check_station_code(const std::string& code) {
  if (auto st = validate::required_text("code", code, 40); !st) return st;
  if (code.find_first_of(" \t/\\") != std::string::npos) {
    return Error::invalid("code", "must be a code without spaces or slashes", code);
  }
  return {};
}
}  // namespace

Result<Identity> Store::init_central(const std::string& name) {
  if (initialized()) {
    return Error{ErrorCode::kConflict, "init", "database", "is already initialised", ""};
  }
  if (auto st = validate::required_text("name", name); !st) return std::move(st.error()).in("init");
  auto r = impl_->act("init", [&](Action& a) -> Result<Identity> {
    Identity id;
    id.station_id = "";
    id.station_code = "";
    id.station_name = validate::trim(name);
    id.device_id = impl_->ids->new_id();
    id.device_name = validate::trim(name);
    id.database_id = impl_->meta("database_id");
    id.utc_offset_minutes = kDefaultUtcOffsetMinutes;
    impl_->set_meta(a.txn(), "station_id", "");
    impl_->set_meta(a.txn(), "station_name", id.station_name);
    impl_->set_meta(a.txn(), "device_id", id.device_id);
    impl_->set_meta(a.txn(), "device_name", id.device_name);
    impl_->set_meta(a.txn(), "node_role", "central");
    impl_->set_meta(a.txn(), "utc_offset_minutes", std::to_string(id.utc_offset_minutes));
    impl_->ident = id;
    return id;
  });
  if (!r) impl_->ident.reset();
  return r;
}

Result<StationInfo> Store::add_station(const std::string& code_in, const std::string& name, const std::string& district,
                                       const std::string& province) {
  const char* ctx = "station add";
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in(ctx);
  std::string code = validate::trim(code_in);
  if (auto st = check_station_code(code); !st) return std::move(st.error()).in(ctx);
  if (auto st = validate::required_text("name", name); !st) return std::move(st.error()).in(ctx);
  if (auto st = validate::optional_text("district", district, 200); !st) return std::move(st.error()).in(ctx);
  if (auto st = validate::optional_text("province", province, 200); !st) return std::move(st.error()).in(ctx);
  if (station_by_code(code)) {
    return Error{ErrorCode::kConflict, ctx, "code", "is already a registered station", code};
  }
  StationInfo s{station_id_for_code(code), code, validate::trim(name), validate::trim(district),
                validate::trim(province)};
  auto r = impl_->act(ctx, [&](Action& a) -> Result<StationInfo> {
    a.db()
        .prepare("INSERT INTO stations(id, code, name, district, province, _v) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .bind(1, s.id)
        .bind(2, s.code)
        .bind(3, s.name)
        .bind(4, s.district)
        .bind(5, s.province)
        .bind(6, new_entity_versions(a))
        .run();
    record_entity_insert(a, kind::kStation, s.id, s.id,
                         {{"code", s.code}, {"name", s.name}, {"district", s.district}, {"province", s.province}});
    return s;
  });
  return r;
}

std::optional<StationInfo> Store::station_by_code(const std::string& code) {
  auto q = impl_->db->prepare("SELECT id, code, name, district, province FROM stations WHERE code = ?1");
  q.bind(1, code);
  if (!q.step()) return std::nullopt;
  return StationInfo{q.str(0), q.str(1), q.str(2), q.str(3), q.str(4)};
}

Result<std::vector<StationInfo>> StoreImpl::stations_in_scope(const std::string& station_in,
                                                              const std::string& district_in) {
  const std::string district = fold_for_search(validate::trim(district_in));
  const std::string station = validate::trim(station_in);
  std::vector<StationInfo> out;
  bool district_known = district.empty(), station_known = station.empty();
  auto q = db->prepare("SELECT id, code, name, district, province FROM stations ORDER BY code");
  while (q.step()) {
    StationInfo s{q.str(0), q.str(1), q.str(2), q.str(3), q.str(4)};
    const bool in_district = district.empty() || fold_for_search(s.district) == district;
    const bool is_station = station.empty() || s.code == station || s.id == station;
    district_known = district_known || in_district;
    station_known = station_known || is_station;
    if (in_district && is_station) out.push_back(std::move(s));
  }
  if (!district_known) return Error::invalid("district", "is not the district of any station here", district_in);
  if (!station_known) return Error::not_found("station", station);
  if (out.empty() && !station.empty()) return Error::invalid("station", "is not in district " + district_in, station);
  return out;
}

std::vector<StationInfo> Store::stations() {
  std::vector<StationInfo> out;
  auto q = impl_->db->prepare("SELECT id, code, name, district, province FROM stations ORDER BY code");
  while (q.step()) out.push_back(StationInfo{q.str(0), q.str(1), q.str(2), q.str(3), q.str(4)});
  return out;
}

Status Store::add_enrollment_code(const std::string& code_hash, const std::string& station_code,
                                  const std::string& role, const std::string& device_name, int64_t expires_at_ms,
                                  const std::vector<std::string>& villages_in) {
  const char* ctx = "device add";
  auto villages = clean_villages(villages_in);
  if (!villages) return std::move(villages.error()).in(ctx);
  if (!villages->empty() && role != kRoleMobile) {
    return Error::invalid("villages", "can narrow a mobile device only (a " + role + " device reads its whole scope)",
                          villages_in.front())
        .in(ctx);
  }
  if (auto st = validate::one_of("role", role, {kRoleStation, kRoleMobile, kRoleReviewer}); !st) {
    return std::move(st.error()).in(ctx);
  }
  std::optional<std::string> station_id;
  if (role == kRoleReviewer) {
    if (!station_code.empty()) {
      return Error::invalid("station", "must not be given for a reviewer (a reviewer belongs to no station)",
                            station_code)
          .in(ctx);
    }
  } else {
    auto s = station_by_code(station_code);
    if (!s) return Error::not_found("station", station_code).in(ctx);
    station_id = s->id;
  }
  if (auto st = validate::optional_text("name", device_name, 100); !st) return std::move(st.error()).in(ctx);
  return impl_->act(ctx, [&](Action& a) -> Status {
    a.db()
        .prepare(
            "INSERT INTO enrollment_codes(code_hash, station_id, role, device_name, created_at, expires_at_ms, "
            "villages) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .bind(1, code_hash)
        .bind(2, station_id)
        .bind(3, role)
        .bind(4, validate::trim(device_name))
        .bind(5, impl_->local_now())
        .bind(6, expires_at_ms)
        .bind(7, villages_json(*villages))
        .run();
    return {};
  });
}

namespace {
// A device id as devices make them (RandomIdSource): a lower-case UUID.
bool device_id_shaped(const std::string& id) {
  return id.size() == 36 && id.find_first_not_of("0123456789abcdef-") == std::string::npos;
}
}  // namespace

Result<DeviceInfo> Store::enroll_device(const EnrollmentRequest& req) {
  const char* ctx = "enroll";
  if (!device_id_shaped(req.device_id)) {
    return Error::invalid("device_id", "must be a lower-case UUID", req.device_id).in(ctx);
  }
  if (auto st = validate::optional_text("device_name", req.device_name, 100); !st) return std::move(st.error()).in(ctx);
  if (auto st = validate::optional_text("database_id", req.database_id, 100); !st) return std::move(st.error()).in(ctx);
  return impl_->act(ctx, [&](Action& a) -> Result<DeviceInfo> {
    auto q = a.db().prepare(
        "SELECT coalesce(e.station_id, ''), e.role, e.device_name, e.expires_at_ms, e.used_at, coalesce(s.code, ''), "
        "e.device_id, e.villages "
        "FROM enrollment_codes e LEFT JOIN stations s ON s.id = e.station_id WHERE e.code_hash = ?1");
    q.bind(1, req.code_hash);
    if (!q.step()) {
      return Error{ErrorCode::kRefused, "", "code", "is not a valid enrollment code (check it, or ask for a new one)",
                   ""};
    }
    std::string station_id = q.str(0), role = q.str(1), name = q.str(2), used = q.str(4), code = q.str(5),
                used_by = q.str(6), villages = q.str(7);
    int64_t expires = q.i64(3);
    q.release();
    auto prev = device(req.device_id);
    // Only the same file may come back as an enrolled device: device ids are
    // not secret (they are the origin of every change), file ids are.
    const bool same_file = prev && !req.database_id.empty() && prev->database_id == req.database_id;
    if (!used.empty() && used_by == req.device_id && impl_->now_ms() <= expires && same_file) {
      // The same device again with the code it redeemed: its answer was lost
      // on the way back. Enrollment is retried safely: the device gets a new
      // token (the one sent before never arrived) and stays the same device.
      if (!prev->revoked()) {
        a.db()
            .prepare("UPDATE devices SET token_hash = ?1 WHERE id = ?2")
            .bind(1, req.token_hash)
            .bind(2, req.device_id)
            .run();
        if (replicated(*prev)) {
          record_entity_update(a, "devices", kind::kDevice, prev->id, prev->station_id,
                               {{"token_hash", req.token_hash}});
        }
        return *device(req.device_id);
      }
    }
    if (!used.empty()) {
      return Error{ErrorCode::kRefused, "", "code", "was already used at " + used.substr(0, 16) + "; ask for a new one",
                   ""};
    }
    if (impl_->now_ms() > expires) {
      return Error{ErrorCode::kRefused, "", "code", "has expired; ask the centre for a new one", ""};
    }
    if (!req.station_code.empty() && req.station_code != code) {
      return Error{ErrorCode::kRefused, "", "station",
                   "of this file does not match the enrollment code's station " +
                       (code.empty() ? std::string("(a reviewer code)") : code),
                   req.station_code};
    }
    std::string now = impl_->local_now();
    if (prev) {
      // A device enrolled before comes back with a fresh code (its token was
      // lost, or it was revoked and found again): the same file keeps its
      // identity and gets a new token; anything else is refused.
      if (!same_file) {
        return Error{ErrorCode::kConflict, "", "device_id",
                     "is enrolled here with another file: a copied or restored file cannot take over a device; "
                     "enroll it as a new device",
                     req.device_id};
      }
      if (prev->station_id != station_id) {
        return Error{ErrorCode::kRefused, "", "station",
                     "of the enrollment code is not this device's station " + prev->station_code, code};
      }
      a.db()
          .prepare("UPDATE devices SET token_hash = ?1, revoked_at = '', role = ?2, villages = ?3 WHERE id = ?4")
          .bind(1, req.token_hash)
          .bind(2, role)
          .bind(3, villages)
          .bind(4, req.device_id)
          .run();
      if (replicated(*device(req.device_id))) {
        record_entity_update(a, "devices", kind::kDevice, prev->id, prev->station_id,
                             {{"token_hash", req.token_hash}, {"revoked_at", ""}, {"role", role}, {"villages", villages}});
      }
    } else {
      DeviceInfo d;
      d.id = req.device_id;
      d.station_id = station_id;
      d.name = req.device_name.empty() ? name : validate::trim(req.device_name);
      d.role = role;
      d.token_hash = req.token_hash;
      d.database_id = req.database_id;
      d.villages = villages_from(villages);
      d.created_at = now;
      insert_device(a, d);
    }
    a.db()
        .prepare("UPDATE enrollment_codes SET used_at = ?1, device_id = ?2 WHERE code_hash = ?3")
        .bind(1, now)
        .bind(2, req.device_id)
        .bind(3, req.code_hash)
        .run();
    return *device(req.device_id);
  });
}

Result<DeviceInfo> Store::renew_device(const std::string& from_id, const std::string& new_id,
                                       const std::string& token_hash, const std::string& database_id) {
  const char* ctx = "new device identity";
  if (!device_id_shaped(new_id)) return Error::invalid("device_id", "must be a lower-case UUID", new_id).in(ctx);
  if (auto st = validate::optional_text("database_id", database_id, 100); !st) return std::move(st.error()).in(ctx);
  return impl_->act(ctx, [&](Action& a) -> Result<DeviceInfo> {
    auto prev = device(from_id);
    if (!prev) return Error::not_found("device", from_id);
    if (prev->revoked()) return Error::refused("device", "is revoked", from_id);
    if (prev->role == kRoleReviewer) return Error::refused("device", "is a reviewer: it writes no records", from_id);
    if (auto existing = device(new_id)) {
      // The answer to this very renewal was lost and the device asks again
      // (same new id, same file): it gets a fresh token, not a refusal that
      // would stop its sync and leave the first registration unused.
      if (existing->renewed_from == prev->id && existing->database_id == database_id && !existing->revoked()) {
        a.db().prepare("UPDATE devices SET token_hash = ?1 WHERE id = ?2").bind(1, token_hash).bind(2, new_id).run();
        if (replicated(*existing)) {
          record_entity_update(a, "devices", kind::kDevice, new_id, existing->station_id, {{"token_hash", token_hash}});
        }
        return *device(new_id);
      }
      return Error{ErrorCode::kConflict, "", "device_id", "is already registered here", new_id};
    }
    // An id some node already writes under would merge two writers' changes.
    if (new_id == impl_->device_id() || max_origin_seq(new_id) > 0) {
      return Error{ErrorCode::kConflict, "", "device_id", "is already a writer's origin here", new_id};
    }
    DeviceInfo d = *prev;
    d.id = new_id;
    d.renewed_from = prev->id;
    d.token_hash = token_hash;
    d.database_id = database_id;
    d.created_at = impl_->local_now();
    d.revoked_at = d.last_seen_at = d.last_sync_at = "";
    d.clock_skew_ms = 0;
    insert_device(a, d);
    return *device(new_id);
  });
}

std::optional<DeviceInfo> Store::device_by_token_hash(const std::string& token_hash) {
  auto d = one_device(*impl_->db, "d.token_hash = ?1", token_hash);
  // A device renewed from a revoked one is revoked with it, however many
  // renewals ago and whichever server made it (the chain is bounded, as a
  // replicated row could name a cycle).
  if (d && !d->revoked()) {
    std::string from = d->renewed_from;
    for (int hops = 0; !from.empty() && hops < 1000; ++hops) {
      auto prev = device(from);
      if (!prev) break;
      if (prev->revoked()) {
        d->revoked_at = prev->revoked_at;
        break;
      }
      from = prev->renewed_from;
    }
  }
  return d;
}

std::optional<DeviceInfo> Store::device(const std::string& id) { return one_device(*impl_->db, "d.id = ?1", id); }

std::vector<DeviceInfo> Store::devices() {
  return select_devices(*impl_->db, "1", std::nullopt, "ORDER BY s.code, d.created_at");
}

Result<DeviceInfo> Store::revoke_device(const std::string& id_or_prefix) {
  const char* ctx = "device revoke";
  auto id = resolve_device(*impl_->db, id_or_prefix);
  if (!id) return std::move(id.error()).in(ctx);
  return impl_->act(ctx, [&](Action& a) -> Result<DeviceInfo> {
    auto d = device(*id);
    if (d->revoked()) return *d;
    const std::string now = impl_->local_now();
    a.db().prepare("UPDATE devices SET revoked_at = ?1 WHERE id = ?2").bind(1, now).bind(2, d->id).run();
    // The revocation reaches every server the device could sync with.
    if (replicated(*d)) record_entity_update(a, "devices", kind::kDevice, d->id, d->station_id, {{"revoked_at", now}});
    return *device(d->id);
  });
}

Result<DeviceInfo> Store::set_device_villages(const std::string& id_or_prefix,
                                              const std::vector<std::string>& villages_in) {
  const char* ctx = "device scope";
  auto id = resolve_device(*impl_->db, id_or_prefix);
  if (!id) return std::move(id.error()).in(ctx);
  auto villages = clean_villages(villages_in);
  if (!villages) return std::move(villages.error()).in(ctx);
  auto d = device(*id);
  if (d->role != kRoleMobile) {
    return Error::invalid("device", "is a " + d->role + " device; only a mobile device is narrowed to villages", d->id)
        .in(ctx);
  }
  return impl_->act(ctx, [&](Action& a) -> Result<DeviceInfo> {
    const std::string text = villages_json(*villages);
    a.db().prepare("UPDATE devices SET villages = ?1 WHERE id = ?2").bind(1, text).bind(2, d->id).run();
    record_entity_update(a, "devices", kind::kDevice, d->id, d->station_id, {{"villages", text}});
    return *device(d->id);
  });
}

Status Store::note_device_seen(const std::string& id, std::optional<int64_t> clock_skew_ms, bool synced) {
  return impl_->act("device", [&](Action& a) -> Status {
    std::string now = impl_->local_now();
    a.db()
        .prepare(
            "UPDATE devices SET last_seen_at = ?1, clock_skew_ms = coalesce(?2, clock_skew_ms), "
            "last_sync_at = CASE WHEN ?3 THEN ?1 ELSE last_sync_at END WHERE id = ?4")
        .bind(1, now)
        .bind(2, clock_skew_ms)
        .bind(3, synced)
        .bind(4, id)
        .run();
    return {};
  });
}

}  // namespace tramsync
