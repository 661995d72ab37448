// Importing the patient lists stations keep in spreadsheets (CSV).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "fixture.h"
#include "tramsync/core/csv_import.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {

using Records = std::vector<std::vector<std::string>>;

// Parses the CSV text and imports its rows.
class ImportFixture : public StoreFixture {
 public:
  ImportResult import(const std::string& text, bool skip_invalid = false) {
    auto rows = must(csv::patient_rows(text));
    REQUIRE(rows.errors.empty());
    return store->import_patients(rows.rows, skip_invalid);
  }

  std::vector<std::string> names() {
    std::vector<std::string> out;
    for (const auto& row : store->list_patients({})) out.push_back(row.patient.name);
    return out;
  }
};

}  // namespace

TEST_CASE("csv parsing handles quotes, doubled quotes, commas and CRLF", "[core][csv]") {
  std::vector<int64_t> lines;
  auto r = csv::parse("a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\r\n\"\",plain,\"multi\nline\"\r\nlast,row,end", &lines);
  REQUIRE(r.ok());
  CHECK(*r == Records{{"a", "b", "c"}, {"x, y", "say \"hi\"", ""}, {"", "plain", "multi\nline"}, {"last", "row", "end"}});
  CHECK(lines == std::vector<int64_t>{1, 2, 3, 5});
}

TEST_CASE("csv parsing skips a byte-order mark and blank lines", "[core][csv]") {
  std::vector<int64_t> lines;
  auto r = csv::parse("\xEF\xBB\xBFname,sex\n\nAn,male\n\n", &lines);
  REQUIRE(r.ok());
  CHECK(*r == Records{{"name", "sex"}, {"An", "male"}});
  CHECK(lines == std::vector<int64_t>{1, 3});
}

TEST_CASE("csv parsing refuses a quote that is never closed, naming its line", "[core][csv]") {
  auto r = csv::parse("name,sex\nAn,male\n\"Bình,female\n");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message(), Contains("line 3") && Contains("never closed"));
}

TEST_CASE("a csv field is quoted only when it has to be", "[core][csv]") {
  CHECK(csv::field("Nguyễn Văn An") == "Nguyễn Văn An");
  CHECK(csv::field("Thôn Đông, xã An") == "\"Thôn Đông, xã An\"");
  CHECK(csv::field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv::field("two\nlines") == "\"two\nlines\"");
  // What field() writes, parse() reads back.
  const std::string tricky = "a, \"b\"\r\nc";
  auto back = csv::parse(csv::field(tricky) + "," + csv::field("x") + "\n");
  REQUIRE(back.ok());
  CHECK(*back == Records{{tricky, "x"}});
}

TEST_CASE("patient rows map columns by header name, in any order and case", "[core][csv]") {
  const std::string text =
      "\xEF\xBB\xBFVillage,Name,SEX,birth,categories,condition,phone,national-id\r\n"
      "\"Thôn Đông, xã An Hòa\",Nguyễn Văn An,male,1950,elderly;chronic,\"tăng huyết áp|tiểu đường\",0912345678,"
      "001050001234\r\n";
  auto rows = must(csv::patient_rows(text));
  REQUIRE(rows.errors.empty());
  REQUIRE(rows.rows.size() == 1);
  CHECK(rows.rows[0].first == 2);
  const PatientInput& p = rows.rows[0].second;
  CHECK(p.name == "Nguyễn Văn An");
  CHECK(p.village == "Thôn Đông, xã An Hòa");
  CHECK(p.sex == "male");
  CHECK(p.birth == "1950");
  CHECK(p.categories == std::vector<std::string>{"elderly", "chronic"});
  CHECK(p.conditions == std::vector<std::string>{"tăng huyết áp", "tiểu đường"});
  CHECK(p.phone == "0912345678");
  CHECK(p.national_id == "001050001234");
}

TEST_CASE("an unknown header column is refused, naming it", "[core][csv]") {
  auto r = csv::patient_rows("name,sex,birth,village,blood_type\nAn,male,1950,Thôn Đông,O\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().field == "header");
  CHECK(r.error().value == "blood_type");
  CHECK_THAT(r.error().message(), Contains("patient import") && Contains("unknown column") && Contains("blood_type"));
}

TEST_CASE("a header without a required column, or with one twice, is refused", "[core][csv]") {
  auto missing = csv::patient_rows("name,sex,village\nAn,male,Thôn Đông\n");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message(), Contains("must have the column \"birth\""));
  auto twice = csv::patient_rows("name,sex,birth,village,Name\nAn,male,1950,Thôn Đông,An\n");
  REQUIRE_FALSE(twice.ok());
  CHECK_THAT(twice.error().message(), Contains("names a column twice") && Contains("Name"));
  CHECK_FALSE(csv::patient_rows("").ok());
  CHECK_FALSE(csv::patient_rows("name,sex,birth,village\n\xFF\n").ok());  // not UTF-8
}

TEST_CASE("a row with the wrong number of cells is reported with its line", "[core][csv]") {
  auto rows = must(csv::patient_rows("name,sex,birth,village\nAn,male,1950,Thôn Đông\nBình,female,1960\n"));
  REQUIRE(rows.rows.size() == 1);
  REQUIRE(rows.errors.size() == 1);
  CHECK(rows.errors[0].line == 3);
  CHECK_THAT(rows.errors[0].message, Contains("has 3 cells, the header has 4"));
}

TEST_CASE_METHOD(ImportFixture, "a valid file imports every row in one transaction", "[core][csv][import]") {
  const std::string text =
      "\xEF\xBB\xBF"
      "name,sex,birth,village,category\r\n"
      "Nguyễn Văn An,male,1950,Thôn Đông,elderly;chronic\r\n"
      "\"Trần Thị \"\"Bé\"\" Bình\",female,1985-07-09,\"Xóm Bãi, xã An Hòa\",covid-home\r\n"
      "Lê Văn Cường,male,2001,Thôn Tây,\r\n";
  ImportResult r = import(text);
  CHECK(r.rejected.empty());
  CHECK(r.imported == 3);
  REQUIRE(r.ids.size() == 3);
  CHECK(store->change_count() == 4);

  Patient an = must(store->get_patient(r.ids[0]));
  CHECK(an.name == "Nguyễn Văn An");
  CHECK(an.categories == std::vector<std::string>{"chronic", "elderly"});
  Patient binh = must(store->get_patient(r.ids[1]));
  CHECK(binh.name == "Trần Thị \"Bé\" Bình");
  CHECK(binh.village == "Xóm Bãi, xã An Hòa");
  CHECK(binh.birth == "1985-07-09");
  CHECK(binh.categories == std::vector<std::string>{"covid-home"});
  Patient cuong = must(store->get_patient(r.ids[2]));
  CHECK(cuong.village == "Thôn Tây");  // no stray carriage return
  CHECK(cuong.categories.empty());

  CHECK(search("be binh") == std::vector<std::string>{"Trần Thị \"Bé\" Bình"});
}

TEST_CASE_METHOD(ImportFixture, "a bad row is reported with its line and reason and nothing is imported",
                 "[core][csv][import]") {
  const std::string text =
      "name,sex,birth,village,category\n"
      "Nguyễn Văn An,male,1950,Thôn Đông,elderly\n"
      "\"Trần Thị Bình\nbà Bình\",female,1960,Thôn Tây,elderly\n"  // a name over two lines
      "Lê Văn Cường,male,2031-01-01,Thôn Tây,chronic\n"
      "Phạm Thị Dung,female,1970,Thôn Tây,pregnant\n";
  ImportResult r = import(text);
  CHECK(r.imported == 0);
  CHECK(r.ids.empty());
  REQUIRE(r.rejected.size() == 2);
  CHECK(r.rejected[0].line == 5);
  CHECK_THAT(r.rejected[0].message, Contains("birth") && Contains("future") && Contains("2031-01-01"));
  CHECK(r.rejected[1].line == 6);
  CHECK_THAT(r.rejected[1].message, Contains("category") && Contains("pregnant"));
  CHECK(store->change_count() == 1);
  CHECK(names().empty());
}

TEST_CASE_METHOD(ImportFixture, "with skip_invalid the good rows import and the bad ones are listed",
                 "[core][csv][import]") {
  const std::string text =
      "name,sex,birth,village,category\n"
      "Nguyễn Văn An,male,1950,Thôn Đông,elderly\n"
      ",female,1960,Thôn Tây,elderly\n"
      "Lê Văn Cường,male,1975,Thôn Tây,chronic\n"
      "Phạm Thị Dung,f,1970,Thôn Tây,\n";
  ImportResult r = import(text, true);
  CHECK(r.imported == 2);
  REQUIRE(r.ids.size() == 2);
  REQUIRE(r.rejected.size() == 2);
  CHECK(r.rejected[0].line == 3);
  CHECK_THAT(r.rejected[0].message, Contains("name must not be empty"));
  CHECK(r.rejected[1].line == 5);
  CHECK_THAT(r.rejected[1].message, Contains("sex") && Contains("\"f\""));
  CHECK(store->change_count() == 3);
  CHECK(names() == std::vector<std::string>{"Lê Văn Cường", "Nguyễn Văn An"});
}

TEST_CASE_METHOD(ImportFixture, "a national id repeated in the file or already registered is refused",
                 "[core][csv][import]") {
  PatientInput existing;
  existing.name = "Võ Văn Em";
  existing.sex = "male";
  existing.birth = "1940";
  existing.village = "Thôn Đông";
  existing.national_id = "001040000001";
  must(store->add_patient(existing));

  const std::string text =
      "name,sex,birth,village,national-id\n"
      "Nguyễn Văn An,male,1950,Thôn Đông,001050000002\n"
      "Nguyễn Văn Anh,male,1951,Thôn Đông,001050000002\n"
      "Võ Văn Em,male,1940,Thôn Đông,001040000001\n";
  ImportResult r = import(text, true);
  CHECK(r.imported == 1);
  REQUIRE(r.rejected.size() == 2);
  CHECK(r.rejected[0].line == 3);
  CHECK_THAT(r.rejected[0].message, Contains("appears twice in the file") && Contains("001050000002"));
  CHECK(r.rejected[1].line == 4);
  CHECK_THAT(r.rejected[1].message, Contains("already registered") && Contains("001040000001"));
}

TEST_CASE_METHOD(ImportFixture, "patients can be imported into households by id", "[core][csv][import]") {
  HouseholdInput h;
  h.village = "Xóm Bãi";
  const std::string hh = must(store->add_household(h));
  const std::string text = "name,sex,birth,household,village\nPhạm Văn Hùng,male,1960," + hh + ",\n";
  ImportResult r = import(text);
  REQUIRE(r.imported == 1);
  Patient p = must(store->get_patient(r.ids[0]));
  CHECK(p.household_id == hh);
  CHECK(p.village == "Xóm Bãi");

  ImportResult bad = import("name,sex,birth,household,village\nAi,male,1960,ffff0000,\n");
  REQUIRE(bad.rejected.size() == 1);
  CHECK(bad.rejected[0].line == 2);
  CHECK_THAT(bad.rejected[0].message, Contains("household") && Contains("ffff0000"));
}
