// Bad input through the real station-cli: each is refused with one clear line
// naming the field and the value, as JSON with --json, and the station file's
// content is exactly what it was.
#include <filesystem>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "e2e_support.h"

namespace tramsync::e2e {
namespace {

struct BadCommand {
  std::string what;
  std::vector<std::string> args;
  std::vector<std::string> mentions;  // the error line must contain each
  int exit_code = 1;                  // 1 refused, 2 the command line was wrong
  std::string field;                  // with --json: the "field" key, when the program names one
  bool with_db = true;                // false: the args carry their own --db (or none)
};

// Fails the test unless `r` is a clean refusal of `c` in text mode.
void check_text_refusal(const BadCommand& c, const CliResult& r) {
  INFO(r.describe());
  CHECK(r.exit_code == c.exit_code);
  CHECK(r.out.empty());
  const auto errors = r.error_lines();
  REQUIRE(errors.size() == 1);
  CHECK(r.err_lines().front() == errors.front());  // the error comes first
  for (const auto& m : c.mentions) CHECK_THAT(errors.front(), Catch::Contains(m));
}

// Fails the test unless `r` is a clean refusal of `c` in --json mode.
void check_json_refusal(const BadCommand& c, const CliResult& r) {
  INFO(r.describe());
  CHECK(r.exit_code == c.exit_code);
  CHECK(r.err.empty());  // with --json, errors too come out as JSON on stdout
  json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  REQUIRE(j.is_object());
  REQUIRE(j.contains("error"));
  REQUIRE(j.at("error").is_string());
  for (const auto& m : c.mentions) CHECK_THAT(j.at("error").get<std::string>(), Catch::Contains(m));
  if (!c.field.empty()) {
    REQUIRE(j.contains("field"));
    CHECK(j.at("field") == c.field);
  }
}

}  // namespace

TEST_CASE("bad input is refused with a clear error and changes nothing", "[e2e][errors]") {
  StationFixture st;
  const std::string tomorrow = vn_day(1), yesterday = vn_day(-1);
  auto& cli = st.cli;

  // A station with a little of everything to get wrong.
  cli.ok({"init", "--station", "TYT-NAMTAM", "--name", "Trạm Y tế xã Nậm Tăm"});
  const std::string p = cli.ok({"patient", "add", "--name", "Nguyễn Văn An", "--sex", "male", "--birth", "1948",
                                "--village", "Bản Mới", "--category", "elderly"})
                            .at("id");
  cli.ok({"item", "add", "--code", "AMLO5", "--name", "Amlodipin 5mg", "--unit", "viên", "--reserve", "100"});
  cli.ok({"stock", "receive", "--item", "AMLO5", "--qty", "50", "--lot", "A1", "--expiry", vn_day(365), "--at",
          yesterday + "T08:00"});
  const std::string treated = cli.ok({"waste", "add", "--kind", "infectious", "--bags", "2", "--weight-kg", "1.5",
                                      "--patient", p, "--at", yesterday + "T09:00"})
                                  .at("id");
  cli.ok({"waste", "move", treated, "--stage", "collected", "--at", yesterday + "T10:00"});
  cli.ok({"waste", "move", treated, "--stage", "stored", "--at", yesterday + "T11:00"});
  cli.ok({"waste", "move", treated, "--stage", "handed-over", "--to", "BV Đa khoa huyện", "--at",
          yesterday + "T12:00"});
  cli.ok({"waste", "move", treated, "--stage", "treated", "--at", yesterday + "T13:00"});
  const std::string bagged =
      cli.ok({"waste", "add", "--kind", "sharps", "--bags", "1", "--weight-kg", "0.4", "--at", yesterday + "T09:30"})
          .at("id");
  const std::string visit = cli.ok({"visit", "add", p, "--temp", "37.2", "--at", yesterday + "T09:00"}).at("id");
  cli.ok({"void", visit, "--reason", "nhập nhầm", "--at", yesterday + "T09:10"});

  // Enough patients that two ids share their first four characters (2000 ids
  // over 65536 prefixes: about 30 such pairs expected).
  std::string csv = "name,sex,birth,village\n";
  for (int i = 0; i < 2000; ++i) csv += "Lò Thị Mai " + std::to_string(i) + ",female,1970,Bản Hon\n";
  const json imported = cli.ok({"patient", "import", st.write_file("many.csv", csv)});
  REQUIRE(imported.at("imported") == 2000);
  const auto shared = query_texts(
      st.db, "SELECT substr(id, 1, 4) AS p FROM patients GROUP BY p HAVING count(*) > 1 ORDER BY p LIMIT 1");

  const std::string missing = st.dir.file("missing.db");
  const std::string unknown = "ffffffff-ffff-4fff-bfff-ffffffffffff";
  std::vector<BadCommand> cases = {
      {"temperature 370", {"visit", "add", p, "--temp", "370"}, {"temp", "370"}, 1, "temp"},
      {"SpO2 120", {"visit", "add", p, "--spo2", "120"}, {"spo2", "120"}, 1, "spo2"},
      {"blood pressure 80/120", {"visit", "add", p, "--bp", "80/120"}, {"bp", "80/120"}, 1, "bp"},
      {"blood pressure abc", {"visit", "add", p, "--bp", "abc"}, {"bp", "abc"}, 1, "bp"},
      {"temperature not a number", {"visit", "add", p, "--temp", "abc"}, {"--temp", "abc"}, 2, ""},
      {"birth in the future",
       {"patient", "add", "--name", "Lò Văn Pâng", "--sex", "male", "--birth", tomorrow, "--village", "Bản Hon"},
       {"birth", tomorrow},
       1,
       "birth"},
      {"birth on a day that does not exist",
       {"patient", "add", "--name", "Lò Văn Pâng", "--sex", "male", "--birth", "2025-02-29", "--village", "Bản Hon"},
       {"birth", "2025-02-29"},
       1,
       "birth"},
      {"unknown sex",
       {"patient", "add", "--name", "Vừ A Dính", "--sex", "nam", "--birth", "1985", "--village", "Bản Hon"},
       {"sex", "nam"},
       1,
       "sex"},
      {"unknown category",
       {"patient", "add", "--name", "Vừ A Dính", "--sex", "male", "--birth", "1985", "--village", "Bản Hon",
        "--category", "người già"},
       {"category", "người già"},
       1,
       "category"},
      {"negative receipt",
       {"stock", "receive", "--item", "AMLO5", "--qty", "-5", "--lot", "A2", "--expiry", vn_day(365)},
       {"quantity", "-5"},
       1,
       "quantity"},
      {"negative dispense", {"dispense", p, "--item", "AMLO5", "--qty", "-5"}, {"quantity", "-5"}, 1, "quantity"},
      {"fractional dispense", {"dispense", p, "--item", "AMLO5", "--qty", "5.5"}, {"--qty", "5.5"}, 2, ""},
      {"receipt without a lot",
       {"stock", "receive", "--item", "AMLO5", "--qty", "5", "--expiry", vn_day(365)},
       {"--lot"},
       2,
       ""},
      {"receipt already expired",
       {"stock", "receive", "--item", "AMLO5", "--qty", "5", "--lot", "A3", "--expiry", yesterday},
       {"expiry", yesterday},
       1,
       "expiry"},
      {"dispense more than on hand",
       {"dispense", p, "--item", "AMLO5", "--qty", "51"},
       {"quantity", "51", "50"},
       1,
       "quantity"},
      {"unknown item", {"dispense", p, "--item", "PARA500", "--qty", "1"}, {"item", "PARA500"}, 1, "item"},
      {"write-off reason stolen",
       {"stock", "writeoff", "--item", "AMLO5", "--lot", "A1", "--qty", "1", "--reason", "stolen"},
       {"reason", "stolen"},
       1,
       "reason"},
      {"waste moved backwards", {"waste", "move", treated, "--stage", "stored"}, {"stage", "stored", "treated"}, 1,
       "stage"},
      {"waste moved to the stage it is at", {"waste", "move", treated, "--stage", "treated"}, {"stage", "treated"}, 1,
       "stage"},
      {"handed over to nobody",
       {"waste", "move", bagged, "--stage", "handed-over"},
       {"to", "handed over"},
       1,
       "to"},
      {"a visit tomorrow",
       {"visit", "add", p, "--temp", "37", "--at", tomorrow + "T08:00"},
       {"at", tomorrow + "T08:00", "future"},
       1,
       "at"},
      {"a report for tomorrow", {"report", "daily", "--date", tomorrow}, {"date", tomorrow}, 1, "date"},
      {"void of an unknown id", {"void", unknown, "--reason", "x"}, {"event", unknown}, 1, "event"},
      {"void of a voided event", {"void", visit, "--reason", "lần nữa"}, {"already voided", visit}, 1, "event"},
      {"patient show of an unknown id", {"patient", "show", unknown}, {"patient", unknown}, 1, "patient"},
      {"patient show of a prefix too short", {"patient", "show", "ab"}, {"patient", "ab"}, 1, "patient"},
      {"a command on a missing station file",
       {"--db", missing, "status"},
       {missing, "does not exist"},
       1,
       "",
       /*with_db=*/false},
      {"init twice",
       {"init", "--station", "TYT-KHAC", "--name", "Trạm khác"},
       {"already initialised", "TYT-NAMTAM"},
       1,
       ""},
  };
  if (!shared.empty()) {
    cases.push_back({"an ambiguous id prefix",
                     {"patient", "show", shared.front()},
                     {"patient", shared.front(), "more than one"},
                     1,
                     "patient"});
  } else {
    WARN("no two of 2000 patient ids share a 4-character prefix; the ambiguous-prefix case is skipped");
  }

  const DbSnapshot before = snapshot(st.db);
  REQUIRE(before.change_count > 0);
  for (const auto& c : cases) {
    INFO("case: " << c.what);
    const CliResult text = c.with_db ? cli.run(c.args) : cli.run_raw(c.args);
    check_text_refusal(c, text);

    std::vector<std::string> args = c.args;
    args.emplace_back("--json");
    const CliResult as_json = c.with_db ? cli.run(args) : cli.run_raw(args);
    check_json_refusal(c, as_json);

    const DbSnapshot after = snapshot(st.db);
    INFO("tables changed: " << Catch::Detail::stringify(before.differing_tables(after)));
    CHECK(after.digest == before.digest);
    CHECK(before.differing_tables(after).empty());
    CHECK(after.change_count == before.change_count);
  }
  CHECK_FALSE(std::filesystem::exists(missing));
}

// A nurse who types --limit 0 reads one short line naming the option and the
// value (CLI11's own range check would print the whole range of a double).
TEST_CASE("a zero limit is refused with a short message", "[e2e][errors]") {
  StationFixture st;
  st.cli.ok({"init", "--station", "TYT-NAMTAM", "--name", "Trạm Y tế xã Nậm Tăm"});
  const CliResult r = st.cli.run({"patient", "list", "--limit", "0"});
  INFO(r.describe());
  CHECK(r.exit_code == 2);
  REQUIRE(r.error_lines().size() == 1);
  const std::string line = r.error_lines().front();
  CHECK_THAT(line, Catch::Contains("--limit"));
  CHECK_THAT(line, Catch::Contains("0"));
  CHECK(line.size() < 120);
}

}  // namespace tramsync::e2e
