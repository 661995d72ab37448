// Applying peers' changes (merge), and reading the log for peers.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "entity.h"
#include "store_impl.h"
#include "tramsync/core/hlc.h"
#include "tramsync/core/merge.h"
#include "tramsync/core/text.h"
#include "tramsync/core/validate.h"

namespace tramsync {

const char* to_string(ApplyStatus s) {
  switch (s) {
    case ApplyStatus::kApplied: return "applied";
    case ApplyStatus::kDuplicate: return "duplicate";
    case ApplyStatus::kQuarantined: return "quarantined";
  }
  return "?";
}

namespace {

// --- what each kind of record looks like -----------------------------------------

enum class Type { kText, kOptText, kInt, kOptInt, kReal, kOptReal, kBool };

struct Column {
  const char* name;
  Type type;
  bool required_on_insert = false;
  const std::vector<std::string>* allowed = nullptr;  // an enumerated field
};

struct RecordSpec {
  const char* kind;
  const char* table;
  bool is_event;
  std::vector<Column> columns;
};

const std::vector<std::string> kReplicatedDeviceRoles = {kRoleStation, kRoleMobile};

const std::vector<RecordSpec>& specs() {
  static const std::vector<RecordSpec> kSpecs = {
      {kind::kStation, "stations", false,
       {{"code", Type::kText, true}, {"name", Type::kText, true}, {"district", Type::kText},
        {"province", Type::kText}}},
      {kind::kStaff, "staff", false,
       {{"name", Type::kText, true}, {"role", Type::kText}, {"active", Type::kBool}}},
      {kind::kHousehold, "households", false,
       {{"village", Type::kText, true}, {"head_name", Type::kText}, {"address", Type::kText},
        {"phone", Type::kText}, {"created_at", Type::kText, true}}},
      {kind::kPatient, "patients", false,
       {{"name", Type::kText, true}, {"sex", Type::kText, true, &kSexes}, {"birth", Type::kText, true},
        {"village", Type::kText, true}, {"household_id", Type::kOptText}, {"phone", Type::kText},
        {"national_id", Type::kText}, {"status", Type::kText, false, &kPatientStatuses},
        {"status_changed_at", Type::kText}, {"created_at", Type::kText, true}}},
      {kind::kItem, "items", false,
       {{"code", Type::kText, true}, {"name", Type::kText, true}, {"unit", Type::kText, true},
        {"kind", Type::kText, true, &kItemKinds}}},
      {kind::kItemReserve, "item_reserves", false, {{"item_id", Type::kText, true}, {"level", Type::kInt, true}}},
      {kind::kWasteBatch, "waste_batches", false,
       {{"kind", Type::kText, true, &kWasteKinds}, {"bags", Type::kInt, true}, {"weight_kg", Type::kReal, true},
        {"patient_id", Type::kOptText}, {"household_id", Type::kOptText}, {"note", Type::kText},
        {"created_at", Type::kText, true}}},
      {kind::kVisit, "visits", true,
       {{"patient_id", Type::kText, true}, {"at", Type::kText, true}, {"temp_c", Type::kOptReal},
        {"spo2", Type::kOptInt}, {"bp_sys", Type::kOptInt}, {"bp_dia", Type::kOptInt}, {"pulse", Type::kOptInt},
        {"symptoms", Type::kText}, {"note", Type::kText}, {"refer", Type::kBool}}},
      {kind::kStockMovement, "stock_movements", true,
       {{"item_id", Type::kText, true}, {"kind", Type::kText, true, &kMovementKinds}, {"lot", Type::kText, true},
        {"expiry", Type::kText}, {"quantity", Type::kInt, true}, {"patient_id", Type::kOptText},
        {"days_supply", Type::kOptInt}, {"reason", Type::kText}, {"counterpart", Type::kText},
        {"at", Type::kText, true}, {"group_id", Type::kOptText}}},
      {kind::kWasteStage, "waste_stages", true,
       {{"batch_id", Type::kText, true}, {"stage", Type::kText, true, &kWasteStages}, {"at", Type::kText, true},
        {"to_org", Type::kText}, {"note", Type::kText}}},
      // A device registered at a server (a hub or the centre). Reviewers are not
      // replicated; last seen / last sync / clock skew are each server's own.
      {kind::kDevice, "devices", false,
       {{"name", Type::kText}, {"role", Type::kText, true, &kReplicatedDeviceRoles},
        {"token_hash", Type::kText, true}, {"database_id", Type::kText}, {"villages", Type::kText},
        {"revoked_at", Type::kText}, {"created_at", Type::kText, true}}},
      {kind::kVoid, "voids", true,
       {{"event_id", Type::kText, true}, {"event_kind", Type::kText, true}, {"reason", Type::kText, true},
        {"at", Type::kText, true}}},
  };
  return kSpecs;
}

const RecordSpec* find_spec(const std::string& k) {
  for (const auto& s : specs()) {
    if (k == s.kind) return &s;
  }
  return nullptr;
}

const Column* find_column(const RecordSpec& spec, const std::string& name) {
  for (const auto& c : spec.columns) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

// Checks a received value against its column. Returns a reason, empty when fine.
std::string check_value(const Column& c, const json& v) {
  const std::string f = c.name;
  switch (c.type) {
    case Type::kText:
      if (!v.is_string()) return f + " must be a string";
      break;
    case Type::kOptText:
      if (!v.is_string() && !v.is_null()) return f + " must be a string or null";
      break;
    case Type::kInt:
      if (!v.is_number_integer()) return f + " must be an integer";
      break;
    case Type::kOptInt:
      if (!v.is_number_integer() && !v.is_null()) return f + " must be an integer or null";
      break;
    case Type::kReal:
      if (!v.is_number() || !std::isfinite(v.get<double>())) return f + " must be a number";
      break;
    case Type::kOptReal:
      if (!v.is_null() && (!v.is_number() || !std::isfinite(v.get<double>()))) return f + " must be a number or null";
      break;
    case Type::kBool:
      if (!v.is_boolean()) return f + " must be true or false";
      break;
  }
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (!is_valid_utf8(s)) return f + " must be valid UTF-8";
    if (s.size() > 100'000) return f + " is too long";
    if (c.allowed && std::find(c.allowed->begin(), c.allowed->end(), s) == c.allowed->end()) {
      return f + " has an unknown value \"" + s + "\"";
    }
  }
  return {};
}

// Binds a JSON value to a statement parameter, as its column's type stores it.
void bind_json(db::Stmt& s, int i, const json& v) {
  if (v.is_null()) {
    s.bind(i, std::nullopt);
  } else if (v.is_boolean()) {
    s.bind(i, v.get<bool>());
  } else if (v.is_number_integer()) {
    s.bind(i, v.get<int64_t>());
  } else if (v.is_number()) {
    s.bind(i, v.get<double>());
  } else if (v.is_string()) {
    s.bind(i, v.get_ref<const std::string&>());
  } else {
    s.bind(i, v.dump());  // arrays (symptoms) are stored as JSON text
  }
}

// Reads column `col` of a row as the JSON value its spec says it holds.
json read_json(db::Stmt& s, int col, Type t) {
  if (s.is_null(col)) return nullptr;
  switch (t) {
    case Type::kInt:
    case Type::kOptInt: return s.i64(col);
    case Type::kReal:
    case Type::kOptReal: return s.dbl(col);
    case Type::kBool: return s.i64(col) != 0;
    default: return s.str(col);
  }
}

std::optional<merge::Version> version_from(const json& v) {
  if (!v.is_array() || v.size() < 2 || !v[0].is_number_unsigned() || !v[1].is_string()) return std::nullopt;
  return merge::Version{v[0].get<uint64_t>(), v[1].get<std::string>()};
}

std::optional<merge::Version> base_from(const json& entry) {
  if (entry.is_array() && entry.size() >= 3) return version_from(entry[2]);
  return std::nullopt;
}

struct Quarantine {
  std::string reason;
};

// --- entities --------------------------------------------------------------------

class Applier {
 public:
  Applier(Action& a, ApplyOutcome& out) : a_(a), out_(out) {}

  // Applies one change; throws Quarantine with the reason when it must be held.
  ApplyStatus apply(const Change& c, const json& payload) {
    const RecordSpec* spec = find_spec(c.kind);
    if (!spec) throw Quarantine{"unknown record kind \"" + c.kind + "\""};
    if (!validate::required_text("record_id", c.record_id, 200)) throw Quarantine{"record_id is not valid"};
    if (!payload.is_object()) throw Quarantine{"payload must be an object"};
    return spec->is_event ? apply_event(*spec, c, payload) : apply_entity(*spec, c, payload);
  }

 private:
  ApplyStatus apply_entity(const RecordSpec& spec, const Change& c, const json& payload) {
    if (payload.value("op", "") != "upsert") throw Quarantine{"entity change must have op \"upsert\""};
    auto fields_it = payload.find("fields");
    if (fields_it == payload.end() || !fields_it->is_object()) throw Quarantine{"fields must be an object"};
    const json& fields = *fields_it;
    json base = payload.contains("base") ? payload["base"] : json::object();
    if (!base.is_object()) throw Quarantine{"base must be an object"};
    json sets = payload.contains("sets") ? payload["sets"] : json::object();
    if (!sets.is_object()) throw Quarantine{"sets must be an object"};
    if (!sets.empty() && c.kind != kind::kPatient) throw Quarantine{"sets are only known for patients"};
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      if (const Column* col = find_column(spec, it.key())) {
        if (auto why = check_value(*col, it.value()); !why.empty()) throw Quarantine{why};
      }
    }
    if (c.kind == kind::kDevice && fields.contains("villages")) {
      json v = json::parse(fields["villages"].get<std::string>(), nullptr, false);
      bool ok = v.is_array() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); });
      if (!ok) throw Quarantine{"villages must be a JSON array of village names"};
    }
    if (c.kind == kind::kStation && c.record_id != c.station_id) {
      throw Quarantine{"a station's record must be its own scope (record_id " + c.record_id + ", station_id " +
                       c.station_id + ")"};
    }
    const merge::Version incoming{c.hlc, c.origin};

    // The stored row, if any.
    std::string cols;
    for (const auto& col : spec.columns) cols += std::string(", ") + col.name;
    const char* owner = c.kind == kind::kStation ? "id" : "coalesce(station_id, '')";
    auto q = a_.db().prepare(std::string("SELECT _v, extra, ") + owner + cols + " FROM " + spec.table +
                             " WHERE id = ?1");
    q.bind(1, c.record_id);
    if (!q.step()) {
      insert_entity(spec, c, fields, sets, incoming);
      return ApplyStatus::kApplied;
    }
    // A record stays in the scope it was made in: a change that names
    // another station's record under its own station would write past the
    // scope check.
    if (q.str(2) != c.station_id) {
      throw Quarantine{std::string(spec.kind) + " " + c.record_id + " belongs to " +
                       (q.str(2).empty() ? std::string("the shared catalogue") : "station " + q.str(2)) +
                       ", not to the change's station " + (c.station_id.empty() ? "(catalogue)" : c.station_id)};
    }
    json versions = json::parse(q.str(0));
    json extra = json::parse(q.str(1));
    std::map<std::string, json> stored;
    for (size_t i = 0; i < spec.columns.size(); ++i) {
      stored[spec.columns[i].name] = read_json(q, static_cast<int>(i) + 3, spec.columns[i].type);
    }
    q.release();

    json updates = json::object();
    bool any = false;
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      const std::string& f = it.key();
      json entry = field_version(versions, f);
      auto sv = version_from(entry);
      auto sb = base_from(entry);
      const json current = find_column(spec, f) ? stored[f] : (extra.contains(f) ? extra[f] : json());
      auto ib = base.contains(f) ? version_from(base[f]) : std::nullopt;
      auto d = merge::decide_field(sv, sb, current.dump(), incoming, ib, it.value().dump());
      if (d.conflict) {
        bool take = d.outcome == merge::Outcome::kTake;
        record_conflict(spec, c, f, take ? it.value() : current, take ? incoming : *sv, take ? current : it.value(),
                        take ? *sv : incoming);
      }
      if (d.outcome != merge::Outcome::kTake) continue;
      json v = json::array({incoming.hlc, incoming.origin});
      if (ib) v.push_back(json::array({ib->hlc, ib->origin}));
      versions[f] = v;
      if (find_column(spec, f)) {
        updates[f] = it.value();
      } else {
        extra[f] = it.value();  // a field this version does not know: kept and passed on
      }
      any = true;
    }
    if (any) {
      std::string set_sql;
      int i = 1;
      for (auto it = updates.begin(); it != updates.end(); ++it) set_sql += it.key() + " = ?" + std::to_string(i++) + ", ";
      set_sql += "_v = ?" + std::to_string(i) + ", extra = ?" + std::to_string(i + 1);
      auto u = a_.db().prepare(std::string("UPDATE ") + spec.table + " SET " + set_sql + " WHERE id = ?" +
                               std::to_string(i + 2));
      i = 1;
      for (auto it = updates.begin(); it != updates.end(); ++it) bind_json(u, i++, it.value());
      u.bind(i, versions.dump()).bind(i + 1, extra.dump()).bind(i + 2, c.record_id);
      u.run();
    }
    apply_sets(c, sets, incoming);
    if (c.kind == kind::kPatient && (updates.contains("name") || updates.contains("village"))) reindex_patient(a_, c.record_id);
    return ApplyStatus::kApplied;
  }

  void insert_entity(const RecordSpec& spec, const Change& c, const json& fields, const json& sets,
                     const merge::Version& v) {
    for (const auto& col : spec.columns) {
      if (col.required_on_insert && !fields.contains(col.name)) {
        throw Quarantine{std::string("unknown ") + spec.kind + " " + c.record_id +
                         ": its first change (with " + col.name + ") was not received"};
      }
    }
    json extra = json::object();
    std::string names = "id, _v, extra", params = "?1, ?2, ?3";
    std::vector<json> values;
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      if (!find_column(spec, it.key())) {
        extra[it.key()] = it.value();
        continue;
      }
      names += ", " + it.key();
      values.push_back(it.value());
      params += ", ?" + std::to_string(values.size() + 3);
    }
    // Entities that belong to a station record it; the catalogue has none.
    const bool has_station = c.kind != kind::kStation;
    if (has_station) {
      names += ", station_id";
      params += ", ?" + std::to_string(values.size() + 4);
    }
    auto s = a_.db().prepare(std::string("INSERT INTO ") + spec.table + "(" + names + ") VALUES (" + params + ")");
    s.bind(1, c.record_id).bind(2, json{{"", json::array({v.hlc, v.origin})}}.dump()).bind(3, extra.dump());
    int i = 4;
    for (const auto& val : values) bind_json(s, i++, val);
    if (has_station) {
      if (c.station_id.empty()) {
        s.bind(i, std::nullopt);
      } else {
        s.bind(i, c.station_id);
      }
    }
    s.run();
    apply_sets(c, sets, v);
    if (c.kind == kind::kPatient) reindex_patient(a_, c.record_id);
  }

  void apply_sets(const Change& c, const json& sets, const merge::Version& v) {
    for (auto it = sets.begin(); it != sets.end(); ++it) {
      const std::string& field = it.key();
      if (field != "categories" && field != "conditions") continue;  // unknown set: the change log keeps it
      if (!it->is_object()) throw Quarantine{"sets." + field + " must be an object"};
      for (auto [op, present] : {std::pair{"add", true}, std::pair{"remove", false}}) {
        if (!it->contains(op)) continue;
        const json& members = (*it)[op];
        if (!members.is_array()) throw Quarantine{"sets." + field + "." + op + " must be an array"};
        for (const auto& m : members) {
          if (!m.is_string()) throw Quarantine{"sets." + field + " members must be strings"};
          if (field == "categories") {
            if (auto st = validate::one_of("category", m, kCategories); !st) throw Quarantine{st.error().message()};
          }
          auto q = a_.db().prepare(
              "SELECT hlc, origin FROM patient_sets WHERE patient_id = ?1 AND field = ?2 AND value = ?3");
          q.bind(1, c.record_id).bind(2, field).bind(3, m.get<std::string>());
          std::optional<merge::Version> stored;
          if (q.step()) stored = merge::Version{static_cast<uint64_t>(q.i64(0)), q.str(1)};
          q.release();
          if (merge::decide_member(stored, v) != merge::Outcome::kTake) continue;
          a_.db()
              .prepare(
                  "INSERT INTO patient_sets(patient_id, field, value, present, hlc, origin) VALUES (?1, ?2, ?3, ?4, ?5, "
                  "?6) ON CONFLICT(patient_id, field, value) DO UPDATE SET present = excluded.present, "
                  "hlc = excluded.hlc, origin = excluded.origin")
              .bind(1, c.record_id)
              .bind(2, field)
              .bind(3, m.get<std::string>())
              .bind(4, present)
              .bind(5, v.hlc)
              .bind(6, v.origin)
              .run();
        }
      }
    }
  }

  void record_conflict(const RecordSpec& spec, const Change& c, const std::string& field, const json& winner,
                       const merge::Version& wv, const json& loser, const merge::Version& lv) {
    a_.db()
        .prepare(
            "INSERT INTO conflicts(id, kind, record_id, station_id, field, winner_value, winner_hlc, winner_origin, "
            "loser_value, loser_hlc, loser_origin, detected_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
            "?12)")
        .bind(1, a_.store().ids->new_id())
        .bind(2, spec.kind)
        .bind(3, c.record_id)
        .bind(4, c.station_id)
        .bind(5, field)
        .bind(6, winner.dump())
        .bind(7, wv.hlc)
        .bind(8, wv.origin)
        .bind(9, loser.dump())
        .bind(10, lv.hlc)
        .bind(11, lv.origin)
        .bind(12, a_.store().local_now())
        .run();
    ++out_.conflicts;
  }

  // --- events ----------------------------------------------------------------------

  ApplyStatus apply_event(const RecordSpec& spec, const Change& c, const json& payload) {
    if (payload.value("op", "") != "insert") throw Quarantine{"event change must have op \"insert\""};
    auto ev_it = payload.find("event");
    if (ev_it == payload.end() || !ev_it->is_object()) throw Quarantine{"event must be an object"};
    const json& ev = *ev_it;
    if (ev.value("id", "") != c.record_id) throw Quarantine{"event.id must equal the change's record_id"};
    if (ev.contains("station_id") && ev["station_id"] != c.station_id) {
      throw Quarantine{"event.station_id must equal the change's station_id"};
    }
    {
      auto q = a_.db().prepare(std::string("SELECT 1 FROM ") + spec.table + " WHERE id = ?1");
      q.bind(1, c.record_id);
      if (q.step()) {
        // The same event under another change identity: a duplicate if the content agrees.
        auto p = a_.db().prepare("SELECT payload FROM changes WHERE kind = ?1 AND record_id = ?2 LIMIT 1");
        p.bind(1, c.kind).bind(2, c.record_id);
        if (p.step() && json::parse(p.str(0)).value("event", json()) == ev) return ApplyStatus::kDuplicate;
        throw Quarantine{"event " + c.record_id + " already exists with other content"};
      }
    }
    for (const auto& col : spec.columns) {
      if (!ev.contains(col.name)) {
        if (col.required_on_insert) throw Quarantine{std::string("event.") + col.name + " is required"};
        continue;
      }
      const json& v = ev[col.name];
      if (std::string(col.name) == "symptoms") {
        if (!v.is_array()) throw Quarantine{"event.symptoms must be an array"};
        continue;
      }
      if (auto why = check_value(col, v); !why.empty()) throw Quarantine{"event." + why};
    }
    check_event_rules(c, ev);

    json extra = json::object();
    for (auto it = ev.begin(); it != ev.end(); ++it) {
      if (it.key() != "id" && it.key() != "station_id" && !find_column(spec, it.key())) extra[it.key()] = it.value();
    }
    std::string names = "id, station_id, origin, hlc, extra", params = "?1, ?2, ?3, ?4, ?5";
    std::vector<json> values;
    for (const auto& col : spec.columns) {
      if (!ev.contains(col.name)) continue;
      names += std::string(", ") + col.name;
      values.push_back(col.name == std::string("symptoms") ? json(ev[col.name].dump()) : ev[col.name]);
      params += ", ?" + std::to_string(values.size() + 5);
    }
    if (c.kind == kind::kWasteStage) {
      names += ", rank";
      auto st = ev["stage"].get<std::string>();
      values.emplace_back(std::find(kWasteStages.begin(), kWasteStages.end(), st) - kWasteStages.begin());
      params += ", ?" + std::to_string(values.size() + 5);
    }
    auto s = a_.db().prepare(std::string("INSERT INTO ") + spec.table + "(" + names + ") VALUES (" + params + ")");
    s.bind(1, c.record_id).bind(2, c.station_id).bind(3, c.origin).bind(4, c.hlc).bind(5, extra.dump());
    int i = 6;
    for (const auto& v : values) bind_json(s, i++, v);
    s.run();
    return ApplyStatus::kApplied;
  }

  bool exists(const char* table, const std::string& id) {
    auto q = a_.db().prepare(std::string("SELECT 1 FROM ") + table + " WHERE id = ?1");
    q.bind(1, id);
    return q.step();
  }

  // Rules an event must keep wherever it was made. Stock on hand is not one of
  // them: two devices dispensing the last tablets both really happened.
  void check_event_rules(const Change& c, const json& ev) {
    auto ref = [&](const char* field, const char* table, const char* what) {
      if (!ev.contains(field) || ev[field].is_null()) return;
      if (!exists(table, ev[field].get<std::string>())) {
        throw Quarantine{std::string("references unknown ") + what + " " + ev[field].get<std::string>()};
      }
    };
    if (auto t = parse_local_time(ev.value("at", ""), "at"); !t) throw Quarantine{"event." + t.error().message()};
    if (c.kind == kind::kVisit) {
      ref("patient_id", "patients", "patient");
      VisitInput v;
      auto num = [&](const char* f) { return ev.contains(f) && !ev[f].is_null(); };
      if (num("temp_c")) v.temp_c = ev["temp_c"].get<double>();
      if (num("spo2")) v.spo2 = static_cast<int>(ev["spo2"].get<int64_t>());
      if (num("bp_sys")) v.bp_sys = static_cast<int>(ev["bp_sys"].get<int64_t>());
      if (num("bp_dia")) v.bp_dia = static_cast<int>(ev["bp_dia"].get<int64_t>());
      if (num("pulse")) v.pulse = static_cast<int>(ev["pulse"].get<int64_t>());
      if (auto st = validate::vitals(v); !st) throw Quarantine{st.error().message()};
    } else if (c.kind == kind::kStockMovement) {
      ref("item_id", "items", "item");
      ref("patient_id", "patients", "patient");
      std::string k = ev["kind"];
      int64_t q = ev["quantity"];
      bool adds = k == "receipt" || k == "transfer-in";
      bool takes = k == "dispense" || k == "transfer-out" || k == "write-off";
      if ((adds && q <= 0) || (takes && q >= 0) || q == 0) {
        throw Quarantine{"event.quantity " + std::to_string(q) + " has the wrong sign for a " + k};
      }
    } else if (c.kind == kind::kWasteStage) {
      ref("batch_id", "waste_batches", "waste batch");
    } else if (c.kind == kind::kVoid) {
      const std::string target = ev["event_id"];
      if (!exists("visits", target) && !exists("stock_movements", target) && !exists("waste_stages", target)) {
        throw Quarantine{"voids unknown event " + target};
      }
    }
  }

  Action& a_;
  ApplyOutcome& out_;
};

// Whether `origin` is a device of `station` registered at this node now.
bool relays_for(Action& a, const std::string& station, const std::string& origin) {
  if (station.empty()) return false;
  auto q = a.db().prepare("SELECT 1 FROM devices WHERE id = ?1 AND station_id = ?2");
  q.bind(1, origin).bind(2, station);
  return q.step();
}

}  // namespace

Result<ApplyOutcome> Store::apply_changes(const std::vector<Change>& batch, const ApplyContext& ctx,
                                          const std::optional<CursorUpdate>& cursor) {
  return impl_->act("sync", [&](Action& a) -> Result<ApplyOutcome> {
    ApplyOutcome out;
    Applier applier(a, out);
    std::map<std::string, int64_t> received;  // applied per station, for station_activity
    for (const auto& c : batch) {
      ApplyResult r{c.seq, c.origin, c.origin_seq, ApplyStatus::kApplied, ""};
      out.acked_through = std::max(out.acked_through, c.seq);
      // Seen before? The identity (origin, origin_seq) is the same on every node.
      {
        auto q = a.db().prepare("SELECT kind, record_id, payload, hlc FROM changes WHERE origin = ?1 AND origin_seq = ?2");
        q.bind(1, c.origin).bind(2, c.origin_seq);
        if (q.step()) {
          bool same = q.str(0) == c.kind && q.str(1) == c.record_id && static_cast<uint64_t>(q.i64(3)) == c.hlc &&
                      json::parse(q.str(2)) == json::parse(c.payload, nullptr, false);
          if (!same) {
            return Error{ErrorCode::kConflict, "", "origin_seq",
                         "reuses a change number this node already has with other content: the sending file was "
                         "restored from a backup or copied; it must take a new device identity before syncing",
                         c.origin + "/" + std::to_string(c.origin_seq)};
          }
          r.status = ApplyStatus::kDuplicate;
          ++out.duplicates;
          out.results.push_back(r);
          continue;
        }
      }
      // A change held in quarantine before is judged again like a new one: a
      // change refused from a sender outside its scope is taken when its own
      // station sends it.
      std::string reason;
      json payload = json::parse(c.payload, nullptr, false);
      if (payload.is_discarded()) {
        reason = "payload is not valid JSON";
      } else if (c.station_id.empty() ? !ctx.may_write_catalogue : !ctx.write_scope.may_write(c.station_id)) {
        reason = c.station_id.empty() ? "out of scope: only the centre publishes catalogue items"
                                      : "out of scope: this device may not write records of station " + c.station_id;
      } else if (c.station_id.empty() && c.kind != kind::kItem) {
        reason = "out of scope: only items belong to the shared catalogue";
      } else if (!ctx.allowed_origins.empty() &&
                 std::find(ctx.allowed_origins.begin(), ctx.allowed_origins.end(), c.origin) ==
                     ctx.allowed_origins.end() &&
                 !relays_for(a, ctx.relay_station, c.origin)) {
        reason = "origin " + c.origin.substr(0, 40) + " is neither the sending device nor one it relays for";
      } else if (ctx.check_clock && Hlc::physical_ms(c.hlc) > impl_->now_ms() + kMaxHlcAheadMs) {
        reason = "hlc is " + std::to_string((Hlc::physical_ms(c.hlc) - impl_->now_ms()) / 86'400'000) +
                 " days ahead of this node's clock: the writing device's clock is wrong; held for review";
      }
      if (reason.empty()) {
        // Apply inside a savepoint so a change that fails half-way leaves nothing.
        a.db().exec("SAVEPOINT change");
        try {
          r.status = applier.apply(c, payload);
          a.db().exec("RELEASE change");
        } catch (const Quarantine& qz) {
          a.db().exec("ROLLBACK TO change");
          a.db().exec("RELEASE change");
          reason = qz.reason;
        } catch (const json::exception& e) {
          a.db().exec("ROLLBACK TO change");
          a.db().exec("RELEASE change");
          reason = std::string("malformed payload: ") + e.what();
        } catch (const db::DbError& e) {
          if (e.is_io()) throw;
          a.db().exec("ROLLBACK TO change");
          a.db().exec("RELEASE change");
          reason = std::string("cannot be stored: ") + e.what();
        }
      }
      if (!reason.empty()) {
        // Held once, whatever number of times it arrives.
        a.db()
            .prepare(
                "INSERT INTO quarantine(received_at, from_peer, origin, origin_seq, hlc, station_id, kind, record_id, "
                "payload, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                "ON CONFLICT(origin, origin_seq) DO NOTHING")
            .bind(1, impl_->local_now())
            .bind(2, ctx.from_peer)
            .bind(3, c.origin)
            .bind(4, c.origin_seq)
            .bind(5, c.hlc)
            .bind(6, c.station_id)
            .bind(7, c.kind)
            .bind(8, c.record_id)
            .bind(9, c.payload)
            .bind(10, reason)
            .run();
        r.status = ApplyStatus::kQuarantined;
        r.reason = reason;
        ++out.quarantined;
      } else if (r.status == ApplyStatus::kDuplicate) {
        ++out.duplicates;
      } else {
        a.append_remote(c, ctx.from_peer);
        ++out.applied;
        ++received[c.station_id];
        // Settles a quarantine entry the same change left before, if any.
        a.db()
            .prepare(
                "UPDATE quarantine SET status = 'applied', decided_at = ?1, decision = ?2 "
                "WHERE origin = ?3 AND origin_seq = ?4 AND status = 'held'")
            .bind(1, impl_->local_now())
            .bind(2, "arrived again from " + ctx.from_peer + " and was applied")
            .bind(3, c.origin)
            .bind(4, c.origin_seq)
            .run();
      }
      out.results.push_back(r);
    }
    const std::string today = impl_->local_now().substr(0, 10);
    for (const auto& [station, n] : received) {
      a.db()
          .prepare(
              "INSERT INTO station_activity(station_id, day, received) VALUES (?1, ?2, ?3) "
              "ON CONFLICT(station_id, day) DO UPDATE SET received = received + excluded.received")
          .bind(1, station)
          .bind(2, today)
          .bind(3, n)
          .run();
    }
    if (cursor) {
      a.db()
          .prepare(
              "INSERT INTO peers(id, pull_cursor) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET "
              "pull_cursor = max(pull_cursor, excluded.pull_cursor)")
          .bind(1, cursor->peer_id)
          .bind(2, cursor->pull_cursor)
          .run();
    }
    return out;
  });
}

namespace {
// Reads a page of changes from `q` (in log order): at most `limit` changes and
// about `max_bytes` of payload (always at least one). A change `keep` refuses
// is stepped over, at most kMaxSkipped of them per page so one request stays
// short however far the next kept change is; the cursor moves past them.
constexpr int64_t kMaxSkipped = 20'000;

LogPage read_page(db::Stmt& q, int64_t limit, int64_t max_bytes, int64_t after,
                  const std::function<bool(const Change&)>& keep = nullptr) {
  LogPage page;
  page.next = after;
  int64_t skipped = 0;
  while (q.step()) {
    Change c = read_change(q);
    if (keep && !keep(c)) {
      page.next = c.seq;
      if (++skipped >= kMaxSkipped) {
        page.more = true;
        break;
      }
      continue;
    }
    if (static_cast<int64_t>(page.changes.size()) >= limit ||
        (!page.changes.empty() && page.bytes + static_cast<int64_t>(c.payload.size()) > max_bytes)) {
      page.more = true;
      break;
    }
    page.bytes += static_cast<int64_t>(c.payload.size());
    page.next = c.seq;
    page.changes.push_back(std::move(c));
  }
  return page;
}
}  // namespace

namespace {

// Whether a change is for a peer narrowed to some villages, or kept from
// device registrations (Scope::villages, Scope::devices). A record is judged
// by where it is now: a patient's village, the patient or household a visit,
// a waste batch or a dispense belongs to, the event a void cancels.
class ScopeFilter {
 public:
  ScopeFilter(db::Db& db, const Scope& scope) : db_(db), scope_(scope) {}

  bool allows(const Change& c) {
    if (c.kind == kind::kDevice) return scope_.devices;
    if (scope_.villages.empty()) return true;
    return of_record(c.kind, c.record_id);
  }

 private:
  bool of_record(const std::string& k, const std::string& id) {
    const std::string key = k + "/" + id;
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    bool in = true;  // the station's own records, the catalogue, and kinds this version does not know
    if (k == kind::kPatient) {
      in = village_of("SELECT village FROM patients WHERE id = ?1", id);
    } else if (k == kind::kHousehold) {
      in = village_of("SELECT village FROM households WHERE id = ?1", id);
    } else if (k == kind::kVisit || k == kind::kStockMovement) {
      auto pid = lookup(k == kind::kVisit ? "SELECT coalesce(patient_id, '') FROM visits WHERE id = ?1"
                                          : "SELECT coalesce(patient_id, '') FROM stock_movements WHERE id = ?1",
                        id);
      if (pid && !pid->at(0).empty()) in = of_record(kind::kPatient, pid->at(0));
    } else if (k == kind::kWasteBatch) {
      // A batch of a patient or of a household; one of neither belongs to the station.
      auto owner = lookup("SELECT coalesce(patient_id, ''), coalesce(household_id, '') FROM waste_batches WHERE id = ?1",
                          id);
      if (owner && !owner->at(0).empty()) {
        in = of_record(kind::kPatient, owner->at(0));
      } else if (owner && !owner->at(1).empty()) {
        in = of_record(kind::kHousehold, owner->at(1));
      }
    } else if (k == kind::kWasteStage) {
      if (auto b = lookup("SELECT batch_id FROM waste_stages WHERE id = ?1", id)) in = of_record(kind::kWasteBatch, b->at(0));
    } else if (k == kind::kVoid) {
      auto target = lookup("SELECT event_kind, event_id FROM voids WHERE id = ?1", id);
      if (target && target->at(0) != kind::kVoid) in = of_record(target->at(0), target->at(1));
    }
    if (cache_.size() > 100'000) cache_.clear();
    cache_[key] = in;
    return in;
  }

  // The columns of the row `sql` selects for `id` (nullopt: no such record).
  std::optional<std::vector<std::string>> lookup(const char* sql, const std::string& id) {
    auto q = db_.prepare(sql);
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    std::vector<std::string> row;
    for (int i = 0; i < q.column_count(); ++i) row.push_back(q.str(i));
    return row;
  }

  bool village_of(const char* sql, const std::string& id) {
    auto v = lookup(sql, id);
    if (!v) return true;
    const std::string f = fold_for_search(v->at(0));
    return std::find(scope_.villages.begin(), scope_.villages.end(), f) != scope_.villages.end();
  }

  db::Db& db_;
  const Scope& scope_;
  std::map<std::string, bool> cache_;
};

}  // namespace

LogPage Store::changes_for_peer(int64_t after, int64_t limit, int64_t max_bytes, const Scope& scope,
                                const std::string& exclude_origin) {
  db::ReadTxn read(*impl_->db);
  // Never what the peer made, nor what it sent here (relayed for others).
  const std::string select = std::string("SELECT ") + kChangeColumns +
                             " FROM changes WHERE seq > ?1 AND origin != ?2 AND coalesce(from_peer, '') != ?2";
  // Rows are read lazily, in seq order, only until the page is full: no
  // sort. A station's peer reads its own station's records and the shared
  // catalogue (station ""): two ordered scans of changes_station merged
  // (`station_id IN (?, '')` would sort the station's whole log first).
  auto q = impl_->db->prepare(scope.all ? select + " ORDER BY seq"
                                        : select + " AND station_id = ?3 UNION ALL " + select +
                                              " AND station_id = '' ORDER BY seq");
  q.bind(1, after).bind(2, exclude_origin);
  if (!scope.all) q.bind(3, scope.station_id);
  ScopeFilter filter(*impl_->db, scope);
  const bool filtered = !scope.villages.empty() || !scope.devices;
  LogPage page = read_page(q, limit, max_bytes, after,
                           filtered ? std::function<bool(const Change&)>([&](const Change& c) { return filter.allows(c); })
                                    : nullptr);
  if (!page.more) {
    // Everything up to the end of the log was looked at, including changes the
    // peer may not see: skip past them for good.
    q.release();
    page.next = std::max(page.next, last_seq());
  }
  return page;
}

// What a node sends up to a peer: its own changes and those its own devices
// sent it (a hub relays its mobile devices'), never what it received from a
// server it syncs with -- not back to that server, and not on to another (a
// mobile device that syncs with its hub and with the centre is no relay
// between them). ?2 is the peer.
const char* const kPushable =
    "coalesce(from_peer, '') != ?2 AND coalesce(from_peer, '') NOT IN (SELECT id FROM peers)";

LogPage Store::changes_to_push(const std::string& peer_id, int64_t limit, int64_t max_bytes) {
  db::ReadTxn read(*impl_->db);
  int64_t after = 0;
  if (auto p = peer(peer_id)) after = p->push_cursor;
  auto q = impl_->db->prepare(std::string("SELECT ") + kChangeColumns + " FROM changes WHERE seq > ?1 AND " +
                              kPushable + " ORDER BY seq");
  q.bind(1, after).bind(2, peer_id);
  return read_page(q, limit, max_bytes, after);
}

int64_t Store::count_to_push(const std::string& peer_id) {
  int64_t after = 0;
  if (auto p = peer(peer_id)) after = p->push_cursor;
  auto q = impl_->db->prepare(std::string("SELECT count(*) FROM changes WHERE seq > ?1 AND ") + kPushable);
  q.bind(1, after).bind(2, peer_id);
  return q.step() ? q.i64(0) : 0;
}

int64_t Store::max_origin_seq(const std::string& origin) {
  // Held or decided in quarantine counts too: the number was received.
  auto q = impl_->db->prepare(
      "SELECT max(coalesce((SELECT max(origin_seq) FROM changes WHERE origin = ?1), 0), "
      "coalesce((SELECT max(origin_seq) FROM quarantine WHERE origin = ?1), 0))");
  q.bind(1, origin);
  return q.step() ? q.i64(0) : 0;
}

int64_t Store::last_seq() {
  auto q = impl_->db->prepare("SELECT coalesce(max(seq), 0) FROM changes");
  return q.step() ? q.i64(0) : 0;
}

namespace {
const char* const kPeerSelect = "SELECT id, url, push_cursor, pull_cursor, last_sync_at, extra FROM peers ";
PeerState read_peer(db::Stmt& q) { return PeerState{q.str(0), q.str(1), q.i64(2), q.i64(3), q.str(4), q.str(5)}; }
}  // namespace

std::optional<PeerState> Store::peer(const std::string& id) {
  auto q = impl_->db->prepare(std::string(kPeerSelect) + "WHERE id = ?1");
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return read_peer(q);
}

std::vector<PeerState> Store::peers() {
  std::vector<PeerState> out;
  auto q = impl_->db->prepare(std::string(kPeerSelect) + "ORDER BY rowid");
  while (q.step()) out.push_back(read_peer(q));
  return out;
}

Status Store::save_peer(const PeerState& p) {
  return impl_->act("peer", [&](Action& a) -> Status {
    a.db()
        .prepare(
            "INSERT INTO peers(id, url, extra) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET url = excluded.url, "
            "extra = excluded.extra")
        .bind(1, p.id)
        .bind(2, p.url)
        .bind(3, p.settings.empty() ? std::string("{}") : p.settings)
        .run();
    return {};
  });
}

Status Store::acknowledge_push(const std::string& peer_id, int64_t acked_through,
                               const std::vector<ApplyResult>& refused) {
  return impl_->act("sync", [&](Action& a) -> Status {
    a.db()
        .prepare(
            "INSERT INTO peers(id, push_cursor) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET "
            "push_cursor = max(push_cursor, excluded.push_cursor)")
        .bind(1, peer_id)
        .bind(2, acked_through)
        .run();
    const std::string now = impl_->local_now();
    for (const auto& x : refused) {
      a.db()
          .prepare(
              "INSERT INTO peer_refusals(peer_id, origin, origin_seq, seq, kind, record_id, reason, reported_at) "
              "SELECT ?1, ?2, ?3, ?4, coalesce(c.kind, ''), coalesce(c.record_id, ''), ?5, ?6 "
              "FROM (SELECT 1) LEFT JOIN changes c ON c.origin = ?2 AND c.origin_seq = ?3 WHERE 1 "
              "ON CONFLICT(peer_id, origin, origin_seq) DO UPDATE SET reason = excluded.reason, "
              "reported_at = excluded.reported_at")
          .bind(1, peer_id)
          .bind(2, x.origin)
          .bind(3, x.origin_seq)
          .bind(4, x.seq)
          .bind(5, x.reason)
          .bind(6, now)
          .run();
    }
    return {};
  });
}

std::vector<PeerRefusal> Store::peer_refusals() {
  std::vector<PeerRefusal> out;
  auto q = impl_->db->prepare(
      "SELECT peer_id, origin, origin_seq, seq, kind, record_id, reason, reported_at FROM peer_refusals "
      "ORDER BY reported_at, seq");
  while (q.step()) {
    out.push_back(PeerRefusal{q.str(0), q.str(1), q.i64(2), q.i64(3), q.str(4), q.str(5), q.str(6), q.str(7)});
  }
  return out;
}

int64_t Store::acked_own_origin_seq(const std::string& peer_id) {
  auto p = peer(peer_id);
  if (!p) return 0;
  auto q = impl_->db->prepare(
      "SELECT coalesce(max(origin_seq), 0) FROM changes WHERE seq <= ?1 AND origin = "
      "(SELECT value FROM meta WHERE key = 'device_id')");
  q.bind(1, p->push_cursor);
  return q.step() ? q.i64(0) : 0;
}

Status Store::reset_peer_cursors(const std::string& peer_id, bool push, bool pull) {
  return impl_->act("sync", [&](Action& a) -> Status {
    a.db()
        .prepare(
            "UPDATE peers SET push_cursor = CASE WHEN ?2 THEN 0 ELSE push_cursor END, "
            "pull_cursor = CASE WHEN ?3 THEN 0 ELSE pull_cursor END WHERE id = ?1")
        .bind(1, peer_id)
        .bind(2, push)
        .bind(3, pull)
        .run();
    return {};
  });
}

Status Store::mark_synced(const std::string& peer_id) {
  return impl_->act("sync", [&](Action& a) -> Status {
    a.db()
        .prepare("UPDATE peers SET last_sync_at = ?1 WHERE id = ?2")
        .bind(1, impl_->local_now())
        .bind(2, peer_id)
        .run();
    return {};
  });
}

std::vector<QuarantinedChange> Store::quarantined(bool held_only) {
  std::vector<QuarantinedChange> out;
  auto q = impl_->db->prepare(
      std::string("SELECT id, received_at, from_peer, origin, station_id, kind, record_id, payload, reason, status, "
                  "origin_seq, hlc FROM quarantine") +
      (held_only ? " WHERE status = 'held'" : "") + " ORDER BY id");
  while (q.step()) {
    out.push_back(QuarantinedChange{q.i64(0), q.str(1), q.str(2), q.str(3), q.str(4), q.str(5), q.str(6), q.str(7),
                                    q.str(8), q.str(9), q.i64(10), static_cast<uint64_t>(q.i64(11))});
  }
  return out;
}

std::vector<ConflictRow> Store::conflicts(bool open_only) {
  std::vector<ConflictRow> out;
  auto q = impl_->db->prepare(
      std::string("SELECT id, kind, record_id, station_id, field, winner_value, loser_value, winner_origin, "
                  "loser_origin, detected_at, status, winner_hlc, loser_hlc FROM conflicts") +
      (open_only ? " WHERE status = 'open'" : "") + " ORDER BY detected_at, id");
  while (q.step()) {
    out.push_back(ConflictRow{q.str(0), q.str(1), q.str(2), q.str(3), q.str(4), q.str(5), q.str(6), q.str(7),
                              q.str(8), q.str(9), q.str(10), static_cast<uint64_t>(q.i64(11)),
                              static_cast<uint64_t>(q.i64(12))});
  }
  return out;
}

}  // namespace tramsync
