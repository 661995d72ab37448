// device add / list / revoke: the devices that may sync with this centre.
#include <iostream>

#include "cli.h"
#include "tramsync/sync/device_admin.h"

namespace tramsync::server {

namespace {

int run_device_add(Context& c, const sync::DeviceAddParams& o) {
  if (o.role != kRoleReviewer && o.station.empty()) {
    c.fail("device add: --station is required for a " + o.role + " device (only --role reviewer has no station)");
    return kExitUsage;
  }
  auto store = c.open(/*create=*/false);
  if (!store) return kExitFailed;
  return c.show(sync::device_add(*store, o));
}

struct DeviceListOptions {
  std::string station;
  bool all = false;
};

}  // namespace

void setup_device(CLI::App& app, Context& ctx) {
  auto* device = app.add_subcommand("device", "Devices (station laptops, mobile teams' tablets, reviewers)");
  device->require_subcommand(1);

  auto o = std::make_shared<sync::DeviceAddParams>();
  auto* add = device->add_subcommand("add", "Make a one-time enrollment code for another device");
  add->add_option("--station", o->station, "The station's code (not for --role reviewer)");
  add->add_option("--name", o->name, "A name for the device, e.g. \"tablet 2\" (optional)");
  add->add_option("--role", o->role,
                  "station: a station's laptop; mobile: a mobile team's device; reviewer: the centre's reviewer, "
                  "reads every station (default station)")
      ->check(CLI::IsMember({std::string(kRoleStation), std::string(kRoleMobile), std::string(kRoleReviewer)}));
  add->add_option("--villages", o->villages,
                  "A mobile device carries only these villages' households and patients (comma-separated; "
                  "default: the whole station)")
      ->delimiter(',');
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
  on_run(list, ctx, [lo](Context& c) {
    auto store = c.open(/*create=*/false);
    if (!store) return kExitFailed;
    return c.show(sync::device_list(*store, lo->station, lo->all, "tramsync-server"));
  });

  auto id = std::make_shared<std::string>();
  auto* revoke = device->add_subcommand("revoke", "Revoke a device (a lost tablet): its token stops working at once");
  revoke->add_option("ID", *id, "The device's id, or its first 4 or more characters (see `device list`)")
      ->required();
  revoke->footer("Example:\n  tramsync-server --db central.db device revoke 3f2a9c1e");
  on_run(revoke, ctx, [id](Context& c) {
    auto store = c.open(/*create=*/false);
    if (!store) return kExitFailed;
    return c.show(sync::device_revoke(*store, *id));
  });

  struct ScopeOptions {
    std::string id;
    std::vector<std::string> villages;
    bool whole = false;
  };
  auto so = std::make_shared<ScopeOptions>();
  auto* scope = device->add_subcommand("scope", "Narrow or widen the villages a mobile device carries");
  scope->add_option("ID", so->id, "The device's id, or its first 4 or more characters")->required();
  auto* vill = scope->add_option("--villages", so->villages, "Its villages, comma-separated")->delimiter(',');
  auto* whole = scope->add_flag("--all-villages", so->whole, "The whole station");
  vill->excludes(whole);
  scope->footer("Takes effect on the device's next sync, without enrolling again.\n"
                "Example:\n  tramsync-server --db central.db device scope 3f2a9c1e --villages \"Bản Hon,Bản Khe\"");
  on_run(scope, ctx, [so](Context& c) {
    if (so->villages.empty() && !so->whole) {
      c.fail("device scope: give --villages V1,V2 or --all-villages");
      return kExitUsage;
    }
    auto store = c.open(/*create=*/false);
    if (!store) return kExitFailed;
    return c.show(sync::device_scope(*store, so->id, so->villages));
  });
}

}  // namespace tramsync::server
