#include "tramsync/sync/listen_address.h"

#include "tramsync/sync/address.h"

namespace tramsync::sync {

namespace {
const char* const kRule = "must be HOST:PORT, e.g. 0.0.0.0:8443, 127.0.0.1:0 or [::1]:8443";
}

std::string ListenAddress::host_port(int actual_port) const {
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(actual_port);
}

Result<ListenAddress> parse_listen_address(const std::string& text) {
  auto hp = sync::split_host_port(text);
  if (!hp) {
    Error e = hp.error();
    e.field = "listen";
    return e;
  }
  ListenAddress a{hp->host, 0, hp->ipv6};
  if (a.host.empty()) return Error::invalid("listen", "must name the host, e.g. 0.0.0.0:8443 for every address", text);
  if (hp->port.empty() && text.find(':') == std::string::npos) return Error::invalid("listen", kRule, text);
  auto port = sync::parse_port(hp->port, 0);
  if (!port) return Error::invalid("listen", "must end with a port from 0 to 65535 (0: any free port)", text);
  a.port = *port;
  return a;
}

}  // namespace tramsync::sync
