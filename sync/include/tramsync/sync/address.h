// Host and port as people type them, for the server's --listen and a client's
// server URL alike.
#pragma once

#include <optional>
#include <string>

#include "tramsync/core/status.h"

namespace tramsync::sync {

struct HostPort {
  std::string host;  // without brackets
  std::string port;  // the digits as typed ("" when absent); callers check its range
  bool ipv6 = false;  // host is an IPv6 literal (written in brackets)
};

// Splits "HOST[:PORT]" or "[IPV6][:PORT]". An IPv6 literal must be in
// brackets (so "::1:8443" is refused rather than guessed at) and must parse as
// IPv6. Errors are kInvalid with the rule and `text` as the value; the caller
// names the field.
Result<HostPort> split_host_port(const std::string& text);

// Parses PORT digits in [lo, 65535]; nullopt when it is not one.
std::optional<int> parse_port(const std::string& digits, int lo);

// True for addresses only this machine can reach: "localhost" (any case), IPv4
// 127.0.0.0/8, IPv6 ::1 and IPv4-mapped ::ffff:127.0.0.0/8. Anything else --
// 0.0.0.0, ::, a LAN address, any other host name ("127.evil.example") -- is not.
bool is_loopback_host(const std::string& host);

}  // namespace tramsync::sync
