// Global options (--db, --json) before or after the command, TRAMSYNC_DB, --help,
// and station time whatever the machine's time zone.
#include <filesystem>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "e2e_support.h"

namespace tramsync::e2e {

TEST_CASE("global options before or after the command", "[e2e][options]") {
  StationFixture st;
  auto& cli = st.cli;
  // The working directory holds no station.db: only --db or TRAMSYNC_DB can name the file.
  {
    const CliResult r = cli.run_raw({"--db", st.db, "init", "--station", "TYT-SINHO", "--name", "Trạm Y tế xã Sìn Hồ"});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("TYT-SINHO"));
  }

  auto station_code = [&](const std::vector<std::string>& args) {
    const CliResult r = cli.run_raw(args);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    const json j = r.parsed();
    REQUIRE(j.is_object());
    return j.at("station").at("code").get<std::string>();
  };
  CHECK(station_code({"--db", st.db, "--json", "status"}) == "TYT-SINHO");
  CHECK(station_code({"status", "--db", st.db, "--json"}) == "TYT-SINHO");
  CHECK(station_code({"--json", "status", "--db", st.db}) == "TYT-SINHO");
  CHECK(station_code({"--db", st.db, "status", "--json"}) == "TYT-SINHO");

  {
    INFO("global options after a nested command");
    const CliResult r = cli.run_raw({"patient", "add", "--name", "Nguyễn Văn An", "--sex", "male", "--birth", "1948",
                                     "--village", "Bản Mới", "--db", st.db, "--json"});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    CHECK(r.parsed().contains("id"));
  }

  {
    INFO("TRAMSYNC_DB names the file when --db is not given");
    CliRunner env_cli(st.db, st.dir.path().string());
    env_cli.set_env("TRAMSYNC_DB", st.db);
    const CliResult r = env_cli.run_raw({"--json", "status"});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    CHECK(r.parsed().at("station").at("code") == "TYT-SINHO");
    CHECK(r.parsed().at("db") == st.db);

    // --db wins over TRAMSYNC_DB.
    env_cli.set_env("TRAMSYNC_DB", st.dir.file("elsewhere.db"));
    const CliResult over = env_cli.run_raw({"--db", st.db, "--json", "status"});
    INFO(over.describe());
    CHECK(over.exit_code == 0);
    CHECK_FALSE(std::filesystem::exists(st.dir.file("elsewhere.db")));
  }

  {
    INFO("without --db or TRAMSYNC_DB: station.db in the working directory, which is not there");
    const CliResult r = cli.run_raw({"status"});
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    REQUIRE(r.error_lines().size() == 1);
    CHECK_THAT(r.error_lines().front(), Catch::Contains("station.db"));
    CHECK_FALSE(std::filesystem::exists(st.dir.file("station.db")));  // not created either
  }

  {
    INFO("--help on the commands shows an example and exits 0");
    for (const auto& cmd : std::vector<std::vector<std::string>>{{"init"},
                                                                 {"patient", "add"},
                                                                 {"patient", "import"},
                                                                 {"visit", "add"},
                                                                 {"dispense"},
                                                                 {"stock", "receive"},
                                                                 {"waste", "move"},
                                                                 {"report", "daily"},
                                                                 {"void"}}) {
      std::vector<std::string> args = cmd;
      args.emplace_back("--help");
      const CliResult r = cli.run_raw(args);
      INFO(r.describe());
      CHECK(r.exit_code == 0);
      CHECK_THAT(r.out, Catch::Contains("Example"));
      CHECK(r.err.empty());
    }
    const CliResult top = cli.run_raw({"--help"});
    CHECK(top.exit_code == 0);
    CHECK_THAT(top.out, Catch::Contains("Example"));
  }

  {
    INFO("station time is Vietnam's whatever TZ the machine has");
    for (const char* tz : {"UTC0", "HST10", "KIR-14", "Asia/Ho_Chi_Minh"}) {
      INFO("TZ=" << tz);
      CliRunner tz_cli(st.db, st.dir.path().string());
      tz_cli.set_env("TZ", tz);
      const std::string today = vn_day(0);
      const json s = tz_cli.ok({"status"});
      const std::string local = s.at("clock").at("local");
      CHECK(local.substr(0, 10) == today);
      const json r = tz_cli.ok({"report", "daily"});
      CHECK(r.at("date") == today);
    }
  }
}

}  // namespace tramsync::e2e
