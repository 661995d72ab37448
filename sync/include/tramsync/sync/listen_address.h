// Where `serve` listens: HOST:PORT as typed (is_loopback_host says whether
// only this machine can reach it).
#pragma once

#include <string>

#include "tramsync/core/status.h"

namespace tramsync::sync {

struct ListenAddress {
  std::string host;  // as given, without brackets: "0.0.0.0", "127.0.0.1", "::1", "localhost"
  int port = 0;      // 0: any free port (the one chosen is known after binding)
  bool ipv6 = false;  // host is an IPv6 literal (written in brackets in a URL)

  // "HOST:PORT", with an IPv6 host in brackets.
  std::string host_port(int actual_port) const;
  // "https://HOST:PORT", with an IPv6 host in brackets.
  std::string url(const std::string& scheme, int actual_port) const { return scheme + "://" + host_port(actual_port); }
};

// Parses "HOST:PORT" or "[IPV6]:PORT" (PORT 0..65535; 0 picks a free port).
// An IPv6 literal must be in brackets, so "::1:8443" is refused rather than
// guessed at. Errors name the field "listen".
Result<ListenAddress> parse_listen_address(const std::string& text);

}  // namespace tramsync::sync
