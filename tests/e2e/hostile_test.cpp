// Hostile requests against every endpoint the central server mounts
// (/v1/enroll, /v1/push, /v1/pull, /v1/status, /v1/reports/NAME,
// /v1/conflicts, /v1/conflicts/ID/resolve, /v1/quarantine, and paths and
// methods it does not serve): each is refused with the right 4xx and a message
// naming the field or the rule, the server goes on answering, and the central
// file's content is exactly what it was. Guessed enrollment codes run into
// the rate limit, which a forged X-Forwarded-For does not get around.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "e2e_support.h"
#include "server_process.h"
#include "sync_fixture.h"

namespace tramsync::e2e {
namespace {

struct Hostile {
  std::string what;
  std::string method;  // GET, POST, PUT, DELETE
  std::string path;
  std::string who;  // whose Authorization header: a key of the test's tokens, "" for none
  std::string body;
  int status;
  std::string code;    // the answer's "code"
  std::string phrase;  // the answer's "error" contains it
  httplib::Headers headers = {};
  bool gzip = false;  // the client gzips the body (Content-Encoding: gzip)
};

httplib::Result send(int port, const Hostile& h, const std::map<std::string, std::string>& auth) {
  auto client = tls_client(port);
  if (h.gzip) client->set_compress(true);
  httplib::Headers headers = h.headers;
  if (!h.who.empty()) headers.emplace("Authorization", auth.at(h.who));
  if (h.method == "GET") return client->Get(h.path.c_str(), headers);
  if (h.method == "POST") return client->Post(h.path.c_str(), headers, h.body, "application/json");
  if (h.method == "PUT") return client->Put(h.path.c_str(), headers, h.body, "application/json");
  return client->Delete(h.path.c_str(), headers, h.body, "application/json");
}

// An enrollment request's body with `fields` over a well-formed default.
std::string enroll_body(const std::string& code, json fields = json::object()) {
  json j = {{"protocol", 1}, {"code", code}, {"device_id", random_uuid()}, {"database_id", random_uuid()}};
  j.update(fields);
  return j.dump();
}

// A push of one change with `fields` over a well-formed household change.
std::string push_body(const std::string& origin, const std::string& station_id, json fields = json::object()) {
  json change = {{"seq", 1},
                 {"origin", origin},
                 {"origin_seq", 1},
                 {"hlc", 117646295040000000LL},
                 {"station_id", station_id},
                 {"kind", "household"},
                 {"record_id", random_uuid()},
                 {"payload", {{"op", "upsert"}, {"fields", {{"head", "x"}}}}}};
  change.update(fields);
  return json{{"protocol", 1}, {"changes", json::array({change})}}.dump();
}

}  // namespace

TEST_CASE("a corpus of hostile requests to every endpoint is refused with the right 4xx and changes nothing",
          "[e2e][hostile]") {
  TempDir dir;
  // Enough enrollment attempts for the corpus; the limit has its own test below.
  Centre c(dir, {"--enroll-attempts-per-minute", "100000"});
  const int port = c.server().port;

  // Two stations with a patient each, synced; a reviewer; a revoked mobile.
  Station a(dir, "a"), b(dir, "b");
  a.cli.ok({"init", "--station", "TYT-A", "--name", "Trạm A"});
  const std::string used_code = c.station("TYT-A", "Trạm A");
  a.enroll(c, used_code);
  a.patient("Giàng Thị Hostile");
  a.sync();
  b.init_and_enroll(c, "TYT-B", "Trạm B");
  b.patient("Sùng A Hostile");
  b.sync();
  const std::string reviewer = reviewer_token(c, dir);
  const std::string a_device = device_of(a.db()), a_station = query_texts(a.db(), "SELECT id FROM stations").at(0);
  std::string revoked_device = random_uuid();
  auto revoked_enroll = https_post(port, "/v1/enroll",
                                   json{{"protocol", 1},
                                        {"code", c.device_code("TYT-A", "mobile")},
                                        {"device_id", revoked_device},
                                        {"database_id", random_uuid()}}
                                       .dump());
  REQUIRE(revoked_enroll);
  REQUIRE(revoked_enroll->status == 200);
  const std::string revoked = json::parse(revoked_enroll->body).at("token");
  c.admin({"device", "revoke", revoked_device});
  // Codes nobody has used: they must stay unused through the corpus.
  const std::string fresh_a = c.device_code("TYT-A", "mobile");
  const std::string fresh_b = c.device_code("TYT-B", "mobile");

  const std::map<std::string, std::string> auth = {
      {"station", "Bearer " + token_of(a.db())},
      {"other", "Bearer " + token_of(b.db())},
      {"reviewer", "Bearer " + reviewer},
      {"revoked", "Bearer " + revoked},
      {"garbage", "Bearer not-a-token"},
      {"unknown", "Bearer " + std::string(64, 'a')},
      {"basic", "Basic YWRtaW46YWRtaW4="},
  };

  const std::string over_limit(8 * 1024 * 1024 + 1, 'x');
  const std::string zeros(20 * 1000 * 1000, '\0');  // gzips to ~20 KB
  const std::string nested_open(100'000, '[');
  const std::string nested_closed = nested_open + std::string(100'000, ']');
  const std::string bad_utf8 = "Gi\xe0ng \xc3\x28 \xff\xfe";
  const std::string big_string(1024 * 1024, 'A');
  const std::string huge_number = "1" + std::string(400, '0');
  const std::string resolve = "/v1/conflicts/" + random_uuid() + "/resolve";
  const std::string household = push_body(a_device, a_station);
  std::vector<json> many;
  for (int i = 1; i <= 2001; ++i) {
    many.push_back(json::parse(push_body(a_device, a_station, {{"seq", i}, {"origin_seq", i}})).at("changes").at(0));
  }
  const std::string too_many = json{{"protocol", 1}, {"changes", many}}.dump();

  const std::vector<Hostile> corpus = {
      // --- POST /v1/enroll -------------------------------------------------------------
      {"enroll: malformed JSON", "POST", "/v1/enroll", "", "{\"protocol\": 1, \"code\": ", 400, "bad_request",
       "JSON object"},
      {"enroll: truncated JSON", "POST", "/v1/enroll", "", enroll_body(fresh_a).substr(0, 30), 400, "bad_request",
       "JSON object"},
      {"enroll: an array, not an object", "POST", "/v1/enroll", "", "[\"" + fresh_a + "\"]", 400, "bad_request",
       "JSON object"},
      {"enroll: an empty body", "POST", "/v1/enroll", "", "", 400, "bad_request", "JSON object"},
      {"enroll: no protocol", "POST", "/v1/enroll", "", json{{"code", fresh_a}}.dump(), 400, "unsupported_protocol",
       "protocol"},
      {"enroll: protocol as a string", "POST", "/v1/enroll", "", enroll_body(fresh_a, {{"protocol", "1"}}), 400,
       "unsupported_protocol", "protocol"},
      {"enroll: protocol a 401-digit number", "POST", "/v1/enroll", "",
       "{\"protocol\": " + huge_number + ", \"code\": \"" + fresh_a + "\"}", 400, "bad_request", "JSON object"},
      {"enroll: protocol 2", "POST", "/v1/enroll", "", enroll_body(fresh_a, {{"protocol", 2}}), 400,
       "unsupported_protocol", "speaks protocol 1"},
      {"enroll: code a number", "POST", "/v1/enroll", "", enroll_body("", {{"code", 12345678}}), 400, "bad_request",
       "code"},
      {"enroll: code null", "POST", "/v1/enroll", "", enroll_body("", {{"code", nullptr}}), 400, "bad_request",
       "code"},
      {"enroll: code of a megabyte", "POST", "/v1/enroll", "", enroll_body(big_string), 403, "refused", "code"},
      {"enroll: code 100,000 arrays deep", "POST", "/v1/enroll", "",
       "{\"protocol\": 1, \"code\": " + nested_closed + "}", 400, "bad_request", "nested at most 64 deep"},
      {"enroll: 100,000 unclosed '['", "POST", "/v1/enroll", "", nested_open, 400, "bad_request", "JSON object"},
      {"enroll: device_id not a UUID", "POST", "/v1/enroll", "", enroll_body(fresh_a, {{"device_id", "NOT-A-UUID"}}),
       400, "bad_request", "device_id"},
      {"enroll: device_id of a megabyte", "POST", "/v1/enroll", "", enroll_body(fresh_a, {{"device_id", big_string}}),
       400, "bad_request", "device_id"},
      {"enroll: device_id a number", "POST", "/v1/enroll", "", enroll_body(fresh_a, {{"device_id", 42}}), 400,
       "bad_request", "device_id"},
      {"enroll: device_name of 101 bytes", "POST", "/v1/enroll", "",
       enroll_body(fresh_a, {{"device_name", std::string(101, 'n')}}), 400, "bad_request", "device_name"},
      {"enroll: database_id of 101 bytes", "POST", "/v1/enroll", "",
       enroll_body(fresh_a, {{"database_id", std::string(101, 'd')}}), 400, "bad_request", "database_id"},
      {"enroll: invalid UTF-8", "POST", "/v1/enroll", "",
       "{\"protocol\": 1, \"code\": \"" + fresh_a + "\", \"device_name\": \"" + bad_utf8 + "\"}", 400, "bad_request",
       "JSON object"},
      {"enroll: a replayed code", "POST", "/v1/enroll", "", enroll_body(used_code), 403, "refused", "already used"},
      {"enroll: a guessed code", "POST", "/v1/enroll", "", enroll_body("ABCD-EFGH-JKMN"), 403, "refused",
       "not a valid enrollment code"},
      {"enroll: another station's code for this station", "POST", "/v1/enroll", "",
       enroll_body(fresh_b, {{"station_code", "TYT-A"}}), 403, "refused", "does not match"},
      {"enroll: another device's id from another file", "POST", "/v1/enroll", "",
       enroll_body(fresh_a, {{"device_id", a_device}}), 409, "conflict", "cannot take over"},
      {"enroll: a body over 8 MiB", "POST", "/v1/enroll", "", over_limit, 413, "too_large", "8388608 bytes"},
      {"enroll: a gzip bomb", "POST", "/v1/enroll", "", zeros, 413, "too_large", "after decompression", {}, true},
      {"enroll: a body that is not the gzip it claims", "POST", "/v1/enroll", "", enroll_body(fresh_a), 400,
       "bad_request", "corrupt gzip", {{"Content-Encoding", "gzip"}}},
      {"enroll: an unsupported Content-Encoding", "POST", "/v1/enroll", "", enroll_body(fresh_a), 415,
       "unsupported_media_type", "Content-Encoding: br is not supported", {{"Content-Encoding", "br"}}},
      {"push: an unsupported Content-Encoding", "POST", "/v1/push", "station", household, 415,
       "unsupported_media_type", "Content-Encoding: compress is not supported", {{"Content-Encoding", "compress"}}},

      // --- POST /v1/push ------------------------------------------------------------------
      {"push: no token", "POST", "/v1/push", "", household, 401, "unauthorized", "missing bearer token"},
      {"push: Basic auth", "POST", "/v1/push", "basic", household, 401, "unauthorized", "missing bearer token"},
      {"push: a malformed token", "POST", "/v1/push", "garbage", household, 401, "unauthorized", "unknown token"},
      {"push: an unknown token", "POST", "/v1/push", "unknown", household, 401, "unauthorized", "unknown token"},
      {"push: a revoked token", "POST", "/v1/push", "revoked", household, 401, "revoked", "revoked"},
      {"push: a reviewer's token", "POST", "/v1/push", "reviewer", household, 403, "forbidden", "reviewer"},
      {"push: malformed JSON", "POST", "/v1/push", "station", "{\"protocol\": 1, \"changes\": [", 400, "bad_request",
       "JSON object"},
      {"push: truncated JSON", "POST", "/v1/push", "station", household.substr(0, household.size() / 2), 400,
       "bad_request", "JSON object"},
      {"push: changes an object", "POST", "/v1/push", "station", "{\"protocol\": 1, \"changes\": {}}", 400,
       "bad_request", "changes"},
      {"push: changes of numbers", "POST", "/v1/push", "station", "{\"protocol\": 1, \"changes\": [1, 2]}", 400,
       "bad_request", "changes[0]"},
      {"push: hlc negative", "POST", "/v1/push", "station", push_body(a_device, a_station, {{"hlc", -5}}), 400,
       "bad_request", "hlc"},
      {"push: hlc 2^63", "POST", "/v1/push", "station",
       push_body(a_device, a_station, {{"hlc", 9223372036854775808ULL}}), 400, "bad_request", "hlc"},
      {"push: hlc a string", "POST", "/v1/push", "station", push_body(a_device, a_station, {{"hlc", "1"}}), 400,
       "bad_request", "hlc"},
      {"push: hlc 1e300", "POST", "/v1/push", "station", push_body(a_device, a_station, {{"hlc", 1e300}}), 400,
       "bad_request", "hlc"},
      {"push: seq negative", "POST", "/v1/push", "station", push_body(a_device, a_station, {{"seq", -1}}), 400,
       "bad_request", "seq"},
      {"push: origin_seq a 401-digit number", "POST", "/v1/push", "station",
       "{\"protocol\": 1, \"changes\": [{\"seq\": 1, \"origin_seq\": " + huge_number + "}]}", 400, "bad_request",
       "JSON object"},
      {"push: origin of 201 bytes", "POST", "/v1/push", "station",
       push_body(a_device, a_station, {{"origin", std::string(201, 'o')}}), 400, "bad_request", "origin"},
      {"push: kind a megabyte", "POST", "/v1/push", "station", push_body(a_device, a_station, {{"kind", big_string}}),
       400, "bad_request", "kind"},
      {"push: record_id an array", "POST", "/v1/push", "station",
       push_body(a_device, a_station, {{"record_id", json::array({1, 2})}}), 400, "bad_request", "record_id"},
      {"push: payload 100,000 arrays deep", "POST", "/v1/push", "station",
       "{\"protocol\": 1, \"changes\": [{\"seq\": 1, \"payload\": " + nested_closed + "}]}", 400, "bad_request",
       "nested at most 64 deep"},
      {"push: 100,000 unclosed '['", "POST", "/v1/push", "station", nested_open, 400, "bad_request", "JSON object"},
      {"push: 2001 changes", "POST", "/v1/push", "station", too_many, 413, "too_large", "at most 2000 changes"},
      {"push: protocol 2", "POST", "/v1/push", "station", "{\"protocol\": 2, \"changes\": []}", 400,
       "unsupported_protocol", "speaks protocol 1"},
      {"push: invalid UTF-8", "POST", "/v1/push", "station",
       push_body(a_device, a_station).replace(10, 0, "\"x\": \"" + bad_utf8 + "\", "), 400, "bad_request",
       "JSON object"},
      {"push: a body over 8 MiB", "POST", "/v1/push", "station", over_limit, 413, "too_large", "8388608 bytes"},
      {"push: a gzip bomb", "POST", "/v1/push", "station", zeros, 413, "too_large", "after decompression", {}, true},
      {"push: not the gzip it claims", "POST", "/v1/push", "station", household, 400, "bad_request", "corrupt gzip",
       {{"Content-Encoding", "gzip"}}},
      {"push: GET", "GET", "/v1/push", "station", "", 405, "method_not_allowed", "takes POST"},

      // --- GET /v1/pull -----------------------------------------------------------------
      {"pull: no token", "GET", "/v1/pull", "", "", 401, "unauthorized", "missing bearer token"},
      {"pull: a revoked token", "GET", "/v1/pull", "revoked", "", 401, "revoked", "revoked"},
      {"pull: an unknown token", "GET", "/v1/pull", "unknown", "", 401, "unauthorized", "unknown token"},
      {"pull: a negative cursor", "GET", "/v1/pull?after=-1", "station", "", 400, "bad_request", "after"},
      {"pull: a cursor of 20 digits", "GET", "/v1/pull?after=99999999999999999999", "station", "", 400,
       "bad_request", "after"},
      {"pull: a cursor past 2^62", "GET", "/v1/pull?after=4611686018427387905", "station", "", 400, "bad_request",
       "after"},
      {"pull: a cursor in exponent form", "GET", "/v1/pull?after=1e3", "station", "", 400, "bad_request", "after"},
      {"pull: a cursor with a NUL", "GET", "/v1/pull?after=1%00", "station", "", 400, "bad_request", "after"},
      {"pull: limit 0", "GET", "/v1/pull?limit=0", "station", "", 400, "bad_request", "limit"},
      {"pull: limit 5001", "GET", "/v1/pull?limit=5001", "station", "", 400, "bad_request", "limit"},
      {"pull: max_bytes 1", "GET", "/v1/pull?max_bytes=1", "station", "", 400, "bad_request", "max_bytes"},
      {"pull: protocol header 2", "GET", "/v1/pull", "station", "", 400, "unsupported_protocol",
       "protocol version 2", {{"X-TramSync-Protocol", "2"}}},
      {"pull: POST", "POST", "/v1/pull", "station", "{}", 405, "method_not_allowed", "takes GET"},

      // --- GET /v1/status -------------------------------------------------------------------
      {"status: a malformed token", "GET", "/v1/status", "garbage", "", 401, "unauthorized", "unknown token"},
      {"status: a revoked token", "GET", "/v1/status", "revoked", "", 401, "revoked", "revoked"},
      {"status: Basic auth", "GET", "/v1/status", "basic", "", 401, "unauthorized", "missing bearer token"},
      {"status: POST", "POST", "/v1/status", "", "{}", 405, "method_not_allowed", "takes GET"},

      // --- reviewer endpoints -------------------------------------------------------------------
      {"report: a station's token", "GET", "/v1/reports/stock", "station", "", 403, "forbidden", "reviewer"},
      {"report: another station's data by a station's token", "GET", "/v1/reports/stock?station=TYT-B", "station",
       "", 403, "forbidden", "reviewer"},
      {"report: no token", "GET", "/v1/reports/stock", "", "", 401, "unauthorized", "missing bearer token"},
      {"report: a revoked token", "GET", "/v1/reports/stock", "revoked", "", 401, "revoked", "revoked"},
      {"report: an unknown report", "GET", "/v1/reports/nosuchreport", "reviewer", "", 404, "not_found",
       "nosuchreport"},
      {"report: stale_days negative", "GET", "/v1/reports/stock?stale_days=-1", "reviewer", "", 400, "bad_request",
       "stale_days"},
      {"report: limit of 12 digits", "GET", "/v1/reports/stock?limit=999999999999", "reviewer", "", 400,
       "bad_request", "limit"},
      {"report: format xml", "GET", "/v1/reports/stock?format=xml", "reviewer", "", 400, "bad_request", "format"},
      {"report: a name of 41 characters", "GET", "/v1/reports/" + std::string(41, 'r'), "reviewer", "", 404,
       "not_found", "no such endpoint"},
      {"report: POST", "POST", "/v1/reports/stock", "reviewer", "{}", 405, "method_not_allowed", "takes GET"},
      {"conflicts: a station's token", "GET", "/v1/conflicts", "station", "", 403, "forbidden", "reviewer"},
      {"conflicts: status bogus", "GET", "/v1/conflicts?status=bogus", "reviewer", "", 400, "bad_request", "status"},
      {"conflicts: POST", "POST", "/v1/conflicts", "reviewer", "{}", 405, "method_not_allowed", "takes GET"},
      {"resolve: a station's token", "POST", resolve, "station", "{\"keep\": \"winner\"}", 403, "forbidden",
       "reviewer"},
      {"resolve: an unknown conflict", "POST", resolve, "reviewer", "{\"keep\": \"winner\"}", 404, "not_found",
       "conflict"},
      {"resolve: malformed JSON", "POST", resolve, "reviewer", "{\"keep\": ", 400, "bad_request", "JSON object"},
      {"resolve: keep a number", "POST", resolve, "reviewer", "{\"keep\": 123}", 400, "bad_request", "keep"},
      {"resolve: keep missing", "POST", resolve, "reviewer", "{}", 400, "bad_request", "keep"},
      {"resolve: note an object", "POST", resolve, "reviewer", "{\"keep\": \"winner\", \"note\": {}}", 400,
       "bad_request", "note"},
      {"resolve: protocol 2", "POST", resolve, "reviewer", "{\"keep\": \"winner\", \"protocol\": 2}", 400,
       "unsupported_protocol", "speaks protocol 1"},
      {"resolve: 100,000 unclosed '['", "POST", resolve, "reviewer", nested_open, 400, "bad_request", "JSON object"},
      {"resolve: a body over 8 MiB", "POST", resolve, "reviewer", over_limit, 413, "too_large", "8388608 bytes"},
      {"resolve: a gzip bomb", "POST", resolve, "reviewer", zeros, 413, "too_large", "after decompression", {}, true},
      {"resolve: GET", "GET", resolve, "reviewer", "", 405, "method_not_allowed", "takes POST"},
      {"resolve: an id of 65 characters", "POST", "/v1/conflicts/" + std::string(65, 'c') + "/resolve", "reviewer",
       "{\"keep\": \"winner\"}", 404, "not_found", "no such endpoint"},
      {"quarantine: a station's token", "GET", "/v1/quarantine", "station", "", 403, "forbidden", "reviewer"},
      {"quarantine: status bogus", "GET", "/v1/quarantine?status=bogus", "reviewer", "", 400, "bad_request",
       "status"},

      // --- what the server does not serve -------------------------------------------------------
      {"an unknown path", "GET", "/v1/nope", "station", "", 404, "not_found", "/v1/nope"},
      {"a path that climbs", "GET", "/v1/../../etc/passwd", "", "", 404, "not_found", "no such endpoint"},
      {"PUT on push", "PUT", "/v1/push", "station", household, 404, "not_found", "no such endpoint"},
      {"DELETE on status", "DELETE", "/v1/status", "station", "", 404, "not_found", "no such endpoint"},
      {"a path of 10,000 characters", "GET", "/v1/" + std::string(10'000, 'p'), "", "", 414, "uri_too_long",
       "too long"},
  };

  const DbSnapshot before = snapshot(c.db());
  std::map<int, int> statuses;
  for (const auto& h : corpus) {
    INFO("case: " << h.what);
    auto res = send(port, h, auth);
    REQUIRE(res);
    INFO("answer: " << res->status << " " << res->body.substr(0, 300));
    ++statuses[res->status];
    CHECK(res->status == h.status);
    json j = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
    REQUIRE(j.is_object());
    REQUIRE(j.contains("error"));
    if (!h.code.empty()) CHECK(j.value("code", "") == h.code);
    CHECK_THAT(j.at("error").get<std::string>(), Catch::Contains(h.phrase));
    // Still serving.
    auto status = https_get(port, "/v1/status");
    REQUIRE(status);
    CHECK(status->status == 200);
  }
  const DbSnapshot after = snapshot(c.db());
  INFO("tables changed: " << Catch::Detail::stringify(before.differing_tables(after)));
  CHECK(after.digest == before.digest);
  CHECK(before.differing_tables(after).empty());

  std::string seen;
  for (const auto& [status, n] : statuses) seen += " " + std::to_string(status) + "×" + std::to_string(n);
  WARN(corpus.size() << " hostile requests, answered" << seen);
  // The stations still sync, and nothing of the corpus reached them.
  a.sync();
  CHECK(query_int(c.db(), "SELECT count(*) FROM patients") == 2);
}

TEST_CASE("guessed enrollment codes run into the rate limit, which a forged X-Forwarded-For does not lift",
          "[e2e][hostile]") {
  TempDir dir;
  Centre c(dir);  // the default: 10 attempts a minute per address
  const int port = c.server().port;
  const std::string code = c.station("TYT-A", "Trạm A");
  const DbSnapshot before = snapshot(c.db());
  for (int i = 0; i < 10; ++i) {
    // Each from a different claimed address: without --trust-forwarded-for the header is not believed.
    auto res = https_post(port, "/v1/enroll", enroll_body("ABCD-EFGH-JK" + std::string(2, "MNPQRSTVWX"[i])),
                          {{"X-Forwarded-For", "203.0.113." + std::to_string(i)}});
    REQUIRE(res);
    CHECK(res->status == 403);
  }
  // The right code now waits like any other guess.
  auto limited = https_post(port, "/v1/enroll", enroll_body(code), {{"X-Forwarded-For", "198.51.100.1"}});
  REQUIRE(limited);
  CHECK(limited->status == 429);
  CHECK(limited->get_header_value("Retry-After") == "60");
  CHECK(json::parse(limited->body).at("code") == "rate_limited");
  CHECK(snapshot(c.db()).digest == before.digest);
  CHECK(https_get(port, "/v1/status")->status == 200);
}

TEST_CASE("behind a proxy (--trust-forwarded-for) the limit counts each client address apart", "[e2e][hostile]") {
  TempDir dir;
  Centre c(dir, {"--trust-forwarded-for", "--enroll-attempts-per-minute", "2"});
  const int port = c.server().port;
  const std::string code = c.station("TYT-A", "Trạm A");
  auto attempt = [&](const std::string& forwarded, const std::string& enroll_code) {
    auto res = https_post(port, "/v1/enroll", enroll_body(enroll_code), {{"X-Forwarded-For", forwarded}});
    REQUIRE(res);
    return res->status;
  };
  // The proxy appends the address it saw; what the client wrote before it is ignored.
  CHECK(attempt("10.9.9.9, 203.0.113.7", "ABCD-EFGH-JKMN") == 403);
  CHECK(attempt("10.9.9.8, 203.0.113.7", "ABCD-EFGH-JKMP") == 403);
  CHECK(attempt("10.9.9.7, 203.0.113.7", code) == 429);
  // Another client of the proxy still enrolls.
  CHECK(attempt("203.0.113.8", code) == 200);
  // The log names the client, not the proxy.
  CHECK_THAT(c.server().log(), Catch::Contains("\"remote\":\"203.0.113.8\""));
}

}  // namespace tramsync::e2e

namespace tramsync::e2e {
namespace {

// The permission bits of `path` (0 when it does not exist).
unsigned mode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

// Restores the process's umask when the test ends.
struct Umask {
  mode_t old;
  explicit Umask(mode_t m) : old(::umask(m)) {}
  ~Umask() { ::umask(old); }
};

}  // namespace

TEST_CASE("keys, certificates and databases are owner-only under umask 022, and no log holds a token, code or name",
          "[e2e][hostile][secrets]") {
  Umask permissive(022);
  TempDir dir;
  Centre c(dir);
  const int port = c.server().port;
  const std::string name = "Vàng Thị Bímật";  // distinctive: found nowhere else
  std::vector<CliResult> outputs;             // of every command that talks to the server
  auto logged = [&](CliResult r) {
    INFO(r.describe());
    CHECK(r.exit_code == 0);
    outputs.push_back(r);
    return r;
  };

  Station a(dir, "a");
  a.cli.ok({"init", "--station", "TYT-A", "--name", "Trạm A"});
  const std::string code = c.station("TYT-A", "Trạm A");
  logged(a.cli.run({"enroll", "--server", c.url(), "--code", code, "--pin", c.pin()}));
  a.patient(name);
  logged(a.cli.run({"sync"}));
  logged(a.cli.run({"sync", "--json"}));
  logged(a.cli.run({"status"}));
  // A second station pulls what the centre has; failures with tokens that are not right.
  Station b(dir, "b");
  b.init_and_enroll(c, "TYT-B", "Trạm B");
  logged(b.cli.run({"sync"}));
  const std::string token = token_of(a.db());
  std::string wrong = token;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  CHECK(https_get(port, "/v1/pull", bearer(wrong))->status == 401);
  CHECK(https_get(port, "/v1/status", {{"Authorization", "Bearer " + token + "x"}})->status == 401);
  CHECK(https_post(port, "/v1/enroll", enroll_body(code))->status == 403);  // the used code, again
  const std::string report = dir.file("stock.csv");
  CliResult r = spawn_and_capture(kTramsyncServer, {"--db", c.db(), "report", "stock", "--csv", "--output", report},
                                  {}, dir.path().string());
  INFO(r.describe());
  CHECK(r.exit_code == 0);

  // Owner-only, whatever the umask let through.
  CHECK(mode_of(dir.file("tls")) == 0700);
  CHECK(mode_of(dir.file("tls") + "/key.pem") == 0600);
  CHECK(mode_of(dir.file("tls") + "/cert.pem") == 0600);
  CHECK(mode_of(report) == 0600);
  for (const std::string& db : {c.db(), a.db(), b.db()}) {
    INFO(db);
    CHECK(mode_of(db) == 0600);
    for (const char* suffix : {"-wal", "-shm", "-journal"}) {
      if (std::filesystem::exists(db + suffix)) CHECK(mode_of(db + suffix) == 0600);
    }
  }
  CHECK(std::filesystem::exists(c.db() + "-wal"));  // the running server's, checked above

  // The server's stdout and its log, and what the CLI printed while syncing.
  REQUIRE(c.server().stop() == 0);
  std::string everything = c.server().out() + c.server().log();
  for (const auto& o : outputs) everything += o.out + o.err;
  for (const std::string& secret : {token, wrong, code, name, std::string("Bímật")}) {
    INFO("secret: " << secret);
    CHECK(everything.find(secret) == std::string::npos);
  }
  CHECK_THAT(everything, Catch::Contains("\"status\":401"));  // the failures were logged, without the tokens
}

}  // namespace tramsync::e2e
