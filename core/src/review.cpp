// The reviewer's decisions on conflicts and on changes held in quarantine
// (store.h, core/review.h; docs/protocol.md §6 "Resolutions" and §8).
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "applier.h"
#include "entity.h"
#include "record_spec.h"
#include "store_impl.h"
#include "tramsync/core/hlc.h"
#include "tramsync/core/text.h"
#include "tramsync/core/validate.h"

namespace tramsync {

using namespace records;

namespace {

const char* const kConflictColumns =
    "id, kind, record_id, station_id, field, winner_value, loser_value, winner_origin, loser_origin, detected_at, "
    "status, winner_hlc, loser_hlc, resolution";

ConflictRow read_conflict(db::Stmt& q) {
  return ConflictRow{q.str(0),  q.str(1),  q.str(2), q.str(3),
                     q.str(4),  q.str(5),  q.str(6), q.str(7),
                     q.str(8),  q.str(9),  q.str(10), static_cast<uint64_t>(q.i64(11)),
                     static_cast<uint64_t>(q.i64(12)), q.str(13)};
}

const char* const kQuarantineColumns =
    "id, received_at, from_peer, origin, station_id, kind, record_id, payload, reason, status, origin_seq, hlc, "
    "decided_at, decision";

QuarantinedChange read_quarantined(db::Stmt& q) {
  return QuarantinedChange{q.i64(0), q.str(1), q.str(2), q.str(3), q.str(4), q.str(5), q.str(6), q.str(7),
                           q.str(8), q.str(9), q.i64(10), static_cast<uint64_t>(q.i64(11)), q.str(12),
                           q.str(13)};
}

// Decisions that write records are the centre's: its origin is the reviewer's.
Status require_central(StoreImpl& s, const std::string& only) {
  auto id = s.require_identity();
  if (!id) return id.error();
  if (s.meta("node_role") != "central") {
    return Error::refused("file", "is a station's, not the centre's: only the centre " + only, id->station_code);
  }
  return {};
}

// A value typed by the reviewer, parsed and checked by its field's type and
// the rules the record's own commands keep.
Result<json> parse_typed(StoreImpl& s, const RecordSpec& spec, const Column& col, const std::string& text,
                         const std::string& record_id, const std::string& station_id) {
  const std::string f = col.name;
  const std::string t = validate::trim(text);
  const bool optional = col.type == Type::kOptText || col.type == Type::kOptInt || col.type == Type::kOptReal;
  json v;
  if (optional && t.empty()) {
    v = nullptr;
  } else {
    switch (col.type) {
      case Type::kText:
      case Type::kOptText:
        if (col.required_on_insert && t.empty()) return Error::invalid(f, "must not be empty", text);
        v = t;
        break;
      case Type::kInt:
      case Type::kOptInt: {
        int64_t n = 0;
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
        if (t.empty() || ec != std::errc() || end != t.data() + t.size()) {
          return Error::invalid(f, "must be a whole number", text);
        }
        v = n;
        break;
      }
      case Type::kReal:
      case Type::kOptReal: {
        char* end = nullptr;
        const double d = std::strtod(t.c_str(), &end);
        if (t.empty() || end != t.c_str() + t.size() || !std::isfinite(d)) {
          return Error::invalid(f, "must be a number", text);
        }
        v = d;
        break;
      }
      case Type::kBool:
        if (t == "true" || t == "yes" || t == "1") {
          v = true;
        } else if (t == "false" || t == "no" || t == "0") {
          v = false;
        } else {
          return Error::invalid(f, "must be true or false", text);
        }
        break;
    }
  }
  if (auto why = check_value(col, v); !why.empty()) {
    // check_value's reasons start with the field's name.
    return Error::invalid(f, why.size() > f.size() ? why.substr(f.size() + 1) : why, text);
  }
  const std::string k = spec.kind;
  // The limits the record's own commands keep (people.cpp, events.cpp).
  if (v.is_string() && (k == kind::kPatient || k == kind::kHousehold)) {
    const bool named = f == "name" || f == "village" || f == "head_name";
    const bool short_text = f == "phone" || f == "national_id";
    if (named) {
      if (auto st = validate::required_text(f, t); !st) return st.error();
    } else if (short_text) {
      if (auto st = validate::optional_text(f, t, 40); !st) return st.error();
    }
  }
  // A reference must name a record this node has (a full id: the value is
  // sent to stations as it is).
  if (v.is_string() && !t.empty() && (f == "household_id" || f == "patient_id")) {
    // ...of the record's own station: another station's would be refused there.
    const char* table = f == "household_id" ? "households" : "patients";
    auto q = s.db->prepare(std::string("SELECT 1 FROM ") + table + " WHERE id = ?1 AND station_id = ?2");
    q.bind(1, t).bind(2, station_id);
    if (!q.step()) {
      return Error::invalid(f, std::string("must name an existing ") + (f == "household_id" ? "household" : "patient") +
                                   " of the record's station",
                            t);
    }
  }
  // A national id stays unique within the record's station, as `patient update` keeps it.
  // (Over the API a bad value is a 400, not the 409 of a command's clash.)
  if (k == kind::kPatient && f == "national_id") {
    if (auto st = check_national_id_free(s, t, record_id, station_id); !st) {
      Error e = st.error();
      e.code = ErrorCode::kInvalid;
      return e;
    }
  }
  if (k == kind::kPatient && f == "birth") {
    if (auto st = validate::birth(t, s.today()); !st) return st.error();
  } else if (v.is_number_integer() && v.get<int64_t>() < 0 &&
             ((k == kind::kItemReserve && f == "level") || (k == kind::kWasteBatch && f == "bags"))) {
    return Error::invalid(f, "must be 0 or more", text);
  } else if (v.is_number() && k == kind::kWasteBatch && f == "weight_kg" &&
             (v.get<double>() <= 0 || v.get<double>() > 10000)) {
    return Error::invalid(f, "must be greater than 0 and at most 10000", text);
  } else if (v.is_number_integer() && k == kind::kWasteBatch && f == "bags" && v.get<int64_t>() <= 0) {
    return Error::invalid(f, "must be greater than 0", text);
  }
  return v;
}

// The stored value of one field of an entity row (a known column, or a field
// kept in `extra`) and the row's field versions.
struct StoredField {
  json value;
  json versions;
};

std::optional<StoredField> stored_field(db::Db& db, const RecordSpec& spec, const std::string& id,
                                        const std::string& field) {
  const Column* col = find_column(spec, field);
  // Column names come from the record's spec, never from input.
  auto q = db.prepare(std::string("SELECT _v, extra") + (col ? std::string(", ") + col->name : "") + " FROM " +
                      spec.table + " WHERE id = ?1");
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  StoredField out{nullptr, json::parse(q.str(0))};
  if (col) {
    out.value = read_json(q, 2, col->type);
  } else {
    json extra = json::parse(q.str(1));
    if (extra.contains(field)) out.value = extra[field];
  }
  return out;
}

void write_field(db::Db& db, const RecordSpec& spec, const std::string& id, const std::string& field,
                 const json& value) {
  if (const Column* col = find_column(spec, field)) {
    auto u = db.prepare(std::string("UPDATE ") + spec.table + " SET " + col->name + " = ?1 WHERE id = ?2");
    bind_json(u, 1, value);
    u.bind(2, id).run();
    return;
  }
  auto q = db.prepare(std::string("SELECT extra FROM ") + spec.table + " WHERE id = ?1");
  q.bind(1, id);
  json extra = q.step() ? json::parse(q.str(0)) : json::object();
  q.release();
  extra[field] = value;
  db.prepare(std::string("UPDATE ") + spec.table + " SET extra = ?1 WHERE id = ?2").bind(1, extra.dump()).bind(2, id).run();
}

// Who decides, as a decision records it: the centre's name.
std::string decided_by(StoreImpl& s) {
  auto id = s.require_identity();
  if (!id) return "this node";
  return id->station_name.empty() ? id->device_name : id->station_name;
}

}  // namespace

// --- conflicts ------------------------------------------------------------------------

std::vector<ConflictRow> Store::conflicts(bool open_only) {
  std::vector<ConflictRow> out;
  auto q = impl_->db->prepare(std::string("SELECT ") + kConflictColumns + " FROM conflicts" +
                              (open_only ? " WHERE status = 'open'" : "") + " ORDER BY detected_at, id");
  while (q.step()) out.push_back(read_conflict(q));
  return out;
}

Result<ConflictDecision> Store::resolve_conflict(const std::string& id_or_prefix, const std::string& keep,
                                                 const std::string& note, Decider by) {
  const char* ctx = "conflict resolve";
  if (auto st = require_central(*impl_, "resolves conflicts"); !st) return std::move(st.error()).in(ctx);
  if (auto st = validate::optional_text("note", note); !st) return std::move(st.error()).in(ctx);
  auto id = impl_->resolve("conflict", id_or_prefix);
  if (!id) return std::move(id.error()).in(ctx);
  return impl_->act(ctx, [&](Action& a) -> Result<ConflictDecision> {
    ConflictDecision d;
    {
      auto q = a.db().prepare(std::string("SELECT ") + kConflictColumns + " FROM conflicts WHERE id = ?1");
      q.bind(1, *id);
      if (!q.step()) return Error::not_found("conflict", id_or_prefix);
      d.conflict = read_conflict(q);
    }
    const ConflictRow& c = d.conflict;
    if (c.status != "open") {
      return Error{ErrorCode::kConflict, "", "conflict",
                   "is already " + c.status + (c.resolution.empty() ? "" : " (" + c.resolution + ")"), id_or_prefix};
    }
    const RecordSpec* spec = find_spec(c.kind);
    if (!spec || spec->is_event) {
      return Error{ErrorCode::kConflict, "", "conflict", "is on a record kind this version cannot edit", c.kind};
    }
    if (by == Decider::kReviewer && (c.kind == kind::kDevice || c.kind == kind::kStation)) {
      return Error::refused("conflict",
                            "is on a " + c.kind + " registration: the centre's operator settles it (tramsync-server "
                            "conflicts resolve), not a reviewer token",
                            id_or_prefix);
    }
    auto stored = stored_field(a.db(), *spec, c.record_id, c.field);
    if (!stored) return Error::not_found(c.kind, c.record_id);

    // A registration's fields (a device's token, its revocation) are the
    // admin's to set (tramsync-server device ...), never a typed value.
    if (c.kind == kind::kDevice && keep != kKeepWinner && keep != kKeepLoser) {
      return Error::invalid("keep", "must be winner or loser for a device registration", keep);
    }
    // A slip of the keyword must not be written as data ("Winner", " loser", "looser").
    if (keep != kKeepWinner && keep != kKeepLoser) {
      const std::string folded = fold_for_search(keep);
      for (const char* word : {kKeepWinner, kKeepLoser}) {
        if (edit_distance(folded, word) <= 1) {
          return Error::invalid("keep", std::string("looks like the keyword ") + word +
                                            " mistyped (keywords are lower case, without spaces)",
                                keep);
        }
      }
    }
    json value;
    if (keep == kKeepWinner) {
      d.keep = kKeepWinner;
      value = stored->value;  // the value that stands now, written again as the decision
    } else if (keep == kKeepLoser) {
      d.keep = kKeepLoser;
      value = json::parse(c.loser_value, nullptr, false);
      if (value.is_discarded()) return Error::invalid("loser_value", "is not valid JSON", c.loser_value);
    } else {
      d.keep = "value";
      const Column* col = find_column(*spec, c.field);
      if (!col) {
        return Error::invalid("keep", "must be winner or loser: field " + c.field + " is not known to this version",
                              keep);
      }
      auto parsed = parse_typed(*impl_, *spec, *col, keep, c.record_id, c.station_id);
      if (!parsed) return parsed.error();
      value = *parsed;
    }
    d.value = value.dump();

    // The versions of the field the reviewer saw: the stored one and both
    // sides of every open conflict on this record and field.
    std::vector<merge::Version> seen;
    auto see = [&](const merge::Version& v) {
      if (std::find(seen.begin(), seen.end(), v) == seen.end()) seen.push_back(v);
    };
    if (auto v = version_from(field_version(stored->versions, c.field))) see(*v);
    {
      auto q = a.db().prepare(
          "SELECT winner_hlc, winner_origin, loser_hlc, loser_origin FROM conflicts "
          "WHERE kind = ?1 AND record_id = ?2 AND field = ?3 AND status = 'open' ORDER BY detected_at, id");
      q.bind(1, c.kind).bind(2, c.record_id).bind(3, c.field);
      while (q.step()) {
        see({static_cast<uint64_t>(q.i64(0)), q.str(1)});
        see({static_cast<uint64_t>(q.i64(2)), q.str(3)});
      }
    }
    // And what those versions replaced, as this node's log records it (the
    // base of each change of the field): a device may hold a conflict with an
    // earlier edit of the same writer that the centre only saw superseded
    // (b edits, then corrects itself; a device that pulled both has b's first
    // edit against a's).
    for (size_t i = 0; i < seen.size() && seen.size() < 64; ++i) {
      auto q = a.db().prepare("SELECT payload FROM changes WHERE kind = ?1 AND record_id = ?2 AND origin = ?3 AND hlc = ?4");
      q.bind(1, c.kind).bind(2, c.record_id).bind(3, seen[i].origin).bind(4, seen[i].hlc);
      if (!q.step()) continue;
      json payload = json::parse(q.str(0), nullptr, false);
      if (!payload.is_object() || !payload.contains("base") || !payload["base"].is_object()) continue;
      const json& base = payload["base"];
      if (auto it = base.find(c.field); it != base.end()) {
        if (auto v = version_from(*it)) see(*v);
      }
    }
    json versions = json::array();
    for (const auto& v : seen) versions.push_back(StoreImpl::version_of(v.hlc, v.origin));
    json entry = {{"versions", versions}, {"keep", d.keep}, {"by", decided_by(*impl_)}, {"at", impl_->local_now()}};
    if (!validate::trim(note).empty()) entry["note"] = validate::trim(note);

    write_field(a.db(), *spec, c.record_id, c.field, value);
    if (c.kind == kind::kPatient && (c.field == "name" || c.field == "village")) reindex_patient(a, c.record_id);
    const uint64_t hlc = record_entity_update(a, spec->table, spec->kind, c.record_id, c.station_id,
                                              json{{c.field, value}}, nullptr,
                                              json{{"resolves", {{c.field, entry}}}});
    auto res = parse_resolution(entry, merge::Version{hlc, impl_->device_id()});
    d.closed = close_covered_conflicts(a, c.kind, c.record_id, c.field, *res);
    d.change = a.last_appended();
    return d;
  });
}

// --- quarantine -------------------------------------------------------------------------

std::vector<QuarantinedChange> Store::quarantined(bool held_only) {
  std::vector<QuarantinedChange> out;
  auto q = impl_->db->prepare(std::string("SELECT ") + kQuarantineColumns + " FROM quarantine" +
                              (held_only ? " WHERE status = 'held'" : "") + " ORDER BY id");
  while (q.step()) out.push_back(read_quarantined(q));
  return out;
}

namespace {

// The entry `id`, which must still be held.
Result<QuarantinedChange> held_entry(Action& a, int64_t id) {
  auto q = a.db().prepare(std::string("SELECT ") + kQuarantineColumns + " FROM quarantine WHERE id = ?1");
  q.bind(1, id);
  if (!q.step()) return Error::not_found("quarantine entry", std::to_string(id));
  QuarantinedChange e = read_quarantined(q);
  if (e.status != "held") {
    return Error::refused("quarantine entry",
                          "was already decided: " + e.status + " at " + e.decided_at +
                              (e.decision.empty() ? "" : " (" + e.decision + ")"),
                          std::to_string(id));
  }
  return e;
}

void decide(Action& a, QuarantinedChange& e, const std::string& status, const std::string& decision) {
  e.status = status;
  e.decided_at = a.store().local_now();
  e.decision = decision;
  a.db()
      .prepare("UPDATE quarantine SET status = ?1, decided_at = ?2, decision = ?3 WHERE id = ?4")
      .bind(1, e.status)
      .bind(2, e.decided_at)
      .bind(3, e.decision)
      .bind(4, e.id)
      .run();
}

}  // namespace

Result<QuarantineDecision> Store::release_quarantined(int64_t id, const std::string& note) {
  const char* ctx = "quarantine release";
  if (auto st = validate::optional_text("note", note); !st) return std::move(st.error()).in(ctx);
  if (auto ident = impl_->require_identity(); !ident) return std::move(ident.error()).in(ctx);
  return impl_->act(ctx, [&](Action& a) -> Result<QuarantineDecision> {
    auto e = held_entry(a, id);
    if (!e) return e.error();
    QuarantineDecision d;
    d.entry = *e;
    // A writer's changes of one record are released in the order it made them
    // (a later edit released first would be overwritten by the earlier one).
    {
      auto q = a.db().prepare(
          "SELECT id FROM quarantine WHERE status = 'held' AND origin = ?1 AND record_id = ?2 AND origin_seq < ?3 "
          "ORDER BY origin_seq LIMIT 1");
      q.bind(1, e->origin).bind(2, e->record_id).bind(3, e->origin_seq);
      if (q.step()) {
        return Error::refused("quarantine entry",
                              "has an earlier change of the same record from the same device still held (entry " +
                                  std::to_string(q.i64(0)) + "): release or drop that one first",
                              std::to_string(id));
      }
    }
    const Change c{0, e->origin, e->origin_seq, e->hlc, e->station_id, e->kind, e->record_id, e->payload, e->from_peer};
    {
      auto q = a.db().prepare("SELECT seq FROM changes WHERE origin = ?1 AND origin_seq = ?2");
      q.bind(1, c.origin).bind(2, c.origin_seq);
      if (q.step()) {
        return Error::refused("quarantine entry", "is already in this node's log at position " + std::to_string(q.i64(0)),
                              std::to_string(id));
      }
    }
    // A change stamped far ahead of this node's clock (its device's clock was
    // wrong) is not taken with its own hlc: that would move this node's clock,
    // and so every change it makes from then on, as far ahead, and each
    // station that pulled them would have its own work held here in turn. Its
    // content is applied as this node's change at this node's time instead
    // (the same record ids and values; the device keeps its copy, which agrees).
    const int64_t ahead_ms = static_cast<int64_t>(Hlc::physical_ms(c.hlc)) - impl_->now_ms();
    const bool restamp = ahead_ms > kMaxHlcAheadMs;
    Change applied = c;
    if (restamp) {
      applied.origin = impl_->device_id();
      applied.hlc = a.peek_hlc();
    }
    // The record's own rules, without the sender's (scope, origin, clock).
    ApplyOutcome out;
    ApplyStep step = apply_one(a, out, applied);
    if (step.status == ApplyStatus::kQuarantined) {
      return Error::refused("quarantine entry", "still cannot be applied: " + step.reason, std::to_string(id));
    }
    std::string decision = "released by " + decided_by(*impl_);
    if (step.status == ApplyStatus::kDuplicate) {
      decision += "; the same event was already here";
    } else if (restamp) {
      a.append_change(c.kind, c.record_id, c.station_id, json::parse(c.payload));
      d.seq = a.last_appended().seq;
      decision += "; applied as this node's change at its own time (the writing device's clock was " +
                  std::to_string(ahead_ms / 86'400'000) + " days ahead)";
    } else {
      a.append_remote(c, c.from_peer);
      d.seq = a.last_appended().seq;
      decision += "; applied";
    }
    if (!validate::trim(note).empty()) decision += ": " + validate::trim(note);
    d.conflicts = out.conflicts;
    decide(a, d.entry, "released", decision);
    return d;
  });
}

Result<QuarantineDecision> Store::drop_quarantined(int64_t id, const std::string& reason) {
  const char* ctx = "quarantine drop";
  if (auto st = validate::required_text("reason", reason, validate::kMaxTextBytes); !st) {
    return std::move(st.error()).in(ctx);
  }
  if (auto ident = impl_->require_identity(); !ident) return std::move(ident.error()).in(ctx);
  return impl_->act(ctx, [&](Action& a) -> Result<QuarantineDecision> {
    auto e = held_entry(a, id);
    if (!e) return e.error();
    QuarantineDecision d;
    d.entry = *e;
    decide(a, d.entry, "dropped", "dropped by " + decided_by(*impl_) + ": " + validate::trim(reason));
    return d;
  });
}

// --- duplicate patients -----------------------------------------------------------------


namespace {

const char* const kDuplicateColumns =
    "p.id, p.station_id, coalesce(s.code, ''), p.name, p.sex, p.birth, p.village, p.national_id, p.status, "
    "p.same_as, p.village_fold, coalesce(c.visited, 0), coalesce(c.last_contact, '')";

struct Candidate {
  DuplicateRecord r;
  std::string same_as, village_fold;
};

std::vector<Candidate> read_candidates(db::Db& db, const std::string& where, const std::vector<std::string>& args) {
  auto q = db.prepare(std::string("SELECT ") + kDuplicateColumns +
                      " FROM patients p LEFT JOIN stations s ON s.id = p.station_id LEFT JOIN care_contact c ON "
                      "c.patient_id = p.id WHERE " + where + " ORDER BY p.rowid");
  for (size_t i = 0; i < args.size(); ++i) q.bind(static_cast<int>(i) + 1, args[i]);
  std::vector<Candidate> out;
  while (q.step()) {
    Candidate c;
    c.r = DuplicateRecord{q.str(0), q.str(1), q.str(2), q.str(3), q.str(4), q.str(5), q.str(6), q.str(7), q.str(8),
                          q.i64(11) ? q.str(12) : std::string()};
    c.same_as = q.str(9);
    c.village_fold = q.str(10);
    out.push_back(std::move(c));
  }
  return out;
}

// Points patient `id` (of `station`) at the record kept, `keep` of station
// `keep_code` ("" "": no link), as a patient change made here; returns it.
Change set_link(Action& a, const std::string& id, const std::string& station, const std::string& keep,
                const std::string& keep_code) {
  const RecordSpec& spec = *find_spec(kind::kPatient);
  write_field(a.db(), spec, id, "same_as", keep);
  write_field(a.db(), spec, id, "same_as_station", keep_code);
  record_entity_update(a, spec.table, spec.kind, id, station, json{{"same_as", keep}, {"same_as_station", keep_code}});
  return a.last_appended();
}

// Already one person at the centre: one links to the other, or both to a third.
bool already_linked(const Candidate& a, const Candidate& b) {
  return a.same_as == b.r.id || b.same_as == a.r.id || (!a.same_as.empty() && a.same_as == b.same_as);
}

}  // namespace

Result<std::vector<DuplicatePair>> Store::duplicate_candidates(const DuplicateQuery& query) {
  const char* ctx = "duplicates list";
  // The scope: records of one station and/or of the stations of one district.
  std::optional<std::set<std::string>> scope;
  if (!validate::trim(query.station).empty() || !validate::trim(query.district).empty()) {
    auto in = impl_->stations_in_scope(query.station, query.district);
    if (!in) return std::move(in.error()).in(ctx);
    scope.emplace();
    for (const auto& st : *in) scope->insert(st.id);
  }
  db::Db& db = *impl_->db;
  // Pairs keyed by their ids (sorted), so a pair found both ways is one.
  std::map<std::pair<std::string, std::string>, DuplicatePair> pairs;
  auto add_pair = [&](const Candidate& x, const Candidate& y, bool by_id, int distance) {
    if (x.r.id == y.r.id || already_linked(x, y)) return;
    if (scope && !scope->count(x.r.station_id) && !scope->count(y.r.station_id)) return;
    const bool x_first = std::tie(x.r.station_code, x.r.name, x.r.id) < std::tie(y.r.station_code, y.r.name, y.r.id);
    const Candidate& a = x_first ? x : y;
    const Candidate& b = x_first ? y : x;
    DuplicatePair& p = pairs[{a.r.id, b.r.id}];
    p.a = a.r;
    p.b = b.r;
    if (by_id && !p.same_national_id) {
      p.same_national_id = true;
      p.reasons.push_back("the same national id " + a.r.national_id);
    }
    if (!by_id && !p.same_name_birth) {
      p.same_name_birth = true;
      p.village_distance = distance;
      p.reasons.push_back("the same name and birth date" +
                          std::string(distance == 0 ? " in the same village"
                                                    : ", villages " + std::to_string(distance) +
                                                          " letter(s) apart (" + a.r.village + " / " + b.r.village + ")"));
    }
  };
  // (a) the same national id: its groups through patients_national_id.
  {
    std::vector<std::string> ids;
    auto g = db.prepare(
        "SELECT national_id FROM patients INDEXED BY patients_national_id WHERE national_id != '' GROUP BY "
        "national_id HAVING count(*) > 1");
    while (g.step()) ids.push_back(g.str(0));
    g.release();
    for (const auto& nid : ids) {
      auto group = read_candidates(db, "p.national_id = ?1 AND p.national_id != ''", {nid});  // the partial index
      for (size_t i = 0; i < group.size(); ++i) {
        for (size_t j = i + 1; j < group.size(); ++j) add_pair(group[i], group[j], true, -1);
      }
    }
  }
  // (b) the same folded name and birth date (patients_name_birth), and a close village.
  {
    std::vector<std::pair<std::string, std::string>> keys;
    auto g = db.prepare(
        "SELECT name_fold, birth FROM patients INDEXED BY patients_name_birth GROUP BY name_fold, birth HAVING "
        "count(*) > 1");
    while (g.step()) keys.emplace_back(g.str(0), g.str(1));
    g.release();
    for (const auto& [name, birth] : keys) {
      auto group = read_candidates(db, "p.name_fold = ?1 AND p.birth = ?2", {name, birth});
      for (size_t i = 0; i < group.size(); ++i) {
        for (size_t j = i + 1; j < group.size(); ++j) {
          const int d = edit_distance(group[i].village_fold, group[j].village_fold);
          if (d <= kMaxVillageDistance) add_pair(group[i], group[j], false, d);
        }
      }
    }
  }
  std::vector<DuplicatePair> out;
  for (auto& [key, p] : pairs) out.push_back(std::move(p));
  std::sort(out.begin(), out.end(), [](const DuplicatePair& x, const DuplicatePair& y) {
    return std::tie(x.a.station_code, x.a.name, x.a.id, x.b.id) < std::tie(y.a.station_code, y.a.name, y.a.id, y.b.id);
  });
  return out;
}

Result<PatientMerge> Store::merge_patients(const std::string& keep, const std::string& other) {
  const char* ctx = "duplicates merge";
  if (auto st = require_central(*impl_, "links duplicate patients"); !st) return std::move(st.error()).in(ctx);
  auto keep_id = impl_->resolve("patient", keep);
  if (!keep_id) return std::move(keep_id.error()).in(ctx);
  auto other_id = impl_->resolve("patient", other);
  if (!other_id) return std::move(other_id.error()).in(ctx);
  if (*keep_id == *other_id) {
    return Error::invalid("OTHER", "must be another record than KEEP (the same record given twice)", other).in(ctx);
  }
  return impl_->act(ctx, [&](Action& a) -> Result<PatientMerge> {
    auto links = [&](const std::string& id) {
      auto q = a.db().prepare(
          "SELECT p.station_id, p.same_as, coalesce(s.code, '') FROM patients p LEFT JOIN stations s ON s.id = "
          "p.station_id WHERE p.id = ?1");
      q.bind(1, id);
      q.step();
      return std::array<std::string, 3>{q.str(0), q.str(1), q.str(2)};
    };
    const auto k = links(*keep_id), o = links(*other_id);
    if (!k[1].empty()) {
      return Error::refused("KEEP", "is itself linked to patient " + k[1] + ": keep that record instead", keep);
    }
    if (o[1] == *keep_id) return Error::refused("OTHER", "is already linked to " + *keep_id, other);
    if (!o[1].empty()) return Error::refused("OTHER", "is already linked to patient " + o[1], other);
    PatientMerge m;
    m.keep_id = *keep_id;
    m.keep_station_code = k[2];
    m.other_id = *other_id;
    // Links stay one level deep: what pointed at `other` points at `keep`.
    std::vector<std::pair<std::string, std::string>> targets{{*other_id, o[0]}};
    {
      auto q = a.db().prepare("SELECT id, station_id FROM patients INDEXED BY patients_same_as WHERE same_as = ?1 AND same_as != '' ORDER BY id");
      q.bind(1, *other_id);
      while (q.step()) {
        targets.emplace_back(q.str(0), q.str(1));
        m.relinked.push_back(q.str(0));
      }
    }
    for (const auto& [id, station] : targets) m.changes.push_back(set_link(a, id, station, *keep_id, k[2]));
    return m;
  });
}

Result<PatientMerge> Store::unlink_patient(const std::string& other) {
  const char* ctx = "duplicates unlink";
  if (auto st = require_central(*impl_, "links duplicate patients"); !st) return std::move(st.error()).in(ctx);
  auto other_id = impl_->resolve("patient", other);
  if (!other_id) return std::move(other_id.error()).in(ctx);
  return impl_->act(ctx, [&](Action& a) -> Result<PatientMerge> {
    auto q = a.db().prepare("SELECT station_id, same_as, same_as_station FROM patients WHERE id = ?1");
    q.bind(1, *other_id);
    if (!q.step()) return Error::not_found("patient", other);
    const std::string station = q.str(0), same_as = q.str(1), same_as_station = q.str(2);
    q.release();
    if (same_as.empty()) return Error::refused("OTHER", "is not linked to another record", other);
    PatientMerge m;
    m.keep_id = same_as;
    m.keep_station_code = same_as_station;
    m.other_id = *other_id;
    m.changes.push_back(set_link(a, *other_id, station, "", ""));
    return m;
  });
}

}  // namespace tramsync
