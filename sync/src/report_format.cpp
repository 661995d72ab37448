#include "tramsync/sync/report_format.h"

#include <cctype>
#include <cstdio>

#include "tramsync/core/csv_import.h"
#include "tramsync/core/text.h"

namespace tramsync::sync {

using json = nlohmann::json;

namespace {

json cell_json(const ReportCell& c) {
  if (const auto* i = std::get_if<int64_t>(&c)) return *i;
  if (const auto* d = std::get_if<double>(&c)) return *d;
  if (const auto* s = std::get_if<std::string>(&c)) return *s;
  return nullptr;
}

// One CSV field (csv::field quotes it), guarded against CSV injection: a
// spreadsheet would evaluate a cell that starts like a formula.
std::string csv_field(const std::string& s) {
  const bool formula = !s.empty() && (s[0] == '=' || s[0] == '+' || s[0] == '@' ||
                                      (s[0] == '-' && s.size() > 1 && !std::isdigit(static_cast<unsigned char>(s[1]))));
  return csv::field(formula ? "'" + s : s);
}

}  // namespace

std::string cell_text(const ReportCell& c) {
  if (const auto* i = std::get_if<int64_t>(&c)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&c)) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.2f", *d);
    std::string s = buf;
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
    return s;
  }
  if (const auto* s = std::get_if<std::string>(&c)) return *s;
  return "";
}

json report_to_json(const CentralReport& r) {
  json freshness = json::array();
  for (const auto& f : r.freshness) {
    freshness.push_back({{"station_code", f.code},
                         {"station_name", f.name},
                         {"district", f.district},
                         {"province", f.province},
                         {"last_sync", f.last_sync.empty() ? json(nullptr) : json(f.last_sync)},
                         {"newest_change", f.newest_change.empty() ? json(nullptr) : json(f.newest_change)},
                         {"days_since_sync", f.days_since_sync < 0 ? json(nullptr) : json(f.days_since_sync)},
                         {"stale", f.stale}});
  }
  json tables = json::array();
  for (const auto& t : r.tables) {
    json rows = json::array();
    for (const auto& row : t.rows) {
      json o = json::object();
      for (size_t i = 0; i < t.columns.size() && i < row.size(); ++i) o[t.columns[i]] = cell_json(row[i]);
      rows.push_back(std::move(o));
    }
    tables.push_back({{"name", t.name}, {"title", t.title}, {"columns", t.columns}, {"rows", std::move(rows)}});
  }
  json out = {{"report", r.name},
              {"generated_at", r.generated_at},
              {"filters",
               {{"station", r.options.station.empty() ? json(nullptr) : json(r.options.station)},
                {"district", r.options.district.empty() ? json(nullptr) : json(r.options.district)},
                {"stale_days", r.options.stale_days},
                {"covid_overdue_days", r.options.settings.covid_overdue_days},
                {"other_overdue_days", r.options.settings.other_overdue_days}}},
              {"freshness", std::move(freshness)},
              {"stale_stations", r.stale_stations},
              {"notes", r.notes},
              {"tables", std::move(tables)}};
  if (!r.date.empty()) out["date"] = r.date;
  return out;
}

std::string report_to_csv(const CentralReport& r) {
  std::string out;
  bool first = true;
  for (const auto& t : r.tables) {
    if (!first) out += "\r\n";
    first = false;
    for (size_t i = 0; i < t.columns.size(); ++i) out += (i ? "," : "") + csv_field(t.columns[i]);
    out += "\r\n";
    for (const auto& row : t.rows) {
      for (size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + csv_field(cell_text(row[i]));
      out += "\r\n";
    }
  }
  return out;
}

void print_report(std::ostream& out, const CentralReport& r) {
  out << "Report " << r.name << (r.date.empty() ? "" : " for " + r.date) << ", made " << r.generated_at
      << " (centre time)\n";
  TextTable fresh({"STATION", "NAME", "LAST SYNC", "DAYS", "NEWEST CHANGE", "STALE"});
  for (const auto& f : r.freshness) {
    fresh.add({f.code, f.name, f.last_sync.empty() ? "never" : f.last_sync.substr(0, 16),
               f.days_since_sync < 0 ? "-" : std::to_string(f.days_since_sync),
               f.newest_change.empty() ? "-" : f.newest_change.substr(0, 16), f.stale ? "STALE" : ""});
  }
  if (r.name != "stations") {  // that report is the same list, in full
    out << "\nData freshness (stale: no sync for more than " << r.options.stale_days << " days):\n";
    fresh.print(out);
  }
  for (const auto& n : r.notes) out << "\nNote: " << n << '\n';
  for (const auto& t : r.tables) {
    out << '\n' << t.title << ":\n";
    if (t.rows.empty()) {
      out << "  (none)\n";
      continue;
    }
    std::vector<std::string> header;
    for (const auto& c : t.columns) {
      std::string h = c;
      for (auto& ch : h) ch = ch == '_' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      header.push_back(h);
    }
    TextTable tt(header);
    for (const auto& row : t.rows) {
      std::vector<std::string> cells;
      for (const auto& c : row) cells.push_back(cell_text(c));
      tt.add(std::move(cells));
    }
    tt.print(out);
  }
}

}  // namespace tramsync::sync
