// tramsync-bench-local: local writes on a station's file (issue 7, "Local
// writes"). Prints figures; asserts nothing.
//
// What is measured, per run (--runs, default 5; --quick 3), each run on fresh
// files under --data DIR (default a temp dir under /tmp, removed after):
//
// 1. Bulk import (local.import_patients / local.import_events, records/s).
//    A station file (Store::init_station, 30 catalogue items through
//    Store::add_item) gets scale x 100,000 patients through
//    Store::import_patients -- the CSV import's path -- in calls of --batch
//    rows (default 5,000), then scale x 1,000,000 events of a station's
//    history, oldest first over the last 730 days: 70 % visits
//    (Store::add_visit), 30 % dispenses (Store::dispense, first expiry first
//    out; 80 % of them a chronic patient's 30-day refill of one of 5 chronic
//    medicines, the rest 1-10 units of one of 25 other items), and every 30
//    days one receipt per item (Store::receive; about 750 in all) so the
//    dispenses always find stock. Events go through the public API, up to
//    --batch actions per Store::batch (one transaction, one commit). A record
//    is a row an action wrote with its change (a dispense split over two lots
//    is two records); the rate is records / wall seconds of the import calls
//    (input generation is outside the timer).
//    Patients: 25 % chronic (hypertension or diabetes), elderly when born
//    before 1962, 3 % covid-home, 60 % with a phone, 60 % with a national id.
//
//    The budget. An import may cost more per record as the file grows (every
//    dispense's stock check reads every stock movement of the station, so the
//    events' import is quadratic: hours at scale 1). Each import phase stops
//    when --import-budget-s (default 60 s; quick 20 s) is spent; the figure
//    is then the rate over the part done (the early, cheaper part: its note
//    says so), and details.per_run[].import_*.cost_model fits the cost per
//    record as a + b x records-so-far and projects the whole import:
//    local.import_*.whole_records_per_s is that projection where the budget
//    stopped a run (its note says PROJECTED) and the measured rate where not.
//    What was not imported is, in the first run that stops, delivered as a
//    pull from the centre would deliver the station's history
//    (Store::apply_changes, origin: the station's other device; its time is
//    in details, not a figure), so the per-action phase still runs on a file
//    holding all the data; later runs that stop run their per-action phase
//    on fresh copies of that run's whole files.
//
// 2. Per action (local.<action>.median_ms / .p99_ms), on that whole file: N
//    rounds (--actions, default 1,000; --quick 100; at most
//    --actions-budget-s of TramSync's time, default 60 s, quick 15 s, at
//    least 20 rounds) of every action as staff do them, each one public call
//    in its own transaction (WAL, synchronous=FULL, Store's defaults):
//    add_patient; update_patient (a phone edit of a random imported patient);
//    add_visit (a random patient, now); dispense (a random chronic patient's
//    30-day refill of a chronic medicine, now); add_waste_batch; move_waste
//    (that batch to "collected"); void_visit and void_dispense
//    (Store::void_event of the visit and of the dispense just made). Each
//    sample is the wall time of the one call, validation reads and commit
//    (fsync) included; the thread's CPU time of each call is kept too
//    (details.all_samples: the fsync wait hides CPU cost below ~4 ms here).
//    Per run the median and the 99th percentile of the samples; the details
//    keep the p99 of all runs' samples together. local.empty.*: the same on a
//    new file (100 patients, the items, one receipt each), in run 1 only.
//    details.fdatasync_4k_ms: the disk's own floor (4 KiB write + fdatasync).
//
// 3. The limit, measured in the same run on a plain SQLite file with the same
//    tables, columns and indexes as a fresh Store file (its schema copied
//    from sqlite_master), minus the change log (table `changes` and its
//    indexes) and minus the triggers that fill the derived tables of
//    migration 8 (the tables are there, empty): the same record rows -- a
//    patient's row, its patient_search (FTS5) row and its category and
//    condition rows; visit, stock movement, waste batch, waste stage and void
//    rows; the phone edit as one UPDATE -- inserted with plain sqlite3
//    prepared statements in WAL + synchronous=FULL with foreign keys on, one
//    transaction per action for the per-action figures (as many rounds as
//    TramSync did) and --batch rows per transaction for the bulk figures,
//    timed over the same part of the data as TramSync's import. It does not
//    validate, read stock, keep field versions (`_v` is left at its default)
//    or the clock. ratio = TramSync's time / plain time. In the details, the
//    bulk rates of the same plain import with migration 8's triggers kept
//    (run 1 only) show what the derived tables cost.
//
// Checks (exit 1, no figures): every action succeeds; after the import and
// at the end the change log holds exactly one row per record written
// (counted from the actions' returned ids and the changes applied); the
// files' row counts of patients, visits and stock movements match.
//
// Left out: households and staff, searches and reports while writing, other
// writers on the same file (a sync pulling), the page cache being cold
// (each phase runs right after the last), and the disk being shared with
// other programs. --scale multiplies the patients and events (the issue's
// sizes at 1.0); the receipts (every 30 days), the items and N do not scale.
#include <fcntl.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common.h"
#include "tramsync/core/clock.h"
#include "tramsync/core/hlc.h"
#include "tramsync/core/model.h"
#include "tramsync/core/store.h"
#include "tramsync/core/text.h"
#include "tramsync/core/time.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace tramsync;
namespace tb = tramsync::bench;

namespace {

constexpr int64_t kPatientsAtScale1 = 100'000;
constexpr int64_t kEventsAtScale1 = 1'000'000;
constexpr int kItems = 30;
constexpr int kChronicItems = 5;  // items 0-4
constexpr int kHistoryDays = 730;
constexpr int kPeriodDays = 30;  // one receipt per item per period
constexpr int64_t kDayMs = 86'400'000;
constexpr double kVisitShare = 0.70;
constexpr double kChronicDispenseShare = 0.80;  // of dispenses
constexpr int kEmptyFilePatients = 100;

// The temp dir this program made (removed on failure too); empty with --data or --keep.
std::string g_temp_dir;

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "tramsync-bench-local: FAILED: " << what << "\n";
  if (!g_temp_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(g_temp_dir, ec);
  }
  std::exit(1);
}

struct Options {
  bool quick = false;
  int runs = 5;
  double scale = 1.0;
  int64_t actions = 1000;
  int64_t batch = 5000;
  std::string json_out, data;
  bool keep = false;
  bool empty = true;
  double import_budget_s = 60;   // per import phase (patients, events) per run
  double actions_budget_s = 60;  // per per-action phase on TramSync's file
  bool runs_set = false, scale_set = false, actions_set = false, import_budget_set = false, actions_budget_set = false;
};

[[noreturn]] void usage(int code) {
  std::cout << "usage: tramsync-bench-local [--quick] [--runs N] [--scale F] [--actions N] [--batch N]\n"
               "         [--data DIR] [--keep] [--no-empty] [--json-out FILE]\n"
               "  --quick     scale 0.01 (1,000 patients, 10,000 events), 100 actions per kind, 3 runs\n"
               "  --scale F   patients = F x 100,000, events = F x 1,000,000 (default 1.0)\n"
               "  --actions N timed actions of each kind per run (default 1000)\n"
               "  --batch N   rows per import_patients call and actions per Store::batch (default 5000)\n"
               "  --data DIR  where the files go (default a temp dir under /tmp, removed after)\n"
               "  --keep      keep each run's files (default: removed after the run)\n"
               "  --no-empty  skip the per-action figures on an empty file (run 1 only otherwise)\n"
               "  --import-budget-s S   seconds each import phase (patients, events) may take per run through\n"
               "              the API; what is left arrives by Store::apply_changes (default 60, quick 20)\n"
               "  --actions-budget-s S  seconds the per-action rounds on TramSync's file may take (at least 20\n"
               "              rounds; plain SQLite does as many) (default 60, quick 15)\n"
               "  --json-out  write the figures as JSON (tramsync::bench::Results) to FILE\n";
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
    try {
      if (a == "--quick") {
        o.quick = true;
      } else if (a == "--runs") {
        o.runs = std::stoi(value());
        o.runs_set = true;
      } else if (a == "--scale") {
        o.scale = std::stod(value());
        o.scale_set = true;
      } else if (a == "--actions") {
        o.actions = std::stoll(value());
        o.actions_set = true;
      } else if (a == "--batch") {
        o.batch = std::stoll(value());
      } else if (a == "--data") {
        o.data = value();
      } else if (a == "--json-out") {
        o.json_out = value();
      } else if (a == "--keep") {
        o.keep = true;
      } else if (a == "--no-empty") {
        o.empty = false;
      } else if (a == "--import-budget-s") {
        o.import_budget_s = std::stod(value());
        o.import_budget_set = true;
      } else if (a == "--actions-budget-s") {
        o.actions_budget_s = std::stod(value());
        o.actions_budget_set = true;
      } else if (a == "--help" || a == "-h") {
        usage(0);
      } else {
        std::cerr << "unknown option " << a << "\n";
        usage(2);
      }
    } catch (const std::exception&) {
      std::cerr << "bad value for " << a << "\n";
      usage(2);
    }
  }
  if (o.quick) {
    if (!o.runs_set) o.runs = 3;
    if (!o.scale_set) o.scale = 0.01;
    if (!o.actions_set) o.actions = 100;
    if (!o.import_budget_set) o.import_budget_s = 20;
    if (!o.actions_budget_set) o.actions_budget_s = 15;
  }
  if (o.runs < 1 || o.scale <= 0 || o.actions < 1 || o.batch < 1 || o.import_budget_s <= 0 ||
      o.actions_budget_s <= 0) {
    std::cerr << "--runs, --actions and --batch must be at least 1, --scale above 0\n";
    usage(2);
  }
  return o;
}

// The disk's own limit: one 4 KiB write and fdatasync, `n` times, in `dir`
// (what every commit in synchronous=FULL waits for at least once), over the
// same block or appending (the file grows, as a WAL does until it is reused).
// Milliseconds.
std::vector<double> fsync_ms(const std::string& dir, int n, bool append) {
  const std::string path = (fs::path(dir) / "fsync-probe").string();
  std::vector<double> out;
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600);
  if (fd < 0) fail("cannot write " + path);
  std::string block(4096, 'x');
  for (int i = 0; i < n; ++i) {
    tb::Stopwatch sw;
    const off_t at = append ? static_cast<off_t>(i) * 4096 : 0;
    if (::pwrite(fd, block.data(), block.size(), at) != static_cast<ssize_t>(block.size()) || ::fdatasync(fd) != 0) {
      fail("fdatasync on " + path);
    }
    out.push_back(sw.ms());
  }
  ::close(fd);
  fs::remove(path);
  return out;
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

void remove_db(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path + suffix);
}

// --- plain SQLite ---------------------------------------------------------------

class Sql {
 public:
  explicit Sql(const std::string& path, int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) fail("cannot open " + path);
  }
  ~Sql() {
    for (auto& [k, s] : stmts_) sqlite3_finalize(s);
    sqlite3_close(db_);
  }
  Sql(const Sql&) = delete;
  Sql& operator=(const Sql&) = delete;
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      fail("sqlite: " + m + " in: " + sql.substr(0, 200));
    }
  }
  // A cached prepared statement, reset and unbound.
  sqlite3_stmt* stmt(const std::string& sql) {
    auto it = stmts_.find(sql);
    if (it == stmts_.end()) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
        fail(std::string("prepare: ") + sqlite3_errmsg(db_) + " in: " + sql);
      }
      it = stmts_.emplace(sql, s).first;
    }
    sqlite3_reset(it->second);
    sqlite3_clear_bindings(it->second);
    return it->second;
  }
  void step_done(sqlite3_stmt* s) {
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) fail(std::string("step: ") + sqlite3_errmsg(db_) + " in: " + sqlite3_sql(s));
  }
  int64_t one_int(const std::string& sql) {
    sqlite3_stmt* s = stmt(sql);
    if (sqlite3_step(s) != SQLITE_ROW) fail(std::string("query: ") + sqlite3_errmsg(db_) + " in: " + sql);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return v;
  }
  int64_t last_rowid() const { return sqlite3_last_insert_rowid(db_); }
  sqlite3* raw() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::map<std::string, sqlite3_stmt*> stmts_;
};

// Binds 1-based parameters: text, integers, doubles, optionals (NULL when empty).
inline void bind_one(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text64(s, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}
inline void bind_one(sqlite3_stmt* s, int i, const char* v) { bind_one(s, i, std::string(v)); }
inline void bind_one(sqlite3_stmt* s, int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
inline void bind_one(sqlite3_stmt* s, int i, int v) { sqlite3_bind_int64(s, i, v); }
inline void bind_one(sqlite3_stmt* s, int i, double v) { sqlite3_bind_double(s, i, v); }
template <typename T>
void bind_one(sqlite3_stmt* s, int i, const std::optional<T>& v) {
  if (v) {
    bind_one(s, i, *v);
  } else {
    sqlite3_bind_null(s, i);
  }
}
template <typename... A>
void bind_all(sqlite3_stmt* s, const A&... a) {
  int i = 0;
  (bind_one(s, ++i, a), ...);
}

// The statements of a fresh Store file's schema, minus the change log (table
// `changes` and its indexes), minus the FTS5 shadow tables (the virtual table
// makes them), and minus the triggers unless `with_triggers`.
std::vector<std::string> plain_schema(const std::string& dir, bool with_triggers, json& described) {
  const std::string probe = (fs::path(dir) / "schema-probe.tramsync").string();
  remove_db(probe);
  {
    auto s = Store::open(probe);
    if (!s) fail(s.error().message());
  }
  std::vector<std::string> out, skipped, virtuals;
  {
    Sql db(probe, SQLITE_OPEN_READONLY);
    sqlite3_stmt* q =
        db.stmt("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid");
    while (sqlite3_step(q) == SQLITE_ROW) {
      std::string type = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
      std::string name = reinterpret_cast<const char*>(sqlite3_column_text(q, 1));
      std::string table = reinterpret_cast<const char*>(sqlite3_column_text(q, 2));
      std::string sql = reinterpret_cast<const char*>(sqlite3_column_text(q, 3));
      bool shadow = std::any_of(virtuals.begin(), virtuals.end(),
                                [&](const std::string& v) { return name.rfind(v + "_", 0) == 0; });
      if (sql.rfind("CREATE VIRTUAL TABLE", 0) == 0) virtuals.push_back(name);
      if (table == "changes" || name == "sqlite_sequence" || shadow || (type == "trigger" && !with_triggers)) {
        skipped.push_back(type + " " + name);
        continue;
      }
      out.push_back(sql);
    }
  }
  remove_db(probe);
  described = json{{"statements", out.size()}, {"left_out", skipped}};
  return out;
}

// --- the data ---------------------------------------------------------------------

const char* const kFamily[] = {"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ",
                               "Võ",     "Đặng", "Bùi", "Đỗ",  "Hồ",    "Ngô",   "Dương", "Lý"};
const char* const kMiddle[] = {"Văn", "Thị", "Đức", "Minh", "Ngọc", "Thu", "Hữu", "Quang", "Thanh", "Xuân"};
const char* const kGiven[] = {"An",   "Bình", "Chi",  "Dũng", "Giang", "Hà",   "Hải",  "Hạnh", "Hoa",
                              "Hùng", "Lan",  "Linh", "Mai",  "Nam",   "Phúc", "Quân", "Sơn",  "Tâm",
                              "Thảo", "Trang", "Tuấn", "Vân", "Yến",   "Khoa", "Lộc",  "Nhung"};
const char* const kVillages[] = {"Bản Nậm Cuổi", "Bản Pa Khóa", "Thôn Đông",   "Thôn Tây",    "Bản Huổi Lếch",
                                 "Bản Lả Mạt",   "Thôn Trung",  "Bản Nà Ít",   "Bản Cang",    "Thôn Thượng",
                                 "Thôn Hạ",      "Bản Pá Pha",  "Bản Tả Phìn", "Bản Sà Dề",   "Thôn Mới",
                                 "Bản Nậm Ngà",  "Bản Phìn Hồ", "Bản Chu Va",  "Thôn Bắc Hà", "Bản Lồng Thàng"};
const char* const kSymptoms[] = {"sốt", "ho", "đau đầu", "khó thở", "mệt", "đau họng", "tiêu chảy"};
const char* const kChronicConditions[] = {"tăng huyết áp", "đái tháo đường"};

template <typename T, size_t N>
const T& pick_of(std::mt19937_64& rng, const T (&a)[N]) {
  return a[std::uniform_int_distribution<size_t>(0, N - 1)(rng)];
}
double uniform(std::mt19937_64& rng) { return std::uniform_real_distribution<double>(0, 1)(rng); }
int64_t pick(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}
std::string digits(int64_t v, int width) {
  std::string s = std::to_string(v);
  return std::string(width > static_cast<int>(s.size()) ? width - s.size() : 0, '0') + s;
}

struct GenPatient {
  PatientInput in;
  int chronic_item = -1;  // 0-4 for a chronic patient
};

// Patient number `i` (its phone and national id are unique by i).
GenPatient make_patient(std::mt19937_64& rng, int64_t i) {
  GenPatient g;
  PatientInput& p = g.in;
  p.name = std::string(pick_of(rng, kFamily)) + " " + pick_of(rng, kMiddle) + " " + pick_of(rng, kGiven);
  p.sex = uniform(rng) < 0.5 ? "female" : "male";
  const int64_t year = pick(rng, 1930, 2022);
  p.birth = uniform(rng) < 0.5 ? std::to_string(year)
                               : std::to_string(year) + "-" + digits(pick(rng, 1, 12), 2) + "-" + digits(pick(rng, 1, 28), 2);
  p.village = pick_of(rng, kVillages);
  if (uniform(rng) < 0.6) p.phone = "09" + digits(i % 100'000'000, 8);
  if (uniform(rng) < 0.6) p.national_id = "0011" + digits(i, 8);
  if (year < 1962) p.categories.push_back("elderly");
  if (uniform(rng) < 0.25) {
    p.categories.push_back("chronic");
    g.chronic_item = static_cast<int>(pick(rng, 0, kChronicItems - 1));
    p.conditions.push_back(kChronicConditions[g.chronic_item % 2]);
  }
  if (uniform(rng) < 0.03) p.categories.push_back("covid-home");
  return g;
}

std::string item_code(int i) { return "IT" + std::to_string(100 + i); }

// One event of the history. Receipts are generated by the stream at each
// period's start, one per item.
struct Event {
  enum Kind { kVisit, kDispense, kReceipt } kind = kVisit;
  int64_t patient = 0;  // index into the patients
  int item = 0;
  int64_t quantity = 0;
  std::optional<int> days;
  std::string at;           // station-local
  int64_t at_ms = 0;
  // receipt: the new lot; dispense: the period's lot (plain SQLite and the sync fill only;
  // Store::dispense chooses its lots itself)
  std::string lot, expiry;
  double temp = 37;
  int spo2 = 98, bp_sys = 120, bp_dia = 80, pulse = 80;
  std::vector<std::string> symptoms;
  bool refer = false;
};

// The history: `total` events, oldest first, spread over kHistoryDays before
// `now_ms`; deterministic for a seed, so TramSync and plain SQLite get the same.
class EventStream {
 public:
  EventStream(uint64_t seed, int64_t total, int64_t now_ms, const std::vector<int64_t>& chronic_patients,
              const std::vector<int>& chronic_item_of, int64_t patients)
      : rng_(seed),
        total_(total),
        start_ms_(now_ms - int64_t{kHistoryDays} * kDayMs),
        span_ms_(int64_t{kHistoryDays} * kDayMs - 3'600'000),
        chronic_(chronic_patients),
        chronic_item_of_(chronic_item_of),
        patients_(patients) {
    // Each period's receipt: about 1.5 times the period's expected dispensing.
    const double periods = static_cast<double>(kHistoryDays) / kPeriodDays;
    const double dispenses = static_cast<double>(total) * (1 - kVisitShare);
    chronic_qty_ = static_cast<int64_t>(dispenses * kChronicDispenseShare / kChronicItems / periods * 30 * 1.5) + 300;
    other_qty_ = static_cast<int64_t>(dispenses * (1 - kChronicDispenseShare) / (kItems - kChronicItems) / periods *
                                      5.5 * 2) +
                 200;
  }
  bool done() const { return emitted_ >= total_; }
  int64_t emitted() const { return emitted_; }

  Event next() {
    if (!pending_.empty()) {
      Event e = std::move(pending_.back());
      pending_.pop_back();
      ++emitted_;
      return e;
    }
    const int64_t at_ms =
        start_ms_ + static_cast<int64_t>((static_cast<double>(i_) + uniform(rng_)) / static_cast<double>(total_) *
                                         static_cast<double>(span_ms_));
    ++i_;
    const int64_t period = (at_ms - start_ms_) / (int64_t{kPeriodDays} * kDayMs);
    if (period > period_) {
      period_ = period;
      const int64_t recv_ms = start_ms_ + period * kPeriodDays * kDayMs;
      const std::string recv_at = local_time_from_ms(recv_ms, kDefaultUtcOffsetMinutes);
      const std::string expiry = local_time_from_ms(recv_ms + 540 * kDayMs, kDefaultUtcOffsetMinutes).substr(0, 10);
      for (int item = kItems - 1; item >= 0; --item) {
        Event r;
        r.kind = Event::kReceipt;
        r.item = item;
        r.quantity = item < kChronicItems ? chronic_qty_ : other_qty_;
        r.at = recv_at;
        r.at_ms = recv_ms;
        r.lot = "L" + digits(period, 2) + "-" + std::to_string(item);
        r.expiry = expiry;
        pending_.push_back(std::move(r));
      }
      lot_period_ = period;
      lot_expiry_ = expiry;
      // The event drawn now comes after this period's receipts.
      pending_.insert(pending_.begin(), draw(at_ms));
      return next();
    }
    ++emitted_;
    return draw(at_ms);
  }

 private:
  Event draw(int64_t at_ms) {
    Event e;
    e.at = local_time_from_ms(at_ms, kDefaultUtcOffsetMinutes);
    e.at_ms = at_ms;
    if (uniform(rng_) < kVisitShare) {
      e.kind = Event::kVisit;
      e.patient = pick(rng_, 0, patients_ - 1);
      e.temp = 36.0 + static_cast<double>(pick(rng_, 0, 35)) / 10.0;
      e.spo2 = static_cast<int>(pick(rng_, 90, 100));
      e.bp_sys = static_cast<int>(pick(rng_, 100, 165));
      e.bp_dia = static_cast<int>(pick(rng_, 60, std::min(100, e.bp_sys - 15)));
      e.pulse = static_cast<int>(pick(rng_, 58, 110));
      for (int64_t n = pick(rng_, 0, 2); n > 0; --n) e.symptoms.push_back(pick_of(rng_, kSymptoms));
      e.refer = uniform(rng_) < 0.02;
    } else {
      e.kind = Event::kDispense;
      if (!chronic_.empty() && uniform(rng_) < kChronicDispenseShare) {
        e.patient = chronic_[static_cast<size_t>(pick(rng_, 0, static_cast<int64_t>(chronic_.size()) - 1))];
        e.item = chronic_item_of_[static_cast<size_t>(e.patient)];
        e.quantity = 30;
        e.days = 30;
      } else {
        e.patient = pick(rng_, 0, patients_ - 1);
        e.item = static_cast<int>(pick(rng_, kChronicItems, kItems - 1));
        e.quantity = pick(rng_, 1, 10);
      }
      e.lot = "L" + digits(lot_period_, 2) + "-" + std::to_string(e.item);
      e.expiry = lot_expiry_;
    }
    return e;
  }

  std::mt19937_64 rng_;
  int64_t total_, start_ms_, span_ms_;
  const std::vector<int64_t>& chronic_;
  const std::vector<int>& chronic_item_of_;
  int64_t patients_;
  int64_t chronic_qty_ = 0, other_qty_ = 0;
  int64_t i_ = 0, emitted_ = 0, period_ = -1, lot_period_ = 0;
  std::string lot_expiry_;
  std::vector<Event> pending_;  // popped from the back
};

// --- the two writers: TramSync's Store and plain SQLite ------------------------------

// Row counts a writer wrote, to check the files against.
struct Counts {
  int64_t records = 0;  // change-log rows expected (TramSync) / rows inserted (plain)
  int64_t patients = 0, visits = 0, movements = 0;
};

class TramWriter {
 public:
  TramWriter(const std::string& path, const std::string& name) : path_(path) {
    auto s = Store::open(path);
    if (!s) fail(s.error().message());
    store_ = std::move(*s);
    auto id = store_->init_station("TYT-BENCH", name, "laptop-1", "Huyện Sìn Hồ", "Lai Châu");
    if (!id) fail(id.error().message());
    station_id_ = id->station_id;
    c.records += 1;
    for (int i = 0; i < kItems; ++i) {
      ItemInput in;
      in.code = item_code(i);
      in.name = i < kChronicItems ? "Thuốc mạn tính " + std::to_string(i) : "Vật tư " + std::to_string(i);
      in.unit = "viên";
      in.kind = i < kChronicItems ? "medicine" : (i < 20 ? "medicine" : "consumable");
      auto r = store_->add_item(in);
      if (!r) fail(r.error().message());
      items_.push_back(*r);
      c.records += 1;
    }
  }
  // What a writer knows of its file, to open a copy of it again.
  struct State {
    std::vector<std::string> ids;
    Counts c;
    std::string station_id;
    std::vector<std::string> items;
  };
  State state() const { return State{ids, c, station_id_, items_}; }
  // Opens a copy of a file another TramWriter wrote (`st`: its state then).
  TramWriter(const std::string& path, const State& st)
      : ids(st.ids), c(st.c), path_(path), station_id_(st.station_id), items_(st.items) {
    auto s = Store::open(path);
    if (!s) fail(s.error().message());
    store_ = std::move(*s);
  }
  Store& store() { return *store_; }
  const std::string& path() const { return path_; }
  void close() { store_.reset(); }

  // import_patients of rows [from, to) of `ps`; appends their ids.
  void import_patients(const std::vector<GenPatient>& ps, size_t from, size_t to) {
    std::vector<std::pair<int64_t, PatientInput>> rows;
    rows.reserve(to - from);
    for (size_t i = from; i < to; ++i) rows.emplace_back(static_cast<int64_t>(i - from + 2), ps[i].in);
    ImportResult r = store_->import_patients(rows, false);
    if (!r.rejected.empty()) fail("import_patients rejected line " + std::to_string(r.rejected[0].line) + ": " +
                                  r.rejected[0].message);
    if (r.imported != static_cast<int64_t>(rows.size())) fail("import_patients imported fewer rows than given");
    for (auto& id : r.ids) ids.push_back(std::move(id));
    c.records += r.imported;
    c.patients += r.imported;
  }

  // One event through the public API (inside a batch or alone); the ids it returned.
  Result<std::vector<std::string>> event(const Event& e) {
    if (e.kind == Event::kVisit) {
      VisitInput in;
      in.patient_id = ids[static_cast<size_t>(e.patient)];
      in.at = e.at;
      in.temp_c = e.temp;
      in.spo2 = e.spo2;
      in.bp_sys = e.bp_sys;
      in.bp_dia = e.bp_dia;
      in.pulse = e.pulse;
      in.symptoms = e.symptoms;
      in.refer = e.refer;
      auto r = store_->add_visit(in);
      if (!r) return r.error();
      c.visits += 1;
      c.records += 1;
      return std::vector<std::string>{*r};
    }
    if (e.kind == Event::kReceipt) {
      ReceiveInput in;
      in.item = item_code(e.item);
      in.quantity = e.quantity;
      in.lot = e.lot;
      in.expiry = e.expiry;
      in.source = "TTYT huyện";
      in.at = e.at;
      auto r = store_->receive(in);
      if (!r) return r.error();
      c.movements += 1;
      c.records += 1;
      return std::vector<std::string>{*r};
    }
    DispenseInput in;
    in.patient_id = ids[static_cast<size_t>(e.patient)];
    in.item = item_code(e.item);
    in.quantity = e.quantity;
    in.days_supply = e.days;
    in.at = e.at;
    auto r = store_->dispense(in);
    if (!r) return r.error();
    c.movements += static_cast<int64_t>(r->size());
    c.records += static_cast<int64_t>(r->size());
    return r;
  }

  // --- the sync fill -------------------------------------------------------------
  // Records an import could not do within its budget arrive instead as a pull
  // from the centre delivers a station's history (Store::apply_changes,
  // origin: the station's other device), so the per-action figures still run
  // on a file holding all the data. One apply_changes call per call here.
  void fill_patients(const std::vector<GenPatient>& ps, size_t from, size_t to, int64_t now_ms) {
    std::vector<Change> batch;
    const std::string created = local_time_from_ms(now_ms, kDefaultUtcOffsetMinutes);
    for (size_t i = from; i < to; ++i) {
      const PatientInput& p = ps[i].in;
      std::string id = fill_ids_.new_id();
      json fields = {{"name", p.name},       {"sex", p.sex},          {"birth", p.birth},
                     {"village", p.village}, {"phone", p.phone},      {"national_id", p.national_id},
                     {"status", "active"},   {"created_at", created}, {"household_id", nullptr}};
      json sets = {{"categories", {{"add", p.categories}, {"remove", json::array()}}},
                   {"conditions", {{"add", p.conditions}, {"remove", json::array()}}}};
      batch.push_back(change(kind::kPatient, id, now_ms, {{"op", "upsert"}, {"fields", fields}, {"sets", sets}}));
      ids.push_back(std::move(id));
    }
    apply(batch);
    c.patients += static_cast<int64_t>(batch.size());
  }
  void fill_events(const std::vector<Event>& evs) {
    std::vector<Change> batch;
    for (const auto& e : evs) {
      std::string id = fill_ids_.new_id();
      if (e.kind == Event::kVisit) {
        json ev = {{"id", id},         {"station_id", station_id_}, {"patient_id", ids[static_cast<size_t>(e.patient)]},
                   {"at", e.at},       {"temp_c", e.temp},          {"spo2", e.spo2},
                   {"bp_sys", e.bp_sys}, {"bp_dia", e.bp_dia},      {"pulse", e.pulse},
                   {"symptoms", e.symptoms}, {"note", ""},          {"refer", e.refer}};
        batch.push_back(change(kind::kVisit, id, e.at_ms, {{"op", "insert"}, {"event", ev}}));
        c.visits += 1;
      } else {
        const bool receipt = e.kind == Event::kReceipt;
        json ev = {{"id", id},
                   {"station_id", station_id_},
                   {"item_id", items_[static_cast<size_t>(e.item)]},
                   {"kind", receipt ? "receipt" : "dispense"},
                   {"lot", e.lot},
                   {"expiry", e.expiry},
                   {"quantity", receipt ? e.quantity : -e.quantity},
                   {"patient_id", receipt ? json(nullptr) : json(ids[static_cast<size_t>(e.patient)])},
                   {"days_supply", e.days ? json(*e.days) : json(nullptr)},
                   {"reason", ""},
                   {"counterpart", receipt ? "TTYT huyện" : ""},
                   {"at", e.at}};
        batch.push_back(change(kind::kStockMovement, id, e.at_ms, {{"op", "insert"}, {"event", ev}}));
        c.movements += 1;
      }
    }
    apply(batch);
  }

  std::vector<std::string> ids;  // the patients, in import order
  Counts c;

 private:
  Change change(const char* kind, const std::string& record_id, int64_t at_ms, const json& payload) {
    Change ch;
    ch.seq = ++fill_seq_;
    ch.origin = tablet_;
    ch.origin_seq = fill_seq_;
    ch.hlc = Hlc::pack(at_ms, static_cast<uint64_t>(fill_seq_) & Hlc::kLogicalMask);
    ch.station_id = station_id_;
    ch.kind = kind;
    ch.record_id = record_id;
    ch.payload = payload.dump();
    return ch;
  }
  void apply(const std::vector<Change>& batch) {
    if (batch.empty()) return;
    ApplyContext ctx;
    ctx.from_peer = centre_;
    ctx.write_scope = Scope::station(station_id_);
    ctx.may_write_catalogue = false;
    ctx.check_clock = false;
    auto r = store_->apply_changes(batch, ctx);
    if (!r) fail("apply_changes (sync fill): " + r.error().message());
    if (r->applied != static_cast<int64_t>(batch.size())) {
      for (const auto& res : r->results) {
        if (res.status != ApplyStatus::kApplied) fail("sync fill: a change was not applied: " + res.reason);
      }
      fail("sync fill: fewer changes applied than sent");
    }
    c.records += r->applied;
  }

  std::string path_;
  std::unique_ptr<Store> store_;
  std::string station_id_;
  std::vector<std::string> items_;
  RandomIdSource fill_ids_{777};
  const std::string tablet_ = RandomIdSource(778).new_id();
  const std::string centre_ = RandomIdSource(779).new_id();
  int64_t fill_seq_ = 0;
};

class PlainWriter {
 public:
  PlainWriter(const std::string& path, const std::vector<std::string>& schema) : db_(path), path_(path), ids_(12345) {
    db_.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
    db_.exec("BEGIN");
    for (const auto& s : schema) db_.exec(s);
    db_.exec("COMMIT");
    station_ = station_id_for_code("TYT-BENCH");
    db_.exec("BEGIN IMMEDIATE");
    auto* st = db_.stmt("INSERT INTO stations(id, code, name) VALUES (?1, 'TYT-BENCH', 'bench')");
    bind_all(st, station_);
    db_.step_done(st);
    for (int i = 0; i < kItems; ++i) {
      items_.push_back(ids_.new_id());
      auto* q = db_.stmt("INSERT INTO items(id, station_id, code, name, unit, kind) VALUES (?1, ?2, ?3, ?4, 'viên', 'medicine')");
      bind_all(q, items_.back(), station_, item_code(i), "Item " + std::to_string(i));
      db_.step_done(q);
    }
    db_.exec("COMMIT");
  }
  struct State {
    std::vector<std::string> patients;
    Counts c;
    std::vector<std::string> items;
  };
  State state() const { return State{patients, c, items_}; }
  // Opens a copy of a file another PlainWriter wrote; `seed` must differ from the writers' before.
  PlainWriter(const std::string& path, const State& st, uint64_t seed)
      : patients(st.patients), c(st.c), db_(path), path_(path), ids_(seed), items_(st.items) {
    db_.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
    station_ = station_id_for_code("TYT-BENCH");
  }
  const std::string& path() const { return path_; }
  Sql& db() { return db_; }
  void begin() { db_.exec("BEGIN IMMEDIATE"); }
  void commit() { db_.exec("COMMIT"); }

  // The rows TramSync writes for a new patient: the row, its search row, its set rows.
  std::string insert_patient(const PatientInput& p, const std::string& now) {
    std::string id = ids_.new_id();
    auto* s = db_.stmt(
        "INSERT INTO patients(id, station_id, household_id, name, sex, birth, village, phone, national_id, status, "
        "created_at, village_fold, name_fold) VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9, ?10, ?11)");
    const std::string nf = fold_for_search(p.name), vf = fold_for_search(p.village);
    bind_all(s, id, station_, p.name, p.sex, p.birth, p.village, p.phone, p.national_id, now, vf, nf);
    db_.step_done(s);
    auto* f = db_.stmt("INSERT INTO patient_search(rowid, name, village) VALUES (?1, ?2, ?3)");
    bind_all(f, db_.last_rowid(), nf, vf);
    db_.step_done(f);
    auto members = [&](const char* field, const std::vector<std::string>& values) {
      for (const auto& v : values) {
        auto* m = db_.stmt(
            "INSERT INTO patient_sets(patient_id, field, value, present, hlc, origin) VALUES (?1, ?2, ?3, 1, 0, '')");
        bind_all(m, id, field, v);
        db_.step_done(m);
      }
    };
    members("categories", p.categories);
    members("conditions", p.conditions);
    c.records += 1;
    c.patients += 1;
    return id;
  }
  void update_phone(const std::string& id, const std::string& phone) {
    auto* s = db_.stmt("UPDATE patients SET phone = ?1 WHERE id = ?2");
    bind_all(s, phone, id);
    db_.step_done(s);
    c.records += 1;
  }
  std::string insert_event(const Event& e) {
    std::string id = ids_.new_id();
    if (e.kind == Event::kVisit) {
      auto* s = db_.stmt(
          "INSERT INTO visits(id, station_id, patient_id, at, temp_c, spo2, bp_sys, bp_dia, pulse, symptoms, note, "
          "refer, origin, hlc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '', ?11, '', 0)");
      bind_all(s, id, station_, patients[static_cast<size_t>(e.patient)], e.at, e.temp, e.spo2, e.bp_sys, e.bp_dia,
               e.pulse, json(e.symptoms).dump(), e.refer ? 1 : 0);
      db_.step_done(s);
      c.visits += 1;
    } else {
      const bool receipt = e.kind == Event::kReceipt;
      auto* s = db_.stmt(
          "INSERT INTO stock_movements(id, station_id, item_id, kind, lot, expiry, quantity, patient_id, days_supply, "
          "reason, counterpart, at, origin, hlc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, '', ?10, ?11, '', 0)");
      bind_all(s, id, station_, items_[static_cast<size_t>(e.item)], receipt ? "receipt" : "dispense", e.lot,
               receipt ? e.expiry : std::string(), receipt ? e.quantity : -e.quantity,
               receipt ? std::optional<std::string>() : std::optional(patients[static_cast<size_t>(e.patient)]),
               e.days, receipt ? std::string("TTYT huyện") : std::string(), e.at);
      db_.step_done(s);
      c.movements += 1;
    }
    c.records += 1;
    return id;
  }
  std::string insert_waste_batch(const std::string& patient, const std::string& at, int bags, double kg) {
    std::string id = ids_.new_id();
    auto* s = db_.stmt(
        "INSERT INTO waste_batches(id, station_id, kind, bags, weight_kg, patient_id, household_id, note, created_at) "
        "VALUES (?1, ?2, 'infectious', ?3, ?4, ?5, NULL, '', ?6)");
    bind_all(s, id, station_, bags, kg, patient, at);
    db_.step_done(s);
    c.records += 1;
    return id;
  }
  void insert_waste_stage(const std::string& batch, const std::string& at) {
    auto* s = db_.stmt(
        "INSERT INTO waste_stages(id, station_id, batch_id, stage, rank, at, to_org, note, origin, hlc) "
        "VALUES (?1, ?2, ?3, 'collected', 1, ?4, '', '', '', 0)");
    bind_all(s, ids_.new_id(), station_, batch, at);
    db_.step_done(s);
    c.records += 1;
  }
  void insert_void(const std::string& event, const char* event_kind, const std::string& at) {
    auto* s = db_.stmt(
        "INSERT INTO voids(id, station_id, event_id, event_kind, reason, at, origin, hlc) "
        "VALUES (?1, ?2, ?3, ?4, 'nhập nhầm', ?5, '', 0)");
    bind_all(s, ids_.new_id(), station_, event, event_kind, at);
    db_.step_done(s);
    c.records += 1;
  }

  std::vector<std::string> patients;
  Counts c;

 private:
  Sql db_;
  std::string path_;
  RandomIdSource ids_;
  std::string station_;
  std::vector<std::string> items_;
};

// --- per action -----------------------------------------------------------------------

const std::vector<std::string> kActions = {"add_patient",     "update_patient", "add_visit",  "dispense",
                                           "add_waste_batch", "move_waste",     "void_visit", "void_dispense"};

// Per action: the wall milliseconds of each call (what staff wait) and the
// milliseconds of CPU this thread spent in it (what the fsync wait hides).
struct Samples {
  std::map<std::string, std::vector<double>> wall, cpu;
  std::vector<double>& operator[](const std::string& action) { return wall[action]; }
  const std::vector<double>& at(const std::string& action) const { return wall.at(action); }
};

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

class Timer {
 public:
  Timer() { start(); }
  void start() {
    cpu0_ = thread_cpu_ms();
    sw_.restart();
  }
  void stop(Samples& out, const std::string& action) {
    const double wall = sw_.ms();
    out.wall[action].push_back(wall);
    out.cpu[action].push_back(thread_cpu_ms() - cpu0_);
  }

 private:
  tb::Stopwatch sw_;
  double cpu0_ = 0;
};

// What the actions need: patients to edit and to visit, chronic patients to dispense to.
struct Targets {
  int64_t patients = 0;                  // indices 0..patients-1 of the writer's ids
  std::vector<int64_t> chronic;          // indices of chronic patients
  std::vector<int> chronic_item_of;      // by index
};

std::string now_local() {
  return local_time_from_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count(),
                            kDefaultUtcOffsetMinutes);
}

// N rounds of every action on TramSync's file, one public call each.
// Stops after `budget_s` (at least 20 rounds); the rounds done are the samples' count.
Samples tram_actions(TramWriter& w, const Targets& t, int64_t n, uint64_t seed, int64_t first_patient_number,
                     double budget_s) {
  std::mt19937_64 rng(seed);
  Samples out;
  Store& s = w.store();
  tb::Stopwatch budget;
  auto must = [](const auto& r, const std::string& what) {
    if (!r) fail(what + ": " + r.error().message());
  };
  for (int64_t i = 0; i < n && (i < 20 || budget.seconds() < budget_s); ++i) {
    GenPatient gp = make_patient(rng, first_patient_number + i);
    const std::string target = w.ids[static_cast<size_t>(pick(rng, 0, t.patients - 1))];
    const std::string visited = w.ids[static_cast<size_t>(pick(rng, 0, t.patients - 1))];
    const int64_t ci = t.chronic[static_cast<size_t>(pick(rng, 0, static_cast<int64_t>(t.chronic.size()) - 1))];
    Timer sw;
    {
      auto r = s.add_patient(gp.in);
      sw.stop(out, "add_patient");
      must(r, "add_patient");
      w.ids.push_back(*r);
      w.c.records += 1;
      w.c.patients += 1;
    }
    {
      PatientUpdate up;
      up.phone = "08" + digits((first_patient_number + i) % 100'000'000, 8);
      sw.start();
      auto r = s.update_patient(target, up);
      sw.stop(out, "update_patient");
      must(r, "update_patient");
      w.c.records += 1;
    }
    std::string visit_id, dispense_id, batch_id;
    int64_t dispense_parts = 1;
    {
      VisitInput in;
      in.patient_id = visited;
      in.temp_c = 37.5;
      in.spo2 = 97;
      in.bp_sys = 130;
      in.bp_dia = 85;
      in.pulse = 80;
      in.symptoms = {"ho"};
      sw.start();
      auto r = s.add_visit(in);
      sw.stop(out, "add_visit");
      must(r, "add_visit");
      visit_id = *r;
      w.c.records += 1;
      w.c.visits += 1;
    }
    {
      DispenseInput in;
      in.patient_id = w.ids[static_cast<size_t>(ci)];
      in.item = item_code(t.chronic_item_of[static_cast<size_t>(ci)]);
      in.quantity = 30;
      in.days_supply = 30;
      sw.start();
      auto r = s.dispense(in);
      sw.stop(out, "dispense");
      must(r, "dispense");
      dispense_id = r->front();
      dispense_parts = static_cast<int64_t>(r->size());
      w.c.records += static_cast<int64_t>(r->size());
      w.c.movements += static_cast<int64_t>(r->size());
    }
    {
      WasteBatchInput in;
      in.kind = "infectious";
      in.bags = 1 + static_cast<int>(i % 3);
      in.weight_kg = 0.5 + static_cast<double>(i % 7) / 2;
      in.patient_id = visited;
      sw.start();
      auto r = s.add_waste_batch(in);
      sw.stop(out, "add_waste_batch");
      must(r, "add_waste_batch");
      batch_id = *r;
      w.c.records += 1;
    }
    {
      WasteMoveInput in;
      in.batch_id = batch_id;
      in.stage = "collected";
      sw.start();
      auto r = s.move_waste(in);
      sw.stop(out, "move_waste");
      must(r, "move_waste");
      w.c.records += 1;
    }
    {
      sw.start();
      auto r = s.void_event(visit_id, "nhập nhầm");
      sw.stop(out, "void_visit");
      must(r, "void_event (visit)");
      w.c.records += 1;
    }
    {
      sw.start();
      auto r = s.void_event(dispense_id, "nhập nhầm");
      sw.stop(out, "void_dispense");
      must(r, "void_event (dispense)");
      w.c.records += dispense_parts;  // one void per lot the dispense took from
    }
  }
  return out;
}

// The same rounds on the plain file: each action's rows in one transaction.
Samples plain_actions(PlainWriter& w, const Targets& t, int64_t n, uint64_t seed, int64_t first_patient_number) {
  std::mt19937_64 rng(seed);
  Samples out;
  auto timed = [&](const std::string& action, const std::function<void()>& f) {
    Timer sw;
    w.begin();
    f();
    w.commit();
    sw.stop(out, action);
  };
  for (int64_t i = 0; i < n; ++i) {
    GenPatient gp = make_patient(rng, first_patient_number + i);
    const std::string target = w.patients[static_cast<size_t>(pick(rng, 0, t.patients - 1))];
    const int64_t visited_i = pick(rng, 0, t.patients - 1);
    const std::string visited = w.patients[static_cast<size_t>(visited_i)];
    const int64_t ci = t.chronic[static_cast<size_t>(pick(rng, 0, static_cast<int64_t>(t.chronic.size()) - 1))];
    const std::string now = now_local();
    timed("add_patient", [&] { w.patients.push_back(w.insert_patient(gp.in, now)); });
    timed("update_patient", [&] { w.update_phone(target, "08" + digits((first_patient_number + i) % 100'000'000, 8)); });
    Event v;
    v.kind = Event::kVisit;
    v.patient = visited_i;
    v.at = now;
    v.symptoms = {"ho"};
    std::string visit_id, dispense_id, batch_id;
    timed("add_visit", [&] { visit_id = w.insert_event(v); });
    Event d;
    d.kind = Event::kDispense;
    d.patient = ci;
    d.item = t.chronic_item_of[static_cast<size_t>(ci)];
    d.quantity = 30;
    d.days = 30;
    d.at = now;
    d.lot = "L00-" + std::to_string(d.item);
    timed("dispense", [&] { dispense_id = w.insert_event(d); });
    timed("add_waste_batch", [&] {
      batch_id = w.insert_waste_batch(visited, now, 1 + static_cast<int>(i % 3), 0.5 + static_cast<double>(i % 7) / 2);
    });
    timed("move_waste", [&] { w.insert_waste_stage(batch_id, now); });
    timed("void_visit", [&] { w.insert_void(visit_id, "visit", now); });
    timed("void_dispense", [&] { w.insert_void(dispense_id, "stock_movement", now); });
  }
  return out;
}

// The limit of a figure already added.
double res_limit(const tb::Results& res, const std::string& id) {
  const json all = res.to_json();
  for (const auto& f : all["figures"]) {
    if (f["id"] == id && f.contains("limit")) return f["limit"].get<double>();
  }
  return 0;
}

// --- one run -----------------------------------------------------------------------------

// One import phase through the API: its calls, and what the budget left to the sync fill.
struct Phase {
  struct Call {
    double before, records, seconds;  // records of the phase already in the file; this call's
  };
  std::vector<Call> calls;
  int64_t api_records = 0;  // written through the API within the budget
  int64_t api_inputs = 0;   // patients / stream events those records came from
  double api_s = 0;
  int64_t filled = 0;  // left to apply_changes
  double fill_s = 0;
  bool partial = false;

  void add(double before, double records, double seconds) {
    if (records > 0) calls.push_back({before, records, seconds});
  }
  double rate() const { return api_s > 0 ? static_cast<double>(api_records) / api_s : 0; }
  // Seconds per record as a + b x (records of the phase already written),
  // fitted over the calls (least squares, weighted by records), and the
  // seconds the whole phase of `total` records would take at that cost.
  json projection(int64_t total) const {
    double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (const auto& c : calls) {
      const double w = c.records, x = c.before + c.records / 2, y = c.seconds / c.records;
      sw += w;
      sx += w * x;
      sy += w * y;
      sxx += w * x * x;
      sxy += w * x * y;
    }
    if (sw == 0) return nullptr;
    const double den = sw * sxx - sx * sx;
    double b = den > 0 ? (sw * sxy - sx * sy) / den : 0;
    double a = (sy - b * sx) / sw;
    if (b < 0 || calls.size() < 3) {  // no growth to see: a constant cost
      b = 0;
      a = sy / sw;
    } else if (a < 0) {  // growth from nothing: y = b x
      double sxx0 = 0, sxy0 = 0;
      for (const auto& c : calls) {
        const double x = c.before + c.records / 2, y = c.seconds / c.records;
        sxx0 += c.records * x * x;
        sxy0 += c.records * x * y;
      }
      a = 0;
      b = sxx0 > 0 ? sxy0 / sxx0 : 0;
    }
    const double n = static_cast<double>(total);
    const double t = a * n + b * n * n / 2;
    return json{{"us_per_record_at_start", a * 1e6},
                {"us_per_record_more_per_1000_records", b * 1e9},
                {"projected_seconds_for_all", t},
                {"projected_records_per_s_for_all", t > 0 ? n / t : 0}};
  }
  json to_json(int64_t total) const {
    return json{{"api_records", api_records},   {"api_seconds", api_s}, {"api_records_per_s", rate()},
                {"stopped_by_budget", partial}, {"filled_by_apply_changes", filled},
                {"fill_seconds", fill_s},       {"calls", calls.size()},
                {"cost_model", projection(total)}};
  }
};

struct RunResult {
  Samples tram, plain, tram_empty, plain_empty;
  Phase patients, events;
  double plain_patients_s = 0, plain_events_s = 0;
  int64_t event_total_records = 0, plain_event_rows = 0, plain_patient_rows = 0;
  bool on_copy = false;  // the per-action phase ran on a copy of run 1's files
  bool partial_file = false;  // the import left this run's file partial (the budget, no fill)
  int64_t tram_bytes = 0, plain_bytes = 0, tram_records_at_import = 0, plain_rows_at_import = 0;
  int64_t changes_after_import = 0, changes_at_end = 0;
  std::optional<double> trig_patients_per_s, trig_events_per_s;
  std::map<std::string, int64_t> event_kinds;
};

int64_t checkpointed_bytes(const std::string& path) {
  {
    Sql db(path);
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  return file_bytes(path);
}

// Row counts of a file against what its writer says it wrote.
void check_rows(const std::string& path, const Counts& c, bool tram, const std::string& when) {
  Sql db(path, SQLITE_OPEN_READONLY);
  const int64_t patients = db.one_int("SELECT count(*) FROM patients");
  const int64_t visits = db.one_int("SELECT count(*) FROM visits");
  const int64_t moves = db.one_int("SELECT count(*) FROM stock_movements");
  auto expect = [&](const char* what, int64_t got, int64_t want) {
    if (got != want) {
      fail(std::string(tram ? "TramSync" : "plain") + " file " + when + ": " + what + " " + std::to_string(got) +
           ", expected " + std::to_string(want));
    }
  };
  expect("patients", patients, c.patients);
  expect("visits", visits, c.visits);
  expect("stock movements", moves, c.movements);
  if (tram) expect("change-log rows", db.one_int("SELECT count(*) FROM changes"), c.records);
}

// The plain import of the same data, in transactions of --batch rows: all the
// patients (timed over the first `patient_limit`, rounded up to a whole
// transaction), then the events of the same stream (up to `event_limit` of
// them, likewise).
struct PlainImport {
  int64_t patient_rows = 0, event_rows = 0, events = 0;
  double patients_s = 0, events_s = 0;
};
PlainImport plain_import(PlainWriter& w, const std::vector<GenPatient>& ps, int64_t events, uint64_t seed,
                         int64_t now_ms, const Targets& t, int64_t batch, int64_t patient_limit,
                         int64_t event_limit) {
  PlainImport out;
  const std::string now = local_time_from_ms(now_ms, kDefaultUtcOffsetMinutes);
  tb::Stopwatch sw;
  for (size_t from = 0; from < ps.size(); from += static_cast<size_t>(batch)) {
    const size_t to = std::min(ps.size(), from + static_cast<size_t>(batch));
    w.begin();
    for (size_t i = from; i < to; ++i) w.patients.push_back(w.insert_patient(ps[i].in, now));
    w.commit();
    if (static_cast<int64_t>(from) < patient_limit) {
      out.patient_rows = static_cast<int64_t>(to);
      out.patients_s = sw.seconds();
    }
  }
  EventStream stream(seed, events, now_ms, t.chronic, t.chronic_item_of, static_cast<int64_t>(ps.size()));
  while (!stream.done() && out.events < event_limit) {
    std::vector<Event> chunk;
    while (!stream.done() && static_cast<int64_t>(chunk.size()) < batch) chunk.push_back(stream.next());
    sw.restart();
    w.begin();
    for (const auto& e : chunk) w.insert_event(e);
    w.commit();
    out.events_s += sw.seconds();
    out.events += static_cast<int64_t>(chunk.size());
    out.event_rows += static_cast<int64_t>(chunk.size());
  }
  return out;
}

// Run 1's files after a whole import (completed by the sync fill where the
// budget stopped it). A later run whose import the budget stops measures its
// per-action figures on fresh copies of these instead of filling again.
struct Templates {
  bool ready = false;
  std::string tram_path, plain_path;
  TramWriter::State tram;
  PlainWriter::State plain;
};

RunResult run_once(const Options& o, int run, const std::string& dir, const std::vector<GenPatient>& ps,
                   const Targets& targets, int64_t events, const std::vector<std::string>& schema,
                   const std::vector<std::string>& schema_triggers, Templates& tpl) {
  RunResult rr;
  const uint64_t seed = 1000 + static_cast<uint64_t>(run);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count() -
                         60'000;  // the history ends a minute ago
  const std::string tram_path = (fs::path(dir) / ("run" + std::to_string(run) + ".tramsync")).string();
  const std::string plain_path = (fs::path(dir) / ("run" + std::to_string(run) + "-plain.db")).string();
  remove_db(tram_path);
  remove_db(plain_path);
  // A patient number for the per-action phase's new patients, past the imported ones.
  const int64_t fresh_numbers = 10'000'000 + static_cast<int64_t>(run) * 1'000'000;

  // --- per action on an empty file ---
  if (o.empty && run == 0) {
    const std::string te = (fs::path(dir) / ("run" + std::to_string(run) + "-empty.tramsync")).string();
    const std::string pe = (fs::path(dir) / ("run" + std::to_string(run) + "-empty-plain.db")).string();
    remove_db(te);
    remove_db(pe);
    std::vector<GenPatient> few(ps.begin(), ps.begin() + std::min<int64_t>(kEmptyFilePatients, static_cast<int64_t>(ps.size())));
    Targets et;
    et.patients = static_cast<int64_t>(few.size());
    for (size_t i = 0; i < few.size(); ++i) {
      et.chronic_item_of.push_back(few[i].chronic_item < 0 ? 0 : few[i].chronic_item);
      et.chronic.push_back(static_cast<int64_t>(i));  // every one may get a refill here
    }
    {
      TramWriter tw(te, "Trạm Y tế (bench, empty)");
      tw.import_patients(few, 0, few.size());
      for (int item = 0; item < kChronicItems; ++item) {
        ReceiveInput in;
        in.item = item_code(item);
        in.quantity = o.actions * 30 + 1000;
        in.lot = "L00-" + std::to_string(item);
        in.expiry = local_time_from_ms(now_ms + 400 * kDayMs, kDefaultUtcOffsetMinutes).substr(0, 10);
        in.at = local_time_from_ms(now_ms - kDayMs, kDefaultUtcOffsetMinutes);
        auto r = tw.store().receive(in);
        if (!r) fail("receive: " + r.error().message());
        tw.c.records += 1;
        tw.c.movements += 1;
      }
      rr.tram_empty = tram_actions(tw, et, o.actions, seed * 7, fresh_numbers, o.actions_budget_s);
      tw.close();
      check_rows(te, tw.c, true, "after the per-action phase on an empty file");
    }
    {
      PlainWriter pw(pe, schema);
      pw.begin();
      for (const auto& p : few) pw.patients.push_back(pw.insert_patient(p.in, now_local()));
      pw.commit();
      rr.plain_empty = plain_actions(pw, et, static_cast<int64_t>(rr.tram_empty["add_patient"].size()), seed * 7,
                                     fresh_numbers);
    }
    if (!o.keep) {
      remove_db(te);
      remove_db(pe);
    }
    std::fprintf(stderr, "  run %d: empty file: add_visit median %.2f ms (plain %.2f)\n", run + 1,
                 tb::median(rr.tram_empty["add_visit"]), tb::median(rr.plain_empty["add_visit"]));
  }

  // --- bulk import through TramSync ---
  auto tw = std::make_unique<TramWriter>(tram_path, "Trạm Y tế xã (bench)");
  {
    tb::Stopwatch sw;
    size_t from = 0;
    double per_row_s = 0;
    while (from < ps.size()) {
      // Calls of --batch rows; smaller near the end of the budget, so it is not overrun by much.
      size_t n = static_cast<size_t>(o.batch);
      if (per_row_s > 0) {
        const double left = o.import_budget_s - sw.seconds();
        n = std::clamp<size_t>(static_cast<size_t>(std::max(0.0, left) / per_row_s), 100, n);
      }
      const size_t to = std::min(ps.size(), from + n);
      tb::Stopwatch call;
      tw->import_patients(ps, from, to);
      const double s = call.seconds();
      rr.patients.add(static_cast<double>(from), static_cast<double>(to - from), s);
      per_row_s = s / static_cast<double>(to - from);
      from = to;
      if (from < ps.size() && sw.seconds() >= o.import_budget_s) break;
    }
    rr.patients.api_records = static_cast<int64_t>(from);
    rr.patients.api_inputs = static_cast<int64_t>(from);
    rr.patients.api_s = sw.seconds();
    std::fprintf(stderr, "  run %d: import_patients: %lld of %lld patients in %.1f s (%.0f records/s)\n", run + 1,
                 static_cast<long long>(from), static_cast<long long>(ps.size()), rr.patients.api_s,
                 static_cast<double>(from) / rr.patients.api_s);
    if (from < ps.size()) {
      rr.patients.partial = true;
      tb::Stopwatch fill;
      for (size_t f = from; f < ps.size(); f += static_cast<size_t>(o.batch)) {
        tw->fill_patients(ps, f, std::min(ps.size(), f + static_cast<size_t>(o.batch)), now_ms);
      }
      rr.patients.filled = static_cast<int64_t>(ps.size() - from);
      rr.patients.fill_s = fill.seconds();
      std::fprintf(stderr, "  run %d: budget spent: the other %lld patients arrived by apply_changes in %.1f s\n",
                   run + 1, static_cast<long long>(rr.patients.filled), rr.patients.fill_s);
    }
  }
  {
    EventStream stream(seed, events, now_ms, targets.chronic, targets.chronic_item_of,
                       static_cast<int64_t>(ps.size()));
    const int64_t records_before = tw->c.records;
    tb::Stopwatch budget, progress;
    std::vector<Event> rest;  // what the budget left to the sync fill
    while (!stream.done()) {
      std::vector<Event> chunk;
      while (!stream.done() && static_cast<int64_t>(chunk.size()) < o.batch) chunk.push_back(stream.next());
      for (const auto& e : chunk) {
        ++rr.event_kinds[e.kind == Event::kVisit ? "visit" : (e.kind == Event::kDispense ? "dispense" : "receipt")];
      }
      if (budget.seconds() >= o.import_budget_s) {
        rest.insert(rest.end(), chunk.begin(), chunk.end());
        continue;
      }
      const int64_t before = tw->c.records;
      size_t done = 0;
      tb::Stopwatch sw;
      // One Store::batch per chunk; it ends early (committing what it did) when the budget is spent.
      Status st = tw->store().batch([&]() -> Status {
        for (const auto& e : chunk) {
          if (budget.seconds() >= o.import_budget_s) break;
          auto r = tw->event(e);
          if (!r) return r.error();
          ++done;
        }
        return {};
      });
      const double s = sw.seconds();
      if (!st) fail("import of events (Store::batch): " + st.error().message());
      rr.events.add(static_cast<double>(before - records_before), static_cast<double>(tw->c.records - before), s);
      rr.events.api_s += s;
      rest.insert(rest.end(), chunk.begin() + static_cast<std::ptrdiff_t>(done), chunk.end());
      if (progress.seconds() > 10 || stream.done()) {
        std::fprintf(stderr, "  run %d: events %lld/%lld, last batch %.0f records/s, so far %.0f records/s\n", run + 1,
                     static_cast<long long>(stream.emitted() - static_cast<int64_t>(rest.size())),
                     static_cast<long long>(events), static_cast<double>(tw->c.records - before) / s,
                     static_cast<double>(tw->c.records - records_before) / rr.events.api_s);
        progress.restart();
      }
    }
    rr.events.api_records = tw->c.records - records_before;
    rr.events.api_inputs = stream.emitted() - static_cast<int64_t>(rest.size());
    if (!rest.empty()) {
      rr.events.partial = true;
      std::fprintf(stderr, "  run %d: budget spent after %lld event records in %.1f s (%.0f records/s), %zu events "
                           "left\n",
                   run + 1, static_cast<long long>(rr.events.api_records), rr.events.api_s, rr.events.rate(),
                   rest.size());
    }
    if (!rest.empty() && !tpl.ready) {
      tb::Stopwatch fill;
      for (size_t f = 0; f < rest.size(); f += static_cast<size_t>(o.batch)) {
        const size_t to = std::min(rest.size(), f + static_cast<size_t>(o.batch));
        tw->fill_events(std::vector<Event>(rest.begin() + static_cast<std::ptrdiff_t>(f),
                                           rest.begin() + static_cast<std::ptrdiff_t>(to)));
      }
      rr.events.filled = static_cast<int64_t>(rest.size());
      rr.events.fill_s = fill.seconds();
      std::fprintf(stderr, "  run %d: sync fill: the other %zu events arrived by apply_changes in %.1f s (%.0f/s)\n",
                   run + 1, rest.size(), rr.events.fill_s, static_cast<double>(rest.size()) / rr.events.fill_s);
    }
    rr.event_total_records = tw->c.records - records_before;
  }
  rr.changes_after_import = tw->store().change_count();
  if (rr.changes_after_import != tw->c.records) {
    fail("after the import the change log holds " + std::to_string(rr.changes_after_import) + " changes for " +
         std::to_string(tw->c.records) + " records written");
  }
  rr.tram_records_at_import = tw->c.records;
  rr.tram_bytes = checkpointed_bytes(tram_path);
  // The run's file is whole unless the budget stopped its events and run 1's copy stands in.
  const bool whole = !rr.events.partial || !tpl.ready;
  rr.partial_file = !whole;

  // --- the same rows with plain SQLite ---
  // Its rates are over the same part of the data as TramSync's through the API
  // (the part the budget allowed); the rest is imported too when the file is
  // to be used whole.
  auto pw = std::make_unique<PlainWriter>(plain_path, schema);
  {
    PlainImport pi = plain_import(*pw, ps, events, seed, now_ms, targets, o.batch, rr.patients.api_inputs,
                                  rr.events.api_inputs);
    rr.plain_patients_s = pi.patients_s;
    rr.plain_patient_rows = pi.patient_rows;
    rr.plain_events_s = pi.events_s;
    rr.plain_event_rows = pi.event_rows;
    std::fprintf(stderr, "  run %d: plain import: patients %.0f/s, events %.0f/s\n", run + 1,
                 static_cast<double>(pi.patient_rows) / pi.patients_s, static_cast<double>(pi.event_rows) / pi.events_s);
    if (whole) {
      // The rest of the events, untimed, so the plain file holds what TramSync's holds.
      EventStream stream(seed, events, now_ms, targets.chronic, targets.chronic_item_of,
                         static_cast<int64_t>(ps.size()));
      for (int64_t k = 0; k < pi.events && !stream.done(); ++k) stream.next();
      while (!stream.done()) {
        pw->begin();
        for (int64_t k = 0; k < o.batch && !stream.done(); ++k) pw->insert_event(stream.next());
        pw->commit();
      }
      rr.plain_rows_at_import = pw->c.records;
      rr.plain_bytes = checkpointed_bytes(plain_path);
    }
  }
  if (run == 0) {
    // What migration 8's triggers cost the plain import (derived tables filled).
    const std::string trig_path = (fs::path(dir) / "run0-plain-triggers.db").string();
    remove_db(trig_path);
    {
      PlainWriter tr(trig_path, schema_triggers);
      PlainImport pi = plain_import(tr, ps, events, seed, now_ms, targets, o.batch, rr.patients.api_inputs,
                                    rr.events.api_inputs);
      rr.trig_patients_per_s = static_cast<double>(pi.patient_rows) / pi.patients_s;
      rr.trig_events_per_s = static_cast<double>(pi.event_rows) / pi.events_s;
    }
    remove_db(trig_path);
  }

  if (!whole) {
    // This run's files are partial: their counts were checked; the per-action
    // phase runs on fresh copies of run 1's whole files.
    tw.reset();
    pw.reset();
    remove_db(tram_path);
    remove_db(plain_path);
    fs::copy_file(tpl.tram_path, tram_path);
    fs::copy_file(tpl.plain_path, plain_path);
    tw = std::make_unique<TramWriter>(tram_path, tpl.tram);
    pw = std::make_unique<PlainWriter>(plain_path, tpl.plain, 5000 + static_cast<uint64_t>(run));
    rr.on_copy = true;
    std::fprintf(stderr, "  run %d: per-action phase on a copy of run 1's whole files\n", run + 1);
  } else if (!tpl.ready && (rr.patients.partial || rr.events.partial)) {
    tpl.tram_path = (fs::path(dir) / "template.tramsync").string();
    tpl.plain_path = (fs::path(dir) / "template-plain.db").string();
    remove_db(tpl.tram_path);
    remove_db(tpl.plain_path);
    fs::copy_file(tram_path, tpl.tram_path);  // both checkpointed above, WAL empty
    fs::copy_file(plain_path, tpl.plain_path);
    tpl.tram = tw->state();
    tpl.plain = pw->state();
    tpl.ready = true;
  }

  // --- per action on the whole files ---
  rr.tram = tram_actions(*tw, targets, o.actions, seed * 13, fresh_numbers + 500'000, o.actions_budget_s);
  rr.plain = plain_actions(*pw, targets, static_cast<int64_t>(rr.tram["add_patient"].size()), seed * 13,
                           fresh_numbers + 500'000);
  rr.changes_at_end = tw->store().change_count();
  const Counts tc = tw->c, pc = pw->c;
  tw.reset();
  pw.reset();
  check_rows(tram_path, tc, true, "at the end");
  check_rows(plain_path, pc, false, "at the end");
  std::fprintf(stderr, "  run %d: whole file: add_visit median %.2f ms (plain %.2f), dispense %.2f ms (plain %.2f)\n",
               run + 1, tb::median(rr.tram["add_visit"]), tb::median(rr.plain["add_visit"]),
               tb::median(rr.tram["dispense"]), tb::median(rr.plain["dispense"]));
  if (!o.keep) {
    remove_db(tram_path);
    remove_db(plain_path);
  }
  return rr;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  const int64_t n_patients = std::max<int64_t>(kEmptyFilePatients, std::llround(o.scale * kPatientsAtScale1));
  const int64_t n_events = std::max<int64_t>(1000, std::llround(o.scale * kEventsAtScale1));

  std::string dir = o.data;
  bool remove_dir = false;
  if (dir.empty()) {
    char tmpl[] = "/tmp/tramsync-bench-local-XXXXXX";
    if (!mkdtemp(tmpl)) fail("cannot make a temp dir under /tmp");
    dir = tmpl;
    remove_dir = !o.keep;
    if (remove_dir) g_temp_dir = dir;
  }
  fs::create_directories(dir);
  std::fprintf(stderr, "tramsync-bench-local: scale %g: %lld patients, %lld events, %lld actions per kind, %d runs, in %s\n",
               o.scale, static_cast<long long>(n_patients), static_cast<long long>(n_events),
               static_cast<long long>(o.actions), o.runs, dir.c_str());

  const std::vector<double> fsyncs = fsync_ms(dir, 100, false), fsyncs_append = fsync_ms(dir, 100, true);
  std::fprintf(stderr, "  fdatasync of 4 KiB here: median %.2f ms, p99 %.2f ms (appending: %.2f, %.2f)\n",
               tb::median(fsyncs), tb::percentile(fsyncs, 99), tb::median(fsyncs_append),
               tb::percentile(fsyncs_append, 99));
  json schema_desc, schema_trig_desc;
  const auto schema = plain_schema(dir, false, schema_desc);
  const auto schema_triggers = plain_schema(dir, true, schema_trig_desc);

  // The patients, the same in every run and for both writers.
  std::vector<GenPatient> ps;
  Targets targets;
  {
    std::mt19937_64 rng(42);
    ps.reserve(static_cast<size_t>(n_patients));
    for (int64_t i = 0; i < n_patients; ++i) {
      ps.push_back(make_patient(rng, i));
      targets.chronic_item_of.push_back(ps.back().chronic_item);
      if (ps.back().chronic_item >= 0) targets.chronic.push_back(i);
    }
    targets.patients = n_patients;
    if (targets.chronic.empty()) fail("no chronic patient generated");
  }

  std::vector<RunResult> runs;
  Templates tpl;
  for (int r = 0; r < o.runs; ++r) {
    std::fprintf(stderr, "run %d/%d\n", r + 1, o.runs);
    runs.push_back(run_once(o, r, dir, ps, targets, n_events, schema, schema_triggers, tpl));
  }
  if (tpl.ready && !o.keep) {
    remove_db(tpl.tram_path);
    remove_db(tpl.plain_path);
  }

  tb::Results res("local", o.quick ? "quick" : "full");
  const std::string group = "Local writes";
  const std::string plain_what =
      "plain SQLite, same tables and indexes without the change log and triggers, the same record rows, one "
      "transaction per action, WAL + synchronous=FULL";
  std::fprintf(stderr, "\nfigures (median of %d runs; limit: plain SQLite):\n", o.runs);
  auto per_action = [&](const std::string& prefix, Samples RunResult::*tram, Samples RunResult::*plain,
                        const std::string& where) {
    for (const auto& a : kActions) {
      for (const char* stat : {"median", "p99"}) {
        const bool med = std::string(stat) == "median";
        tb::Figure f;
        f.id = prefix + a + "." + stat + "_ms";
        f.group = group;
        f.what = std::string(med ? "median" : "99th percentile") + " ms per " + a + " " + where +
                 ", one public Store call in its own transaction";
        f.unit = "ms";
        std::vector<double> lim;
        std::vector<size_t> counts;
        for (auto& rr : runs) {
          const auto& t = (rr.*tram)[a];
          const auto& p = (rr.*plain)[a];
          if (t.empty()) continue;  // the empty-file phase runs in run 1 only
          counts.push_back(t.size());
          f.runs.push_back(med ? tb::median(t) : tb::percentile(t, 99));
          lim.push_back(med ? tb::median(p) : tb::percentile(p, 99));
        }
        if (f.runs.empty()) continue;
        f.limit = tb::median(lim);
        f.limit_what = plain_what;
        const size_t least = *std::min_element(counts.begin(), counts.end());
        if (least < static_cast<size_t>(o.actions)) {
          f.note = "--actions-budget-s stopped the rounds: at least " + std::to_string(least) + " of " +
                   std::to_string(o.actions) + " samples per run";
        }
        if (f.runs.size() < runs.size()) f.note += std::string(f.note.empty() ? "" : "; ") + "measured in run 1 only";
        res.add(f);
      }
    }
  };
  // A note for an import figure some of whose runs the budget stopped.
  auto partial_note = [&](Phase RunResult::*phase, int64_t total) -> std::string {
    int stopped = 0;
    int64_t least = -1;
    json model;
    for (auto& rr : runs) {
      const Phase& ph = rr.*phase;
      if (!ph.partial) continue;
      ++stopped;
      if (least < 0 || ph.api_records < least) least = ph.api_records;
      model = ph.projection(total);
    }
    if (stopped == 0) return "";
    char buf[600];
    std::snprintf(buf, sizeof buf,
                  "--import-budget-s stopped %d of %zu runs (at least %lld records written through the API; the "
                  "rest was not imported this way): the rate is over the early, cheaper part. Cost per record "
                  "grows with the file; fitted, the whole import would take %.0f s (%.0f records/s)",
                  stopped, runs.size(), static_cast<long long>(least),
                  model.is_object() ? model["projected_seconds_for_all"].get<double>() : 0.0,
                  model.is_object() ? model["projected_records_per_s_for_all"].get<double>() : 0.0);
    return buf;
  };
  per_action("local.", &RunResult::tram, &RunResult::plain,
             "on a file holding the imported data (" + std::to_string(n_patients) + " patients, " +
                 std::to_string(n_events) + " events)");
  {
    tb::Figure f;
    f.id = "local.import_patients.records_per_s";
    f.group = group;
    f.what = "patients per second through Store::import_patients (the CSV import's path), " +
             std::to_string(o.batch) + " rows per call, into a new station file";
    f.unit = "records/s";
    f.higher_is_better = true;
    std::vector<double> lim;
    for (auto& rr : runs) {
      f.runs.push_back(rr.patients.rate());
      lim.push_back(static_cast<double>(rr.plain_patient_rows) / rr.plain_patients_s);
    }
    f.note = partial_note(&RunResult::patients, n_patients);
    f.limit = tb::median(lim);
    f.limit_what = "plain SQLite: the patient, search and set rows, " + std::to_string(o.batch) +
                   " patients per transaction, WAL + synchronous=FULL";
    res.add(f);
  }
  {
    tb::Figure f;
    f.id = "local.import_events.records_per_s";
    f.group = group;
    f.what = "event records per second (70 % visits, 30 % dispenses, monthly receipts) through Store::add_visit, "
             "Store::dispense and Store::receive, " +
             std::to_string(o.batch) + " actions per Store::batch, after the patients";
    f.unit = "records/s";
    f.higher_is_better = true;
    std::vector<double> lim;
    for (auto& rr : runs) {
      f.runs.push_back(rr.events.rate());
      lim.push_back(static_cast<double>(rr.plain_event_rows) / rr.plain_events_s);
    }
    f.note = partial_note(&RunResult::events, n_events);
    f.limit = tb::median(lim);
    f.limit_what = "plain SQLite: the visit and stock movement rows, " + std::to_string(o.batch) +
                   " per transaction, WAL + synchronous=FULL";
    res.add(f);
  }
  // The whole import's rate: measured where the budget let it finish, else
  // projected by the run's cost model (the note says which).
  auto whole_figure = [&](const std::string& id, const std::string& what, Phase RunResult::*phase, int64_t total,
                          double limit, const std::string& limit_what) {
    tb::Figure f;
    f.id = id;
    f.group = group;
    f.what = what;
    f.unit = "records/s";
    f.higher_is_better = true;
    int projected = 0;
    for (auto& rr : runs) {
      const Phase& ph = rr.*phase;
      if (ph.partial) {
        ++projected;
        json m = ph.projection(total);
        f.runs.push_back(m.is_object() ? m["projected_records_per_s_for_all"].get<double>() : 0.0);
      } else {
        f.runs.push_back(ph.rate());
      }
    }
    f.limit = limit;
    f.limit_what = limit_what;
    if (projected > 0) {
      f.note = "PROJECTED in " + std::to_string(projected) + " of " + std::to_string(runs.size()) +
               " runs (the budget stopped the import): seconds per record fitted as a + b x records already "
               "written over the calls measured, summed over the whole import; not measured";
    } else {
      f.note = "measured: every run imported everything through the API";
    }
    res.add(f);
  };
  whole_figure("local.import_patients.whole_records_per_s",
               "patients per second over the whole import of " + std::to_string(n_patients) +
                   " patients through Store::import_patients",
               &RunResult::patients, n_patients, res_limit(res, "local.import_patients.records_per_s"),
               "plain SQLite over the part TramSync imported (its cost per row does not grow with the file)");
  whole_figure("local.import_events.whole_records_per_s",
               "event records per second over the whole import of " + std::to_string(n_events) +
                   " events through Store::add_visit, Store::dispense and Store::receive in Store::batch",
               &RunResult::events, n_events, res_limit(res, "local.import_events.records_per_s"),
               "plain SQLite over the part TramSync imported (its cost per row does not grow with the file)");
  if (o.empty) {
    per_action("local.empty.", &RunResult::tram_empty, &RunResult::plain_empty,
               "on a new file (" + std::to_string(kEmptyFilePatients) + " patients)");
  }

  // --- details ---
  json& d = res.details();
  d["scale"] = o.scale;
  d["patients"] = n_patients;
  d["events"] = n_events;
  d["actions_per_kind"] = o.actions;
  d["import_budget_s"] = o.import_budget_s;
  d["fdatasync_4k_ms"] = {{"median", tb::median(fsyncs)},
                          {"p99", tb::percentile(fsyncs, 99)},
                          {"append_median", tb::median(fsyncs_append)},
                          {"append_p99", tb::percentile(fsyncs_append, 99)},
                          {"what", "100 x (pwrite 4 KiB + fdatasync) in the data directory before the runs, over one "
                                   "block, then 100 appending"}};
  d["actions_budget_s"] = o.actions_budget_s;
  d["batch"] = o.batch;
  d["runs"] = o.runs;
  d["history_days"] = kHistoryDays;
  d["items"] = kItems;
  d["chronic_patients"] = targets.chronic.size();
  d["plain_schema"] = schema_desc;
  d["event_kinds_per_run"] = runs.front().event_kinds;
  {
    json jr = json::array();
    for (const auto& rr : runs) {
      const double tram_bpr = static_cast<double>(rr.tram_bytes) / static_cast<double>(rr.tram_records_at_import);
      const double plain_bpr =
          rr.plain_rows_at_import > 0 ? static_cast<double>(rr.plain_bytes) / static_cast<double>(rr.plain_rows_at_import) : 0;
      jr.push_back({{"import_patients", rr.patients.to_json(n_patients)},
                    {"import_events", rr.events.to_json(n_events)},
                    {"file_whole_after_import", !rr.partial_file},
                    {"per_action_on_copy_of_run_1", rr.on_copy},
                    {"plain_import_patients_timed", rr.plain_patient_rows},
                    {"plain_import_patients_s", rr.plain_patients_s},
                    {"plain_import_events_s", rr.plain_events_s},
                    {"event_records", rr.event_total_records},
                    {"plain_event_rows", rr.plain_event_rows},
                    {"per_action_rounds", rr.tram.at("add_patient").size()},
                    {"file_bytes_after_import", rr.tram_bytes},
                    {"records_after_import", rr.tram_records_at_import},
                    {"bytes_per_record", tram_bpr},
                    {"plain_file_bytes_after_import", rr.plain_bytes},
                    {"plain_rows_after_import", rr.plain_rows_at_import},
                    {"plain_bytes_per_record", plain_bpr},
                    {"change_log_rows_after_import", rr.changes_after_import},
                    {"change_log_rows_at_end", rr.changes_at_end}});
    }
    d["per_run"] = jr;
    const auto& r0 = runs.front();
    d["file_bytes_after_import"] = r0.tram_bytes;
    d["bytes_per_record"] = static_cast<double>(r0.tram_bytes) / static_cast<double>(r0.tram_records_at_import);
    d["plain_bytes_per_record"] = static_cast<double>(r0.plain_bytes) / static_cast<double>(r0.plain_rows_at_import);
    d["change_log_rows_after_import"] = r0.changes_after_import;
    d["change_log_check"] = "change-log rows == records written, after the import and at the end of every run";
    if (r0.trig_events_per_s) {
      d["plain_with_triggers"] = {{"import_patients_records_per_s", *r0.trig_patients_per_s},
                                  {"import_events_records_per_s", *r0.trig_events_per_s},
                                  {"what", "run 1: the plain import with migration 8's triggers kept"}};
    }
  }
  {
    // p99 over every run's samples together, per action.
    json all = json::object();
    for (const auto& a : kActions) {
      std::vector<double> t, p;
      for (auto& rr : runs) {
        t.insert(t.end(), rr.tram[a].begin(), rr.tram[a].end());
        p.insert(p.end(), rr.plain[a].begin(), rr.plain[a].end());
      }
      std::vector<double> tc, pc;
      for (auto& rr : runs) {
        tc.insert(tc.end(), rr.tram.cpu[a].begin(), rr.tram.cpu[a].end());
        pc.insert(pc.end(), rr.plain.cpu[a].begin(), rr.plain.cpu[a].end());
      }
      all[a] = {{"samples", t.size()},
                {"median_ms", tb::median(t)},
                {"p99_ms", tb::percentile(t, 99)},
                {"max_ms", t.empty() ? 0 : *std::max_element(t.begin(), t.end())},
                {"plain_median_ms", tb::median(p)},
                {"plain_p99_ms", tb::percentile(p, 99)},
                {"cpu_median_ms", tb::median(tc)},
                {"cpu_p99_ms", tb::percentile(tc, 99)},
                {"plain_cpu_median_ms", tb::median(pc)}};
    }
    d["all_samples"] = all;
    std::fprintf(stderr, "  CPU per action on the full file (median ms, TramSync / plain): ");
    for (const auto& a : kActions) {
      std::fprintf(stderr, "%s %.2f/%.2f  ", a.c_str(), all[a]["cpu_median_ms"].get<double>(),
                   all[a]["plain_cpu_median_ms"].get<double>());
    }
    std::fprintf(stderr, "\n");
  }
  std::fprintf(stderr, "  file after import: %.1f MiB, %.0f bytes per record (plain %.0f); change log %lld rows\n",
               static_cast<double>(runs.front().tram_bytes) / (1 << 20), d["bytes_per_record"].get<double>(),
               d["plain_bytes_per_record"].get<double>(), static_cast<long long>(runs.front().changes_after_import));

  bool ok = res.write(o.json_out);
  if (remove_dir) fs::remove_all(dir);
  return ok ? 0 : 1;
}
