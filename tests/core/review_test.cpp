// The reviewer's decisions at the centre (core/review.h, Store::resolve_conflict,
// release_quarantined, drop_quarantined; docs/protocol.md §6 "Resolutions" and §8), and what
// the stations make of them once the decisions reach them.
//
// Every test builds a small district in one process: a centre (init_central),
// one station registered there, and a few devices of that station (init_device),
// each with its own file, manual clock and seeded ids. Changes move between them
// as the sync service and client move them: a push is applied at the centre with
// the server's context (the station's scope, the device's own origin, the clock
// check), a pull is applied at the device with the client's context.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "fixture.h"
#include "node.h"
#include "support/sqlite_query.h"
#include "tramsync/core/hlc.h"
#include "tramsync/core/review.h"
#include "tramsync/core/text.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {

constexpr const char* kCentreName = "TTYT huyện Đông Anh";

// A centre, its station TYT-ANHOA and the station's devices.
class District {
 public:
  District() {
    centre.id = must(centre.store->init_central(kCentreName)).device_id;
    station = must(centre.store->add_station("TYT-ANHOA", "Trạm Y tế xã An Hòa", "Huyện Đông Anh", "Hà Nội"));
  }

  // A device of the station, enrolled and holding what the centre holds of it.
  Node& add_device(const std::string& name) {
    auto n = std::make_unique<Node>(next_seed_++);
    n->id = n->ids.new_id();
    must(n->store->init_device(station, n->id, name));
    devices_.push_back(std::move(n));
    Node& d = *devices_.back();
    pull(d);
    return d;
  }

  ApplyContext push_context(const Node& d) const { return test::push_context(d, station.id); }
  ApplyOutcome push(Node& d) { return push_to(centre, d, station.id); }

  // Pushes changes made by hand under the device's name, as a device running
  // other software (or a broken one) could send them.
  ApplyOutcome push_changes(Node& d, const std::vector<Change>& changes) {
    return must(centre.store->apply_changes(changes, push_context(d)));
  }

  ApplyOutcome pull(Node& d) { return pull_from(centre, d, station.id); }

  // Hands the device some of the centre's changes in an order chosen by the test.
  ApplyOutcome deliver(Node& d, const std::vector<Change>& changes) {
    ApplyContext ctx;
    ctx.from_peer = centre.id;
    ctx.check_clock = false;
    return must(d.store->apply_changes(changes, ctx));
  }

  // The centre's copy of a change, by its identity.
  Change at_centre(const Change& c) {
    for (const auto& x : centre.store->changes_after(0, kBigPage)) {
      if (x.origin == c.origin && x.origin_seq == c.origin_seq) return x;
    }
    FAIL("change " << c.origin << "/" << c.origin_seq << " is not in the centre's log");
    return {};
  }

  // `by` registers a patient, pushes it, and every other device pulls it.
  std::string register_patient(Node& by, const std::string& name) {
    PatientInput in;
    in.name = name;
    in.sex = "female";
    in.birth = "1950";
    in.village = "Thôn Đông";
    std::string id = must(by.store->add_patient(in));
    const ApplyOutcome out = push(by);
    REQUIRE(out.applied >= 1);
    REQUIRE(out.quarantined == 0);
    for (auto& d : devices_) {
      if (d.get() != &by) pull(*d);
    }
    return id;
  }

  // Moves every clock of the district on.
  void advance(int64_t ms) {
    centre.clock.advance(ms);
    for (auto& d : devices_) d->clock.advance(ms);
  }

  Node centre{1};
  StationInfo station;

 private:
  std::vector<std::unique_ptr<Node>> devices_;
  uint64_t next_seed_ = 101;
};

// Edits one patient's phone on a device; returns the change it wrote.
Change edit_phone(Node& d, const std::string& patient, const std::string& phone) {
  PatientUpdate up;
  up.phone = phone;
  must(d.store->update_patient(patient, up));
  Change c = d.last_change();
  REQUIRE(c.kind == "patient");
  REQUIRE(c.origin == d.id);
  return c;
}

json version(const Change& c) { return json::array({c.hlc, c.origin}); }
// The version a change replaced in `field` (its payload's base): the centre
// lists it among the versions a resolution saw.
json base_of(const Change& c, const std::string& field) { return json::parse(c.payload).at("base").at(field); }

// The only open conflict of a node.
ConflictRow only_open(Node& n) {
  auto open = n.store->conflicts();
  REQUIRE(open.size() == 1);
  return open[0];
}

// One patient registered by a, whose phone a and then b (a minute later)
// edit offline; both push: the centre holds one open conflict, b's edit winning.
struct PhoneConflict {
  std::string patient;
  Change ea, eb;
  ConflictRow at_centre;
};
PhoneConflict phone_conflict(District& net, Node& a, Node& b, const std::string& name) {
  PhoneConflict pc;
  pc.patient = net.register_patient(a, name);
  net.advance(kMinuteMs);
  pc.ea = edit_phone(a, pc.patient, "0912 000 001");
  net.advance(kMinuteMs);
  pc.eb = edit_phone(b, pc.patient, "0987 000 002");
  net.push(a);
  net.push(b);
  pc.at_centre = only_open(net.centre);
  return pc;
}

// Each typed value is refused for conflict `id` on `field`, with its rule, and
// the conflict stays open.
void check_refused(Node& centre, const std::string& id, const std::string& field,
                   const std::vector<std::pair<std::string, std::string>>& keep_and_rule) {
  for (const auto& [keep, rule] : keep_and_rule) {
    INFO(field << " = \"" << keep << "\"");
    Error e = must_fail(centre.store->resolve_conflict(id, keep));
    CHECK(e.code == ErrorCode::kInvalid);
    CHECK(e.context == "conflict resolve");
    CHECK(e.field == field);
    CHECK(e.rule == rule);
    CHECK(e.value == keep);
  }
  const auto open = centre.store->conflicts();
  CHECK(std::any_of(open.begin(), open.end(), [&](const ConflictRow& c) { return c.id == id; }));
}

// The open conflict of a node on one field.
ConflictRow open_on(Node& n, const std::string& field) {
  for (const auto& c : n.store->conflicts()) {
    if (c.field == field) return c;
  }
  FAIL("no open conflict on " << field);
  return {};
}

// A conflict of a node by id, whatever its status.
ConflictRow conflict_by_id(Node& n, const std::string& id) {
  for (const auto& c : n.store->conflicts(false)) {
    if (c.id == id) return c;
  }
  FAIL("no conflict " << id);
  return {};
}

std::string resolution_text(const std::string& what, const std::string& at, const std::string& note = "") {
  return what + " by " + kCentreName + " at " + at + (note.empty() ? "" : ": " + note);
}

// A change written by hand under `origin`.
Change hand_made(const std::string& origin, int64_t origin_seq, int64_t at_ms, const std::string& station_id,
                 const std::string& kind, const std::string& record_id, const std::string& payload) {
  return Change{0, origin, origin_seq, Hlc::pack(at_ms, 0), station_id, kind, record_id, payload, ""};
}

// Everything of a quarantine entry a decision may change or must leave alone.
void check_same_entry(const QuarantinedChange& a, const QuarantinedChange& b) {
  CHECK(a.id == b.id);
  CHECK(a.status == b.status);
  CHECK(a.decided_at == b.decided_at);
  CHECK(a.decision == b.decision);
  CHECK(a.reason == b.reason);
  CHECK(a.payload == b.payload);
}

}  // namespace

// --- conflicts ----------------------------------------------------------------------------

TEST_CASE("two devices edit one field offline: the centre and each device record one open conflict, and keeping "
          "the losing value settles it on every node",
          "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  const std::string p = net.register_patient(a, "Nguyễn Thị Lan");
  CHECK(b.phone(p).empty());

  net.advance(kMinuteMs);
  const Change ea = edit_phone(a, p, "0912 000 001");
  net.advance(kMinuteMs);
  const Change eb = edit_phone(b, p, "0987 000 002");
  REQUIRE(ea.hlc < eb.hlc);

  CHECK(net.push(a).applied == 1);
  ApplyOutcome ob = net.push(b);
  CHECK(ob.applied == 1);
  CHECK(ob.conflicts == 1);

  // At the centre: one open conflict; the later edit (b) won the merge.
  const ConflictRow c = only_open(net.centre);
  CHECK(c.kind == "patient");
  CHECK(c.record_id == p);
  CHECK(c.station_id == net.station.id);
  CHECK(c.field == "phone");
  CHECK(c.winner_value == "\"0987 000 002\"");
  CHECK(c.winner_origin == b.id);
  CHECK(c.winner_hlc == eb.hlc);
  CHECK(c.loser_value == "\"0912 000 001\"");
  CHECK(c.loser_origin == a.id);
  CHECK(c.loser_hlc == ea.hlc);
  CHECK(c.status == "open");
  CHECK(c.resolution.empty());
  CHECK(net.centre.phone(p) == "0987 000 002");

  // Each device, once it has the other's edit: a lost its own edit, b kept its own.
  CHECK(net.pull(a).conflicts == 1);
  CHECK(net.pull(b).conflicts == 1);
  for (Node* d : {&a, &b}) {
    INFO("device " << d->id);
    const ConflictRow dc = only_open(*d);
    CHECK(dc.field == "phone");
    CHECK(dc.record_id == p);
    CHECK(dc.winner_origin == b.id);
    CHECK(dc.winner_hlc == eb.hlc);
    CHECK(dc.winner_value == "\"0987 000 002\"");
    CHECK(dc.loser_origin == a.id);
    CHECK(dc.loser_hlc == ea.hlc);
    CHECK(dc.loser_value == "\"0912 000 001\"");
    CHECK(d->phone(p) == "0987 000 002");
  }

  // The reviewer keeps the losing value an hour later, naming the conflict by a prefix.
  net.advance(kHourMs);
  const std::string at = "2026-11-20T10:02:00";
  REQUIRE(net.centre.store->local_now() == at);
  const int64_t seq_before = net.centre.store->last_seq();
  const ConflictDecision d =
      must(net.centre.store->resolve_conflict(c.id.substr(0, 8), "loser", "  đã gọi điện hỏi lại bệnh nhân "));
  const std::string text = resolution_text("kept the losing value", at, "đã gọi điện hỏi lại bệnh nhân");
  CHECK(d.conflict.id == c.id);
  CHECK(d.conflict.status == "open");
  CHECK(d.keep == "loser");
  CHECK(d.value == "\"0912 000 001\"");
  CHECK(d.closed == std::vector<std::string>{c.id});

  // The decision is one change of the centre's, at the end of its log.
  CHECK(d.change.origin == net.centre.id);
  CHECK(d.change.kind == "patient");
  CHECK(d.change.record_id == p);
  CHECK(d.change.station_id == net.station.id);
  CHECK(d.change.from_peer.empty());
  CHECK(d.change.hlc > eb.hlc);
  CHECK(d.change.seq == seq_before + 1);
  CHECK(net.centre.store->last_seq() == seq_before + 1);
  const auto logged = net.centre.store->changes_after(seq_before, 10);
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].seq == d.change.seq);
  CHECK(logged[0].origin == net.centre.id);
  CHECK(logged[0].origin_seq == d.change.origin_seq);
  CHECK(logged[0].hlc == d.change.hlc);
  CHECK(logged[0].payload == d.change.payload);
  const json payload = json::parse(d.change.payload);
  CHECK(payload == json{{"op", "upsert"},
                        {"fields", {{"phone", "0912 000 001"}}},
                        {"base", {{"phone", version(eb)}}},
                        {"resolves",
                         {{"phone",
                           {{"versions", json::array({version(eb), version(ea), base_of(ea, "phone")})},
                            {"keep", "loser"},
                            {"by", kCentreName},
                            {"at", at},
                            {"note", "đã gọi điện hỏi lại bệnh nhân"}}}}}});

  // At the centre: the field holds the losing value, the conflict is resolved.
  CHECK(net.centre.phone(p) == "0912 000 001");
  CHECK(net.centre.store->conflicts().empty());
  const ConflictRow closed = conflict_by_id(net.centre, c.id);
  CHECK(closed.status == "resolved");
  CHECK(closed.resolution == text);
  CHECK(closed.winner_value == c.winner_value);  // what was recorded stays as it was
  CHECK(closed.loser_value == c.loser_value);

  // On each device, once it has the decision: the value, and its own conflict closed.
  for (Node* dev : {&a, &b}) {
    INFO("device " << dev->id);
    const ApplyOutcome out = net.pull(*dev);
    CHECK(out.applied == 1);
    CHECK(out.conflicts == 0);
    CHECK(dev->phone(p) == "0912 000 001");
    CHECK(dev->store->conflicts().empty());
    const auto all = dev->store->conflicts(false);
    REQUIRE(all.size() == 1);
    CHECK(all[0].status == "resolved");
    CHECK(all[0].resolution == text);
  }
}

TEST_CASE("three devices' concurrent edits: a resolution closes every conflict over the versions the reviewer saw, "
          "including pairs a device recorded that the centre never did",
          "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  Node& c3 = net.add_device("tablet-3");
  const std::string p = net.register_patient(a, "Trần Văn Minh");

  net.advance(kMinuteMs);
  const Change ea = edit_phone(a, p, "0911 111 111");
  net.advance(kMinuteMs);
  const Change eb = edit_phone(b, p, "0922 222 222");
  net.advance(kMinuteMs);
  const Change ec = edit_phone(c3, p, "0933 333 333");
  REQUIRE(ea.hlc < eb.hlc);
  REQUIRE(eb.hlc < ec.hlc);

  // The centre hears a, then c, then b: c beats a, then c beats b.
  net.push(a);
  net.centre.clock.advance(kMinuteMs);
  CHECK(net.push(c3).conflicts == 1);
  net.centre.clock.advance(kMinuteMs);
  CHECK(net.push(b).conflicts == 1);
  auto centre_open = net.centre.store->conflicts();
  REQUIRE(centre_open.size() == 2);
  CHECK(centre_open[0].winner_origin == c3.id);
  CHECK(centre_open[0].loser_origin == a.id);
  CHECK(centre_open[1].winner_origin == c3.id);
  CHECK(centre_open[1].loser_origin == b.id);

  // b hears a, then c: at b, b's edit WON over a's (the centre has b as a loser),
  // and then lost to c's.
  CHECK(net.pull(b).conflicts == 2);
  auto b_open = b.store->conflicts();
  REQUIRE(b_open.size() == 2);
  std::set<std::pair<std::string, std::string>> b_pairs;
  for (const auto& x : b_open) b_pairs.insert({x.winner_origin, x.loser_origin});
  CHECK(b_pairs == std::set<std::pair<std::string, std::string>>{{b.id, a.id}, {c3.id, b.id}});
  CHECK(net.pull(a).conflicts == 2);
  CHECK(net.pull(c3).conflicts == 2);
  for (Node* d : {&a, &b, &c3, &net.centre}) CHECK(d->phone(p) == "0933 333 333");

  // The reviewer names one of the centre's two conflicts and sets another value.
  net.advance(kHourMs);
  const std::string at = net.centre.store->local_now();
  const ConflictDecision d = must(net.centre.store->resolve_conflict(centre_open[0].id, " 0944 444 444 "));
  CHECK(d.keep == "value");
  CHECK(d.value == "\"0944 444 444\"");
  std::vector<std::string> closed = d.closed;
  std::sort(closed.begin(), closed.end());
  std::vector<std::string> expected_closed{centre_open[0].id, centre_open[1].id};
  std::sort(expected_closed.begin(), expected_closed.end());
  CHECK(closed == expected_closed);
  const json entry = json::parse(d.change.payload).at("resolves").at("phone");
  std::set<json> versions(entry.at("versions").begin(), entry.at("versions").end());
  CHECK(versions == std::set<json>{version(ea), version(eb), version(ec), base_of(ea, "phone")});
  CHECK(entry.at("keep") == "value");
  CHECK_FALSE(entry.contains("note"));
  const std::string text = resolution_text("set another value", at);
  CHECK(net.centre.store->conflicts().empty());

  for (Node* dev : {&a, &b, &c3}) {
    INFO("device " << dev->id);
    CHECK(net.pull(*dev).conflicts == 0);
    CHECK(dev->phone(p) == "0944 444 444");
    CHECK(dev->store->conflicts().empty());
    const auto all = dev->store->conflicts(false);
    CHECK(all.size() == 2);
    for (const auto& x : all) {
      CHECK(x.status == "resolved");
      CHECK(x.resolution == text);
    }
  }
  CHECK(net.centre.phone(p) == "0944 444 444");
}

TEST_CASE("keeping the winning value writes the stored value again and closes the conflict, a decided, unknown or "
          "station-side resolve is refused",
          "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  const auto [p, ea, eb, c] = phone_conflict(net, a, b, "Lê Thị Hồng");
  net.pull(a);
  net.pull(b);

  // Only the centre decides: a station's device holding the same conflict may not.
  const ConflictRow on_a = only_open(a);
  const int64_t a_count = a.store->change_count();
  Error e = must_fail(a.store->resolve_conflict(on_a.id, "winner"));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK(e.context == "conflict resolve");
  CHECK(e.field == "file");
  CHECK(e.rule == "is a station's, not the centre's: only the centre resolves conflicts");
  CHECK(e.value == "TYT-ANHOA");
  CHECK(only_open(a).status == "open");
  CHECK(a.store->change_count() == a_count);

  // An id that names no conflict.
  e = must_fail(net.centre.store->resolve_conflict("abcdef12", "winner"));
  CHECK(e.code == ErrorCode::kNotFound);
  CHECK(e.field == "conflict");
  CHECK(e.value == "abcdef12");
  CHECK(e.message() == "conflict resolve: conflict must name an existing record, got \"abcdef12\"");

  net.advance(kHourMs);
  const std::string at = net.centre.store->local_now();
  const int64_t seq_before = net.centre.store->last_seq();
  const ConflictDecision d = must(net.centre.store->resolve_conflict(c.id, "winner"));
  CHECK(d.keep == "winner");
  CHECK(d.value == "\"0987 000 002\"");
  CHECK(d.closed == std::vector<std::string>{c.id});
  CHECK(d.change.seq == seq_before + 1);
  CHECK(json::parse(d.change.payload) ==
        json{{"op", "upsert"},
             {"fields", {{"phone", "0987 000 002"}}},
             {"base", {{"phone", version(eb)}}},
             {"resolves",
              {{"phone",
                {{"versions", json::array({version(eb), version(ea), base_of(ea, "phone")})},
                 {"keep", "winner"},
                 {"by", kCentreName},
                 {"at", at}}}}}});
  const std::string text = resolution_text("kept the winning value", at);
  CHECK(net.centre.phone(p) == "0987 000 002");
  CHECK(conflict_by_id(net.centre, c.id).status == "resolved");
  CHECK(conflict_by_id(net.centre, c.id).resolution == text);

  // A second decision on the same conflict is refused, and writes nothing.
  for (const char* keep : {"winner", "loser", "0900 000 000"}) {
    INFO(keep);
    e = must_fail(net.centre.store->resolve_conflict(c.id, keep));
    CHECK(e.code == ErrorCode::kConflict);
    CHECK(e.field == "conflict");
    CHECK(e.rule == "is already resolved (" + text + ")");
    CHECK(e.value == c.id);
  }
  CHECK(net.centre.store->last_seq() == seq_before + 1);
  CHECK(net.centre.phone(p) == "0987 000 002");

  for (Node* dev : {&a, &b}) {
    INFO("device " << dev->id);
    CHECK(net.pull(*dev).applied == 1);
    CHECK(dev->phone(p) == "0987 000 002");
    CHECK(dev->store->conflicts().empty());
    CHECK(dev->store->conflicts(false).at(0).resolution == text);
  }
}

TEST_CASE("a typed value is parsed by its field's type, a bad one is refused naming the field, rule and value",
          "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");

  SECTION("patient text fields: name, sex, birth, phone") {
    const std::string p = net.register_patient(a, "Nguyễn Thị Lan");
    net.advance(kMinuteMs);
    PatientUpdate ua;
    ua.name = "Nguyễn Thị Lan Anh";
    ua.sex = "other";
    ua.birth = "1951";
    ua.phone = "0912 000 001";
    must(a.store->update_patient(p, ua));
    net.advance(kMinuteMs);
    PatientUpdate ub;
    ub.name = "Nguyễn Thị Lân";
    ub.sex = "male";
    ub.birth = "1952";
    ub.phone = "0987 000 002";
    must(b.store->update_patient(p, ub));
    net.push(a);
    CHECK(net.push(b).conflicts == 4);
    const int64_t count = net.centre.store->change_count();

    struct Bad {
      std::string field, keep, rule;
    };
    const std::vector<Bad> bad = {
        {"name", "   ", "must not be empty"},
        {"sex", "unknown", "has an unknown value \"unknown\""},
        {"birth", "2099", "must not be in the future"},
        {"birth", "1870", "must not be before 1880"},
        {"birth", "1950-02-30", "must be YYYY or a real date YYYY-MM-DD"},
    };
    for (const auto& x : bad) {
      INFO(x.field << " = \"" << x.keep << "\"");
      const ConflictRow c = open_on(net.centre, x.field);
      Error e = must_fail(net.centre.store->resolve_conflict(c.id, x.keep));
      CHECK(e.code == ErrorCode::kInvalid);
      CHECK(e.context == "conflict resolve");
      CHECK(e.field == x.field);
      CHECK(e.rule == x.rule);
      CHECK(e.value == x.keep);
      CHECK(open_on(net.centre, x.field).status == "open");
    }
    CHECK(net.centre.store->change_count() == count);
    CHECK(net.centre.store->conflicts().size() == 4);

    const ConflictDecision phone = must(net.centre.store->resolve_conflict(open_on(net.centre, "phone").id, " 0900 123 456 "));
    CHECK(phone.keep == "value");
    CHECK(phone.value == "\"0900 123 456\"");
    const ConflictDecision sex = must(net.centre.store->resolve_conflict(open_on(net.centre, "sex").id, "female"));
    CHECK(sex.value == "\"female\"");
    const ConflictDecision birth = must(net.centre.store->resolve_conflict(open_on(net.centre, "birth").id, "1951-03-04"));
    CHECK(birth.value == "\"1951-03-04\"");
    const ConflictDecision name = must(net.centre.store->resolve_conflict(open_on(net.centre, "name").id, "Nguyễn Thị Hoa"));
    CHECK(name.value == "\"Nguyễn Thị Hoa\"");
    CHECK(net.centre.store->conflicts().empty());
    CHECK(net.centre.store->change_count() == count + 4);

    const Patient at_centre = must(net.centre.store->get_patient(p));
    CHECK(at_centre.phone == "0900 123 456");
    CHECK(at_centre.sex == "female");
    CHECK(at_centre.birth == "1951-03-04");
    CHECK(at_centre.name == "Nguyễn Thị Hoa");
    // A new name is searchable under its folded form at once.
    CHECK(testing::query_texts(net.centre.path(), "SELECT name_fold FROM patients WHERE id = '" + p + "'") ==
          std::vector<std::string>{fold_for_search("Nguyễn Thị Hoa")});

    for (Node* dev : {&a, &b}) {
      INFO("device " << dev->id);
      net.pull(*dev);
      const Patient got = must(dev->store->get_patient(p));
      CHECK(got.phone == "0900 123 456");
      CHECK(got.sex == "female");
      CHECK(got.birth == "1951-03-04");
      CHECK(got.name == "Nguyễn Thị Hoa");
      CHECK(dev->store->conflicts().empty());
      CHECK(dev->store->conflicts(false).size() == 4);
    }
  }

  SECTION("an item reserve level (a whole number)") {
    ItemInput item;
    item.code = "PARA500";
    item.name = "Paracetamol 500 mg";
    item.unit = "tablet";
    item.reserve = 200;
    must(a.store->add_item(item));
    net.push(a);
    net.pull(b);
    net.advance(kMinuteMs);
    must(a.store->set_reserve("PARA500", 150));
    net.advance(kMinuteMs);
    must(b.store->set_reserve("PARA500", 300));
    net.push(a);
    CHECK(net.push(b).conflicts == 1);
    const ConflictRow c = only_open(net.centre);
    CHECK(c.kind == "item_reserve");
    CHECK(c.field == "level");
    CHECK(c.winner_value == "300");
    CHECK(c.loser_value == "150");
    const int64_t count = net.centre.store->change_count();
    check_refused(net.centre, c.id, "level",
                  {{"abc", "must be a whole number"},
                   {"2.5", "must be a whole number"},
                   {"", "must be a whole number"},
                   {"99999999999999999999999", "must be a whole number"},
                   {"-3", "must be 0 or more"}});
    CHECK(net.centre.store->change_count() == count);
    CHECK(only_open(net.centre).id == c.id);

    const ConflictDecision d = must(net.centre.store->resolve_conflict(c.id, " 250 "));
    CHECK(d.value == "250");
    CHECK(json::parse(d.change.payload).at("fields") == json{{"level", 250}});
    const std::string sql = "SELECT level FROM item_reserves WHERE id = '" + c.record_id + "'";
    CHECK(testing::query_int(net.centre.path(), sql) == 250);
    for (Node* dev : {&a, &b}) {
      INFO("device " << dev->id);
      net.pull(*dev);
      CHECK(testing::query_int(dev->path(), sql) == 250);
      CHECK(dev->store->conflicts().empty());
      CHECK(dev->store->conflicts(false).size() == 1);
    }
  }

  SECTION("a waste batch's bags (a whole number) and weight_kg (a real number)") {
    const std::string p = net.register_patient(a, "Phạm Văn Nam");
    WasteBatchInput w;
    w.kind = "infectious";
    w.bags = 2;
    w.weight_kg = 1.5;
    w.patient_id = p;
    const std::string batch = must(a.store->add_waste_batch(w));
    const Change created = a.last_change();
    REQUIRE(created.kind == "waste_batch");
    REQUIRE(net.push(a).applied == 1);
    net.pull(b);

    // No command edits a batch: two devices running other software correct it
    // offline, each on the creation's version.
    const json base = {{"bags", version(created)}, {"weight_kg", version(created)}};
    const Change fa = hand_made(a.id, a.store->max_origin_seq(a.id) + 1, kStartMs + 5 * kMinuteMs, net.station.id,
                                "waste_batch", batch,
                                json{{"op", "upsert"}, {"fields", {{"bags", 3}, {"weight_kg", 2.5}}}, {"base", base}}.dump());
    const Change fb = hand_made(b.id, b.store->max_origin_seq(b.id) + 1, kStartMs + 6 * kMinuteMs, net.station.id,
                                "waste_batch", batch,
                                json{{"op", "upsert"}, {"fields", {{"bags", 4}, {"weight_kg", 3.5}}}, {"base", base}}.dump());
    CHECK(net.push_changes(a, {fa}).applied == 1);
    CHECK(net.push_changes(b, {fb}).conflicts == 2);
    const ConflictRow bags = open_on(net.centre, "bags");
    const ConflictRow weight = open_on(net.centre, "weight_kg");
    CHECK(bags.winner_value == "4");
    CHECK(bags.loser_value == "3");
    CHECK(weight.winner_value == "3.5");
    CHECK(weight.loser_value == "2.5");
    const int64_t count = net.centre.store->change_count();

    check_refused(net.centre, weight.id, "weight_kg",
                  {{"heavy", "must be a number"},
                   {"nan", "must be a number"},
                   {"2,5", "must be a number"},
                   {"0", "must be greater than 0 and at most 10000"},
                   {"-1.5", "must be greater than 0 and at most 10000"},
                   {"20000", "must be greater than 0 and at most 10000"}});
    check_refused(net.centre, bags.id, "bags",
                  {{"2.0", "must be a whole number"}, {"two", "must be a whole number"}, {"-1", "must be 0 or more"}});
    CHECK(net.centre.store->change_count() == count);
    CHECK(net.centre.store->conflicts().size() == 2);

    const ConflictDecision dw = must(net.centre.store->resolve_conflict(weight.id, "4"));
    CHECK(dw.value == "4.0");
    const ConflictDecision db = must(net.centre.store->resolve_conflict(bags.id, "loser"));
    CHECK(db.value == "3");
    CHECK(net.centre.store->conflicts().empty());
    const std::string where = " FROM waste_batches WHERE id = '" + batch + "'";
    CHECK(testing::query_int(net.centre.path(), "SELECT bags" + where) == 3);
    CHECK(testing::query_texts(net.centre.path(), "SELECT weight_kg" + where) == std::vector<std::string>{"4.0"});
    CHECK(testing::query_texts(net.centre.path(), "SELECT typeof(weight_kg)" + where) ==
          std::vector<std::string>{"real"});

    // A device of the station takes the decisions (b's own correction was
    // made by hand, so its file never held it: it holds a's, and then both decisions).
    net.pull(b);
    CHECK(testing::query_int(b.path(), "SELECT bags" + where) == 3);
    CHECK(testing::query_texts(b.path(), "SELECT weight_kg" + where) == std::vector<std::string>{"4.0"});
    CHECK(b.store->conflicts().empty());
  }
}

TEST_CASE("a resolution that reaches a device before an edit it settles leaves no open conflict there", "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  const auto [p, ea, eb, c] = phone_conflict(net, a, b, "Đỗ Thị Mai");

  net.advance(kHourMs);
  const std::string at = net.centre.store->local_now();
  const ConflictDecision d = must(net.centre.store->resolve_conflict(c.id, "winner", "số của con gái"));
  const std::string text = resolution_text("kept the winning value", at, "số của con gái");
  const Change r = net.at_centre(d.change);
  const Change a_at_centre = net.at_centre(ea);
  const Change b_at_centre = net.at_centre(eb);

  SECTION("the winning device gets the resolution, then the losing edit (settled by a change applied before)") {
    CHECK(net.deliver(b, {r}).conflicts == 0);
    CHECK(b.store->conflicts(false).empty());
    const ApplyOutcome late = net.deliver(b, {a_at_centre});
    CHECK(late.applied == 1);
    CHECK(late.conflicts == 0);
    CHECK(b.store->conflicts().empty());
    const auto all = b.store->conflicts(false);
    REQUIRE(all.size() == 1);
    CHECK(all[0].status == "resolved");
    CHECK(all[0].resolution == text);
    CHECK(all[0].winner_origin == net.centre.id);
    CHECK(all[0].winner_hlc == r.hlc);
    CHECK(all[0].loser_origin == a.id);
    CHECK(all[0].loser_hlc == ea.hlc);
    CHECK(b.phone(p) == "0987 000 002");
  }

  SECTION("the losing device gets the resolution, then the winning edit") {
    CHECK(net.deliver(a, {r}).conflicts == 0);
    CHECK(a.store->conflicts().empty());
    const ApplyOutcome late = net.deliver(a, {b_at_centre});
    CHECK(late.applied == 1);
    CHECK(late.conflicts == 0);
    CHECK(a.store->conflicts().empty());
    const auto all = a.store->conflicts(false);
    REQUIRE(all.size() == 1);  // its own edit against b's, recorded already settled
    CHECK(all[0].status == "resolved");
    CHECK(all[0].resolution == text);
    CHECK(a.phone(p) == "0987 000 002");
  }

  SECTION("the resolution and the losing edit it settles in one batch") {
    CHECK(net.deliver(b, {r, a_at_centre}).conflicts == 0);
    CHECK(b.store->conflicts().empty());
    const auto all = b.store->conflicts(false);
    REQUIRE(all.size() == 1);
    CHECK(all[0].status == "resolved");
    CHECK(b.phone(p) == "0987 000 002");
  }

  // Whatever came first, after a full pull no conflict is open on either device.
  for (Node* dev : {&a, &b}) {
    net.pull(*dev);
    CHECK(dev->store->conflicts().empty());
    CHECK(dev->phone(p) == "0987 000 002");
  }
}

TEST_CASE("an offline edit made after the resolution without seeing it is a new conflict that stays open everywhere",
          "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  const auto [p, ea, eb, c] = phone_conflict(net, a, b, "Hoàng Văn Tú");
  net.pull(a);
  net.pull(b);

  net.advance(kHourMs);
  const std::string at = net.centre.store->local_now();
  const ConflictDecision d = must(net.centre.store->resolve_conflict(c.id, "loser"));
  const std::string text = resolution_text("kept the losing value", at);

  // a has not synced since: it edits the phone again on the version it has (b's).
  a.clock.advance(kHourMs);
  const Change a3 = edit_phone(a, p, "0977 777 777");
  CHECK(json::parse(a3.payload).at("base") == json{{"phone", version(eb)}});
  REQUIRE(a3.hlc > d.change.hlc);

  CHECK(net.push(a).conflicts == 1);
  CHECK(net.pull(a).conflicts == 1);
  CHECK(net.pull(b).conflicts == 1);
  for (Node* n : {&net.centre, &a, &b}) {
    INFO("node " << n->id);
    // The later edit wins the merge; the conflict with the decision stays open.
    CHECK(n->phone(p) == "0977 777 777");
    const ConflictRow open = only_open(*n);
    CHECK(open.field == "phone");
    CHECK(open.winner_origin == a.id);
    CHECK(open.winner_hlc == a3.hlc);
    CHECK(open.winner_value == "\"0977 777 777\"");
    CHECK(open.loser_origin == net.centre.id);
    CHECK(open.loser_hlc == d.change.hlc);
    CHECK(open.loser_value == "\"0912 000 001\"");
    CHECK(open.resolution.empty());
    // The first conflict stays settled.
    const auto all = n->store->conflicts(false);
    CHECK(all.size() == 2);
    CHECK(std::count_if(all.begin(), all.end(),
                        [&](const ConflictRow& x) { return x.status == "resolved" && x.resolution == text; }) == 1);
  }

  // The reviewer can settle the new one in turn.
  const ConflictDecision again = must(net.centre.store->resolve_conflict(only_open(net.centre).id, "winner"));
  CHECK(again.value == "\"0977 777 777\"");
  for (Node* dev : {&a, &b}) {
    net.pull(*dev);
    CHECK(dev->store->conflicts().empty());
    CHECK(dev->phone(p) == "0977 777 777");
  }
}

TEST_CASE("each conflict decision is atomic: one that fails before its change is appended stores nothing",
          "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  Node& c3 = net.add_device("tablet-3");
  const std::string p = net.register_patient(a, "Vũ Thị Thu");
  net.advance(kMinuteMs);
  edit_phone(a, p, "0911 111 111");
  net.advance(kMinuteMs);
  edit_phone(b, p, "0922 222 222");
  net.advance(kMinuteMs);
  edit_phone(c3, p, "0933 333 333");
  net.push(a);
  net.push(b);
  net.push(c3);
  const auto open = net.centre.store->conflicts();
  REQUIRE(open.size() == 2);
  const int64_t count = net.centre.store->change_count();
  const int64_t seq = net.centre.store->last_seq();

  net.centre.fail_kind = "patient";
  for (const char* keep : {"winner", "loser", "0900 000 000"}) {
    INFO(keep);
    Error e = must_fail(net.centre.store->resolve_conflict(open[0].id, keep));
    CHECK(e.code == ErrorCode::kIo);
    CHECK(e.context == "conflict resolve");
    CHECK_THAT(e.message(), Contains("injected failure before appending a patient change"));
    // Nothing of it: the field, both conflicts, the log.
    CHECK(net.centre.phone(p) == "0933 333 333");
    const auto still = net.centre.store->conflicts(false);
    REQUIRE(still.size() == 2);
    for (const auto& x : still) {
      CHECK(x.status == "open");
      CHECK(x.resolution.empty());
    }
    CHECK(net.centre.store->change_count() == count);
    CHECK(net.centre.store->last_seq() == seq);
  }
  // The patient's versions were not touched either: the decision made afterwards
  // is based on the version that stood before.
  net.centre.fail_kind.clear();
  const ConflictDecision d = must(net.centre.store->resolve_conflict(open[0].id, "0900 000 000"));
  CHECK(d.change.seq == seq + 1);
  CHECK(json::parse(d.change.payload).at("base").at("phone").at(1) == c3.id);
  CHECK(net.centre.phone(p) == "0900 000 000");
  CHECK(net.centre.store->conflicts().empty());
  net.pull(b);
  CHECK(b.phone(p) == "0900 000 000");
  CHECK(b.store->conflicts().empty());
}

// --- quarantine --------------------------------------------------------------------------

TEST_CASE("a change held for a clock far ahead is released as the centre's change at the centre's time, passed on "
          "to the devices, and decided once",
          "[review]") {
  District net;
  Node& a = net.add_device("tablet-1");
  Node& b = net.add_device("laptop-2");
  const std::string p = net.register_patient(a, "Bùi Thị Nga");

  // The tablet's clock jumps 30 days ahead.
  a.clock.advance(30 * kDayMs);
  const Change q = edit_phone(a, p, "0912 555 666");
  const std::string reason =
      "hlc is 30 days ahead of this node's clock: the writing device's clock is wrong; held for review";
  const ApplyOutcome out = net.push(a);
  CHECK(out.applied == 0);
  CHECK(out.quarantined == 1);
  REQUIRE(out.results.size() == 1);
  CHECK(out.results[0].reason == reason);

  auto held = net.centre.store->quarantined();
  REQUIRE(held.size() == 1);
  const QuarantinedChange h = held[0];
  CHECK(h.from_peer == a.id);
  CHECK(h.origin == a.id);
  CHECK(h.origin_seq == q.origin_seq);
  CHECK(h.hlc == q.hlc);
  CHECK(h.station_id == net.station.id);
  CHECK(h.kind == "patient");
  CHECK(h.record_id == p);
  CHECK(h.payload == q.payload);
  CHECK(h.reason == reason);
  CHECK(h.status == "held");
  CHECK(h.received_at == kStartLocal);
  CHECK(h.decided_at.empty());
  CHECK(h.decision.empty());
  CHECK(net.centre.phone(p).empty());
  CHECK(net.pull(b).applied == 0);

  net.advance(kHourMs);
  const std::string decided_at = net.centre.store->local_now();
  const int64_t seq_before = net.centre.store->last_seq();
  const QuarantineDecision d = must(net.centre.store->release_quarantined(h.id, " đồng hồ máy tính bảng sai "));
  CHECK(d.entry.id == h.id);
  CHECK(d.entry.status == "released");
  CHECK(d.entry.decided_at == decided_at);
  CHECK(d.entry.decision == std::string("released by ") + kCentreName +
                                "; applied as this node's change at its own time (the writing device's clock was 29 "
                                "days ahead): đồng hồ máy tính bảng sai");
  CHECK(d.entry.reason == reason);
  CHECK(d.seq == seq_before + 1);
  CHECK(d.conflicts == 0);

  // In the centre's log as the centre's own change, at the centre's time: taken
  // with the tablet's hlc it would have moved the centre's clock 30 days on,
  // and every change the centre makes after it with it.
  CHECK(net.centre.store->last_seq() == seq_before + 1);
  const auto logged = net.centre.store->changes_after(seq_before, 10);
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].seq == d.seq);
  CHECK(logged[0].origin == net.centre.id);
  CHECK(Hlc::physical_ms(logged[0].hlc) == net.centre.clock.now_ms());
  CHECK(logged[0].hlc < q.hlc);
  CHECK(logged[0].kind == "patient");
  CHECK(logged[0].record_id == p);
  CHECK(logged[0].station_id == net.station.id);
  CHECK(logged[0].payload == q.payload);
  CHECK(logged[0].from_peer.empty());
  CHECK(net.centre.phone(p) == "0912 555 666");
  // The centre's clock did not move with the tablet's: its next change is stamped now.
  net.advance(kMinuteMs);
  ItemInput item;
  item.code = "PARA500";
  item.name = "Paracetamol 500mg";
  item.unit = "viên";
  must(net.centre.store->add_item(item));
  CHECK(Hlc::physical_ms(net.centre.store->changes_after(0, kBigPage).back().hlc) == net.centre.clock.now_ms());

  CHECK(net.centre.store->quarantined().empty());
  const auto all = net.centre.store->quarantined(false);
  REQUIRE(all.size() == 1);
  check_same_entry(all[0], d.entry);

  // The station's devices get it; the tablet, which has the same value under
  // its own later version, keeps it without a conflict.
  const ApplyOutcome pulled = net.pull(b);
  CHECK(pulled.applied == 2);  // the edit, and the catalogue item
  CHECK(b.phone(p) == "0912 555 666");
  net.pull(a);
  CHECK(a.phone(p) == "0912 555 666");
  CHECK(a.store->conflicts().empty());
  CHECK(b.store->conflicts().empty());

  // Decided once.
  const std::string already = "was already decided: released at " + decided_at + " (" + d.entry.decision + ")";
  Error e = must_fail(net.centre.store->release_quarantined(h.id));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK(e.context == "quarantine release");
  CHECK(e.field == "quarantine entry");
  CHECK(e.rule == already);
  CHECK(e.value == std::to_string(h.id));
  e = must_fail(net.centre.store->drop_quarantined(h.id, "nhầm"));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK(e.context == "quarantine drop");
  CHECK(e.rule == already);
  CHECK(net.centre.store->last_seq() == seq_before + 2);  // the release and the item, nothing since
  check_same_entry(net.centre.store->quarantined(false).at(0), d.entry);

  // No such entry.
  e = must_fail(net.centre.store->release_quarantined(h.id + 100));
  CHECK(e.code == ErrorCode::kNotFound);
  CHECK(e.field == "quarantine entry");
  CHECK(e.value == std::to_string(h.id + 100));
  e = must_fail(net.centre.store->drop_quarantined(h.id + 100, "nhầm"));
  CHECK(e.code == ErrorCode::kNotFound);
}

TEST_CASE("a change outside the sender's scope: dropping needs a reason, marks it dropped and never applies it, "
          "releasing one applies it with the centre's authority",
          "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  const StationInfo other = must(net.centre.store->add_station("TYT-XUANNON", "Trạm Y tế xã Xuân Nộn",
                                                               "Huyện Đông Anh", "Hà Nội"));
  const int64_t own_seq = a.store->max_origin_seq(a.id);
  auto registration = [&](const std::string& id, const std::string& name, int64_t origin_seq) {
    json fields = {{"name", name},       {"sex", "female"},  {"birth", "1960"},     {"village", "Thôn Bắc"},
                   {"phone", ""},        {"national_id", ""}, {"status", "active"}, {"household_id", nullptr},
                   {"created_at", kStartLocal}};
    return hand_made(a.id, origin_seq, kStartMs, other.id, "patient", id, json{{"op", "upsert"}, {"fields", fields}}.dump());
  };
  const std::string p1 = "0b0b0b0b-0000-4000-8000-000000000001";
  const std::string p2 = "0b0b0b0b-0000-4000-8000-000000000002";
  const ApplyOutcome out =
      net.push_changes(a, {registration(p1, "Ngô Thị Hạnh", own_seq + 1), registration(p2, "Ngô Văn Hải", own_seq + 2)});
  CHECK(out.quarantined == 2);
  const std::string reason = "out of scope: this device may not write records of station " + other.id;
  const auto held = net.centre.store->quarantined();
  REQUIRE(held.size() == 2);
  for (const auto& h : held) {
    CHECK(h.reason == reason);
    CHECK(h.station_id == other.id);
    CHECK(h.status == "held");
  }
  const int64_t seq = net.centre.store->last_seq();

  // A drop needs a reason.
  for (const char* empty : {"", "   "}) {
    Error e = must_fail(net.centre.store->drop_quarantined(held[0].id, empty));
    CHECK(e.code == ErrorCode::kInvalid);
    CHECK(e.context == "quarantine drop");
    CHECK(e.field == "reason");
    CHECK(e.rule == "must not be empty");
  }
  check_same_entry(net.centre.store->quarantined().at(0), held[0]);

  net.advance(kHourMs);
  const std::string at = net.centre.store->local_now();
  const QuarantineDecision d =
      must(net.centre.store->drop_quarantined(held[0].id, "  nhập nhầm trạm, đã nhập lại ở TYT-XUANNON "));
  CHECK(d.entry.id == held[0].id);
  CHECK(d.entry.status == "dropped");
  CHECK(d.entry.decided_at == at);
  CHECK(d.entry.decision == std::string("dropped by ") + kCentreName + ": nhập nhầm trạm, đã nhập lại ở TYT-XUANNON");
  CHECK(d.entry.reason == reason);
  CHECK(d.seq == 0);
  CHECK(d.conflicts == 0);
  CHECK(net.centre.store->last_seq() == seq);
  CHECK(must_fail(net.centre.store->get_patient(p1)).code == ErrorCode::kNotFound);
  const auto after = net.centre.store->quarantined(false);
  REQUIRE(after.size() == 2);
  check_same_entry(after[0], d.entry);
  CHECK(after[1].status == "held");

  // Decided once: neither a second drop nor a release.
  const std::string already = "was already decided: dropped at " + at + " (" + d.entry.decision + ")";
  Error e = must_fail(net.centre.store->drop_quarantined(held[0].id, "again"));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK(e.rule == already);
  e = must_fail(net.centre.store->release_quarantined(held[0].id));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK(e.rule == already);
  CHECK(net.centre.store->last_seq() == seq);
  CHECK(must_fail(net.centre.store->get_patient(p1)).code == ErrorCode::kNotFound);

  // The other one is released: the centre may write any station's records.
  const QuarantineDecision r = must(net.centre.store->release_quarantined(held[1].id));
  CHECK(r.entry.status == "released");
  CHECK(r.entry.decision == std::string("released by ") + kCentreName + "; applied");
  CHECK(r.seq == seq + 1);
  const Patient p2_at_centre = must(net.centre.store->get_patient(p2));
  CHECK(p2_at_centre.station_id == other.id);
  CHECK(p2_at_centre.name == "Ngô Văn Hải");
  // It is the other station's record: TYT-ANHOA's devices do not get it.
  CHECK(net.pull(b).applied == 0);
  CHECK(must_fail(b.store->get_patient(p2)).code == ErrorCode::kNotFound);
}

TEST_CASE("a held change that still cannot be applied is refused on release with the reason, and nothing changes",
          "[review]") {
  District net;
  Node& a = net.add_device("tablet-1");
  const std::string p = net.register_patient(a, "Đinh Văn Lực");

  // With its clock 30 days ahead the tablet registers a patient and edits it:
  // both held. Then, under its name, two changes no record rule accepts.
  a.clock.advance(30 * kDayMs);
  PatientInput in;
  in.name = "Đinh Thị Mơ";
  in.sex = "female";
  in.birth = "1990";
  in.village = "Thôn Đông";
  const std::string p2 = must(a.store->add_patient(in));
  const Change edit = edit_phone(a, p2, "0966 000 111");
  CHECK(net.push(a).quarantined == 2);
  const int64_t ahead_ms = kStartMs + 30 * kDayMs + kMinuteMs;
  const Change not_json =
      hand_made(a.id, edit.origin_seq + 1, ahead_ms, net.station.id, "patient", p, "{\"op\": \"upsert\", \"fields\":");
  const Change wrong_type = hand_made(a.id, edit.origin_seq + 2, ahead_ms, net.station.id, "patient", p,
                                      json{{"op", "upsert"}, {"fields", {{"phone", 5}}}}.dump());
  CHECK(net.push_changes(a, {not_json, wrong_type}).quarantined == 2);

  const auto held = net.centre.store->quarantined();
  REQUIRE(held.size() == 4);
  for (const auto& h : held) CHECK_THAT(h.reason, Contains("days ahead of this node's clock"));
  const QuarantinedChange& creation = held[0];
  const QuarantinedChange& phone_edit = held[1];
  CHECK(creation.record_id == p2);
  CHECK(phone_edit.origin_seq == edit.origin_seq);
  const int64_t seq = net.centre.store->last_seq();
  const int64_t count = net.centre.store->change_count();

  const std::vector<std::pair<const QuarantinedChange*, std::string>> refused = {
      // A writer's changes of one record are released in the order it made them.
      {&phone_edit, "has an earlier change of the same record from the same device still held (entry " +
                        std::to_string(creation.id) + "): release or drop that one first"},
      {&held[2], "still cannot be applied: payload is not valid JSON"},
      {&held[3], "has an earlier change of the same record from the same device still held (entry " +
                     std::to_string(held[2].id) + "): release or drop that one first"},
  };
  for (const auto& [entry, rule] : refused) {
    INFO("entry " << entry->id);
    Error e = must_fail(net.centre.store->release_quarantined(entry->id, "thử lại"));
    CHECK(e.code == ErrorCode::kRefused);
    CHECK(e.context == "quarantine release");
    CHECK(e.field == "quarantine entry");
    CHECK(e.rule == rule);
    CHECK(e.value == std::to_string(entry->id));
    // Nothing changed: every entry still held as it was, the log, the records.
    const auto now_held = net.centre.store->quarantined();
    REQUIRE(now_held.size() == 4);
    for (size_t i = 0; i < 4; ++i) check_same_entry(now_held[i], held[i]);
    CHECK(net.centre.store->last_seq() == seq);
    CHECK(net.centre.store->change_count() == count);
    CHECK(must_fail(net.centre.store->get_patient(p2)).code == ErrorCode::kNotFound);
    CHECK(net.centre.phone(p).empty());
  }

  // Released in order, the registration first, both apply.
  const QuarantineDecision first = must(net.centre.store->release_quarantined(creation.id));
  CHECK(first.seq == seq + 1);
  const QuarantineDecision second = must(net.centre.store->release_quarantined(phone_edit.id));
  CHECK(second.seq == seq + 2);
  CHECK(net.centre.phone(p2) == "0966 000 111");
  CHECK(must(net.centre.store->get_patient(p2)).name == "Đinh Thị Mơ");

  // The bad ones can only be dropped; once the first is, the second is judged on its own.
  must(net.centre.store->drop_quarantined(held[2].id, "dữ liệu hỏng"));
  Error still = must_fail(net.centre.store->release_quarantined(held[3].id));
  CHECK(still.rule == "still cannot be applied: phone must be a string");
  must(net.centre.store->drop_quarantined(held[3].id, "dữ liệu hỏng"));
  CHECK(net.centre.store->quarantined().empty());
  CHECK(net.centre.store->last_seq() == seq + 2);
  CHECK(net.centre.phone(p).empty());
}

TEST_CASE("releasing a held edit that is concurrent with one already applied reveals the conflict", "[review]") {
  District net;
  Node& a = net.add_device("tablet-1");
  Node& b = net.add_device("laptop-2");
  const std::string p = net.register_patient(a, "Cao Thị Yến");
  a.clock.advance(30 * kDayMs);
  const Change ea = edit_phone(a, p, "0912 555 666");
  CHECK(net.push(a).quarantined == 1);
  net.advance(kMinuteMs);
  const Change eb = edit_phone(b, p, "0987 000 002");
  CHECK(net.push(b).applied == 1);
  CHECK(net.centre.store->conflicts().empty());

  const QuarantineDecision d = must(net.centre.store->release_quarantined(net.centre.store->quarantined().at(0).id));
  CHECK(d.conflicts == 1);
  const ConflictRow c = only_open(net.centre);
  CHECK(c.field == "phone");
  // Released at the centre's time (the tablet's clock was 30 days ahead), as the centre's change.
  CHECK(c.winner_origin == net.centre.id);
  CHECK(c.winner_hlc > eb.hlc);
  CHECK(c.winner_hlc < ea.hlc);
  CHECK(c.loser_origin == b.id);
  CHECK(c.loser_hlc == eb.hlc);
  CHECK(net.centre.phone(p) == "0912 555 666");

  // b gets the released edit and records the same conflict; the reviewer settles it.
  CHECK(net.pull(b).conflicts == 1);
  must(net.centre.store->resolve_conflict(c.id, "loser"));
  net.pull(b);
  CHECK(b.phone(p) == "0987 000 002");
  CHECK(b.store->conflicts().empty());
  CHECK(net.centre.phone(p) == "0987 000 002");
}

TEST_CASE("a conflict on a field this version does not know: winner or loser may be kept, no typed value", "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  const std::string p = net.register_patient(a, "Lý Văn Khoa");
  const Change created = net.at_centre(Change{0, a.id, 1, 0, "", "", "", "", ""});
  REQUIRE(created.record_id == p);
  // Newer software on both devices writes a field this version keeps aside in `extra`.
  const json base = {{"blood_type", version(created)}};
  const Change fa = hand_made(a.id, a.store->max_origin_seq(a.id) + 1, kStartMs + kMinuteMs, net.station.id, "patient",
                              p, json{{"op", "upsert"}, {"fields", {{"blood_type", "A+"}}}, {"base", base}}.dump());
  const Change fb = hand_made(b.id, b.store->max_origin_seq(b.id) + 1, kStartMs + 2 * kMinuteMs, net.station.id,
                              "patient", p, json{{"op", "upsert"}, {"fields", {{"blood_type", "B+"}}}, {"base", base}}.dump());
  net.push_changes(a, {fa});
  CHECK(net.push_changes(b, {fb}).conflicts == 1);
  const ConflictRow c = only_open(net.centre);
  CHECK(c.field == "blood_type");
  CHECK(c.winner_value == "\"B+\"");
  CHECK(c.loser_value == "\"A+\"");

  Error e = must_fail(net.centre.store->resolve_conflict(c.id, "O+"));
  CHECK(e.code == ErrorCode::kInvalid);
  CHECK(e.field == "keep");
  CHECK(e.rule == "must be winner or loser: field blood_type is not known to this version");
  CHECK(e.value == "O+");
  CHECK(only_open(net.centre).status == "open");

  const ConflictDecision d = must(net.centre.store->resolve_conflict(c.id, "loser"));
  CHECK(d.value == "\"A+\"");
  const json payload = json::parse(d.change.payload);
  CHECK(payload.at("fields") == json{{"blood_type", "A+"}});
  CHECK(payload.at("base") == json{{"blood_type", version(fb)}});
  const auto extra = testing::query_texts(net.centre.path(), "SELECT extra FROM patients WHERE id = '" + p + "'");
  REQUIRE(extra.size() == 1);
  CHECK(json::parse(extra[0]).at("blood_type") == "A+");
  CHECK(net.centre.store->conflicts().empty());
}

// --- cases a first version got wrong (found by these tests, fixed in review.cpp) ----------

// The devices saw a's edit against b's FIRST edit; the centre saw it against
// b's second (b2, made on b). The resolution lists the versions the centre saw
// (b2 and a) and what they replaced in its log (b, the registration), so the
// device's conflict (b, a) closes too.
TEST_CASE("a device's conflict with an earlier edit of a chain the reviewer saw the end of is closed too",
          "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  const std::string p = net.register_patient(a, "Tạ Thị Xuân");
  net.advance(kMinuteMs);
  const Change ea = edit_phone(a, p, "0911 111 111");
  net.advance(kMinuteMs);
  const Change eb = edit_phone(b, p, "0922 222 222");
  net.advance(kMinuteMs);
  const Change eb2 = edit_phone(b, p, "0922 222 299");  // b corrects its own number
  CHECK(json::parse(eb2.payload).at("base") == json{{"phone", version(eb)}});

  net.push(b);
  CHECK(net.push(a).conflicts == 1);
  const ConflictRow c = only_open(net.centre);
  CHECK(c.winner_hlc == eb2.hlc);
  CHECK(c.loser_hlc == ea.hlc);
  CHECK(net.pull(a).conflicts == 1);
  const ConflictRow on_a = only_open(a);
  CHECK(on_a.winner_hlc == eb.hlc);  // a met b's first edit, then took b2 as its sequel
  CHECK(on_a.loser_hlc == ea.hlc);
  CHECK(net.pull(b).conflicts == 1);

  net.advance(kHourMs);
  must(net.centre.store->resolve_conflict(c.id, "loser"));
  CHECK(net.centre.store->conflicts().empty());
  for (Node* dev : {&a, &b}) {
    INFO("device " << (dev == &a ? "a" : "b"));
    net.pull(*dev);
    CHECK(dev->phone(p) == "0911 111 111");
    CHECK(dev->store->conflicts().empty());
  }
}

// A value the reviewer types is held to the rules the record's own commands
// keep (review.cpp parse_typed): the rules of update_patient, add_waste_batch
// and patient add, which parse_typed once missed.
TEST_CASE("a typed value for a reference field must name an existing record, and is refused, not thrown",
          "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  HouseholdInput h;
  h.village = "Thôn Đông";
  h.head_name = "Nguyễn Văn Hộ";
  const std::string h1 = must(a.store->add_household(h));
  h.head_name = "Trần Văn Gia";
  const std::string h2 = must(a.store->add_household(h));
  const std::string p = net.register_patient(a, "Nguyễn Thị Lan");
  net.advance(kMinuteMs);
  PatientUpdate ua;
  ua.household_id = h1;
  must(a.store->update_patient(p, ua));
  net.advance(kMinuteMs);
  PatientUpdate ub;
  ub.household_id = h2;
  must(b.store->update_patient(p, ub));
  net.push(a);
  CHECK(net.push(b).conflicts == 1);
  const ConflictRow c = only_open(net.centre);
  REQUIRE(c.field == "household_id");
  const int64_t count = net.centre.store->change_count();

  const std::string unknown = "0000dead-0000-4000-8000-000000000000";
  bool threw = false;
  std::string what;
  std::optional<Error> err;
  try {
    auto r = net.centre.store->resolve_conflict(c.id, unknown);
    if (!r) err = r.error();
  } catch (const std::exception& ex) {
    threw = true;
    what = ex.what();
  }
  INFO("exception: " << what);
  CHECK_FALSE(threw);
  CHECK(err.has_value());
  if (err) {
    CHECK((err->code == ErrorCode::kNotFound || err->code == ErrorCode::kInvalid));
    CHECK(err->field == "household_id");
    CHECK(err->value == unknown);
  }
  // Either way nothing of it is stored, and the file is still usable.
  CHECK(only_open(net.centre).status == "open");
  CHECK(net.centre.store->change_count() == count);
  CHECK(must(net.centre.store->get_patient(p)).household_id == h2);

  // An existing household is taken.
  const ConflictDecision d = must(net.centre.store->resolve_conflict(c.id, h1));
  CHECK(d.value == json(h1).dump());
  CHECK(must(net.centre.store->get_patient(p)).household_id == h1);
}

TEST_CASE("a typed phone is held to the patient's 40-byte limit", "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  const auto [p, ea, eb, c] = phone_conflict(net, a, b, "Nguyễn Thị Lan");
  const std::string long_phone = "0912 000 001 / 0987 000 002 / 0243 111 222";  // 42 bytes
  REQUIRE(long_phone.size() > 40);
  // What a station's own command says to the same value:
  PatientUpdate up;
  up.phone = long_phone;
  const Error station = must_fail(a.store->update_patient(p, up));
  CHECK(station.field == "phone");
  CHECK(station.rule == "must be at most 40 bytes");

  auto r = net.centre.store->resolve_conflict(c.id, long_phone);
  CHECK_FALSE(r.ok());
  if (!r.ok()) {
    CHECK(r.error().field == "phone");
    CHECK(r.error().rule == "must be at most 40 bytes");
  }
  CHECK(net.centre.phone(p) == "0987 000 002");
}

TEST_CASE("a typed waste batch bags and weight are held to the rules of waste add", "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  const std::string p = net.register_patient(a, "Phạm Văn Nam");
  WasteBatchInput w;
  w.kind = "sharps";
  w.bags = 2;
  w.weight_kg = 1.5;
  w.patient_id = p;
  const std::string batch = must(a.store->add_waste_batch(w));
  const Change created = a.last_change();
  net.push(a);
  const json base = {{"bags", version(created)}, {"weight_kg", version(created)}};
  net.push_changes(a, {hand_made(a.id, a.store->max_origin_seq(a.id) + 1, kStartMs + kMinuteMs, net.station.id,
                                 "waste_batch", batch,
                                 json{{"op", "upsert"}, {"fields", {{"bags", 3}, {"weight_kg", 2.5}}}, {"base", base}}.dump())});
  net.push_changes(b, {hand_made(b.id, b.store->max_origin_seq(b.id) + 1, kStartMs + 2 * kMinuteMs, net.station.id,
                                 "waste_batch", batch,
                                 json{{"op", "upsert"}, {"fields", {{"bags", 4}, {"weight_kg", 3.5}}}, {"base", base}}.dump())});
  REQUIRE(net.centre.store->conflicts().size() == 2);

  // waste add refuses 0 bags ("bags must be greater than 0") and more than 10000 kg.
  WasteBatchInput zero = w;
  zero.bags = 0;
  CHECK(must_fail(a.store->add_waste_batch(zero)).rule == "must be greater than 0");
  WasteBatchInput heavy = w;
  heavy.weight_kg = 20000;
  CHECK(must_fail(a.store->add_waste_batch(heavy)).rule == "must be greater than 0 and at most 10000");

  auto bags = net.centre.store->resolve_conflict(open_on(net.centre, "bags").id, "0");
  CHECK_FALSE(bags.ok());
  if (!bags.ok()) CHECK(bags.error().field == "bags");
  auto weight = net.centre.store->resolve_conflict(open_on(net.centre, "weight_kg").id, "20000");
  CHECK_FALSE(weight.ok());
  if (!weight.ok()) CHECK(weight.error().field == "weight_kg");
}

TEST_CASE("a typed national id is refused when another patient of the station has it", "[review]") {
  District net;
  Node& a = net.add_device("laptop-1");
  Node& b = net.add_device("laptop-2");
  const std::string p = net.register_patient(a, "Nguyễn Thị Lan");
  PatientInput in;
  in.name = "Lê Văn Tám";
  in.sex = "male";
  in.birth = "1948";
  in.village = "Thôn Tây";
  in.national_id = "001048000123";
  const std::string q = must(a.store->add_patient(in));
  net.push(a);
  net.pull(b);
  net.advance(kMinuteMs);
  PatientUpdate ua;
  ua.national_id = "001150000111";
  must(a.store->update_patient(p, ua));
  net.advance(kMinuteMs);
  PatientUpdate ub;
  ub.national_id = "001150000222";
  must(b.store->update_patient(p, ub));
  net.push(a);
  net.push(b);
  const ConflictRow c = only_open(net.centre);
  REQUIRE(c.field == "national_id");

  // What a station's own command says to the same value:
  PatientUpdate up;
  up.national_id = "001048000123";
  const Error station = must_fail(a.store->update_patient(p, up));
  CHECK(station.code == ErrorCode::kConflict);
  CHECK(station.rule == "is already registered for patient " + q);

  auto r = net.centre.store->resolve_conflict(c.id, "001048000123");
  CHECK_FALSE(r.ok());
  if (!r.ok()) {
    CHECK(r.error().field == "national_id");
    CHECK(r.error().rule == "is already registered for patient " + q);
  }
}

// --- what only the centre decides, and decisions that stay made --------------------------

TEST_CASE("a device's push may not carry a resolution or a duplicate link: only the centre makes them", "[review]") {
  District net;
  Node& a = net.add_device("tablet-1");
  Node& b = net.add_device("laptop-2");
  const auto [p, ea, eb, c] = phone_conflict(net, a, b, "Hà Thị Thu");

  // The tablet forges the centre's decision on its own patient, and a link.
  const int64_t at = kStartMs + 2 * kMinuteMs;
  const json forged = {{"op", "upsert"},
                       {"fields", {{"phone", "0912 000 001"}}},
                       {"base", {{"phone", version(eb)}}},
                       {"resolves",
                        {{"phone",
                          {{"versions", json::array({json::array({c.winner_hlc, c.winner_origin}),
                                                     json::array({c.loser_hlc, c.loser_origin})})},
                           {"keep", "loser"},
                           {"by", kCentreName}}}}}};
  const Change fake_resolution = hand_made(a.id, a.store->max_origin_seq(a.id) + 1, at, net.station.id, "patient",
                                           p, forged.dump());
  const Change fake_link = hand_made(a.id, a.store->max_origin_seq(a.id) + 2, at, net.station.id, "patient", p,
                                     json{{"op", "upsert"}, {"fields", {{"same_as", "someone-else"}}}}.dump());
  const ApplyOutcome out = net.push_changes(a, {fake_resolution, fake_link});
  CHECK(out.applied == 0);
  CHECK(out.quarantined == 2);
  REQUIRE(out.results.size() == 2);
  CHECK(out.results[0].reason == "only the centre resolves conflicts (payload has resolves)");
  CHECK(out.results[1].reason == "only the centre links duplicate patients (fields has same_as)");
  // The centre's conflict is still open, the record unchanged.
  CHECK(only_open(net.centre).id == c.id);
  CHECK(net.centre.phone(p) == "0987 000 002");
  CHECK(must(net.centre.store->get_patient(p)).same_as.empty());
}

TEST_CASE("a released or dropped change that arrives again stays as the reviewer decided", "[review]") {
  District net;
  Node& a = net.add_device("tablet-1");
  Node& b = net.add_device("laptop-2");
  const std::string p = net.register_patient(a, "Lường Thị Én");

  // The tablet's clock runs 10 days ahead: two edits held.
  a.clock.advance(10 * kDayMs);
  const Change first = edit_phone(a, p, "0912 111 111");
  const Change second = edit_phone(a, p, "0912 222 222");
  CHECK(net.push(a).quarantined == 2);
  const auto held = net.centre.store->quarantined();
  REQUIRE(held.size() == 2);

  // The first is released (at the centre's time), the second dropped.
  must(net.centre.store->release_quarantined(held[0].id));
  must(net.centre.store->drop_quarantined(held[1].id, "số sai"));
  CHECK(net.centre.phone(p) == "0912 111 111");

  // A nurse changes the number at the station meanwhile.
  net.advance(kHourMs);
  net.pull(b);
  edit_phone(b, p, "0933 333 333");
  net.push(b);
  CHECK(net.centre.phone(p) == "0933 333 333");

  // Four days later the same two changes arrive again (a hub relays them, or the
  // tablet is restored): now less than 7 days ahead, they would be taken with
  // their future hlc and overwrite the nurse's number. They are not.
  net.advance(4 * kDayMs);
  const int64_t seq = net.centre.store->last_seq();
  const ApplyOutcome again = net.push_changes(a, {first, second});
  CHECK(again.applied == 0);
  CHECK(again.duplicates == 1);
  CHECK(again.quarantined == 1);
  REQUIRE(again.results.size() == 2);
  CHECK(again.results[1].reason == "dropped at review: dropped by " + std::string(kCentreName) + ": số sai");
  CHECK(net.centre.store->last_seq() == seq);
  CHECK(net.centre.phone(p) == "0933 333 333");
  const auto all = net.centre.store->quarantined(false);
  REQUIRE(all.size() == 2);
  CHECK(all[0].status == "released");
  CHECK(all[1].status == "dropped");
}

TEST_CASE("a mistyped keyword is refused, not written as the value", "[review]") {
  District net;
  Node& a = net.add_device("tablet-1");
  Node& b = net.add_device("laptop-2");
  const auto [p, ea, eb, c] = phone_conflict(net, a, b, "Vàng Thị Dua");
  for (const std::string keep : {"Winner", " loser", "looser", "winer", "LOSER"}) {
    INFO("keep \"" << keep << "\"");
    Error e = must_fail(net.centre.store->resolve_conflict(c.id, keep));
    CHECK(e.field == "keep");
    CHECK_THAT(e.rule, Contains("mistyped"));
    CHECK(e.value == keep);
  }
  CHECK(only_open(net.centre).id == c.id);
  CHECK(net.centre.phone(p) == "0987 000 002");
  // A value far from both words is a value.
  CHECK(must(net.centre.store->resolve_conflict(c.id, "0900 000 000")).keep == "value");
}

TEST_CASE("a registration's conflict takes winner or loser only, and never from a reviewer", "[review]") {
  District net;
  // A tablet enrolled at the centre; its registration's revocation clashed
  // (a hub and the centre each revoked it: recorded as a device conflict).
  must(net.centre.store->add_enrollment_code("code-hash", "TYT-ANHOA", "mobile", "tablet-9", kStartMs + kDayMs));
  EnrollmentRequest req;
  req.code_hash = "code-hash";
  req.device_id = "0badc0de-0000-4000-8000-000000000009";
  req.device_name = "tablet-9";
  req.token_hash = "token-hash";
  req.database_id = "db-1";
  must(net.centre.store->enroll_device(req));
  {
    testing::SqliteDb db(net.centre.path());
    db.exec("INSERT INTO conflicts(id, kind, record_id, station_id, field, winner_value, winner_hlc, winner_origin, "
            "loser_value, loser_hlc, loser_origin, detected_at) VALUES ('c0ffee00c0ffee00', 'device', '" +
            req.device_id + "', '" + net.station.id +
            "', 'revoked_at', '\"2026-11-20T10:00:00\"', 2, 'hub', '\"2026-11-20T09:30:00\"', 1, 'centre', "
            "'2026-11-20T10:05:00')");
  }
  Error typed = must_fail(net.centre.store->resolve_conflict("c0ffee00", "2026-11-21T00:00:00"));
  CHECK(typed.field == "keep");
  CHECK(typed.rule == "must be winner or loser for a device registration");
  Error reviewer = must_fail(net.centre.store->resolve_conflict("c0ffee00", "loser", "", Decider::kReviewer));
  CHECK(reviewer.code == ErrorCode::kRefused);
  CHECK_THAT(reviewer.rule, Contains("device registration") && Contains("not a reviewer token"));
  CHECK(only_open(net.centre).id == "c0ffee00c0ffee00");
  // The operator may keep either side.
  CHECK(must(net.centre.store->resolve_conflict("c0ffee00", "loser")).keep == "loser");
  CHECK(net.centre.store->conflicts().empty());
}

// Store::apply_changes reads which identities of a batch it already holds once
// per batch; what the batch itself writes must count too.
TEST_CASE("a batch carrying a change twice, and a held change again after what it lacked, is judged change by change",
          "[core][review][quarantine]") {
  District net;
  Node& tablet = net.add_device("máy tính bảng");
  PatientInput in;
  in.name = "Lò Thị Dung";
  in.sex = "female";
  in.birth = "1948";
  in.village = "Bản Lướt";
  const std::string patient = must(tablet.store->add_patient(in));
  const Change registration = tablet.last_change();
  VisitInput v;
  v.patient_id = patient;
  must(tablet.store->add_visit(v));
  const Change visit = tablet.last_change();

  // The visit alone: its patient is unknown at the centre, so it is held.
  ApplyOutcome first = net.push_changes(tablet, {visit});
  REQUIRE(first.quarantined == 1);
  REQUIRE(net.centre.store->quarantined().size() == 1);

  // One batch: the visit (still held), its patient, the visit again (now
  // applied), the patient again (a duplicate of what this batch wrote).
  ApplyOutcome again = net.push_changes(tablet, {visit, registration, visit, registration});
  CHECK(again.quarantined == 1);
  CHECK(again.applied == 2);
  CHECK(again.duplicates == 1);
  REQUIRE(again.results.size() == 4);
  CHECK(again.results[0].status == ApplyStatus::kQuarantined);
  CHECK(again.results[1].status == ApplyStatus::kApplied);
  CHECK(again.results[2].status == ApplyStatus::kApplied);
  CHECK(again.results[3].status == ApplyStatus::kDuplicate);
  // The held entry is settled by the arrival that was applied, and each change is in the log once.
  CHECK(net.centre.store->quarantined().empty());
  const auto all = net.centre.store->quarantined(false);
  REQUIRE(all.size() == 1);
  CHECK(all[0].status == "applied");
  int64_t logged = 0;
  for (const auto& c : net.centre.store->changes_after(0, kBigPage)) {
    if (c.origin == tablet.id) ++logged;
  }
  CHECK(logged == 2);

  // The whole batch once more: everything is a duplicate now.
  ApplyOutcome third = net.push_changes(tablet, {visit, registration, visit, registration});
  CHECK(third.duplicates == 4);
  CHECK(third.applied == 0);
  CHECK(third.quarantined == 0);
}
