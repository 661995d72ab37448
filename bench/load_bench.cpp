// tramsync-bench-load: several hundred devices syncing at once over TLS with
// one real server for a bounded time. Checks that nothing is lost or doubled
// and that nothing fails; prints throughput, latency and the server's memory
// as figures (no timing is asserted).
//
// Set-up (not timed): a central file (Store::init_central, 3 catalogue items,
// --clients / --per-station stations), the real `tramsync-server serve` on it
// (a child process, 127.0.0.1 port 0, self-signed certificate, default worker
// threads), and --clients device files, each enrolled as a mobile device of
// its station with a one-time code through /v1/enroll: in this process over a
// MemoryTransport to a SyncService on the same central file (over HTTPS all
// 300 would come from 127.0.0.1 and meet the enrollment rate limit of 10 a
// minute), saving the real server's URL and certificate pin as the peer. The
// device files live under /dev/shm when it exists (--client-dir): their own
// fsyncs are the devices' cost, not the server's; the central file is on disk
// (--data, default the temp folder) as in production.
//
// Timed (--seconds): one thread per device, each with the reference sync
// client (sync::sync_with_peer) over its own HTTPS transport
// (sync::make_https_transport, pinned, gzip on) and its own Store, all started
// at once. Threads, not station-cli processes: 300 threads with 300 SQLite
// files and 300 TLS connections fit easily in one process, and the client
// code is the same. Each loop: a nurse's work in the device file (a new
// patient one time in four, else a visit of one of the device's patients, and
// one time in ten a phone edit of one; 1-2 changes), then a whole sync
// (push, then pull of what the station's other devices pushed) right away,
// without think time: the server is kept as busy as the clients can make it.
// Every HTTP exchange is timed through a transport wrapper; a dropped link or
// a 503 is retried by the client itself (0.5 s doubling, 6 attempts) and
// counted as a retry; a sync that still fails is an error.
//
// After the deadline every device syncs once more (everything it wrote is
// pushed and acknowledged), all wait for each other, and each syncs again (it
// pulls what the others pushed last). Then it checks, and fails with exit 1
// when anything is off:
//   - no sync failed, no change was quarantined, no conflict recorded;
//   - every device has nothing left to push (all acknowledged);
//   - the centre holds, for each device, exactly as many changes of its origin
//     as the device's own log has (nothing lost, nothing doubled), and no
//     (origin, origin_seq) twice;
//   - the centre holds exactly the patients and visits the devices created;
//   - every device holds exactly its station's patients and visits.
// Figures: changes pushed per second and requests per second over the timed
// phase; request and whole-sync latency p50/p95/p99; the server's resident
// memory sampled from /proc every 0.5 s: the first sample after min(5 s, a
// quarter of the run), the peak, the last sample of the timed phase, and VmHWM.
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "process.h"
#include "tramsync/core/clock.h"
#include "tramsync/core/model.h"
#include "tramsync/core/replica.h"
#include "tramsync/core/store.h"
#include "tramsync/sync/auth.h"
#include "tramsync/sync/client.h"
#include "tramsync/sync/memory_transport.h"
#include "tramsync/sync/service.h"
#include "tramsync/sync/transport.h"

namespace fs = std::filesystem;
using namespace tramsync;
using namespace tramsync::bench;

namespace {

struct Options {
  int clients = 300;
  double seconds = 60;
  int per_station = 10;  // devices per station
  std::string json_out, data_dir, client_dir, server;
  int server_threads = 0;  // 0: the server's default
  bool keep = false;
};

[[noreturn]] void die(const std::string& what) {
  std::cerr << "tramsync-bench-load: " << what << "\n";
  std::exit(1);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--clients") {
      o.clients = std::stoi(value());
    } else if (a == "--seconds") {
      o.seconds = std::stod(value());
    } else if (a == "--per-station") {
      o.per_station = std::stoi(value());
    } else if (a == "--json-out") {
      o.json_out = value();
    } else if (a == "--data") {
      o.data_dir = value();
    } else if (a == "--client-dir") {
      o.client_dir = value();
    } else if (a == "--server") {
      o.server = value();
    } else if (a == "--server-threads") {
      o.server_threads = std::stoi(value());
    } else if (a == "--keep") {
      o.keep = true;
    } else {
      std::cerr << "usage: tramsync-bench-load [--clients N] [--seconds S] [--per-station N] [--json-out FILE]\n"
                   "       [--data DIR] [--client-dir DIR] [--server PATH] [--server-threads N] [--keep]\n";
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  if (o.clients < 1 || o.per_station < 1 || o.seconds <= 0) die("--clients, --per-station and --seconds must be positive");
  if (o.server.empty()) o.server = sibling_program("server", "tramsync-server");
  return o;
}

// Times every exchange of the transport it wraps.
class TimedTransport final : public sync::Transport {
 public:
  explicit TimedTransport(std::unique_ptr<sync::Transport> inner) : inner_(std::move(inner)) {}
  Result<sync::Response> roundtrip(const sync::Request& req) override {
    Stopwatch w;
    auto r = inner_->roundtrip(req);
    if (timing) latencies_ms.push_back(w.ms());
    return r;
  }
  bool timing = true;  // off after the deadline
  std::vector<double> latencies_ms;

 private:
  std::unique_ptr<sync::Transport> inner_;
};

struct Device {
  std::string file, station_id, device_id, peer_id;
  std::unique_ptr<Store> store;
  // What the nurse did, and what the syncs said.
  int64_t patients = 0, visits = 0, edits = 0;
  int64_t syncs = 0, sent = 0, received = 0, requests = 0, retries = 0;
  int64_t quarantined = 0, conflicts = 0, duplicates = 0;
  std::vector<double> request_ms, sync_ms;
  std::string error;  // the first sync that failed
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  const std::string tag = std::to_string(getpid());
  fs::path dir = o.data_dir.empty() ? fs::temp_directory_path() / ("tramsync-bench-load-" + tag) : fs::path(o.data_dir);
  fs::path client_dir = !o.client_dir.empty()          ? fs::path(o.client_dir)
                        : fs::is_directory("/dev/shm") ? fs::path("/dev/shm") / ("tramsync-bench-load-" + tag)
                                                       : dir / "clients";
  fs::create_directories(dir);
  fs::create_directories(client_dir);
  if (!fs::exists(o.server)) die("no server program at " + o.server + " (--server PATH)");
  const int stations = (o.clients + o.per_station - 1) / o.per_station;
  std::fprintf(stderr, "load: %d clients (%d stations of up to %d devices) for %.0f s; central file in %s\n", o.clients,
               stations, o.per_station, o.seconds, dir.c_str());

  // --- set-up: the centre, its stations and one code per device.
  Stopwatch setup_time;
  const std::string central = (dir / "central.tramsync").string();
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::vector<Device> devices(static_cast<size_t>(o.clients));
  std::vector<std::string> codes(devices.size());
  std::vector<std::string> station_ids;
  {
    auto st = Store::open(central);
    if (!st) die("open: " + st.error().message());
    Store& c = **st;
    if (auto r = c.init_central("Trung tâm Y tế tỉnh (load)"); !r) die("init_central: " + r.error().message());
    for (const char* code : {"PARA500", "AMLO5", "ORS"}) {
      if (auto r = c.add_item(ItemInput{code, code, "viên", "medicine", std::nullopt}); !r) die("add_item: " + r.error().message());
    }
    for (int s = 0; s < stations; ++s) {
      char code[32];
      std::snprintf(code, sizeof code, "L%03d", s);
      auto info = c.add_station(code, std::string("Trạm Y tế ") + code, "Huyện " + std::to_string(s / 10), "Tỉnh");
      if (!info) die("add_station: " + info.error().message());
      station_ids.push_back(info->id);
    }
    for (size_t k = 0; k < devices.size(); ++k) {
      char code[32];
      std::snprintf(code, sizeof code, "L%03zu", k / static_cast<size_t>(o.per_station));
      codes[k] = auth::new_enrollment_code();
      if (auto r = c.add_enrollment_code(auth::enrollment_code_hash(codes[k]), code, kRoleMobile,
                                         "máy " + std::to_string(k), now + 86'400'000);
          !r) {
        die("add_enrollment_code: " + r.error().message());
      }
    }
  }
  std::vector<std::string> extra;
  if (o.server_threads > 0) extra = {"--threads", std::to_string(o.server_threads)};
  ServerProcess server(o.server, central, (dir / "cert").string(), (dir / "server.log").string(), extra);
  {
    sync::ServiceOptions so;
    so.db_path = central;
    so.enroll_attempts_per_minute = 1'000'000;
    sync::SyncService enroller(so, std::make_shared<sync::TokenAuthorizer>());
    // Four at a time: most of it is making each device file's schema. (The
    // enrolment's change log rows go through SQLite's one writer.)
    std::atomic<size_t> next{0};
    std::vector<std::string> failures(devices.size());
    std::vector<std::thread> enrollers;
    for (int w = 0; w < 4; ++w) {
      enrollers.emplace_back([&] {
        sync::MemoryTransport t(enroller, "127.0.0.1");
        for (size_t k = next++; k < devices.size(); k = next++) {
          Device& d = devices[k];
          d.file = (client_dir / ("device-" + std::to_string(k) + ".tramsync")).string();
          for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(d.file + suffix);
          auto st = Store::open(d.file);
          if (!st) {
            failures[k] = "open " + d.file + ": " + st.error().message();
            continue;
          }
          d.store = std::move(st.value());
          sync::EnrollParams ep;
          ep.server_url = server.url();
          ep.pin = server.fingerprint();
          ep.code = codes[k];
          ep.device_name = "máy " + std::to_string(k);
          auto e = sync::enroll(*d.store, t, ep);
          if (!e) {
            failures[k] = "enroll device " + std::to_string(k) + ": " + e.error().message();
            continue;
          }
          d.peer_id = e->peer.id;
          d.device_id = e->identity.device_id;
          d.station_id = e->identity.station_id;
        }
      });
    }
    for (auto& t : enrollers) t.join();
    for (const auto& f : failures) {
      if (!f.empty()) die(f);
    }
  }
  std::fprintf(stderr, "  set-up: %.1f s\n", setup_time.seconds());

  // --- the timed phase, then the final syncs.
  const size_t n = devices.size();
  std::barrier sync_point(static_cast<std::ptrdiff_t>(n) + 1);
  const auto deadline_after = std::chrono::duration<double>(o.seconds);
  std::chrono::steady_clock::time_point t0;
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    threads.emplace_back([&, k] {
      Device& d = devices[k];
      sync::HttpsOptions ho;
      ho.url = server.url();
      ho.pin = server.fingerprint();
      auto made = sync::make_https_transport(ho);
      if (!made) d.error = "transport: " + made.error().message();
      sync_point.arrive_and_wait();  // all start together
      if (!made) {
        sync_point.arrive_and_wait();
        sync_point.arrive_and_wait();
        return;
      }
      TimedTransport t(std::move(made.value()));
      std::mt19937_64 rng(k + 1);
      auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
      std::vector<std::string> mine;
      auto sync_once = [&]() -> bool {
        Stopwatch w;
        auto r = sync::sync_with_peer(*d.store, t, d.peer_id);
        if (t.timing) d.sync_ms.push_back(w.ms());
        ++d.syncs;
        if (!r) {
          if (d.error.empty()) d.error = "sync: " + r.error().message();
          return false;
        }
        d.sent += r->sent;
        d.received += r->received;
        d.requests += r->requests;
        d.retries += r->retries;
        d.quarantined += r->server_quarantined + r->quarantined;
        d.conflicts += r->server_conflicts + r->conflicts;
        d.duplicates += r->server_duplicates;
        return true;
      };
      const auto deadline = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(deadline_after);
      while (std::chrono::steady_clock::now() < deadline) {
        if (mine.empty() || chance(0.25)) {
          PatientInput p;
          p.name = "Bệnh nhân " + std::to_string(k) + "-" + std::to_string(d.patients);
          p.sex = chance(0.5) ? "male" : "female";
          p.birth = std::to_string(1940 + static_cast<int>(rng() % 80));
          p.village = "Bản " + std::to_string(rng() % 12);
          p.phone = "09" + std::to_string(10'000'000 + rng() % 89'999'999);
          auto id = d.store->add_patient(p);
          if (!id) {
            d.error = "add_patient: " + id.error().message();
            break;
          }
          mine.push_back(*id);
          ++d.patients;
        } else {
          VisitInput v;
          v.patient_id = mine[rng() % mine.size()];
          v.temp_c = 36.5;
          v.spo2 = 97;
          v.bp_sys = 130;
          v.bp_dia = 85;
          v.symptoms = {"ho"};
          if (auto id = d.store->add_visit(v); !id) {
            d.error = "add_visit: " + id.error().message();
            break;
          }
          ++d.visits;
        }
        if (chance(0.1)) {
          PatientUpdate up;
          up.phone = "09" + std::to_string(10'000'000 + rng() % 89'999'999);
          if (auto st = d.store->update_patient(mine[rng() % mine.size()], up); !st) {
            d.error = "update_patient: " + st.error().message();
            break;
          }
          ++d.edits;
        }
        if (!sync_once()) break;
      }
      t.timing = false;
      d.request_ms = std::move(t.latencies_ms);
      // Everything this device wrote goes up; then, once every device has
      // pushed, each takes what the others pushed last.
      if (d.error.empty()) sync_once();
      sync_point.arrive_and_wait();
      if (d.error.empty()) sync_once();
      sync_point.arrive_and_wait();
    });
  }

  // The server's resident memory, sampled until the final syncs are done.
  std::vector<std::pair<double, double>> rss;  // (seconds since start, MiB)
  std::mutex rss_mu;
  std::atomic<bool> sampling{true};
  t0 = std::chrono::steady_clock::now();
  sync_point.arrive_and_wait();
  Stopwatch wall;
  std::thread sampler([&] {
    while (sampling) {
      const double mib = proc_status_mib(server.pid(), "VmRSS");
      {
        std::lock_guard<std::mutex> lock(rss_mu);
        rss.emplace_back(wall.seconds(), mib);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
  sync_point.arrive_and_wait();  // every device pushed everything
  const double timed_s = std::min(wall.seconds(), o.seconds);
  sync_point.arrive_and_wait();  // and pulled what the others pushed last
  sampling = false;
  sampler.join();
  for (auto& t : threads) t.join();
  const double peak_hwm = server.peak_mib();

  // --- checks.
  std::vector<std::string> problems;
  int64_t patients = 0, visits = 0, edits = 0, sent = 0, received = 0, requests = 0, retries = 0, syncs = 0;
  int64_t quarantined = 0, conflicts = 0, duplicates = 0, timed_requests = 0, timed_syncs = 0;
  std::vector<double> request_ms, sync_ms;
  std::map<std::string, std::pair<int64_t, int64_t>> per_station;  // patients, visits created
  for (size_t k = 0; k < n; ++k) {
    Device& d = devices[k];
    if (!d.error.empty()) problems.push_back("device " + std::to_string(k) + ": " + d.error);
    if (d.store) {
      if (int64_t left = d.store->count_to_push(d.peer_id); left != 0) {
        problems.push_back("device " + std::to_string(k) + " has " + std::to_string(left) + " changes not acknowledged");
      }
      d.store.reset();
    }
    patients += d.patients;
    visits += d.visits;
    edits += d.edits;
    sent += d.sent;
    received += d.received;
    requests += d.requests;
    retries += d.retries;
    syncs += d.syncs;
    quarantined += d.quarantined;
    conflicts += d.conflicts;
    duplicates += d.duplicates;
    timed_requests += static_cast<int64_t>(d.request_ms.size());
    timed_syncs += static_cast<int64_t>(d.sync_ms.size());
    request_ms.insert(request_ms.end(), d.request_ms.begin(), d.request_ms.end());
    sync_ms.insert(sync_ms.end(), d.sync_ms.begin(), d.sync_ms.end());
    per_station[d.station_id].first += d.patients;
    per_station[d.station_id].second += d.visits;
  }
  if (quarantined != 0) problems.push_back(std::to_string(quarantined) + " changes were quarantined");
  if (conflicts != 0) problems.push_back(std::to_string(conflicts) + " conflicts were recorded; the load has none");
  int64_t own_total = 0;
  for (size_t k = 0; k < n; ++k) {
    const Device& d = devices[k];
    const int64_t own = count_rows(d.file, "SELECT count(*) FROM changes WHERE origin = ?1", d.device_id);
    const int64_t at_centre = count_rows(central, "SELECT count(*) FROM changes WHERE origin = ?1", d.device_id);
    own_total += own;
    if (own != at_centre) {
      problems.push_back("device " + std::to_string(k) + " wrote " + std::to_string(own) + " changes, the centre holds " +
                         std::to_string(at_centre));
    }
    const auto& [sp, sv] = per_station[d.station_id];
    const int64_t dp = count_rows(d.file, "SELECT count(*) FROM patients");
    const int64_t dv = count_rows(d.file, "SELECT count(*) FROM visits");
    if (dp != sp || dv != sv) {
      problems.push_back("device " + std::to_string(k) + " holds " + std::to_string(dp) + " patients and " +
                         std::to_string(dv) + " visits; its station made " + std::to_string(sp) + " and " +
                         std::to_string(sv));
    }
  }
  const int64_t centre_patients = count_rows(central, "SELECT count(*) FROM patients");
  const int64_t centre_visits = count_rows(central, "SELECT count(*) FROM visits");
  const int64_t doubled = count_rows(
      central, "SELECT count(*) FROM (SELECT 1 FROM changes GROUP BY origin, origin_seq HAVING count(*) > 1)");
  if (centre_patients != patients || centre_visits != visits) {
    problems.push_back("the centre holds " + std::to_string(centre_patients) + " patients and " +
                       std::to_string(centre_visits) + " visits; the devices created " + std::to_string(patients) +
                       " and " + std::to_string(visits));
  }
  if (doubled != 0) problems.push_back(std::to_string(doubled) + " (origin, origin_seq) pairs are at the centre twice");
  const int server_exit = server.stop();
  if (server_exit != 0) problems.push_back("the server did not stop cleanly (exit " + std::to_string(server_exit) + ")");

  // --- figures.
  // "First" is once every device has connected and synced a few times:
  // the first sample after a quarter of the timed phase (at most 5 s).
  double rss_first = 0, rss_peak = 0, rss_last = 0;
  const double settled = std::min(5.0, o.seconds / 4);
  for (const auto& [at, mib] : rss) {
    if (rss_first == 0 && at >= settled && mib > 0) rss_first = mib;
    rss_peak = std::max(rss_peak, mib);
    if (at <= o.seconds) rss_last = mib;
  }
  Results res("load", "full");
  const std::string who = std::to_string(n) + " devices syncing at once over TLS";
  auto add = [&](const std::string& id, const std::string& what, const std::string& unit, bool higher, double v) {
    res.add(Figure::of("load." + id, "Load", who + ": " + what, unit, higher, {v}));
  };
  add("changes_per_s", "changes pushed and acknowledged per second (timed phase)", "changes/s", true,
      static_cast<double>(sent) / timed_s);
  add("requests_per_s", "HTTP requests answered per second (timed phase)", "requests/s", true,
      static_cast<double>(timed_requests) / timed_s);
  add("syncs_per_s", "whole syncs (push and pull) per second (timed phase)", "syncs/s", true,
      static_cast<double>(timed_syncs) / timed_s);
  for (auto [p, name] : {std::pair{50.0, "p50"}, std::pair{95.0, "p95"}, std::pair{99.0, "p99"}}) {
    add(std::string("request_latency.") + name + "_ms", std::string("one HTTP request, answered (") + name + ")", "ms",
        false, percentile(request_ms, p));
  }
  for (auto [p, name] : {std::pair{50.0, "p50"}, std::pair{95.0, "p95"}, std::pair{99.0, "p99"}}) {
    add(std::string("sync_latency.") + name + "_ms", std::string("one whole sync, retries included (") + name + ")",
        "ms", false, percentile(sync_ms, p));
  }
  add("server_rss_first_mib", "the server's resident memory once all devices sync (first sample after min(5 s, a quarter of the run))", "MiB", false, rss_first);
  add("server_rss_peak_mib", "the server's resident memory, largest sample", "MiB", false, rss_peak);
  add("server_rss_last_mib", "the server's resident memory, last sample of the timed phase", "MiB", false, rss_last);
  add("server_hwm_mib", "the server's peak resident memory (VmHWM)", "MiB", false, peak_hwm);
  add("retries", "requests the clients retried (a dropped link or 503 busy)", "requests", false,
      static_cast<double>(retries));
  res.details() = {{"clients", n},
                   {"stations", stations},
                   {"seconds", o.seconds},
                   {"timed_seconds", timed_s},
                   {"syncs", syncs},
                   {"requests", requests},
                   {"timed_requests", timed_requests},
                   {"changes_written", own_total},
                   {"changes_pushed", sent},
                   {"changes_pulled", received},
                   {"duplicates_recognised", duplicates},
                   {"patients", patients},
                   {"visits", visits},
                   {"phone_edits", edits},
                   {"errors", 0},
                   {"lost", 0},
                   {"server_rss_samples_mib", [&] {
                      json a = json::array();
                      for (const auto& [at, mib] : rss) a.push_back({std::round(at * 10) / 10, std::round(mib * 10) / 10});
                      return a;
                    }()}};
  std::fprintf(stderr,
               "  %lld syncs, %lld requests (%lld retried), %lld changes written, %lld pushed, %lld pulled; "
               "centre: %lld patients, %lld visits\n",
               static_cast<long long>(syncs), static_cast<long long>(requests), static_cast<long long>(retries),
               static_cast<long long>(own_total), static_cast<long long>(sent), static_cast<long long>(received),
               static_cast<long long>(centre_patients), static_cast<long long>(centre_visits));
  if (!problems.empty()) {
    for (size_t i = 0; i < problems.size() && i < 20; ++i) std::cerr << "  FAIL: " << problems[i] << "\n";
    die(std::to_string(problems.size()) + " problems (files kept in " + dir.string() + " and " + client_dir.string() + ")");
  }
  std::fprintf(stderr, "  nothing failed, lost or doubled\n");
  if (!res.write(o.json_out)) return 1;
  if (!o.keep) {
    fs::remove_all(client_dir);
    if (o.data_dir.empty()) fs::remove_all(dir);
  }
  return 0;
}
