// Terminal tables and JSON forms of the records, for station-cli's output.
#pragma once

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "tramsync/core/model.h"
#include "tramsync/core/report.h"

namespace tramsync::cli {

// A plain text table: columns padded to the widest cell (by terminal width, so
// Vietnamese names line up), a header row and a rule under it.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

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
