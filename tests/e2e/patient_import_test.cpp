// Importing patients from a spreadsheet saved as CSV, through the real station-cli.
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "e2e_support.h"

namespace tramsync::e2e {
namespace {

// Names of the patients `patient list --search TEXT` finds, sorted.
std::vector<std::string> found(const CliRunner& cli, const std::string& text) {
  const json rows = cli.ok({"patient", "list", "--search", text});
  std::vector<std::string> names;
  for (const auto& r : rows) names.push_back(r.at("name"));
  std::sort(names.begin(), names.end());
  return names;
}

const json& by_name(const json& rows, const std::string& name) {
  for (const auto& r : rows) {
    if (r.at("name") == name) return r;
  }
  FAIL("no patient named " << name << " in " << rows.dump());
  static const json kNone;
  return kNone;
}

}  // namespace

TEST_CASE("patient import", "[e2e][import]") {
  StationFixture st;
  auto& cli = st.cli;
  cli.ok({"init", "--station", "TYT-SINHO", "--name", "Trạm Y tế xã Sìn Hồ"});

  // As a spreadsheet saves it: UTF-8 with a BOM, CRLF line ends, quoted cells
  // holding commas (and a doubled quote), several categories in one cell.
  const std::string good =
      "\xEF\xBB\xBF"
      "name,sex,birth,village,category,condition,phone\r\n"
      "Nguyễn Văn An,male,1948-03-02,\"Bản Mới, Sìn Hồ\",elderly;chronic,tăng huyết áp,0912345678\r\n"
      "\"Đặng Thị Hoa\",female,1962,\"Thôn Nậm Tăm, xã Nậm Tăm\",chronic,\"đái tháo đường; tăng huyết áp\",\r\n"
      "Lò Văn Pâng,male,2001,Bản Hon,other,,\r\n"
      "Hoàng Thị Lan,female,1990-07-15,Bản Mới,covid-home,,\"091 \"\"nhà\"\"\"\r\n"
      "Vừ A Dính,male,1985,\"Bản Pa Khóa, Sìn Hồ\",vulnerable,\"khuyết tật, vận động\",\r\n"
      "Nguyễn Thị Bình,female,1950,\"Bản Mới, Sìn Hồ\",\"elderly; chronic\",\"tăng huyết áp, tiểu đường\",\r\n";
  const int64_t good_rows = 6;
  {
    const json r = cli.ok({"patient", "import", st.write_file("danh-sach.csv", good)});
    CHECK(r.at("imported") == good_rows);
    CHECK(r.at("rejected").empty());
  }
  REQUIRE(st.patient_count() == good_rows);

  {
    INFO("searching without diacritics, in capitals");
    CHECK(found(cli, "NGUYEN") == std::vector<std::string>{"Nguyễn Thị Bình", "Nguyễn Văn An"});
    CHECK(found(cli, "NGUYEN VAN AN") == std::vector<std::string>{"Nguyễn Văn An"});
    CHECK(found(cli, "DANG THI HOA") == std::vector<std::string>{"Đặng Thị Hoa"});
    CHECK(found(cli, "LO VAN PANG") == std::vector<std::string>{"Lò Văn Pâng"});
    CHECK(found(cli, "VU A DINH") == std::vector<std::string>{"Vừ A Dính"});
    CHECK(found(cli, "HOANG LAN") == std::vector<std::string>{"Hoàng Thị Lan"});
    CHECK(found(cli, "BAN MOI") ==
          std::vector<std::string>{"Hoàng Thị Lan", "Nguyễn Thị Bình", "Nguyễn Văn An"});
  }
  {
    INFO("the cells arrive whole");
    const json all = cli.ok({"patient", "list"});
    REQUIRE(all.size() == static_cast<size_t>(good_rows));
    const json& an = by_name(all, "Nguyễn Văn An");
    CHECK(an.at("village") == "Bản Mới, Sìn Hồ");
    CHECK(an.at("birth") == "1948-03-02");
    CHECK(an.at("phone") == "0912345678");
    CHECK(an.at("categories") == json::array({"chronic", "elderly"}));
    CHECK(an.at("conditions") == json::array({"tăng huyết áp"}));
    const json& hoa = by_name(all, "Đặng Thị Hoa");
    CHECK(hoa.at("village") == "Thôn Nậm Tăm, xã Nậm Tăm");
    CHECK(hoa.at("conditions").size() == 2);
    CHECK(by_name(all, "Hoàng Thị Lan").at("phone") == "091 \"nhà\"");
    CHECK(by_name(all, "Vừ A Dính").at("conditions") == json::array({"khuyết tật, vận động"}));
    CHECK(by_name(all, "Nguyễn Thị Bình").at("categories") == json::array({"chronic", "elderly"}));
    CHECK(by_name(all, "Lò Văn Pâng").at("sex") == "male");
  }

  // Line 4 has a bad sex ("nam" is Vietnamese for male).
  const std::string bad =
      "\xEF\xBB\xBF"
      "name,sex,birth,village,category\r\n"
      "Giàng Thị Mỷ,female,1978,Bản Pa Khóa,covid-home\r\n"
      "Sùng A Páo,male,1999,\"Bản Pa Khóa, Sìn Hồ\",other\r\n"
      "Lý Văn Chính,nam,1960,Bản Hon,chronic\r\n"
      "Trần Thị Mai,female,1955,Bản Hon,elderly;chronic\r\n";
  const std::string bad_file = st.write_file("co-loi.csv", bad);
  {
    INFO("one bad row: nothing is imported, and the line is named");
    const CliResult r = cli.run({"patient", "import", bad_file});
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains(bad_file + ":4:"));
    CHECK_THAT(r.err, Catch::Contains("sex"));
    CHECK_THAT(r.err, Catch::Contains("nam"));
    CHECK(r.error_lines().size() == 1);
    CHECK_THAT(r.err, !Catch::Contains(":2:") && !Catch::Contains(":3:") && !Catch::Contains(":5:"));
    CHECK(st.patient_count() == good_rows);

    const CliResult j = cli.run_json({"patient", "import", bad_file});
    INFO(j.describe());
    CHECK(j.exit_code == 1);
    const json out = j.parsed();
    CHECK(out.contains("error"));
    CHECK(out.at("imported") == 0);
    REQUIRE(out.at("rejected").size() == 1);
    CHECK(out.at("rejected").at(0).at("line") == 4);
    CHECK(st.patient_count() == good_rows);
  }
  {
    INFO("--skip-invalid imports the others and lists line 4");
    const CliResult r = cli.run({"patient", "import", bad_file, "--skip-invalid"});
    INFO(r.describe());
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("Imported 3 patients"));
    CHECK_THAT(r.err, Catch::Contains(bad_file + ":4:"));
    CHECK_THAT(r.err, Catch::Contains("nam"));
    CHECK(st.patient_count() == good_rows + 3);
    CHECK(found(cli, "GIANG THI MY") == std::vector<std::string>{"Giàng Thị Mỷ"});
    CHECK(found(cli, "ly van chinh").empty());
    CHECK(found(cli, "TRAN THI MAI") == std::vector<std::string>{"Trần Thị Mai"});
  }

  {
    INFO("a commune's whole list: 100,000 rows");
    const std::vector<std::string> family = {"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ",
                                             "Đặng",   "Lò",   "Vừ", "Giàng", "Sùng",  "Lý"};
    const std::vector<std::string> middle = {"Văn", "Thị", "A", "Thị Thu", "Đức"};
    const std::vector<std::string> given = {"An", "Bình", "Hoa", "Lan", "Pâng", "Dính", "Mỷ", "Chính", "Sơn", "Hùng",
                                            "Mai", "Páo", "Dua"};
    const std::vector<std::string> cats = {"elderly", "chronic", "elderly;chronic", "covid-home", "vulnerable",
                                           "other"};
    const int64_t n = 100'000;
    std::string text = "\xEF\xBB\xBFname,sex,birth,village,category,condition\r\n";
    text.reserve(static_cast<size_t>(n) * 80);
    for (int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      text += family[u % family.size()] + " " + middle[(u / 3) % middle.size()] + " " +
              given[(u / 7) % given.size()];
      text += i % 2 ? ",male," : ",female,";
      text += std::to_string(1930 + i % 90) + ",\"Bản " + std::to_string(i % 40) + ", Sìn Hồ\",";
      text += cats[u % cats.size()] + ",";
      text += i % 5 == 0 ? "\"tăng huyết áp; đái tháo đường\"" : "";
      text += "\r\n";
    }
    const std::string file = st.write_file("ca-xa.csv", text);
    const int64_t before = st.patient_count();
    const auto start = std::chrono::steady_clock::now();
    const CliResult r = cli.run_json({"patient", "import", file});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "patient import of " << n << " rows took " << seconds << " s" << std::endl;
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    const json out = r.parsed();
    CHECK(out.at("imported") == n);
    CHECK(out.at("rejected").empty());
    CHECK(st.patient_count() == before + n);
    CHECK(query_int(st.db, "SELECT count(*) FROM changes WHERE kind = 'patient'") == st.patient_count());

    const json some = cli.ok({"patient", "list", "--search", "GIANG THI THU", "--limit", "3"});
    REQUIRE(some.size() == 3);
    for (const auto& p : some) CHECK_THAT(p.at("name").get<std::string>(), Catch::StartsWith("Giàng Thị Thu "));
  }
}

}  // namespace tramsync::e2e
