// tramsync-bench-ingest: how fast the centre takes in what many stations push
// at once, over TLS on loopback, against the limit of inserting the same change
// rows into SQLite directly. Prints figures; asserts nothing but the counts.
//
// Set-up (not timed): a central file (Store::init_central) with 30 catalogue
// items and --stations stations (default 100), each with one enrolled station
// device (Store::add_enrollment_code + enroll_device, the path /v1/enroll takes,
// with a token made here). Each station's device has --changes changes
// (default 10,000 x --scale) in its log, shaped as a station's work: one
// receipt of each item, then patients (1 in 8 changes), and for each patient
// visits and dispenses from the received lots, about 5 % of them later phone
// edits of an earlier patient. The bodies are encoded before timing
// (wire::encode_batch, 500 changes per push as the reference client sends).
//
// Timed, --runs times on a fresh copy of the set-up file: the real
// `tramsync-server serve` (a child process, self-signed certificate, default
// worker threads) and one thread per station, each with its own pinned HTTPS
// transport (gzip on, as the client sends), pushing its batches in order. The
// figure is all changes / the wall time from the first push to the last
// answer. A push whose link fails (a TLS handshake that waits past the
// client's 10 s for a free worker) or that gets 503 is retried as the
// reference client retries (0.5 s doubling, 6 attempts) and counted. Also:
// each push's latency, retries included (p50, p95, p99 over all pushes of all
// runs) and the server's peak resident memory (VmHWM). Every answer must be 200
// with every change applied, and the file must end with exactly the changes
// pushed; otherwise the bench fails.
//
// The limits, measured in the same run:
//   - `direct`: the same changes through Store::apply_changes in-process, one
//     thread, the same batches (no TLS, HTTP, gzip or JSON decoding): what is
//     left for the network side;
//   - `plain`: the same change rows (origin, origin_seq, hlc, station_id,
//     kind, record_id, payload) inserted with plain SQLite prepared statements
//     into a table with the columns and indexes of TramSync's `changes` table,
//     WAL and synchronous=FULL, one transaction per 500 rows, one thread:
//     "the same changes inserted into SQLite directly" of issue 7. It keeps no
//     records, no merge state and no derived tables.
// Left out: pulls (the stations only push), conflicts (no two devices edit the
// same record), quarantine.
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <barrier>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "process.h"
#include "tramsync/core/clock.h"
#include "tramsync/core/hlc.h"
#include "tramsync/core/model.h"
#include "tramsync/core/store.h"
#include "tramsync/core/time.h"
#include "tramsync/sync/auth.h"
#include "tramsync/sync/https_server.h"
#include "tramsync/sync/transport.h"
#include "tramsync/sync/wire.h"

namespace fs = std::filesystem;
using namespace tramsync;
using namespace tramsync::bench;

namespace {

constexpr int64_t kDayMs = 86'400'000;
constexpr int kItems = 30;
constexpr int64_t kBatch = 500;

struct Options {
  bool quick = false;
  int runs = 3;  // a full run pushes 1,000,000 changes three ways: minutes each
  double scale = 1.0;
  int64_t stations = 100;
  int64_t changes = 0;  // per station; 0: 10,000 x scale
  std::string json_out, data_dir, server;
  bool keep = false;
  int server_threads = 0;  // 0: the server's default
  std::string only;        // tls, direct or plain: run that part alone (for profiling)
};

[[noreturn]] void die(const std::string& what) {
  std::cerr << "tramsync-bench-ingest: " << what << "\n";
  std::exit(1);
}

Options parse(int argc, char** argv) {
  Options o;
  bool runs_set = false, scale_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--quick") {
      o.quick = true;
    } else if (a == "--runs") {
      o.runs = std::stoi(value());
      runs_set = true;
    } else if (a == "--scale") {
      o.scale = std::stod(value());
      scale_set = true;
    } else if (a == "--stations") {
      o.stations = std::stoll(value());
    } else if (a == "--changes") {
      o.changes = std::stoll(value());
    } else if (a == "--json-out") {
      o.json_out = value();
    } else if (a == "--data") {
      o.data_dir = value();
    } else if (a == "--server") {
      o.server = value();
    } else if (a == "--server-threads") {
      o.server_threads = std::stoi(value());
    } else if (a == "--only") {
      o.only = value();
    } else if (a == "--keep") {
      o.keep = true;
    } else {
      std::cerr << "usage: tramsync-bench-ingest [--quick] [--runs N] [--scale F] [--stations N] [--changes N]\n"
                   "       [--json-out FILE] [--data DIR] [--server PATH] [--server-threads N] [--only tls|direct|plain] [--keep]\n";
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  if (o.quick) {
    if (!runs_set) o.runs = 3;
    if (!scale_set) o.scale = 0.05;
  }
  if (o.changes == 0) o.changes = std::max<int64_t>(kBatch / 5, static_cast<int64_t>(10'000 * o.scale));
  if (o.server.empty()) o.server = sibling_program("server", "tramsync-server");
  return o;
}

struct StationLoad {
  std::string station_id, device_id, token;
  std::vector<Change> changes;
  std::vector<std::string> bodies;  // encoded pushes
};

// A station's device log, as described at the top.
std::vector<Change> station_changes(const std::string& sid, const std::string& device, int64_t n,
                                    const std::vector<std::string>& items, RandomIdSource& ids, std::mt19937_64& rng,
                                    int64_t now_ms) {
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto local = [](int64_t ms) { return local_time_from_ms(ms, kDefaultUtcOffsetMinutes); };
  std::vector<Change> out;
  out.reserve(static_cast<size_t>(n));
  int64_t at = now_ms - 30 * kDayMs;
  const int64_t step = std::max<int64_t>(1, 30 * kDayMs / n);
  auto add = [&](const std::string& kind, const std::string& id, json payload) {
    Change c;
    c.seq = static_cast<int64_t>(out.size()) + 1;
    c.origin = device;
    c.origin_seq = c.seq;
    at += step;
    c.hlc = Hlc::pack(at, 0);
    c.station_id = sid;
    c.kind = kind;
    c.record_id = id;
    c.payload = payload.dump();
    out.push_back(std::move(c));
  };
  std::vector<std::string> lots;
  for (int i = 0; i < kItems && static_cast<int64_t>(out.size()) < n; ++i) {
    std::string id = ids.new_id();
    lots.push_back("L" + std::to_string(pick(1000, 9999)));
    add(kind::kStockMovement, id,
        {{"op", "insert"},
         {"event",
          {{"id", id}, {"station_id", sid}, {"item_id", items[static_cast<size_t>(i)]}, {"kind", "receipt"},
           {"lot", lots.back()}, {"expiry", "2027-12-31"}, {"quantity", 100'000}, {"patient_id", nullptr},
           {"days_supply", nullptr}, {"reason", ""}, {"counterpart", "Trung tâm Y tế"}, {"at", local(at)}}}});
  }
  static const char* kFamily[] = {"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vàng", "Lò", "Giàng", "Lù", "Sùng"};
  static const char* kGiven[] = {"An", "Bình", "Chi", "Dũng", "Hoa", "Lan", "Mai", "Páo", "Sử", "Tủa", "Xuân", "Hùng"};
  std::vector<std::string> patients;
  std::map<std::string, json> phone_version;  // the device's last version of each patient's phone
  while (static_cast<int64_t>(out.size()) < n) {
    const int64_t left = n - static_cast<int64_t>(out.size());
    if (patients.empty() || (chance(1.0 / 8) && left > 0)) {
      std::string id = ids.new_id();
      json fields{{"name", std::string(kFamily[pick(0, 9)]) + " Văn " + kGiven[pick(0, 11)]},
                  {"sex", chance(0.5) ? "male" : "female"},
                  {"birth", std::to_string(pick(1935, 2020)) + "-0" + std::to_string(pick(1, 9)) + "-1" +
                                std::to_string(pick(0, 9))},
                  {"village", "Bản " + std::to_string(pick(1, 20))},
                  {"household_id", nullptr},
                  {"phone", chance(0.6) ? "09" + std::to_string(pick(10'000'000, 99'999'999)) : ""},
                  {"national_id", ""},
                  {"status", "active"},
                  {"status_changed_at", ""},
                  {"created_at", local(at)}};
      json payload{{"op", "upsert"}, {"fields", fields}};
      if (chance(0.4)) payload["sets"] = {{"categories", {{"add", {"chronic"}}, {"remove", json::array()}}}};
      add(kind::kPatient, id, payload);
      phone_version[id] = json::array({out.back().hlc, device});
      patients.push_back(id);
      continue;
    }
    const std::string& p = patients[static_cast<size_t>(pick(0, static_cast<int64_t>(patients.size()) - 1))];
    const double r = std::uniform_real_distribution<double>(0, 1)(rng);
    std::string id = ids.new_id();
    if (r < 0.05) {
      // A later phone edit, based on the version the device had (its own
      // last write of that field), so it is no conflict.
      json payload{{"op", "upsert"},
                   {"fields", {{"phone", "09" + std::to_string(pick(10'000'000, 99'999'999))}}},
                   {"base", {{"phone", phone_version[p]}}}};
      add(kind::kPatient, p, payload);
      phone_version[p] = json::array({out.back().hlc, device});
    } else if (r < 0.60) {
      add(kind::kVisit, id,
          {{"op", "insert"},
           {"event",
            {{"id", id}, {"station_id", sid}, {"patient_id", p}, {"at", local(at)},
             {"temp_c", 36.5 + 0.1 * static_cast<double>(pick(0, 20))}, {"spo2", pick(90, 99)},
             {"bp_sys", pick(110, 170)}, {"bp_dia", pick(70, 100)}, {"pulse", nullptr},
             {"symptoms", json::array({"ho"})}, {"note", ""}, {"refer", false}}}});
    } else {
      const int item = static_cast<int>(pick(0, kItems - 1));
      add(kind::kStockMovement, id,
          {{"op", "insert"},
           {"event",
            {{"id", id}, {"station_id", sid}, {"item_id", items[static_cast<size_t>(item)]}, {"kind", "dispense"},
             {"lot", lots[static_cast<size_t>(item)]}, {"expiry", ""}, {"quantity", -pick(1, 30)},
             {"patient_id", p}, {"days_supply", 30}, {"reason", ""}, {"counterpart", ""}, {"at", local(at)}}}});
    }
  }
  return out;
}

struct Setup {
  std::string file;  // the pristine central file
  std::vector<StationLoad> stations;
  int64_t total = 0;
  int64_t payload_bytes = 0, body_bytes = 0;
};

Setup make_setup(const Options& o, const fs::path& dir) {
  Setup s;
  s.file = (dir / "central-setup.db").string();
  auto st = Store::open(s.file);
  if (!st) die("open: " + st.error().message());
  Store& store = **st;
  if (auto c = store.init_central("Trung tâm Y tế tỉnh (bench)"); !c) die("init_central: " + c.error().message());
  std::vector<std::string> items;
  for (int i = 0; i < kItems; ++i) {
    auto id = store.add_item(ItemInput{"IT" + std::to_string(100 + i), "Thuốc " + std::to_string(i), "viên", "medicine", std::nullopt});
    if (!id) die("add_item: " + id.error().message());
    items.push_back(*id);
  }
  RandomIdSource ids(7);
  std::mt19937_64 rng(11);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (int64_t k = 0; k < o.stations; ++k) {
    char code[32];
    std::snprintf(code, sizeof code, "T%04lld", static_cast<long long>(k));
    auto info = store.add_station(code, std::string("Trạm Y tế ") + code, "Huyện " + std::to_string(k / 10), "Tỉnh");
    if (!info) die("add_station: " + info.error().message());
    StationLoad l;
    l.station_id = info->id;
    l.device_id = ids.new_id();
    l.token = auth::new_token();
    const std::string enroll_code = auth::new_enrollment_code();
    if (auto r = store.add_enrollment_code(auth::enrollment_code_hash(enroll_code), code, "station", "máy trạm",
                                           now + kDayMs);
        !r) {
      die("add_enrollment_code: " + r.error().message());
    }
    auto dev = store.enroll_device(EnrollmentRequest{auth::enrollment_code_hash(enroll_code), l.device_id, "máy trạm",
                                                     auth::sha256_hex(l.token), ids.new_id(), ""});
    if (!dev) die("enroll_device: " + dev.error().message());
    l.changes = station_changes(l.station_id, l.device_id, o.changes, items, ids, rng, now);
    for (size_t b = 0; b < l.changes.size(); b += kBatch) {
      std::vector<Change> batch(l.changes.begin() + static_cast<std::ptrdiff_t>(b),
                                l.changes.begin() + static_cast<std::ptrdiff_t>(std::min(l.changes.size(), b + kBatch)));
      l.bodies.push_back(wire::encode_batch(batch));
      s.body_bytes += static_cast<int64_t>(l.bodies.back().size());
    }
    for (const auto& c : l.changes) s.payload_bytes += static_cast<int64_t>(c.payload.size());
    s.total += static_cast<int64_t>(l.changes.size());
    s.stations.push_back(std::move(l));
  }
  return s;
}

// Calls f(station, from, to) for every batch of every station, round-robin
// over the stations (batch 1 of each, then batch 2 ...), as concurrent pushes
// interleave.
template <typename F>
void each_batch_round_robin(const Setup& s, F&& f) {
  for (size_t from = 0;; from += kBatch) {
    bool any = false;
    for (const auto& l : s.stations) {
      if (from >= l.changes.size()) continue;
      any = true;
      f(l, from, std::min(l.changes.size(), from + static_cast<size_t>(kBatch)));
    }
    if (!any) return;
  }
}

void copy_db(const std::string& from, const std::string& to) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(to + suffix);
  fs::copy_file(from, to);
}

struct NetRun {
  double seconds = 0;
  int64_t retries = 0;
  double server_peak_mib = 0;
  std::vector<double> latencies_ms;
};

NetRun run_over_tls(const Options& o, const Setup& s, const fs::path& dir, int run) {
  const std::string file = (dir / ("central-run" + std::to_string(run) + ".db")).string();
  copy_db(s.file, file);
  std::vector<std::string> extra;
  if (o.server_threads > 0) extra = {"--threads", std::to_string(o.server_threads)};
  ServerProcess server(o.server, file, (dir / "cert").string(), (dir / ("server-run" + std::to_string(run) + ".log")).string(),
                       extra);
  const size_t n = s.stations.size();
  std::vector<std::vector<double>> lat(n);
  std::vector<std::string> errors(n);
  std::atomic<int64_t> applied{0}, conflicts{0}, retries{0};
  std::barrier start(static_cast<std::ptrdiff_t>(n) + 1);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < n; ++k) {
    threads.emplace_back([&, k] {
      const StationLoad& l = s.stations[k];
      sync::HttpsOptions ho;
      ho.url = server.url();
      ho.pin = server.fingerprint();
      auto t = sync::make_https_transport(ho);
      start.arrive_and_wait();
      if (!t) {
        errors[k] = t.error().message();
        return;
      }
      for (const auto& body : l.bodies) {
        sync::Request req;
        req.method = "POST";
        req.path = "/v1/push";
        req.headers["Authorization"] = "Bearer " + l.token;
        req.headers["Content-Type"] = "application/json";
        req.body = body;
        // As the reference client (SyncOptions): a dropped link or a busy
        // server (503) is retried after 0.5 s, doubling up to 30 s, 6 attempts.
        Stopwatch w;
        int64_t backoff_ms = 500;
        for (int attempt = 1;; ++attempt) {
          auto r = (*t)->roundtrip(req);
          const bool again = !r ? r.error().code == ErrorCode::kIo : r->status == 503;
          if (again && attempt < 6) {
            ++retries;
            std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
            backoff_ms = std::min<int64_t>(backoff_ms * 2, 30'000);
            continue;
          }
          if (!r) {
            errors[k] = r.error().message() + " (after " + std::to_string(attempt) + " attempts)";
            return;
          }
          if (r->status != 200) {
            errors[k] = "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 300);
            return;
          }
          auto j = json::parse(r->body, nullptr, false);
          applied += j.value("applied", int64_t{0});
          conflicts += j.value("conflicts", int64_t{0});
          break;
        }
        lat[k].push_back(w.ms());  // what the station waited, retries included
      }
    });
  }
  start.arrive_and_wait();
  Stopwatch wall;
  for (auto& t : threads) t.join();
  NetRun out;
  out.seconds = wall.seconds();
  out.server_peak_mib = server.peak_mib();
  out.retries = retries.load();
  if (server.stop() != 0) die("the server did not stop cleanly (log in " + dir.string() + ")");
  for (size_t k = 0; k < n; ++k) {
    if (!errors[k].empty()) die("station " + std::to_string(k) + ": " + errors[k]);
    out.latencies_ms.insert(out.latencies_ms.end(), lat[k].begin(), lat[k].end());
  }
  if (conflicts != 0) die("the server recorded " + std::to_string(conflicts.load()) + " conflicts; the data has none");
  if (applied != s.total) {
    die("the server applied " + std::to_string(applied.load()) + " changes of " + std::to_string(s.total));
  }
  const int64_t stored = count_rows(file, "SELECT count(*) FROM changes WHERE from_peer IS NOT NULL AND kind != 'device'");
  if (stored != s.total) die("the file holds " + std::to_string(stored) + " pushed changes, not " + std::to_string(s.total));
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file + suffix);
  return out;
}

// Seconds of wall time; *cpu gets the CPU seconds of the same span.
double run_direct(const Setup& s, const fs::path& dir, double* cpu) {
  const std::string file = (dir / "central-direct.db").string();
  copy_db(s.file, file);
  StoreOptions so;
  so.cache_mib = sync::kDefaultServerCacheMib;  // as the server's connections have
  auto st = Store::open(file, so);
  if (!st) die("open: " + st.error().message());
  Stopwatch w;
  const double cpu0 = process_cpu_seconds();
  int64_t applied = 0;
  each_batch_round_robin(s, [&](const StationLoad& l, size_t from, size_t to) {
    std::vector<Change> batch(l.changes.begin() + static_cast<std::ptrdiff_t>(from),
                              l.changes.begin() + static_cast<std::ptrdiff_t>(to));
    ApplyContext ctx;
    ctx.from_peer = l.device_id;
    ctx.write_scope = Scope::station(l.station_id);
    ctx.allowed_origins = {l.device_id};
    auto r = (*st)->apply_changes(batch, ctx);
    if (!r) die("apply_changes: " + r.error().message());
    applied += r->applied;
    if (r->conflicts != 0) die("apply_changes recorded conflicts; the data has none");
  });
  const double sec = w.seconds();
  *cpu = process_cpu_seconds() - cpu0;
  if (applied != s.total) die("apply_changes applied " + std::to_string(applied) + " of " + std::to_string(s.total));
  st->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file + suffix);
  return sec;
}

double run_plain(const Setup& s, const fs::path& dir) {
  const std::string file = (dir / "plain.db").string();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file + suffix);
  // The change log's table as TramSync makes it: columns and indexes.
  std::vector<std::string> ddl;
  {
    sqlite3* src = nullptr;
    sqlite3_open_v2(s.file.c_str(), &src, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(src, "SELECT sql FROM sqlite_master WHERE tbl_name = 'changes' AND sql IS NOT NULL AND type IN ('table', 'index') ORDER BY type = 'index'", -1, &q, nullptr);
    while (sqlite3_step(q) == SQLITE_ROW) ddl.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
    sqlite3_finalize(q);
    sqlite3_close(src);
  }
  if (ddl.empty()) die("cannot read the changes table's schema");
  sqlite3* db = nullptr;
  sqlite3_open(file.c_str(), &db);
  auto exec = [&](const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) die(std::string("plain: ") + (err ? err : "?"));
  };
  exec("PRAGMA journal_mode = WAL");
  exec("PRAGMA synchronous = FULL");
  for (const auto& d : ddl) exec(d);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v3(db,
                     "INSERT INTO changes(origin, origin_seq, hlc, station_id, kind, record_id, payload, from_peer) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                     -1, SQLITE_PREPARE_PERSISTENT, &ins, nullptr);
  Stopwatch w;
  each_batch_round_robin(s, [&](const StationLoad& l, size_t from, size_t to) {
    exec("BEGIN IMMEDIATE");
    for (size_t i = from; i < to; ++i) {
      const Change& c = l.changes[i];
      sqlite3_bind_text(ins, 1, c.origin.data(), static_cast<int>(c.origin.size()), SQLITE_STATIC);
      sqlite3_bind_int64(ins, 2, c.origin_seq);
      sqlite3_bind_int64(ins, 3, static_cast<sqlite3_int64>(c.hlc));
      sqlite3_bind_text(ins, 4, c.station_id.data(), static_cast<int>(c.station_id.size()), SQLITE_STATIC);
      sqlite3_bind_text(ins, 5, c.kind.data(), static_cast<int>(c.kind.size()), SQLITE_STATIC);
      sqlite3_bind_text(ins, 6, c.record_id.data(), static_cast<int>(c.record_id.size()), SQLITE_STATIC);
      sqlite3_bind_text(ins, 7, c.payload.data(), static_cast<int>(c.payload.size()), SQLITE_STATIC);
      sqlite3_bind_text(ins, 8, l.device_id.data(), static_cast<int>(l.device_id.size()), SQLITE_STATIC);
      if (sqlite3_step(ins) != SQLITE_DONE) die(std::string("plain insert: ") + sqlite3_errmsg(db));
      sqlite3_reset(ins);
    }
    exec("COMMIT");
  });
  const double sec = w.seconds();
  sqlite3_finalize(ins);
  sqlite3_close(db);
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file + suffix);
  return sec;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  fs::path dir = o.data_dir.empty() ? fs::temp_directory_path() / ("tramsync-bench-ingest-" + std::to_string(getpid()))
                                    : fs::path(o.data_dir);
  fs::create_directories(dir);
  if (!fs::exists(o.server)) die("no server program at " + o.server + " (--server PATH)");
  std::fprintf(stderr, "ingest: %lld stations x %lld changes, %d runs, data in %s\n",
               static_cast<long long>(o.stations), static_cast<long long>(o.changes), o.runs, dir.string().c_str());
  Stopwatch setup_time;
  Setup s = make_setup(o, dir);
  std::fprintf(stderr, "  set-up: %lld changes, %.1f MB of payload, %.1f s\n", static_cast<long long>(s.total),
               static_cast<double>(s.payload_bytes) / 1e6, setup_time.seconds());

  std::vector<double> tls_rate, direct_rate, direct_cpu_us, plain_rate, peaks, all_lat, retries;
  for (int r = 0; r < o.runs; ++r) {
    NetRun n;
    if (o.only.empty() || o.only == "tls") {
      n = run_over_tls(o, s, dir, r);
      tls_rate.push_back(static_cast<double>(s.total) / n.seconds);
      peaks.push_back(n.server_peak_mib);
      retries.push_back(static_cast<double>(n.retries));
      all_lat.insert(all_lat.end(), n.latencies_ms.begin(), n.latencies_ms.end());
    }
    if (o.only.empty() || o.only == "direct") {
      double cpu = 0;
      direct_rate.push_back(static_cast<double>(s.total) / run_direct(s, dir, &cpu));
      direct_cpu_us.push_back(cpu * 1e6 / static_cast<double>(s.total));
    }
    if (o.only.empty() || o.only == "plain") plain_rate.push_back(static_cast<double>(s.total) / run_plain(s, dir));
    std::fprintf(stderr, "  run %d:", r + 1);
    if (!n.latencies_ms.empty()) std::fprintf(stderr, " TLS %.0f changes/s (p50 push %.0f ms, %lld retried)", tls_rate.back(), median(n.latencies_ms),
                                              static_cast<long long>(n.retries));
    if (!direct_rate.empty()) std::fprintf(stderr, " direct %.0f (%.0f us CPU each)", direct_rate.back(), direct_cpu_us.back());
    if (!plain_rate.empty()) std::fprintf(stderr, " plain SQLite %.0f", plain_rate.back());
    std::fprintf(stderr, "\n");
  }

  Results res("ingest", o.quick ? "quick" : "full");
  const std::string who = std::to_string(o.stations) + " stations x " + std::to_string(o.changes) + " changes";
  Figure f = Figure::of("ingest.tls.changes_per_s", "Central ingest",
           who + " pushed concurrently over TLS (500 per push): changes stored per second", "changes/s", true,
           tls_rate);
  f.limit = median(plain_rate);
  f.limit_what = "the same change rows inserted into SQLite directly (WAL, synchronous=FULL, 500 per transaction)";
  f.target = 50'000;
  res.add(f);
  Figure d = Figure::of("ingest.direct.changes_per_s", "Central ingest",
           "the same batches through Store::apply_changes in-process, one thread (no TLS, HTTP or decoding)",
           "changes/s", true, direct_rate);
  d.limit = median(plain_rate);
  d.limit_what = f.limit_what;
  res.add(d);
  res.add(Figure::of("ingest.direct.cpu_us_per_change", "Central ingest",
                     "CPU time per change of the in-process apply (steadier than wall time on a shared machine)", "us",
                     false, direct_cpu_us));
  res.add(Figure::of("ingest.plain.changes_per_s", "Central ingest", "the limit: " + f.limit_what, "changes/s", true,
                 plain_rate));
  for (auto [p, name] : {std::pair{50.0, "p50"}, std::pair{95.0, "p95"}, std::pair{99.0, "p99"}}) {
    res.add(Figure::of(std::string("ingest.push_latency.") + name + "_ms", "Central ingest",
                   std::string("one push of 500 changes, answered, retries included (") + name + " over all pushes of all runs, " +
                       std::to_string(all_lat.size()) + " pushes)",
                   "ms", false, {percentile(all_lat, p)}));
  }
  res.add(Figure::of("ingest.tls.retries", "Central ingest",
                     "pushes retried (a TLS handshake or read timed out, or 503 busy) before they were answered, per run",
                     "requests", false, retries));
  {
    auto m = Figure::of("ingest.server_peak_mib", "Central ingest",
                        "the server's peak resident memory (VmHWM) during a run", "MiB", false, peaks);
    m.whole_job = false;  // should stay flat however much is pushed
    res.add(m);
  }
  res.details() = {{"scale", o.scale},
                   {"stations", o.stations},
                   {"changes_per_station", o.changes},
                   {"changes", s.total},
                   {"payload_bytes", s.payload_bytes},
                   {"request_body_bytes_before_gzip", s.body_bytes},
                   {"pushes", all_lat.size()}};
  if (!res.write(o.json_out)) return 1;
  if (!o.keep && o.data_dir.empty()) fs::remove_all(dir);
  return 0;
}
