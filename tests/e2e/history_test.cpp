// Work entered after the fact: reports for earlier days, voids of split
// dispenses, and stock checks as of the time an event happened.
#include <string>
#include <vector>

#include "cli_runner.h"
#include "e2e_support.h"

namespace tramsync::e2e {

// A report describes the day as it stood at its end, waste included: batches
// bagged later are not in it, batches treated later are still pending in it.
TEST_CASE("a report for an earlier day shows the waste that waited at that day's end", "[e2e][report]") {
  StationFixture st;
  auto& cli = st.cli;
  const std::string Y = vn_day(-1), B = vn_day(-2);
  cli.ok({"init", "--station", "TYT-SINHO", "--name", "Trạm Y tế xã Sìn Hồ"});
  // Bagged and stored the day before yesterday, handed over and treated yesterday.
  const std::string old_batch =
      cli.ok({"waste", "add", "--kind", "infectious", "--bags", "2", "--weight-kg", "1.5", "--at", B + "T08:00"})
          .at("id");
  cli.ok({"waste", "move", old_batch, "--stage", "collected", "--at", B + "T10:00"});
  cli.ok({"waste", "move", old_batch, "--stage", "stored", "--at", B + "T11:00"});
  cli.ok({"waste", "move", old_batch, "--stage", "handed-over", "--to", "BV Đa khoa huyện", "--at", Y + "T08:00"});
  cli.ok({"waste", "move", old_batch, "--stage", "treated", "--at", Y + "T09:00"});
  // Bagged yesterday, still at the station.
  const std::string new_batch =
      cli.ok({"waste", "add", "--kind", "sharps", "--bags", "1", "--weight-kg", "0.4", "--at", Y + "T10:00"}).at("id");

  const json yesterday = cli.ok({"report", "daily", "--date", Y});
  REQUIRE(yesterday.at("waste_pending").size() == 1);
  CHECK(yesterday.at("waste_pending").at(0).at("id") == new_batch);

  const json before = cli.ok({"report", "daily", "--date", B});
  INFO(before.dump(2));
  // At the end of B only the old batch existed, stored at the station.
  REQUIRE(before.at("waste_pending").size() == 1);
  CHECK(before.at("waste_pending").at(0).at("id") == old_batch);
  CHECK(before.at("waste_pending").at(0).at("stage") == "stored");
  CHECK(before.at("waste_pending_kg").get<double>() == Approx(1.5));
}

// `dispense` may split one handing-out over several lots (first expiry first
// out) and prints the first part's id; voiding it gives back every part.
TEST_CASE("voiding a dispense split over two lots gives all of it back", "[e2e][stock]") {
  StationFixture st;
  auto& cli = st.cli;
  const std::string Y = vn_day(-1);
  cli.ok({"init", "--station", "TYT-SINHO", "--name", "Trạm Y tế xã Sìn Hồ"});
  const std::string p = cli.ok({"patient", "add", "--name", "Đặng Thị Hoa", "--sex", "female", "--birth", "1962",
                                "--village", "Thôn Nậm Tăm", "--category", "chronic"})
                            .at("id");
  cli.ok({"item", "add", "--code", "MET500", "--name", "Metformin 500mg", "--unit", "viên"});
  cli.ok({"stock", "receive", "--item", "MET500", "--qty", "10", "--lot", "M1", "--expiry", vn_day(60), "--at",
          Y + "T07:00"});
  cli.ok({"stock", "receive", "--item", "MET500", "--qty", "100", "--lot", "M2", "--expiry", vn_day(400), "--at",
          Y + "T07:00"});
  const json d = cli.ok({"dispense", p, "--item", "MET500", "--qty", "30", "--days", "15", "--at", Y + "T09:00"});
  REQUIRE(d.at("ids").size() == 2);
  REQUIRE(cli.ok({"stock"}).at(0).at("on_hand") == 80);

  cli.ok({"void", d.at("id"), "--reason", "phát nhầm bệnh nhân", "--at", Y + "T09:30"});
  const json stock = cli.ok({"stock"});
  INFO(stock.dump(2));
  CHECK(stock.at(0).at("on_hand") == 110);
  const json shown = cli.ok({"patient", "show", p});
  REQUIRE(shown.at("dispensings").size() == 2);  // both lots' parts, each voided
  for (const auto& m : shown.at("dispensings")) CHECK(m.at("voided") == true);
  CHECK(shown.at("next_refills").empty());
}

// Stock checks take --at into account: medicine cannot be handed out the day
// before it arrived.
TEST_CASE("a dispense dated before the stock arrived is refused", "[e2e][stock]") {
  StationFixture st;
  auto& cli = st.cli;
  const std::string Y = vn_day(-1), B = vn_day(-2);
  cli.ok({"init", "--station", "TYT-SINHO", "--name", "Trạm Y tế xã Sìn Hồ"});
  const std::string p = cli.ok({"patient", "add", "--name", "Nguyễn Văn An", "--sex", "male", "--birth", "1948",
                                "--village", "Bản Mới", "--category", "chronic"})
                            .at("id");
  cli.ok({"item", "add", "--code", "AMLO5", "--name", "Amlodipin 5mg", "--unit", "viên"});
  cli.ok({"stock", "receive", "--item", "AMLO5", "--qty", "10", "--lot", "A1", "--expiry", vn_day(365), "--at",
          Y + "T10:00"});
  const int64_t changes = query_int(st.db, "SELECT count(*) FROM changes");

  const CliResult r = cli.run({"dispense", p, "--item", "AMLO5", "--qty", "5", "--at", B + "T08:00"});
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  REQUIRE(r.error_lines().size() == 1);
  CHECK_THAT(r.error_lines().front(), Catch::Contains("quantity"));
  CHECK(query_int(st.db, "SELECT count(*) FROM changes") == changes);
}

}  // namespace tramsync::e2e
