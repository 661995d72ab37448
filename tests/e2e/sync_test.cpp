// Stations and the centre, as the real programs, over TLS on loopback: a
// tramsync-server on a free port with a self-signed certificate, station-cli
// files enrolled with pinned fingerprints, offline work, syncs in several
// orders, and the faults the issue names (a push sent twice, a client killed
// mid-sync (tests/e2e/faults_test.cpp), a revoked device, a wrong pin, bad requests, a clock days ahead).
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "cli_runner.h"
#include "e2e_support.h"
#include "server_process.h"
#include "sync_fixture.h"

namespace tramsync::e2e {
namespace {

using Catch::Matchers::Contains;

}  // namespace

TEST_CASE("two stations and the centre: offline work on both, sync, every node holds exactly what it should",
          "[e2e][sync]") {
  TempDir dir;
  Centre centre(dir);
  const std::string code_a = centre.station("TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  const std::string code_b = centre.station("TYT-PHANGSOLIN", "Trạm Y tế xã Phăng Sô Lin");
  centre.admin({"item", "add", "--code", "PARA500", "--name", "Paracetamol 500mg", "--unit", "viên"});

  // Station A works offline for days before it ever reaches the centre.
  Station a(dir, "station-a");
  a.cli.ok({"init", "--station", "TYT-SINHO", "--name", "Trạm Y tế xã Sìn Hồ"});
  const std::string an = a.patient("Nguyễn Văn An");
  const std::string hoa = a.patient("Đặng Thị Hoa", "Nậm Tăm");
  a.cli.ok({"item", "add", "--code", "AMLO5", "--name", "Amlodipin 5mg", "--unit", "viên"});  // a donation
  a.cli.ok({"stock", "receive", "--item", "AMLO5", "--qty", "100", "--lot", "L1", "--expiry", vn_day(400)});
  a.cli.ok({"visit", "add", an, "--temp", "37.2", "--spo2", "97"});
  a.cli.ok({"dispense", an, "--item", "AMLO5", "--qty", "30", "--days", "30"});
  a.cli.ok({"waste", "add", "--kind", "infectious", "--bags", "2", "--weight-kg", "1.5", "--patient", hoa});
  a.enroll(centre, code_a);

  // Station B enrolls a new file and works offline.
  Station b(dir, "station-b");
  b.enroll(centre, code_b);
  const std::string dinh = b.patient("Vừ A Dính", "Pa Khóa");

  const int64_t made_offline = query_int(a.db(), "SELECT count(*) FROM changes");
  json sa = a.sync();
  CHECK(sa.at("sent").get<int64_t>() == made_offline);
  CHECK(sa.at("quarantined") == 0);
  b.sync();
  a.sync();

  // The centre holds the union; each station its own records and the catalogue.
  const std::string all_patients = "SELECT id FROM patients";
  CHECK(ids(centre.db(), all_patients) == std::set<std::string>{an, hoa, dinh});
  CHECK(ids(a.db(), all_patients) == std::set<std::string>{an, hoa});
  CHECK(ids(b.db(), all_patients) == std::set<std::string>{dinh});
  CHECK(ids(a.db(), "SELECT code FROM items") == std::set<std::string>{"AMLO5", "PARA500"});
  CHECK(ids(b.db(), "SELECT code FROM items") == std::set<std::string>{"PARA500"});  // not A's donation
  CHECK(ids(centre.db(), "SELECT code FROM items") == std::set<std::string>{"AMLO5", "PARA500"});
  for (const char* table : {"visits", "stock_movements", "waste_batches"}) {
    INFO(table);
    const std::string q = std::string("SELECT id FROM ") + table;
    CHECK(ids(centre.db(), q) == ids(a.db(), q));
  }
  // Each station's changes reached the centre, and nothing came back to the
  // station that wrote it (a change is logged once per node: UNIQUE(origin,
  // origin_seq) makes "twice" impossible, so counts per origin are compared).
  for (const Station* s : {&a, &b}) {
    const std::string origin = device_of(s->db());
    CHECK(changes_by(centre.db(), origin) == changes_by(s->db(), origin));
  }
  CHECK(changes_by(b.db(), device_of(a.db())) == 0);
  CHECK(changes_by(a.db(), device_of(b.db())) == 0);
  CHECK(query_int(centre.db(), "SELECT count(*) FROM quarantine") == 0);

  // A quiet second round moves nothing.
  json again = a.sync();
  CHECK(again.at("sent") == 0);
  CHECK(again.at("received") == 0);
  json status = a.cli.ok({"status"});
  CHECK(status.at("servers").at(0).at("pending") == 0);
  CHECK_FALSE(status.at("servers").at(0).at("last_sync").is_null());
}

TEST_CASE("two devices of one station edit the same field and dispense from one lot offline: all agree",
          "[e2e][sync][merge]") {
  TempDir dir;
  Centre centre(dir);
  Station laptop(dir, "laptop");
  laptop.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  const std::string an = laptop.patient("Nguyễn Văn An");
  laptop.cli.ok({"item", "add", "--code", "AMLO5", "--name", "Amlodipin 5mg", "--unit", "viên"});
  laptop.cli.ok({"stock", "receive", "--item", "AMLO5", "--qty", "100", "--lot", "L1", "--expiry", vn_day(400)});
  laptop.sync();
  Station tablet(dir, "tablet");
  tablet.enroll(centre, centre.device_code("TYT-SINHO", "mobile"));
  tablet.sync();

  laptop.cli.ok({"patient", "update", an, "--phone", "0912000001"});
  tablet.cli.ok({"patient", "update", an, "--phone", "0912000002"});
  laptop.cli.ok({"dispense", an, "--item", "AMLO5", "--qty", "30", "--days", "30"});
  tablet.cli.ok({"dispense", an, "--item", "AMLO5", "--qty", "20", "--days", "20"});
  laptop.sync();
  tablet.sync();
  laptop.sync();

  const std::string phone = "SELECT phone FROM patients WHERE id = '" + an + "'";
  const auto winner = query_texts(centre.db(), phone).at(0);
  CHECK(query_texts(laptop.db(), phone).at(0) == winner);
  CHECK(query_texts(tablet.db(), phone).at(0) == winner);
  CHECK(query_int(centre.db(), "SELECT count(*) FROM conflicts WHERE kind = 'patient' AND field = 'phone'") == 1);
  const std::string on_hand =
      "SELECT sum(quantity) FROM stock_movements m WHERE lot = 'L1' AND NOT EXISTS "
      "(SELECT 1 FROM voids v WHERE v.event_id = m.id)";
  CHECK(query_int(centre.db(), on_hand) == 50);
  CHECK(query_int(laptop.db(), on_hand) == 50);
  CHECK(query_int(tablet.db(), on_hand) == 50);
  json stock = tablet.cli.ok({"stock"});
  CHECK(stock.dump().find("\"on_hand\":50") != std::string::npos);
}

TEST_CASE("the same push body delivered twice is stored once", "[e2e][sync]") {
  // (A sync killed at random moments: tests/e2e/faults_test.cpp.)
  TempDir dir;
  Centre centre(dir);
  Station a(dir, "station-a");
  a.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  a.sync();
  const std::string p = a.patient("Lò Thị Bình");
  // The push the client would make, sent twice by hand with its token.
  auto rows = query_texts(a.db(), "SELECT json_object('seq', seq, 'origin', origin, 'origin_seq', origin_seq, "
                                  "'hlc', hlc, 'station_id', station_id, 'kind', kind, 'record_id', record_id, "
                                  "'payload', json(payload)) FROM changes ORDER BY seq DESC LIMIT 1");
  json body = {{"protocol", 1}, {"changes", json::array({json::parse(rows.at(0))})}};
  for (int i = 0; i < 2; ++i) {
    auto res = https_post(centre.server().port, "/v1/push", body.dump(), bearer(token_of(a.db())));
    REQUIRE(res);
    INFO(res->body);
    REQUIRE(res->status == 200);
    json ack = json::parse(res->body);
    CHECK(ack.at("applied") == (i == 0 ? 1 : 0));
    CHECK(ack.at("duplicates") == (i == 0 ? 0 : 1));
  }
  CHECK(query_int(centre.db(), "SELECT count(*) FROM patients WHERE id = '" + p + "'") == 1);
  json s = a.sync();  // and the client's own push of it is a duplicate too
  CHECK(s.at("sent") == 1);
  CHECK(s.at("duplicates") == 1);
}

TEST_CASE("refusals: another station's record, a revoked device, a wrong pin, bad requests", "[e2e][sync][refuse]") {
  TempDir dir;
  Centre centre(dir);
  Station a(dir, "station-a");
  a.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  Station b(dir, "station-b");
  b.enroll(centre, centre.station("TYT-PHANGSOLIN", "Trạm Y tế xã Phăng Sô Lin"));
  const std::string an = a.patient("Nguyễn Văn An");
  b.patient("Vừ A Dính");
  b.sync();

  SECTION("B pushing A's patient gets it quarantined with the reason, and never pulls A's records") {
    auto rows = query_texts(a.db(), "SELECT json_object('seq', seq, 'origin', origin, 'origin_seq', origin_seq, "
                                    "'hlc', hlc, 'station_id', station_id, 'kind', kind, 'record_id', record_id, "
                                    "'payload', json(payload)) FROM changes WHERE kind = 'patient'");
    json body = {{"protocol", 1}, {"changes", json::array({json::parse(rows.at(0))})}};
    auto res = https_post(centre.server().port, "/v1/push", body.dump(), bearer(token_of(b.db())));
    REQUIRE(res);
    REQUIRE(res->status == 200);
    json ack = json::parse(res->body);
    CHECK(ack.at("quarantined") == 1);
    CHECK_THAT(ack.at("results").at(0).at("reason").get<std::string>(), Contains("out of scope"));
    CHECK(query_int(centre.db(), "SELECT count(*) FROM patients WHERE id = '" + an + "'") == 0);
    a.sync();
    b.sync();
    CHECK(query_int(centre.db(), "SELECT count(*) FROM patients WHERE id = '" + an + "'") == 1);
    CHECK(query_int(b.db(), "SELECT count(*) FROM patients WHERE id = '" + an + "'") == 0);
  }

  SECTION("a revoked device is told so") {
    const std::string device = query_texts(b.db(), "SELECT value FROM meta WHERE key = 'device_id'").at(0);
    centre.admin({"device", "revoke", device});
    b.patient("Giàng Thị Mỷ");
    CliResult r = b.cli.run({"sync"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("revoked"));
    CHECK(query_int(centre.db(), "SELECT count(*) FROM patients WHERE name = 'Giàng Thị Mỷ'") == 0);
  }

  SECTION("a wrong pinned fingerprint is refused by the client before anything is sent") {
    Station c(dir, "station-c");
    std::string wrong = centre.pin();
    wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
    const std::string code = centre.device_code("TYT-SINHO", "mobile");
    CliResult r = c.cli.run({"enroll", "--server", centre.url(), "--code", code, "--pin", wrong});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("certificate mismatch"));
    CHECK_FALSE(std::filesystem::exists(c.db()));  // no half-made file left behind
    // Nothing reached the server: the same code still works with the right pin.
    c.cli.ok({"enroll", "--server", centre.url(), "--code", code, "--pin", centre.pin()});
  }

  SECTION("malformed JSON, a wrong protocol version and an oversized body get 4xx and change nothing") {
    const int64_t before = query_int(centre.db(), "SELECT count(*) FROM changes");
    const httplib::Headers auth = bearer(token_of(a.db()));
    auto bad = https_post(centre.server().port, "/v1/push", "{\"protocol\": 1, \"changes\": [", auth);
    REQUIRE(bad);
    CHECK(bad->status == 400);
    CHECK_THAT(bad->body, Contains("JSON"));
    auto v9 = https_post(centre.server().port, "/v1/push", R"({"protocol": 9, "changes": []})", auth);
    REQUIRE(v9);
    CHECK(v9->status == 400);
    CHECK_THAT(v9->body, Contains("unsupported_protocol"));
    std::string huge = R"({"protocol": 1, "changes": [], "pad": ")" + std::string(9 * 1024 * 1024, 'x') + "\"}";
    auto big = https_post(centre.server().port, "/v1/push", huge, auth);
    REQUIRE(big);
    CHECK(big->status == 413);
    CHECK_THAT(big->body, Contains("too_large"));
    CHECK(query_int(centre.db(), "SELECT count(*) FROM changes") == before);
  }
}

TEST_CASE("a device whose clock runs two days ahead is flagged at the centre and warned in its status",
          "[e2e][sync][clock]") {
  INFO("this test runs station-cli under libfaketime (Debian package faketime, installed by scripts/setup.sh)");
  REQUIRE(std::filesystem::exists(kFaketime));
  TempDir dir;
  Centre centre(dir);
  Station a(dir, "station-a");
  a.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  at_fake_time(a, "+2d");
  json s = a.sync();
  CHECK(s.at("clock_warning") == true);
  json status = a.cli.ok({"status"});
  REQUIRE(status.at("warnings").size() == 1);
  CHECK_THAT(status.at("warnings").at(0).get<std::string>(), Contains("ahead"));
  json devices = centre.admin({"device", "list"});
  bool flagged = false;
  for (const auto& d : devices.at("devices")) flagged = flagged || d.value("clock_warning", false);
  CHECK(flagged);
}

}  // namespace tramsync::e2e

