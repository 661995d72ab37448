// The reviewer's decisions, end to end: two devices of one station edit the
// same patient offline and sync with a real tramsync-server over TLS; the
// conflict is recorded at the centre and on both devices, a reviewer token
// resolves it over POST /v1/conflicts/ID/resolve (the operator another with
// `tramsync-server conflicts resolve`), and the decision reaches both devices,
// which hold the value kept and close their own conflicts. A tablet whose clock
// runs a month ahead (libfaketime) has its changes held in quarantine at the
// centre; the operator releases one (it reaches the station) and drops another
// (never applied).
#include <catch2/catch.hpp>

#include <filesystem>

#include "sync_fixture.h"

namespace tramsync::e2e {

namespace {

using Catch::Matchers::Contains;


// tramsync-server ARGS... --db DB, whatever its exit code (Centre::admin requires 0).
CliResult server_cli(const Centre& centre, const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.end(), {"--db", centre.db()});
  return spawn_and_capture(kTramsyncServer, args, {}, dir.path().string());
}

std::string phone_of(Station& s, const std::string& patient) {
  return s.cli.ok({"patient", "show", patient}).at("phone");
}

int64_t open_conflicts(const std::string& db) {
  return query_int(db, "SELECT count(*) FROM conflicts WHERE status = 'open'");
}

int status(const httplib::Result& res) {
  REQUIRE(res);
  return res->status;
}

json parse_body(const httplib::Result& res) {
  REQUIRE(res);
  INFO(res->status << " " << res->body);
  json j = json::parse(res->body, nullptr, false);
  REQUIRE(j.is_object());
  return j;
}

}  // namespace

TEST_CASE("a reviewer resolves concurrent edits, and both devices take the value kept and close their conflicts",
          "[e2e][review]") {
  TempDir dir;
  Centre centre(dir);
  Station a(dir, "sinho");
  a.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  Station b(dir, "sinho-2");
  b.enroll(centre, centre.device_code("TYT-SINHO", "station"));
  const std::string patient = a.patient("Giàng Thị Mai");
  a.sync();
  b.sync();
  REQUIRE(phone_of(b, patient).empty());
  const std::string dev_a = device_of(a.db()), dev_b = device_of(b.db());
  const std::string centre_id = device_of(centre.db());
  const int port = centre.server().port;

  // Offline, the laptop then the second device change the phone number.
  a.cli.ok({"patient", "update", patient, "--phone", "0911111111"});
  b.cli.ok({"patient", "update", patient, "--phone", "0922222222"});
  a.sync();
  b.sync();  // pushes the rival edit (a conflict at the centre), pulls a's (a conflict here)
  a.sync();  // pulls b's edit: a conflict here too

  json listed = centre.admin({"conflicts", "list"});
  REQUIRE(listed.is_array());
  REQUIRE(listed.size() == 1);
  const json c1 = listed.at(0);
  const std::string conflict = c1.at("id");
  {
    INFO("the centre recorded one open conflict: b's later edit won, a's lost");
    CHECK(conflict.size() == 36);
    CHECK(c1.at("station") == "TYT-SINHO");
    CHECK(c1.at("kind") == "patient");
    CHECK(c1.at("record_id") == patient);
    CHECK(c1.at("field") == "phone");
    CHECK(c1.at("winner_value") == "0922222222");
    CHECK(c1.at("winner_origin") == dev_b);
    CHECK(c1.at("loser_value") == "0911111111");
    CHECK(c1.at("loser_origin") == dev_a);
    CHECK(c1.at("status") == "open");
    CHECK(c1.at("resolution").is_null());
    CHECK(c1.at("winner_hlc").get<uint64_t>() > c1.at("loser_hlc").get<uint64_t>());
    CHECK(centre.admin({"conflicts", "list", "--station", "TYT-SINHO"}) == listed);
    CliResult unknown = server_cli(centre, dir, {"conflicts", "list", "--station", "TYT-NOWHERE"});
    CHECK(unknown.exit_code == 1);
    CHECK_THAT(unknown.err, Contains("station") && Contains("TYT-NOWHERE"));
    CliResult table = server_cli(centre, dir, {"conflicts", "list"});
    REQUIRE(table.exit_code == 0);
    CHECK_THAT(table.out, Contains(conflict.substr(0, 8)) && Contains("0922222222") && Contains("0911111111") &&
                              Contains("TYT-SINHO") && Contains("open"));
  }
  for (Station* s : {&a, &b}) {
    INFO("device " << s->db() << " recorded the same conflict, open; both hold the winner");
    json mine = s->cli.ok({"conflicts"});
    REQUIRE(mine.size() == 1);
    CHECK(mine.at(0).at("record_id") == patient);
    CHECK(mine.at(0).at("field") == "phone");
    CHECK(mine.at(0).at("winner_value") == "0922222222");
    CHECK(mine.at(0).at("loser_value") == "0911111111");
    CHECK(mine.at(0).at("station") == "TYT-SINHO");
    CHECK(mine.at(0).at("status") == "open");
    CHECK(phone_of(*s, patient) == "0922222222");
  }

  const std::string token = reviewer_token(centre, dir);
  const auto auth = bearer(token);
  const auto station_auth = bearer(token_of(a.db()));
  const std::string resolve_path = "/v1/conflicts/" + conflict + "/resolve";
  {
    INFO("only reviewer tokens: a station's gets 403 (and writes nothing), none 401; wrong methods 405");
    const int64_t before = query_int(centre.db(), "SELECT count(*) FROM changes");
    auto get = https_get(port, "/v1/conflicts", station_auth);
    CHECK(status(get) == 403);
    CHECK(parse_body(get).at("code") == "forbidden");
    CHECK_THAT(get->body, Contains("reviewer"));
    auto post = https_post(port, resolve_path, R"({"keep": "loser"})", station_auth);
    CHECK(status(post) == 403);
    CHECK_THAT(post->body, Contains("reviewer"));
    CHECK(status(https_get(port, "/v1/conflicts")) == 401);
    CHECK(status(https_post(port, resolve_path, R"({"keep": "loser"})")) == 401);
    CHECK(status(https_get(port, "/v1/quarantine", station_auth)) == 403);
    auto wrong = https_post(port, "/v1/conflicts", "{}", auth);
    CHECK(status(wrong) == 405);
    CHECK(parse_body(wrong).at("code") == "method_not_allowed");
    CHECK(status(https_get(port, resolve_path, auth)) == 405);
    CHECK(status(https_post(port, "/v1/quarantine", "{}", auth)) == 405);
    auto push = https_post(port, "/v1/push", R"({"protocol": 1, "changes": []})", auth);
    CHECK(status(push) == 403);
    CHECK(parse_body(push).at("code") == "forbidden");
    CHECK(query_int(centre.db(), "SELECT count(*) FROM changes") == before);
    CHECK(open_conflicts(centre.db()) == 1);
  }
  {
    INFO("the reviewer reads the same conflicts the CLI lists, filtered by status and station");
    json all = parse_body(https_get(port, "/v1/conflicts", auth));
    CHECK(all.at("conflicts") == listed);
    CHECK(all.at("status") == "open");
    CHECK(all.at("protocol") == 1);
    CHECK(all.at("node_id") == centre_id);
    CHECK(parse_body(https_get(port, "/v1/conflicts?station=TYT-SINHO&status=all", auth)).at("conflicts") == listed);
    auto unknown = https_get(port, "/v1/conflicts?station=TYT-NOWHERE", auth);
    CHECK(status(unknown) == 400);
    CHECK_THAT(unknown->body, Contains("station") && Contains("TYT-NOWHERE"));
    auto bad = https_get(port, "/v1/conflicts?status=closed", auth);
    CHECK(status(bad) == 400);
    CHECK(parse_body(bad).at("error") == "status: must be open or all, got \"closed\"");
  }
  {
    INFO("bad input is a 400 naming the field, an unknown conflict a 404; nothing is written");
    const int64_t before = query_int(centre.db(), "SELECT count(*) FROM changes");
    auto not_json = https_post(port, resolve_path, "keep=loser", auth);
    CHECK(status(not_json) == 400);
    CHECK_THAT(parse_body(not_json).at("error").get<std::string>(), Contains("body: must be a JSON object"));
    auto missing = https_post(port, resolve_path, R"({"note": "no keep"})", auth);
    CHECK(status(missing) == 400);
    CHECK_THAT(parse_body(missing).at("error").get<std::string>(), Contains("keep: is required"));
    auto number = https_post(port, resolve_path, R"({"keep": 5})", auth);
    CHECK(status(number) == 400);
    CHECK_THAT(parse_body(number).at("error").get<std::string>(), Contains("keep: must be a non-empty string"));
    auto note = https_post(port, resolve_path, R"({"keep": "loser", "note": ["x"]})", auth);
    CHECK(status(note) == 400);
    CHECK(parse_body(note).at("error") == "note: must be a string, got [\"x\"]");
    auto version = https_post(port, resolve_path, R"({"protocol": 2, "keep": "loser"})", auth);
    CHECK(status(version) == 400);
    CHECK(parse_body(version).at("code") == "unsupported_protocol");
    auto unknown = https_post(port, "/v1/conflicts/00000000-0000-4000-8000-000000000000/resolve",
                              R"({"keep": "loser"})", auth);
    CHECK(status(unknown) == 404);
    CHECK(parse_body(unknown).at("code") == "not_found");
    CHECK(query_int(centre.db(), "SELECT count(*) FROM changes") == before);
    CHECK(open_conflicts(centre.db()) == 1);
  }

  json decision = parse_body(https_post(
      port, resolve_path, R"({"keep": "loser", "note": "checked by phone with the family"})", auth));
  {
    INFO("the reviewer keeps the losing value: one change under the centre's origin, the conflict closed");
    CHECK(decision.at("id") == conflict);
    CHECK(decision.at("keep") == "loser");
    CHECK(decision.at("value") == "0911111111");
    CHECK(decision.at("closed") == json::array({conflict}));
    CHECK(decision.at("syncs_to") == "TYT-SINHO");
    CHECK(decision.at("conflict") == c1);  // as it was before
    CHECK(decision.at("change").at("origin") == centre_id);
    CHECK(decision.at("change").at("seq") ==
          query_int(centre.db(), "SELECT max(seq) FROM changes"));
    CHECK(query_texts(centre.db(), "SELECT phone FROM patients WHERE id = '" + patient + "'") ==
          std::vector<std::string>{"0911111111"});
    json after = centre.admin({"conflicts", "list", "--all"});
    REQUIRE(after.size() == 1);
    CHECK(after.at(0).at("status") == "resolved");
    CHECK_THAT(after.at(0).at("resolution").get<std::string>(),
               Contains("kept the losing value by ") && Contains(": checked by phone with the family"));
    CHECK(centre.admin({"conflicts", "list"}).empty());
  }
  const std::string resolution = centre.admin({"conflicts", "list", "--all"}).at(0).at("resolution");
  {
    INFO("resolving it again is refused: 409 over the API, exit 1 on the command line");
    auto again = https_post(port, resolve_path, R"({"keep": "winner"})", auth);
    CHECK(status(again) == 409);
    CHECK(parse_body(again).at("error") == "conflict resolve: conflict is already resolved (" + resolution +
                                               "), got \"" + conflict + "\"");
    CliResult twice = server_cli(centre, dir, {"conflicts", "resolve", conflict, "--keep", "winner"});
    CHECK(twice.exit_code == 1);
    CHECK_THAT(twice.err, Contains("error: conflict resolve: conflict is already resolved"));
    CHECK(query_texts(centre.db(), "SELECT phone FROM patients WHERE id = '" + patient + "'") ==
          std::vector<std::string>{"0911111111"});
  }

  a.sync();
  b.sync();
  for (Station* s : {&a, &b}) {
    INFO("device " << s->db() << " took the decision and closed its own conflict with the centre's words");
    CHECK(phone_of(*s, patient) == "0911111111");
    CHECK(s->cli.ok({"conflicts"}).empty());
    json mine = s->cli.ok({"conflicts", "--all"});
    REQUIRE(mine.size() == 1);
    CHECK(mine.at(0).at("status") == "resolved");
    CHECK(mine.at(0).at("resolution") == resolution);
    CHECK(open_conflicts(s->db()) == 0);
    CliResult text = s->cli.run({"conflicts"});
    CHECK(text.exit_code == 0);
    CHECK(text.out == "No open conflicts.\n");
  }

  {
    INFO("an edit made after the decision is an ordinary edit everywhere: no new conflict");
    b.cli.ok({"patient", "update", patient, "--phone", "0944444444"});
    b.sync();
    a.sync();
    CHECK(phone_of(a, patient) == "0944444444");
    CHECK(open_conflicts(centre.db()) == 0);
    CHECK(open_conflicts(a.db()) == 0);
    CHECK(open_conflicts(b.db()) == 0);
  }

  // Offline again, both change the phone and the sex: two new conflicts.
  a.cli.ok({"patient", "update", patient, "--phone", "0955555555", "--sex", "male"});
  b.cli.ok({"patient", "update", patient, "--phone", "0966666666", "--sex", "other"});
  a.sync();
  b.sync();
  a.sync();
  json open = centre.admin({"conflicts", "list"});
  REQUIRE(open.size() == 2);
  CHECK(open_conflicts(a.db()) == 2);
  CHECK(open_conflicts(b.db()) == 2);
  std::string phone_conflict, sex_conflict;
  for (const auto& c : open) (c.at("field") == "phone" ? phone_conflict : sex_conflict) = c.at("id").get<std::string>();
  REQUIRE(!phone_conflict.empty());
  REQUIRE(!sex_conflict.empty());
  {
    INFO("the operator writes another value (by an 8-character prefix); a value the field refuses is an error");
    CliResult bad = server_cli(centre, dir, {"conflicts", "resolve", sex_conflict, "--keep", "robot"});
    CHECK(bad.exit_code == 1);
    CHECK_THAT(bad.err, Contains("sex has an unknown value \"robot\""));
    auto bad_api = https_post(port, "/v1/conflicts/" + sex_conflict + "/resolve", R"({"keep": "robot"})", auth);
    CHECK(status(bad_api) == 400);
    CHECK_THAT(bad_api->body, Contains("sex has an unknown value"));
    CHECK(open_conflicts(centre.db()) == 2);

    CliResult text = server_cli(centre, dir,
                                {"conflicts", "resolve", phone_conflict.substr(0, 8), "--keep", "0977777777", "--note",
                                 "the number the family gave at the visit"});
    INFO(text.describe());
    REQUIRE(text.exit_code == 0);
    CHECK_THAT(text.out, Contains("Resolved conflict " + phone_conflict.substr(0, 8) + " (patient " +
                                  patient.substr(0, 8) + ", phone): set another value, 0977777777."));
    CHECK_THAT(text.out, Contains("Closed 1 conflict: " + phone_conflict));
    CHECK_THAT(text.out, Contains("syncs to station TYT-SINHO on its devices' next sync"));
    CliResult twice = server_cli(centre, dir, {"conflicts", "resolve", phone_conflict, "--keep", "loser", "--json"});
    CHECK(twice.exit_code == 1);
    CHECK_THAT(twice.parsed().at("error").get<std::string>(), Contains("is already resolved"));

    // The sex conflict over the API, keeping the winner (b's "other", which stands now).
    json winner = parse_body(https_post(port, "/v1/conflicts/" + sex_conflict + "/resolve", R"({"keep": "winner"})",
                                        auth));
    CHECK(winner.at("keep") == "winner");
    CHECK(winner.at("value") == "other");
    CHECK(winner.at("closed") == json::array({sex_conflict}));
    CHECK(open_conflicts(centre.db()) == 0);
  }
  a.sync();
  b.sync();
  for (Station* s : {&a, &b}) {
    INFO("device " << s->db() << " holds the values decided; every conflict it recorded is resolved");
    json shown = s->cli.ok({"patient", "show", patient});
    CHECK(shown.at("phone") == "0977777777");
    CHECK(shown.at("sex") == "other");
    json mine = s->cli.ok({"conflicts", "--all"});
    CHECK(mine.size() == 3);
    for (const auto& c : mine) CHECK(c.at("status") == "resolved");
    std::set<std::string> centre_texts;
    for (const auto& c : centre.admin({"conflicts", "list", "--all", "--station", "TYT-SINHO"})) {
      if (c.at("field") == "phone") centre_texts.insert(c.at("resolution").get<std::string>());
    }
    CHECK(centre_texts.size() == 2);
    CHECK(ids(s->db(), "SELECT resolution FROM conflicts WHERE field = 'phone'") == centre_texts);
  }
  // Now that all are decided the status filter tells them apart.
  CHECK(parse_body(https_get(port, "/v1/conflicts", auth)).at("conflicts").empty());
  CHECK(parse_body(https_get(port, "/v1/conflicts?status=all", auth)).at("conflicts").size() == 3);
  CHECK(centre.admin({"conflicts", "list"}).empty());
}

TEST_CASE("changes held for a clock a month ahead are released or dropped at the centre, and reviewers only read them",
          "[e2e][review]") {
  INFO("the tablet runs under libfaketime (Debian package faketime, installed by scripts/setup.sh)");
  REQUIRE(std::filesystem::exists(kFaketime));
  TempDir dir;
  Centre centre(dir);
  Station a(dir, "sinho");
  a.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  a.sync();
  Station tablet(dir, "tablet");
  tablet.enroll(centre, centre.device_code("TYT-SINHO", "station"));
  tablet.sync();
  const std::string dev_tablet = device_of(tablet.db());

  // 30.5 days ahead: whole days count, so the reason says 30 however long the test takes.
  at_fake_time(tablet, "+732h");
  const std::string released = tablet.patient("Lò Thị Dung");
  const std::string dropped = tablet.patient("Lò Văn Sáng");
  json pushed = tablet.sync();
  CHECK(pushed.at("server").at("quarantined") == 2);
  CHECK(pushed.at("server").at("applied") == 0);

  const std::string reason =
      "hlc is 30 days ahead of this node's clock: the writing device's clock is wrong; held for review";
  json held = centre.admin({"quarantine", "list"});
  REQUIRE(held.is_array());
  REQUIRE(held.size() == 2);
  {
    INFO("both changes are held with their reason, never applied");
    const std::vector<std::string> records{released, dropped};
    for (size_t i = 0; i < 2; ++i) {
      const json& e = held.at(i);
      CHECK(e.at("record_id") == records[i]);
      CHECK(e.at("kind") == "patient");
      CHECK(e.at("station") == "TYT-SINHO");
      CHECK(e.at("origin") == dev_tablet);
      CHECK(e.at("from_peer") == dev_tablet);
      CHECK(e.at("origin_seq") == static_cast<int64_t>(i + 1));
      CHECK(e.at("reason") == reason);
      CHECK(e.at("status") == "held");
      CHECK(e.at("decided_at").is_null());
      CHECK(e.at("decision").is_null());
    }
    CHECK(held.at(0).at("payload").at("fields").at("name") == "Lò Thị Dung");
    CHECK(query_int(centre.db(), "SELECT count(*) FROM patients WHERE id IN ('" + released + "', '" + dropped +
                                     "')") == 0);
    CliResult table = server_cli(centre, dir, {"quarantine", "list"});
    REQUIRE(table.exit_code == 0);
    CHECK_THAT(table.out, Contains("TYT-SINHO") && Contains("hlc is 30 days ahead") && Contains("held"));
  }

  const int port = centre.server().port;
  const std::string token = reviewer_token(centre, dir);
  {
    INFO("a reviewer reads the same list; station tokens get 403; the API has no release or drop");
    json api = parse_body(https_get(port, "/v1/quarantine", bearer(token)));
    CHECK(api.at("quarantine") == held);
    CHECK(api.at("status") == "held");
    CHECK(parse_body(https_get(port, "/v1/quarantine?status=all", bearer(token))).at("quarantine") == held);
    auto bad = https_get(port, "/v1/quarantine?status=dropped", bearer(token));
    CHECK(status(bad) == 400);
    CHECK(parse_body(bad).at("error") == "status: must be held or all, got \"dropped\"");
    auto station = https_get(port, "/v1/quarantine", bearer(token_of(a.db())));
    CHECK(status(station) == 403);
    CHECK_THAT(station->body, Contains("reviewer"));
    CHECK(status(https_get(port, "/v1/quarantine")) == 401);
    CHECK(status(https_post(port, "/v1/quarantine", R"({"release": 1})", bearer(token))) == 405);
    CHECK(status(https_post(port, "/v1/quarantine/1/release", "{}", bearer(token))) == 404);
  }

  const int64_t first = held.at(0).at("id"), second = held.at(1).at("id");
  {
    INFO("release applies the first with the centre's authority; it reaches the station's laptop");
    json r = centre.admin({"quarantine", "release", std::to_string(first), "--note", "tablet clock corrected"});
    CHECK(r.at("id") == first);
    CHECK(r.at("status") == "released");
    CHECK(r.at("reason") == reason);
    CHECK(r.at("decided_at").is_string());
    // Taken at the centre's own time, as its change: with the tablet's hlc it
    // would move the centre's clock (and every device's after a pull) a month on.
    CHECK_THAT(r.at("decision").get<std::string>(),
               Contains("released by ") &&
                   Contains("; applied as this node's change at its own time (the writing device's clock was 30 days "
                            "ahead): tablet clock corrected"));
    CHECK(query_int(centre.db(), "SELECT count(*) FROM changes WHERE origin = '" + dev_tablet + "'") == 0);
    CHECK(r.at("seq") == query_int(centre.db(), "SELECT max(seq) FROM changes WHERE record_id = '" + released + "'"));
    CHECK(r.at("conflicts") == 0);
    CHECK(query_texts(centre.db(), "SELECT name FROM patients WHERE id = '" + released + "'") ==
          std::vector<std::string>{"Lò Thị Dung"});
    CliResult again = server_cli(centre, dir, {"quarantine", "release", std::to_string(first)});
    CHECK(again.exit_code == 1);
    CHECK_THAT(again.err, Contains("was already decided: released"));

    a.sync();
    json shown = a.cli.ok({"patient", "show", released});
    CHECK(shown.at("name") == "Lò Thị Dung");
    CHECK(shown.at("station_id") == query_texts(a.db(), "SELECT value FROM meta WHERE key = 'station_id'").at(0));
    // The laptop's clock was not carried a month on by it: its next record is taken, not held.
    const std::string next = a.cli.ok({"patient", "add", "--name", "Tòng Văn Khoa", "--sex", "male", "--birth",
                                       "1962", "--village", "Bản Hon"})
                                 .at("id");
    a.sync();
    CHECK(query_texts(centre.db(), "SELECT name FROM patients WHERE id = '" + next + "'") ==
          std::vector<std::string>{"Tòng Văn Khoa"});
    CHECK(query_int(centre.db(), "SELECT count(*) FROM quarantine WHERE status = 'held'") == 1);  // the second only
  }
  {
    INFO("drop needs a reason; the second is recorded as dropped with it and never applied");
    CliResult no_reason = server_cli(centre, dir, {"quarantine", "drop", std::to_string(second)});
    CHECK(no_reason.exit_code == 2);
    CHECK_THAT(no_reason.err, Contains("--reason"));
    CliResult blank = server_cli(centre, dir, {"quarantine", "drop", std::to_string(second), "--reason", "  "});
    CHECK(blank.exit_code == 1);
    CHECK_THAT(blank.err, Contains("reason"));
    CliResult unknown = server_cli(centre, dir, {"quarantine", "drop", "999", "--reason", "x"});
    CHECK(unknown.exit_code == 1);
    CHECK_THAT(unknown.err, Contains("quarantine entry must name an existing record, got \"999\""));

    json d = centre.admin({"quarantine", "drop", std::to_string(second), "--reason", "entered twice"});
    CHECK(d.at("id") == second);
    CHECK(d.at("status") == "dropped");
    CHECK_THAT(d.at("decision").get<std::string>(), Contains("dropped by ") && Contains(": entered twice"));
    CHECK(centre.admin({"quarantine", "list"}).empty());
    json all = centre.admin({"quarantine", "list", "--all"});
    REQUIRE(all.size() == 2);
    CHECK(all.at(0).at("status") == "released");
    CHECK(all.at(1).at("status") == "dropped");
    CHECK(all.at(1).at("decision") == d.at("decision"));
    CHECK(parse_body(https_get(port, "/v1/quarantine", bearer(token))).at("quarantine").empty());
    CHECK(parse_body(https_get(port, "/v1/quarantine?status=all", bearer(token))).at("quarantine") == all);
    CHECK(query_int(centre.db(), "SELECT count(*) FROM patients WHERE id = '" + dropped + "'") == 0);
    CHECK(query_int(centre.db(), "SELECT count(*) FROM changes WHERE record_id = '" + dropped + "'") == 0);
    CliResult release_dropped = server_cli(centre, dir, {"quarantine", "release", std::to_string(second)});
    CHECK(release_dropped.exit_code == 1);
    CHECK_THAT(release_dropped.err, Contains("was already decided: dropped"));

    a.sync();
    CHECK(query_int(a.db(), "SELECT count(*) FROM patients WHERE id = '" + dropped + "'") == 0);
    CHECK(a.cli.run({"patient", "show", dropped}).exit_code == 1);
  }
}

}  // namespace tramsync::e2e
