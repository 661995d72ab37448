// Host and port parsing shared by the server's --listen and the client's URL,
// and the loopback rule that decides where plain HTTP is allowed.
#include <catch2/catch.hpp>

#include "tramsync/sync/address.h"
#include "tramsync/sync/transport.h"

using namespace tramsync;
using namespace tramsync::sync;

TEST_CASE("only addresses this machine alone can reach are loopback", "[sync][address]") {
  for (const char* h : {"localhost", "LOCALHOST", "127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"}) {
    INFO(h);
    CHECK(is_loopback_host(h));
  }
  for (const char* h : {"127.evil.example", "localhost.example", "0.0.0.0", "::", "10.0.0.5", "::ffff:10.0.0.5",
                        "128.0.0.1", ""}) {
    INFO(h);
    CHECK_FALSE(is_loopback_host(h));
  }
}

TEST_CASE("host and port split as typed, an IPv6 literal needs brackets", "[sync][address]") {
  auto v6 = split_host_port("[::1]:8443");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->port == "8443");
  CHECK(v6->ipv6);
  auto v4 = split_host_port("10.0.0.5:8443");
  REQUIRE(v4.ok());
  CHECK(v4->host == "10.0.0.5");
  CHECK_FALSE(v4->ipv6);
  CHECK(split_host_port("station.local")->port.empty());
  CHECK_FALSE(split_host_port("::1:8443").ok());
  CHECK_FALSE(split_host_port("[::1").ok());
  CHECK_FALSE(split_host_port("[not-v6]:1").ok());
  CHECK(parse_port("0", 0) == 0);
  CHECK_FALSE(parse_port("0", 1).has_value());
  CHECK_FALSE(parse_port("65536", 0).has_value());
  CHECK_FALSE(parse_port("80a", 0).has_value());
}

TEST_CASE("a server URL is https, or plain http to this machine only", "[sync][address]") {
  auto u = parse_server_url("https://[::1]:8443/");
  REQUIRE(u.ok());
  CHECK(u->host == "::1");
  CHECK(u->port == 8443);
  CHECK(parse_server_url("https://example.org")->port == 443);
  CHECK(parse_server_url("https://10.0.0.5:0").error().field == "server");
  CHECK_FALSE(parse_server_url("https://10.0.0.5:8443/v1").ok());
  CHECK_FALSE(parse_server_url("ftp://10.0.0.5").ok());
  // A token must never go in clear text to a name that merely starts like loopback.
  auto t = make_https_transport(HttpsOptions{"http://127.evil.example:80", "", "", 1000, 1000, true});
  REQUIRE_FALSE(t.ok());
  CHECK_THAT(t.error().message(), Catch::Matchers::Contains("must use https://"));
  CHECK(make_https_transport(HttpsOptions{"http://127.0.0.1:9", "", "", 1000, 1000, true}).ok());
}
