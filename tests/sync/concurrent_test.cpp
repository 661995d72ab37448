// Many devices syncing at once with one server in this process: the real
// HttpsServer (TLS, worker pool, FairPool, request log) over the real
// SyncService, each device a thread with its own file and HTTPS transport.
// What it proves is exact counts under concurrency; its other purpose is to
// give ThreadSanitizer (scripts/test.sh's build-tsan) every shared structure
// of the server to watch: the service's connection pool and single writer,
// db::WriteTxn's process-wide lock, metrics, the logger and the worker pool.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../core/fixture.h"
#include "support/sqlite_query.h"
#include "tramsync/sync/auth.h"
#include "tramsync/sync/client.h"
#include "tramsync/sync/https_server.h"
#include "tramsync/sync/request_log.h"
#include "tramsync/sync/tls.h"
#include "tramsync/sync/transport.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {

int64_t now_ms() { return SystemClock().now_ms(); }

// A central file served over TLS on 127.0.0.1 by a thread of this process.
class LiveCentre {
 public:
  LiveCentre(TempDir& dir, unsigned threads) : path_(dir.file("central.db")) {
    admin_ = must(Store::open(path_));
    must(admin_->init_central("Trung tâm Y tế huyện"));
    tls_ = must(tls::ensure_self_signed(dir.file("tls")));
    log_file_ = std::tmpfile();
    REQUIRE(log_file_ != nullptr);
    log_ = std::make_unique<sync::RequestLogger>(log_file_);
    sync::ServerConfig c;
    c.db_path = path_;
    c.listen = must(sync::parse_listen_address("127.0.0.1:0"));
    c.cert_path = tls_.cert_path;
    c.key_path = tls_.key_path;
    c.threads = threads;
    server_ = must(sync::HttpsServer::create(c, *log_));
    port_ = must(server_->bind());
    thread_ = std::thread([this] { server_->run(); });
  }
  ~LiveCentre() {
    while (!server_->stop()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    thread_.join();
    std::fclose(log_file_);
  }
  LiveCentre(const LiveCentre&) = delete;
  LiveCentre& operator=(const LiveCentre&) = delete;

  // Registers a station and returns a one-time code for its laptop.
  std::string station(const std::string& code) {
    must(admin_->add_station(code, "Trạm Y tế " + code, "Sìn Hồ", "Lai Châu"));
    std::string enrollment = auth::new_enrollment_code();
    must(admin_->add_enrollment_code(auth::enrollment_code_hash(enrollment), code, kRoleStation, "",
                                     now_ms() + 3600'000));
    return enrollment;
  }

  std::unique_ptr<sync::Transport> link() const {
    sync::HttpsOptions o;
    o.url = "https://127.0.0.1:" + std::to_string(port_);
    o.pin = tls_.fingerprint;
    return must(sync::make_https_transport(o));
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const std::string& pin() const { return tls_.fingerprint; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<Store> admin_;
  tls::CertificateFiles tls_;
  std::FILE* log_file_ = nullptr;
  std::unique_ptr<sync::RequestLogger> log_;
  std::unique_ptr<sync::HttpsServer> server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("eight stations syncing at once with one server over TLS: every change stored once, every station "
          "gets back exactly its own",
          "[sync][concurrent]") {
  TempDir dir;
  // Fewer workers than stations, so connections wait and FairPool rotates them.
  LiveCentre centre(dir, 4);
  constexpr int kStations = 8, kPatients = 40, kRounds = 3;

  struct Laptop {
    std::unique_ptr<Store> store;
    std::string peer, code;
  };
  std::vector<Laptop> laptops(kStations);
  for (int i = 0; i < kStations; ++i) {
    Laptop& l = laptops[i];
    l.code = "TYT-" + std::to_string(i);
    l.store = must(Store::open(dir.file(l.code + ".tramsync")));
    must(l.store->init_station(l.code, "Trạm Y tế " + l.code, "laptop"));
    auto link = centre.link();
    l.peer = must(sync::enroll(*l.store, *link, {centre.url(), centre.station(l.code), centre.pin(), "", "laptop"}))
                 .peer.id;
  }

  // Each station works and syncs in its own thread, several rounds, so syncs
  // push and pull while the others do. No Catch2 assertion in these threads
  // (Catch2 is not thread-safe): they note what failed, checked after.
  std::vector<std::unique_ptr<sync::Transport>> links;
  for (int i = 0; i < kStations; ++i) links.push_back(centre.link());
  std::atomic<int> failures{0};
  std::vector<std::string> errors(kStations);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStations; ++i) {
    threads.emplace_back([&, i] {
      Laptop& l = laptops[i];
      sync::SyncOptions o;
      o.batch_changes = 16;  // several pushes per sync, interleaved with the others'
      o.pull_limit = 16;
      o.backoff_initial_ms = 20;
      for (int round = 0; round < kRounds; ++round) {
        for (int p = 0; p < kPatients / kRounds + 1; ++p) {
          auto id = l.store->add_patient(patient_input("Người bệnh " + std::to_string(i) + "-" + std::to_string(p), "Bản Mới", {"elderly", "chronic"}, "1948", "male"));
          if (!id) {
            errors[i] = id.error().message();
            ++failures;
            return;
          }
        }
        auto r = sync::sync_with_peer(*l.store, *links[i], l.peer, o);
        if (!r) {
          errors[i] = r.error().message();
          ++failures;
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kStations; ++i) INFO(laptops[i].code << ": " << errors[i]);
  REQUIRE(failures == 0);

  // One last quiet sync each, one at a time: nothing left to send, and every
  // change each laptop wrote is at the centre (once: (origin, origin_seq) is unique there).
  const int per_station = kRounds * (kPatients / kRounds + 1);
  for (auto& l : laptops) {
    auto link = centre.link();
    auto r = must(sync::sync_with_peer(*l.store, *link, l.peer));
    CHECK(r.sent == 0);
    CHECK(l.store->count_to_push(l.peer) == 0);
    const std::string origin = must(l.store->identity()).device_id;
    const std::string mine = "SELECT count(*) FROM changes WHERE origin = '" + origin + "'";
    CHECK(testing::query_int(centre.path(), mine) == testing::query_int(dir.file(l.code + ".tramsync"), mine));
    // Its own patients and no other station's.
    CHECK(testing::query_int(dir.file(l.code + ".tramsync"), "SELECT count(*) FROM patients") == per_station);
  }
  CHECK(testing::query_int(centre.path(), "SELECT count(*) FROM patients") == kStations * per_station);
  CHECK(testing::query_texts(centre.path(), "PRAGMA integrity_check") == std::vector<std::string>{"ok"});
}
