// Merge decisions, as pure functions: no clock, I/O or randomness inside, so
// they can be tested exhaustively and run by a simulator (DESIGN "Clock and
// merge"). The store applies what they decide.
//
// Note on placement: the design card puts merge in sync/. The decisions are
// here, in core, because applying them is SQL and all SQL lives in the store;
// sync/ decides nothing a station could not decide offline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tramsync::merge {

// The version of a field or a set member: the change that wrote it.
struct Version {
  uint64_t hlc = 0;
  std::string origin;
  bool operator==(const Version&) const = default;
};

enum class Order { kSame, kOlder, kNewer };

// Orders `a` against `b` by (hlc, origin): kNewer when a > b.
Order compare(const Version& a, const Version& b);

enum class Outcome {
  kKeep,  // the stored value stays
  kTake,  // the incoming value replaces it
  kSame,  // the very same write, already here
};

struct FieldDecision {
  Outcome outcome = Outcome::kKeep;
  // The two writes were concurrent (neither writer had seen the other) and
  // their values differ: the loser is kept in `conflicts` for review.
  bool conflict = false;
};

// One entity field. `stored` is absent when the field has no value here yet.
// `stored_base` is the version the stored value's writer had seen (absent if
// unknown or none); `incoming_base` likewise for the incoming write. Values are
// compared as given (canonical JSON text).
//
// The greater (hlc, origin) wins. The writes were sequential when the newer one's
// base is the older one's version; otherwise, if the values differ, concurrent.
// One exception: a blank value ("" or null) written with no base (by a
// creation) is weaker than any other write: it never replaces another value and
// is replaced by any, without a conflict. A field left empty when a record was
// created is unknown, not a choice (a station made offline with `init` and also
// registered at the centre).
FieldDecision decide_field(const std::optional<Version>& stored, const std::optional<Version>& stored_base,
                           const std::string& stored_value, const Version& incoming,
                           const std::optional<Version>& incoming_base, const std::string& incoming_value);

// One member of a set field (a category, a condition): present or removed,
// last writer wins per member, so concurrent additions of different members
// both survive.
Outcome decide_member(const std::optional<Version>& stored, const Version& incoming);

}  // namespace tramsync::merge
