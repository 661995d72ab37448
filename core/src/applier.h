// Applying one change received from a peer (or released from quarantine by the
// centre) to this node's records: the merge of an entity field by field, the
// insertion of an event once, and the record rules a change must keep wherever
// it was made. Private to the store; the batch around it (identity, duplicates,
// the quarantine table, the change log) is Store::apply_changes in replica.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "store_impl.h"
#include "tramsync/core/merge.h"
#include "tramsync/core/replica.h"

namespace tramsync {

// The outcome of applying one change: kApplied, kDuplicate (an event already
// here with the same content) or kQuarantined with the reason it must be held.
struct ApplyStep {
  ApplyStatus status = ApplyStatus::kApplied;
  std::string reason;
};

// Applies `c` inside a savepoint of the action's transaction: either all of it
// is written (and conflicts it finds recorded in `out`), or nothing is and the
// reason comes back. It judges the change by its record's rules only (kind,
// payload shape, field types, references, a record staying in its station), not
// by who sent it: that is sender_refusal(). Does not append to the change log.
// Throws only for I/O errors and bugs.
ApplyStep apply_one(Action& a, ApplyOutcome& out, const Change& c);

// Why the sender described by `ctx` may not write `c` (its scope, the origins
// it may send, a clock too far ahead); empty when it may.
std::string sender_refusal(Action& a, const Change& c, const ApplyContext& ctx);

// A reviewer's decision on concurrent edits of one field, as a resolution
// change carries it in its payload (docs/protocol.md §6 "Resolutions"):
//   "resolves": {"<field>": {"versions": [[hlc, "origin"], ...], "keep": "winner|loser|value",
//                            "by": "...", "at": "...", "note": "..."}}
// `versions` are the field's versions the reviewer saw; the resolving change's
// own version counts as seen too.
struct Resolution {
  std::vector<merge::Version> seen;  // versions, plus the resolving change's own
  std::string text;                  // what conflicts.resolution records
  // Whether a conflict between `winner` and `loser` is settled by it: both seen.
  bool covers(const merge::Version& winner, const merge::Version& loser) const;
};

// Reads the resolution of one field from a payload's "resolves" entry made by
// the change `self`; nullopt when the entry is malformed (it is then ignored:
// the change still applies as an ordinary edit).
std::optional<Resolution> parse_resolution(const json& entry, const merge::Version& self);

// Closes this node's open conflicts on (kind, record_id, field) that `r`
// covers: status 'resolved', resolution = r.text. Returns their ids.
std::vector<std::string> close_covered_conflicts(Action& a, const std::string& kind, const std::string& record_id,
                                                 const std::string& field, const Resolution& r);

}  // namespace tramsync
