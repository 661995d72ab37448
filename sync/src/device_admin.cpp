// Device administration shared by the centre and station hubs (device_admin.h).
#include "tramsync/sync/device_admin.h"

#include <cstdlib>
#include <sstream>

#include "tramsync/core/text.h"
#include "tramsync/sync/protocol.h"

namespace tramsync::sync {

using json = nlohmann::json;

namespace {

json str_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

// "2d 3h", "5m", "12s"
std::string human_duration(int64_t ms) {
  const int64_t s = std::llabs(ms) / 1000;
  const int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
  if (d > 0) return std::to_string(d) + "d " + std::to_string(h) + "h";
  if (h > 0) return std::to_string(h) + "h " + std::to_string(m) + "m";
  if (m > 0) return std::to_string(m) + "m";
  return std::to_string(s) + "s";
}

std::string clock_text(const DeviceInfo& d) {
  if (d.last_seen_at.empty()) return "-";
  const std::string way = d.clock_skew_ms > 0 ? "ahead " : "behind ";
  if (protocol::clock_flagged(d.clock_skew_ms)) return "clock " + way + human_duration(d.clock_skew_ms);
  if (protocol::clock_warning(d.clock_skew_ms)) return way + human_duration(d.clock_skew_ms);
  return "ok";
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
  return out;
}

json device_json(const DeviceInfo& d) {
  return {{"id", d.id},
          {"station", str_or_null(d.station_code)},
          {"station_id", str_or_null(d.station_id)},
          {"name", d.name},
          {"role", d.role},
          {"villages", d.villages},
          {"created_at", d.created_at},
          {"last_seen_at", str_or_null(d.last_seen_at)},
          {"last_sync_at", str_or_null(d.last_sync_at)},
          {"clock_skew_ms", d.clock_skew_ms},
          {"clock_warning", protocol::clock_flagged(d.clock_skew_ms)},
          {"revoked", d.revoked()},
          {"revoked_at", str_or_null(d.revoked_at)}};
}

std::string scope_text(const DeviceInfo& d) {
  if (d.role != kRoleMobile) return "";
  return d.villages.empty() ? "the whole station" : joined(d.villages);
}

}  // namespace

json code_json(const IssuedCode& issued) {
  return {{"enrollment_code", issued.code},
          {"role", issued.role},
          {"expires_at", issued.expires_at},
          {"expires_at_ms", issued.expires_at_ms}};
}

std::string code_text(const IssuedCode& issued, int64_t hours) {
  std::ostringstream out;
  out << "\n  Enrollment code (" << issued.role << " device):\n\n      " << issued.code << "\n\n"
      << "  Valid once, until " << issued.expires_at.substr(0, 16) << " (" << hours << " h). "
      << "On the device:\n"
      << "    station-cli enroll --server https://SERVER:PORT --code " << issued.code << " --pin FINGERPRINT\n"
      << "  (FINGERPRINT: the line `serve` printed). Only a hash of the code is kept: it cannot be shown again.\n";
  return out.str();
}

Result<Shown> device_add(Store& store, const DeviceAddParams& p, Clock* clock) {
  auto issued = issue_enrollment_code(store, p.station, p.role, p.name, p.hours, clock, p.villages);
  if (!issued) return issued.error();
  Shown s;
  s.json = code_json(*issued);
  s.json["station"] = str_or_null(p.station);
  s.json["name"] = p.name;
  s.json["villages"] = p.villages;
  std::ostringstream out;
  if (p.role == kRoleReviewer) {
    out << "A reviewer device (reads every station's records, writes none)";
  } else {
    out << "A " << p.role << " device of station " << p.station;
  }
  out << (p.name.empty() ? "" : ": " + p.name) << '\n';
  if (p.role == kRoleMobile) {
    out << "It will carry " << (p.villages.empty() ? "the whole station's records" : "the records of " + joined(p.villages))
        << " (change it later with `" << p.program << " device scope`).\n";
  }
  s.text = out.str() + code_text(*issued, p.hours);
  return s;
}

Shown device_list(Store& store, const std::string& station, bool all, const std::string& program) {
  std::vector<DeviceInfo> shown;
  int flagged = 0;
  json arr = json::array();
  for (auto& d : store.devices()) {
    if (!station.empty() && d.station_code != station) continue;
    arr.push_back(device_json(d));
    if (protocol::clock_flagged(d.clock_skew_ms) && !d.revoked()) ++flagged;
    if (!all && d.revoked()) continue;
    shown.push_back(std::move(d));
  }
  Shown s;
  s.json = {{"devices", arr}, {"clock_warnings", flagged}};
  if (shown.empty()) {
    s.text = "No devices enrolled" + (station.empty() ? "" : " for station " + station) +
             " yet: make a code with `" + program + " device add`.\n";
    return s;
  }
  TextTable t({"ID", "STATION", "NAME", "ROLE", "VILLAGES", "CREATED", "LAST SEEN", "LAST SYNC", "CLOCK", "REVOKED"});
  for (const auto& d : shown) {
    t.add({d.id.substr(0, 8), d.station_code.empty() ? "(all)" : d.station_code, d.name, d.role, scope_text(d),
           d.created_at.substr(0, 16), d.last_seen_at.empty() ? "never" : d.last_seen_at.substr(0, 16),
           d.last_sync_at.empty() ? "never" : d.last_sync_at.substr(0, 16), clock_text(d),
           d.revoked() ? d.revoked_at.substr(0, 16) : ""});
  }
  std::ostringstream out;
  t.print(out);
  if (flagged > 0) {
    out << "\n" << flagged << (flagged == 1 ? " device's clock is" : " devices' clocks are")
        << " more than a day off the server's: the times it records are suspect. Ask the station to set the date.\n";
  }
  s.text = out.str();
  return s;
}

Result<Shown> device_revoke(Store& store, const std::string& id) {
  auto d = store.revoke_device(id);
  if (!d) return d.error();
  Shown s;
  s.json = device_json(*d);
  s.text = "Device " + d->id + " (" + (d->name.empty() ? d->role : d->name) +
           (d->station_code.empty() ? "" : ", station " + d->station_code) + ") revoked at " +
           d->revoked_at.substr(0, 16) + ": its token no longer works" +
           (d->station_code.empty() ? "" : ", here and, after the next sync, at the station's other servers") + ".\n";
  return s;
}

Result<Shown> device_scope(Store& store, const std::string& id, const std::vector<std::string>& villages) {
  auto d = store.set_device_villages(id, villages);
  if (!d) return d.error();
  Shown s;
  s.json = device_json(*d);
  s.text = "Device " + d->id + " (" + (d->name.empty() ? d->role : d->name) + ") now carries " +
           (d->villages.empty() ? std::string("the whole station's records") : "the records of " + joined(d->villages)) +
           ", from its next sync. Records that left its villages stay on it as they were, no longer updated.\n";
  return s;
}

}  // namespace tramsync::sync
