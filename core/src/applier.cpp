// Applying one change to this node's records (applier.h).
#include "applier.h"

#include <algorithm>
#include <map>

#include "entity.h"
#include "record_spec.h"
#include "tramsync/core/hlc.h"
#include "tramsync/core/validate.h"

namespace tramsync {

using namespace records;

namespace {

// Thrown inside Applier when a change must be held, with the reason.
struct Quarantine {
  std::string reason;
};

// --- entities --------------------------------------------------------------------

class Applier {
 public:
  Applier(Action& a, ApplyOutcome& out) : a_(a), out_(out) {}

  // Applies one change; throws Quarantine with the reason when it must be held.
  ApplyStatus apply(const Change& c, const json& payload) {
    current_payload_ = &payload;
    current_version_ = merge::Version{c.hlc, c.origin};
    if (c.station_id.empty() && c.kind != kind::kItem) {
      throw Quarantine{"out of scope: only items belong to the shared catalogue"};
    }
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
      insert_entity(spec, c, fields, base, sets, incoming);
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
    // A reviewer's resolution closes the conflicts it settles here too, whatever
    // winner and loser this node happened to record (docs/protocol.md §6 "Resolutions").
    if (auto r = payload.find("resolves"); r != payload.end() && r->is_object()) {
      for (auto it = r->begin(); it != r->end(); ++it) {
        if (auto res = parse_resolution(it.value(), incoming)) {
          close_covered_conflicts(a_, c.kind, c.record_id, it.key(), *res);
        }
      }
    }
    return ApplyStatus::kApplied;
  }

  // An edit may arrive before the creation it was based on and, carrying every
  // required field, make the record: each field it wrote keeps its base, as an
  // edit applied over the creation would, so the creation arriving later is its
  // ancestor and not a concurrent write.
  void insert_entity(const RecordSpec& spec, const Change& c, const json& fields, const json& base, const json& sets,
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
    json versions{{"", json::array({v.hlc, v.origin})}};
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      if (!base.contains(it.key())) continue;
      if (auto b = version_from(base[it.key()])) {
        versions[it.key()] = json::array({v.hlc, v.origin, json::array({b->hlc, b->origin})});
      }
    }
    s.bind(1, c.record_id).bind(2, versions.dump()).bind(3, extra.dump());
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

  // The resolution that already settles a conflict between `wv` and `lv` on
  // this field: the change being applied, or one applied here before (a
  // resolution may arrive before the edits it settles).
  std::optional<std::string> settled_by(const Change& c, const std::string& field, const merge::Version& wv,
                                        const merge::Version& lv) {
    auto in = [&](const json& payload, const merge::Version& self) -> std::optional<std::string> {
      auto r = payload.find("resolves");
      if (r == payload.end() || !r->is_object() || !r->contains(field)) return std::nullopt;
      auto res = parse_resolution((*r)[field], self);
      if (res && res->covers(wv, lv)) return res->text;
      return std::nullopt;
    };
    if (current_payload_) {
      if (auto t = in(*current_payload_, current_version_)) return t;
    }
    auto q = a_.db().prepare(
        "SELECT hlc, origin, payload FROM changes WHERE kind = ?1 AND record_id = ?2 "
        "AND instr(payload, '\"resolves\"') > 0 ORDER BY seq");
    q.bind(1, c.kind).bind(2, c.record_id);
    while (q.step()) {
      json p = json::parse(q.str(2), nullptr, false);
      if (p.is_object()) {
        if (auto t = in(p, merge::Version{static_cast<uint64_t>(q.i64(0)), q.str(1)})) return t;
      }
    }
    return std::nullopt;
  }

  void record_conflict(const RecordSpec& spec, const Change& c, const std::string& field, const json& winner,
                       const merge::Version& wv, const json& loser, const merge::Version& lv) {
    const auto settled = settled_by(c, field, wv, lv);
    a_.db()
        .prepare(
            "INSERT INTO conflicts(id, kind, record_id, station_id, field, winner_value, winner_hlc, winner_origin, "
            "loser_value, loser_hlc, loser_origin, detected_at, status, resolution) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
            "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)")
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
        .bind(13, settled ? "resolved" : "open")
        .bind(14, settled.value_or(""))
        .run();
    if (!settled) ++out_.conflicts;
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
  const json* current_payload_ = nullptr;
  merge::Version current_version_;
};

// Whether `origin` is a device of `station` registered at this node now.
bool relays_for(Action& a, const std::string& station, const std::string& origin) {
  if (station.empty()) return false;
  auto q = a.db().prepare("SELECT 1 FROM devices WHERE id = ?1 AND station_id = ?2");
  q.bind(1, origin).bind(2, station);
  return q.step();
}

}  // namespace

ApplyStep apply_one(Action& a, ApplyOutcome& out, const Change& c) {
  json payload = json::parse(c.payload, nullptr, false);
  if (payload.is_discarded()) return {ApplyStatus::kQuarantined, "payload is not valid JSON"};
  Applier applier(a, out);
  const int64_t conflicts_before = out.conflicts;
  // A savepoint, so a change that fails half-way leaves nothing.
  a.db().exec("SAVEPOINT change");
  std::string reason;
  try {
    ApplyStatus st = applier.apply(c, payload);
    a.db().exec("RELEASE change");
    return {st, ""};
  } catch (const Quarantine& qz) {
    reason = qz.reason;
  } catch (const json::exception& e) {
    reason = std::string("malformed payload: ") + e.what();
  } catch (const db::DbError& e) {
    if (e.is_io()) throw;
    reason = std::string("cannot be stored: ") + e.what();
  }
  a.db().exec("ROLLBACK TO change");
  a.db().exec("RELEASE change");
  out.conflicts = conflicts_before;  // the conflicts it found were rolled back with it
  return {ApplyStatus::kQuarantined, reason};
}

std::string sender_refusal(Action& a, const Change& c, const ApplyContext& ctx) {
  if (c.station_id.empty() ? !ctx.may_write_catalogue : !ctx.write_scope.may_write(c.station_id)) {
    return c.station_id.empty() ? "out of scope: only the centre publishes catalogue items"
                                : "out of scope: this device may not write records of station " + c.station_id;
  }
  if (!ctx.allowed_origins.empty() &&
      std::find(ctx.allowed_origins.begin(), ctx.allowed_origins.end(), c.origin) == ctx.allowed_origins.end() &&
      !relays_for(a, ctx.relay_station, c.origin)) {
    return "origin " + c.origin.substr(0, 40) + " is neither the sending device nor one it relays for";
  }
  // A device's push (allowed_origins set) may not carry what only the centre
  // decides: a conflict's resolution, or a duplicate patient's link. Either
  // would let a station close the centre's conflicts or hide a patient from
  // the census. (A cheap look first: most payloads mention neither.)
  if (!ctx.allowed_origins.empty() &&
      (c.payload.find("\"resolves\"") != std::string::npos || c.payload.find("\"same_as") != std::string::npos)) {
    json p = json::parse(c.payload, nullptr, false);
    if (p.is_object() && p.contains("resolves")) return "only the centre resolves conflicts (payload has resolves)";
    if (p.is_object() && p.contains("fields") && p["fields"].is_object() &&
        (p["fields"].contains("same_as") || p["fields"].contains("same_as_station"))) {
      return "only the centre links duplicate patients (fields has same_as)";
    }
  }
  StoreImpl& s = a.store();
  if (ctx.check_clock && Hlc::physical_ms(c.hlc) > s.now_ms() + kMaxHlcAheadMs) {
    return "hlc is " + std::to_string((Hlc::physical_ms(c.hlc) - s.now_ms()) / 86'400'000) +
           " days ahead of this node's clock: the writing device's clock is wrong; held for review";
  }
  return {};
}

// --- resolutions ---------------------------------------------------------------------

bool Resolution::covers(const merge::Version& winner, const merge::Version& loser) const {
  auto seen_one = [&](const merge::Version& v) { return std::find(seen.begin(), seen.end(), v) != seen.end(); };
  return seen_one(winner) && seen_one(loser);
}

std::optional<Resolution> parse_resolution(const json& entry, const merge::Version& self) {
  if (!entry.is_object()) return std::nullopt;
  auto versions = entry.find("versions");
  if (versions == entry.end() || !versions->is_array()) return std::nullopt;
  Resolution r;
  for (const auto& v : *versions) {
    if (auto parsed = version_from(v)) r.seen.push_back(*parsed);
  }
  r.seen.push_back(self);
  auto text = [&](const char* key) {
    auto it = entry.find(key);
    return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string keep = text("keep"), by = text("by"), at = text("at"), note = text("note");
  r.text = (keep == "winner"   ? std::string("kept the winning value")
            : keep == "loser"  ? std::string("kept the losing value")
            : keep == "value"  ? std::string("set another value")
                               : std::string("resolved")) +
           (by.empty() ? "" : " by " + by) + (at.empty() ? "" : " at " + at) + (note.empty() ? "" : ": " + note);
  return r;
}

std::vector<std::string> close_covered_conflicts(Action& a, const std::string& kind, const std::string& record_id,
                                                 const std::string& field, const Resolution& r) {
  std::vector<std::string> closed;
  auto q = a.db().prepare(
      "SELECT id, winner_hlc, winner_origin, loser_hlc, loser_origin FROM conflicts "
      "WHERE kind = ?1 AND record_id = ?2 AND field = ?3 AND status = 'open'");
  q.bind(1, kind).bind(2, record_id).bind(3, field);
  while (q.step()) {
    if (r.covers({static_cast<uint64_t>(q.i64(1)), q.str(2)}, {static_cast<uint64_t>(q.i64(3)), q.str(4)})) {
      closed.push_back(q.str(0));
    }
  }
  q.release();
  for (const auto& id : closed) {
    a.db()
        .prepare("UPDATE conflicts SET status = 'resolved', resolution = ?1 WHERE id = ?2")
        .bind(1, r.text)
        .bind(2, id)
        .run();
  }
  return closed;
}

}  // namespace tramsync
