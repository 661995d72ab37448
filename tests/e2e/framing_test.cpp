// Hostile HTTP framing over a raw TLS socket to the real server, whose read
// timeout is set short (2 s): ambiguous body lengths (request smuggling), bad
// chunk sizes, header floods, an endless request line, slowloris, a body
// trickled byte by byte, and more idle connections than the server has
// workers. Each gets the right 4xx or a closed connection, the server keeps
// serving others meanwhile, and nothing is stored.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "e2e_support.h"
#include "raw_tls.h"
#include "sync_fixture.h"

namespace tramsync::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int kReadTimeoutS = 2;

struct Attack {
  std::string what;
  std::string request;     // sent at once
  int status;              // the answer expected; 0: none, the connection is closed
  std::string phrase;      // the answer's body contains it
  bool or_closed = false;  // a connection closed without an answer is right too
  // Refused before the body was read: the answer says Connection: close and
  // the server closes, so the body is never read as a request.
  bool closes = true;
};

// The head of a POST to /v1/push with `headers` (each ending in CRLF) and the blank line.
std::string post_head(const std::string& token, const std::string& headers) {
  return "POST /v1/push HTTP/1.1\r\nHost: centre\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/json\r\n" + headers + "\r\n";
}

void check_still_serving(int port) {
  auto res = https_get(port, "/v1/status");
  REQUIRE(res);
  CHECK(res->status == 200);
}

double seconds_since(steady_clock::time_point t0) {
  return std::chrono::duration<double>(steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("hostile HTTP framing gets a 4xx or a closed connection and stores nothing", "[e2e][framing]") {
  TempDir dir;
  Centre c(dir, {"--read-timeout", std::to_string(kReadTimeoutS), "--keep-alive-timeout", "1"});
  const int port = c.server().port;
  Station a(dir, "a");
  a.init_and_enroll(c, "TYT-A", "Trạm A");
  a.patient("Giàng Thị Framing");
  a.sync();
  const std::string token = token_of(a.db());

  const std::string empty_push = "{\"protocol\": 1, \"changes\": []}";
  const std::string smuggled = "GET /v1/status HTTP/1.1\r\nHost: centre\r\n\r\n";
  const std::vector<Attack> attacks = {
      {"two Content-Length headers that disagree",
       post_head(token, "Content-Length: 5\r\nContent-Length: " + std::to_string(empty_push.size()) + "\r\n") +
           empty_push,
       400, "Content-Length: must be given once"},
      {"two equal Content-Length headers",
       post_head(token, "Content-Length: " + std::to_string(empty_push.size()) +
                            "\r\nContent-Length: " + std::to_string(empty_push.size()) + "\r\n") +
           empty_push,
       400, "Content-Length: must be given once"},
      {"Content-Length with chunked, smuggling a second request",
       post_head(token, "Content-Length: " + std::to_string(5 + smuggled.size()) +
                            "\r\nTransfer-Encoding: chunked\r\n") +
           "0\r\n\r\n" + smuggled,
       400, "only one of them"},
      {"chunked, then Content-Length",
       post_head(token, "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n") + "0\r\n\r\n" + smuggled, 400,
       "only one of them"},
      {"Transfer-Encoding gzip", post_head(token, "Transfer-Encoding: gzip\r\n") + empty_push, 400,
       "only chunked"},
      {"Transfer-Encoding twice",
       post_head(token, "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n", 400,
       "Transfer-Encoding: must be given once"},
      {"a negative Content-Length", post_head(token, "Content-Length: -5\r\n") + empty_push, 400,
       "decimal number"},
      {"Content-Length not a number", post_head(token, "Content-Length: abc\r\n") + empty_push, 400,
       "decimal number"},
      {"Content-Length of 20 digits", post_head(token, "Content-Length: 99999999999999999999\r\n") + empty_push, 400,
       "decimal number"},
      {"Content-Length as a list", post_head(token, "Content-Length: 30, 30\r\n") + empty_push, 400,
       "decimal number"},
      // httplib would read and drop all the announced bytes first, as slowly
      // as they come: refused before any of them is read.
      {"a Content-Length of a terabyte, its body never sent", post_head(token, "Content-Length: 1000000000000\r\n"),
       413, "at most 8388608 bytes"},
      // httplib would read such a body until the connection ends.
      {"a POST with neither Content-Length nor chunked", post_head(token, "") + empty_push, 411,
       "must say how long its body is"},
      {"a negative chunk size", post_head(token, "Transfer-Encoding: chunked\r\n") + "-1\r\nabc\r\n0\r\n\r\n", 400,
       "could not be read", true},
      {"a chunk size past 2^64", post_head(token, "Transfer-Encoding: chunked\r\n") + "fffffffffffffffff\r\nabc\r\n",
       400, "could not be read", true},
      {"a chunk size of 2^63 and three bytes",
       post_head(token, "Transfer-Encoding: chunked\r\n") + "7fffffffffffffff\r\nabc", 400,
       "could not be read", true},
      {"a chunk size that is not hex", post_head(token, "Transfer-Encoding: chunked\r\n") + "zz\r\nabc\r\n0\r\n\r\n",
       400, "could not be read", true},
      {"1000 headers", "GET /v1/status HTTP/1.1\r\nHost: centre\r\n" + [] {
         std::string h;
         for (int i = 0; i < 1000; ++i) h += "X-Flood-" + std::to_string(i) + ": v\r\n";
         return h;
       }() + "\r\n",
       431, "at most 100"},
      {"40 KB of headers", "GET /v1/status HTTP/1.1\r\nHost: centre\r\n" + [] {
         std::string h;
         for (int i = 0; i < 50; ++i) h += "X-Big-" + std::to_string(i) + ": " + std::string(800, 'v') + "\r\n";
         return h;
       }() + "\r\n",
       431, "bytes are accepted"},
      {"one header of 100 KB",
       "GET /v1/status HTTP/1.1\r\nHost: centre\r\nX-Huge: " + std::string(100'000, 'h') + "\r\n\r\n", 400, "",
       true, false},
      {"16 MB of headers", "GET /v1/status HTTP/1.1\r\nHost: centre\r\n" + [] {
         std::string h;
         while (h.size() < 16'000'000) h += "X-Endless: " + std::string(1000, 'e') + "\r\n";
         return h;
       }(),
       0, "", true},
      {"a request line of 100 KB", "GET /v1/status?" + std::string(100'000, 'q') + " HTTP/1.1\r\nHost: centre\r\n\r\n",
       414, "too long", true, false},
      {"a request line that is not HTTP", "HELLO THERE\r\n\r\n", 400, "could not be handled", true, false},
      {"an HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "could not be handled", true,
       false},
  };

  const DbSnapshot before = snapshot(c.db());
  std::map<std::string, int> outcomes;
  for (const auto& attack : attacks) {
    INFO("attack: " << attack.what);
    RawConnection conn(port);
    conn.send(attack.request);  // may fail half-way: the server has cut the connection
    auto got = conn.receive(milliseconds(kReadTimeoutS * 1000 + 3000));
    INFO("received (" << got.data.size() << " bytes, closed " << got.closed << "): " << got.data.substr(0, 300));
    if (got.status() != 0) {
      ++outcomes[std::to_string(got.status())];
      CHECK(got.status() == attack.status);
      CHECK_THAT(got.body(), Catch::Contains(attack.phrase));
      CHECK(got.answers() == 1);  // a smuggled request is never answered
      if (attack.closes) {
        CHECK_THAT(got.data, Catch::Contains("Connection: close"));
        CHECK(conn.closed_within(milliseconds(500)));  // before the 1 s keep-alive timeout
      }
    } else {
      ++outcomes["closed"];
      CHECK((attack.status == 0 || attack.or_closed));
      CHECK(got.closed);
    }
    check_still_serving(port);
  }
  CHECK(snapshot(c.db()).digest == before.digest);
  std::string seen;
  for (const auto& [o, n] : outcomes) seen += " " + o + "×" + std::to_string(n);
  WARN(attacks.size() << " framing attacks, answered" << seen);
}

TEST_CASE("slowloris: headers or a body trickled byte by byte are cut within the read timeout while others are served",
          "[e2e][framing]") {
  TempDir dir;
  Centre c(dir, {"--read-timeout", std::to_string(kReadTimeoutS), "--keep-alive-timeout", "1"});
  const int port = c.server().port;
  const std::string code = c.station("TYT-A", "Trạm A");
  const DbSnapshot before = snapshot(c.db());

  struct Trickle {
    std::string what, head;
  };
  const std::vector<Trickle> trickles = {
      {"headers", "GET /v1/status HTTP/1.1\r\nHost: centre\r\nX-Slow: "},
      {"a body", "POST /v1/enroll HTTP/1.1\r\nHost: centre\r\nContent-Type: application/json\r\n"
                 "Content-Length: 100000\r\n\r\n{\"protocol\": 1, \"code\": \""},
  };
  for (const auto& t : trickles) {
    INFO("trickling " << t.what);
    RawConnection slow(port);
    const auto t0 = steady_clock::now();
    REQUIRE(slow.send(t.head));
    bool closed = false;
    int served_meanwhile = 0;
    // One byte every 250 ms, well inside the 2 s read timeout, for at most 15 s.
    while (!closed && seconds_since(t0) < 15) {
      if (!slow.send("a")) break;
      closed = slow.closed_within(milliseconds(250));
      auto other = https_get(port, "/healthz");
      if (other && other->status == 200) ++served_meanwhile;
    }
    const double cut_after = seconds_since(t0);
    CHECK(slow.closed_within(milliseconds(1000)));
    CHECK(cut_after >= kReadTimeoutS - 0.5);
    CHECK(cut_after < kReadTimeoutS + 2.0);
    CHECK(served_meanwhile >= 3);
    WARN("trickled " << t.what << ": cut after " << cut_after << " s; " << served_meanwhile
                     << " other requests served meanwhile");
  }
  CHECK(snapshot(c.db()).digest == before.digest);
  // The log says why.
  CHECK_THAT(c.server().log(), Catch::Contains("connection_cut"));
  // A normal enrollment still works.
  CHECK(https_post(port, "/v1/enroll",
                   json{{"protocol", 1}, {"code", code}, {"device_id", random_uuid()}, {"database_id", random_uuid()}}
                       .dump())
            ->status == 200);
}

TEST_CASE("idle connections beyond the workers and the waiting room are closed at once, the rest within the timeout",
          "[e2e][framing]") {
  TempDir dir;
  Centre c(dir, {"--read-timeout", std::to_string(kReadTimeoutS), "--threads", "2", "--max-waiting", "2"});
  const int port = c.server().port;

  // Twelve connections that never say a word: two hold the workers, two wait, eight are too many.
  std::vector<std::unique_ptr<RawConnection>> idle;
  const auto t0 = steady_clock::now();
  for (int i = 0; i < 12; ++i) idle.push_back(std::make_unique<RawConnection>(port, /*tls=*/false));
  int closed_at_once = 0;
  for (auto& conn : idle) closed_at_once += conn->closed_within(milliseconds(100)) ? 1 : 0;
  CHECK(closed_at_once >= 8);
  int closed_later = 0;
  for (auto& conn : idle) closed_later += conn->closed_within(milliseconds(kReadTimeoutS * 2 * 1000 + 2000)) ? 1 : 0;
  CHECK(closed_later == 12);
  CHECK(seconds_since(t0) < kReadTimeoutS * 2 + 3);
  // Then it serves again, and said what it did.
  check_still_serving(port);
  CHECK_THAT(c.server().log(), Catch::Contains("connections_refused"));
}

TEST_CASE("TLS 1.0 and 1.1 and plain HTTP on the TLS port are refused, TLS 1.2 is served (openssl s_client)",
          "[e2e][framing][tls]") {
  TempDir dir;
  Centre c(dir);
  const int port = c.server().port;
  auto s_client = [&](const std::string& version) {
    // SECLEVEL=0 so that the client offers the old protocol at all: the refusal must be the server's.
    return spawn_and_capture("/usr/bin/openssl",
                             {"s_client", "-connect", "127.0.0.1:" + std::to_string(port), version, "-cipher",
                              "DEFAULT@SECLEVEL=0", "-brief"},
                             {"PATH=/usr/bin:/bin"}, dir.path().string());
  };
  for (const std::string v : {"-tls1", "-tls1_1"}) {
    CliResult r = s_client(v);
    INFO(r.describe());
    CHECK(r.exit_code != 0);
    // The server's protocol_version alert, not the client's own refusal.
    CHECK_THAT(r.err, Catch::Contains("alert protocol version"));
  }
  CliResult modern = s_client("-tls1_2");
  INFO(modern.describe());
  CHECK(modern.exit_code == 0);
  CHECK_THAT(modern.err + modern.out, Catch::Contains("TLSv1.2"));

  RawConnection plain(port, /*tls=*/false);
  REQUIRE(plain.send("GET /v1/status HTTP/1.1\r\nHost: centre\r\n\r\n"));
  auto got = plain.receive(milliseconds(5000), /*stop_at_answer=*/false);
  CHECK(got.closed);
  CHECK(got.data.find("HTTP/1.") == std::string::npos);
  check_still_serving(port);
}

}  // namespace tramsync::e2e
