// A whole day at a commune health station, driven through the real station-cli.
//
// The day's work is recorded the next morning: every event carries --at on
// YESTERDAY (Vietnam time), and `report daily --date YESTERDAY` is checked. The
// patients are registered "now" (patient add has no --at), which the report
// assertions below take into account.
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli_runner.h"
#include "e2e_support.h"

namespace tramsync::e2e {
namespace {

// Runs successful writes and remembers, in order, the change each must log:
// its kind and, where the command printed it, the record id.
class Recorder {
 public:
  explicit Recorder(const CliRunner& cli) : cli_(cli) {}

  json write(const std::vector<std::string>& args, const std::vector<std::string>& kinds) {
    json j = cli_.ok(args);
    std::vector<std::optional<std::string>> ids(kinds.size());
    if (j.contains("ids") && j.at("ids").size() == kinds.size()) {
      for (size_t i = 0; i < kinds.size(); ++i) ids[i] = j.at("ids").at(i).get<std::string>();
    } else if (kinds.size() == 1 && j.contains("id")) {
      ids[0] = j.at("id").get<std::string>();
    } else if (kinds.size() == 1 && j.contains("station_id")) {
      ids[0] = j.at("station_id").get<std::string>();
    }
    for (size_t i = 0; i < kinds.size(); ++i) expected_.emplace_back(kinds[i], ids[i]);
    return j;
  }

  const std::vector<std::pair<std::string, std::optional<std::string>>>& expected() const { return expected_; }

 private:
  const CliRunner& cli_;
  std::vector<std::pair<std::string, std::optional<std::string>>> expected_;
};

const json& find_by(const json& arr, const std::string& key, const std::string& value) {
  for (const auto& e : arr) {
    if (e.contains(key) && e.at(key) == value) return e;
  }
  FAIL("no element with " << key << " = " << value << " in " << arr.dump());
  static const json kNone;
  return kNone;
}

std::vector<std::string> sorted_strings(const json& arr) {
  std::vector<std::string> v = arr.get<std::vector<std::string>>();
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("a whole station day", "[e2e][day]") {
  StationFixture st;
  // The station keeps Vietnam time whatever zone the laptop is set to: run the
  // program in a zone 7 hours ahead of Vietnam (UTC+14).
  st.cli.set_env("TZ", "KIR-14");
  const std::string today = vn_day(0), Y = vn_day(-1), before = vn_day(-2);
  INFO("Vietnam today " << today << ", the day recorded " << Y);
  auto at = [&](const std::string& hhmm) { return Y + "T" + hhmm; };
  Recorder w(st.cli);

  // --- the station, its households and patients ---------------------------------
  const json init = w.write({"init", "--station", "TYT-SINHO", "--name", "Trạm Y tế xã Sìn Hồ", "--device",
                             "laptop-1", "--district", "Sìn Hồ", "--province", "Lai Châu"},
                            {"station"});
  const std::string device_id = init.at("device_id");

  const std::string hh = w.write({"household", "add", "--village", "Bản Mới", "--head", "Nguyễn Văn An", "--address",
                                  "Ngõ 3, cạnh nhà văn hoá \"Bản Mới\""},
                                 {"household"})
                             .at("id");
  const std::string an = w.write({"patient", "add", "--name", "Nguyễn Văn An", "--sex", "male", "--birth",
                                  "1948-03-02", "--village", "Bản Mới", "--household", hh, "--category", "elderly",
                                  "--category", "chronic", "--condition", "tăng huyết áp", "--phone", "0912 345 678"},
                                 {"patient"})
                             .at("id");
  const std::string hoa = w.write({"patient", "add", "--name", "Đặng Thị Hoa", "--sex", "female", "--birth", "1962",
                                   "--village", "Thôn Nậm Tăm", "--category", "chronic", "--condition",
                                   "đái tháo đường", "--condition", "tăng huyết áp"},
                                  {"patient"})
                              .at("id");
  const std::string lan = w.write({"patient", "add", "--name", "Hoàng Thị Lan", "--sex", "female", "--birth",
                                   "1990-07-15", "--village", "Bản Mới", "--category", "covid-home"},
                                  {"patient"})
                              .at("id");
  const std::string dinh = w.write({"patient", "add", "--name", "Vừ A Dính", "--sex", "male", "--birth", "1985",
                                    "--village", "Bản Pa Khóa", "--category", "vulnerable", "--condition",
                                    "khuyết tật vận động"},
                                   {"patient"})
                               .at("id");
  const std::string pang = w.write({"patient", "add", "--name", "Lò Văn Pâng", "--sex", "male", "--birth", "2001",
                                    "--village", "Bản Hon", "--category", "other"},
                                   {"patient"})
                               .at("id");
  // A home-care COVID patient last seen the day before: overdue today.
  const std::string my = w.write({"patient", "add", "--name", "Giàng Thị Mỷ", "--sex", "female", "--birth", "1978",
                                  "--village", "Bản Pa Khóa", "--category", "covid-home"},
                                 {"patient"})
                             .at("id");

  // --- items and stock --------------------------------------------------------------
  w.write({"item", "add", "--code", "AMLO5", "--name", "Amlodipin 5mg", "--unit", "viên", "--reserve", "1000"},
          {"item", "item_reserve"});
  w.write({"item", "add", "--code", "KHAUTRANG", "--name", "Khẩu trang y tế", "--unit", "cái", "--kind", "ppe",
           "--reserve", "50"},
          {"item", "item_reserve"});
  const std::string expiry_a = vn_day(20), expiry_b = vn_day(400);  // A expires within 30 days
  w.write({"stock", "receive", "--item", "AMLO5", "--qty", "100", "--lot", "A2311", "--expiry", expiry_a, "--source",
           "TTYT huyện Sìn Hồ", "--at", at("07:00")},
          {"stock_movement"});
  w.write({"stock", "receive", "--item", "AMLO5", "--qty", "500", "--lot", "B2405", "--expiry", expiry_b, "--source",
           "Sở Y tế Lai Châu", "--at", at("07:05")},
          {"stock_movement"});
  w.write({"stock", "receive", "--item", "KHAUTRANG", "--qty", "200", "--lot", "KT01", "--expiry", vn_day(700),
           "--at", at("07:10")},
          {"stock_movement"});

  // --- visits ---------------------------------------------------------------------------
  w.write({"visit", "add", my, "--temp", "37.5", "--spo2", "96", "--symptom", "ho", "--at", before + "T10:00"},
          {"visit"});
  const std::string visit_an = w.write({"visit", "add", an, "--temp", "36.8", "--spo2", "97", "--bp", "150/95",
                                        "--pulse", "80", "--note", "Huyết áp cao, nhắc uống thuốc đều", "--at",
                                        at("08:00")},
                                       {"visit"})
                                   .at("id");
  w.write({"visit", "add", lan, "--temp", "38.2", "--spo2", "93", "--pulse", "102", "--symptom", "ho", "--symptom",
           "sốt", "--refer", "--at", at("08:15")},
          {"visit"});
  w.write({"visit", "add", dinh, "--temp", "36.5", "--spo2", "98", "--at", at("09:30")}, {"visit"});
  w.write({"visit", "add", pang, "--temp", "36.7", "--at", at("10:00")}, {"visit"});
  const std::string wrong_visit =
      w.write({"visit", "add", hoa, "--temp", "39.5", "--at", at("10:30")}, {"visit"}).at("id");
  w.write({"void", wrong_visit, "--reason", "ghi nhầm bệnh nhân", "--at", at("10:40")}, {"void"});
  w.write({"visit", "add", hoa, "--bp", "140/90", "--pulse", "76", "--at", at("10:45")}, {"visit"});

  // --- dispensing: first expiry first out -------------------------------------------------
  const json d1 = w.write({"dispense", an, "--item", "AMLO5", "--qty", "60", "--days", "60", "--at", at("08:30")},
                          {"stock_movement"});
  REQUIRE(d1.at("ids").size() == 1);
  // 70 > the 40 left in lot A: 40 from A, 30 from B, one change per lot.
  const json d2 = w.write({"dispense", hoa, "--item", "AMLO5", "--qty", "70", "--days", "60", "--at", at("09:00")},
                          {"stock_movement", "stock_movement"});
  REQUIRE(d2.at("ids").size() == 2);
  // The first dispense was a mistake: voiding it gives its 60 back to lot A.
  w.write({"void", d1.at("id"), "--reason", "phát nhầm liều", "--at", at("10:50")}, {"void"});
  const json d3 = w.write({"dispense", an, "--item", "AMLO5", "--qty", "30", "--days", "30", "--at", at("11:00")},
                          {"stock_movement"});
  REQUIRE(d3.at("ids").size() == 1);
  w.write({"stock", "writeoff", "--item", "AMLO5", "--lot", "B2405", "--qty", "5", "--reason", "damaged", "--at",
           at("15:00")},
          {"stock_movement"});

  // --- waste: one batch all the way to treated, one left at the station ---------------------
  const std::string batch1 = w.write({"waste", "add", "--kind", "infectious", "--bags", "3", "--weight-kg", "2.5",
                                      "--patient", lan, "--note", "túi vàng", "--at", at("08:20")},
                                     {"waste_batch"})
                                 .at("id");
  const std::string batch2 = w.write({"waste", "add", "--kind", "sharps", "--bags", "1", "--weight-kg", "0.8",
                                      "--household", hh, "--at", at("08:40")},
                                     {"waste_batch"})
                                 .at("id");
  w.write({"waste", "move", batch1, "--stage", "collected", "--at", at("11:00")}, {"waste_stage"});
  w.write({"waste", "move", batch2, "--stage", "collected", "--at", at("11:05")}, {"waste_stage"});
  w.write({"waste", "move", batch1, "--stage", "stored", "--at", at("12:00")}, {"waste_stage"});
  w.write({"waste", "move", batch2, "--stage", "stored", "--at", at("12:05")}, {"waste_stage"});
  w.write({"waste", "move", batch1, "--stage", "handed-over", "--to", "BV Đa khoa huyện Sìn Hồ", "--at", at("14:00")},
          {"waste_stage"});
  w.write({"waste", "move", batch1, "--stage", "treated", "--at", at("16:00")}, {"waste_stage"});

  // --- Lan recovered ------------------------------------------------------------------------
  const json lan_updated = w.write({"patient", "update", lan, "--status", "recovered"}, {"patient"});
  CHECK(lan_updated.at("status") == "recovered");

  {
    INFO("the daily report for the day recorded");
    const json r = st.cli.ok({"report", "daily", "--date", Y});
    INFO(r.dump(2));
    CHECK(r.at("date") == Y);
    CHECK(r.at("station").at("code") == "TYT-SINHO");
    CHECK(r.at("station").at("name") == "Trạm Y tế xã Sìn Hồ");
    // Every patient was registered today (created_at = now), so at the end of
    // yesterday none was yet under the station's care, none was new and none
    // could be overdue, though yesterday's visits count.
    CHECK(r.at("under_care").at("total") == 0);
    for (const char* c : {"elderly", "chronic", "covid-home", "vulnerable", "other"}) {
      CHECK(r.at("under_care").at("by_category").at(c) == 0);
    }
    CHECK(r.at("new_patients") == 0);
    CHECK(r.at("closed_patients") == 0);
    CHECK(r.at("overdue").empty());
    // An, Lan, Dính, Pâng and Hoa's second visit; the voided one and Mỷ's of the day before do not count.
    CHECK(r.at("visits") == 5);
    CHECK(r.at("referrals") == 1);
    // D2 (40 + 30) and D3 (30); the voided D1 (60) does not count.
    REQUIRE(r.at("dispensed").size() == 1);
    const json& amlo = r.at("dispensed").at(0);
    CHECK(amlo.at("item") == "AMLO5");
    CHECK(amlo.at("name") == "Amlodipin 5mg");
    CHECK(amlo.at("unit") == "viên");
    CHECK(amlo.at("quantity") == 100);
    CHECK(amlo.at("dispensings") == 2);
    // AMLO5: 495 on hand under a reserve of 1000, 30 of them in lot A expiring
    // within 30 days; the masks are above their reserve.
    REQUIRE(r.at("stock_alerts").size() == 1);
    const json& alert = r.at("stock_alerts").at(0);
    CHECK(alert.at("code") == "AMLO5");
    CHECK(alert.at("on_hand") == 495);
    CHECK(alert.at("reserve") == 1000);
    CHECK(alert.at("under_reserve") == true);
    CHECK(alert.at("expiring_soon") == 30);
    // Only the batch left at the station waits.
    REQUIRE(r.at("waste_pending").size() == 1);
    const json& pending = r.at("waste_pending").at(0);
    CHECK(pending.at("id") == batch2);
    CHECK(pending.at("kind") == "sharps");
    CHECK(pending.at("bags") == 1);
    CHECK(pending.at("weight_kg").get<double>() == Approx(0.8));
    CHECK(pending.at("stage") == "stored");
    CHECK(pending.at("stage_at") == Y + "T12:05:00");
    CHECK(pending.at("household_id") == hh);
    CHECK(r.at("waste_pending_kg").get<double>() == Approx(0.8));

    {
    INFO("as CSV it is valid and carries the same numbers");
      auto csv = st.cli.run({"report", "daily", "--date", Y, "--csv"});
      INFO(csv.describe());
      REQUIRE(csv.exit_code == 0);
      auto rows = parse_csv(csv.out);
      REQUIRE(rows.has_value());
      REQUIRE(rows->size() >= 2);
      CHECK(rows->front() == std::vector<std::string>{"section", "key", "value", "detail"});
      std::map<std::pair<std::string, std::string>, std::pair<std::string, std::string>> cells;
      for (const auto& row : *rows) {
        REQUIRE(row.size() == 4);
        CHECK(cells.emplace(std::pair{row[0], row[1]}, std::pair{row[2], row[3]}).second);  // no key twice
      }
      auto value = [&](const std::string& section, const std::string& key) -> std::string {
        auto it = cells.find({section, key});
        if (it == cells.end()) {
          FAIL_CHECK("no CSV row " << section << "," << key);
          return "";
        }
        return it->second.first;
      };
      auto num = [](const json& j) { return std::to_string(j.get<int64_t>()); };
      CHECK(value("report", "date") == Y);
      CHECK(cells.at({"report", "date"}).second == "TYT-SINHO Trạm Y tế xã Sìn Hồ");
      CHECK(value("under_care", "total") == num(r.at("under_care").at("total")));
      for (const auto& [cat, n] : r.at("under_care").at("by_category").items()) {
        CHECK(value("under_care", cat) == num(n));
      }
      CHECK(value("patients", "new") == num(r.at("new_patients")));
      CHECK(value("patients", "closed") == num(r.at("closed_patients")));
      CHECK(value("visits", "total") == "5");
      CHECK(value("visits", "total") == num(r.at("visits")));
      CHECK(value("visits", "referrals") == num(r.at("referrals")));
      CHECK(value("overdue", "total") == std::to_string(r.at("overdue").size()));
      CHECK(value("dispensed", "AMLO5") == "100");
      const std::string dispensed_detail = cells[{"dispensed", "AMLO5"}].second;
      CHECK_THAT(dispensed_detail, Catch::Contains("2 dispensing"));
      CHECK(value("stock_alert", "AMLO5") == "495");
      const std::string alert_detail = cells[{"stock_alert", "AMLO5"}].second;
      CHECK_THAT(alert_detail, Catch::Contains("under reserve 1000"));
      CHECK_THAT(alert_detail, Catch::Contains("expiring within 30 days 30"));
      CHECK(value("waste_pending", "total_kg") == "0.8");
      CHECK(value("waste_pending", batch2) == "0.8");
      CHECK(cells.count({"waste_pending", batch1}) == 0);
      // Nothing else: one row per JSON figure.
      const size_t expected_rows = 1 /*header*/ + 1 /*date*/ + 1 + 5 /*under care*/ + 2 /*patients*/ + 2 /*visits*/ +
                                   1 /*overdue*/ + 1 /*dispensed*/ + 1 /*stock*/ + 2 /*waste*/;
      CHECK(rows->size() == expected_rows);
    }
  }

  {
    INFO("today's report counts the patients registered today");
    const int64_t hours_before = hours_since_local(before + "T10:00");
    const json r = st.cli.ok({"report", "daily"});
    const int64_t hours_after = hours_since_local(before + "T10:00");
    INFO(r.dump(2));
    CHECK(r.at("date") == today);
    // Six registered, Lan recovered: five under care (An counts in two groups).
    CHECK(r.at("under_care").at("total") == 5);
    CHECK(r.at("under_care").at("by_category").at("elderly") == 1);
    CHECK(r.at("under_care").at("by_category").at("chronic") == 2);
    CHECK(r.at("under_care").at("by_category").at("covid-home") == 1);
    CHECK(r.at("under_care").at("by_category").at("vulnerable") == 1);
    CHECK(r.at("under_care").at("by_category").at("other") == 1);
    CHECK(r.at("new_patients") == 6);
    CHECK(r.at("closed_patients") == 1);
    CHECK(r.at("visits") == 0);
    CHECK(r.at("dispensed").empty());
    // Mỷ (covid-home) was last seen the day before yesterday: more than a day ago.
    REQUIRE(r.at("overdue").size() == 1);
    CHECK(r.at("overdue").at(0).at("id") == my);
    CHECK(r.at("overdue").at(0).at("name") == "Giàng Thị Mỷ");
    CHECK(r.at("overdue").at(0).at("last_visit") == before + "T10:00:00");
    CHECK(r.at("overdue").at(0).at("days_since_contact") >= hours_before / 24);
    CHECK(r.at("overdue").at(0).at("days_since_contact") <= hours_after / 24);

    const json overdue = st.cli.ok({"patient", "list", "--overdue"});
    REQUIRE(overdue.size() == 1);
    CHECK(overdue.at(0).at("id") == my);
  }

  {
    INFO("stock on hand per lot is receipts minus dispenses minus the write-off, the voided dispense given back");
    const json stock = st.cli.ok({"stock"});
    INFO(stock.dump(2));
    REQUIRE(stock.size() == 2);
    const json& amlo = find_by(stock, "code", "AMLO5");
    const int64_t lot_a = 100 - 60 /*D1*/ - 40 /*D2*/ + 60 /*D1 voided*/ - 30 /*D3*/;
    const int64_t lot_b = 500 - 30 /*D2*/ - 5 /*write-off*/;
    CHECK(amlo.at("on_hand") == lot_a + lot_b);
    CHECK(amlo.at("unit") == "viên");
    CHECK(amlo.at("reserve") == 1000);
    CHECK(amlo.at("under_reserve") == true);
    CHECK(amlo.at("expiring_soon") == lot_a);
    CHECK(amlo.at("expired_on_hand") == 0);
    REQUIRE(amlo.at("lots").size() == 2);
    const json& a = find_by(amlo.at("lots"), "lot", "A2311");
    CHECK(a.at("on_hand") == lot_a);
    CHECK(a.at("expiry") == expiry_a);
    CHECK(a.at("expiring_soon") == true);
    CHECK(a.at("expired") == false);
    const json& b = find_by(amlo.at("lots"), "lot", "B2405");
    CHECK(b.at("on_hand") == lot_b);
    CHECK(b.at("expiry") == expiry_b);
    CHECK(b.at("expiring_soon") == false);
    const json& masks = find_by(stock, "code", "KHAUTRANG");
    CHECK(masks.at("name") == "Khẩu trang y tế");
    CHECK(masks.at("kind") == "ppe");
    CHECK(masks.at("on_hand") == 200);
    CHECK(masks.at("under_reserve") == false);
  }

  {
    INFO("a patient shows visits, dispensings with the voided one flagged, and the next refill");
    const json p = st.cli.ok({"patient", "show", an});
    INFO(p.dump(2));
    CHECK(p.at("name") == "Nguyễn Văn An");
    CHECK(p.at("household_id") == hh);
    CHECK(p.at("birth") == "1948-03-02");
    CHECK(p.at("phone") == "0912 345 678");
    CHECK(sorted_strings(p.at("categories")) == std::vector<std::string>{"chronic", "elderly"});
    CHECK(p.at("conditions") == json::array({"tăng huyết áp"}));
    CHECK(p.at("status") == "active");
    REQUIRE(p.at("visits").size() == 1);
    const json& v = p.at("visits").at(0);
    CHECK(v.at("id") == visit_an);
    CHECK(v.at("at") == Y + "T08:00:00");
    CHECK(v.at("temp_c").get<double>() == Approx(36.8));
    CHECK(v.at("spo2") == 97);
    CHECK(v.at("bp_sys") == 150);
    CHECK(v.at("bp_dia") == 95);
    CHECK(v.at("pulse") == 80);
    CHECK(v.at("note") == "Huyết áp cao, nhắc uống thuốc đều");
    CHECK(v.at("voided") == false);
    REQUIRE(p.at("dispensings").size() == 2);
    const json& first = find_by(p.at("dispensings"), "id", d1.at("id"));
    CHECK(first.at("voided") == true);
    CHECK(first.at("quantity") == 60);
    CHECK(first.at("lot") == "A2311");
    const json& third = find_by(p.at("dispensings"), "id", d3.at("id"));
    CHECK(third.at("voided") == false);
    CHECK(third.at("quantity") == 30);
    CHECK(third.at("lot") == "A2311");  // lot A had the voided 60 back, and expires first
    CHECK(third.at("days_supply") == 30);
    CHECK(third.at("at") == Y + "T11:00:00");
    // The next refill: the last (non-voided) dispense + its days of supply.
    REQUIRE(p.at("next_refills").size() == 1);
    CHECK(p.at("next_refills").at(0).at("item") == "AMLO5");
    CHECK(p.at("next_refills").at(0).at("last_dispensed_at") == Y + "T11:00:00");
    CHECK(p.at("next_refills").at(0).at("next_refill") == vn_day(-1 + 30));

    const json h = st.cli.ok({"patient", "show", hoa});
    INFO(h.dump(2));
    CHECK(h.at("name") == "Đặng Thị Hoa");
    CHECK(sorted_strings(h.at("conditions")) == std::vector<std::string>{"tăng huyết áp", "đái tháo đường"});
    REQUIRE(h.at("visits").size() == 2);
    CHECK(find_by(h.at("visits"), "id", wrong_visit).at("voided") == true);
    REQUIRE(h.at("dispensings").size() == 2);  // one dispense, two lots
    CHECK(find_by(h.at("dispensings"), "lot", "A2311").at("quantity") == 40);
    CHECK(find_by(h.at("dispensings"), "lot", "B2405").at("quantity") == 30);
    for (const auto& m : h.at("dispensings")) {
      CHECK(m.at("voided") == false);
      CHECK(m.at("days_supply") == 60);
      CHECK(m.at("at") == Y + "T09:00:00");
    }
    REQUIRE(h.at("next_refills").size() == 1);
    CHECK(h.at("next_refills").at(0).at("next_refill") == vn_day(-1 + 60));

    const json l = st.cli.ok({"patient", "show", lan});
    INFO(l.dump(2));
    CHECK(l.at("status") == "recovered");
    CHECK(l.at("status_changed_at").get<std::string>().substr(0, 10) == today);
    REQUIRE(l.at("visits").size() == 1);
    CHECK(l.at("visits").at(0).at("refer") == true);
    CHECK(l.at("visits").at(0).at("symptoms") == json::array({"ho", "sốt"}));
    REQUIRE(l.at("waste").size() == 1);
    CHECK(l.at("waste").at(0).at("id") == batch1);
    CHECK(l.at("waste").at(0).at("stage") == "treated");
    CHECK(l.at("waste").at(0).at("holder") == "BV Đa khoa huyện Sìn Hồ");
    CHECK(l.at("waste").at(0).at("note") == "túi vàng");

    const json house = st.cli.ok({"household", "show", hh});
    CHECK(house.at("address") == "Ngõ 3, cạnh nhà văn hoá \"Bản Mới\"");
    REQUIRE(house.at("members").size() == 1);
    CHECK(house.at("members").at(0).at("id") == an);
  }

  {
    INFO("the change log has exactly one change per record written, in order");
    const auto& expected = w.expected();
    // init 1, household 1, patients 6, items 2x2, receipts 3, visits 7, voids 2,
    // dispenses 1 + 2 + 1, write-off 1, waste batches 2, stages 6, update 1.
    CHECK(expected.size() == 38);
    const json log = st.cli.ok({"changes", "--limit", "1000"});
    CHECK(log.at("protocol") == 1);
    const json& changes = log.at("changes");
    REQUIRE(changes.size() == expected.size());
    for (size_t i = 0; i < changes.size(); ++i) {
      INFO("change " << i + 1 << ": " << changes.at(i).dump());
      CHECK(changes.at(i).at("kind") == expected[i].first);
      CHECK(changes.at(i).at("origin_seq") == static_cast<int64_t>(i + 1));
      CHECK(changes.at(i).at("origin") == device_id);
      if (expected[i].second) CHECK(changes.at(i).at("record_id") == *expected[i].second);
    }

    const json status = st.cli.ok({"status"});
    INFO(status.dump(2));
    CHECK(status.at("changes_total") == expected.size());
    CHECK(status.at("changes_pending") == expected.size());
    CHECK(status.at("station").at("code") == "TYT-SINHO");
    CHECK(status.at("device").at("id") == device_id);
    CHECK(status.at("last_sync").is_null());
    CHECK(query_int(st.db, "SELECT count(*) FROM changes") == static_cast<int64_t>(expected.size()));
  }
}

}  // namespace tramsync::e2e
