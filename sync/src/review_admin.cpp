// Conflicts and quarantine as the programs show them (review_admin.h). Every
// rule is the Store's (core/review.h); this file only shapes what it returns.
#include "tramsync/sync/review_admin.h"

#include <sstream>

#include "tramsync/core/text.h"

namespace tramsync::sync {

using json = nlohmann::json;

namespace {

json str_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

// A value kept as JSON text, as JSON (the text itself if it is not JSON).
json value_json(const std::string& text) {
  json v = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return v.is_discarded() ? json(text) : v;
}

// At most `n` bytes of `s`, cut on a UTF-8 character boundary, "…" marking a cut.
std::string clip(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t end = n;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end) + "…";
}

// A value for a terminal: text as it is, blank as "(blank)", other JSON as JSON.
std::string value_text(const std::string& text) {
  json v = value_json(text);
  if (v.is_null() || (v.is_string() && v.get<std::string>().empty())) return "(blank)";
  return clip(v.is_string() ? v.get<std::string>() : v.dump(), 40);
}

std::string short_id(const std::string& id) { return id.substr(0, 8); }

std::string code_of(const StationCodes& codes, const std::string& station_id) {
  auto it = codes.find(station_id);
  return it == codes.end() ? std::string() : it->second;
}

std::string dash(const std::string& s) { return s.empty() ? "-" : s; }

}  // namespace

StationCodes station_codes(Store& store) {
  StationCodes out;
  for (const auto& s : store.stations()) out[s.id] = s.code;
  return out;
}

json conflict_json(const ConflictRow& c, const StationCodes& codes) {
  return {{"id", c.id},
          {"station", str_or_null(code_of(codes, c.station_id))},
          {"station_id", c.station_id},
          {"kind", c.kind},
          {"record_id", c.record_id},
          {"field", c.field},
          {"winner_value", value_json(c.winner_value)},
          {"winner_origin", c.winner_origin},
          {"winner_hlc", c.winner_hlc},
          {"loser_value", value_json(c.loser_value)},
          {"loser_origin", c.loser_origin},
          {"loser_hlc", c.loser_hlc},
          {"detected_at", c.detected_at},
          {"status", c.status},
          {"resolution", str_or_null(c.resolution)}};
}

json quarantined_json(const QuarantinedChange& q, const StationCodes& codes) {
  return {{"id", q.id},
          {"received_at", q.received_at},
          {"station", str_or_null(code_of(codes, q.station_id))},
          {"station_id", q.station_id},
          {"from_peer", q.from_peer},
          {"origin", q.origin},
          {"origin_seq", q.origin_seq},
          {"hlc", q.hlc},
          {"kind", q.kind},
          {"record_id", q.record_id},
          {"reason", q.reason},
          {"status", q.status},
          {"decided_at", str_or_null(q.decided_at)},
          {"decision", str_or_null(q.decision)},
          {"payload", value_json(q.payload)}};
}

// --- conflicts -------------------------------------------------------------------------

Result<Shown> conflict_list(Store& store, const ConflictQuery& q) {
  const StationCodes codes = station_codes(store);
  std::string station_id;
  if (!q.station.empty()) {
    auto s = store.station_by_code(q.station);
    if (!s) return Error::not_found("station", q.station);
    station_id = s->id;
  }
  Shown out{json::array(), ""};
  TextTable t({"ID", "STATION", "KIND", "RECORD", "FIELD", "WINNER", "LOSER", "DETECTED", "STATUS", "RESOLUTION"});
  for (const auto& c : store.conflicts(/*open_only=*/!q.all)) {
    if (!q.station.empty() && c.station_id != station_id) continue;
    out.json.push_back(conflict_json(c, codes));
    t.add({short_id(c.id), dash(code_of(codes, c.station_id)), c.kind, short_id(c.record_id), c.field,
           value_text(c.winner_value), value_text(c.loser_value), c.detected_at.substr(0, 16), c.status,
           dash(clip(c.resolution, 60))});
  }
  std::ostringstream text;
  if (t.empty()) {
    text << (q.all ? "No conflicts" : "No open conflicts") << (q.station.empty() ? "" : " at " + q.station) << ".\n";
  } else {
    t.print(text);
  }
  out.text = text.str();
  return out;
}

Result<Shown> conflict_resolve(Store& store, const std::string& id, const std::string& keep,
                               const std::string& note, Decider by) {
  auto d = store.resolve_conflict(id, keep, note, by);
  if (!d) return d.error();
  const StationCodes codes = station_codes(store);
  const ConflictRow& c = d->conflict;
  const std::string station = code_of(codes, c.station_id);
  Shown out;
  out.json = {{"id", c.id},
              {"keep", d->keep},
              {"value", value_json(d->value)},
              {"closed", d->closed},
              {"conflict", conflict_json(c, codes)},
              {"change",
               {{"seq", d->change.seq},
                {"origin", d->change.origin},
                {"origin_seq", d->change.origin_seq},
                {"hlc", d->change.hlc}}},
              {"syncs_to", str_or_null(station)}};
  std::ostringstream text;
  const std::string kept = d->keep == kKeepWinner  ? "kept the winning value"
                           : d->keep == kKeepLoser ? "kept the losing value"
                                                   : "set another value";
  text << "Resolved conflict " << short_id(c.id) << " (" << c.kind << " " << short_id(c.record_id) << ", "
       << c.field << "): " << kept << ", " << value_text(d->value) << ".\n"
       << "Closed " << d->closed.size() << " conflict" << (d->closed.size() == 1 ? "" : "s") << ":";
  for (const auto& closed : d->closed) text << ' ' << closed;
  text << "\nChange " << d->change.seq << " in the centre's log syncs to "
       << (station.empty() ? std::string("every station") : "station " + station)
       << " on its devices' next sync; they close their own conflicts over it.\n";
  out.text = text.str();
  return out;
}

// --- quarantine -------------------------------------------------------------------------

Shown quarantine_list(Store& store, bool all) {
  const StationCodes codes = station_codes(store);
  Shown out{json::array(), ""};
  TextTable t({"ID", "RECEIVED", "STATION", "KIND", "RECORD", "ORIGIN", "REASON", "STATUS", "DECIDED", "DECISION"});
  for (const auto& q : store.quarantined(/*held_only=*/!all)) {
    out.json.push_back(quarantined_json(q, codes));
    t.add({std::to_string(q.id), q.received_at.substr(0, 16), dash(code_of(codes, q.station_id)), q.kind,
           short_id(q.record_id), short_id(q.origin), clip(q.reason, 70), q.status, dash(q.decided_at.substr(0, 16)),
           dash(clip(q.decision, 60))});
  }
  std::ostringstream text;
  if (t.empty()) {
    text << (all ? "Nothing was ever held in quarantine.\n" : "No changes held in quarantine.\n");
  } else {
    t.print(text);
  }
  out.text = text.str();
  return out;
}

Result<Shown> quarantine_release(Store& store, int64_t id, const std::string& note) {
  auto d = store.release_quarantined(id, note);
  if (!d) return d.error();
  const StationCodes codes = station_codes(store);
  const auto& e = d->entry;
  Shown out;
  out.json = quarantined_json(e, codes);
  out.json["seq"] = d->seq;
  out.json["conflicts"] = d->conflicts;
  std::ostringstream text;
  text << "Released quarantine entry " << e.id << " (" << e.kind << " " << short_id(e.record_id) << " from origin "
       << short_id(e.origin) << "): " << e.decision << ".\n";
  if (d->seq > 0) {
    text << "It is change " << d->seq << " in the centre's log and syncs to "
         << (e.station_id.empty() ? std::string("every station") : "station " + dash(code_of(codes, e.station_id)))
         << " on its devices' next sync.\n";
  }
  if (d->conflicts > 0) {
    text << "Applying it revealed " << d->conflicts << " concurrent edit" << (d->conflicts == 1 ? "" : "s")
         << ": see `conflicts list`.\n";
  }
  out.text = text.str();
  return out;
}

Result<Shown> quarantine_drop(Store& store, int64_t id, const std::string& reason) {
  auto d = store.drop_quarantined(id, reason);
  if (!d) return d.error();
  const auto& e = d->entry;
  Shown out;
  out.json = quarantined_json(e, station_codes(store));
  std::ostringstream text;
  text << "Dropped quarantine entry " << e.id << " (" << e.kind << " " << short_id(e.record_id) << " from origin "
       << short_id(e.origin) << "): " << e.decision << ".\nIt stays in the quarantine table and is never applied.\n";
  out.text = text.str();
  return out;
}

}  // namespace tramsync::sync
