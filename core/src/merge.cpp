#include "tramsync/core/merge.h"

namespace tramsync::merge {

Order compare(const Version& a, const Version& b) {
  if (a.hlc != b.hlc) return a.hlc > b.hlc ? Order::kNewer : Order::kOlder;
  if (a.origin != b.origin) return a.origin > b.origin ? Order::kNewer : Order::kOlder;
  return Order::kSame;
}

FieldDecision decide_field(const std::optional<Version>& stored, const std::optional<Version>& stored_base,
                           const std::string& stored_value, const Version& incoming,
                           const std::optional<Version>& incoming_base, const std::string& incoming_value) {
  if (!stored) return {Outcome::kTake, false};
  Order o = compare(incoming, *stored);
  if (o == Order::kSame) return {Outcome::kSame, false};
  const bool values_differ = stored_value != incoming_value;
  // A blank value written by a creation (no base: the writer had seen no
  // earlier version) means "not known yet", not a choice: it is weaker than any
  // other write, so a field one creation left empty is filled by the other
  // creation or by any edit, whatever the hlc order, and that is no conflict.
  // Weakness decides first even when the two values are equal (a creation's
  // blank and a deliberate clearing): only then is (not weak, hlc, origin) a
  // total order, so every node ends with the same value and version whatever
  // order the writes arrive in (fuzz/regressions/merge/order-of-arrival-*).
  auto blank = [](const std::string& v) { return v == "\"\"" || v == "null"; };
  const bool weak_stored = !stored_base && blank(stored_value);
  const bool weak_incoming = !incoming_base && blank(incoming_value);
  if (weak_stored != weak_incoming) {
    return {weak_incoming ? Outcome::kKeep : Outcome::kTake, false};
  }
  if (o == Order::kNewer) {
    // The incoming writer had seen what is stored: an ordinary edit.
    bool sequential = incoming_base && *incoming_base == *stored;
    return {Outcome::kTake, !sequential && values_differ};
  }
  // The incoming write is older. It is an ancestor of the stored one when the
  // stored writer had seen it; otherwise the two were concurrent.
  bool ancestor = stored_base && *stored_base == incoming;
  return {Outcome::kKeep, !ancestor && values_differ};
}

Outcome decide_member(const std::optional<Version>& stored, const Version& incoming) {
  if (!stored) return Outcome::kTake;
  switch (compare(incoming, *stored)) {
    case Order::kNewer: return Outcome::kTake;
    case Order::kSame: return Outcome::kSame;
    case Order::kOlder: return Outcome::kKeep;
  }
  return Outcome::kKeep;
}

}  // namespace tramsync::merge
