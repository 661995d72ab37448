// Store: open and migrate, identity, the change log, status.
#include "tramsync/core/store.h"

#include <algorithm>

#include "entity.h"
#include "migrations.h"
#include "store_impl.h"
#include "tramsync/core/validate.h"

namespace tramsync {

// --- Action ------------------------------------------------------------------

Action::Action(StoreImpl& s, db::WriteTxn& txn) : s_(s), txn_(txn) {
  std::string stored = s_.meta("hlc");
  hlc_ = Hlc(stored.empty() ? 0 : std::stoull(stored));
}

uint64_t Action::peek_hlc() {
  if (!reserved_) reserved_ = hlc_.now(s_.now_ms());
  return *reserved_;
}

uint64_t Action::append_change(const std::string& kind, const std::string& record_id, const std::string& station_id,
                               const json& payload) {
  if (s_.options.before_change_append) {
    if (auto st = s_.options.before_change_append(kind); !st) throw AbortAction{st.error()};
  }
  uint64_t hlc = peek_hlc();
  reserved_.reset();
  const std::string& origin = s_.device_id();
  if (next_origin_seq_ == 0) {
    auto q = db().prepare("SELECT coalesce(max(origin_seq), 0) FROM changes WHERE origin = ?1");
    q.bind(1, origin);
    next_origin_seq_ = q.step() ? q.i64(0) + 1 : 1;
  }
  insert_change(Change{0, origin, next_origin_seq_++, hlc, station_id, kind, record_id, payload.dump(), ""},
                std::nullopt);
  return hlc;
}

void Action::append_remote(const Change& c, const std::string& from_peer) {
  insert_change(c, from_peer);
  reserved_.reset();
  hlc_.receive(c.hlc, s_.now_ms());
}

void Action::insert_change(const Change& c, const std::optional<std::string>& from_peer) {
  db().prepare(
          "INSERT INTO changes(origin, origin_seq, hlc, station_id, kind, record_id, payload, from_peer) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
      .bind(1, c.origin)
      .bind(2, c.origin_seq)
      .bind(3, c.hlc)
      .bind(4, c.station_id)
      .bind(5, c.kind)
      .bind(6, c.record_id)
      .bind(7, c.payload)
      .bind(8, from_peer)
      .run();
  last_ = c;
  last_.seq = db().last_insert_rowid();
  last_.from_peer = from_peer.value_or("");
}

void Action::finish() { s_.set_meta(txn_, "hlc", std::to_string(hlc_.last())); }

// --- StoreImpl -----------------------------------------------------------------

std::string StoreImpl::meta(const std::string& key) {
  auto s = db->prepare("SELECT value FROM meta WHERE key = ?1");
  s.bind(1, key);
  return s.step() ? s.str(0) : std::string();
}

void StoreImpl::set_meta(db::WriteTxn& txn, const std::string& key, const std::string& value) {
  txn.db()
      .prepare("INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
      .bind(1, key)
      .bind(2, value)
      .run();
}

int StoreImpl::utc_offset() {
  if (ident) return ident->utc_offset_minutes;
  std::string v = meta("utc_offset_minutes");
  return v.empty() ? kDefaultUtcOffsetMinutes : std::stoi(v);
}

std::string StoreImpl::local_now() { return local_time_from_ms(now_ms(), utc_offset()); }

Result<Identity> StoreImpl::require_identity() {
  if (ident) return *ident;
  if (meta("device_id").empty()) {
    return Error{ErrorCode::kRefused, "", "station file", "is not initialised: run `station-cli init` first", ""};
  }
  Identity id;
  id.station_id = meta("station_id");
  id.device_id = meta("device_id");
  id.device_name = meta("device_name");
  id.database_id = meta("database_id");
  id.utc_offset_minutes = utc_offset();
  auto s = db->prepare("SELECT code, name FROM stations WHERE id = ?1");
  s.bind(1, id.station_id);
  if (s.step()) {
    id.station_code = s.str(0);
    id.station_name = s.str(1);
  } else {
    // Enrolled, and the station's record not pulled yet.
    id.station_code = meta("station_code");
    id.station_name = meta("station_name");
  }
  ident = id;
  return id;
}

const std::string& StoreImpl::station_id() {
  if (!ident) {
    auto r = require_identity();
    if (!r) throw AbortAction{r.error()};
  }
  return ident->station_id;
}

const std::string& StoreImpl::device_id() {
  if (!ident) {
    auto r = require_identity();
    if (!r) throw AbortAction{r.error()};
  }
  return ident->device_id;
}

json StoreImpl::version_of(uint64_t hlc, const std::string& origin) { return json::array({hlc, origin}); }

json StoreImpl::versions(const char* table, const std::string& id) {
  auto s = db->prepare(std::string("SELECT _v FROM ") + table + " WHERE id = ?1");
  s.bind(1, id);
  if (!s.step()) return json::object();
  return json::parse(s.str(0));
}

void StoreImpl::set_versions(Action& a, const char* table, const std::string& id, const json& v) {
  a.db().prepare(std::string("UPDATE ") + table + " SET _v = ?1 WHERE id = ?2").bind(1, v.dump()).bind(2, id).run();
}

bool StoreImpl::event_voided(const std::string& event_id) {
  auto s = db->prepare("SELECT 1 FROM voids WHERE event_id = ?1 LIMIT 1");
  s.bind(1, event_id);
  return s.step();
}

Result<std::string> StoreImpl::resolve(const std::string& record_kind, const std::string& id_or_prefix) {
  static const std::vector<std::pair<std::string, std::vector<const char*>>> kTables = {
      {"patient", {"patients"}},
      {"household", {"households"}},
      {"waste_batch", {"waste_batches"}},
      {"item", {"items"}},
      {"event", {"visits", "stock_movements", "waste_stages", "voids"}},
      {"conflict", {"conflicts"}},
  };
  auto it = std::find_if(kTables.begin(), kTables.end(), [&](const auto& p) { return p.first == record_kind; });
  if (it == kTables.end()) throw std::logic_error("resolve: unknown record kind " + record_kind);
  const std::string field = record_kind == "waste_batch" ? "batch" : record_kind;
  std::string key = validate::trim(id_or_prefix);
  std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
  if (key.size() < 4 || key.find_first_not_of("0123456789abcdef-") != std::string::npos) {
    return Error::invalid(field, "must be an id or the first 4 or more characters of one", id_or_prefix);
  }
  std::vector<std::string> found;
  for (const char* table : it->second) {
    // Ids are lower-case hex: a range scan on the primary key finds a prefix.
    auto s = db->prepare(std::string("SELECT id FROM ") + table + " WHERE id >= ?1 AND id < ?2 LIMIT 2");
    s.bind(1, key).bind(2, key + "\x7f");
    while (s.step()) found.push_back(s.str(0));
  }
  if (found.empty()) return Error::not_found(field, id_or_prefix);
  if (found.size() > 1) {
    return Error{ErrorCode::kInvalid, "", field, "matches more than one record; give more characters", id_or_prefix};
  }
  return found.front();
}

// --- Store ---------------------------------------------------------------------

Store::Store(std::unique_ptr<StoreImpl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const std::string& path, StoreOptions options) {
  auto impl = std::make_unique<StoreImpl>();
  impl->options = std::move(options);
  if (impl->options.clock) {
    impl->clock = impl->options.clock;
  } else {
    impl->own_clock = std::make_unique<SystemClock>();
    impl->clock = impl->own_clock.get();
  }
  if (impl->options.ids) {
    impl->ids = impl->options.ids;
  } else {
    impl->own_ids = std::make_unique<RandomIdSource>();
    impl->ids = impl->own_ids.get();
  }
  try {
    impl->db = db::Db::open(path, impl->options.busy_timeout_ms);
    db::Db& db = *impl->db;
    // Refuse a file that is not a database before changing anything in it.
    db.exec("SELECT count(*) FROM sqlite_schema");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA trusted_schema = OFF");
    // Statement journals (one per statement that fires triggers inside a
    // transaction) and temporary b-trees stay in memory. On disk, a push of
    // 500 changes wrote about 10,000 pages to /var/tmp (bench/ingest_bench.cpp).
    db.exec("PRAGMA temp_store = MEMORY");
    if (impl->options.cache_mib > 0) db.exec("PRAGMA cache_size = -" + std::to_string(int64_t{impl->options.cache_mib} * 1024));
    int before = 0;
    {
      auto s = db.prepare("PRAGMA user_version");
      if (s.step()) before = static_cast<int>(s.i64(0));
    }
    if (before == 0) {
      // A database with tables but no TramSync schema belongs to another program.
      auto t = db.prepare("SELECT count(*) FROM sqlite_schema");
      if (t.step() && t.i64(0) > 0) {
        return Error{ErrorCode::kRefused, "open", "database", "is not a TramSync file (it has other tables); refusing to change it", path};
      }
    }
    if (before > latest_schema_version()) {
      return Error{ErrorCode::kRefused, "open", "database", "was made by a newer TramSync (schema version " +
                                                                std::to_string(before) + ", this one knows up to " +
                                                                std::to_string(latest_schema_version()) + ")",
                   path};
    }
    migrations::apply(db, impl->options.schema_version_limit);
    if (impl->meta("database_id").empty()) {
      db::WriteTxn txn(db);
      if (impl->meta("database_id").empty()) impl->set_meta(txn, "database_id", impl->ids->new_id());
      txn.commit();
    }
  } catch (const db::DbError& e) {
    return Error{ErrorCode::kIo, "open", "database", "cannot be opened (" + std::string(e.what()) + ")", path};
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

int Store::schema_version() {
  auto s = impl_->db->prepare("PRAGMA user_version");
  return s.step() ? static_cast<int>(s.i64(0)) : 0;
}

int Store::latest_schema_version() { return migrations::all().back().version; }

bool Store::initialized() { return !impl_->meta("device_id").empty(); }

Result<Identity> Store::identity() { return impl_->require_identity(); }

std::string Store::database_id() { return impl_->meta("database_id"); }

std::string Store::local_now() { return impl_->local_now(); }

Result<Identity> Store::init_station(const std::string& code, const std::string& name, const std::string& device_name,
                                     const std::string& district, const std::string& province) {
  if (initialized()) {
    auto id = impl_->require_identity();
    return Error{ErrorCode::kConflict, "init", "station file",
                 "is already initialised for station " + (id ? id->station_code : std::string("?")), ""};
  }
  std::string c = validate::trim(code);
  if (auto s = validate::required_text("station", c, 40); !s) return std::move(s.error()).in("init");
  if (c.find_first_of(" \t/\\") != std::string::npos) {
    return Error::invalid("station", "must be a code without spaces or slashes", code).in("init");
  }
  if (auto s = validate::required_text("name", name); !s) return std::move(s.error()).in("init");
  if (auto s = validate::optional_text("device", device_name, 100); !s) return std::move(s.error()).in("init");

  auto r = impl_->act("init", [&](Action& a) -> Result<Identity> {
    Identity id;
    id.station_id = station_id_for_code(c);
    id.station_code = c;
    id.station_name = validate::trim(name);
    id.device_id = impl_->ids->new_id();
    id.device_name = device_name.empty() ? "station" : device_name;
    id.database_id = impl_->meta("database_id");
    id.utc_offset_minutes = kDefaultUtcOffsetMinutes;
    impl_->set_meta(a.txn(), "station_id", id.station_id);
    impl_->set_meta(a.txn(), "device_id", id.device_id);
    impl_->set_meta(a.txn(), "device_name", id.device_name);
    impl_->set_meta(a.txn(), "utc_offset_minutes", std::to_string(id.utc_offset_minutes));
    impl_->ident = id;

    json fields = {{"code", id.station_code}, {"name", id.station_name}, {"district", district},
                   {"province", province}};
    a.db()
        .prepare("INSERT INTO stations(id, code, name, district, province, _v) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .bind(1, id.station_id)
        .bind(2, id.station_code)
        .bind(3, id.station_name)
        .bind(4, district)
        .bind(5, province)
        .bind(6, new_entity_versions(a))
        .run();
    record_entity_insert(a, kind::kStation, id.station_id, id.station_id, fields);
    return id;
  });
  if (!r) impl_->ident.reset();
  return r;
}

Result<Identity> Store::init_device(const StationInfo& station, const std::string& device_id,
                                    const std::string& device_name) {
  if (initialized()) {
    return Error{ErrorCode::kConflict, "enroll", "station file", "is already initialised", ""};
  }
  auto r = impl_->act("enroll", [&](Action& a) -> Result<Identity> {
    impl_->set_meta(a.txn(), "station_id", station.id);
    impl_->set_meta(a.txn(), "station_code", station.code);
    impl_->set_meta(a.txn(), "station_name", station.name);
    impl_->set_meta(a.txn(), "device_id", device_id);
    impl_->set_meta(a.txn(), "device_name", device_name.empty() ? "device" : device_name);
    impl_->set_meta(a.txn(), "utc_offset_minutes", std::to_string(kDefaultUtcOffsetMinutes));
    impl_->ident.reset();
    return Identity{};
  });
  if (!r) return r.error();
  impl_->ident.reset();
  return impl_->require_identity();
}

Status Store::batch(const std::function<Status()>& actions) {
  const char* ctx = "batch";
  if (impl_->batch) return Error::refused("batch", "cannot run inside another batch", "").in(ctx);
  StoreImpl::Batch b;
  // However the batch ends, act() goes back to one transaction per action; an
  // identity read inside a batch that rolled back is forgotten.
  struct Guard {
    StoreImpl& s;
    bool committed = false;
    ~Guard() {
      s.batch = nullptr;
      if (!committed) s.ident.reset();
    }
  };
  try {
    db::WriteTxn txn(*impl_->db);
    Action action(*impl_, txn);
    b.action = &action;
    Guard guard{*impl_};
    impl_->batch = &b;
    Status st = actions();
    impl_->batch = nullptr;
    if (b.failed) return std::move(*b.failed).in(ctx);
    if (!st) return std::move(st.error()).in(ctx);
    action.finish();
    txn.commit();
    guard.committed = true;
    return {};
  } catch (const db::DbError& e) {
    if (!e.is_io()) throw;
    return StoreImpl::write_failed(ctx, e);
  }
}

Result<std::string> Store::resolve_id(const std::string& record_kind, const std::string& id_or_prefix) {
  return impl_->resolve(record_kind, id_or_prefix);
}

std::vector<Change> Store::changes_after(int64_t seq, int64_t limit) {
  std::vector<Change> out;
  auto s = impl_->db->prepare(std::string("SELECT ") + kChangeColumns +
                              " FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2");
  s.bind(1, seq).bind(2, limit);
  while (s.step()) out.push_back(read_change(s));
  return out;
}

int64_t Store::change_count() {
  auto s = impl_->db->prepare("SELECT count(*) FROM changes");
  return s.step() ? s.i64(0) : 0;
}

std::string Store::integrity_check() {
  auto s = impl_->db->prepare("PRAGMA integrity_check");
  std::string out;
  while (s.step()) out += (out.empty() ? "" : "\n") + s.str(0);
  return out;
}

Result<StatusInfo> Store::status() {
  auto id = impl_->require_identity();
  if (!id) return std::move(id.error()).in("status");
  StatusInfo st;
  st.identity = *id;
  db::ReadTxn read(*impl_->db);
  st.changes_total = change_count();
  {
    // Pending: local changes after the furthest push cursor of any peer. Before a
    // first sync every change is pending.
    auto s = impl_->db->prepare(
        "SELECT count(*) FROM changes WHERE from_peer IS NULL AND seq > "
        "(SELECT coalesce(max(push_cursor), 0) FROM peers)");
    if (s.step()) st.changes_pending = s.i64(0);
  }
  {
    auto s = impl_->db->prepare("SELECT coalesce(max(last_sync_at), '') FROM peers");
    if (s.step()) st.last_sync = s.str(0);
  }
  std::string h = impl_->meta("hlc");
  st.hlc = h.empty() ? 0 : std::stoull(h);
  st.clock_ms = impl_->now_ms();
  st.schema_version = schema_version();
  return st;
}

}  // namespace tramsync
