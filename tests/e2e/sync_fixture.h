// The centre and stations as the real programs, for the sync and hub tests:
// a tramsync-server on a free loopback port with a self-signed certificate,
// station-cli files enrolled with its pinned fingerprint.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "e2e_support.h"
#include "server_process.h"

namespace tramsync::e2e {

// The centre: its file, admin commands, and the running server (started
// with `server_args` added to serve's).
class Centre {
 public:
  explicit Centre(const TempDir& dir, std::vector<std::string> server_args = {})
      : dir_(dir), db_(dir.file("central.db")) {
    server_ = ServerProcess::start(db_, dir.file("tls"), std::move(server_args));
  }
  // The server killed with SIGKILL wherever it is (a power cut at the centre).
  void kill9() { server_->kill9(); }
  // The server started again on the same file, certificate and port.
  void restart() {
    const int port = server_->port;
    server_.reset();
    server_ = ServerProcess::start(db_, dir_.file("tls"), {}, "", {}, port);
  }
  const std::string& db() const { return db_; }
  ServerProcess& server() { return *server_; }
  std::string url() const { return server_->url; }
  std::string pin() const { return server_->fingerprint; }

  json admin(std::vector<std::string> args) const {
    args.insert(args.end(), {"--db", db_, "--json"});
    CliResult r = spawn_and_capture(kTramsyncServer, args, {}, dir_.path().string());
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    return r.parsed();
  }
  std::string station(const std::string& code, const std::string& name) {
    return admin({"station", "add", "--code", code, "--name", name, "--district", "Sìn Hồ", "--province", "Lai Châu"})
        .at("enrollment_code");
  }
  std::string device_code(const std::string& station_code, const std::string& role) {
    return admin({"device", "add", "--station", station_code, "--role", role}).at("enrollment_code");
  }

 private:
  const TempDir& dir_;
  std::string db_;
  std::unique_ptr<ServerProcess> server_;
};

// station-cli on one file, enrolled with the centre.
struct Station {
  CliRunner cli;
  Station(const TempDir& dir, const std::string& name) : cli(dir.file(name + ".db"), dir.path().string()) {}
  const std::string& db() const { return cli.db(); }
  void enroll(const Centre& c, const std::string& code) {
    cli.ok({"enroll", "--server", c.url(), "--code", code, "--pin", c.pin()});
  }
  // A station file made with `init`, registered at the centre and enrolled there.
  void init_and_enroll(Centre& c, const std::string& code, const std::string& name) {
    cli.ok({"init", "--station", code, "--name", name});
    enroll(c, c.station(code, name));
  }
  json sync() { return cli.ok({"sync"}); }
  // `n` new patients through `patient import` (one process, one transaction),
  // named "<tag> <i>".
  void import_patients(int n, const std::string& tag) {
    const std::string csv = std::filesystem::path(cli.db()).replace_extension(".import.csv").string();
    {
      std::ofstream f(csv);
      f << "name,sex,birth,village,category\n";
      for (int i = 0; i < n; ++i) f << tag << " " << i << ",female,1950,Bản " << i % 17 << ",elderly\n";
    }
    cli.ok({"patient", "import", csv});
  }
  std::string patient(const std::string& name, const std::string& village = "Bản Mới") {
    return cli.ok({"patient", "add", "--name", name, "--sex", "female", "--birth", "1950", "--village", village,
                   "--category", "elderly"})
        .at("id");
  }
};

// PRAGMA integrity_check of a file: "ok", or what SQLite found.
inline std::string integrity(const std::string& db) {
  return query_texts(db, "PRAGMA integrity_check").at(0);
}

// The seed of a randomised test: the environment variable `var` if set (to
// replay a failing run), else a fresh one. Printed either way.
inline uint64_t test_seed(const char* var) {
  uint64_t seed = 0;
  if (const char* v = std::getenv(var); v && *v) {
    seed = std::stoull(v);
  } else {
    seed = (static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
  }
  std::printf("%s=%llu (set it to replay this run)\n", var, static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  return seed;
}

inline std::set<std::string> ids(const std::string& db, const std::string& sql) {
  auto v = query_texts(db, sql);
  return {v.begin(), v.end()};
}

inline std::string device_of(const std::string& station_db) {
  return query_texts(station_db, "SELECT value FROM meta WHERE key = 'device_id'").at(0);
}

// How many changes written by `origin` a file holds.
inline int64_t changes_by(const std::string& db, const std::string& origin) {
  return query_int(db, "SELECT count(*) FROM changes WHERE origin = '" + origin + "'");
}

inline std::string token_of(const std::string& station_db) {
  return json::parse(query_texts(station_db, "SELECT extra FROM peers WHERE url != ''").at(0)).at("token");
}

// A reviewer's device enrolled at the centre; its bearer token.
inline std::string reviewer_token(Centre& centre, const TempDir& dir) {
  Station reviewer(dir, "reviewer");
  reviewer.cli.ok({"enroll", "--server", centre.url(), "--code",
                   centre.admin({"device", "add", "--role", "reviewer", "--name", "district office"})
                       .at("enrollment_code"),
                   "--pin", centre.pin()});
  return token_of(reviewer.db());
}

// libfaketime (Debian package faketime, installed by scripts/setup.sh): a
// program run with faketime_env(OFFSET) lives OFFSET away ("-10d", "+732h").
inline constexpr const char* kFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
inline std::vector<std::pair<std::string, std::string>> faketime_env(const std::string& offset) {
  return {{"LD_PRELOAD", kFaketime},
          {"FAKETIME", offset},
          {"ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=0"}};  // ASan must not be preloaded after it
}
// station-cli of `s` runs at OFFSET from now on; at_real_time(s) undoes it.
inline void at_fake_time(Station& s, const std::string& offset) {
  for (const auto& [k, v] : faketime_env(offset)) s.cli.set_env(k, v);
}
inline void at_real_time(Station& s) {
  s.cli.unset_env("LD_PRELOAD");
  s.cli.unset_env("FAKETIME");
}

// station-cli ARGS... in the background, its output discarded; the caller
// waits for it (waitpid) or kills it.
inline pid_t spawn_station_cli(std::vector<std::string> args) {
  args.insert(args.begin(), kStationCli);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error(std::string("cannot start station-cli: ") + std::strerror(rc));
  return pid;
}

}  // namespace tramsync::e2e
