// The station's daily report.
#include <algorithm>

#include "store_impl.h"
#include "tramsync/core/validate.h"

namespace tramsync {

Result<DailyReport> Store::daily_report(std::optional<std::string> date, const ReportSettings& settings) {
  const char* ctx = "report daily";
  auto id = impl_->require_identity();
  if (!id) return std::move(id.error()).in(ctx);
  const std::string now = impl_->local_now();
  std::string day = now.substr(0, 10);
  if (date) {
    auto d = parse_date(validate::trim(*date), "date");
    if (!d) return std::move(d.error()).in(ctx);
    if (d->str() > day) return Error::invalid("date", "must not be in the future", *date).in(ctx);
    day = d->str();
  }
  // The report describes the day as it stood at its end (or now, for today).
  const std::string end = day == now.substr(0, 10) ? now : day + "T23:59:59";
  const std::string station = id->station_id;

  DailyReport r;
  r.date = day;
  r.station_code = id->station_code;
  r.station_name = id->station_name;
  db::ReadTxn read(*impl_->db);
  db::Db& db = *impl_->db;

  // Under home care at the end of the day: registered by then, with a category,
  // and still active then (status unchanged since, or changed only later).
  const std::string under_care =
      "p.station_id = :station AND p.created_at <= :end AND (p.status = 'active' OR p.status_changed_at > :end) "
      "AND EXISTS (SELECT 1 FROM patient_sets c WHERE c.patient_id = p.id AND c.field = 'categories' AND c.present)";
  {
    auto q = db.prepare(
        "SELECT c.value, count(*) FROM patients p JOIN patient_sets c ON c.patient_id = p.id AND c.field = "
        "'categories' AND c.present WHERE " +
        under_care + " GROUP BY c.value");
    q.bind(":station", station).bind(":end", end);
    for (const auto& c : kCategories) r.under_care_by_category[c] = 0;
    while (q.step()) r.under_care_by_category[q.str(0)] = q.i64(1);
  }
  {
    auto q = db.prepare("SELECT count(*) FROM patients p WHERE " + under_care);
    q.bind(":station", station).bind(":end", end);
    if (q.step()) r.under_care_total = q.i64(0);
  }
  {
    auto q = db.prepare(
        "SELECT (SELECT count(*) FROM patients WHERE station_id = ?1 AND substr(created_at, 1, 10) = ?2), "
        "(SELECT count(*) FROM patients WHERE station_id = ?1 AND status != 'active' AND "
        " substr(status_changed_at, 1, 10) = ?2)");
    q.bind(1, station).bind(2, day);
    if (q.step()) {
      r.new_patients = q.i64(0);
      r.closed_patients = q.i64(1);
    }
  }
  {
    auto q = db.prepare(
        "SELECT count(*), coalesce(sum(v.refer), 0) FROM visits v WHERE v.station_id = ?1 AND v.at >= ?2 AND "
        "v.at <= ?3 AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = v.id)");
    q.bind(1, station).bind(2, day + "T00:00:00").bind(3, day + "T23:59:59");
    if (q.step()) {
      r.visits = q.i64(0);
      r.referrals = q.i64(1);
    }
  }
  {
    // Overdue at the end of the day: no contact (visit, or registration if never
    // visited) for more than the category's limit.
    auto q = db.prepare(
        "SELECT p.id, p.name, p.village, p.created_at, "
        "(SELECT group_concat(value, ',') FROM (SELECT value FROM patient_sets WHERE patient_id = p.id AND field = "
        " 'categories' AND present ORDER BY value)), "
        "(SELECT max(v.at) FROM visits v WHERE v.patient_id = p.id AND v.at <= :end AND NOT EXISTS "
        " (SELECT 1 FROM voids x WHERE x.event_id = v.id)) FROM patients p WHERE " +
        under_care);
    q.bind(":station", station).bind(":end", end);
    int64_t end_ms = ms_from_local_time(end, 0);
    while (q.step()) {
      OverduePatient o{q.str(0), q.str(1), q.str(2), q.str(4), q.str(5), 0};
      const std::string& since = o.last_visit.empty() ? q.str(3) : o.last_visit;
      int64_t elapsed = end_ms - ms_from_local_time(since, 0);
      bool covid = ("," + o.category_list + ",").find(",covid-home,") != std::string::npos;
      int limit = covid ? settings.covid_overdue_days : settings.other_overdue_days;
      if (elapsed > int64_t{limit} * 86'400'000) {
        o.days_since_contact = elapsed / 86'400'000;
        r.overdue.push_back(std::move(o));
      }
    }
    // Worst first: covid-home patients, then the longest without contact.
    std::stable_sort(r.overdue.begin(), r.overdue.end(), [](const OverduePatient& a, const OverduePatient& b) {
      bool ca = a.category_list.find("covid-home") != std::string::npos;
      bool cb = b.category_list.find("covid-home") != std::string::npos;
      if (ca != cb) return ca;
      return a.days_since_contact > b.days_since_contact;
    });
  }
  {
    auto q = db.prepare(
        "SELECT i.code, i.name, i.unit, count(DISTINCT m.patient_id || m.at), -sum(m.quantity) FROM stock_movements m "
        "JOIN items i ON i.id = m.item_id WHERE m.station_id = ?1 AND m.kind = 'dispense' AND m.at >= ?2 AND "
        "m.at <= ?3 AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = m.id) GROUP BY i.id ORDER BY i.code");
    q.bind(1, station).bind(2, day + "T00:00:00").bind(3, day + "T23:59:59");
    while (q.step()) r.dispensed.push_back({q.str(0), q.str(1), q.str(2), q.i64(3), q.i64(4)});
  }
  for (auto& it : stock(settings)) {
    if (it.under_reserve || it.expiring_soon > 0 || it.expired_on_hand > 0) r.stock_alerts.push_back(std::move(it));
  }
  r.waste_pending = impl_->waste_as_of(end, true, std::nullopt);
  for (const auto& b : r.waste_pending) r.waste_pending_kg += b.weight_kg;
  return r;
}

}  // namespace tramsync
