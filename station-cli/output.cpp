#include "output.h"

#include <algorithm>
#include <cstdio>

#include "tramsync/core/text.h"

namespace tramsync::cli {

using json = nlohmann::json;

std::string short_id(const std::string& id) { return id.substr(0, 8); }

std::string fmt_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  return s;
}

namespace {
template <typename T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
json str_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
}  // namespace

json to_json(const Patient& p) {
  return {{"id", p.id},
          {"station_id", p.station_id},
          {"name", p.name},
          {"sex", p.sex},
          {"birth", p.birth},
          {"village", p.village},
          {"household_id", str_or_null(p.household_id)},
          {"categories", p.categories},
          {"conditions", p.conditions},
          {"phone", p.phone},
          {"national_id", p.national_id},
          {"status", p.status},
          {"status_changed_at", str_or_null(p.status_changed_at)},
          {"created_at", p.created_at},
          // Linked by the centre's `duplicates merge`: the same person as that record.
          {"same_as", str_or_null(p.same_as)},
          {"same_as_station", str_or_null(p.same_as_station)}};
}

json to_json(const PatientRow& r) {
  json j = to_json(r.patient);
  j["last_visit"] = str_or_null(r.last_visit);
  j["days_since_contact"] = r.days_since_contact;
  j["overdue"] = r.overdue;
  return j;
}

json to_json(const Visit& v) {
  return {{"id", v.id},         {"patient_id", v.patient_id}, {"at", v.at},       {"temp_c", opt(v.temp_c)},
          {"spo2", opt(v.spo2)}, {"bp_sys", opt(v.bp_sys)},   {"bp_dia", opt(v.bp_dia)}, {"pulse", opt(v.pulse)},
          {"symptoms", v.symptoms}, {"note", v.note},         {"refer", v.refer},  {"voided", v.voided}};
}

json to_json(const Movement& m) {
  return {{"id", m.id},          {"item_id", m.item_id},     {"item", m.item_code}, {"kind", m.kind},
          {"lot", m.lot},        {"expiry", m.expiry},       {"quantity", m.quantity},
          {"days_supply", opt(m.days_supply)}, {"at", m.at}, {"voided", m.voided}};
}

json to_json(const RefillDue& r) {
  return {{"item", r.item_code}, {"item_name", r.item_name}, {"last_dispensed_at", r.last_dispensed_at},
          {"next_refill", r.next_refill}};
}

json to_json(const ItemStock& s) {
  json lots = json::array();
  for (const auto& l : s.lots) {
    lots.push_back({{"lot", l.lot},
                    {"expiry", l.expiry},
                    {"on_hand", l.on_hand},
                    {"expired", l.expired},
                    {"expiring_soon", l.expiring_soon}});
  }
  return {{"item_id", s.item_id},         {"code", s.item_code},
          {"name", s.item_name},          {"unit", s.unit},
          {"kind", s.kind},               {"on_hand", s.on_hand},
          {"expired_on_hand", s.expired_on_hand}, {"reserve", opt(s.reserve)},
          {"under_reserve", s.under_reserve}, {"expiring_soon", s.expiring_soon},
          {"lots", lots}};
}

json to_json(const WasteBatch& b) {
  return {{"id", b.id},
          {"kind", b.kind},
          {"bags", b.bags},
          {"weight_kg", b.weight_kg},
          {"patient_id", str_or_null(b.patient_id)},
          {"household_id", str_or_null(b.household_id)},
          {"stage", b.stage},
          {"stage_at", b.stage_at},
          {"holder", str_or_null(b.holder)},
          {"created_at", b.created_at},
          {"age_days", b.age_days},
          {"note", b.note}};
}

json to_json(const Household& h) {
  return {{"id", h.id},           {"station_id", h.station_id}, {"village", h.village}, {"head_name", h.head_name},
          {"address", h.address}, {"phone", h.phone},           {"created_at", h.created_at}};
}

json to_json(const DailyReport& r) {
  json overdue = json::array();
  for (const auto& o : r.overdue) {
    overdue.push_back({{"id", o.id},
                       {"name", o.name},
                       {"village", o.village},
                       {"categories", o.category_list},
                       {"last_visit", str_or_null(o.last_visit)},
                       {"days_since_contact", o.days_since_contact}});
  }
  json dispensed = json::array();
  for (const auto& d : r.dispensed) {
    dispensed.push_back(
        {{"item", d.item_code}, {"name", d.item_name}, {"unit", d.unit}, {"dispensings", d.count}, {"quantity", d.quantity}});
  }
  json stock = json::array();
  for (const auto& s : r.stock_alerts) stock.push_back(to_json(s));
  json waste = json::array();
  for (const auto& b : r.waste_pending) waste.push_back(to_json(b));
  return {{"date", r.date},
          {"station", {{"code", r.station_code}, {"name", r.station_name}}},
          {"under_care", {{"total", r.under_care_total}, {"by_category", r.under_care_by_category}}},
          {"new_patients", r.new_patients},
          {"closed_patients", r.closed_patients},
          {"visits", r.visits},
          {"referrals", r.referrals},
          {"overdue", overdue},
          {"dispensed", dispensed},
          {"stock_alerts", stock},
          {"waste_pending", waste},
          {"waste_pending_kg", r.waste_pending_kg}};
}

}  // namespace tramsync::cli
