// device add / list / revoke: the devices that may sync with this centre.
#include <iostream>

#include "cli.h"
#include "tramsync/sync/enrollment.h"
#include "output.h"

namespace tramsync::server {

namespace {

struct DeviceAddOptions {
  std::string station, name;
  std::string role = kRoleStation;
  int64_t hours = sync::kDefaultCodeHours;
};

int run_device_add(Context& c, const DeviceAddOptions& o) {
  if (o.role != kRoleReviewer && o.station.empty()) {
    c.fail("device add: --station is required for a " + o.role + " device (only --role reviewer has no station)");
    return kExitUsage;
  }
  auto store = c.open(/*create=*/false);
  if (!store) return kExitFailed;
  auto issued = sync::issue_enrollment_code(*store, o.station, o.role, o.name, o.hours);
  if (!issued) return c.fail(issued.error());
  if (c.as_json) {
    json out = code_json(*issued);
    out["station"] = o.station.empty() ? json(nullptr) : json(o.station);
    out["name"] = o.name;
    c.print_json(out);
    return kExitOk;
  }
  if (o.role == kRoleReviewer) {
    std::cout << "A reviewer device (reads every station's records, writes none)";
  } else {
    std::cout << "A " << o.role << " device of station " << o.station;
  }
  std::cout << (o.name.empty() ? "" : ": " + o.name) << '\n';
  print_code(*issued, o.hours);
  return kExitOk;
}

struct DeviceListOptions {
  std::string station;
  bool all = false;
};

int run_device_list(Context& c, const DeviceListOptions& o) {
  auto store = c.open(/*create=*/false);
  if (!store) return kExitFailed;
  std::vector<DeviceInfo> shown;
  for (auto& d : store->devices()) {
    if (!o.station.empty() && d.station_code != o.station) continue;
    if (!o.all && d.revoked() && !c.as_json) continue;
    shown.push_back(std::move(d));
  }
  if (c.as_json) {
    json arr = json::array();
    int flagged_count = 0;
    for (const auto& d : shown) {
      arr.push_back(to_json(d));
      if (clock_flagged(d.clock_skew_ms) && !d.revoked()) ++flagged_count;
    }
    c.print_json({{"devices", arr}, {"clock_warnings", flagged_count}});
    return kExitOk;
  }
  if (shown.empty()) {
    std::cout << "No devices enrolled" << (o.station.empty() ? "" : " for station " + o.station)
              << " yet: make a code with `tramsync-server device add`.\n";
    return kExitOk;
  }
  Table t({"ID", "STATION", "NAME", "ROLE", "CREATED", "LAST SEEN", "LAST SYNC", "CLOCK", "REVOKED"});
  int flagged = 0;
  for (const auto& d : shown) {
    if (clock_flagged(d.clock_skew_ms) && !d.revoked()) ++flagged;
    t.add({short_id(d.id), d.station_code.empty() ? "(all)" : d.station_code, d.name, d.role,
           d.created_at.substr(0, 16), d.last_seen_at.empty() ? "never" : d.last_seen_at.substr(0, 16),
           d.last_sync_at.empty() ? "never" : d.last_sync_at.substr(0, 16), clock_text(d),
           d.revoked() ? d.revoked_at.substr(0, 16) : ""});
  }
  t.print(std::cout);
  if (flagged > 0) {
    std::cout << "\n" << flagged << (flagged == 1 ? " device's clock is" : " devices' clocks are")
              << " more than a day off the server's: the times it records are suspect. Ask the station to set the "
                 "date.\n";
  }
  return kExitOk;
}

int run_device_revoke(Context& c, const std::string& id) {
  auto store = c.open(/*create=*/false);
  if (!store) return kExitFailed;
  if (auto st = store->revoke_device(id); !st) return c.fail(st.error());
  // The store resolved the id (or prefix) to exactly one device.
  std::optional<DeviceInfo> device;
  for (auto& d : store->devices()) {
    if (d.id.compare(0, id.size(), id) == 0) device = std::move(d);
  }
  if (c.as_json) {
    c.print_json(device ? to_json(*device) : json{{"id", id}, {"revoked", true}});
    return kExitOk;
  }
  if (device) {
    std::cout << "Device " << device->id << " (" << (device->name.empty() ? device->role : device->name)
              << (device->station_code.empty() ? "" : ", station " + device->station_code) << ") revoked at "
              << device->revoked_at.substr(0, 16) << ": its token no longer works.\n";
  } else {
    std::cout << "Device " << id << " revoked: its token no longer works.\n";
  }
  return kExitOk;
}

}  // namespace

void setup_device(CLI::App& app, Context& ctx) {
  auto* device = app.add_subcommand("device", "Devices (station laptops, mobile teams' tablets, reviewers)");
  device->require_subcommand(1);

  auto o = std::make_shared<DeviceAddOptions>();
  auto* add = device->add_subcommand("add", "Make a one-time enrollment code for another device");
  add->add_option("--station", o->station, "The station's code (not for --role reviewer)");
  add->add_option("--name", o->name, "A name for the device, e.g. \"tablet 2\" (optional)");
  add->add_option("--role", o->role,
                  "station: a station's laptop; mobile: a mobile team's device; reviewer: the centre's reviewer, "
                  "reads every station (default station)")
      ->check(CLI::IsMember({std::string(kRoleStation), std::string(kRoleMobile), std::string(kRoleReviewer)}));
  add->add_option("--expires", o->hours, "Hours the code stays valid (default 72, at most 720)")
      ->check(CLI::Range(int64_t{1}, sync::kMaxCodeHours));
  add->footer(
      "Examples:\n"
      "  tramsync-server --db central.db device add --station TYT-SINHO --role mobile --name \"tablet 2\"\n"
      "  tramsync-server --db central.db device add --role reviewer --name \"district office\"");
  on_run(add, ctx, [o](Context& c) { return run_device_add(c, *o); });

  auto lo = std::make_shared<DeviceListOptions>();
  auto* list = device->add_subcommand("list", "List enrolled devices: last seen, last sync, clock, revoked");
  list->add_option("--station", lo->station, "Only this station's devices");
  list->add_flag("--all", lo->all, "Revoked devices too (--json always lists them)");
  list->footer(
      "CLOCK is the device's clock against the server's at its last request; \"clock ahead 2d 0h\" marks one more\n"
      "than a day off (its records' times are suspect).\n"
      "Example:\n  tramsync-server --db central.db device list --station TYT-SINHO");
  on_run(list, ctx, [lo](Context& c) { return run_device_list(c, *lo); });

  auto id = std::make_shared<std::string>();
  auto* revoke = device->add_subcommand("revoke", "Revoke a device (a lost tablet): its token stops working at once");
  revoke->add_option("ID", *id, "The device's id, or its first 4 or more characters (see `device list`)")
      ->required();
  revoke->footer("Example:\n  tramsync-server --db central.db device revoke 3f2a9c1e");
  on_run(revoke, ctx, [id](Context& c) { return run_device_revoke(c, *id); });
}

}  // namespace tramsync::server
