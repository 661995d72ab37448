// The wire format of change batches: what a peer sends is what the other decodes,
// and a malformed batch is refused with the field that is wrong.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tramsync/sync/protocol.h"
#include "tramsync/sync/wire.h"

using tramsync::Change;
using nlohmann::json;
namespace wire = tramsync::wire;

namespace {
Change sample(int64_t seq) {
  Change c;
  c.seq = seq;
  c.origin = "2a9a8349-2217-4a6b-b58c-a511c61c045a";
  c.origin_seq = seq;
  c.hlc = (uint64_t{1763700000000} << 16) + static_cast<uint64_t>(seq);
  c.station_id = "7d4b38fd-d975-4612-9775-c4743dafc12c";
  c.kind = "patient";
  c.record_id = "9f094e7b-2c8b-4060-9a49-1a0469306db8";
  c.payload = R"({"op":"upsert","fields":{"name":"Nguyễn Văn An","village":"Bản Mới"},"future_field":{"x":1}})";
  return c;
}
}  // namespace

TEST_CASE("a batch decodes to the changes that were encoded, unknown payload fields included", "[sync][wire]") {
  std::vector<Change> in = {sample(1), sample(2)};
  auto out = wire::decode_batch(wire::encode_batch(in));
  REQUIRE(out.ok());
  REQUIRE(out->size() == 2);
  for (size_t i = 0; i < in.size(); ++i) {
    CHECK((*out)[i].origin == in[i].origin);
    CHECK((*out)[i].origin_seq == in[i].origin_seq);
    CHECK((*out)[i].hlc == in[i].hlc);
    CHECK((*out)[i].station_id == in[i].station_id);
    CHECK((*out)[i].kind == in[i].kind);
    CHECK((*out)[i].record_id == in[i].record_id);
    CHECK(json::parse((*out)[i].payload) == json::parse(in[i].payload));
  }
  CHECK(json::parse((*out)[0].payload).at("future_field").at("x") == 1);
  CHECK(json::parse(wire::encode_batch(in)).at("protocol") == tramsync::protocol::kVersion);
}

TEST_CASE("an HLC up to 2^63 - 1 survives the round trip, 2^63 and above is refused", "[sync][wire]") {
  // The change log stores an hlc in SQLite's signed 64-bit integer.
  Change c = sample(1);
  c.hlc = 0x7FFF'FFFF'FFFF'0001ULL;
  auto out = wire::decode_batch(wire::encode_batch({c}));
  REQUIRE(out.ok());
  CHECK(out->front().hlc == c.hlc);
  c.hlc = 0x8000'0000'0000'0000ULL;
  auto bad = wire::decode_batch(wire::encode_batch({c}));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().field == "changes[0].hlc");
}

TEST_CASE("a malformed batch is refused naming the field", "[sync][wire]") {
  json good = json::parse(wire::encode_batch({sample(1)}));
  struct Case {
    const char* what;
    std::string body;
    const char* field;
  };
  auto with = [&](auto mutate) {
    json j = good;
    mutate(j);
    return j.dump();
  };
  std::vector<Case> cases = {
      {"not JSON", "{\"protocol\": 1, \"changes\": [", "body"},
      {"not an object", "[1,2]", "body"},
      {"no protocol", with([](json& j) { j.erase("protocol"); }), "protocol"},
      {"future protocol", with([](json& j) { j["protocol"] = 99; }), "protocol"},
      {"changes not an array", with([](json& j) { j["changes"] = "x"; }), "changes"},
      {"origin_seq negative", with([](json& j) { j["changes"][0]["origin_seq"] = -4; }), "changes[0].origin_seq"},
      {"hlc a string", with([](json& j) { j["changes"][0]["hlc"] = "12"; }), "changes[0].hlc"},
      {"hlc negative", with([](json& j) { j["changes"][0]["hlc"] = -1; }), "changes[0].hlc"},
      {"empty origin", with([](json& j) { j["changes"][0]["origin"] = ""; }), "changes[0].origin"},
      {"kind missing", with([](json& j) { j["changes"][0].erase("kind"); }), "changes[0].kind"},
      {"payload an array", with([](json& j) { j["changes"][0]["payload"] = json::array(); }), "changes[0].payload"},
      {"change not an object", with([](json& j) { j["changes"][0] = 5; }), "changes[0]"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto r = wire::decode_batch(c.body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().field == c.field);
    CHECK_THAT(r.error().message(), Catch::Contains("change batch: ") && Catch::Contains(c.field));
  }
}

TEST_CASE("an empty batch is valid and decodes to no changes", "[sync][wire]") {
  auto r = wire::decode_batch(wire::encode_batch({}));
  REQUIRE(r.ok());
  CHECK(r->empty());
}

TEST_CASE("a batch nested deeper than kMaxJsonDepth is refused, one nested 100,000 deep too, without a crash",
          "[sync][wire]") {
  // body, changes, the change and its payload are 4 levels; `a` adds the rest.
  auto nested = [](int arrays) {
    json c = json::parse(wire::encode_batch({sample(1)}))["changes"][0];
    c["payload"] = json::object();
    std::string text = json{{"protocol", 1}, {"changes", json::array({c})}}.dump();
    const std::string deep = "{\"a\":" + std::string(static_cast<size_t>(arrays), '[') +
                             std::string(static_cast<size_t>(arrays), ']') + "}";
    return text.replace(text.find("\"payload\":{}") + 10, 2, deep);
  };
  const int room = tramsync::protocol::kMaxJsonDepth - 4;
  CHECK(wire::decode_batch(nested(room)).ok());
  auto too_deep = wire::decode_batch(nested(room + 1));
  REQUIRE_FALSE(too_deep.ok());
  CHECK(too_deep.error().field == "body");
  CHECK_FALSE(wire::decode_batch(nested(100'000)).ok());  // overflowed the stack re-serialising the payload
  // Brackets inside strings are text, not nesting.
  Change c = sample(1);
  c.payload = R"({"op":"upsert","fields":{"note":")" + std::string(1000, '[') + R"("}})";
  CHECK(wire::decode_batch(wire::encode_batch({c})).ok());
}
