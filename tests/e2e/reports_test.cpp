// The centre's reports across stations, end to end: real stations (station-cli
// under libfaketime where a situation lies in the past) sync with a real
// tramsync-server over TLS; `tramsync-server report` and GET /v1/reports/NAME
// must find each seeded situation with the right numbers, say which stations'
// data is stale, and give the same rows as CSV.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "sync_fixture.h"
#include "tramsync/core/central.h"
#include "tramsync/core/time.h"

namespace tramsync::e2e {

namespace {

using Catch::Matchers::Contains;


// Vietnam's date (UTC+7) `days` before now, or the local time.
std::string day_ago(int days) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return local_time_from_ms(now - int64_t{days} * 86'400'000, kDefaultUtcOffsetMinutes).substr(0, 10);
}
std::string time_ago(int days, const std::string& hm = "08:00") { return day_ago(days) + "T" + hm; }

// station-cli runs as if it were `days` days ago (libfaketime), until back_to_now().
void in_the_past(Station& s, int days) { at_fake_time(s, "-" + std::to_string(days) + "d"); }
void back_to_now(Station& s) { at_real_time(s); }

const json& table(const json& report, const std::string& name) {
  for (const auto& t : report.at("tables")) {
    if (t.at("name") == name) return t;
  }
  FAIL("report " << report.value("report", "?") << " has no table " << name);
  throw std::logic_error("unreachable");
}

// The rows of `t` whose `key` column is `value`.
std::vector<json> rows_where(const json& t, const std::string& key, const std::string& value) {
  std::vector<json> out;
  for (const auto& r : t.at("rows")) {
    if (r.at(key).is_string() && r.at(key) == value) out.push_back(r);
  }
  return out;
}
json one_row(const json& t, const std::string& key, const std::string& value) {
  auto rows = rows_where(t, key, value);
  INFO("table " << t.at("name") << " where " << key << " = " << value << ": " << json(rows).dump());
  REQUIRE(rows.size() == 1);
  return rows[0];
}

// A JSON cell as the CSV writes it.
std::string cell_text(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.2f", v.get<double>());
  std::string s = buf;
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  return s;
}

// RFC 4180, as a spreadsheet reads it: records of fields; an empty line ends a table.
std::vector<std::vector<std::vector<std::string>>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::vector<std::string>>> tables(1);
  std::vector<std::string> rec;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (quoted) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        field += ch;
      }
      continue;
    }
    if (ch == '"') {
      quoted = any = true;
    } else if (ch == ',') {
      rec.push_back(field);
      field.clear();
      any = true;
    } else if (ch == '\r') {
      continue;
    } else if (ch == '\n') {
      if (!any && field.empty() && rec.empty()) {
        tables.emplace_back();
      } else {
        rec.push_back(field);
        tables.back().push_back(rec);
      }
      rec.clear();
      field.clear();
      any = false;
    } else {
      field += ch;
      any = true;
    }
  }
  return tables;
}

void check_csv_matches(const json& report, const std::string& csv) {
  auto tables = parse_csv(csv);
  const json& js = report.at("tables");
  REQUIRE(tables.size() == js.size());
  for (size_t t = 0; t < js.size(); ++t) {
    const auto& cols = js[t].at("columns");
    const auto& rows = js[t].at("rows");
    INFO("table " << js[t].at("name"));
    REQUIRE(tables[t].size() == rows.size() + 1);
    CHECK(tables[t][0] == cols.get<std::vector<std::string>>());
    for (size_t r = 0; r < rows.size(); ++r) {
      std::vector<std::string> expected;
      for (const auto& c : cols) expected.push_back(cell_text(rows[r].at(c.get<std::string>())));
      CHECK(tables[t][r + 1] == expected);
    }
  }
}

}  // namespace

TEST_CASE("the centre's reports find each seeded situation with the right numbers, freshness and CSV",
          "[e2e][reports]") {
  INFO("stations run under libfaketime (Debian package faketime, installed by scripts/setup.sh)");
  REQUIRE(std::filesystem::exists(kFaketime));
  TempDir dir;
  Centre centre(dir);
  centre.admin({"item", "add", "--code", "AMLO5", "--name", "Amlodipin 5mg", "--unit", "tablet"});

  // Mường Tè: last synced ten days ago (its sync reached a server running ten days back), silent since.
  centre.admin({"station", "add", "--code", "TYT-MUONGTE", "--name", "Trạm Y tế xã Mường Tè", "--district",
                "Mường Tè", "--province", "Lai Châu"});
  Station c(dir, "muongte");
  {
    in_the_past(c, 10);
    auto past = ServerProcess::start(centre.db(), dir.file("tls"), {}, dir.file("past-server.log"),
                                     faketime_env("-10d"));
    c.cli.ok({"init", "--station", "TYT-MUONGTE", "--name", "Trạm Y tế xã Mường Tè"});
    c.cli.ok({"enroll", "--server", past->url, "--code", centre.device_code("TYT-MUONGTE", "station"), "--pin",
              past->fingerprint});
    c.cli.ok({"patient", "add", "--name", "Lò Văn Páo", "--sex", "male", "--birth", "1950", "--village", "Pa Ủ",
              "--category", "covid-home"});
    c.sync();
    past->stop();
  }

  // Sìn Hồ: a covid-home patient not seen for three days, a lapsed refill, an item under reserve.
  Station a(dir, "sinho");
  a.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  a.sync();  // the catalogue
  in_the_past(a, 3);
  const std::string covid = a.cli.ok({"patient", "add", "--name", "Giàng Thị Mai", "--sex", "female", "--birth",
                                      "1990", "--village", "Bản Mới", "--category", "covid-home"})
                                .at("id");
  back_to_now(a);
  const std::string seen = a.cli.ok({"patient", "add", "--name", "Vàng Văn Sử", "--sex", "male", "--birth", "1985",
                                     "--village", "Bản Mới", "--category", "covid-home"})
                               .at("id");
  a.cli.ok({"visit", "add", seen, "--temp", "37.5"});
  const std::string chronic = a.cli.ok({"patient", "add", "--name", "Lý Văn Lềnh", "--sex", "male", "--birth", "1955",
                                        "--village", "Nậm Cuổi", "--category", "chronic", "--condition",
                                        "hypertension"})
                                  .at("id");
  a.cli.ok({"stock", "receive", "--item", "AMLO5", "--qty", "50", "--lot", "L1", "--expiry", "2035-12-31", "--at",
            time_ago(25)});
  a.cli.ok({"dispense", chronic, "--item", "AMLO5", "--qty", "30", "--days", "10", "--at", time_ago(20)});
  a.cli.ok({"item", "reserve", "AMLO5", "100"});
  a.sync();

  // A second device of Sìn Hồ and the laptop edit one phone number offline: a conflict at the centre.
  Station a2(dir, "sinho-2");
  a2.enroll(centre, centre.device_code("TYT-SINHO", "station"));
  a2.sync();
  a.cli.ok({"patient", "update", seen, "--phone", "0911111111"});
  a2.cli.ok({"patient", "update", seen, "--phone", "0922222222"});
  a.sync();
  a2.sync();

  // Nậm Tăm: a waste batch handed over four days ago and never treated. Ages
  // are whole days elapsed, so the times are midnight: at 08:00 the ages
  // were a day less whenever the test ran before 08:00 in Vietnam.
  centre.admin({"station", "add", "--code", "TYT-NAMTAM", "--name", "Trạm Y tế xã Nậm Tăm", "--district", "Sìn Hồ",
                "--province", "Lai Châu"});
  Station b(dir, "namtam");
  b.cli.ok({"init", "--station", "TYT-NAMTAM", "--name", "Trạm Y tế xã Nậm Tăm"});
  b.enroll(centre, centre.device_code("TYT-NAMTAM", "station"));
  const std::string batch =
      b.cli.ok({"waste", "add", "--kind", "infectious", "--bags", "3", "--weight-kg", "4.5", "--at", time_ago(5, "00:00")})
          .at("id");
  b.cli.ok({"waste", "move", batch, "--stage", "handed-over", "--to", "Công ty Môi trường Lai Châu", "--at",
            time_ago(4, "00:00")});
  b.sync();

  const std::string sinho_id = query_texts(centre.db(), "SELECT id FROM stations WHERE code = 'TYT-SINHO'").at(0);

  {
    INFO("stations: the silent station first, with its days; activity, devices, conflicts");
    json r = centre.admin({"report", "stations"});
    const json& t = table(r, "stations");
    REQUIRE(t.at("rows").size() == 3);
    const json& first = t.at("rows").at(0);
    CHECK(first.at("station_code") == "TYT-MUONGTE");
    CHECK(first.at("days_since_sync") == 10);
    CHECK(first.at("stale") == "yes");
    CHECK(first.at("changes_received_7d") == 0);
    CHECK(r.at("stale_stations") == json::array({"TYT-MUONGTE"}));
    json s = one_row(t, "station_code", "TYT-SINHO");
    CHECK(s.at("stale") == "no");
    CHECK(s.at("days_since_sync") == 0);
    CHECK(s.at("devices") == 2);
    CHECK(s.at("conflicts_open") == 1);
    CHECK(s.at("quarantined_held") == 0);
    CHECK(s.at("changes_received_7d") ==
          query_int(centre.db(), "SELECT count(*) FROM changes WHERE from_peer IS NOT NULL AND station_id = '" +
                                     sinho_id + "'"));
    CHECK(one_row(t, "station_code", "TYT-NAMTAM").at("stale") == "no");
    REQUIRE(r.at("notes").size() == 1);
    CHECK_THAT(r.at("notes").at(0).get<std::string>(), Contains("TYT-MUONGTE"));
  }

  {
    INFO("stock: under reserve with the shortfall, the dispensing rate and days left, province totals");
    json r = centre.admin({"report", "stock"});
    json s = one_row(table(r, "stock"), "station_code", "TYT-SINHO");
    CHECK(s.at("item_code") == "AMLO5");
    CHECK(s.at("on_hand") == 20);
    CHECK(s.at("reserve") == 100);
    CHECK(s.at("under_reserve") == "yes");
    CHECK(s.at("short_by") == 80);
    CHECK(s.at("dispensed_30d") == 30);
    CHECK(s.at("days_left") == 20);
    CHECK(s.at("expiring_30d") == 0);
    json p = one_row(table(r, "province_totals"), "item_code", "AMLO5");
    CHECK(p.at("on_hand") == 20);
    CHECK(p.at("stations_under_reserve") == 1);
    CHECK(p.at("stale_stations") == 0);
  }

  {
    INFO("daily: a row per station and totals that name the stale station");
    json r = centre.admin({"report", "daily"});
    CHECK(r.at("date") == day_ago(0));
    json s = one_row(table(r, "stations"), "station_code", "TYT-SINHO");
    CHECK(s.at("under_care") == 3);
    CHECK(s.at("covid_home") == 2);
    CHECK(s.at("chronic") == 1);
    CHECK(s.at("visits") == 1);
    CHECK(s.at("overdue") == 1);  // the covid-home patient (refills are in followup)
    CHECK(s.at("items_under_reserve") == 1);
    const json& tot = table(r, "totals").at("rows").at(0);
    CHECK(tot.at("under_care") == 4);
    CHECK(tot.at("waste_pending") == 1);
    CHECK(tot.at("stale_stations") == 1);
  }

  {
    INFO("filters: a district (diacritics-insensitive), a station; unknown ones are clear errors");
    json r = centre.admin({"report", "stations", "--district", "SIN HO"});
    CHECK(table(r, "stations").at("rows").size() == 2);
    CHECK(r.at("stale_stations").empty());
    CliResult bad = spawn_and_capture(kTramsyncServer,
                                      {"report", "stations", "--district", "Phong Thổ", "--db", centre.db()}, {},
                                      dir.path().string());
    CHECK(bad.exit_code == 1);
    CHECK_THAT(bad.err, Contains("district") && Contains("Phong Thổ"));
    CliResult unknown = spawn_and_capture(kTramsyncServer, {"report", "everything", "--db", centre.db()}, {},
                                          dir.path().string());
    CHECK(unknown.exit_code == 1);
    CHECK_THAT(unknown.err, Contains("stations, followup, stock, waste, daily"));
  }

  {
    INFO("CSV holds the same rows as JSON, for every report");
    for (const auto& name : kCentralReports) {
      INFO("report " << name);
      json r = centre.admin({"report", name});
      const std::string csv_file = dir.file(name + ".csv");
      CliResult c1 = spawn_and_capture(kTramsyncServer, {"report", name, "--csv", "--output", csv_file, "--db",
                                                         centre.db()},
                                       {}, dir.path().string());
      REQUIRE(c1.exit_code == 0);
      std::ifstream in(csv_file, std::ios::binary);
      std::string csv((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      check_csv_matches(r, csv);
    }
  }

  {
    INFO("the API: reviewers read every report; station tokens get 403; the reviewer cannot push");
    const auto auth = bearer(reviewer_token(centre, dir));
    for (const auto& name : kCentralReports) {
      auto res = https_get(centre.server().port, "/v1/reports/" + name, auth);
      REQUIRE(res);
      INFO(res->body);
      CHECK(res->status == 200);
      json api = json::parse(res->body);
      json cli = centre.admin({"report", name});
      for (size_t t = 0; t < cli.at("tables").size(); ++t) {
        CHECK(api.at("tables").at(t).at("rows") == cli.at("tables").at(t).at("rows"));
      }
    }
    auto filtered = https_get(centre.server().port, "/v1/reports/followup?station=TYT-SINHO&covid_days=5", auth);
    REQUIRE(filtered);
    REQUIRE(filtered->status == 200);
    json f = json::parse(filtered->body);
    CHECK(one_row(table(f, "by_station"), "station_code", "TYT-SINHO").at("overdue_covid_home") == 0);
    auto csv = https_get(centre.server().port, "/v1/reports/stock?format=csv", auth);
    REQUIRE(csv);
    CHECK(csv->status == 200);
    CHECK_THAT(csv->get_header_value("Content-Type"), Contains("text/csv"));
    check_csv_matches(centre.admin({"report", "stock"}), csv->body);

    auto station = https_get(centre.server().port, "/v1/reports/followup", bearer(token_of(a.db())));
    REQUIRE(station);
    CHECK(station->status == 403);
    CHECK_THAT(station->body, Contains("reviewer"));
    auto none = https_get(centre.server().port, "/v1/reports/followup");
    REQUIRE(none);
    CHECK(none->status == 401);
    auto unknown = https_get(centre.server().port, "/v1/reports/nonsense", auth);
    REQUIRE(unknown);
    CHECK(unknown->status == 404);
    auto bad = https_get(centre.server().port, "/v1/reports/stations?stale_days=-4", auth);
    REQUIRE(bad);
    CHECK(bad->status == 400);
    CHECK_THAT(bad->body, Contains("stale_days"));
    auto bad_limit = https_get(centre.server().port, "/v1/reports/followup?limit=-1", auth);
    REQUIRE(bad_limit);
    CHECK(bad_limit->status == 400);
    CHECK_THAT(bad_limit->body, Contains("limit"));
    auto all_listed = https_get(centre.server().port, "/v1/reports/followup?limit=1", auth);
    REQUIRE(all_listed);
    REQUIRE(all_listed->status == 200);
    CHECK(json::parse(all_listed->body).at("tables") ==
          centre.admin({"report", "followup", "--limit", "1"}).at("tables"));
    const int64_t before = query_int(centre.db(), "SELECT count(*) FROM changes");
    auto post = https_post(centre.server().port, "/v1/reports/stations", "{}", auth);
    REQUIRE(post);
    CHECK(post->status == 405);
    auto push = https_post(centre.server().port, "/v1/push", R"({"protocol": 1, "changes": []})", auth);
    REQUIRE(push);
    CHECK(push->status == 403);
    CHECK(query_int(centre.db(), "SELECT count(*) FROM changes") == before);
  }
  {
    INFO("followup: the overdue covid-home patient and the lapsed refill, per station; the stale one named");
    json r = centre.admin({"report", "followup"});
    json s = one_row(table(r, "by_station"), "station_code", "TYT-SINHO");
    CHECK(s.at("overdue_covid_home") == 1);
    CHECK(s.at("overdue_other") == 0);
    CHECK(s.at("lapsed_refills") == 1);
    json o = one_row(table(r, "overdue"), "patient_id", covid);
    CHECK(o.at("station_code") == "TYT-SINHO");
    CHECK(o.at("days_without_contact") == 3);
    CHECK(o.at("limit_days") == 1);
    CHECK(rows_where(table(r, "overdue"), "patient_id", seen).empty());
    json l = one_row(table(r, "lapsed_refills"), "patient_id", chronic);
    CHECK(l.at("item_code") == "AMLO5");
    CHECK(l.at("ran_out_on") == day_ago(10));
    CHECK(l.at("days_without") == 10);
    // Mường Tè's covid-home patient is overdue too, and its row says the data is stale.
    json m = one_row(table(r, "by_station"), "station_code", "TYT-MUONGTE");
    CHECK(m.at("overdue_covid_home") == 1);
    CHECK(m.at("stale") == "yes");
    CHECK(r.at("stale_stations") == json::array({"TYT-MUONGTE"}));
    // A visit today takes the patient off the list.
    a.cli.ok({"visit", "add", covid, "--temp", "37.0"});
    a.sync();
    json after = centre.admin({"report", "followup", "--station", "TYT-SINHO"});
    CHECK(one_row(table(after, "by_station"), "station_code", "TYT-SINHO").at("overdue_covid_home") == 0);
    CHECK(table(after, "by_station").at("rows").size() == 1);
    CHECK(after.at("stale_stations").empty());
  }

  {
    INFO("waste: the batch handed over and never treated, by stage and age; totals by kind");
    json r = centre.admin({"report", "waste"});
    json s = one_row(table(r, "by_station"), "station_code", "TYT-NAMTAM");
    CHECK(s.at("stage") == "handed-over");
    CHECK(s.at("batches") == 1);
    CHECK(s.at("weight_kg") == Approx(4.5));
    CHECK(s.at("oldest_days") == 5);
    json p = one_row(table(r, "pending"), "batch_id", batch);
    CHECK(p.at("holder") == "Công ty Môi trường Lai Châu");
    CHECK(p.at("age_days") == 5);
    json k = one_row(table(r, "totals_by_kind"), "kind", "infectious");
    CHECK(k.at("batches") == 1);
    // Treated, it leaves the report.
    b.cli.ok({"waste", "move", batch, "--stage", "treated"});
    b.sync();
    json after = centre.admin({"report", "waste", "--station", "TYT-NAMTAM"});
    CHECK(table(after, "pending").at("rows").empty());
  }

  {
    INFO("a duplicate person: Sìn Hồ's chronic patient moved and was registered again at Nậm Tăm (written "
         "without diacritics), which gives his medicine now; linked, the reports count him once");
    const std::string again = b.cli.ok({"patient", "add", "--name", "LY VAN LENH", "--sex", "male", "--birth",
                                        "1955", "--village", "Nam Cuoi", "--category", "chronic"})
                                  .at("id");
    b.cli.ok({"stock", "receive", "--item", "AMLO5", "--qty", "30", "--lot", "N1", "--expiry", "2035-12-31"});
    b.cli.ok({"dispense", again, "--item", "AMLO5", "--qty", "30", "--days", "30"});
    b.sync();

    json pairs = centre.admin({"duplicates", "list"});
    REQUIRE(pairs.size() == 1);
    const json& pair = pairs.at(0);
    CHECK(pair.at("a").at("id") == again);  // TYT-NAMTAM sorts before TYT-SINHO
    CHECK(pair.at("b").at("id") == chronic);
    CHECK(pair.at("same_name_birth") == true);
    CHECK(pair.at("same_national_id") == false);
    CHECK(pair.at("village_distance") == 0);
    CHECK(centre.admin({"duplicates", "list", "--station", "TYT-MUONGTE"}).empty());
    CHECK(centre.admin({"duplicates", "list", "--district", "sin ho"}).size() == 1);

    // Before the link: two people under care, the one at Sìn Hồ without medicine.
    CHECK(one_row(table(centre.admin({"report", "followup"}), "by_station"), "station_code", "TYT-SINHO")
              .at("lapsed_refills") == 1);
    CHECK(table(centre.admin({"report", "daily"}), "totals").at("rows").at(0).at("under_care") == 5);

    json merged = centre.admin({"duplicates", "merge", again, chronic});
    CHECK(merged.at("keep") == again);
    CHECK(merged.at("other") == chronic);
    CHECK(merged.at("changes").size() == 1);
    CliResult twice = spawn_and_capture(kTramsyncServer, {"duplicates", "merge", again, chronic, "--db", centre.db()},
                                        {}, dir.path().string());
    CHECK(twice.exit_code == 1);
    CHECK_THAT(twice.err, Contains("already linked"));
    CHECK(centre.admin({"duplicates", "list"}).empty());

    // After: one person, counted under the record kept (Nậm Tăm), who has his medicine.
    json f = centre.admin({"report", "followup"});
    CHECK(one_row(table(f, "by_station"), "station_code", "TYT-SINHO").at("lapsed_refills") == 0);
    CHECK(rows_where(table(f, "lapsed_refills"), "patient_id", chronic).empty());
    json d = centre.admin({"report", "daily"});
    CHECK(table(d, "totals").at("rows").at(0).at("under_care") == 4);
    CHECK(one_row(table(d, "stations"), "station_code", "TYT-SINHO").at("under_care") == 2);
    CHECK(one_row(table(d, "stations"), "station_code", "TYT-NAMTAM").at("under_care") == 1);

    // The link reaches Sìn Hồ on its next sync; both histories stay.
    a.sync();
    json shown = a.cli.ok({"patient", "show", chronic});
    CHECK(shown.at("same_as") == again);
    CHECK(shown.at("same_as_station") == "TYT-NAMTAM");
    CHECK(shown.at("dispensings").size() == 1);
    CHECK(b.cli.ok({"patient", "show", again}).at("same_as").is_null());

    // A wrong link is undone the same way; the pair is a candidate again.
    json unlinked = centre.admin({"duplicates", "unlink", chronic});
    CHECK(unlinked.at("was_linked_to") == again);
    CHECK(centre.admin({"duplicates", "list"}).size() == 1);
    CHECK(table(centre.admin({"report", "daily"}), "totals").at("rows").at(0).at("under_care") == 5);
    a.sync();
    CHECK(a.cli.ok({"patient", "show", chronic}).at("same_as").is_null());
  }
}

}  // namespace tramsync::e2e
