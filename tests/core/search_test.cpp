// Vietnamese search: diacritics-, case- and normalisation-insensitive, every word
// matching the start of a word in the name or the village.
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "fixture.h"
#include "tramsync/core/text.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {

using Names = std::vector<std::string>;

// Combining marks (UTF-8), to spell names in decomposed (NFD) form.
const std::string kGrave = "\xCC\x80";       // U+0300
const std::string kAcute = "\xCC\x81";       // U+0301
const std::string kCircumflex = "\xCC\x82";  // U+0302
const std::string kTilde = "\xCC\x83";       // U+0303
const std::string kBreve = "\xCC\x86";       // U+0306
const std::string kHook = "\xCC\x89";        // U+0309
const std::string kHorn = "\xCC\x9B";        // U+031B
const std::string kDotBelow = "\xCC\xA3";    // U+0323

// "Nguyễn" and "Văn" decomposed: e + circumflex + tilde, a + breve.
const std::string kNguyenNfd = "Nguye" + kCircumflex + kTilde + "n";
const std::string kVanNfd = "Va" + kBreve + "n";
// "Trần" decomposed: a + circumflex + grave.
const std::string kTranNfd = "Tra" + kCircumflex + kGrave + "n";

class SearchFixture : public StoreFixture {
 public:
  SearchFixture() {
    add_patient("Nguyễn Văn An", "Thôn Đông");
    add_patient("Đặng Thị Thu", "Thôn Tây");
    add_patient("Lê Văn Bình", "Xóm Bãi");
    add_patient("Trương Thị Hương", "Thôn Đông");
    add_patient(kTranNfd + " " + kVanNfd + " Cường", "Xóm Bãi");  // typed on a device that sends NFD
  }
};

}  // namespace

TEST_CASE("folding drops Vietnamese diacritics, lower-cases and collapses spaces", "[core][search][text]") {
  CHECK(fold_for_search("Nguyễn Văn  An") == "nguyen van an");
  CHECK(fold_for_search("  Trương   Thị\tHương  ") == "truong thi huong");
  CHECK(fold_for_search("ĐẶNG Thị Đào") == "dang thi dao");
  CHECK(fold_for_search("đ Đ") == "d d");
  CHECK(fold_for_search("Ư Ơ ư ơ Ă Â Ê Ô") == "u o u o a a e o");
  CHECK(fold_for_search("Huỳnh Lưu Ngọc Hiếu") == "huynh luu ngoc hieu");
  CHECK(fold_for_search("") == "");
  CHECK(fold_for_search("   ") == "");
  CHECK(fold_for_search("H'Hen Niê") == "h'hen nie");
}

TEST_CASE("folding gives the same text for NFC and NFD input", "[core][search][text]") {
  CHECK(fold_for_search(kNguyenNfd) == "nguyen");
  CHECK(fold_for_search(kNguyenNfd + " " + kVanNfd) == fold_for_search("Nguyễn Văn"));
  // ữ = u + horn + tilde; ộ = o + circumflex + dot below (also in the other order).
  CHECK(fold_for_search("Ngu" + kHorn + kTilde + " Nho" + kCircumflex + kDotBelow) == "ngu nho");
  CHECK(fold_for_search("Nho" + kDotBelow + kCircumflex) == "nho");
  CHECK(fold_for_search("Thu" + kHorn + kHook + " Kha" + kAcute) == "thu kha");
}

TEST_CASE("utf-8 validity is checked", "[core][search][text]") {
  CHECK(is_valid_utf8("Nguyễn"));
  CHECK(is_valid_utf8(""));
  CHECK_FALSE(is_valid_utf8("Nguy\xE1\xBB"));  // cut in the middle of ễ
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));      // overlong
  CHECK_FALSE(is_valid_utf8("\xFF"));
  // Invalid bytes are folded as far as they decode, without crashing.
  CHECK_FALSE(fold_for_search("An\xFF").empty());
}

TEST_CASE("display width counts combining marks as nothing and wide characters as two", "[core][search][text]") {
  CHECK(display_width("Nguyễn") == 6);
  CHECK(display_width(kNguyenNfd) == 6);
  CHECK(display_width("阮") == 2);
}

TEST_CASE_METHOD(SearchFixture, "a search without diacritics finds the Vietnamese name", "[core][search]") {
  CHECK(search("nguyen van an") == Names{"Nguyễn Văn An"});
  CHECK(search("Nguyễn Văn An") == Names{"Nguyễn Văn An"});
  CHECK(search("NGUYEN") == Names{"Nguyễn Văn An"});
  CHECK(search("  nguyen   AN ") == Names{"Nguyễn Văn An"});
}

TEST_CASE_METHOD(SearchFixture, "every word must match the start of a word", "[core][search]") {
  CHECK(search("ngu") == Names{"Nguyễn Văn An"});
  CHECK(search("guyen").empty());  // not a prefix
  CHECK(search("nguyen binh").empty());
  // "van" matches the three names with Văn (one of them stored NFD) and no village.
  CHECK(search("van").size() == 3);
}

TEST_CASE_METHOD(SearchFixture, "đ and Đ match d", "[core][search]") {
  CHECK(search("dang") == Names{"Đặng Thị Thu"});
  CHECK(search("Đặng") == Names{"Đặng Thị Thu"});
  CHECK(search("đang thu") == Names{"Đặng Thị Thu"});
  CHECK(search("ĐANG") == Names{"Đặng Thị Thu"});
}

TEST_CASE_METHOD(SearchFixture, "decomposed (NFD) input finds a name stored composed, and the other way round",
                 "[core][search]") {
  CHECK(search(kNguyenNfd + " " + kVanNfd) == Names{"Nguyễn Văn An"});
  const std::string tran_nfd_name = kTranNfd + " " + kVanNfd + " Cường";
  CHECK(search("Trần Văn Cường") == Names{tran_nfd_name});
  CHECK(search("tran") == Names{tran_nfd_name});
}

TEST_CASE_METHOD(SearchFixture, "a search matches the village as well as the name", "[core][search]") {
  CHECK(search("dong") == Names{"Nguyễn Văn An", "Trương Thị Hương"});
  CHECK(search("Xóm Bãi").size() == 2);
  CHECK(search("an dong") == Names{"Nguyễn Văn An"});  // one word in the name, one in the village
  CHECK(search("an tay").empty());

  PatientQuery q;
  q.village = "THÔN ĐÔNG";
  auto rows = store->list_patients(q);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].patient.village == "Thôn Đông");
  q.village = "thon";  // the village filter is the whole village, not a prefix
  CHECK(store->list_patients(q).empty());
}

TEST_CASE_METHOD(SearchFixture, "a search that matches nothing finds nothing", "[core][search]") {
  CHECK(search("phuong").empty());
  CHECK(search("nguyen xyz").empty());
  CHECK(search("---").empty());
  CHECK(search("\"*").empty());
  CHECK(search("AND OR NOT").empty());  // FTS operators are plain words here
  CHECK(search("").size() == 5);        // no search: everyone
}

TEST_CASE_METHOD(SearchFixture, "a renamed patient is found by the new name only", "[core][search]") {
  PatientQuery q;
  q.search = "nguyen van an";
  const std::string id = store->list_patients(q).at(0).patient.id;
  PatientUpdate up;
  up.name = "Nguyễn Văn Ánh";
  up.village = "Xóm Bãi";
  must(store->update_patient(id, up));
  CHECK(search("anh") == Names{"Nguyễn Văn Ánh"});
  CHECK(search("nguyen dong").empty());
  CHECK(search("nguyen bai") == Names{"Nguyễn Văn Ánh"});
}

TEST_CASE_METHOD(StoreFixture, "a search over 100,000 imported patients finds exactly the matching ones",
                 "[core][search][large]") {
  // Names cycle through 10 family names x 5 middle names x 20 given names, so each
  // combination occurs 100 times; villages change every 1000 patients.
  const Names families = {"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng"};
  const Names middles = {"Văn", "Thị", "Hữu", "Minh", "Ngọc"};
  const Names givens = {"An", "Bình", "Cường", "Dũng", "Giang", "Hoa", "Khánh", "Lan", "Mai", "Nam",
                        "Oanh", "Phúc", "Quân", "Sơn", "Tâm", "Uyên", "Vy", "Xuân", "Yến", "Kiên"};
  const Names villages = {"Thôn Đông", "Thôn Tây", "Xóm Bãi", "Bản Mường"};
  constexpr int kPatients = 100'000;

  std::vector<std::pair<int64_t, PatientInput>> rows;
  rows.reserve(kPatients + 1);
  for (int i = 0; i < kPatients; ++i) {
    PatientInput in;
    in.name = families[i % 10] + " " + middles[(i / 10) % 5] + " " + givens[(i / 50) % 20];
    in.sex = i % 2 ? "male" : "female";
    in.birth = std::to_string(1930 + i % 90);
    in.village = villages[(i / 1000) % 4];
    rows.emplace_back(i + 2, std::move(in));
  }
  PatientInput needle;
  needle.name = "Đinh Bạch Tuyết";
  needle.sex = "female";
  needle.birth = "1999";
  needle.village = "Bản Phố";
  rows.emplace_back(kPatients + 2, needle);

  ImportResult r = store->import_patients(rows, false);
  REQUIRE(r.rejected.empty());
  REQUIRE(r.imported == kPatients + 1);
  CHECK(store->change_count() == kPatients + 2);  // plus the station

  CHECK(search("tuyet") == Names{"Đinh Bạch Tuyết"});
  CHECK(search("bach pho") == Names{"Đinh Bạch Tuyết"});

  auto dang_thi_hoa = search("dang thi hoa");
  CHECK(dang_thi_hoa.size() == 100);
  for (const auto& n : dang_thi_hoa) CHECK(n == "Đặng Thị Hoa");

  PatientQuery q;
  q.search = "DANG THI HOA";
  q.village = "xom bai";
  CHECK(store->list_patients(q).size() == 25);

  CHECK(search("vu minh").size() == 2000);
  CHECK(search("nguyen van an zzz").empty());
}
