// station add / list: the stations the centre knows, each with its first
// device's enrollment code.
#include <iostream>
#include <map>

#include "cli.h"
#include "tramsync/sync/device_admin.h"
#include "tramsync/sync/enrollment.h"
#include "output.h"

namespace tramsync::server {

namespace {

struct StationAddOptions {
  std::string code, name, district, province, device_name;
  int64_t hours = sync::kDefaultCodeHours;
};

int run_station_add(Context& c, const StationAddOptions& o) {
  auto store = c.open(/*create=*/true);
  if (!store) return kExitFailed;
  auto station = store->add_station(o.code, o.name, o.district, o.province);
  if (!station) return c.fail(station.error());
  auto issued = sync::issue_enrollment_code(*store, station->code, kRoleStation, o.device_name, o.hours);
  if (!issued) {
    Error e = issued.error();
    e.rule += " (the station was added: make its code with `tramsync-server device add --station " + station->code +
              "`)";
    return c.fail(e);
  }
  if (c.as_json) {
    json out = sync::code_json(*issued);
    out["station"] = to_json(*station);
    c.print_json(out);
    return kExitOk;
  }
  std::cout << "Station " << station->code << " added: " << station->name;
  if (!station->district.empty() || !station->province.empty()) {
    std::cout << " (" << station->district << (station->district.empty() || station->province.empty() ? "" : ", ")
              << station->province << ")";
  }
  std::cout << '\n';
  std::cout << sync::code_text(*issued, o.hours);
  return kExitOk;
}

int run_station_list(Context& c) {
  auto store = c.open(/*create=*/false);
  if (!store) return kExitFailed;
  struct Summary {
    int devices = 0;
    std::string last_sync;
  };
  std::map<std::string, Summary> by_code;
  for (const auto& d : store->devices()) {
    if (d.station_code.empty() || d.revoked()) continue;
    auto& s = by_code[d.station_code];
    ++s.devices;
    s.last_sync = std::max(s.last_sync, d.last_sync_at);
  }
  const auto stations = store->stations();
  if (c.as_json) {
    json arr = json::array();
    for (const auto& s : stations) {
      json j = to_json(s);
      const Summary& sum = by_code[s.code];
      j["devices"] = sum.devices;
      j["last_sync_at"] = sum.last_sync.empty() ? json(nullptr) : json(sum.last_sync);
      arr.push_back(j);
    }
    c.print_json({{"stations", arr}});
    return kExitOk;
  }
  if (stations.empty()) {
    std::cout << "No stations yet: add one with `tramsync-server station add --code CODE --name NAME`.\n";
    return kExitOk;
  }
  Table t({"CODE", "NAME", "DISTRICT", "PROVINCE", "DEVICES", "LAST SYNC"});
  for (const auto& s : stations) {
    const Summary& sum = by_code[s.code];
    t.add({s.code, s.name, s.district, s.province, std::to_string(sum.devices),
           sum.last_sync.empty() ? "never" : sum.last_sync.substr(0, 16)});
  }
  t.print(std::cout);
  return kExitOk;
}

}  // namespace

void setup_station(CLI::App& app, Context& ctx) {
  auto* station = app.add_subcommand("station", "Stations that sync with this centre");
  station->require_subcommand(1);

  auto o = std::make_shared<StationAddOptions>();
  auto* add = station->add_subcommand(
      "add", "Register a station and make the one-time enrollment code for its first device");
  add->add_option("--code", o->code, "The station's code, e.g. TYT-SINHO (no spaces or slashes)")->required();
  add->add_option("--name", o->name, "Its name, e.g. \"Trạm Y tế xã Sìn Hồ\"")->required();
  add->add_option("--district", o->district, "District");
  add->add_option("--province", o->province, "Province");
  add->add_option("--device-name", o->device_name, "A name for the first device, e.g. \"laptop\" (optional)");
  add->add_option("--expires", o->hours, "Hours the code stays valid (default 72, at most 720)")
      ->check(CLI::Range(int64_t{1}, sync::kMaxCodeHours));
  add->footer(
      "The central file (--db) is made if it does not exist yet.\n"
      "Example:\n"
      "  tramsync-server --db central.db station add --code TYT-SINHO --name \"Trạm Y tế xã Sìn Hồ\" "
      "--district \"Sìn Hồ\" --province \"Lai Châu\"");
  on_run(add, ctx, [o](Context& c) { return run_station_add(c, *o); });

  auto* list = station->add_subcommand("list", "List the stations, their active devices and last sync");
  list->footer("Example:\n  tramsync-server --db central.db station list");
  on_run(list, ctx, [](Context& c) { return run_station_list(c); });
}

}  // namespace tramsync::server
