#include "listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include <cstring>

namespace tramsync::server {

namespace {
const char* const kRule = "must be HOST:PORT, e.g. 0.0.0.0:8443, 127.0.0.1:0 or [::1]:8443";
}

std::string ListenAddress::host_port(int actual_port) const {
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(actual_port);
}

Result<ListenAddress> parse_listen_address(const std::string& text) {
  ListenAddress a;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error::invalid("listen", kRule, text);
    }
    a.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    in6_addr probe{};
    if (inet_pton(AF_INET6, a.host.c_str(), &probe) != 1) {
      return Error::invalid("listen", "must have an IPv6 address inside the brackets", text);
    }
    a.ipv6 = true;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) return Error::invalid("listen", kRule, text);
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (a.host.find(':') != std::string::npos) {
      return Error::invalid("listen", "must write an IPv6 address in brackets, e.g. [::1]:8443", text);
    }
  }
  if (a.host.empty()) return Error::invalid("listen", "must name the host, e.g. 0.0.0.0:8443 for every address", text);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    return Error::invalid("listen", "must end with a port from 0 to 65535 (0: any free port)", text);
  }
  a.port = std::stoi(port);
  return a;
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

}  // namespace tramsync::server
