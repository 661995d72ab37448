#include <iostream>

#include "cli.h"
#include "output.h"
#include "tramsync/core/csv_import.h"

namespace tramsync::cli {

namespace {

struct ReportOptions {
  std::optional<std::string> date;
  bool csv = false;
  ReportSettings settings;
};

void print_csv(const DailyReport& r) {
  auto row = [](const std::string& section, const std::string& key, const std::string& value,
                const std::string& detail = "") {
    std::cout << csv::field(section) << ',' << csv::field(key) << ',' << csv::field(value) << ','
              << csv::field(detail) << "\r\n";
  };
  row("section", "key", "value", "detail");
  row("report", "date", r.date, r.station_code + " " + r.station_name);
  row("under_care", "total", std::to_string(r.under_care_total));
  for (const auto& [cat, n] : r.under_care_by_category) row("under_care", cat, std::to_string(n));
  row("patients", "new", std::to_string(r.new_patients));
  row("patients", "closed", std::to_string(r.closed_patients));
  row("visits", "total", std::to_string(r.visits));
  row("visits", "referrals", std::to_string(r.referrals));
  row("overdue", "total", std::to_string(r.overdue.size()));
  for (const auto& o : r.overdue) {
    row("overdue", o.name, std::to_string(o.days_since_contact), o.id + " " + o.village + " " + o.category_list);
  }
  for (const auto& d : r.dispensed) {
    row("dispensed", d.item_code, std::to_string(d.quantity), std::to_string(d.count) + " dispensing(s) " + d.unit);
  }
  for (const auto& s : r.stock_alerts) {
    std::string detail;
    if (s.under_reserve) detail += "under reserve " + std::to_string(*s.reserve) + "; ";
    if (s.expiring_soon > 0) detail += "expiring within 30 days " + std::to_string(s.expiring_soon) + "; ";
    if (s.expired_on_hand > 0) detail += "expired " + std::to_string(s.expired_on_hand) + "; ";
    row("stock_alert", s.item_code, std::to_string(s.on_hand), detail);
  }
  row("waste_pending", "total_kg", fmt_number(r.waste_pending_kg), std::to_string(r.waste_pending.size()) + " batch(es)");
  for (const auto& b : r.waste_pending) {
    row("waste_pending", b.id, fmt_number(b.weight_kg), b.kind + ", " + b.stage + ", " + std::to_string(b.age_days) + " days");
  }
}

void print_table(const DailyReport& r) {
  std::cout << "Daily report " << r.date << " — " << r.station_code << " " << r.station_name << "\n\n";
  std::cout << "Under home care: " << r.under_care_total << '\n';
  for (const auto& [cat, n] : r.under_care_by_category) std::cout << "  " << cat << ": " << n << '\n';
  std::cout << "New patients: " << r.new_patients << "   Closed: " << r.closed_patients << '\n'
            << "Visits: " << r.visits << "   Referrals: " << r.referrals << "\n\n";
  std::cout << "Overdue for a visit: " << r.overdue.size() << '\n';
  if (!r.overdue.empty()) {
    Table t({"ID", "NAME", "VILLAGE", "CATEGORIES", "LAST VISIT", "DAYS"});
    for (const auto& o : r.overdue) {
      t.add({short_id(o.id), o.name, o.village, o.category_list,
             o.last_visit.empty() ? "never" : o.last_visit.substr(0, 16), std::to_string(o.days_since_contact)});
    }
    t.print(std::cout);
  }
  std::cout << "\nDispensed today: " << r.dispensed.size() << " item(s)\n";
  if (!r.dispensed.empty()) {
    Table t({"ITEM", "NAME", "DISPENSINGS", "QUANTITY"});
    for (const auto& d : r.dispensed) {
      t.add({d.item_code, d.item_name, std::to_string(d.count), std::to_string(d.quantity) + " " + d.unit});
    }
    t.print(std::cout);
  }
  std::cout << "\nStock needing attention: " << r.stock_alerts.size() << '\n';
  if (!r.stock_alerts.empty()) {
    Table t({"ITEM", "NAME", "ON HAND", "RESERVE", "PROBLEM"});
    for (const auto& s : r.stock_alerts) {
      std::string p;
      if (s.under_reserve) p += "under reserve; ";
      if (s.expiring_soon > 0) p += std::to_string(s.expiring_soon) + " expiring within 30 days; ";
      if (s.expired_on_hand > 0) p += std::to_string(s.expired_on_hand) + " expired; ";
      t.add({s.item_code, s.item_name, std::to_string(s.on_hand) + " " + s.unit,
             s.reserve ? std::to_string(*s.reserve) : "-", p});
    }
    t.print(std::cout);
  }
  std::cout << "\nWaste not yet treated: " << r.waste_pending.size() << " batch(es), "
            << fmt_number(r.waste_pending_kg) << " kg\n";
  if (!r.waste_pending.empty()) {
    Table t({"BATCH", "KIND", "KG", "STAGE", "AGE"});
    for (const auto& b : r.waste_pending) {
      t.add({short_id(b.id), b.kind, fmt_number(b.weight_kg), b.stage, std::to_string(b.age_days) + "d"});
    }
    t.print(std::cout);
  }
}

}  // namespace

void setup_report(CLI::App& app, Context& ctx) {
  auto* report = app.add_subcommand("report", "Reports");
  report->require_subcommand(1);
  auto o = std::make_shared<ReportOptions>();
  auto* daily = report->add_subcommand("daily", "The station's daily report");
  daily->add_option("--date", o->date, "The day YYYY-MM-DD (default today)");
  daily->add_flag("--csv", o->csv, "CSV for a spreadsheet");
  daily->add_option("--covid-days", o->settings.covid_overdue_days, "covid-home overdue after N days (default 1)")
      ->check(at_least(1));
  daily->add_option("--overdue-days", o->settings.other_overdue_days, "Others overdue after N days (default 30)")
      ->check(at_least(1));
  daily->footer("Example:\n  station-cli report daily\n  station-cli report daily --date 2026-11-20 --csv > bao-cao.csv");
  on_run(daily, ctx, [o](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    auto r = store->daily_report(o->date, o->settings);
    if (!r) return c.fail(r.error());
    if (c.as_json) {
      c.print_json(to_json(*r));
    } else if (o->csv) {
      print_csv(*r);
    } else {
      print_table(*r);
    }
    return kExitOk;
  });
}

}  // namespace tramsync::cli
