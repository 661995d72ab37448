#include "output.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "tramsync/core/text.h"
#include "tramsync/sync/protocol.h"

namespace tramsync::server {

using json = nlohmann::json;

std::string short_id(const std::string& id) { return id.substr(0, 8); }

std::string human_duration(int64_t ms) {
  const int64_t s = std::llabs(ms) / 1000;
  const int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
  if (d > 0) return std::to_string(d) + "d " + std::to_string(h) + "h";
  if (h > 0) return std::to_string(h) + "h " + std::to_string(m) + "m";
  if (m > 0) return std::to_string(m) + "m";
  return std::to_string(s) + "s";
}

bool clock_flagged(int64_t clock_skew_ms) {
  return protocol::clock_flagged(clock_skew_ms);
}

std::string clock_text(const DeviceInfo& d) {
  if (d.last_seen_at.empty()) return "-";
  const std::string way = d.clock_skew_ms > 0 ? "ahead " : "behind ";
  if (clock_flagged(d.clock_skew_ms)) return "clock " + way + human_duration(d.clock_skew_ms);
  if (protocol::clock_warning(d.clock_skew_ms)) return way + human_duration(d.clock_skew_ms);
  return "ok";
}

namespace {
json str_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
}  // namespace

json to_json(const StationInfo& s) {
  return {{"id", s.id}, {"code", s.code}, {"name", s.name}, {"district", s.district}, {"province", s.province}};
}

json to_json(const DeviceInfo& d) {
  return {{"id", d.id},
          {"station", str_or_null(d.station_code)},
          {"station_id", str_or_null(d.station_id)},
          {"name", d.name},
          {"role", d.role},
          {"created_at", d.created_at},
          {"last_seen_at", str_or_null(d.last_seen_at)},
          {"last_sync_at", str_or_null(d.last_sync_at)},
          {"clock_skew_ms", d.clock_skew_ms},
          {"clock_warning", clock_flagged(d.clock_skew_ms)},
          {"revoked", d.revoked()},
          {"revoked_at", str_or_null(d.revoked_at)}};
}

void print_code(const sync::IssuedCode& issued, int64_t hours) {
  std::cout << "\n  Enrollment code (" << issued.role << " device):\n\n      " << issued.code << "\n\n"
            << "  Valid once, until " << issued.expires_at.substr(0, 16) << " (" << hours << " h). "
            << "On the device:\n"
            << "    station-cli enroll --server https://SERVER:PORT --code " << issued.code
            << " --pin FINGERPRINT\n"
            << "  (FINGERPRINT: the line `serve` printed). Only a hash of the code is kept: it cannot be shown again.\n";
}

json code_json(const sync::IssuedCode& issued) {
  return {{"enrollment_code", issued.code},
          {"role", issued.role},
          {"expires_at", issued.expires_at},
          {"expires_at_ms", issued.expires_at_ms}};
}

}  // namespace tramsync::server
