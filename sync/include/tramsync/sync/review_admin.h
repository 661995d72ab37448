// The reviewer's decisions as the programs show them: conflicts (concurrent
// edits of one field) and changes held in quarantine, listed and decided at the
// centre (`tramsync-server conflicts ...`, `tramsync-server quarantine ...`,
// GET /v1/conflicts, POST /v1/conflicts/ID/resolve, GET /v1/quarantine), and a
// device's own conflicts (`station-cli conflicts`).
//
// Each call reads or decides through the Store (core/review.h holds every
// rule) and returns what to show: a JSON document (--json, the HTTP answer) and
// text for a terminal. The terminal, the API and a station's list therefore
// show the same fields.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>

#include "tramsync/core/status.h"
#include "tramsync/core/store.h"
#include "tramsync/sync/device_admin.h"

namespace tramsync::sync {

// Station ids to codes, as this file knows its stations ("" for none).
using StationCodes = std::map<std::string, std::string>;
StationCodes station_codes(Store& store);

// One conflict:
//   {"id", "station" (code, null for the catalogue), "station_id", "kind", "record_id", "field",
//    "winner_value", "loser_value" (the values as JSON, not as JSON text), "winner_origin", "winner_hlc",
//    "loser_origin", "loser_hlc", "detected_at", "status" ("open"|"resolved"), "resolution" (null while open)}
nlohmann::json conflict_json(const ConflictRow& c, const StationCodes& codes);

// One quarantine entry:
//   {"id", "received_at", "station", "station_id", "from_peer", "origin", "origin_seq", "hlc", "kind",
//    "record_id", "reason", "status" ("held"|"applied"|"released"|"dropped"), "decided_at", "decision"
//    (both null while held), "payload" (the change's payload as JSON)}
nlohmann::json quarantined_json(const QuarantinedChange& q, const StationCodes& codes);

// Which conflicts to list: open ones (or all), of one station (a code) or all stations.
struct ConflictQuery {
  bool all = false;
  std::string station;
};

// json: an array of conflict_json, oldest first. An unknown station code is
// an error naming "station".
Result<Shown> conflict_list(Store& store, const ConflictQuery& q);

// Settles a conflict (Store::resolve_conflict). json:
//   {"id", "keep" ("winner"|"loser"|"value"), "value" (as JSON), "closed": [conflict ids],
//    "conflict": conflict_json as it was before, "change": {"seq", "origin", "origin_seq", "hlc"},
//    "syncs_to": station code}
Result<Shown> conflict_resolve(Store& store, const std::string& id, const std::string& keep,
                               const std::string& note, Decider by = Decider::kOperator);

// json: an array of quarantined_json, in the order received; held ones only unless `all`.
Shown quarantine_list(Store& store, bool all);

// Store::release_quarantined / drop_quarantined. json: quarantined_json as the
// entry now stands, plus "seq" (the change's position in this node's log, 0
// when nothing new was written) and "conflicts" (concurrent edits applying it
// revealed) for a release.
Result<Shown> quarantine_release(Store& store, int64_t id, const std::string& note);
Result<Shown> quarantine_drop(Store& store, int64_t id, const std::string& reason);

}  // namespace tramsync::sync
