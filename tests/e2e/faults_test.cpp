// Real processes, real faults (issue 6): the real station-cli and
// tramsync-server killed with SIGKILL at random moments of syncs, a faulty
// link between them (cut, stalled, slow), a station file restored from an old
// backup or copied to a second laptop, and a full disk on either side. Every
// randomised test prints its seed and replays with the variable it names.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "cli_runner.h"
#include "e2e_support.h"
#include "server_process.h"
#include "support/tcp_proxy.h"
#include "sync_fixture.h"

namespace tramsync::e2e {
namespace {

using Catch::Matchers::Contains;
using Clock = std::chrono::steady_clock;

// Waits for a background station-cli; its exit code, or 128 + signal.
int wait_for(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

// SIGKILLs `pid` after `delay` unless it exits first; true if the kill landed
// (the process was still running).
bool kill_after(pid_t pid, std::chrono::microseconds delay) {
  std::this_thread::sleep_for(delay);
  ::kill(pid, SIGKILL);
  return wait_for(pid) == 128 + SIGKILL;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Exactly what every node should hold once all have synced: each device's
// changes, the same number at every node that holds them and at the centre;
// `patients` per file; no quarantine at the centre.
struct Expected {
  std::vector<std::pair<Station*, int64_t>> patients;  // per station file
  int64_t centre_patients = 0;
  int64_t centre_visits = 0;
};

void check_exact(Centre& centre, const std::vector<std::vector<Station*>>& stations, const Expected& e) {
  CHECK(integrity(centre.db()) == "ok");
  CHECK(query_int(centre.db(), "SELECT count(*) FROM patients") == e.centre_patients);
  CHECK(query_int(centre.db(), "SELECT count(*) FROM visits") == e.centre_visits);
  CHECK(query_int(centre.db(), "SELECT count(*) FROM quarantine") == 0);
  for (const auto& [s, n] : e.patients) {
    INFO(s->db());
    CHECK(integrity(s->db()) == "ok");
    CHECK(query_int(s->db(), "SELECT count(*) FROM patients") == n);
  }
  // Devices of one station hold each other's changes, exactly as many as the
  // writer (UNIQUE(origin, origin_seq) rules out twice; equal counts rule out lost).
  for (const auto& group : stations) {
    for (Station* writer : group) {
      const std::string origin = device_of(writer->db());
      const int64_t made = changes_by(writer->db(), origin);
      INFO("changes of " << writer->db());
      CHECK(changes_by(centre.db(), origin) == made);
      for (Station* reader : group) CHECK(changes_by(reader->db(), origin) == made);
    }
  }
}

}  // namespace

TEST_CASE("station-cli sync killed with SIGKILL at 50 random moments: the file stays sound, nothing lost or twice",
          "[e2e][faults][crash]") {
  const uint64_t seed = test_seed("TRAMSYNC_CRASH_SEED");
  std::mt19937_64 rng(seed);
  TempDir dir;
  Centre centre(dir);
  Station laptop(dir, "laptop");
  laptop.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  Station tablet(dir, "tablet");  // the device whose syncs are killed
  tablet.enroll(centre, centre.device_code("TYT-SINHO", "mobile"));
  const std::string patient = laptop.patient("Nguyễn Văn An");
  laptop.sync();
  tablet.sync();

  // Each round both devices write (a CSV import on each, 20 patients on the
  // laptop, 10 on the tablet, and a visit on the tablet), the laptop syncs, and
  // the tablet's sync, in batches of 5 both ways, is killed a random time
  // into it. The span is the time a whole
  // sync of one round takes, measured here, so the kills fall across it on a
  // fast or a slow (sanitizer) build alike.
  const int laptop_round = 20, tablet_round = 10;
  const std::vector<std::string> sync_args{"--db", tablet.db(), "sync", "--batch", "5"};
  int rounds = 0, kills = 0, partial_push = 0, partial_pull = 0;
  int64_t visits = 0;
  auto write_round = [&] {
    ++rounds;
    laptop.import_patients(laptop_round, "Laptop r" + std::to_string(rounds));
    tablet.import_patients(tablet_round, "Tablet r" + std::to_string(rounds));
    tablet.cli.ok({"visit", "add", patient, "--temp", "37." + std::to_string(rounds % 10)});
    ++visits;
    laptop.sync();
  };
  const std::string origin_laptop = device_of(laptop.db()), origin_tablet = device_of(tablet.db());
  auto patients_of = [](const std::string& db, const std::string& origin) {
    return query_int(db, "SELECT count(*) FROM changes WHERE kind = 'patient' AND origin = '" + origin + "'");
  };
  write_round();
  auto t0 = Clock::now();
  REQUIRE(wait_for(spawn_station_cli(sync_args)) == 0);
  const double span = seconds_since(t0);
  const auto started = Clock::now();
  while (kills < 50 && rounds < 150) {
    write_round();
    // What each direction had moved before this sync, and what it has to move.
    const int64_t pulled = patients_of(tablet.db(), origin_laptop), to_pull = patients_of(laptop.db(), origin_laptop);
    const int64_t pushed = patients_of(centre.db(), origin_tablet), to_push = patients_of(tablet.db(), origin_tablet);
    // A third of the kills fall anywhere in the span; a third are aimed at
    // the push, a third at the pull (each quicker than the whole): a random
    // 0-40 ms after the first batch of that direction is stored.
    const int aim = rounds % 3;  // 0: anywhere, 1: the push, 2: the pull
    auto delay = std::chrono::microseconds(
        std::uniform_int_distribution<int64_t>(0, aim ? 40'000 : static_cast<int64_t>(span * 1e6))(rng));
    const pid_t pid = spawn_station_cli(sync_args);
    bool exited = false;  // (reaped: finished before its first batch was seen)
    if (aim) {
      int st = 0;
      const auto give_up = Clock::now() + std::chrono::seconds(60);
      auto moved = [&] {
        return aim == 1 ? patients_of(centre.db(), origin_tablet) > pushed
                        : patients_of(tablet.db(), origin_laptop) > pulled;
      };
      while (!moved() && Clock::now() < give_up && !exited) {
        exited = waitpid(pid, &st, WNOHANG) == pid;
        if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    if (!exited && kill_after(pid, delay)) ++kills;
    INFO("round " << rounds << ", killed " << delay.count() << " us after "
                   << (aim == 0 ? "start" : aim == 1 ? "the first push" : "the first page pulled"));
    REQUIRE(integrity(tablet.db()) == "ok");
    // A kill between two batches leaves some of a direction's batches stored.
    const int64_t now_pulled = patients_of(tablet.db(), origin_laptop);
    const int64_t now_pushed = patients_of(centre.db(), origin_tablet);
    partial_pull += now_pulled > pulled && now_pulled < to_pull;
    partial_push += now_pushed > pushed && now_pushed < to_push;
    REQUIRE(now_pulled <= to_pull);
    REQUIRE(now_pushed <= to_push);
  }
  std::printf("client kills: %d in %d rounds (%d mid-push, %d mid-pull between batches), sync span %.3f s, %.1f s\n",
              kills, rounds, partial_push, partial_pull, span, seconds_since(started));
  CHECK(kills == 50);
  CHECK(partial_push > 0);
  CHECK(partial_pull > 0);

  tablet.sync();
  laptop.sync();
  tablet.sync();
  const int64_t all = 1 + (laptop_round + tablet_round) * rounds;
  Expected e;
  e.centre_patients = all;
  e.centre_visits = visits;
  e.patients = {{&laptop, all}, {&tablet, all}};
  check_exact(centre, {{&laptop, &tablet}}, e);
  CHECK(query_int(laptop.db(), "SELECT count(*) FROM visits") == visits);
}

TEST_CASE("the server killed with SIGKILL 50 times during pushes from three devices: its file stays sound, "
          "nothing lost or twice",
          "[e2e][faults][crash]") {
  const uint64_t seed = test_seed("TRAMSYNC_CRASH_SEED");
  std::mt19937_64 rng(seed);
  TempDir dir;
  Centre centre(dir);
  Station a(dir, "sinho-laptop"), b(dir, "sinho-tablet"), c(dir, "phangsolin-laptop");
  a.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  b.enroll(centre, centre.device_code("TYT-SINHO", "mobile"));
  c.init_and_enroll(centre, "TYT-PHANGSOLIN", "Trạm Y tế xã Phăng Sô Lin");
  std::vector<Station*> all{&a, &b, &c};

  // Each round every device imports a few patients, then all three sync at
  // once in small batches, with one attempt per request (a dead server ends
  // the sync at once: the next round's sync takes over), and the server is
  // killed a random time into the span of such a round.
  const int per_round = 6;
  const int64_t kKills = 50;
  int rounds = 0;
  auto write_round = [&] {
    ++rounds;
    for (Station* s : all) s->import_patients(per_round, std::filesystem::path(s->db()).stem().string() + " r" +
                                                              std::to_string(rounds));
  };
  auto sync_all = [&] {
    std::vector<pid_t> pids;
    for (Station* s : all) {
      pids.push_back(spawn_station_cli({"--db", s->db(), "sync", "--batch", "2", "--attempts", "1"}));
    }
    return pids;
  };
  write_round();
  auto t0 = Clock::now();
  for (pid_t p : sync_all()) REQUIRE(wait_for(p) == 0);
  const double span = seconds_since(t0);
  const auto started = Clock::now();
  int64_t kills = 0, failed_syncs = 0;
  for (; kills < kKills; ++kills) {
    write_round();
    auto pids = sync_all();
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int64_t>(0, span * 1e6)(rng));
    std::this_thread::sleep_for(delay);
    centre.kill9();
    for (pid_t p : pids) failed_syncs += wait_for(p) != 0;
    INFO("round " << rounds << ", server killed after " << delay.count() << " us");
    REQUIRE(integrity(centre.db()) == "ok");
    centre.restart();
  }
  std::printf("server kills: %lld in %d rounds, %lld of %d syncs cut short, round span %.3f s, %.1f s\n",
              static_cast<long long>(kills), rounds, static_cast<long long>(failed_syncs), 3 * rounds, span,
              seconds_since(started));
  CHECK(failed_syncs > 0);

  for (int pass = 0; pass < 2; ++pass) {
    for (Station* s : all) s->sync();
  }
  const int64_t per_device = per_round * rounds;
  Expected e;
  e.centre_patients = 3 * per_device;
  e.patients = {{&a, 2 * per_device}, {&b, 2 * per_device}, {&c, per_device}};
  check_exact(centre, {{&a, &b}, {&c}}, e);
}

TEST_CASE("a link that cuts connections, stalls and crawls at 2G speed: sync completes exactly and says why it "
          "retried",
          "[e2e][faults][link]") {
  const uint64_t seed = test_seed("TRAMSYNC_LINK_SEED");
  TempDir dir;
  Centre centre(dir);
  Station laptop(dir, "laptop");
  laptop.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  Station tablet(dir, "tablet");
  tablet.enroll(centre, centre.device_code("TYT-SINHO", "mobile"));
  laptop.import_patients(100, "Laptop");
  laptop.sync();
  tablet.import_patients(100, "Tablet");
  const std::string origin_tablet = device_of(tablet.db());

  // The tablet reaches the centre only through the proxy, as over a mobile
  // network: 40 kbit/s each way, 300 ms round trip; the first 4 connections
  // cut after 0.3-10 KB, and every 2-8 KB a stall of 1-3 s (longer than the
  // 2 s the CLI is told to wait for a silent link, or shorter), 3 at most, so
  // the retries (backing off from 0.5 s) fit the test.
  testing::TcpProxy proxy;
  std::string err;
  REQUIRE(proxy.start(centre.server().port, &err));
  testing::TcpProxy::Shape g2;
  g2.rate_bps = 40'000;
  g2.delay_ms = 150;
  proxy.set_shape(g2);
  testing::TcpProxy::Faults f;
  f.seed = seed;
  f.cut = 1.0;
  f.max_cuts = 4;
  f.cut_min_bytes = 300;
  f.cut_max_bytes = 10'000;
  f.stall_min_bytes = 2'000;
  f.stall_max_bytes = 8'000;
  f.stall_min_ms = 1000;
  f.stall_max_ms = 3000;
  f.max_stalls = 3;
  proxy.set_faults(f);
  {
    // The file says where the server is: point it at the proxy.
    testing::SqliteDb(tablet.db()).exec("UPDATE peers SET url = 'https://127.0.0.1:" + std::to_string(proxy.port()) +
                                        "' WHERE url != ''");
  }
  const auto started = Clock::now();
  CliResult r = tablet.cli.run({"sync", "--batch", "50", "--attempts", "20", "--timeout", "2"});
  const double took = seconds_since(started);
  const auto faults = proxy.fault_counts();
  const auto bytes = proxy.counts();
  std::printf("faulty link: %lld cuts, %lld stalls, %lld connections, %lld bytes up, %lld down, %.1f s\n",
              static_cast<long long>(faults.cuts), static_cast<long long>(faults.stalls),
              static_cast<long long>(bytes.connections), static_cast<long long>(bytes.up),
              static_cast<long long>(bytes.down), took);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  CHECK(faults.cuts > 0);
  CHECK(faults.stalls > 0);
  // The CLI said what it was doing: each cut is a retry with its reason.
  CHECK_THAT(r.out, Contains("retries"));
  CHECK_THAT(r.err, Contains("link problem"));
  CHECK_THAT(r.err, Contains("retry"));
  laptop.sync();
  Expected e;
  e.centre_patients = 200;
  e.patients = {{&laptop, 200}, {&tablet, 200}};
  check_exact(centre, {{&laptop, &tablet}}, e);
  CHECK(changes_by(centre.db(), origin_tablet) == 100);
}

TEST_CASE("a station file restored from an old backup, and one copied to a second laptop, keep working and "
          "syncing: nothing made afterwards is lost, what the centre had comes back",
          "[e2e][faults][restore]") {
  TempDir dir;
  Centre centre(dir);
  Station laptop(dir, "laptop");
  laptop.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  laptop.patient("Trước sao lưu 1");
  laptop.patient("Trước sao lưu 2");
  laptop.sync();
  const std::string old_device = device_of(laptop.db());
  backup_file(laptop.db(), dir.file("backup.tramsync"));  // Monday's backup

  const std::string after = laptop.patient("Sau sao lưu");
  laptop.cli.ok({"visit", "add", after, "--temp", "38.1"});
  laptop.sync();
  // The file is copied onto a second laptop (while closed, as an operator would).
  std::filesystem::copy_file(laptop.db(), dir.file("second.db"));
  Station second(dir, "second");
  // The first laptop's disk dies on Wednesday: Monday's backup is put back.
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(laptop.db() + ext);
  std::filesystem::copy_file(dir.file("backup.tramsync"), laptop.db());
  REQUIRE(query_int(laptop.db(), "SELECT count(*) FROM patients") == 2);

  // The restored laptop writes on; its sync sends that under a new identity
  // and gets back what it had lost.
  const std::string restored_new = laptop.patient("Sau khôi phục");
  CliResult r = laptop.cli.run({"sync"});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("old backup or a copy"));
  const std::string new_device = device_of(laptop.db());
  CHECK(new_device != old_device);
  CHECK(ids(laptop.db(), "SELECT id FROM patients") == ids(centre.db(), "SELECT id FROM patients"));
  CHECK(query_int(laptop.db(), "SELECT count(*) FROM patients") == 4);
  CHECK(query_int(laptop.db(), "SELECT count(*) FROM visits") == 1);
  CHECK(query_int(centre.db(), "SELECT count(*) FROM patients WHERE id = '" + restored_new + "'") == 1);

  // The copy, still the old device, writes and syncs too: nothing of it is
  // taken for a duplicate of the restored laptop's.
  second.patient("Máy thứ hai");
  json s2 = second.sync();
  CHECK(s2.at("new_device_id").is_null());
  CHECK(device_of(second.db()) == old_device);
  laptop.patient("Ngày sau");
  laptop.sync();
  second.sync();
  Expected e;
  e.centre_patients = 6;
  e.centre_visits = 1;
  e.patients = {{&laptop, 6}, {&second, 6}};
  check_exact(centre, {{&laptop, &second}}, e);
  CHECK(query_int(centre.db(), "SELECT count(*) FROM visits") == 1);
}

namespace {
// A write beyond the limit fails with EFBIG instead of killing the writer.
void ignore_sigxfsz() { ::signal(SIGXFSZ, SIG_IGN); }
int64_t file_size(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}
}  // namespace

TEST_CASE("a full disk at the station during a sync: a clear error, the file sound with what was stored, and the "
          "next sync completes",
          "[e2e][faults][disk]") {
  ignore_sigxfsz();  // inherited by station-cli: a write past the limit fails with EFBIG
  TempDir dir;
  Centre centre(dir);
  Station laptop(dir, "laptop");
  laptop.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  laptop.import_patients(2000, "Bệnh nhân");
  laptop.sync();
  Station tablet(dir, "tablet");
  tablet.enroll(centre, centre.device_code("TYT-SINHO", "mobile"));
  const std::string origin = device_of(laptop.db());

  // No file of the tablet may grow past 300 KB more than the file is now.
  const int64_t limit = file_size(tablet.db()) + 300 * 1024;
  tablet.cli.set_wrapper({"/usr/bin/prlimit", "--fsize=" + std::to_string(limit) + ":"});
  CliResult full = tablet.cli.run({"sync", "--batch", "100"});
  tablet.cli.set_wrapper({});
  INFO(full.describe());
  CHECK(full.exit_code == 1);
  CHECK_THAT(full.err, Contains("disk is full"));
  CHECK(integrity(tablet.db()) == "ok");
  // Whole pages only: the patients held are the changes held, less than all.
  const int64_t held = query_int(tablet.db(), "SELECT count(*) FROM patients");
  std::printf("station disk full: %lld of 2000 patients stored before the limit of %lld bytes\n",
              static_cast<long long>(held), static_cast<long long>(limit));
  CHECK(held < 2000);
  CHECK(query_int(tablet.db(), "SELECT count(*) FROM changes WHERE kind = 'patient' AND origin = '" + origin + "'") ==
        held);

  tablet.sync();
  CHECK(query_int(tablet.db(), "SELECT count(*) FROM patients") == 2000);
  CHECK(changes_by(tablet.db(), origin) == changes_by(centre.db(), origin));
}

TEST_CASE("a full disk at the centre during pushes: 507 with a clear message, the server keeps serving, nothing "
          "half-written, and the next sync completes",
          "[e2e][faults][disk]") {
  ignore_sigxfsz();  // inherited by the server
  TempDir dir;
  Centre centre(dir);
  Station laptop(dir, "laptop");
  laptop.init_and_enroll(centre, "TYT-SINHO", "Trạm Y tế xã Sìn Hồ");
  laptop.import_patients(2000, "Bệnh nhân");
  const std::string origin = device_of(laptop.db());

  // The centre's files may grow 400 KB more: a few batches fit, then the disk is full.
  const std::string central = centre.db();
  // (The soft limit only: raising a hard limit again needs CAP_SYS_RESOURCE.)
  rlimit lim{};
  REQUIRE(::prlimit(centre.server().pid(), RLIMIT_FSIZE, nullptr, &lim) == 0);
  const rlim_t unlimited = lim.rlim_cur;
  lim.rlim_cur = static_cast<rlim_t>(file_size(central) + file_size(central + "-wal") + 400 * 1024);
  REQUIRE(::prlimit(centre.server().pid(), RLIMIT_FSIZE, &lim, nullptr) == 0);
  CliResult full = laptop.cli.run({"sync", "--batch", "100"});
  INFO(full.describe());
  CHECK(full.exit_code == 1);
  CHECK_THAT(full.err, Contains("disk is full"));
  CHECK_THAT(full.err, Contains("507"));
  bool answered_507 = false;
  for (const auto& line : centre.server().log_lines()) {
    answered_507 = answered_507 || line.find("\"status\":507") != std::string::npos;
  }
  CHECK(answered_507);
  // Still serving, the file sound, and exactly the acknowledged batches stored.
  auto st = https_get(centre.server().port, "/v1/status");
  REQUIRE(st);
  CHECK(st->status == 200);
  CHECK(integrity(central) == "ok");
  const int64_t stored = changes_by(central, origin);
  json status = laptop.cli.ok({"status"});
  const int64_t pending = status.at("servers").at(0).at("pending").get<int64_t>();
  std::printf("centre disk full: %lld changes stored, %lld pending at the station\n", static_cast<long long>(stored),
              static_cast<long long>(pending));
  CHECK(stored + pending == changes_by(laptop.db(), origin));
  CHECK(pending > 0);
  CHECK(query_int(central, "SELECT count(*) FROM patients") == stored - (changes_by(laptop.db(), origin) - 2000));

  // Space again: the same server, the next sync completes.
  lim.rlim_cur = unlimited;
  REQUIRE(::prlimit(centre.server().pid(), RLIMIT_FSIZE, &lim, nullptr) == 0);
  laptop.sync();
  CHECK(query_int(central, "SELECT count(*) FROM patients") == 2000);
  CHECK(changes_by(central, origin) == changes_by(laptop.db(), origin));
}

}  // namespace tramsync::e2e
