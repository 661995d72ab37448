#include "tramsync/sync/auth.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <string>

using namespace tramsync;

namespace {

bool all_lower_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

TEST_CASE("a token is 256 random bits as 64 lower-case hex characters", "[sync][auth]") {
  const std::string a = auth::new_token();
  const std::string b = auth::new_token();
  CHECK(a.size() == 64);
  CHECK(all_lower_hex(a));
  CHECK(all_lower_hex(b));
  CHECK(a != b);
}

TEST_CASE("tokens do not repeat and use every hex digit", "[sync][auth]") {
  std::set<std::string> tokens;
  std::set<char> digits;
  for (int i = 0; i < 200; ++i) {
    std::string t = auth::new_token();
    digits.insert(t.begin(), t.end());
    tokens.insert(std::move(t));
  }
  CHECK(tokens.size() == 200);
  CHECK(digits.size() == 16);  // 12,800 digits: a stuck nibble would show
}

TEST_CASE("sha256_hex matches the FIPS 180-2 test vectors", "[sync][auth]") {
  CHECK(auth::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(auth::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Bytes, not C strings: an embedded NUL is hashed too.
  CHECK(auth::sha256_hex(std::string("a\0b", 3)) != auth::sha256_hex("a"));
}

TEST_CASE("constant_time_equal compares whole values of equal length", "[sync][auth]") {
  const std::string h = auth::sha256_hex("token");
  CHECK(auth::constant_time_equal(h, auth::sha256_hex("token")));
  CHECK(auth::constant_time_equal("", ""));

  std::string last_differs = h;
  last_differs.back() = last_differs.back() == '0' ? '1' : '0';
  CHECK_FALSE(auth::constant_time_equal(h, last_differs));
  std::string first_differs = h;
  first_differs.front() = first_differs.front() == '0' ? '1' : '0';
  CHECK_FALSE(auth::constant_time_equal(h, first_differs));

  SECTION("a prefix or an extension is not equal") {
    CHECK_FALSE(auth::constant_time_equal(h, h.substr(0, 63)));
    CHECK_FALSE(auth::constant_time_equal(h, h + "0"));
    CHECK_FALSE(auth::constant_time_equal("", h));
    CHECK_FALSE(auth::constant_time_equal("abc", std::string("abc\0", 4)));
  }
}

TEST_CASE("an enrollment code is three groups of four unambiguous characters", "[sync][auth]") {
  for (int i = 0; i < 50; ++i) {
    const std::string code = auth::new_enrollment_code();
    REQUIRE(code.size() == 14);
    CHECK(code[4] == '-');
    CHECK(code[9] == '-');
    for (std::size_t j = 0; j < code.size(); ++j) {
      if (j == 4 || j == 9) continue;
      INFO("code " << code << ", position " << j);
      CHECK(auth::kEnrollmentAlphabet.find(code[j]) != std::string_view::npos);
    }
  }
}

TEST_CASE("the enrollment alphabet has no look-alike characters", "[sync][auth]") {
  CHECK(auth::kEnrollmentAlphabet.size() == 31);
  for (char c : std::string_view("0O1IL")) {
    INFO(c);
    CHECK(auth::kEnrollmentAlphabet.find(c) == std::string_view::npos);
  }
  std::set<char> unique(auth::kEnrollmentAlphabet.begin(), auth::kEnrollmentAlphabet.end());
  CHECK(unique.size() == auth::kEnrollmentAlphabet.size());
}

TEST_CASE("enrollment codes differ and use the whole alphabet", "[sync][auth]") {
  std::set<std::string> codes;
  std::set<char> seen;
  for (int i = 0; i < 300; ++i) {
    std::string code = auth::normalize_enrollment_code(auth::new_enrollment_code());
    seen.insert(code.begin(), code.end());
    codes.insert(std::move(code));
  }
  CHECK(codes.size() == 300);
  // 3,600 draws over 31 symbols: a symbol that never appears means the
  // sampling is broken (the chance of a miss is below 1e-40).
  CHECK(seen.size() == auth::kEnrollmentAlphabet.size());
}

TEST_CASE("a typed enrollment code is normalized before comparing", "[sync][auth]") {
  CHECK(auth::normalize_enrollment_code("abcd efgh-jkmn") == "ABCDEFGHJKMN");
  CHECK(auth::normalize_enrollment_code(" ABCD-EFGH-JKMN ") == "ABCDEFGHJKMN");
  CHECK(auth::normalize_enrollment_code("abcdefghjkmn") == "ABCDEFGHJKMN");
  const std::string code = auth::new_enrollment_code();
  CHECK(auth::normalize_enrollment_code(code) ==
        auth::normalize_enrollment_code(code.substr(0, 4) + " " + code.substr(5, 4) + code.substr(10)));
  SECTION("other characters are kept, so a wrong one does not match") {
    CHECK(auth::normalize_enrollment_code("abcd_efgh") == "ABCD_EFGH");
    CHECK(auth::normalize_enrollment_code("abcd.efgh") != auth::normalize_enrollment_code("abcdefgh"));
  }
}
