// Reconciliation at the centre: reports across every station the centre holds
// (docs/reports.md). Each report is a set of tables of plain cells, so the
// terminal, CSV, JSON and the reviewer API show the same rows; and each says
// how fresh its data is, station by station, because "no overdue patients"
// from a station silent for a week is not good news.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tramsync/core/report.h"

namespace tramsync {

// The report names, in the order `report --help` lists them.
inline const std::vector<std::string> kCentralReports = {"stations", "followup", "stock", "waste", "daily"};

// How many patients per station followup lists when a report covers several
// stations (its counts are always complete; one station's report lists all).
inline constexpr int kDefaultListLimit = 20;

struct CentralReportOptions {
  std::string station;   // a station code (or id): only that station; empty: all
  std::string district;  // only the stations of this district (compared diacritics- and case-insensitively)
  int stale_days = 3;    // a station not synced for more than this is named as stale
  ReportSettings settings;                 // overdue limits, expiry window
  std::optional<std::string> date;         // `daily`: the day (default today, centre-local)
  // `followup`: patients listed per station (0: all; default: all for one
  // station, kDefaultListLimit for several). Counts are never cut.
  std::optional<int> list_limit;
};

// How fresh one station's data is at the centre.
struct StationFreshness {
  std::string station_id, code, name, district, province;
  std::string last_sync;      // centre-local time of the last completed sync of any of its devices; "" never
  std::string newest_change;  // centre-local time its newest change received here was made; "" none
  int64_t days_since_sync = -1;  // whole days since last_sync; -1: never synced
  bool stale = false;            // never synced, or not for more than stale_days
};

// One cell: empty, a whole number, a decimal, or text.
using ReportCell = std::variant<std::monostate, int64_t, double, std::string>;

struct ReportTable {
  std::string name;                  // "stations", "province_totals" ...
  std::string title;                 // a line for people
  std::vector<std::string> columns;  // snake_case, the CSV header and the JSON keys
  std::vector<std::vector<ReportCell>> rows;
};

struct CentralReport {
  std::string name;          // one of kCentralReports
  std::string generated_at;  // centre-local time
  std::string date;          // `daily`: the day reported
  CentralReportOptions options;
  std::vector<StationFreshness> freshness;  // every station in the report's scope, stale first
  std::vector<std::string> stale_stations;  // codes of those whose data is older than stale_days
  std::vector<ReportTable> tables;          // the first is the main table
  std::vector<std::string> notes;           // caveats for people (stale stations behind a total ...)
};

}  // namespace tramsync
