#include <iostream>

#include "cli.h"

namespace tramsync::cli {

namespace {
struct InitOptions {
  std::string station, name, device, district, province;
};
}  // namespace

void setup_init(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<InitOptions>();
  auto* cmd = app.add_subcommand("init", "Make a new station file with this device's identity");
  cmd->add_option("--station", opt->station, "Station code, e.g. TYT-SINHO")->required();
  cmd->add_option("--name", opt->name, "Station name")->required();
  cmd->add_option("--device", opt->device, "This device's name (default: station)");
  cmd->add_option("--district", opt->district, "District (huyện)");
  cmd->add_option("--province", opt->province, "Province (tỉnh)");
  cmd->footer("Example:\n  station-cli init --station TYT-SINHO --name \"Trạm Y tế xã Sìn Hồ\" --device laptop-1");
  on_run(cmd, ctx, [opt](Context& c) {
    auto store = c.open(/*create=*/true);
    if (!store) return kExitFailed;
    auto id = store->init_station(opt->station, opt->name, opt->device, opt->district, opt->province);
    if (!id) return c.fail(id.error());
    if (c.as_json) {
      c.print_json({{"station_id", id->station_id},
                    {"station", id->station_code},
                    {"name", id->station_name},
                    {"device_id", id->device_id},
                    {"device", id->device_name},
                    {"db", c.db_path}});
    } else {
      std::cout << "Station " << id->station_code << " (" << id->station_name << ") ready in " << c.db_path
                << "\nDevice " << id->device_name << " " << id->device_id << '\n';
    }
    return kExitOk;
  });
}

}  // namespace tramsync::cli
