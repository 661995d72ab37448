#include <iostream>

#include <vector>

#include "cli.h"
#include "output.h"
#include "tramsync/core/hlc.h"
#include "tramsync/core/time.h"
#include "tramsync/sync/client.h"
#include "tramsync/sync/protocol.h"

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
    // Each server this file syncs with: what waits for it, how the last sync
    // went, and whether its clock disagrees with this device's.
    json servers = json::array();
    std::vector<std::string> server_lines, warnings;
    for (const auto& p : store->peers()) {
      if (p.url.empty()) continue;
      auto s = sync::peer_settings(p);
      const int64_t pending = store->count_to_push(p.id);
      const bool clock_warning = protocol::clock_warning(s.clock_skew_ms);
      servers.push_back({{"url", p.url},
                         {"node_id", p.id},
                         {"role", s.role},
                         {"pending", pending},
                         {"last_sync", p.last_sync_at.empty() ? json(nullptr) : json(p.last_sync_at)},
                         {"last_error", s.last_error.empty() ? json(nullptr) : json(s.last_error)},
                         {"clock_skew_ms", s.clock_skew_ms},
                         {"clock_warning", clock_warning}});
      server_lines.push_back(p.url + ": " + std::to_string(pending) + " changes to send, last sync " +
                             (p.last_sync_at.empty() ? std::string("never") : p.last_sync_at.substr(0, 16)) +
                             (s.last_error.empty() ? std::string() : "\n             last attempt failed: " +
                                                                         s.last_error));
      if (clock_warning) {
        const int64_t minutes = std::abs(s.clock_skew_ms) / 60000;
        warnings.push_back("this device's clock is " +
                           std::string(s.clock_skew_ms < 0 ? "ahead of" : "behind") + " " + p.url + "'s by " +
                           (minutes >= 120 ? std::to_string(minutes / 60) + " hours" : std::to_string(minutes) +
                                                                                           " minutes") +
                           ": set this device's date and time");
      }
    }
    json refused = json::array();
    auto refusals = store->peer_refusals();
    for (const auto& r : refusals) {
      refused.push_back({{"seq", r.seq},
                         {"kind", r.kind},
                         {"record_id", r.record_id},
                         {"reason", r.reason},
                         {"reported_at", r.reported_at}});
    }
    if (c.as_json) {
      c.print_json({{"station", {{"id", id.station_id}, {"code", id.station_code}, {"name", id.station_name}}},
                    {"device", {{"id", id.device_id}, {"name", id.device_name}}},
                    {"database_id", id.database_id},
                    {"db", c.db_path},
                    {"schema_version", st->schema_version},
                    {"changes_total", st->changes_total},
                    {"changes_pending", st->changes_pending},
                    {"last_sync", st->last_sync.empty() ? json(nullptr) : json(st->last_sync)},
                    {"servers", servers},
                    {"refused_by_server", refused},
                    {"warnings", warnings},
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
    for (const auto& l : server_lines) std::cout << "Server:    " << l << '\n';
    if (!refusals.empty()) {
      std::cout << "Refused:   " << refusals.size() << " of this file's changes were refused by the server:\n";
      for (size_t i = 0; i < refusals.size() && i < 10; ++i) {
        const auto& r = refusals[i];
        std::cout << "             " << r.kind << " " << short_id(r.record_id) << ": " << r.reason << '\n';
      }
      if (refusals.size() > 10) std::cout << "             (" << refusals.size() - 10 << " more: --json)\n";
    }
    for (const auto& w : warnings) std::cout << "WARNING:   " << w << '\n';
    return kExitOk;
  });
}

}  // namespace tramsync::cli
