// The station's daily report (báo cáo ngày), computed from the records.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tramsync/core/model.h"

namespace tramsync {

struct ReportSettings {
  int covid_overdue_days = 1;   // covid-home: more than 1 day without contact
  int other_overdue_days = 30;  // every other active patient
  int expiring_within_days = 30;
};

struct OverduePatient {
  std::string id, name, village, category_list, last_visit;
  int64_t days_since_contact = 0;
};

struct DispenseSummary {
  std::string item_code, item_name, unit;
  int64_t count = 0, quantity = 0;
};

struct DailyReport {
  std::string date;  // YYYY-MM-DD
  std::string station_code, station_name;
  std::map<std::string, int64_t> under_care_by_category;  // active patients per category
  int64_t under_care_total = 0;
  int64_t new_patients = 0, closed_patients = 0;
  int64_t visits = 0, referrals = 0;
  std::vector<OverduePatient> overdue;            // worst first
  std::vector<DispenseSummary> dispensed;
  std::vector<ItemStock> stock_alerts;            // under reserve or expiring soon
  std::vector<WasteBatch> waste_pending;          // not yet treated, oldest first
  double waste_pending_kg = 0;
};

struct StatusInfo {
  Identity identity;
  int64_t changes_total = 0;
  int64_t changes_pending = 0;  // not acknowledged by any upstream peer yet
  std::string last_sync;        // empty: never
  uint64_t hlc = 0;
  int64_t clock_ms = 0;
  int schema_version = 0;
};

}  // namespace tramsync
