#include <iostream>

#include "cli.h"
#include "tramsync/core/hlc.h"
#include "tramsync/core/time.h"

namespace tramsync::cli {

void setup_status(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("status", "Station, device, changes waiting to be sent, last sync, clock");
  cmd->footer("Example:\n  station-cli status --json");
  on_run(cmd, ctx, [](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    auto st = store->status();
    if (!st) return c.fail(st.error());
    const auto& id = st->identity;
    std::string clock = local_time_from_ms(st->clock_ms, id.utc_offset_minutes);
    if (c.as_json) {
      c.print_json({{"station", {{"id", id.station_id}, {"code", id.station_code}, {"name", id.station_name}}},
                    {"device", {{"id", id.device_id}, {"name", id.device_name}}},
                    {"database_id", id.database_id},
                    {"db", c.db_path},
                    {"schema_version", st->schema_version},
                    {"changes_total", st->changes_total},
                    {"changes_pending", st->changes_pending},
                    {"last_sync", st->last_sync.empty() ? json(nullptr) : json(st->last_sync)},
                    {"clock", {{"local", clock}, {"utc_ms", st->clock_ms}, {"hlc", st->hlc}}}});
      return kExitOk;
    }
    std::cout << "Station:   " << id.station_code << " — " << id.station_name << '\n'
              << "Device:    " << id.device_name << " (" << id.device_id << ")\n"
              << "File:      " << c.db_path << " (schema " << st->schema_version << ")\n"
              << "Changes:   " << st->changes_total << " recorded, " << st->changes_pending
              << " not yet sent\n"
              << "Last sync: " << (st->last_sync.empty() ? "never" : st->last_sync) << '\n'
              << "Clock:     " << clock.substr(0, 16) << " station time (UTC"
              << (id.utc_offset_minutes >= 0 ? "+" : "-") << std::abs(id.utc_offset_minutes) / 60 << ")\n";
    return kExitOk;
  });
}

}  // namespace tramsync::cli
