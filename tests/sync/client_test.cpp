// The sync client against the real handlers, in one process: enrollment, push
// and pull until quiet, retries over a link that drops requests or answers,
// refusals in words, scopes, concurrent edits. The same code runs over HTTPS in
// tests/e2e/sync_test.cpp; here the link is a MemoryTransport so each fault
// lands exactly where the test puts it.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "../core/fixture.h"
#include "support/sqlite_query.h"
#include "tramsync/core/hlc.h"
#include "tramsync/sync/auth.h"
#include "tramsync/sync/client.h"
#include "tramsync/sync/memory_transport.h"
#include "tramsync/sync/service.h"

using namespace tramsync;
using namespace tramsync::test;
using sync::MemoryTransport;

namespace {

int64_t now_ms() { return SystemClock().now_ms(); }

// A central server: its file, an admin connection and the sync handlers.
struct Centre {
  TempDir& dir;
  std::string path = dir.file("central.db");
  std::unique_ptr<Store> admin = must(Store::open(path));
  std::unique_ptr<sync::SyncService> service;

  explicit Centre(TempDir& d) : dir(d) {
    must(admin->init_central("Trung tâm Y tế huyện"));
    sync::ServiceOptions o;
    o.db_path = path;
    service = std::make_unique<sync::SyncService>(o, std::make_shared<sync::TokenAuthorizer>());
  }

  std::string station(const std::string& code) {
    must(admin->add_station(code, "Trạm Y tế " + code, "Sìn Hồ", "Lai Châu"));
    return new_code(code, kRoleStation);
  }
  std::string new_code(const std::string& station_code, const std::string& role) {
    std::string code = auth::new_enrollment_code();
    must(admin->add_enrollment_code(auth::enrollment_code_hash(code), station_code, role, "",
                                    now_ms() + 3600'000));
    return code;
  }
};

// A device: its file, a link to the centre, the peer id after enrollment.
struct Device {
  std::string path;  // its file
  std::unique_ptr<Store> store;
  std::unique_ptr<MemoryTransport> link;
  std::string peer;
  sync::SyncOptions options;

  Device(TempDir& dir, const std::string& name, Centre& c) : path(dir.file(name + ".db")) {
    store = must(Store::open(path));
    link = std::make_unique<MemoryTransport>(*c.service, name);
    options.sleep = [](int64_t) {};  // retries without waiting
  }
  // A station's laptop: a file made offline with `init`, then enrolled with a
  // code for its station (registered at the centre now).
  Device(TempDir& dir, const std::string& name, Centre& c, const std::string& station_code, const std::string& title)
      : Device(dir, name, c) {
    must(store->init_station(station_code, title, "laptop"));
    enroll(c.station(station_code));
  }
  void enroll(const std::string& code) {
    auto r = must(sync::enroll(*store, *link, {"mem://centre", code, "", "", "tablet"}));
    peer = r.peer.id;
  }
  sync::SyncReport sync() { return must(sync::sync_with_peer(*store, *link, peer, options)); }
};

std::string add_patient(Store& s, const std::string& name, const std::string& village = "Bản Mới") {
  return must(s.add_patient(patient_input(name, village, {"elderly"})));
}

// A number read from a node's file directly.
int64_t count(const std::string& path, const std::string& sql) { return testing::query_int(path, sql); }

}  // namespace

TEST_CASE("a station file made offline enrolls, sends its records and receives the catalogue", "[sync][client]") {
  TempDir dir;
  Centre centre(dir);
  const std::string code = centre.station("TYT-SINHO");
  ItemInput catalogue{"PARA500", "Paracetamol 500mg", "tablet", "medicine", std::nullopt};
  must(centre.admin->add_item(catalogue));

  Device a(dir, "station-a", centre);
  must(a.store->init_station("TYT-SINHO", "Trạm Y tế xã Sìn Hồ", "laptop"));
  const std::string an = add_patient(*a.store, "Nguyễn Văn An");
  add_patient(*a.store, "Lò Thị Bình");
  const int64_t local_changes = a.store->change_count();
  a.enroll(code);

  auto r = a.sync();
  CHECK(r.sent == local_changes);
  CHECK(r.server_applied == local_changes);
  CHECK(r.server_duplicates == 0);
  CHECK(r.received >= 1);  // the catalogue item (and the station record the centre registered)
  CHECK(must(centre.admin->get_patient(an)).name == "Nguyễn Văn An");
  CHECK(must(a.store->find_item("PARA500")).name == "Paracetamol 500mg");
  CHECK(a.store->count_to_push(a.peer) == 0);
  CHECK_FALSE(a.store->peer(a.peer)->last_sync_at.empty());

  // Nothing new either way: a second sync moves nothing.
  auto again = a.sync();
  CHECK(again.sent == 0);
  CHECK(again.received == 0);
}

TEST_CASE("a new file enrolled with a code becomes a device of that station and receives its records",
          "[sync][client]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  const std::string an = add_patient(*a.store, "Nguyễn Văn An");
  a.sync();

  Device b(dir, "tablet-b", centre);
  REQUIRE_FALSE(b.store->initialized());
  b.enroll(centre.new_code("TYT-SINHO", kRoleMobile));
  auto id = must(b.store->identity());
  CHECK(id.station_code == "TYT-SINHO");
  b.sync();
  CHECK(must(b.store->get_patient(an)).name == "Nguyễn Văn An");
}

TEST_CASE("a push whose answer is lost is sent again and stored once", "[sync][client]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  add_patient(*a.store, "Nguyễn Văn An");
  int lost = 0;
  a.link->after = [&](const sync::Request& req, const sync::Response&) -> std::optional<Error> {
    if (req.path == "/v1/push" && lost == 0) {
      ++lost;
      return Error{ErrorCode::kIo, "sync", "link", "dropped while reading the answer", ""};
    }
    return std::nullopt;
  };
  auto r = a.sync();
  CHECK(lost == 1);
  CHECK(r.retries == 1);
  CHECK(r.server_duplicates == r.sent);  // the second delivery found everything already there
  CHECK(count(centre.path, "SELECT count(*) FROM patients") == 1);
  CHECK(count(centre.path, "SELECT count(*) FROM changes c JOIN changes d ON c.origin = d.origin AND "
                           "c.origin_seq = d.origin_seq AND c.seq < d.seq") == 0);
}

TEST_CASE("a pull whose answer is lost is asked for again and stored once", "[sync][client]") {
  TempDir dir;
  Centre centre(dir);
  must(centre.admin->add_item({"PARA500", "Paracetamol 500mg", "tablet", "medicine", std::nullopt}));
  must(centre.admin->add_item({"ORS", "Oresol", "sachet", "medicine", std::nullopt}));
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  int lost = 0;
  a.link->after = [&](const sync::Request& req, const sync::Response&) -> std::optional<Error> {
    if (req.path == "/v1/pull" && lost++ == 0) return Error{ErrorCode::kIo, "sync", "link", "dropped", ""};
    return std::nullopt;
  };
  auto r = a.sync();
  CHECK(r.retries == 1);
  CHECK(r.duplicates == 0);
  CHECK(count(dir.file("station-a.db"), "SELECT count(*) FROM items WHERE code IN ('PARA500', 'ORS')") == 2);
}

TEST_CASE("a sync that gives up keeps what was acknowledged, and the next one resumes", "[sync][client]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  for (int i = 0; i < 9; ++i) add_patient(*a.store, "Bệnh nhân " + std::to_string(i));
  const int64_t total = a.store->count_to_push(a.peer);
  a.options.batch_changes = 2;
  a.options.max_attempts = 3;
  int pushes = 0;
  a.link->before = [&](const sync::Request& req) -> std::optional<Error> {
    if (req.path == "/v1/push" && ++pushes > 2) return Error{ErrorCode::kIo, "connect", "server", "unreachable", ""};
    return std::nullopt;
  };
  auto failed = sync::sync_with_peer(*a.store, *a.link, a.peer, a.options);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code == ErrorCode::kIo);
  CHECK_THAT(failed.error().message(), Contains("next sync resumes"));
  CHECK(a.store->count_to_push(a.peer) == total - 4);  // two batches of two were acknowledged
  CHECK_THAT(sync::peer_settings(*a.store->peer(a.peer)).last_error, Contains("stopped after 3 attempts"));

  a.link->before = nullptr;
  auto r = a.sync();
  CHECK(r.sent == total - 4);
  CHECK(r.server_duplicates == 0);  // nothing acknowledged was sent twice
  CHECK(count(centre.path, "SELECT count(*) FROM patients") == 9);
  CHECK(sync::peer_settings(*a.store->peer(a.peer)).last_error.empty());
}

TEST_CASE("enrollment whose answer was lost can be tried again with the same code", "[sync][client]") {
  TempDir dir;
  Centre centre(dir);
  const std::string code = centre.station("TYT-SINHO");
  Device a(dir, "tablet", centre);
  int lost = 0;
  a.link->after = [&](const sync::Request& req, const sync::Response& res) -> std::optional<Error> {
    if (req.path == "/v1/enroll" && res.status == 200 && lost++ == 0) {
      return Error{ErrorCode::kIo, "sync", "link", "dropped", ""};
    }
    return std::nullopt;
  };
  a.enroll(code);
  CHECK(lost == 2);
  a.link->after = nullptr;
  a.sync();  // the token from the second answer works
  CHECK(centre.admin->devices().size() == 1);

  // Another device cannot use the code that is now spent.
  Device b(dir, "other", centre);
  auto e = must_fail(sync::enroll(*b.store, *b.link, {"mem://centre", code, "", "", "x"}));
  CHECK_THAT(e.message(), Contains("already used"));
}

TEST_CASE("a station file is refused a code made for another station", "[sync][client]") {
  TempDir dir;
  Centre centre(dir);
  centre.station("TYT-SINHO");
  const std::string other = centre.station("TYT-PHANGSOLIN");
  Device a(dir, "station-a", centre);
  must(a.store->init_station("TYT-SINHO", "Trạm Y tế xã Sìn Hồ", "laptop"));
  auto e = must_fail(sync::enroll(*a.store, *a.link, {"mem://centre", other, "", "", ""}));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK_THAT(e.message(), Contains("does not match the enrollment code's station TYT-PHANGSOLIN"));
  CHECK(a.store->peers().empty());
}

TEST_CASE("a revoked device is told so and sends nothing", "[sync][client]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  a.sync();
  must(centre.admin->revoke_device(must(a.store->identity()).device_id));
  add_patient(*a.store, "Nguyễn Văn An");
  auto e = must_fail(sync::sync_with_peer(*a.store, *a.link, a.peer, a.options));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK_THAT(e.message(), Contains("revoked"));
  CHECK(count(centre.path, "SELECT count(*) FROM patients") == 0);
}

TEST_CASE("another station's record is quarantined at the centre and reported back, other stations' records "
          "are never sent",
          "[sync][client][scope]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  const std::string an = add_patient(*a.store, "Nguyễn Văn An");

  // Station B somehow holds A's patient record (copied across by hand) and
  // pushes it before A does: the centre must not take it from B.
  Device b(dir, "station-b", centre, "TYT-PHANGSOLIN", "Trạm Y tế xã Phăng Sô Lin");
  auto copied = a.store->changes_after(0, 1000);
  std::vector<Change> patient_changes;
  for (auto& c : copied) {
    if (c.kind == "patient") patient_changes.push_back(c);
  }
  REQUIRE(patient_changes.size() == 1);
  ApplyContext usb;
  usb.from_peer = "usb-stick";
  must(b.store->apply_changes(patient_changes, usb));
  const std::string own = add_patient(*b.store, "Vàng A Dế");
  auto r = b.sync();
  CHECK(r.server_quarantined == 1);
  REQUIRE(r.refused.size() == 1);
  CHECK_THAT(r.refused[0].reason, Contains("scope"));
  auto refusals = b.store->peer_refusals();
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0].record_id == an);
  CHECK(refusals[0].kind == "patient");
  CHECK(centre.admin->quarantined().size() == 1);
  CHECK_THAT(centre.admin->quarantined()[0].reason, Contains("scope"));
  CHECK(must(centre.admin->get_patient(own)).name == "Vàng A Dế");
  CHECK_FALSE(centre.admin->get_patient(an).ok());
  a.sync();  // from its own station, the record is taken and the quarantine settled
  CHECK(must(centre.admin->get_patient(an)).name == "Nguyễn Văn An");
  CHECK(centre.admin->quarantined(/*held_only=*/true).empty());
  REQUIRE(centre.admin->quarantined(false).size() == 1);
  CHECK(centre.admin->quarantined(false)[0].status == "applied");

  // A's new patient reaches the centre and never station B.
  const std::string an2 = add_patient(*a.store, "Nguyễn Thị Hoa");
  a.sync();
  b.sync();
  CHECK(must(centre.admin->get_patient(an2)).name == "Nguyễn Thị Hoa");
  CHECK_FALSE(b.store->get_patient(an2).ok());
  // ... and B's patient never reaches station A.
  CHECK_FALSE(a.store->get_patient(own).ok());
}

TEST_CASE("concurrent edits on two devices converge on one winner, the loser kept as a conflict, two "
          "dispensings from one lot both count",
          "[sync][client][merge]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "laptop", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  const std::string an = add_patient(*a.store, "Nguyễn Văn An");
  must(a.store->add_item({"AMLO5", "Amlodipin 5mg", "tablet", "medicine", std::nullopt}));
  must(a.store->receive({"AMLO5", 100, "L2026", "2027-12-31", "TTYT huyện", std::nullopt}));
  a.sync();
  Device b(dir, "tablet", centre);
  b.enroll(centre.new_code("TYT-SINHO", kRoleMobile));
  b.sync();

  // Offline, both edit the same field and both dispense from the same lot.
  PatientUpdate ua;
  ua.phone = "0912000001";
  must(a.store->update_patient(an, ua));
  PatientUpdate ub;
  ub.phone = "0912000002";
  must(b.store->update_patient(an, ub));
  DispenseInput d{an, "AMLO5", 30, 30, std::nullopt, std::nullopt};
  must(a.store->dispense(d));
  d.quantity = 20;
  must(b.store->dispense(d));

  a.sync();
  b.sync();
  a.sync();
  const std::string phone_a = must(a.store->get_patient(an)).phone;
  CHECK(phone_a == must(b.store->get_patient(an)).phone);
  CHECK(phone_a == must(centre.admin->get_patient(an)).phone);
  auto conflicts = centre.admin->conflicts();
  // The station's name as registered at the centre and as typed at `init`
  // differ: that is for a person to settle too. Nothing else was concurrent.
  std::erase_if(conflicts, [](const ConflictRow& c) { return c.kind == "station" && c.field == "name"; });
  REQUIRE(conflicts.size() == 1);
  CHECK(conflicts[0].field == "phone");
  CHECK(conflicts[0].record_id == an);

  auto on_hand = [](Store& s) {
    for (const auto& it : s.stock()) {
      if (it.item_code == "AMLO5") return it.on_hand;
    }
    return int64_t{-1};
  };
  CHECK(on_hand(*a.store) == 50);
  CHECK(on_hand(*b.store) == 50);
  CHECK(count(centre.path,
              "SELECT sum(quantity) FROM stock_movements m WHERE lot = 'L2026' AND NOT EXISTS "
              "(SELECT 1 FROM voids v WHERE v.event_id = m.id)") == 50);
}

TEST_CASE("a device whose clock runs two days ahead is flagged at the centre and warned", "[sync][client][clock]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  ManualClock ahead(now_ms() + 2 * kDayMs);
  a.options.clock = &ahead;
  auto r = a.sync();
  CHECK(r.clock_warning);
  CHECK(r.clock_skew_ms < -2 * kDayMs + kHourMs);
  auto skew = centre.admin->device(must(a.store->identity()).device_id)->clock_skew_ms;
  CHECK(skew > 2 * kDayMs - kHourMs);
  CHECK(sync::peer_settings(*a.store->peer(a.peer)).clock_skew_ms == r.clock_skew_ms);
}

namespace {
// A push of `changes` made by hand with the device's own token.
json raw_push(Device& d, const std::vector<Change>& changes) {
  sync::Request req;
  req.method = "POST";
  req.path = "/v1/push";
  req.headers["Authorization"] = "Bearer " + sync::peer_settings(*d.store->peer(d.peer)).token;
  json cs = json::array();
  for (const auto& c : changes) {
    cs.push_back({{"seq", c.seq}, {"origin", c.origin}, {"origin_seq", c.origin_seq}, {"hlc", c.hlc},
                  {"station_id", c.station_id}, {"kind", c.kind}, {"record_id", c.record_id},
                  {"payload", json::parse(c.payload)}});
  }
  req.body = json{{"protocol", 1}, {"changes", cs}}.dump();
  auto res = must(d.link->roundtrip(req));
  INFO(res.body);
  REQUIRE(res.status == 200);
  return json::parse(res.body);
}
}  // namespace

TEST_CASE("a device cannot write under another device's name, nor with a clock years ahead", "[sync][client]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  add_patient(*a.store, "Nguyễn Văn An");
  Change c = a.store->changes_after(0, 100).back();
  REQUIRE(c.kind == "patient");

  Change forged = c;
  forged.origin = "0f0f0f0f-0000-4000-8000-000000000001";  // nobody enrolled here
  json ack = raw_push(a, {forged});
  CHECK(ack.at("quarantined") == 1);
  CHECK_THAT(ack.at("results").at(0).at("reason").get<std::string>(), Contains("neither the sending device"));

  Change ahead = c;
  ahead.origin_seq = 999;
  ahead.hlc = Hlc::pack(now_ms() + 400 * kDayMs, 0);
  ack = raw_push(a, {ahead});
  CHECK(ack.at("quarantined") == 1);
  CHECK_THAT(ack.at("results").at(0).at("reason").get<std::string>(), Contains("days ahead"));
  CHECK(count(centre.path, "SELECT count(*) FROM patients") == 0);

  // Its own changes, as they are, go in; the centre's clock did not move.
  a.sync();
  CHECK(count(centre.path, "SELECT count(*) FROM patients") == 1);
  CHECK(Hlc::physical_ms(static_cast<uint64_t>(count(centre.path, "SELECT max(hlc) FROM changes"))) <
        now_ms() + kHourMs);
}

TEST_CASE("a revoked device found again enrolls with a new code, another file cannot take its place",
          "[sync][client][enroll]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  a.sync();
  const std::string device = must(a.store->identity()).device_id;
  must(centre.admin->revoke_device(device));
  CHECK_THAT(must_fail(sync::sync_with_peer(*a.store, *a.link, a.peer, a.options)).message(), Contains("revoked"));

  // Another file (another database id) with a fresh code cannot claim the device id.
  Device impostor(dir, "other", centre);
  must(impostor.store->init_station("TYT-SINHO", "Trạm Y tế xã Sìn Hồ", "laptop"));
  auto req_code = centre.new_code("TYT-SINHO", kRoleStation);
  sync::Request req;
  req.method = "POST";
  req.path = "/v1/enroll";
  req.body = json{{"protocol", 1}, {"code", req_code}, {"device_id", device}, {"device_name", "x"},
                  {"database_id", impostor.store->database_id()}, {"station_code", "TYT-SINHO"}}
                 .dump();
  auto res = must(impostor.link->roundtrip(req));
  CHECK(res.status == 409);
  CHECK_THAT(res.body, Contains("cannot take over a device"));

  // The real file, with a new code from the centre, is back.
  auto r = must(sync::enroll(*a.store, *a.link, {"mem://centre", centre.new_code("TYT-SINHO", kRoleStation), "", "",
                                                  ""}));
  CHECK(r.peer.id == a.peer);
  add_patient(*a.store, "Lò Thị Bình");
  a.sync();
  CHECK(count(centre.path, "SELECT count(*) FROM patients") == 1);
  CHECK_FALSE(centre.admin->device(device)->revoked());
}

TEST_CASE("a centre restored from an older backup gets back what it lost on the next sync", "[sync][client]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  for (int i = 0; i < 3; ++i) add_patient(*a.store, "Trước " + std::to_string(i));
  a.sync();
  testing::SqliteDb(centre.path).exec("VACUUM INTO '" + dir.file("backup.db") + "'");
  for (int i = 0; i < 3; ++i) add_patient(*a.store, "Sau " + std::to_string(i));
  a.sync();
  REQUIRE(count(centre.path, "SELECT count(*) FROM patients") == 6);

  // The centre's disk dies; last night's backup is put in its place.
  sync::ServiceOptions o;
  o.db_path = dir.file("backup.db");
  sync::SyncService restored(o, std::make_shared<sync::TokenAuthorizer>());
  MemoryTransport link(restored, "station-a");
  auto r = must(sync::sync_with_peer(*a.store, link, a.peer, a.options));
  CHECK(r.server_replaced);
  CHECK(count(dir.file("backup.db"), "SELECT count(*) FROM patients") == 6);
  CHECK(count(dir.file("backup.db"),
              "SELECT count(*) - count(DISTINCT origin || '/' || origin_seq) FROM changes") == 0);
}

TEST_CASE("a device whose last change the centre holds in quarantine does not send its log again and again",
          "[sync][client]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  add_patient(*a.store, "Nguyễn Văn An");
  a.sync();
  // Its next change is written with a clock ten days ahead: held at the centre.
  ManualClock ahead(now_ms() + 10 * kDayMs);
  {
    StoreOptions o;
    o.clock = &ahead;
    auto skewed = must(Store::open(dir.file("station-a.db"), o));
    add_patient(*skewed, "Lò Thị Bình");
  }
  auto r = a.sync();
  CHECK(r.server_quarantined == 1);
  auto again = a.sync();
  CHECK(again.sent == 0);
  CHECK_FALSE(again.server_replaced);
}

TEST_CASE("a device whose own clock is far behind still takes the centre's changes", "[sync][client][clock]") {
  TempDir dir;
  Centre centre(dir);
  must(centre.admin->add_item({"PARA500", "Paracetamol 500mg", "tablet", "medicine", std::nullopt}));
  ManualClock behind(now_ms() - 30 * kDayMs);
  Device a(dir, "station-a", centre);
  a.store.reset();
  StoreOptions o;
  o.clock = &behind;
  a.store = must(Store::open(dir.file("station-a.db"), o));
  must(a.store->init_station("TYT-SINHO", "Trạm Y tế xã Sìn Hồ", "laptop"));
  a.enroll(centre.station("TYT-SINHO"));
  a.options.clock = &behind;
  auto r = a.sync();
  CHECK(r.quarantined == 0);
  CHECK(must(a.store->find_item("PARA500")).name == "Paracetamol 500mg");
  CHECK(r.clock_warning);
}

TEST_CASE("a station cannot write another station's record under its own station id, a mobile device relays for "
          "nobody",
          "[sync][client][scope]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "station-a", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  Device b(dir, "station-b", centre, "TYT-PHANGSOLIN", "Trạm Y tế xã Phăng Sô Lin");
  const std::string theirs = add_patient(*b.store, "Vừ A Dính", "Pa Khóa");
  b.sync();
  a.sync();
  const Identity ida = must(a.store->identity());

  // B's patient, rewritten by A under A's own station and name.
  Change c;
  for (const auto& x : b.store->changes_after(0, 1000)) {
    if (x.record_id == theirs) c = x;
  }
  REQUIRE(c.record_id == theirs);
  c.station_id = ida.station_id;
  c.origin = ida.device_id;
  c.origin_seq = 999;
  c.hlc = Hlc::pack(now_ms(), 0);
  c.payload = json{{"op", "upsert"}, {"fields", {{"name", "Taken over"}}}}.dump();
  json ack = raw_push(a, {c});
  CHECK(ack.at("quarantined") == 1);
  CHECK_THAT(ack.at("results").at(0).at("reason").get<std::string>(), Contains("belongs to station"));
  CHECK(testing::query_texts(centre.path, "SELECT name FROM patients WHERE id = '" + theirs + "'").at(0) ==
        "Vừ A Dính");

  // A mobile device of A sends only its own changes: not the laptop's.
  Device m(dir, "tablet", centre);
  m.enroll(centre.new_code("TYT-SINHO", kRoleMobile));
  m.sync();
  add_patient(*a.store, "Nguyễn Văn An");
  Change laptops = a.store->changes_after(0, 1000).back();
  REQUIRE(laptops.origin == ida.device_id);
  json relayed = raw_push(m, {laptops});
  CHECK(relayed.at("quarantined") == 1);
  CHECK_THAT(relayed.at("results").at(0).at("reason").get<std::string>(), Contains("neither the sending device"));
  // The laptop itself is accepted, as ever.
  CHECK(a.sync().server_applied == 1);
}

TEST_CASE("a station file restored from an older backup takes a new identity: what it makes afterwards reaches "
          "the centre, and what the centre had comes back to it",
          "[sync][client][restore]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "laptop", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  for (int i = 0; i < 2; ++i) add_patient(*a.store, "Trước " + std::to_string(i));
  a.sync();
  const std::string old_device = must(a.store->identity()).device_id;
  testing::SqliteDb(a.path).exec("VACUUM INTO '" + dir.file("restored.db") + "'");  // last week's backup
  for (int i = 0; i < 3; ++i) add_patient(*a.store, "Sau " + std::to_string(i));
  a.sync();
  REQUIRE(count(centre.path, "SELECT count(*) FROM patients") == 5);

  // The laptop's disk dies; the backup is put back and the nurse goes on working.
  Device restored(dir, "restored", centre);
  restored.peer = a.peer;
  std::vector<std::string> made;
  for (int i = 0; i < 2; ++i) made.push_back(add_patient(*restored.store, "Sau khôi phục " + std::to_string(i)));
  const std::string visit_patient = made[0];
  VisitInput v;
  v.patient_id = visit_patient;
  v.temp_c = 37.5;
  must(restored.store->add_visit(v));
  // An edit chain: the second edit's base is the first, both renumbered.
  for (const char* phone : {"0912000001", "0912000002"}) {
    PatientUpdate up;
    up.phone = phone;
    must(restored.store->update_patient(made[1], up));
  }

  // The answer to the renewal is lost once: the device asks again with the
  // same new id and gets a fresh token, not a refusal (and no second device).
  int lost = 0;
  restored.link->after = [&](const sync::Request& req, const sync::Response&) -> std::optional<Error> {
    if (req.path == "/v1/renew" && lost++ == 0) {
      return Error{ErrorCode::kIo, "sync", "link", "dropped while reading the answer", ""};
    }
    return std::nullopt;
  };
  sync::SyncReport r = restored.sync();
  restored.link->after = nullptr;
  CHECK(lost == 2);
  CHECK(count(centre.path, "SELECT count(*) FROM devices WHERE renewed_from = '" + old_device + "'") == 1);
  CHECK(r.renewed_from == old_device);
  CHECK_FALSE(r.new_device_id.empty());
  CHECK(r.renumbered == 5);  // two patients, a visit and two edits, made after the restore
  const std::string new_device = must(restored.store->identity()).device_id;
  CHECK(new_device == r.new_device_id);
  // Nothing lost, nothing twice: the centre has all 7 patients once, the visit
  // under the new device, and the restored file got back the 3 it had lost.
  CHECK(count(centre.path, "SELECT count(*) FROM patients") == 7);
  CHECK(count(centre.path, "SELECT count(*) FROM visits WHERE origin = '" + new_device + "'") == 1);
  CHECK(count(centre.path, "SELECT count(*) FROM quarantine") == 0);
  // The edit chain arrived as a chain: no conflict anywhere, the last phone kept.
  // (The station's name differs between the centre's registration and the
  // laptop's init: that conflict is the setup's, not the restore's.)
  CHECK(count(centre.path, "SELECT count(*) FROM conflicts WHERE kind = 'patient'") == 0);
  CHECK(count(restored.path, "SELECT count(*) FROM conflicts WHERE kind = 'patient'") == 0);
  CHECK(must(centre.admin->get_patient(made[1])).phone == "0912000002");
  CHECK(count(restored.path, "SELECT count(*) FROM patients") == 7);
  CHECK(count(restored.path, "SELECT count(*) FROM visits WHERE origin = '" + new_device + "'") == 1);
  for (const std::string& origin : {old_device, new_device}) {
    INFO(origin);
    CHECK(count(centre.path, "SELECT count(*) FROM changes WHERE origin = '" + origin + "'") ==
          count(restored.path, "SELECT count(*) FROM changes WHERE origin = '" + origin + "'"));
  }
  // The renumbered records carry their new writer in their field versions too.
  CHECK(count(restored.path, "SELECT count(*) FROM patients WHERE id = '" + made[1] + "' AND instr(_v, '" +
                                          old_device + "') > 0") == 0);
  // It keeps working as the new device; the centre lists both.
  add_patient(*restored.store, "Ngày mai");
  r = restored.sync();
  CHECK(r.new_device_id.empty());
  CHECK(r.sent == 1);
  CHECK(count(centre.path, "SELECT count(*) FROM patients") == 8);
  CHECK(centre.admin->device(new_device)->renewed_from == old_device);
  CHECK_FALSE(centre.admin->device(old_device)->revoked());

  // The renewed device answers for the one it came from: revoking the old
  // laptop (stolen, say) revokes it too, so a token cannot outlive its
  // revocation by renewing itself into a new device.
  must(centre.admin->revoke_device(old_device));
  add_patient(*restored.store, "Sau thu hồi");
  auto refused = sync::sync_with_peer(*restored.store, *restored.link, restored.peer, restored.options);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::kRefused);
  CHECK_THAT(refused.error().message(), Catch::Contains("revoked"));
  CHECK(count(centre.path, "SELECT count(*) FROM patients") == 8);
}

TEST_CASE("a file copied to a second laptop: both keep working, each one's records reach the other and none is "
          "taken for a duplicate",
          "[sync][client][restore]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "laptop", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  add_patient(*a.store, "Chung");
  a.sync();
  testing::SqliteDb(a.path).exec("VACUUM INTO '" + dir.file("second.db") + "'");
  Device b(dir, "second", centre);
  b.peer = a.peer;

  SECTION("the copy that syncs second after both wrote takes the new identity") {
    add_patient(*a.store, "Máy A");
    add_patient(*b.store, "Máy B");
    CHECK(a.sync().new_device_id.empty());
    auto rb = b.sync();
    CHECK_FALSE(rb.new_device_id.empty());
    CHECK(rb.renumbered == 1);
  }
  SECTION("a copy that wrote nothing, behind the other, takes it before writing anything") {
    add_patient(*a.store, "Máy A");
    a.sync();
    auto rb = b.sync();
    CHECK_FALSE(rb.new_device_id.empty());
    CHECK(rb.renumbered == 0);
    CHECK(count(b.path, "SELECT count(*) FROM patients") == 2);
    add_patient(*b.store, "Máy B");
  }
  // Both go on; every node ends with every record once.
  add_patient(*a.store, "Máy A sau");
  add_patient(*b.store, "Máy B sau");
  for (int i = 0; i < 2; ++i) {
    a.sync();
    b.sync();
  }
  CHECK(must(a.store->identity()).device_id != must(b.store->identity()).device_id);
  for (const std::string& path : {centre.path, a.path, b.path}) {
    INFO(path);
    CHECK(count(path, "SELECT count(*) FROM patients") == 5);
    CHECK(count(path, "SELECT count(*) - count(DISTINCT origin || '/' || origin_seq) FROM changes") == 0);
  }
  CHECK(count(centre.path, "SELECT count(*) FROM quarantine") == 0);
}

TEST_CASE("a new identity must be a fresh lower-case UUID: not text of any kind, not a writer the server knows",
          "[sync][client][restore]") {
  TempDir dir;
  Centre centre(dir);
  Device a(dir, "laptop", centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  add_patient(*a.store, "Lò Văn Sáu");
  a.sync();
  const std::string device = must(a.store->identity()).device_id;
  const std::string hash = std::string(64, 'a');

  auto not_uuid = centre.admin->renew_device(device, "ANY TEXT", hash, "");
  REQUIRE_FALSE(not_uuid);
  CHECK(not_uuid.error().code == ErrorCode::kInvalid);
  CHECK(not_uuid.error().field == "device_id");
  // The centre's own origin, and a device's: taking either would mix two writers' changes.
  for (const std::string& taken : {must(centre.admin->identity()).device_id, device}) {
    auto r = centre.admin->renew_device(device, taken, hash, "");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::kConflict);
  }
  CHECK(count(centre.path, "SELECT count(*) FROM devices WHERE renewed_from != ''") == 0);
}
