// Fuzz target "merge": core's merge decisions (core/include/tramsync/core/merge.h)
// on writes derived from the fuzz bytes, checked for the properties the design
// promises, not only for crashes.
//
// The input becomes 2 to 5 writes of one field: each a version (hlc 1..6,
// origin a/b/c, all distinct: one origin never writes twice at one hlc), an
// optional base (none, the version of an earlier write, or any version) and a
// value (blank "" or null, or a value). A field is applied as
// core/src/applier.cpp applies it: decide_field against the stored (value,
// version, base); on kTake the write becomes the stored one.
//
// Properties (a violation aborts, printing the writes):
//   - compare() is a strict total order on versions (antisymmetric, kSame only
//     for equal versions, transitive);
//   - decide_field is deterministic, and kSame exactly for the stored version;
//   - idempotent: a write applied again changes nothing and flags nothing;
//   - an edit of the stored value (its base is the stored version) that is
//     newer is taken, without a conflict;
//   - convergence: every order of arrival ends with the same value and version
//     (DESIGN "Clock and merge": every node ends with the same value whatever
//     order the writes arrive in);
//   - two writes flag a conflict in both orders or in neither;
//   - decide_member: every order ends with the greatest version.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "tramsync/core/merge.h"

namespace merge = tramsync::merge;
using tramsync::fuzz::Bytes;
using tramsync::fuzz::fail;
using tramsync::fuzz::require;

namespace {

struct Write {
  merge::Version v;
  std::optional<merge::Version> base;
  std::string value;  // canonical JSON text, as the applier passes it
};

struct Field {
  std::optional<merge::Version> version, base;
  std::string value = "null";
  bool operator==(const Field&) const = default;
};

std::string show(const merge::Version& v) { return std::to_string(v.hlc) + "/" + v.origin; }
std::string show(const Write& w) {
  return "{" + show(w.v) + " base " + (w.base ? show(*w.base) : "-") + " value " + w.value + "}";
}
std::string show(const Field& f) { return f.value + " @" + (f.version ? show(*f.version) : "-"); }

merge::FieldDecision decide(const Field& f, const Write& w) {
  auto d = merge::decide_field(f.version, f.base, f.value, w.v, w.base, w.value);
  auto again = merge::decide_field(f.version, f.base, f.value, w.v, w.base, w.value);
  require(d.outcome == again.outcome && d.conflict == again.conflict, "decide_field is not deterministic");
  return d;
}

// Applies `w` to `f` as the applier does; checks the per-step properties.
Field apply(const Field& f, const Write& w, bool* conflict) {
  auto d = decide(f, w);
  const bool same_version = f.version && *f.version == w.v;
  require((d.outcome == merge::Outcome::kSame) == same_version,
          "kSame must mean exactly the stored version, for " + show(w) + " on " + show(f));
  if (!f.version) require(d.outcome == merge::Outcome::kTake && !d.conflict, "a first write must be taken");
  if (f.version && w.base && *w.base == *f.version && merge::compare(w.v, *f.version) == merge::Order::kNewer) {
    require(d.outcome == merge::Outcome::kTake && !d.conflict,
            "a newer edit of the stored value must be taken without a conflict: " + show(w) + " on " + show(f));
  }
  Field out = f;
  if (d.outcome == merge::Outcome::kTake) out = Field{w.v, w.base, w.value};
  // Idempotent: the same write again changes nothing and flags nothing new.
  auto d2 = decide(out, w);
  if (d.outcome == merge::Outcome::kKeep) {
    require(d2.outcome == merge::Outcome::kKeep && d2.conflict == d.conflict, "a kept write decided again differs");
  } else {
    require(d2.outcome == merge::Outcome::kSame && !d2.conflict, "a write applied twice must be kSame the second time");
  }
  if (conflict) *conflict = d.conflict;
  return out;
}

std::vector<Write> writes_from(Bytes& in) {
  static const char* kValues[] = {"\"\"", "null", "\"0912345678\"", "\"0987654321\"", "7"};
  static const char* kOrigins[] = {"a", "b", "c"};
  auto version = [&] { return merge::Version{1 + in.pick(6), kOrigins[in.pick(3)]}; };
  const size_t n = 2 + in.pick(4);
  std::vector<Write> ws;
  for (size_t tries = 0; ws.size() < n && tries < 4 * n; ++tries) {
    Write w;
    w.v = version();
    switch (in.pick(3)) {
      case 0: break;
      case 1:
        if (!ws.empty()) w.base = ws[in.pick(ws.size())].v;
        break;
      default: w.base = version(); break;
    }
    w.value = kValues[in.pick(5)];
    if (w.base && *w.base == w.v) continue;  // no write is its own base
    if (std::any_of(ws.begin(), ws.end(), [&](const Write& x) { return x.v == w.v; })) continue;
    ws.push_back(w);
  }
  return ws;
}

void check_order(const std::vector<Write>& ws) {
  for (const auto& a : ws) {
    for (const auto& b : ws) {
      const auto ab = merge::compare(a.v, b.v), ba = merge::compare(b.v, a.v);
      require((ab == merge::Order::kSame) == (a.v == b.v), "compare: kSame must mean equal versions");
      require((ab == merge::Order::kNewer) == (ba == merge::Order::kOlder), "compare is not antisymmetric");
      for (const auto& c : ws) {
        if (ab == merge::Order::kNewer && merge::compare(b.v, c.v) == merge::Order::kNewer) {
          require(merge::compare(a.v, c.v) == merge::Order::kNewer, "compare is not transitive");
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const std::vector<Write> ws = writes_from(in);
  if (ws.size() < 2) return 0;
  check_order(ws);

  // Every order of arrival ends the same, field and set member alike.
  std::vector<size_t> order(ws.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::optional<Field> first;
  std::vector<size_t> first_order;
  merge::Version greatest = ws[0].v;
  for (const auto& w : ws) {
    if (merge::compare(w.v, greatest) == merge::Order::kNewer) greatest = w.v;
  }
  do {
    Field f;
    std::optional<merge::Version> member;
    for (size_t i : order) {
      f = apply(f, ws[i], nullptr);
      if (merge::decide_member(member, ws[i].v) == merge::Outcome::kTake) member = ws[i].v;
    }
    require(member && *member == greatest, "decide_member: the greatest version must win in any order");
    if (!first) {
      first = f;
      first_order = order;
    } else if (!(f == *first)) {
      std::string a, b;
      for (size_t i : first_order) a += show(ws[i]) + " ";
      for (size_t i : order) b += show(ws[i]) + " ";
      fail("the order of arrival changes the result: " + a + "-> " + show(*first) + " but " + b + "-> " + show(f));
    }
  } while (std::next_permutation(order.begin(), order.end()));

  // Two writes: a conflict is flagged whichever arrives second, or never.
  for (size_t i = 0; i < ws.size(); ++i) {
    for (size_t j = i + 1; j < ws.size(); ++j) {
      bool c1 = false, c2 = false;
      apply(apply(Field{}, ws[i], nullptr), ws[j], &c1);
      apply(apply(Field{}, ws[j], nullptr), ws[i], &c2);
      require(c1 == c2, "a conflict flagged in one order only: " + show(ws[i]) + " and " + show(ws[j]));
    }
  }
  return 0;
}
