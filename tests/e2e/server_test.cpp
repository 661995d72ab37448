// tramsync-server end to end: the real program on 127.0.0.1, a free port, its
// own temporary directory per test. TLS and the certificate, the endpoints the
// server adds (/healthz, /metrics, JSON errors), the admin commands and what
// they do to the sync endpoints (enrollment codes, revocation), limits on what
// a request may carry, the request log, and a clean stop.
#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <regex>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "e2e_support.h"
#include "server_process.h"
#include "tramsync/sync/tls.h"

namespace tramsync::e2e {

namespace {

// A scratch directory, its central file and certificate directory, and a way
// to run the admin commands on that file.
struct Centre {
  TempDir dir;
  std::string db = dir.file("central.db");
  std::string tls_dir = dir.file("tls");

  CliResult admin(std::vector<std::string> args) const {
    std::vector<std::string> full{"--db", db};
    full.insert(full.end(), args.begin(), args.end());
    return spawn_and_capture(kTramsyncServer, full, {"PATH=/usr/bin:/bin"}, dir.path().string());
  }
  json admin_ok(std::vector<std::string> args) const {
    args.emplace_back("--json");
    CliResult r = admin(args);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    return r.parsed();
  }
  // `station add`, returning the code it printed.
  std::string add_station(const std::string& code) const {
    json j = admin_ok({"station", "add", "--code", code, "--name", "Trạm Y tế " + code});
    return j.at("enrollment_code").get<std::string>();
  }
};

json body_json(const httplib::Result& res) {
  REQUIRE(res);
  json j = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  INFO("body: " << res->body);
  REQUIRE(j.is_object());
  return j;
}

// POST /v1/enroll as a device would; no device_name, so the code's is used.
httplib::Result enroll(int port, const std::string& code, const std::string& device_id) {
  json req = {{"protocol", 1}, {"code", code}, {"device_id", device_id}, {"database_id", random_uuid()}};
  return https_post(port, "/v1/enroll", req.dump());
}

// Enrolls a new device with `code` and returns its bearer token.
std::string enroll_token(int port, const std::string& code, std::string* device_id = nullptr) {
  std::string id = random_uuid();
  auto res = enroll(port, code, id);
  REQUIRE(res);
  INFO(res->body);
  REQUIRE(res->status == 200);
  if (device_id) *device_id = id;
  return body_json(res).at("token").get<std::string>();
}

}  // namespace

TEST_CASE("serve prints its certificate's fingerprint and keeps the certificate across restarts",
          "[e2e][server][tls]") {
  Centre c;
  std::string first;
  {
    auto server = ServerProcess::start(c.db, c.tls_dir);
    CHECK(server->port > 0);
    CHECK(server->url == "https://127.0.0.1:" + std::to_string(server->port));
    auto fp = tls::certificate_fingerprint(c.tls_dir + "/cert.pem");
    REQUIRE(fp);
    CHECK(server->fingerprint == *fp);
    CHECK(std::regex_match(server->fingerprint, std::regex("([0-9A-F]{2}:){31}[0-9A-F]{2}")));
    first = server->fingerprint;
    CHECK(server->stop() == 0);
  }
  auto again = ServerProcess::start(c.db, c.tls_dir);
  CHECK(again->fingerprint == first);
  CHECK(again->port > 0);
}

TEST_CASE("serve prints the fingerprint line, then the listening line, a bad command line is a usage error",
          "[e2e][server][tls]") {
  Centre c;
  {
    auto server = ServerProcess::launch({"--db", c.db, "serve", "--listen", "127.0.0.1:0", "--self-signed", c.tls_dir},
                                        c.dir.file("text.log"));
    auto first = server->read_line(std::chrono::seconds(20));
    auto second = server->read_line(std::chrono::seconds(20));
    REQUIRE(first);
    REQUIRE(second);
    auto fp = tls::certificate_fingerprint(c.tls_dir + "/cert.pem");
    REQUIRE(fp);
    CHECK(*first == "fingerprint SHA256 " + *fp);
    std::smatch m;
    REQUIRE(std::regex_match(*second, m, std::regex("listening on https://127\\.0\\.0\\.1:([0-9]+)")));
    const int port = std::stoi(m[1].str());
    CHECK(port > 0);
    auto health = https_get(port, "/healthz");
    REQUIRE(health);
    CHECK(health->status == 200);
    CHECK(server->stop() == 0);
  }

  // A missing --listen: usage error (2), before anything is made.
  std::filesystem::remove(c.db);
  CliResult usage = c.admin({"serve", "--self-signed", c.tls_dir});
  CHECK(usage.exit_code == 2);
  CHECK_FALSE(std::filesystem::exists(c.db));
  // No certificate and no --insecure-http: usage error, nothing listens.
  CliResult none = c.admin({"serve", "--listen", "127.0.0.1:0"});
  INFO(none.describe());
  CHECK(none.exit_code == 2);
  CHECK_THAT(none.err, Catch::Contains("--self-signed"));
  CliResult bad_listen = c.admin({"serve", "--listen", "::1:8443", "--self-signed", c.tls_dir});
  CHECK(bad_listen.exit_code == 2);
  CHECK_THAT(bad_listen.err, Catch::Contains("brackets"));
  CliResult both = c.admin({"serve", "--listen", "127.0.0.1:0", "--self-signed", c.tls_dir, "--insecure-http"});
  CHECK(both.exit_code == 2);
}

TEST_CASE("the server's own endpoints answer JSON, metrics and errors over TLS 1.2 or newer only",
          "[e2e][server][tls]") {
  Centre c;
  auto server = ServerProcess::start(c.db, c.tls_dir);

  auto health = https_get(server->port, "/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(health->get_header_value("Content-Type").rfind("application/json", 0) == 0);
  CHECK(body_json(health).at("status") == "ok");

  auto status = https_get(server->port, "/v1/status");
  REQUIRE(status);
  CHECK(status->status == 200);
  json st = body_json(status);
  CHECK(st.at("protocol") == 1);
  CHECK(st.at("protocol_versions").is_array());
  CHECK(st.at("protocol_versions").at(0) == 1);
  CHECK(st.at("name") == "centre");  // the central file's name, kept across opens

  auto metrics = https_get(server->port, "/metrics");
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK(metrics->get_header_value("Content-Type").rfind("text/plain", 0) == 0);
  CHECK_THAT(metrics->body, Catch::Contains("tramsync_requests_total 1"));  // the /v1/status above

  auto missing = https_get(server->port, "/no/such/thing");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  json nf = body_json(missing);
  CHECK(nf.at("code") == "not_found");
  CHECK_THAT(nf.at("error").get<std::string>(), Catch::Contains("/no/such/thing"));

  auto wrong_method = https_get(server->port, "/v1/push");
  REQUIRE(wrong_method);
  CHECK(wrong_method->status == 405);
  CHECK(body_json(wrong_method).at("code") == "method_not_allowed");

  SECTION("plain HTTP to the TLS port gets no answer") {
    httplib::Client plain("127.0.0.1", server->port);
    plain.set_connection_timeout(std::chrono::seconds(5));
    plain.set_read_timeout(std::chrono::seconds(5));
    auto res = plain.Get("/healthz");
    CHECK_FALSE(res);
  }

  SECTION("a client limited to TLS 1.1 is refused; the same client allowed TLS 1.2 gets in") {
    auto attempt = [&](int max_version) {
      auto client = tls_client(server->port);
      SSL_CTX* ctx = client->ssl_context();
      // Security level 0 so that this OpenSSL offers TLS 1.1 at all: the
      // refusal must come from the server.
      SSL_CTX_set_security_level(ctx, 0);
      SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
      SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
      SSL_CTX_set_max_proto_version(ctx, max_version);
      return client->Get("/healthz");
    };
    auto old = attempt(TLS1_1_VERSION);
    CHECK_FALSE(old);
    if (!old) CHECK(old.error() == httplib::Error::SSLConnection);
    auto modern = attempt(TLS1_2_VERSION);
    REQUIRE(modern);
    CHECK(modern->status == 200);
  }
}

TEST_CASE("a connection waiting for a worker is served next: the busy one is told to close, not kept alive",
          "[e2e][server][load]") {
  Centre c;
  auto server = ServerProcess::start(c.db, c.tls_dir, {"--threads", "1"});
  auto a = tls_client(server->port);
  a->set_keep_alive(true);
  auto first = a->Get("/healthz");
  REQUIRE(first);
  CHECK(first->status == 200);
  CHECK(first->get_header_value("Connection") != "close");  // nobody waits: kept alive

  // B connects while A's kept-alive connection holds the only worker.
  std::atomic<bool> b_ok{false};
  std::atomic<int64_t> b_ms{-1};
  std::thread b([&] {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = tls_client(server->port)->Get("/healthz");
    b_ok = r && r->status == 200;
    b_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // B's connection is accepted and queued
  auto second = a->Get("/healthz");
  REQUIRE(second);
  CHECK(second->status == 200);
  CHECK(second->get_header_value("Connection") == "close");
  b.join();
  CHECK(b_ok);
  // Kept alive, A's connection would have held the worker for the 5 s idle timeout.
  CHECK(b_ms < 4000);
  // A reconnects by itself for its next request.
  auto third = a->Get("/healthz");
  REQUIRE(third);
  CHECK(third->status == 200);
}

TEST_CASE("plain HTTP (--insecure-http) is refused off loopback and served on loopback", "[e2e][server][tls]") {
  Centre c;
  for (const char* addr : {"0.0.0.0:0", "192.0.2.10:8080", "[::]:0"}) {
    CliResult r = c.admin({"serve", "--listen", addr, "--insecure-http"});
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    REQUIRE(r.error_lines().size() == 1);
    CHECK_THAT(r.error_lines()[0], Catch::Contains("loopback"));
    CHECK(r.out.empty());
  }
  CliResult j = c.admin({"serve", "--listen", "0.0.0.0:0", "--insecure-http", "--json"});
  CHECK(j.exit_code == 1);
  CHECK_THAT(j.parsed().at("error").get<std::string>(), Catch::Contains("loopback"));

  auto server = ServerProcess::start(c.db, "", {"--insecure-http"});
  CHECK(server->url == "http://127.0.0.1:" + std::to_string(server->port));
  CHECK(server->fingerprint.empty());
  httplib::Client plain("127.0.0.1", server->port);
  auto res = plain.Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 200);
}

TEST_CASE("station add prints a one-time code: it enrolls one device, a second use is refused",
          "[e2e][server][enroll]") {
  Centre c;
  json added = c.admin_ok({"station", "add", "--code", "TYT-SINHO", "--name", "Trạm Y tế xã Sìn Hồ", "--district",
                           "Sìn Hồ", "--province", "Lai Châu", "--expires", "24"});
  const std::string code = added.at("enrollment_code").get<std::string>();
  CHECK(std::regex_match(code, std::regex("[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}")));
  CHECK(added.at("station").at("code") == "TYT-SINHO");
  CHECK(added.at("role") == "station");
  CHECK(added.at("expires_at").is_string());

  // The same code again is a conflict on the station; the file keeps one.
  CliResult dup = c.admin({"station", "add", "--code", "TYT-SINHO", "--name", "X"});
  CHECK(dup.exit_code == 1);
  CHECK(c.admin_ok({"station", "list"}).at("stations").size() == 1);

  // The text form shows the code prominently, with the expiry.
  CliResult text = c.admin({"station", "add", "--code", "TYT-MUONGTE", "--name", "Trạm Y tế xã Mường Tè"});
  INFO(text.describe());
  CHECK(text.exit_code == 0);
  CHECK(std::regex_search(text.out, std::regex("\n      [2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}\n")));
  CHECK_THAT(text.out, Catch::Contains("Valid once, until"));

  auto server = ServerProcess::start(c.db, c.tls_dir);
  // Typed in lower case with spaces, as a person might.
  std::string typed = code;
  for (char& ch : typed) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::replace(typed.begin(), typed.end(), '-', ' ');
  auto first = enroll(server->port, typed, random_uuid());
  REQUIRE(first);
  INFO(first->body);
  CHECK(first->status == 200);
  json e = body_json(first);
  CHECK(std::regex_match(e.at("token").get<std::string>(), std::regex("[0-9a-f]{64}")));
  CHECK(e.at("station").at("code") == "TYT-SINHO");

  auto second = enroll(server->port, code, random_uuid());
  REQUIRE(second);
  CHECK(second->status >= 400);
  CHECK(second->status < 500);
  CHECK_THAT(body_json(second).at("error").get<std::string>(), Catch::Contains("already used"));
}

TEST_CASE("device add makes codes for more devices, a reviewer needs no station, device list shows them",
          "[e2e][server][devices]") {
  Centre c;
  const std::string station_code = c.add_station("TYT-SINHO");
  json mobile = c.admin_ok({"device", "add", "--station", "TYT-SINHO", "--role", "mobile", "--name", "tablet 2"});
  CHECK(mobile.at("role") == "mobile");
  json reviewer = c.admin_ok({"device", "add", "--role", "reviewer", "--name", "district office"});
  CHECK(reviewer.at("role") == "reviewer");
  CHECK(reviewer.at("station").is_null());

  CliResult no_station = c.admin({"device", "add", "--role", "mobile"});
  CHECK(no_station.exit_code == 2);
  CHECK_THAT(no_station.err, Catch::Contains("--station"));
  CliResult reviewer_with_station = c.admin({"device", "add", "--role", "reviewer", "--station", "TYT-SINHO"});
  CHECK(reviewer_with_station.exit_code == 1);
  CliResult unknown_station = c.admin({"device", "add", "--station", "TYT-NOWHERE"});
  CHECK(unknown_station.exit_code == 1);
  CliResult bad_role = c.admin({"device", "add", "--station", "TYT-SINHO", "--role", "admin"});
  CHECK(bad_role.exit_code == 2);

  CHECK(c.admin_ok({"device", "list"}).at("devices").empty());
  {
    auto server = ServerProcess::start(c.db, c.tls_dir);
    enroll_token(server->port, station_code);
    enroll_token(server->port, mobile.at("enrollment_code").get<std::string>());
    enroll_token(server->port, reviewer.at("enrollment_code").get<std::string>());
  }
  json listed = c.admin_ok({"device", "list"});
  CHECK(listed.at("clock_warnings") == 0);
  json list = listed.at("devices");
  REQUIRE(list.size() == 3);
  std::map<std::string, json> by_role;
  for (const auto& d : list) by_role[d.at("role").get<std::string>()] = d;
  CHECK(by_role.at("station").at("station") == "TYT-SINHO");
  CHECK(by_role.at("mobile").at("name") == "tablet 2");
  CHECK(by_role.at("reviewer").at("station").is_null());
  for (const auto& d : list) {
    CHECK(d.at("revoked") == false);
    CHECK(d.at("clock_warning") == false);
    CHECK(d.contains("clock_skew_ms"));
    CHECK(d.contains("last_seen_at"));
    CHECK_FALSE(d.contains("token_hash"));
  }
  CliResult table = c.admin({"device", "list"});
  CHECK(table.exit_code == 0);
  CHECK_THAT(table.out, Catch::Contains("CLOCK"));
  CHECK_THAT(table.out, Catch::Contains("tablet 2"));
}

TEST_CASE("a device whose clock runs days ahead is flagged in device list", "[e2e][server][devices]") {
  Centre c;
  const std::string code = c.add_station("TYT-SINHO");
  std::string device_id;
  {
    auto server = ServerProcess::start(c.db, c.tls_dir);
    std::string token = enroll_token(server->port, code, &device_id);
    const int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    httplib::Headers h = bearer(token);
    h.emplace("X-TramSync-Time", std::to_string(now_ms + 2 * 86400 * 1000LL + 60'000));
    auto res = https_get(server->port, "/v1/status", h);
    REQUIRE(res);
    CHECK(res->status == 200);
  }
  json listed = c.admin_ok({"device", "list"});
  CHECK(listed.at("clock_warnings") == 1);
  json list = listed.at("devices");
  REQUIRE(list.size() == 1);
  CHECK(list[0].at("clock_warning") == true);
  CHECK(list[0].at("clock_skew_ms").get<int64_t>() > 2 * 86400 * 1000LL);
  CliResult table = c.admin({"device", "list"});
  CHECK_THAT(table.out, Catch::Contains("clock ahead 2d 0h"));
}

TEST_CASE("a revoked device's token is refused with 401 saying it was revoked", "[e2e][server][devices]") {
  Centre c;
  const std::string code = c.add_station("TYT-SINHO");
  auto server = ServerProcess::start(c.db, c.tls_dir);
  std::string device_id;
  const std::string token = enroll_token(server->port, code, &device_id);

  auto before = https_get(server->port, "/v1/status", bearer(token));
  REQUIRE(before);
  CHECK(before->status == 200);
  CHECK(body_json(before).at("device").at("id") == device_id);

  // Revoked while the server runs, by a prefix of the id as `device list` shows it.
  json revoked = c.admin_ok({"device", "revoke", device_id.substr(0, 8)});
  CHECK(revoked.at("id") == device_id);
  CHECK(revoked.at("revoked") == true);

  auto after = https_get(server->port, "/v1/status", bearer(token));
  REQUIRE(after);
  CHECK(after->status == 401);
  json err = body_json(after);
  CHECK_THAT(err.at("error").get<std::string>(), Catch::Contains("revoked"));
  auto pull = https_get(server->port, "/v1/pull?after=0", bearer(token));
  REQUIRE(pull);
  CHECK(pull->status == 401);

  CliResult unknown = c.admin({"device", "revoke", "ffffffff"});
  CHECK(unknown.exit_code == 1);
}

TEST_CASE("what a request may carry: malformed JSON is 400, more than 8 MiB is 413, a gzip bomb is 413",
          "[e2e][server][limits]") {
  Centre c;
  const std::string code = c.add_station("TYT-SINHO");
  auto server = ServerProcess::start(c.db, c.tls_dir);
  const std::string token = enroll_token(server->port, code);

  auto malformed = https_post(server->port, "/v1/push", "{\"protocol\": 1, \"changes\": [", bearer(token));
  REQUIRE(malformed);
  CHECK(malformed->status == 400);
  CHECK(body_json(malformed).at("code") == "bad_request");

  const std::string big(8 * 1024 * 1024 + 1, 'x');
  auto too_big = https_post(server->port, "/v1/push", big, bearer(token));
  INFO("error: " << httplib::to_string(too_big.error()) << "\nlog: " << server->log());
  REQUIRE(too_big);
  CHECK(too_big->status == 413);
  CHECK(body_json(too_big).at("code") == "too_large");

  {
    // 20 MB of zeros, gzipped to a few kilobytes: refused once 8 MiB have been inflated.
    auto client = tls_client(server->port);
    client->set_compress(true);
    const std::string zeros(20 * 1000 * 1000, '\0');
    auto bomb = client->Post("/v1/push", bearer(token), zeros, "application/json");
    REQUIRE(bomb);
    CHECK(bomb->status == 413);
    CHECK(body_json(bomb).at("code") == "too_large");
  }

  // Still serving.
  auto health = https_get(server->port, "/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
}

TEST_CASE("the request log is one JSON object per line and never holds a token or a code", "[e2e][server][log]") {
  Centre c;
  const std::string code = c.add_station("TYT-SINHO");
  auto server = ServerProcess::start(c.db, c.tls_dir);
  const std::string token = enroll_token(server->port, code);
  REQUIRE(https_get(server->port, "/v1/status", bearer(token))->status == 200);
  REQUIRE(https_get(server->port, "/v1/status", bearer(std::string(64, 'a')))->status == 401);
  REQUIRE(https_get(server->port, "/healthz")->status == 200);
  REQUIRE(https_get(server->port, "/nowhere")->status == 404);
  REQUIRE(server->stop() == 0);

  const std::string log = server->log();
  CHECK(log.find(token) == std::string::npos);
  CHECK(log.find(code) == std::string::npos);
  CHECK(log.find(std::string(64, 'a')) == std::string::npos);
  CHECK(log.find("Sìn Hồ") == std::string::npos);

  std::vector<json> requests;
  for (const auto& line : server->log_lines()) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    INFO(line);
    REQUIRE(j.is_object());
    CHECK(j.at("ts").is_string());
    if (j.contains("endpoint")) requests.push_back(j);
  }
  INFO(log);
  REQUIRE(requests.size() == 5);
  std::vector<std::string> endpoints;
  for (const auto& r : requests) {
    endpoints.push_back(r.at("endpoint").get<std::string>());
    CHECK(r.at("status").is_number_integer());
    CHECK(r.at("ms").is_number());
  }
  CHECK(endpoints == std::vector<std::string>{"enroll", "status", "status", "healthz", "other"});
  CHECK(requests[1].at("status") == 200);
  CHECK_FALSE(requests[1].at("device").get<std::string>().empty());
  CHECK(requests[1].at("station") == "TYT-SINHO");
  CHECK(requests[2].at("status") == 401);
  CHECK(requests[4].at("status") == 404);
}

TEST_CASE("SIGTERM stops the server: exit 0 within seconds and a last 'stopped' log line", "[e2e][server][stop]") {
  Centre c;
  auto server = ServerProcess::start(c.db, c.tls_dir);
  REQUIRE(https_get(server->port, "/v1/status")->status == 200);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(server->stop() == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  auto lines = server->log_lines();
  REQUIRE_FALSE(lines.empty());
  json last = json::parse(lines.back());
  CHECK(last.at("event") == "stopped");
  CHECK(last.at("signal") == "SIGTERM");
  CHECK(last.at("sync_requests") == 1);
  // The file is whole.
  CHECK(query_texts(c.db, "PRAGMA integrity_check") == std::vector<std::string>{"ok"});
}

}  // namespace tramsync::e2e

