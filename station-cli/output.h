// Terminal tables and JSON forms of the records, for station-cli's output.
#pragma once

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "tramsync/core/model.h"
#include "tramsync/core/report.h"
#include "tramsync/core/text.h"

namespace tramsync::cli {

using Table = TextTable;  // core/text.h

std::string short_id(const std::string& id);  // first 8 characters
std::string fmt_number(double v);            // 1.5, 2, 37.8

nlohmann::json to_json(const Patient& p);
nlohmann::json to_json(const PatientRow& r);
nlohmann::json to_json(const Visit& v);
nlohmann::json to_json(const Movement& m);
nlohmann::json to_json(const RefillDue& r);
nlohmann::json to_json(const ItemStock& s);
nlohmann::json to_json(const WasteBatch& b);
nlohmann::json to_json(const DailyReport& r);
nlohmann::json to_json(const Household& h);

}  // namespace tramsync::cli
