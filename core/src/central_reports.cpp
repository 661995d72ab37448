// Reports across stations at the centre (tramsync/core/central.h, docs/reports.md).
//
// They read the derived tables migration 8 keeps by trigger (care_contact,
// refill_due, stock_balance, dispensed_daily, waste_state, station_activity)
// through their indexes, so a province of a million patients answers without
// aggregating every visit and movement. The same person registered at two
// stations and linked (patients.same_as) counts once: a person is overdue only
// when none of their records was seen in time.
#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <unordered_map>

#include "store_impl.h"
#include "tramsync/core/text.h"
#include "tramsync/core/validate.h"

namespace tramsync {

namespace {

constexpr int64_t kDayMs = 86'400'000;
constexpr int kTreatedRank = 4;  // kWasteStages: bagged collected stored handed-over treated

// A category's bit in care_contact.categories (migration 8 keeps the mask).
int64_t category_bit(const std::string& category) {
  static const std::map<std::string, int64_t> kBits = {
      {"elderly", 1}, {"chronic", 2}, {"covid-home", 4}, {"vulnerable", 8}, {"other", 16}};
  auto it = kBits.find(category);
  return it == kBits.end() ? 0 : it->second;
}

ReportCell txt(std::string s) { return ReportCell{std::move(s)}; }
ReportCell num(int64_t v) { return ReportCell{v}; }
ReportCell dec(double v) { return ReportCell{v}; }
ReportCell opt_txt(const std::string& s) { return s.empty() ? ReportCell{} : ReportCell{s}; }

struct Station {
  StationFreshness f;
  size_t index = 0;
};

class Reporter {
 public:
  Reporter(StoreImpl& s, const CentralReportOptions& o) : s_(s), db_(*s.db), o_(o) {}

  Result<CentralReport> run(const std::string& name) {
    if (std::find(kCentralReports.begin(), kCentralReports.end(), name) == kCentralReports.end()) {
      std::string all;
      for (const auto& r : kCentralReports) all += (all.empty() ? "" : ", ") + r;
      return Error::invalid("report", "must be one of " + all, name);
    }
    if (o_.stale_days < 0 || o_.stale_days > 3650) {
      return Error::invalid("stale-days", "must be between 0 and 3650", std::to_string(o_.stale_days));
    }
    if (o_.settings.covid_overdue_days < 0 || o_.settings.covid_overdue_days > 3650) {
      return Error::invalid("covid-days", "must be between 0 and 3650", std::to_string(o_.settings.covid_overdue_days));
    }
    if (o_.settings.other_overdue_days < 1 || o_.settings.other_overdue_days > 3650) {
      return Error::invalid("overdue-days", "must be between 1 and 3650",
                            std::to_string(o_.settings.other_overdue_days));
    }
    now_ms_ = s_.now_ms();
    offset_ = s_.utc_offset();
    now_ = local_time_from_ms(now_ms_, offset_);
    today_ = now_.substr(0, 10);
    r_.name = name;
    r_.generated_at = now_;
    r_.options = o_;
    if (auto st = load_stations(); !st) return st.error();
    if (name == "stations") {
      stations_report();
    } else if (name == "followup") {
      followup_report();
    } else if (name == "stock") {
      stock_report();
    } else if (name == "waste") {
      waste_report();
    } else {
      if (auto st = daily_report(); !st) return st.error();
    }
    if (!r_.stale_stations.empty()) {
      std::string list;
      for (const auto& c : r_.stale_stations) list += (list.empty() ? "" : ", ") + c;
      r_.notes.push_back("Data older than " + std::to_string(o_.stale_days) + " days (or never synced) from " +
                         std::to_string(r_.stale_stations.size()) + " station(s): " + list +
                         ". Their rows and every total that includes them show what the centre last received, "
                         "not the station today.");
    }
    return std::move(r_);
  }

 private:
  // --- the stations in scope and how fresh their data is --------------------------

  Status load_stations() {
    auto scope = s_.stations_in_scope(o_.station, o_.district);
    if (!scope) return scope.error();
    for (auto& s : *scope) {
      StationFreshness f{s.id, s.code, s.name, s.district, s.province, "", "", -1, false};
      stations_.push_back(Station{std::move(f), stations_.size()});
    }
    for (auto& st : stations_) by_id_[st.f.station_id] = &st;
    // The devices table is small (a few per station): one pass for every station
    // rather than a scan of it per station.
    {
      auto d = db_.prepare(
          "SELECT station_id, max(last_sync_at) FROM devices WHERE station_id IS NOT NULL AND role != 'reviewer' "
          "GROUP BY station_id");
      while (d.step()) {
        if (Station* st = in_scope(d.str(0))) st->f.last_sync = d.str(1);
      }
    }
    for (auto& st : stations_) {
      StationFreshness& f = st.f;
      auto c = db_.prepare("SELECT hlc FROM changes WHERE station_id = ?1 AND from_peer IS NOT NULL ORDER BY seq DESC LIMIT 1");
      c.bind(1, f.station_id);
      if (c.step()) f.newest_change = local_time_from_ms(Hlc::physical_ms(static_cast<uint64_t>(c.i64(0))), offset_);
      if (!f.last_sync.empty()) {
        f.days_since_sync = std::max<int64_t>(0, (now_ms_ - ms_from_local_time(f.last_sync, offset_)) / kDayMs);
      }
      f.stale = f.days_since_sync < 0 || f.days_since_sync > o_.stale_days;
    }
    std::vector<StationFreshness> sorted;
    for (const auto& st : stations_) sorted.push_back(st.f);
    std::stable_sort(sorted.begin(), sorted.end(), [](const StationFreshness& a, const StationFreshness& b) {
      auto silence = [](const StationFreshness& f) { return f.days_since_sync < 0 ? INT64_MAX : f.days_since_sync; };
      return silence(a) > silence(b);
    });
    for (const auto& f : sorted) {
      if (f.stale) r_.stale_stations.push_back(f.code);
    }
    r_.freshness = std::move(sorted);
    return {};
  }



  Station* in_scope(const std::string& station_id) {
    auto it = by_id_.find(station_id);
    return it == by_id_.end() ? nullptr : it->second;
  }
  // How a per-station query covers the scope: one pass over every station
  // (""), or one pass per station of a --station/--district scope, each
  // narrowed in SQL through an index led by station_id, rather than a pass
  // over the province filtered here.
  std::vector<std::string> station_passes() const {
    if (o_.station.empty() && o_.district.empty()) return {""};
    std::vector<std::string> out;
    for (const auto& st : stations_) out.push_back(st.f.station_id);
    return out;
  }
  // Runs a per-station query over the scope, once per station_passes():
  // `where` is the query up to its last WHERE condition, `col` the station
  // column narrowed to ?9 on a station's pass, `tail` what follows (GROUP BY
  // ...); `bind` binds the other parameters, `row` reads each row.
  template <typename Bind, typename Row>
  void each_pass(const std::string& where, const char* col, const std::string& tail, Bind&& bind, Row&& row) {
    for (const auto& pass : station_passes()) {
      auto q = db_.prepare(where + (pass.empty() ? std::string() : std::string(" AND ") + col + " = ?9") + tail);
      bind(q);
      if (!pass.empty()) q.bind(9, pass);
      while (q.step()) row(q);
    }
  }

  void freshness_cells(std::vector<ReportCell>& row, const StationFreshness& f) {
    row.push_back(opt_txt(f.last_sync));
    row.push_back(txt(f.stale ? "yes" : "no"));
  }

  // The position of `name` among a table's columns (a bug if absent).
  static size_t column(const ReportTable& t, const std::string& name) {
    auto it = std::find(t.columns.begin(), t.columns.end(), name);
    if (it == t.columns.end()) throw std::logic_error("report table " + t.name + " has no column " + name);
    return static_cast<size_t>(it - t.columns.begin());
  }

  std::string cutoff_days(int64_t days) { return local_time_from_ms(now_ms_ - days * kDayMs, offset_); }

  // --- stations ----------------------------------------------------------------------

  void stations_report() {
    ReportTable t{"stations", "Stations, silent ones first",
                  {"station_code", "station_name", "district", "province", "last_sync", "days_since_sync", "stale",
                   "newest_change", "changes_received_7d", "devices", "devices_clock_warning", "quarantined_held",
                   "conflicts_open"},
                  {}};
    const std::string week_ago = add_days(date_of(now_), -6).str();  // today and the 6 days before
    std::unordered_map<std::string, std::pair<int64_t, int64_t>> device_counts;  // station: (devices, skewed)
    {
      auto d = db_.prepare(
          "SELECT station_id, count(*), coalesce(sum(abs(clock_skew_ms) > ?1), 0) FROM devices WHERE station_id IS "
          "NOT NULL AND revoked_at = '' AND role != 'reviewer' GROUP BY station_id");
      d.bind(1, int64_t{24} * 3600 * 1000);
      while (d.step()) device_counts[d.str(0)] = {d.i64(1), d.i64(2)};
    }
    for (const auto& f : r_.freshness) {
      int64_t received = 0, held = 0, conflicts = 0;
      auto a = db_.prepare("SELECT coalesce(sum(received), 0) FROM station_activity WHERE station_id = ?1 AND day >= ?2");
      a.bind(1, f.station_id).bind(2, week_ago);
      if (a.step()) received = a.i64(0);
      a.release();
      const auto [devices, skewed] = device_counts[f.station_id];
      auto h = db_.prepare(
          "SELECT (SELECT count(*) FROM quarantine WHERE status = 'held' AND station_id = ?1), "
          "(SELECT count(*) FROM conflicts WHERE status = 'open' AND station_id = ?1)");
      h.bind(1, f.station_id);
      if (h.step()) {
        held = h.i64(0);
        conflicts = h.i64(1);
      }
      t.rows.push_back({txt(f.code), txt(f.name), txt(f.district), txt(f.province), opt_txt(f.last_sync),
                        f.days_since_sync < 0 ? ReportCell{} : num(f.days_since_sync), txt(f.stale ? "yes" : "no"),
                        opt_txt(f.newest_change), num(received), num(devices), num(skewed), num(held),
                        num(conflicts)});
    }
    r_.tables.push_back(std::move(t));
  }

  // --- followup ----------------------------------------------------------------------

  // The key of the person a record belongs to: the record kept, for a linked duplicate.
  struct PersonLinks {
    std::string person;
    std::vector<std::string> records;  // every record of the person
  };
  // The linked duplicates (kept record: the records linked to it), read once
  // through the partial index patients_same_as, named: without statistics the
  // planner scanned the whole table for it (27 ms at 100,000 patients).
  // (`same_as = ?` alone cannot use that index either: it scanned every patient
  // for each overdue candidate.)
  const std::unordered_map<std::string, std::vector<std::string>>& duplicates() {
    if (!duplicates_) {
      duplicates_.emplace();
      auto q = db_.prepare("SELECT same_as, id FROM patients INDEXED BY patients_same_as WHERE same_as != '' ORDER BY same_as, id");
      while (q.step()) (*duplicates_)[q.str(0)].push_back(q.str(1));
    }
    return *duplicates_;
  }
  PersonLinks person_of(const std::string& id, const std::string& same_as) {
    PersonLinks p{same_as.empty() ? id : same_as, {}};
    p.records.push_back(p.person);
    if (auto it = duplicates().find(p.person); it != duplicates().end()) {
      p.records.insert(p.records.end(), it->second.begin(), it->second.end());
    }
    return p;
  }

  // A record that is one person with others (linked by `duplicates merge`:
  // it names a kept record, or is the kept record of some), as SQL over
  // care_contact `c`. Links are few; they are judged one by one below.
  static std::string linked_sql(const char* c) {
    return std::string("(") + c + ".same_as != '' OR EXISTS (SELECT 1 FROM patients k INDEXED BY patients_same_as "
           "WHERE k.same_as = " + c + ".patient_id AND k.same_as != ''))";
  }

  // How many rows of one station each listing of followup shows: all for one
  // station, else --limit (default kDefaultListLimit); 0 is all.
  int64_t list_limit() const {
    if (o_.list_limit) return *o_.list_limit == 0 ? -1 : *o_.list_limit;
    return stations_.size() == 1 ? -1 : kDefaultListLimit;
  }

  // `counts_only`: only the table by_station is wanted (the daily report's
  // overdue column): nothing is listed.
  //
  // The counts are exact and come from care_contact's and refill_due's
  // indexes in SQL (GROUP BY station). Linked records are taken apart and
  // judged as persons: overdue only when none of the person's records was
  // seen in time, once. The listings show each station's worst first, at
  // most list_limit() rows per station, read through indexes led by
  // station_id in the order they are listed, so a province costs its
  // stations' first rows, not every overdue patient.
  void followup_report(bool counts_only = false) {
    const int covid_days = o_.settings.covid_overdue_days, other_days = o_.settings.other_overdue_days;
    const std::string cut_covid = cutoff_days(covid_days), cut_other = cutoff_days(other_days);
    const std::string covid_bit = std::to_string(category_bit("covid-home"));
    const std::string is_covid = " AND (c.categories & " + covid_bit + ") != 0";
    const std::string is_other = " AND c.categories != 0 AND (c.categories & " + covid_bit + ") = 0";
    const std::string unlinked = " AND NOT " + linked_sql("c");
    std::vector<std::array<int64_t, 3>> counts(stations_.size(), {0, 0, 0});  // covid, other, lapsed

    struct Overdue {
      Station* st;
      std::string id, name, village, categories, last_contact;
      bool covid;
      int64_t days;
    };
    struct Lapsed {
      Station* st;
      std::string id, name, village, item_code, item_name, last_dispensed_at, due;
      int64_t days;
    };
    std::vector<Overdue> overdue;
    std::vector<Lapsed> lapsed;

    // 1. Counts of the records that are nobody else's.
    for (bool covid : {true, false}) {
      each_pass(
          "SELECT c.station_id, count(*) FROM care_contact c WHERE c.active = 1 AND c.last_contact < ?1" +
              (covid ? is_covid : is_other) + unlinked,
          "c.station_id", " GROUP BY c.station_id", [&](db::Stmt& q) { q.bind(1, covid ? cut_covid : cut_other); },
          [&](db::Stmt& q) {
            if (Station* st = in_scope(q.str(0))) counts[st->index][covid ? 0 : 1] += q.i64(1);
          });
    }
    each_pass(
        "SELECT r.station_id, count(*) FROM refill_due r JOIN care_contact c ON c.patient_id = r.patient_id WHERE "
        "r.active = 1 AND r.due < ?1" + unlinked,
        "r.station_id", " GROUP BY r.station_id", [&](db::Stmt& q) { q.bind(1, today_); },
        [&](db::Stmt& q) {
          if (Station* st = in_scope(q.str(0))) counts[st->index][2] += q.i64(1);
        });

    // 2. Linked records, as persons: counted and always listed (they are few).
    const std::string cats =
        "(SELECT group_concat(value, ',') FROM (SELECT value FROM patient_sets WHERE patient_id = p.id AND field = "
        "'categories' AND present ORDER BY value))";
    const std::string overdue_select = "SELECT p.id, p.station_id, p.name, p.village, p.same_as, c.last_contact, " +
                                       cats + " FROM care_contact c JOIN patients p ON p.id = c.patient_id WHERE "
                                       "c.active = 1 AND c.last_contact < ?1";
    auto read_overdue = [&](db::Stmt& q, bool covid) {
      Station* st = in_scope(q.str(1));
      if (!st) return std::optional<Overdue>{};
      Overdue o{st, q.str(0), q.str(2), q.str(3), q.str(6), q.str(5), covid, 0};
      o.days = (now_ms_ - ms_from_local_time(o.last_contact, offset_)) / kDayMs;
      return std::optional<Overdue>{std::move(o)};
    };
    // Every record that is one person with others: each kept record with links, and the records linked.
    std::vector<std::string> linked_ids;
    for (const auto& [kept, others] : duplicates()) {
      linked_ids.push_back(kept);
      linked_ids.insert(linked_ids.end(), others.begin(), others.end());
    }
    std::vector<Overdue> linked_overdue;
    {
      std::set<std::string> persons_seen;
      for (bool covid : {true, false}) {
        for (const auto& id : linked_ids) {
          auto q = db_.prepare(overdue_select + (covid ? is_covid : is_other) + " AND c.patient_id = ?2");
          q.bind(1, covid ? cut_covid : cut_other).bind(2, id);
          while (q.step()) {
            auto o = read_overdue(q, covid);
            if (!o) continue;
            // One person, several records: seen in time on any of them is seen.
            auto person = person_of(o->id, q.str(4));
            if (!persons_seen.insert(person.person).second) continue;
            std::string latest = o->last_contact;
            for (const auto& rec : person.records) {
              auto c = db_.prepare("SELECT last_contact FROM care_contact WHERE patient_id = ?1");
              c.bind(1, rec);
              if (c.step() && c.str(0) > latest) latest = c.str(0);
            }
            if (latest >= (covid ? cut_covid : cut_other)) continue;
            o->last_contact = latest;
            o->days = (now_ms_ - ms_from_local_time(latest, offset_)) / kDayMs;
            ++counts[o->st->index][covid ? 0 : 1];
            linked_overdue.push_back(std::move(*o));
          }
        }
      }
    }
    const std::string lapsed_select =
        "SELECT r.patient_id, r.station_id, p.name, p.village, p.same_as, i.code, i.name, r.last_dispensed_at, "
        "r.due, r.item_id FROM refill_due r JOIN care_contact c ON c.patient_id = r.patient_id JOIN patients p ON "
        "p.id = r.patient_id JOIN items i ON i.id = r.item_id WHERE r.active = 1 AND r.due < ?1";
    auto read_lapsed = [&](db::Stmt& q) {
      Station* st = in_scope(q.str(1));
      if (!st) return std::optional<Lapsed>{};
      Lapsed l{st, q.str(0), q.str(2), q.str(3), q.str(5), q.str(6), q.str(7), q.str(8), 0};
      l.days = days_between(date_of(l.due), date_of(today_));
      return std::optional<Lapsed>{std::move(l)};
    };
    std::vector<Lapsed> linked_lapsed;
    {
      std::set<std::pair<std::string, std::string>> seen;  // (person, item)
      for (const auto& id : linked_ids) {
        auto q = db_.prepare(lapsed_select + " AND r.patient_id = ?2");
        q.bind(1, today_).bind(2, id);
        while (q.step()) {
          auto l = read_lapsed(q);
          if (!l) continue;
          const std::string item = q.str(9);
          auto person = person_of(l->id, q.str(4));
          if (!seen.insert({person.person, item}).second) continue;
          bool covered = false;
          for (const auto& rec : person.records) {
            auto c = db_.prepare("SELECT due FROM refill_due WHERE patient_id = ?1 AND item_id = ?2 AND due >= ?3");
            c.bind(1, rec).bind(2, item).bind(3, today_);
            if (c.step()) covered = true;
          }
          if (covered) continue;
          ++counts[l->st->index][2];
          linked_lapsed.push_back(std::move(*l));
        }
      }
    }

    ReportTable summary{"by_station",
                        "Patients without follow-up per station (covid-home: more than " +
                            std::to_string(covid_days) + " day(s) without contact; others under home care: more than " +
                            std::to_string(other_days) + " days; lapsed: chronic medicine ran out)",
                        {"station_code", "station_name", "overdue_covid_home", "overdue_other", "lapsed_refills",
                         "last_sync", "stale"},
                        {}};
    for (const auto& st : stations_) {
      std::vector<ReportCell> row{txt(st.f.code), txt(st.f.name), num(counts[st.index][0]), num(counts[st.index][1]),
                                  num(counts[st.index][2])};
      freshness_cells(row, st.f);
      summary.rows.push_back(std::move(row));
    }
    if (counts_only) {
      r_.tables.push_back(std::move(summary));
      return;
    }

    // 3. The listings, station by station, worst first, at most `limit` rows
    // each, read in that order from the indexes led by station_id.
    std::string station_overdue_select = overdue_select, station_lapsed_select = lapsed_select;
    station_overdue_select.replace(station_overdue_select.find("FROM care_contact c"), 19,
                                   "FROM care_contact c INDEXED BY care_contact_station_due");
    station_lapsed_select.replace(station_lapsed_select.find("FROM refill_due r"), 17,
                                  "FROM refill_due r INDEXED BY refill_due_station");
    const int64_t limit = list_limit();
    bool cut = false;
    for (const auto& st : stations_) {
      std::vector<Overdue> mine;
      for (bool covid : {true, false}) {
        // Named: the planner would take care_contact_covid's province-wide range for covid-home.
        auto q = db_.prepare(station_overdue_select + (covid ? is_covid : is_other) + unlinked +
                             " AND c.station_id = ?2 ORDER BY c.last_contact LIMIT ?3");
        q.bind(1, covid ? cut_covid : cut_other).bind(2, st.f.station_id).bind(3, limit);
        while (q.step()) {
          if (auto o = read_overdue(q, covid)) mine.push_back(std::move(*o));
        }
      }
      for (const auto& o : linked_overdue) {
        if (o.st == &st) mine.push_back(o);
      }
      // Covid-home first, then longest without contact.
      std::stable_sort(mine.begin(), mine.end(), [](const Overdue& a, const Overdue& b) {
        if (a.covid != b.covid) return a.covid;
        return a.days > b.days;
      });
      if (limit >= 0 && static_cast<int64_t>(mine.size()) > limit) mine.resize(static_cast<size_t>(limit));
      if (static_cast<int64_t>(mine.size()) < counts[st.index][0] + counts[st.index][1]) cut = true;
      for (auto& o : mine) overdue.push_back(std::move(o));

      std::vector<Lapsed> lap;
      {
        auto q = db_.prepare(station_lapsed_select + unlinked + " AND r.station_id = ?2 ORDER BY r.due LIMIT ?3");
        q.bind(1, today_).bind(2, st.f.station_id).bind(3, limit);
        while (q.step()) {
          if (auto l = read_lapsed(q)) lap.push_back(std::move(*l));
        }
      }
      for (const auto& l : linked_lapsed) {
        if (l.st == &st) lap.push_back(l);
      }
      std::stable_sort(lap.begin(), lap.end(), [](const Lapsed& a, const Lapsed& b) { return a.days > b.days; });
      if (limit >= 0 && static_cast<int64_t>(lap.size()) > limit) lap.resize(static_cast<size_t>(limit));
      if (static_cast<int64_t>(lap.size()) < counts[st.index][2]) cut = true;
      for (auto& l : lap) lapsed.push_back(std::move(l));
    }
    if (cut) {
      r_.notes.push_back("The lists show at most " + std::to_string(limit) +
                         " patients per station, the worst first; the counts in by_station are complete (--limit 0 "
                         "lists every one).");
    }

    ReportTable t1{"overdue", "Overdue for a visit, per station, worst first",
                   {"station_code", "patient_id", "name", "village", "categories", "last_contact",
                    "days_without_contact", "limit_days", "station_stale"},
                   {}};
    for (const auto& o : overdue) {
      t1.rows.push_back({txt(o.st->f.code), txt(o.id), txt(o.name), txt(o.village), txt(o.categories),
                         txt(o.last_contact), num(o.days), num(o.covid ? covid_days : other_days),
                         txt(o.st->f.stale ? "yes" : "no")});
    }
    ReportTable t2{"lapsed_refills", "Chronic medicine ran out (refill date passed), per station, longest first",
                   {"station_code", "patient_id", "name", "village", "item_code", "item_name", "last_dispensed_at",
                    "ran_out_on", "days_without", "station_stale"},
                   {}};
    for (const auto& l : lapsed) {
      t2.rows.push_back({txt(l.st->f.code), txt(l.id), txt(l.name), txt(l.village), txt(l.item_code),
                         txt(l.item_name), txt(l.last_dispensed_at), txt(l.due), num(l.days),
                         txt(l.st->f.stale ? "yes" : "no")});
    }
    r_.tables.push_back(std::move(summary));
    r_.tables.push_back(std::move(t1));
    r_.tables.push_back(std::move(t2));
  }

  // --- stock ---------------------------------------------------------------------------

  void stock_report() {
    const std::string soon = add_days(date_of(today_), o_.settings.expiring_within_days).str();
    const std::string since = add_days(date_of(today_), -29).str();  // the last 30 days, today included
    struct Line {
      Station* st = nullptr;
      std::string item_id;
      int64_t on_hand = 0, expired = 0, expiring = 0, dispensed = 0;
      std::optional<int64_t> reserve;
    };
    std::map<std::pair<size_t, std::string>, Line> lines;  // (station index, item id)
    auto line = [&](Station* st, const std::string& item) -> Line& {
      Line& l = lines[{st->index, item}];
      l.st = st;
      l.item_id = item;
      return l;
    };
    // Per station of a --station/--district scope through indexes led by
    // station_id; the whole province in one pass.
    each_pass(
        "SELECT station_id, item_id, "
        "sum(CASE WHEN expiry = '' OR expiry >= ?1 THEN on_hand ELSE 0 END), "
        "sum(CASE WHEN expiry != '' AND expiry < ?1 THEN on_hand ELSE 0 END), "
        "sum(CASE WHEN expiry != '' AND expiry >= ?1 AND expiry <= ?2 AND on_hand > 0 THEN on_hand ELSE 0 END) "
        "FROM stock_balance WHERE 1",
        "station_id", " GROUP BY station_id, item_id", [&](db::Stmt& q) { q.bind(1, today_).bind(2, soon); },
        [&](db::Stmt& q) {
          Station* st = in_scope(q.str(0));
          if (!st) return;
          Line& l = line(st, q.str(1));
          l.on_hand = q.i64(2);
          l.expired = q.i64(3);
          l.expiring = q.i64(4);
        });
    each_pass(
        "SELECT station_id, item_id, level FROM item_reserves WHERE 1", "station_id", "", [](db::Stmt&) {},
        [&](db::Stmt& q) {
          if (Station* st = in_scope(q.str(0))) line(st, q.str(1)).reserve = q.i64(2);
        });
    each_pass(
        "SELECT station_id, item_id, sum(quantity) FROM dispensed_daily WHERE day >= ?1 AND day <= ?2", "station_id",
        " GROUP BY station_id, item_id", [&](db::Stmt& q) { q.bind(1, since).bind(2, today_); },
        [&](db::Stmt& q) {
          if (Station* st = in_scope(q.str(0))) line(st, q.str(1)).dispensed = q.i64(2);
        });
    struct ItemInfo {
      std::string code, name, unit;
    };
    std::map<std::string, ItemInfo> items;
    {
      auto q = db_.prepare("SELECT id, code, name, unit FROM items");
      while (q.step()) items[q.str(0)] = ItemInfo{q.str(1), q.str(2), q.str(3)};
    }
    auto days_left = [](int64_t on_hand, int64_t dispensed) -> ReportCell {
      if (dispensed <= 0) return ReportCell{};  // nothing dispensed: no rate to run out at
      if (on_hand <= 0) return num(0);
      return num(on_hand * 30 / dispensed);
    };
    ReportTable t{"stock",
                  "Stock per station and item (under reserve first); days left at the last 30 days' dispensing rate",
                  {"station_code", "item_code", "item_name", "unit", "on_hand", "reserve", "under_reserve",
                   "short_by", "expiring_30d", "expired_on_hand", "dispensed_30d", "days_left", "last_sync", "stale"},
                  {}};
    std::vector<const Line*> ordered;
    for (const auto& [k, l] : lines) ordered.push_back(&l);
    std::stable_sort(ordered.begin(), ordered.end(), [&](const Line* a, const Line* b) {
      if (a->st->index != b->st->index) return a->st->index < b->st->index;
      bool ua = a->reserve && a->on_hand < *a->reserve, ub = b->reserve && b->on_hand < *b->reserve;
      if (ua != ub) return ua;
      return items[a->item_id].code < items[b->item_id].code;
    });
    struct Total {
      int64_t on_hand = 0, expired = 0, expiring = 0, dispensed = 0, reserve = 0, under = 0, stale = 0;
    };
    std::map<std::string, Total> totals;  // by item code
    std::map<std::string, std::string> code_to_id;
    for (const Line* l : ordered) {
      const ItemInfo& it = items[l->item_id];
      bool under = l->reserve && l->on_hand < *l->reserve;
      std::vector<ReportCell> row{txt(l->st->f.code), txt(it.code), txt(it.name), txt(it.unit), num(l->on_hand),
                                  l->reserve ? num(*l->reserve) : ReportCell{}, txt(under ? "yes" : "no"),
                                  under ? num(*l->reserve - l->on_hand) : num(0), num(l->expiring), num(l->expired),
                                  num(l->dispensed), days_left(l->on_hand, l->dispensed)};
      freshness_cells(row, l->st->f);
      t.rows.push_back(std::move(row));
      Total& tot = totals[it.code];
      code_to_id[it.code] = l->item_id;
      tot.on_hand += l->on_hand;
      tot.expired += l->expired;
      tot.expiring += l->expiring;
      tot.dispensed += l->dispensed;
      tot.reserve += l->reserve.value_or(0);
      tot.under += under ? 1 : 0;
      tot.stale += l->st->f.stale ? 1 : 0;
    }
    ReportTable p{"province_totals", "Totals per item over the stations above",
                  {"item_code", "item_name", "unit", "on_hand", "reserve", "stations_under_reserve", "expiring_30d",
                   "expired_on_hand", "dispensed_30d", "days_left", "stale_stations"},
                  {}};
    for (const auto& [code, tot] : totals) {
      const ItemInfo& it = items[code_to_id[code]];
      p.rows.push_back({txt(code), txt(it.name), txt(it.unit), num(tot.on_hand), num(tot.reserve), num(tot.under),
                        num(tot.expiring), num(tot.expired), num(tot.dispensed), days_left(tot.on_hand, tot.dispensed),
                        num(tot.stale)});
    }
    r_.tables.push_back(std::move(t));
    r_.tables.push_back(std::move(p));
  }

  // --- waste ---------------------------------------------------------------------------

  void waste_report() {
    struct Batch {
      Station* st;
      std::string id, kind, stage, stage_at, bagged_at, to_org;
      int64_t bags, age;
      double kg;
    };
    std::vector<Batch> pending;
    each_pass(
        "SELECT w.batch_id, w.station_id, w.rank, w.stage_at, b.kind, b.bags, b.weight_kg, b.created_at, "
        "coalesce((SELECT s.to_org FROM waste_stages s WHERE s.batch_id = w.batch_id AND s.to_org != '' AND NOT "
        "EXISTS (SELECT 1 FROM voids x WHERE x.event_id = s.id) ORDER BY s.rank DESC, s.at DESC LIMIT 1), '') "
        "FROM waste_state w JOIN waste_batches b ON b.id = w.batch_id WHERE w.rank < ?1",
        "w.station_id", "", [&](db::Stmt& q) { q.bind(1, kTreatedRank); },
        [&](db::Stmt& q) {
          Station* st = in_scope(q.str(1));
          if (!st) return;
          int64_t rank = std::clamp<int64_t>(q.i64(2), 0, static_cast<int64_t>(kWasteStages.size()) - 1);
          Batch b{st, q.str(0), q.str(4), kWasteStages[static_cast<size_t>(rank)], q.str(3), q.str(7), q.str(8),
                  q.i64(5), 0, q.dbl(6)};
          b.age = std::max<int64_t>(0, (now_ms_ - ms_from_local_time(b.bagged_at, offset_)) / kDayMs);
          pending.push_back(std::move(b));
        });
    std::stable_sort(pending.begin(), pending.end(), [](const Batch& a, const Batch& b) {
      if (a.st->index != b.st->index) return a.st->index < b.st->index;
      return a.bagged_at < b.bagged_at;
    });
    struct Group {
      int64_t batches = 0, oldest = 0;
      double kg = 0;
    };
    std::map<std::pair<size_t, std::string>, Group> by_stage;
    std::map<std::string, Group> by_kind;
    for (const auto& b : pending) {
      Group& g = by_stage[{b.st->index, b.stage}];
      ++g.batches;
      g.kg += b.kg;
      g.oldest = std::max(g.oldest, b.age);
      Group& k = by_kind[b.kind];
      ++k.batches;
      k.kg += b.kg;
      k.oldest = std::max(k.oldest, b.age);
    }
    ReportTable t{"by_station", "Waste not yet treated, per station and stage",
                  {"station_code", "station_name", "stage", "batches", "weight_kg", "oldest_days", "last_sync", "stale"},
                  {}};
    for (const auto& st : stations_) {
      for (const auto& stage : kWasteStages) {
        auto it = by_stage.find({st.index, stage});
        if (it == by_stage.end()) continue;
        std::vector<ReportCell> row{txt(st.f.code), txt(st.f.name), txt(stage), num(it->second.batches),
                                    dec(it->second.kg), num(it->second.oldest)};
        freshness_cells(row, st.f);
        t.rows.push_back(std::move(row));
      }
    }
    ReportTable list{"pending", "Batches not yet treated, per station, oldest first",
                     {"station_code", "batch_id", "kind", "bags", "weight_kg", "stage", "stage_at", "holder",
                      "bagged_at", "age_days", "station_stale"},
                     {}};
    for (const auto& b : pending) {
      list.rows.push_back({txt(b.st->f.code), txt(b.id), txt(b.kind), num(b.bags), dec(b.kg), txt(b.stage),
                           txt(b.stage_at), opt_txt(b.to_org), txt(b.bagged_at), num(b.age),
                           txt(b.st->f.stale ? "yes" : "no")});
    }
    ReportTable kinds{"totals_by_kind", "Untreated waste by kind over the stations above",
                      {"kind", "batches", "weight_kg", "oldest_days"},
                      {}};
    for (const auto& [k, g] : by_kind) kinds.rows.push_back({txt(k), num(g.batches), dec(g.kg), num(g.oldest)});
    r_.tables.push_back(std::move(t));
    r_.tables.push_back(std::move(list));
    r_.tables.push_back(std::move(kinds));
  }

  // --- daily ---------------------------------------------------------------------------

  Status daily_report() {
    std::string day = today_;
    if (o_.date) {
      auto d = parse_date(validate::trim(*o_.date), "date");
      if (!d) return d.error();
      if (d->str() > today_) return Error::invalid("date", "must not be in the future", *o_.date);
      day = d->str();
    }
    r_.date = day;
    const bool is_today = day == today_;
    const std::string end = is_today ? now_ : day + "T23:59:59";
    const std::string from = day + "T00:00:00", to = day + "T23:59:59";
    const size_t n = stations_.size();
    // Per station: the categories; v = under care, new, closed, visits, referrals, dispensings; then overdue,
    // items under reserve, waste batches, waste kg.
    std::vector<std::map<std::string, int64_t>> by_cat(n);
    std::vector<std::array<int64_t, 6>> v(n, {0, 0, 0, 0, 0, 0});
    std::vector<int64_t> overdue(n, 0), under(n, 0), waste(n, 0);
    std::vector<double> waste_kg(n, 0);
    // A linked duplicate counts once, under the record kept (if the kept record is here).
    const std::string person_once =
        " AND (c.same_as = '' OR NOT EXISTS (SELECT 1 FROM patients k WHERE k.id = c.same_as))";
    // Under care: a linked record is left out only when the record kept is
    // itself under care (else the person, e.g. kept record closed as moved and
    // this one active, would count nowhere).
    const std::string census_once =
        " AND (c.same_as = '' OR NOT EXISTS (SELECT 1 FROM care_contact k WHERE k.patient_id = c.same_as AND "
        "k.categories != 0 AND k.created_at <= ?1 AND (k.active = 1 OR k.status_changed_at > ?1)))";
    // The census over the stations in one pass of care_contact's indexes (it
    // keeps created_at, status, same_as and the categories as a bit mask,
    // migration 8), rather than every patient and its categories per station.
    // Under home care at the end of the day: registered by then, still active
    // or closed after it, with a category.
    {
      std::string sql = "SELECT c.station_id, count(*)";
      for (size_t k = 0; k < kCategories.size(); ++k) {
        sql += ", coalesce(sum((c.categories & " + std::to_string(category_bit(kCategories[k])) + ") != 0), 0)";
      }
      sql += " FROM care_contact c WHERE c.categories != 0 AND c.created_at <= ?1 AND (c.active = 1 OR "
             "c.status_changed_at > ?1)" + census_once;
      each_pass(sql, "c.station_id", " GROUP BY c.station_id", [&](db::Stmt& q) { q.bind(1, end); },
                [&](db::Stmt& q) {
                  Station* st = in_scope(q.str(0));
                  if (!st) return;
                  v[st->index][0] = q.i64(1);
                  for (size_t k = 0; k < kCategories.size(); ++k) {
                    by_cat[st->index][kCategories[k]] = q.i64(static_cast<int>(k) + 2);
                  }
                });
    }
    // Registered that day (1) and closed that day (2).
    each_pass("SELECT c.station_id, count(*) FROM care_contact c WHERE c.created_at >= ?1 AND c.created_at <= ?2" +
                  person_once,
              "c.station_id", " GROUP BY c.station_id", [&](db::Stmt& q) { q.bind(1, from).bind(2, to); },
              [&](db::Stmt& q) {
                if (Station* st = in_scope(q.str(0))) v[st->index][1] = q.i64(1);
              });
    each_pass("SELECT c.station_id, count(*) FROM care_contact c WHERE c.active = 0 AND c.status_changed_at >= ?1 "
              "AND c.status_changed_at <= ?2" + person_once,
              "c.station_id", " GROUP BY c.station_id", [&](db::Stmt& q) { q.bind(1, from).bind(2, to); },
              [&](db::Stmt& q) {
                if (Station* st = in_scope(q.str(0))) v[st->index][2] = q.i64(1);
              });
    // The day's events, per station through (station_id, at) indexes: a day is small.
    for (auto& st : stations_) {
      auto q = db_.prepare(
          "SELECT (SELECT count(*) FROM visits v WHERE v.station_id = ?1 AND v.at >= ?2 AND v.at <= ?3 AND NOT EXISTS "
          "(SELECT 1 FROM voids x WHERE x.event_id = v.id)), "
          "(SELECT count(*) FROM visits v WHERE v.station_id = ?1 AND v.at >= ?2 AND v.at <= ?3 AND v.refer AND "
          "NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = v.id)), "
          "(SELECT count(DISTINCT coalesce(m.group_id, m.id)) FROM stock_movements m WHERE m.station_id = ?1 AND "
          "m.kind = 'dispense' AND m.at >= ?2 AND m.at <= ?3 AND NOT EXISTS (SELECT 1 FROM voids x WHERE "
          "x.event_id = m.id))");
      q.bind(1, st.f.station_id).bind(2, from).bind(3, to);
      if (q.step()) {
        for (int k = 0; k < 3; ++k) v[st.index][static_cast<size_t>(k) + 3] = q.i64(k);
      }
    }
    each_pass(
        "SELECT w.station_id, count(*), coalesce(sum(b.weight_kg), 0) FROM waste_state w JOIN waste_batches b ON "
        "b.id = w.batch_id WHERE w.rank < ?1 AND b.created_at <= ?2",
        "w.station_id", " GROUP BY w.station_id", [&](db::Stmt& q) { q.bind(1, kTreatedRank).bind(2, end); },
        [&](db::Stmt& q) {
          if (Station* st = in_scope(q.str(0))) {
            waste[st->index] = q.i64(1);
            waste_kg[st->index] = q.dbl(2);
          }
        });
    if (is_today) {
      // Overdue and stock as they stand now (their history is not kept).
      // Read from those reports' own tables, by column name.
      followup_report(/*counts_only=*/true);
      {
        const ReportTable& t = r_.tables.at(0);
        const size_t covid = column(t, "overdue_covid_home"), other = column(t, "overdue_other");
        for (size_t i = 0; i < n; ++i) {
          overdue[i] = std::get<int64_t>(t.rows[i][covid]) + std::get<int64_t>(t.rows[i][other]);
        }
      }
      r_.tables.clear();
      stock_report();
      {
        std::unordered_map<std::string, size_t> code_index;
        for (const auto& st : stations_) code_index[st.f.code] = st.index;
        const ReportTable& t = r_.tables.at(0);
        const size_t code = column(t, "station_code"), below = column(t, "under_reserve");
        for (const auto& row : t.rows) {
          if (std::get<std::string>(row[below]) == "yes") ++under[code_index[std::get<std::string>(row[code])]];
        }
      }
      r_.tables.clear();
    }
    std::vector<std::string> cols{"station_code", "station_name", "under_care"};
    for (const auto& c : kCategories) {
      std::string col = c;
      std::replace(col.begin(), col.end(), '-', '_');
      cols.push_back(col);
    }
    for (const char* c : {"new_patients", "closed_patients", "visits", "referrals", "dispensings", "overdue",
                          "items_under_reserve", "waste_pending", "waste_pending_kg", "last_sync", "stale"}) {
      cols.push_back(c);
    }
    ReportTable t{"stations", "Daily report " + day + ", one row per station", cols, {}};
    ReportTable tot{"totals", "Totals over the stations above", {}, {}};
    tot.columns.assign(cols.begin() + 2, cols.end() - 2);
    tot.columns.push_back("stale_stations");
    std::vector<ReportCell> sum(tot.columns.size(), num(0));
    double kg_total = 0;
    int64_t stale = 0;
    for (const auto& st : stations_) {
      const size_t i = st.index;
      std::vector<int64_t> values{v[i][0]};
      for (const auto& c : kCategories) values.push_back(by_cat[i].count(c) ? by_cat[i][c] : 0);
      for (size_t k = 1; k < 6; ++k) values.push_back(v[i][k]);
      std::vector<ReportCell> row{txt(st.f.code), txt(st.f.name)};
      for (size_t k = 0; k < values.size(); ++k) {
        row.push_back(num(values[k]));
        sum[k] = num(std::get<int64_t>(sum[k]) + values[k]);
      }
      const size_t base = values.size();
      row.push_back(is_today ? num(overdue[i]) : ReportCell{});
      row.push_back(is_today ? num(under[i]) : ReportCell{});
      row.push_back(num(waste[i]));
      row.push_back(dec(waste_kg[i]));
      if (is_today) {
        sum[base] = num(std::get<int64_t>(sum[base]) + overdue[i]);
        sum[base + 1] = num(std::get<int64_t>(sum[base + 1]) + under[i]);
      }
      sum[base + 2] = num(std::get<int64_t>(sum[base + 2]) + waste[i]);
      kg_total += waste_kg[i];
      freshness_cells(row, st.f);
      stale += st.f.stale ? 1 : 0;
      t.rows.push_back(std::move(row));
    }
    const size_t base = sum.size() - 5;
    if (!is_today) {
      sum[base] = ReportCell{};
      sum[base + 1] = ReportCell{};
    }
    sum[base + 3] = dec(kg_total);
    sum[base + 4] = num(stale);
    tot.rows.push_back(std::move(sum));
    if (!is_today) {
      r_.notes.push_back("overdue and items_under_reserve are given for today only: the centre keeps no history of "
                         "them.");
    }
    r_.tables.push_back(std::move(t));
    r_.tables.push_back(std::move(tot));
    return {};
  }

  StoreImpl& s_;
  db::Db& db_;
  const CentralReportOptions& o_;
  CentralReport r_;
  std::vector<Station> stations_;
  std::unordered_map<std::string, Station*> by_id_;
  std::optional<std::unordered_map<std::string, std::vector<std::string>>> duplicates_;
  int64_t now_ms_ = 0;
  int offset_ = kDefaultUtcOffsetMinutes;
  std::string now_, today_;
};

}  // namespace

Result<CentralReport> Store::central_report(const std::string& name, const CentralReportOptions& options) {
  db::ReadTxn read(*impl_->db);
  auto r = Reporter(*impl_, options).run(name);
  if (!r) return std::move(r.error()).in("report " + name);
  return r;
}

}  // namespace tramsync
