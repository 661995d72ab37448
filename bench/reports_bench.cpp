// tramsync-bench-reports: how long the centre's reports take over a province
// (Store::central_report; docs/reports.md). Prints figures; asserts nothing.
//
// 1. Builds a central file once and keeps it under --data DIR (default
//    bench-data/), named by its parameters, so a second run reuses it. The
//    data goes through the real write paths: Store::init_central and
//    Store::add_station register the stations; everything else arrives as
//    stations push it, one Store::apply_changes batch per station (split at
//    --batch changes, default 5,000; the file's name holds the parameters and
//    a fingerprint of the schema, so a migration change builds anew), shaped as in docs/protocol.md §3
//    (ApplyContext: write scope everything, check_clock off, from_peer = the
//    station's first device). So the triggers of migration 8 fill the derived
//    tables exactly as in production, and the change log holds every change.
//    Devices' last sync times come from Store::note_device_seen under a manual
//    clock set to the time of that sync.
//
//    Shapes, per station: 2 devices (1 station in 20 silent for 4-15 days,
//    1 in 100 never synced; a silent station's events stop when it went
//    silent); patients spread unevenly (weights 0.5-1.5) over the stations,
//    20 villages each; 25 % chronic and 20 % elderly (about 40 % either), 3 %
//    covid-home (visited most days of the last week or so), 4 % inactive
//    (recovered, moved, deceased); about 2 visits per patient over the last 60
//    days, 2 % referred; two monthly dispenses with days_supply 30 for each
//    active chronic patient (the last one 0-33 days ago, so some lapse), an
//    occasional dispense without days_supply at a visit; 30 catalogue items,
//    two lots received per station and item (some expired, some expiring
//    within 30 days); reserves for 10 items; 20 waste batches at every stage;
//    voids of 1 % of visits, 0.5 % of dispenses and 2 % of waste stages.
//    Not generated: households, staff, conflicts, quarantine, duplicate links
//    (patients.same_as, which only the reviewer's duplicates merge sets).
//
// 2. Times each report over all stations, one station (--station, default the
//    middle one) and one district (--district, default that station's), with
//    --runs runs each (default 7) after one warm-up run, on a Store opened
//    with the system clock. Prints a markdown table (median, min, max ms, and
//    the rows of each table of the report) and writes the same as JSON
//    (--json-out FILE).
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "tramsync/core/clock.h"
#include "tramsync/core/hlc.h"
#include "tramsync/core/model.h"
#include "tramsync/core/store.h"
#include "tramsync/core/time.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace tramsync;

namespace {

// Bump when the generated data changes shape, so an old cached file is not reused.
constexpr int kGeneratorVersion = 1;
constexpr int64_t kDayMs = 86'400'000;
constexpr int kItems = 30;
constexpr int kChronicItems = 5;  // items 0-4: chronic medicines
constexpr int kReserveItems = 10;
constexpr int kWastePerStation = 20;
constexpr int kVillagesPerStation = 20;
constexpr int kStationsPerDistrict = 10;
constexpr int kDistrictsPerProvince = 10;

struct Options {
  int64_t stations = 1000;
  int64_t patients = 1'000'000;
  int runs = 7;
  int64_t batch = 5000;
  std::string data = "bench-data";
  std::string json_out;
  std::string station, district;
  std::vector<std::string> reports = kCentralReports;
  std::vector<std::string> scopes = {"all", "station", "district"};
  bool rebuild = false;
  bool quick = false;
  int cache_mib = 64;  // as the server's default (sync::kDefaultServerCacheMib)
};

[[noreturn]] void usage(int code) {
  std::cout << "usage: tramsync-bench-reports [--quick] [--scale F] [--stations N] [--patients M] [--data DIR] [--runs R]\n"
               "         [--station CODE] [--district NAME] [--batch N] [--json-out FILE] [--rebuild]\n"
               "         [--reports LIST] [--scopes LIST]\n"
               "  --quick     100 stations x 100,000 patients (default 1000 x 1,000,000)\n"
               "  --scale F   1000 x F stations and 1,000,000 x F patients\n"
               "  --data      where the generated central file is kept and reused (default bench-data/)\n"
               "  --runs      timed runs per report and scope, after one warm-up (default 7)\n"
               "  --station   the station of the one-station scope (default the middle one)\n"
               "  --district  the district of the district scope (default that station's)\n"
               "  --batch     changes per apply_changes batch while building (default 5000)\n"
               "  --cache-mib SQLite page cache of the reports' connection in MiB (default 64, the server's)\n"
               "  --rebuild   build the file again even if one with these parameters exists\n"
               "  --reports   comma-separated reports to time (default stations,followup,stock,waste,daily)\n"
               "  --scopes    comma-separated scopes to time: all, station, district (default all three)\n";
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        usage(2);
      }
      return argv[++i];
    };
    if (a == "--quick") {
      o.stations = 100;
      o.patients = 100'000;
      o.quick = true;
    } else if (a == "--scale") {
      const double f = std::stod(value());
      o.stations = std::max<int64_t>(1, static_cast<int64_t>(1000 * f + 0.5));
      o.patients = static_cast<int64_t>(1'000'000 * f + 0.5);
    } else if (a == "--stations") {
      o.stations = std::stoll(value());
    } else if (a == "--patients") {
      o.patients = std::stoll(value());
    } else if (a == "--runs") {
      o.runs = std::stoi(value());
    } else if (a == "--batch") {
      o.batch = std::stoll(value());
    } else if (a == "--data") {
      o.data = value();
    } else if (a == "--json-out") {
      o.json_out = value();
    } else if (a == "--station") {
      o.station = value();
    } else if (a == "--district") {
      o.district = value();
    } else if (a == "--reports" || a == "--scopes") {
      std::vector<std::string> list;
      std::stringstream ss(value());
      for (std::string x; std::getline(ss, x, ',');) {
        if (!x.empty()) list.push_back(x);
      }
      (a == "--reports" ? o.reports : o.scopes) = list;
    } else if (a == "--cache-mib") {
      o.cache_mib = std::stoi(value());
    } else if (a == "--rebuild") {
      o.rebuild = true;
    } else if (a == "--help" || a == "-h") {
      usage(0);
    } else {
      std::cerr << "unknown option " << a << "\n";
      usage(2);
    }
  }
  if (o.stations < 1 || o.patients < 0 || o.runs < 1 || o.batch < 1) {
    std::cerr << "--stations, --runs and --batch must be at least 1, --patients at least 0\n";
    usage(2);
  }
  return o;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string station_code(int64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "TYT%04lld", static_cast<long long>(i + 1));
  return buf;
}
std::string district_name(int64_t i) {
  static const char* kBase[] = {"Mường Tè", "Sìn Hồ", "Phong Thổ", "Tam Đường", "Than Uyên",
                                "Tân Uyên", "Nậm Nhùn", "Mường Chà", "Tủa Chùa", "Điện Biên Đông"};
  const int64_t d = i / kStationsPerDistrict;
  return std::string(kBase[d % 10]) + (d >= 10 ? " " + std::to_string(d / 10 + 1) : "");
}
std::string province_name(int64_t i) {
  return "Tỉnh " + std::to_string(i / (kStationsPerDistrict * kDistrictsPerProvince) + 1);
}

// --- the generator -------------------------------------------------------------

class Generator {
 public:
  Generator(Store& store, ManualClock& clock, const Options& o, int64_t now_ms)
      : store_(store), clock_(clock), o_(o), now_ms_(now_ms), ids_(20260101), rng_(42) {}

  void run() {
    auto central = store_.init_central("Trung tâm Y tế tỉnh (bench)");
    if (!central) fail("init_central", central.error().message());
    centre_origin_ = central->device_id;
    publish_catalogue();
    // Unequal stations: patients spread by weights 0.5-1.5.
    std::vector<double> w(static_cast<size_t>(o_.stations));
    double total = 0;
    for (auto& x : w) total += (x = 0.5 + uniform());
    int64_t given = 0;
    std::vector<int64_t> counts(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      counts[i] = static_cast<int64_t>(static_cast<double>(o_.patients) * w[i] / total);
      given += counts[i];
    }
    for (size_t i = 0; given < o_.patients; i = (i + 1) % counts.size(), ++given) ++counts[i];

    auto t0 = std::chrono::steady_clock::now();
    for (int64_t s = 0; s < o_.stations; ++s) {
      build_station(s, counts[static_cast<size_t>(s)]);
      if ((s + 1) % std::max<int64_t>(1, o_.stations / 20) == 0 || s + 1 == o_.stations) {
        double el = seconds_since(t0);
        std::fprintf(stderr, "  built %lld/%lld stations, %lld changes, %.0f s (%.0f changes/s)\n",
                     static_cast<long long>(s + 1), static_cast<long long>(o_.stations),
                     static_cast<long long>(changes_), el, static_cast<double>(changes_) / el);
      }
    }
  }

  int64_t changes() const { return changes_; }
  int64_t batches() const { return batches_; }
  double apply_seconds() const { return apply_s_; }
  const std::map<std::string, int64_t>& counts() const { return per_kind_; }

 private:
  [[noreturn]] static void fail(const std::string& what, const std::string& why) {
    std::cerr << "bench data: " << what << ": " << why << "\n";
    std::exit(1);
  }
  double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  int64_t pick(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  bool chance(double p) { return uniform() < p; }
  std::string local(int64_t ms) { return local_time_from_ms(ms, kDefaultUtcOffsetMinutes); }

  // A change as a station's device pushes it.
  void add(const std::string& station, const std::string& kind, const std::string& record_id, int64_t at_ms,
           json payload) {
    Change c;
    c.seq = ++seq_;
    c.origin = origin_;
    c.origin_seq = ++origin_seq_[origin_];
    c.hlc = Hlc::pack(at_ms, static_cast<uint64_t>(c.origin_seq) & Hlc::kLogicalMask);
    c.station_id = station;
    c.kind = kind;
    c.record_id = record_id;
    c.payload = payload.dump();
    pending_.push_back(std::move(c));
    ++per_kind_[kind];
    if (static_cast<int64_t>(pending_.size()) >= o_.batch) flush();
  }
  static json upsert(json fields) { return json{{"op", "upsert"}, {"fields", std::move(fields)}}; }
  static json insert(json event) { return json{{"op", "insert"}, {"event", std::move(event)}}; }

  void flush() {
    if (pending_.empty()) return;
    ApplyContext ctx;
    ctx.from_peer = from_peer_;
    ctx.write_scope = Scope::everything();
    ctx.check_clock = false;
    auto t0 = std::chrono::steady_clock::now();
    auto r = store_.apply_changes(pending_, ctx);
    apply_s_ += seconds_since(t0);
    if (!r) fail("apply_changes", r.error().message());
    if (r->quarantined > 0) {
      for (const auto& res : r->results) {
        if (res.status == ApplyStatus::kQuarantined) fail("a generated change was quarantined", res.reason);
      }
    }
    changes_ += static_cast<int64_t>(pending_.size());
    ++batches_;
    pending_.clear();
  }

  void publish_catalogue() {
    static const char* kNames[] = {"Amlodipin 5mg", "Metformin 500mg", "Losartan 50mg", "Gliclazid 30mg",
                                   "Atorvastatin 10mg"};
    origin_ = centre_origin_;
    from_peer_ = centre_origin_;
    const int64_t at = now_ms_ - 400 * kDayMs;
    for (int i = 0; i < kItems; ++i) {
      std::string id = ids_.new_id();
      items_.push_back(id);
      std::string code = "IT" + std::to_string(100 + i);
      std::string name = i < kChronicItems ? kNames[i] : "Vật tư " + std::to_string(i);
      const char* kind = i < kChronicItems ? "medicine" : (i < 15 ? "medicine" : (i < 20 ? "test-kit" : (i < 25 ? "ppe" : "consumable")));
      add("", kind::kItem, id, at, upsert({{"code", code}, {"name", name}, {"unit", "viên"}, {"kind", kind}}));
    }
    flush();
  }

  struct Lot {
    std::string lot;
    int64_t on_hand;
  };

  void build_station(int64_t s, int64_t n_patients) {
    const std::string code = station_code(s);
    auto st = store_.add_station(code, "Trạm Y tế " + code, district_name(s), province_name(s));
    if (!st) fail("add_station", st.error().message());
    const std::string sid = st->id;
    // Silence: 1 in 20 stations silent 4-15 days, 1 in 100 never synced.
    const bool never = s % 100 == 7;
    const int64_t silent_days = never ? 0 : (s % 20 == 3 ? pick(4, 15) : 0);
    const int64_t now = now_ms_ - silent_days * kDayMs - (never ? 20 * kDayMs : 0);
    const std::string dev0 = ids_.new_id(), dev1 = ids_.new_id();
    origin_ = dev0;
    from_peer_ = dev0;
    for (const auto& dev : {dev0, dev1}) {
      add(sid, kind::kDevice, dev, now - 200 * kDayMs,
          upsert({{"name", dev == dev0 ? "máy trạm" : "máy tính bảng"},
                  {"role", dev == dev0 ? kRoleStation : kRoleMobile},
                  {"token_hash", ids_.new_id() + ids_.new_id()},
                  {"database_id", ids_.new_id()},
                  {"villages", "[]"},
                  {"created_at", local(now - 200 * kDayMs)}}));
    }
    // Stock: two lots per item, received 90 and 20 days ago.
    std::vector<std::vector<Lot>> lots(kItems);
    for (int i = 0; i < kItems; ++i) {
      for (int l = 0; l < 2; ++l) {
        const int64_t recv = now - (l == 0 ? 90 : 20) * kDayMs - pick(0, 3600) * 1000;
        const double r = uniform();
        // 10 % expired, 15 % expiring within 30 days, the rest 6-18 months out.
        const int64_t exp_days = r < 0.10 ? -pick(1, 60) : (r < 0.25 ? pick(1, 29) : pick(180, 540));
        const std::string expiry = local(now_ms_ + exp_days * kDayMs).substr(0, 10);
        // Chronic medicines: each station dispenses about 2.9 x its patients per item over the two months.
        const int64_t qty = i < kChronicItems ? std::max<int64_t>(100, n_patients * pick(100, 250) / 100) : pick(50, 2000);
        std::string lot = "L";
        lot += std::to_string(pick(1000, 9999));
        lot += l == 0 ? 'A' : 'B';
        lots[static_cast<size_t>(i)].push_back(Lot{lot, qty});
        std::string id = ids_.new_id();
        add(sid, kind::kStockMovement, id, recv,
            insert({{"id", id}, {"station_id", sid}, {"item_id", items_[static_cast<size_t>(i)]},
                    {"kind", "receipt"}, {"lot", lot}, {"expiry", expiry}, {"quantity", qty},
                    {"patient_id", nullptr}, {"days_supply", nullptr}, {"reason", ""},
                    {"counterpart", "Trung tâm Y tế"}, {"at", local(recv)}}));
      }
    }
    for (int i = 0; i < kReserveItems; ++i) {
      const std::string& item = items_[static_cast<size_t>(i)];
      add(sid, kind::kItemReserve, sid + "/" + item, now - 150 * kDayMs,
          upsert({{"item_id", item}, {"level", pick(100, 1500)}}));
    }
    // Patients.
    static const char* kFamily[] = {"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vàng", "Lò", "Giàng", "Lù", "Sùng"};
    static const char* kMiddle[] = {"Văn", "Thị", "A", "Seo", "Thị Thu", "Đức"};
    static const char* kGiven[] = {"An", "Bình", "Chi", "Dũng", "Hoa", "Lan", "Mai", "Páo", "Sử", "Tủa", "Xuân", "Hùng"};
    struct P {
      std::string id;
      int64_t created, last_day;  // visits happen between them
      bool chronic, covid, active;
    };
    std::vector<P> patients;
    patients.reserve(static_cast<size_t>(n_patients));
    for (int64_t k = 0; k < n_patients; ++k) {
      P p{ids_.new_id(), 0, now, false, false, true};
      const double age_r = uniform();
      // 3 % registered within the last 60 days (a few today), the rest 60-720 days ago.
      p.created = age_r < 0.03 ? now - pick(0, 60 * 24) * 3600'000 : now - pick(60, 720) * kDayMs;
      p.created -= pick(0, 3600) * 1000;
      p.created = std::min(p.created, now - 60'000);
      p.chronic = chance(0.25);
      const bool elderly = chance(0.20);
      p.covid = chance(0.03);
      const double st_r = uniform();
      std::string status = "active", changed;
      if (st_r < 0.04) {
        status = st_r < 0.025 ? "recovered" : (st_r < 0.033 ? "moved" : "deceased");
        p.active = false;
        p.last_day = std::max(p.created + 60'000, now - pick(0, 60) * kDayMs);
        changed = local(p.last_day);
      }
      json sets = json::array();
      if (elderly) sets.push_back("elderly");
      if (p.chronic) sets.push_back("chronic");
      if (p.covid) sets.push_back("covid-home");
      json fields{{"name", std::string(kFamily[pick(0, 9)]) + " " + kMiddle[pick(0, 5)] + " " + kGiven[pick(0, 11)]},
                  {"sex", chance(0.5) ? "male" : "female"},
                  {"birth", std::to_string(elderly ? pick(1930, 1960) : pick(1950, 2020)) + "-0" +
                                std::to_string(pick(1, 9)) + "-1" + std::to_string(pick(0, 9))},
                  {"village", "Bản " + std::to_string(pick(1, kVillagesPerStation))},
                  {"household_id", nullptr},
                  {"phone", chance(0.6) ? "09" + std::to_string(pick(10'000'000, 99'999'999)) : ""},
                  {"national_id", ""},
                  {"status", status},
                  {"status_changed_at", changed},
                  {"created_at", local(p.created)}};
      json payload = upsert(std::move(fields));
      if (!sets.empty()) {
        payload["sets"] = {{"categories", {{"add", sets}, {"remove", json::array()}}}};
        if (p.chronic) payload["sets"]["conditions"] = {{"add", {"tăng huyết áp"}}, {"remove", json::array()}};
      }
      add(sid, kind::kPatient, p.id, p.created, std::move(payload));
      patients.push_back(std::move(p));
    }
    // Visits: about 2 per patient over the last 60 days; covid-home patients most days of the last week or so.
    std::vector<std::string> visit_ids;
    for (const auto& p : patients) {
      const int64_t from = std::max(p.created, now - 60 * kDayMs);
      if (p.last_day <= from) continue;
      int n = static_cast<int>(std::poisson_distribution<int>(2.0)(rng_));
      if (p.covid && p.active) n = static_cast<int>(pick(3, 7));
      for (int v = 0; v < n; ++v) {
        int64_t at = p.covid && p.active ? std::max(from, now - pick(0, 9) * kDayMs - pick(0, 36'000) * 1000)
                                         : from + static_cast<int64_t>(uniform() * static_cast<double>(p.last_day - from));
        at = std::min(at, p.last_day);
        std::string id = ids_.new_id();
        json ev{{"id", id}, {"station_id", sid}, {"patient_id", p.id}, {"at", local(at)},
                {"temp_c", chance(0.5) ? json(36.5 + 0.1 * static_cast<double>(pick(0, 20))) : json(nullptr)},
                {"spo2", chance(0.3) ? json(pick(90, 99)) : json(nullptr)},
                {"bp_sys", p.chronic ? json(pick(120, 170)) : json(nullptr)},
                {"bp_dia", p.chronic ? json(pick(70, 100)) : json(nullptr)},
                {"pulse", nullptr},
                {"symptoms", p.covid ? json::array({"ho", "sốt"}) : json::array()},
                {"note", ""},
                {"refer", chance(0.02)}};
        add(sid, kind::kVisit, id, at, insert(std::move(ev)));
        visit_ids.push_back(id);
        // An occasional dispense at the visit, without days of supply.
        if (chance(0.10)) {
          dispense(sid, lots, static_cast<int>(pick(kChronicItems, kItems - 1)), p.id, -pick(1, 20), std::nullopt, at + 600'000);
        }
      }
    }
    // Chronic medicine: two monthly dispenses of 30 days each per active chronic patient.
    for (const auto& p : patients) {
      if (!p.chronic || !p.active) continue;
      const int item = static_cast<int>(pick(0, kChronicItems - 1));
      const int64_t last = now - pick(0, 33) * kDayMs - pick(0, 36'000) * 1000;
      for (int64_t at : {last - 30 * kDayMs, last}) {
        if (at <= p.created) continue;
        dispense(sid, lots, item, p.id, -30, 30, at);
      }
    }
    // Waste: 20 batches at every stage.
    std::vector<std::pair<std::string, std::string>> last_stage;  // (stage id, kind) of batches past bagged
    for (int b = 0; b < kWastePerStation; ++b) {
      const int64_t created = now - pick(0, 60) * kDayMs - pick(0, 36'000) * 1000;
      std::string id = ids_.new_id();
      const char* kinds[] = {"infectious", "sharps", "general"};
      add(sid, kind::kWasteBatch, id, created,
          upsert({{"kind", kinds[pick(0, 2)]}, {"bags", pick(1, 6)}, {"weight_kg", 0.5 * static_cast<double>(pick(1, 30))},
                  {"patient_id", nullptr}, {"household_id", nullptr}, {"note", ""}, {"created_at", local(created)}}));
      const int64_t age_days = (now - created) / kDayMs;
      // Older batches are further along: treated after about 3 weeks.
      int rank = static_cast<int>(std::min<int64_t>(4, age_days / 5 + pick(-1, 1)));
      int64_t at = created;
      std::string stage_id;
      for (int r = 1; r <= rank; ++r) {
        at = std::min(now, at + pick(1, 5) * kDayMs);
        stage_id = ids_.new_id();
        add(sid, kind::kWasteStage, stage_id, at,
            insert({{"id", stage_id}, {"station_id", sid}, {"batch_id", id}, {"stage", kWasteStages[static_cast<size_t>(r)]},
                    {"at", local(at)}, {"to_org", r == 3 ? "Công ty Môi trường" : ""}, {"note", ""}}));
      }
      if (rank >= 1 && chance(0.02 * 20 / 3.0)) last_stage.emplace_back(stage_id, local(std::min(now, at + 3600'000)));
    }
    // Voids: 1 % of visits, 0.5 % of dispenses, some latest waste stages.
    auto void_event = [&](const std::string& event_id, const char* event_kind, const std::string& at_text) {
      std::string id = ids_.new_id();
      add(sid, kind::kVoid, id, ms_from_local_time(at_text, kDefaultUtcOffsetMinutes),
          insert({{"id", id}, {"station_id", sid}, {"event_id", event_id}, {"event_kind", event_kind},
                  {"reason", "nhập nhầm"}, {"at", at_text}}));
    };
    const std::string void_at = local(now - 3600'000);
    for (const auto& v : visit_ids) {
      if (chance(0.01)) void_event(v, "visit", void_at);
    }
    for (const auto& d : dispense_ids_) {
      if (chance(0.005)) void_event(d, "stock_movement", void_at);
    }
    dispense_ids_.clear();
    for (size_t k = 0; k < last_stage.size() && k < 2; ++k) void_event(last_stage[k].first, "waste_stage", last_stage[k].second);
    flush();  // one push per station (split at --batch)
    // The devices' last syncs, as the server notes them.
    if (!never) {
      clock_.set(now - pick(0, 6 * 3600) * 1000);
      if (auto r = store_.note_device_seen(dev0, 1500, true); !r) fail("note_device_seen", r.error().message());
      clock_.set(now - pick(1, 3) * kDayMs);
      if (auto r = store_.note_device_seen(dev1, -800, true); !r) fail("note_device_seen", r.error().message());
      clock_.set(now_ms_);
    }
  }

  void dispense(const std::string& sid, std::vector<std::vector<Lot>>& lots, int item, const std::string& patient,
                int64_t qty, std::optional<int64_t> days_supply, int64_t at) {
    auto& ls = lots[static_cast<size_t>(item)];
    Lot& lot = ls[0].on_hand + qty >= 0 ? ls[0] : ls[1];  // first lot first, then the second (may go below zero)
    lot.on_hand += qty;
    std::string id = ids_.new_id();
    add(sid, kind::kStockMovement, id, at,
        insert({{"id", id}, {"station_id", sid}, {"item_id", items_[static_cast<size_t>(item)]}, {"kind", "dispense"},
                {"lot", lot.lot}, {"expiry", ""}, {"quantity", qty}, {"patient_id", patient},
                {"days_supply", days_supply ? json(*days_supply) : json(nullptr)}, {"reason", ""},
                {"counterpart", ""}, {"at", local(at)}}));
    dispense_ids_.push_back(id);
  }

  Store& store_;
  ManualClock& clock_;
  const Options& o_;
  const int64_t now_ms_;
  RandomIdSource ids_;
  std::mt19937_64 rng_;
  std::string centre_origin_, origin_, from_peer_;
  std::map<std::string, int64_t> origin_seq_;
  std::vector<std::string> items_, dispense_ids_;
  std::vector<Change> pending_;
  std::map<std::string, int64_t> per_kind_;
  int64_t seq_ = 0, changes_ = 0, batches_ = 0;
  double apply_s_ = 0;
};

// --- the cached file and what it records of its build ------------------------------

struct BuildInfo {
  bool reused = false;
  double seconds = 0, apply_seconds = 0;
  int64_t changes = 0, batches = 0;
  std::string built_at;
  json per_kind = json::object();
};

void exec_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::cerr << "cannot open " << path << "\n";
    std::exit(1);
  }
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::cerr << "sqlite: " << (err ? err : "?") << "\n";
    std::exit(1);
  }
  sqlite3_close(db);
}

// The build figures kept in the file itself (table bench_build), so a reused
// file still says how long it took to make.
std::optional<BuildInfo> read_build_info(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) return std::nullopt;
  sqlite3_stmt* st = nullptr;
  std::optional<BuildInfo> out;
  if (sqlite3_prepare_v2(db, "SELECT value FROM bench_build WHERE key = 'build'", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    json j = json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), nullptr, false);
    if (j.is_object()) {
      BuildInfo b;
      b.reused = true;
      b.seconds = j.value("seconds", 0.0);
      b.apply_seconds = j.value("apply_seconds", 0.0);
      b.changes = j.value("changes", int64_t{0});
      b.batches = j.value("batches", int64_t{0});
      b.built_at = j.value("built_at", "");
      b.per_kind = j.value("per_kind", json::object());
      out = b;
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// A short fingerprint of the schema this build makes (tables, indexes,
// triggers), so a cached file made before a migration changed is not reused.
std::string schema_fingerprint(const std::string& dir) {
  const std::string probe = (fs::path(dir) / ".schema-probe.db").string();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(probe + suffix);
  {
    auto s = Store::open(probe);
    if (!s) {
      std::cerr << s.error().message() << "\n";
      std::exit(1);
    }
  }
  std::string schema;
  sqlite3* db = nullptr;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_open_v2(probe.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "SELECT coalesce(sql, '') FROM sqlite_master ORDER BY type, name", -1, &st, nullptr) ==
          SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      schema += reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      schema += ";";
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(probe + suffix);
  uint64_t h = 1469598103934665603ULL;  // FNV-1a: stable across runs and compilers
  for (unsigned char c : schema) h = (h ^ c) * 1099511628211ULL;
  char buf[20];
  std::snprintf(buf, sizeof buf, "%08llx", static_cast<unsigned long long>(h & 0xffffffffULL));
  return buf;
}

int64_t file_bytes(const std::string& path) {
  int64_t n = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    auto s = fs::file_size(path + suffix, ec);
    if (!ec) n += static_cast<int64_t>(s);
  }
  return n;
}

BuildInfo build(const Options& o, const std::string& path, int64_t now_ms) {
  const std::string tmp = path + ".building";
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(tmp + suffix);
  std::fprintf(stderr, "building %s: %lld stations, %lld patients ...\n", path.c_str(),
               static_cast<long long>(o.stations), static_cast<long long>(o.patients));
  BuildInfo b;
  auto t0 = std::chrono::steady_clock::now();
  {
    ManualClock clock(now_ms);
    RandomIdSource ids(7);
    StoreOptions so;
    so.clock = &clock;
    so.ids = &ids;
    auto store = Store::open(tmp, so);
    if (!store) {
      std::cerr << store.error().message() << "\n";
      std::exit(1);
    }
    Generator g(**store, clock, o, now_ms);
    g.run();
    b.changes = g.changes();
    b.batches = g.batches();
    b.apply_seconds = g.apply_seconds();
    for (const auto& [k, n] : g.counts()) b.per_kind[k] = n;
  }
  b.seconds = seconds_since(t0);
  b.built_at = local_time_from_ms(now_ms, kDefaultUtcOffsetMinutes);
  json j{{"seconds", b.seconds}, {"apply_seconds", b.apply_seconds}, {"changes", b.changes}, {"batches", b.batches},
         {"built_at", b.built_at}, {"per_kind", b.per_kind}};
  std::string text = j.dump();
  std::string quoted;
  for (char c : text) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  exec_sql(tmp, "CREATE TABLE bench_build(key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO bench_build VALUES "
                "('build', '" + quoted + "'); PRAGMA wal_checkpoint(TRUNCATE);");
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(tmp + suffix);
  fs::rename(tmp, path);
  return b;
}

// --- timing ------------------------------------------------------------------------

struct Timing {
  std::string report, scope;
  std::vector<double> ms;
  double first_ms = 0;
  std::vector<std::pair<std::string, size_t>> rows;  // per table
  size_t stale = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  fs::create_directories(o.data);
  const std::string path = (fs::path(o.data) / ("central-s" + std::to_string(o.stations) + "-p" +
                                                 std::to_string(o.patients) + "-g" + std::to_string(kGeneratorVersion) +
                                                 "-" + schema_fingerprint(o.data) + ".db"))
                               .string();
  BuildInfo b;
  if (!o.rebuild && fs::exists(path)) {
    auto info = read_build_info(path);
    if (info) {
      b = *info;
      std::fprintf(stderr, "reusing %s (built %s)\n", path.c_str(), b.built_at.c_str());
    } else {
      b = build(o, path, now_ms);
    }
  } else {
    b = build(o, path, now_ms);
  }
  const int64_t bytes = file_bytes(path);

  StoreOptions so;  // the system clock: reports as of now
  so.cache_mib = o.cache_mib;
  auto opened = Store::open(path, so);
  if (!opened) {
    std::cerr << opened.error().message() << "\n";
    return 1;
  }
  Store& store = **opened;
  std::string station = o.station.empty() ? station_code(o.stations / 2) : o.station;
  std::string district = o.district;
  if (district.empty()) {
    auto info = store.station_by_code(station);
    if (!info) {
      std::cerr << "no station " << station << "\n";
      return 1;
    }
    district = info->district;
  }
  struct Scope {
    std::string name;
    CentralReportOptions opts;
  };
  std::vector<Scope> scopes;
  for (const auto& sc : o.scopes) {
    Scope s;
    if (sc == "all") {
      s.name = "all";
    } else if (sc == "station") {
      s.name = "station " + station;
      s.opts.station = station;
    } else if (sc == "district") {
      s.name = "district " + district;
      s.opts.district = district;
    } else {
      std::cerr << "unknown scope " << sc << " (all, station, district)\n";
      return 2;
    }
    scopes.push_back(std::move(s));
  }

  std::vector<Timing> timings;
  for (const auto& name : o.reports) {
    for (const auto& sc : scopes) {
      Timing t{name, sc.name, {}, 0, {}, 0};
      for (int run = 0; run <= o.runs; ++run) {
        auto t0 = std::chrono::steady_clock::now();
        auto r = store.central_report(name, sc.opts);
        const double ms = seconds_since(t0) * 1000;
        if (!r) {
          std::cerr << "report " << name << " (" << sc.name << "): " << r.error().message() << "\n";
          return 1;
        }
        if (run == 0) {
          t.first_ms = ms;  // warm-up, not in the median
          for (const auto& tab : r->tables) t.rows.emplace_back(tab.name, tab.rows.size());
          t.stale = r->stale_stations.size();
        } else {
          t.ms.push_back(ms);
        }
      }
      std::sort(t.ms.begin(), t.ms.end());
      std::fprintf(stderr, "  %-9s %-22s median %9.1f ms\n", name.c_str(), sc.name.c_str(), t.ms[t.ms.size() / 2]);
      timings.push_back(std::move(t));
    }
  }

  const std::string commit = bench::read_first_line("git rev-parse --short HEAD 2>/dev/null");
  const std::string dirty = bench::read_first_line("git status --porcelain --untracked-files=no -- core bench 2>/dev/null | head -1");
  const unsigned cores = std::thread::hardware_concurrency();
  const std::string cpu = bench::machine().value("cpu", std::string("unknown"));
  auto median = [](const std::vector<double>& v) {
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };

  std::printf("# TramSync central reports benchmark\n\n");
  std::printf("- data: %lld stations, %lld patients, file %s (%.1f MiB)\n", static_cast<long long>(o.stations),
              static_cast<long long>(o.patients), path.c_str(), static_cast<double>(bytes) / (1 << 20));
  std::printf("- build: %s %lld changes in %lld apply_changes batches, %.1f s (%.1f s in apply_changes), %.0f changes/s\n",
              b.reused ? "(reused file; figures of its build)" : "", static_cast<long long>(b.changes),
              static_cast<long long>(b.batches), b.seconds, b.apply_seconds,
              b.seconds > 0 ? static_cast<double>(b.changes) / b.seconds : 0.0);
  std::printf("- changes by kind: %s\n", b.per_kind.dump().c_str());
  std::printf("- machine: %u cores, %s\n", cores, cpu.c_str());
  std::printf("- commit: %s%s\n", commit.empty() ? "unknown" : commit.c_str(),
              dirty.empty() ? "" : " (with uncommitted changes in core/ or bench/)");
  std::printf("- runs: %d per report and scope, after one warm-up run (shown as first); SQLite page cache %d MiB\n\n",
              o.runs, o.cache_mib);
  std::printf("| report | scope | median ms | min ms | max ms | first ms | rows | stale stations |\n");
  std::printf("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |\n");
  json jt = json::array();
  for (const auto& t : timings) {
    std::string rows;
    json jrows = json::object();
    for (const auto& [tab, n] : t.rows) {
      rows += (rows.empty() ? "" : ", ") + tab + " " + std::to_string(n);
      jrows[tab] = n;
    }
    std::printf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %zu |\n", t.report.c_str(), t.scope.c_str(), median(t.ms),
                t.ms.front(), t.ms.back(), t.first_ms, rows.c_str(), t.stale);
    jt.push_back({{"report", t.report}, {"scope", t.scope}, {"median_ms", median(t.ms)}, {"min_ms", t.ms.front()},
                  {"max_ms", t.ms.back()}, {"first_ms", t.first_ms}, {"runs_ms", t.ms}, {"rows", jrows},
                  {"stale_stations", t.stale}});
  }
  if (!o.json_out.empty()) {
    // The common figure format (bench/common.h), one figure per report and scope.
    bench::Results res("reports", o.quick ? "quick" : "full");
    for (const auto& t : timings) {
      const std::string scope = t.scope.rfind("station", 0) == 0 ? "station" : t.scope.rfind("district", 0) == 0 ? "district" : "all";
      auto f = bench::Figure::of("reports." + t.report + "." + scope + "_ms", "Reports at the centre",
                                 "report " + t.report + " over " + (scope == "all" ? "all stations" : "one " + scope) +
                                     " (" + std::to_string(o.stations) + " stations, " + std::to_string(o.patients) +
                                     " patients)",
                                 "ms", false, t.ms);
      f.whole_job = scope == "all";  // one station's size stays the same as the province grows
      if (t.report == "followup" || t.report == "daily" || t.report == "stock" || t.report == "waste" ||
          t.report == "stations") {
        f.target = 1000;  // "well under a second"
      }
      res.add(f);
    }
    res.details() = {{"scale", static_cast<double>(o.patients) / 1e6}, {"stations", o.stations},
                     {"patients", o.patients}, {"file_bytes", bytes},
                     {"build", {{"reused", b.reused}, {"seconds", b.seconds}, {"apply_seconds", b.apply_seconds},
                                {"changes", b.changes}, {"batches", b.batches}, {"built_at", b.built_at},
                                {"per_kind", b.per_kind}}},
                     {"commit", commit}, {"runs", o.runs}, {"cache_mib", o.cache_mib}, {"timings", jt}};
    if (!res.write(o.json_out)) return 1;
  }
  return 0;
}
