// report NAME: the centre's reports across stations (core/central.h), as a
// table, CSV or JSON. The same reports answer GET /v1/reports/NAME for reviewers.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "cli.h"
#include "tramsync/sync/report_format.h"

namespace tramsync::server {

void setup_report(CLI::App& app, Context& ctx) {
  struct Args {
    std::string name, output;
    CentralReportOptions options;
    bool csv = false;
  };
  auto a = std::make_shared<Args>();
  std::string names;
  for (const auto& n : kCentralReports) names += (names.empty() ? "" : "|") + n;
  auto* cmd = app.add_subcommand("report", "Reports across the stations: " + names);
  cmd->add_option("NAME", a->name, names)->required();
  cmd->add_option("--station", a->options.station, "Only this station (its code)");
  cmd->add_option("--district", a->options.district, "Only the stations of this district");
  cmd->add_option("--stale-days", a->options.stale_days,
                  "Name stations not synced for more than this many days as stale (default 3)");
  cmd->add_option("--covid-days", a->options.settings.covid_overdue_days,
                  "followup: a covid-home patient is overdue after this many days without contact (default 1)");
  cmd->add_option("--overdue-days", a->options.settings.other_overdue_days,
                  "followup: any other patient under care is overdue after this many days (default 30)");
  cmd->add_option("--date", a->options.date, "daily: the day YYYY-MM-DD (default today)");
  cmd->add_option("--limit", a->options.list_limit,
                  "followup: patients listed per station, worst first (0: all; default: all for one station, " +
                      std::to_string(kDefaultListLimit) + " for several; the counts are always complete)")
      ->check(CLI::Range(0, 1'000'000));
  auto* csv = cmd->add_flag("--csv", a->csv, "Print CSV (each table with its header, tables separated by an empty line)");
  cmd->add_option("--output", a->output, "Write to this file instead of the terminal");
  csv->excludes(app.get_option("--json"));
  cmd->footer(
      "Reports:\n"
      "  stations  every station: last sync, changes received in 7 days, devices, clock warnings, quarantine\n"
      "  followup  patients overdue for a visit, chronic medicine run out, per station, worst first\n"
      "  stock     on hand, reserve, under reserve, expiring, days of stock left; province totals per item\n"
      "  waste     waste not yet treated, by stage and age; totals by kind and kilograms\n"
      "  daily     the station daily report, one row per station, and totals\n"
      "Every report first says how fresh each station's data is; totals name the stations that are stale.\n"
      "Examples:\n"
      "  tramsync-server --db central.db report followup --district \"Sìn Hồ\"\n"
      "  tramsync-server --db central.db report stock --csv --output stock.csv");
  on_run(cmd, ctx, [a](Context& c) {
    auto store = c.open(/*create=*/false);
    if (!store) return kExitFailed;
    auto r = store->central_report(a->name, a->options);
    if (!r) return c.fail(r.error());
    std::ofstream file;
    if (!a->output.empty()) {
      // A new report file is owner-only, whatever the umask: lists name patients.
      if (int fd = ::open(a->output.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600); fd >= 0) ::close(fd);
      file.open(a->output, std::ios::binary | std::ios::trunc);
      if (!file) return c.fail("--output: cannot write " + a->output);
    }
    std::ostream& out = a->output.empty() ? std::cout : file;
    if (a->csv) {
      out << sync::report_to_csv(*r);
    } else if (c.as_json) {
      out << sync::report_to_json(*r).dump(c.one_line_json ? -1 : 2, ' ', false, json::error_handler_t::replace)
          << '\n';
    } else {
      sync::print_report(out, *r);
    }
    out.flush();
    if (!out) return c.fail("--output: could not write " + a->output);
    if (!a->output.empty() && !c.as_json) std::cerr << "Written to " << a->output << '\n';
    return kExitOk;
  });
}

}  // namespace tramsync::server
