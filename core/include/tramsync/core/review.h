// What a reviewer at the centre decides: conflicts (concurrent edits of one
// field), changes held in quarantine, and duplicate patients registered at
// several stations (or twice at one). Each decision that changes records is an
// ordinary change made at the centre under its own origin, so it syncs down to
// the record's station like any other edit (docs/protocol.md §6 "Resolutions" and §8).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tramsync/core/model.h"
#include "tramsync/core/replica.h"

namespace tramsync {

// How a conflict is settled: keep the value that won the merge, the one that
// lost, or write another value (given as text, parsed by the field's type).
inline constexpr const char* kKeepWinner = "winner";
inline constexpr const char* kKeepLoser = "loser";

// Who settles a conflict: the centre's operator (tramsync-server), or a
// reviewer device through the API, which may settle conflicts on records but
// not on device or station registrations (a token, a revocation).
enum class Decider { kOperator, kReviewer };

// What Store::resolve_conflict wrote.
struct ConflictDecision {
  ConflictRow conflict;             // the conflict named, as it was before
  std::string keep;                 // "winner", "loser" or "value"
  std::string value;                // the value written, as JSON text
  Change change;                    // the resolution change appended to this node's log
  std::vector<std::string> closed;  // ids of this node's conflicts it closed (the one named among them)
};

// What Store::release_quarantined / drop_quarantined decided.
struct QuarantineDecision {
  QuarantinedChange entry;  // as it now stands: status, decided_at, decision
  int64_t seq = 0;          // released: the change's position in this node's log
  int64_t conflicts = 0;    // released: concurrent edits applying it revealed
};

// Which duplicate candidates to list: pairs with at least one record in this
// station (a code) and/or district (compared diacritics- and case-insensitively).
struct DuplicateQuery {
  std::string station;
  std::string district;
};

// One record of a duplicate pair, as the reviewer compares them.
struct DuplicateRecord {
  std::string id, station_id, station_code, name, sex, birth, village, national_id, status;
  std::string last_visit;  // station-local time; empty: never visited
};

// Two patient records that may be one person.
struct DuplicatePair {
  DuplicateRecord a, b;                // a sorts before b by (station code, name, id)
  bool same_national_id = false;       // (a) the same non-empty national id
  bool same_name_birth = false;        // (b) the same folded name and birth, and a close village
  int village_distance = -1;           // (b) edit distance of the folded villages (0: the same)
  std::vector<std::string> reasons;    // why they matched, for people
};

// The largest edit distance between two folded village names that still counts
// as "the same village" for duplicate candidates ("Bản Mới" / "Ban Moi" are 0,
// "Nậm Tăm" / "Nam Tam 2" are 2).
inline constexpr int kMaxVillageDistance = 2;

// What Store::merge_patients wrote: one change per record linked.
struct PatientMerge {
  std::string keep_id, keep_station_code;
  std::string other_id;
  // Records that were linked to `other` and now point at `keep` (links stay one
  // level deep: every same_as names a record that is not itself linked).
  std::vector<std::string> relinked;
  std::vector<Change> changes;
};


}  // namespace tramsync
