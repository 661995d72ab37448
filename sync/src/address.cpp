#include "tramsync/sync/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include <optional>

namespace tramsync::sync {

Result<HostPort> split_host_port(const std::string& text) {
  HostPort hp;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos) return Error::invalid("", "has an unclosed [ in its IPv6 address", text);
    hp.host = text.substr(1, close - 1);
    const std::string after = text.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Error::invalid("", "must have :PORT after the IPv6 address in brackets", text);
      hp.port = after.substr(1);
    }
    in6_addr probe{};
    if (inet_pton(AF_INET6, hp.host.c_str(), &probe) != 1) {
      return Error::invalid("", "must have an IPv6 address inside the brackets", text);
    }
    hp.ipv6 = true;
    return hp;
  }
  auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    hp.host = text;
    return hp;
  }
  hp.host = text.substr(0, colon);
  hp.port = text.substr(colon + 1);
  if (hp.host.find(':') != std::string::npos) {
    return Error::invalid("", "must write an IPv6 address in brackets, e.g. [::1]:8443", text);
  }
  return hp;
}

std::optional<int> parse_port(const std::string& digits, int lo) {
  if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int port = std::stoi(digits);
  if (port < lo || port > 65535) return std::nullopt;
  return port;
}

bool is_loopback_host(const std::string& host) {
  if (strcasecmp(host.c_str(), "localhost") == 0) return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace tramsync::sync
