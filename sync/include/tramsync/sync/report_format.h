// The centre's reports (core/central.h) as JSON, CSV and terminal text: one
// form for `tramsync-server report` and GET /v1/reports/NAME, so the terminal,
// a spreadsheet and the API show the same rows.
#pragma once

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>

#include "tramsync/core/central.h"

namespace tramsync::sync {

// {"report", "generated_at", "date"?, "filters", "freshness": [...],
//  "stale_stations": [...], "notes": [...], "tables": [{"name", "title", "columns", "rows": [{col: value}]}]}
nlohmann::json report_to_json(const CentralReport& r);

// RFC 4180 CSV: each table as a header row and its rows, tables separated by
// one empty line (a spreadsheet opens the first table at the top). Cells with
// a comma, quote or line break are quoted; a cell starting with = + - @ gets a
// leading apostrophe so a spreadsheet does not run it as a formula.
std::string report_to_csv(const CentralReport& r);

// Text for a terminal: freshness, notes, then each table.
void print_report(std::ostream& out, const CentralReport& r);

// One cell as text ("" for empty; decimals without trailing zeros).
std::string cell_text(const ReportCell& c);

}  // namespace tramsync::sync
