// tramsync-bench-sync: what a sync costs a station and its devices, in seconds,
// bytes on the wire and client memory (issue 7). Prints figures; asserts no time.
//
// What runs: the real programs. `tramsync-server serve` (HTTPS, a self-signed
// certificate, 127.0.0.1 port 0) and `station-cli` as child processes; the
// station's data is built in this process through the core Store API.
//
// 1. The station (built once per invocation, then copied for every run). A
//    laptop file made with `station-cli init`, 10 items added with `station-cli
//    item add` and one big lot received with `station-cli stock receive` (the
//    lot the home visits below dispense from). The rest is generated as Change
//    objects shaped exactly as the station's own writes (the payloads of
//    Store::add_patient, add_visit, dispense, receive and void_event) under the
//    laptop's own origin (origin_seq following its log, hlc from each record's
//    time) and stored with Store::apply_changes in batches of 5,000 (the path a
//    push takes at the centre; from_peer = the laptop itself, so the changes are
//    pushed like local ones). Going through add_visit etc. one transaction
//    each with synchronous=FULL would take minutes at full size; apply_changes
//    runs the same validation and writes the same rows and log.
//    Sizes: scale x 10,000 patients (all active; 25 % chronic, 20 % elderly,
//    3 % covid-home; created over the last 400 days) and scale x 100,000
//    events: one receipt per item and quarter (4 lots per item over the last
//    year, quantities covering what is dispensed from them) plus the big lot,
//    55 % visits (vitals as the nurse types them) and 45 % dispenses
//    (chronic patients 30 tablets for 30 days from items 1-5, others 1-20 of
//    items 6-10, from the quarter's lot), 0.5 % voids of visits. No households,
//    staff, waste or conflicts.
//
// 2. Every run (--runs) starts from a fresh centre: `tramsync-server station
//    add` (its code), `serve`, the laptop copy enrolls (`station-cli enroll`)
//    and its first `station-cli sync` pushes everything: the first push
//    (seconds, changes/s, bytes). Checked: the sync sent every change of the
//    laptop, the centre quarantined none and holds exactly that many changes of
//    the laptop's origin.
//    Initial sync: `tramsync-server device add` makes a code; a NEW file enrolls
//    and syncs (`station-cli enroll`, `station-cli sync`, two child processes):
//    wall time of both, the client's peak resident memory (ru_maxrss of each
//    child from wait4, the larger; children are spawned by a small helper
//    forked at start, because Linux counts the image a child was spawned from
//    in its ru_maxrss), bytes. Checked: the new file ends with
//    exactly the laptop's patients, visits, stock movements, voids and items.
//    Incremental: the laptop syncs twice with nothing of its own (the first
//    takes the new device's registration; the second is the empty sync). One
//    home visit: `station-cli visit add --temp 37.8 --spo2 96 --bp 150/95
//    --pulse 88 --symptom ho` and `station-cli dispense --qty 60 --days 60`
//    (docs/protocol.md §11), then `station-cli sync`. Then the same at 2G, and
//    a day of a mobile team at 2G: 50 visits each with a dispense and 10
//    patient edits (phone), written offline through the Store API (one
//    transaction each, as station-cli does), then one `station-cli sync`.
//    Last, per-request bytes of one more home visit: the server is restarted
//    on the same file with --insecure-http and the laptop syncs in this
//    process (sync_with_peer over the reference HTTP transport, http://) so
//    the proxy sees the HTTP messages in clear and splits each into request
//    line + headers, body, response headers, body.
//
// Bytes, two ways: (a) what the client's transport counts (station-cli sync
// --json bytes_sent/bytes_received: bodies as sent, compressed, plus request
// and status lines and headers, as sync/src/http_transport.cpp estimates
// them); (b) what crossed TCP, TLS included, counted by a proxy on 127.0.0.1
// between station-cli and the server (tests/support/tcp_proxy.h). station-cli opens
// a new connection per run, so (b) includes a full TLS handshake (no session
// resumption between processes); the handshake alone is measured in this
// process: the first GET /v1/status on a new connection through the proxy,
// minus the same request repeated on that connection. TCP/IP headers are not
// counted (about 40 bytes per segment on a real link).
//
// 2G: the proxy shapes each direction to --rate-kbit (default 40 kbit/s) and
// adds --rtt-ms (default 300 ms) of round trip, half each way, plus one round
// trip for the TCP handshake before the client's first byte (tests/support/tcp_proxy.h).
// No loss, no slow start.
//
// Limits (measured in the same run):
//   - bytes: the payload alone, the changes' JSON as a push body
//     (wire::encode_batch) gzipped at zlib's default level as the client does,
//     in one piece; the ratio is the protocol's overhead (HTTP, TLS, paging,
//     status and pull requests, the answers);
//   - initial sync and first push seconds: plain SQLite storing the same
//     change rows (the log table with its two indexes, one prepared INSERT per
//     row, one transaction, WAL, synchronous=FULL, a fresh file): the floor
//     of keeping what arrives durably, without records, merges, HTTP or TLS.
//     (The raw transfer of the bytes over loopback would be milliseconds:
//     no useful floor.)
//   - client peak memory: `station-cli --help`'s peak, the program and its
//     libraries doing nothing;
//   - 2G seconds: the payload's gzipped bytes at the link rate plus one round
//     trip (one request carrying only the payload).
//
// Left out: the server's own time and memory as figures (its peak is in the
// details), households/waste/staff records, conflicts, mobile devices narrowed
// to villages, a station hub between the tablet and the centre, and retries
// on a lossy link.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "support/tcp_proxy.h"
#include "tramsync/core/clock.h"
#include "tramsync/core/hlc.h"
#include "tramsync/core/model.h"
#include "tramsync/core/store.h"
#include "tramsync/core/time.h"
#include "tramsync/sync/client.h"
#include "tramsync/sync/transport.h"
#include "tramsync/sync/wire.h"

extern char** environ;

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace tramsync;
using tramsync::bench::Figure;
using tramsync::bench::Results;
using tramsync::bench::Stopwatch;
using tramsync::testing::TcpProxy;

namespace {

constexpr int64_t kDayMs = 86'400'000;
constexpr const char* kStationCode = "TYT-BENCH";
constexpr const char* kStationName = "Trạm Y tế xã Bench";
constexpr const char* kHomeVisitItem = "AMLO5";
constexpr const char* kHomeVisitLot = "HV-2028";
constexpr int kMobileVisits = 50;
constexpr int kMobileEdits = 10;

struct ItemSpec {
  const char* code;
  const char* name;
  const char* unit;
  const char* kind;
};
// Items 0-4: chronic medicines (30 days at a time); 5-9: the rest.
const ItemSpec kItems[] = {
    {"AMLO5", "Amlodipin 5mg", "viên", "medicine"},        {"METF500", "Metformin 500mg", "viên", "medicine"},
    {"LOSA50", "Losartan 50mg", "viên", "medicine"},       {"GLIC30", "Gliclazid 30mg", "viên", "medicine"},
    {"ATOR10", "Atorvastatin 10mg", "viên", "medicine"},   {"PARA500", "Paracetamol 500mg", "viên", "medicine"},
    {"ORS", "Oresol", "gói", "medicine"},                  {"KHAUTRANG", "Khẩu trang y tế", "cái", "ppe"},
    {"TESTNHANH", "Test nhanh COVID-19", "test", "test-kit"}, {"BONG", "Bông y tế", "gói", "consumable"},
};
constexpr int kItemCount = 10;
constexpr int kChronicItems = 5;

struct Options {
  bool quick = false;
  int runs = 3;
  double scale = 1.0;
  bool scale_given = false, runs_given = false;
  std::string json_out, data, server, station_cli;
  double rate_kbit = 40;
  int64_t rtt_ms = 300;
};

[[noreturn]] void usage(int code) {
  std::cout << "usage: tramsync-bench-sync [--quick] [--runs N] [--scale F] [--json-out FILE] [--data DIR]\n"
               "         [--server PATH] [--station-cli PATH] [--rate-kbit K] [--rtt-ms MS]\n"
               "  --quick        scale 0.01 (100 patients, 1,000 events), 3 runs\n"
               "  --scale F      data sizes x F (1 = 10,000 patients and 100,000 events; default 1)\n"
               "  --runs N       runs, each from a fresh centre (default 5; --quick 3)\n"
               "  --data DIR     keep the files there (default: a temp dir, removed after)\n"
               "  --server PATH  tramsync-server (default: ../server/tramsync-server beside this program)\n"
               "  --station-cli PATH  (default: ../station-cli/station-cli beside this program)\n"
               "  --rate-kbit K  the simulated 2G link, each way (default 40)\n"
               "  --rtt-ms MS    its round trip (default 300)\n";
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
        o.runs_given = true;
      } else if (a == "--scale") {
        o.scale = std::stod(value());
        o.scale_given = true;
      } else if (a == "--json-out") {
        o.json_out = value();
      } else if (a == "--data") {
        o.data = value();
      } else if (a == "--server") {
        o.server = value();
      } else if (a == "--station-cli") {
        o.station_cli = value();
      } else if (a == "--rate-kbit") {
        o.rate_kbit = std::stod(value());
      } else if (a == "--rtt-ms") {
        o.rtt_ms = std::stoll(value());
      } else if (a == "--help" || a == "-h") {
        usage(0);
      } else {
        std::cerr << "unknown option " << a << "\n";
        usage(2);
      }
    } catch (const std::exception&) {
      std::cerr << a << ": not a number\n";
      usage(2);
    }
  }
  if (o.quick) {
    if (!o.scale_given) o.scale = 0.01;
    if (!o.runs_given) o.runs = 3;
  }
  if (o.runs < 1 || o.scale <= 0 || o.rate_kbit <= 0 || o.rtt_ms < 0) {
    std::cerr << "--runs must be at least 1, --scale and --rate-kbit above 0, --rtt-ms 0 or more\n";
    usage(2);
  }
  return o;
}

// --- children and failure ----------------------------------------------------------

std::vector<pid_t> g_servers;  // running servers, stopped on failure
struct Spawner {               // the helper that starts children (see run_child)
  int fd = -1;
  pid_t pid = 0;
};
Spawner g_spawner;
std::string g_keep_note;       // where the files are, for a failure message

void stop_pid(pid_t pid) {
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 1000; ++i) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
}

[[noreturn]] void die(const std::string& why) {
  std::cerr << "\nsync bench FAILED: " << why << "\n";
  for (pid_t p : g_servers) stop_pid(p);
  g_servers.clear();
  if (!g_keep_note.empty()) std::cerr << g_keep_note << "\n";
  if (g_spawner.fd >= 0) ::close(g_spawner.fd);
  std::_Exit(1);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

struct ChildResult {
  int code = -1;
  double seconds = 0;
  double peak_mib = 0;  // ru_maxrss
  std::string out, err;
  json out_json() const { return json::parse(out, nullptr, false); }
};

// Children are started by a small helper process forked at the very start of
// main, while this process is still small. Why: Linux keeps in a child's
// ru_maxrss the resident size of the image it was forked or vfork-spawned
// from (its pre-exec mm), so a client spawned from this process, which holds
// the generated data, would report this process's peak, not its own. The
// helper spawns each child (posix_spawn), waits for it with wait4 and answers
// with its exit status, wall time and ru_maxrss.
// Reads one '\n'-terminated line from fd ("" at EOF).
std::string read_line(int fd) {
  std::string line;
  char c;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') return line;
    line += c;
  }
}

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

[[noreturn]] void spawner_loop(int fd) {
  for (;;) {
    const std::string line = read_line(fd);
    if (line.empty()) std::_Exit(0);
    json req = json::parse(line, nullptr, false);
    const std::string program = req.value("program", ""), out = req.value("out", ""), err = req.value("err", "");
    std::vector<std::string> args = req.value("args", std::vector<std::string>{});
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char*> argv{const_cast<char*>(program.c_str())};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const auto t0 = std::chrono::steady_clock::now();
    int rc = posix_spawn(&pid, program.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    json answer;
    if (rc != 0) {
      answer = {{"spawn_error", std::strerror(rc)}};
    } else {
      int status = 0;
      rusage ru{};
      while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
      }
      answer = {{"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
                {"maxrss_kb", ru.ru_maxrss},
                {"code", WIFEXITED(status) ? WEXITSTATUS(status)
                                           : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0)}};
    }
    if (!write_all(fd, answer.dump() + "\n")) std::_Exit(1);
  }
}

void start_spawner() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    std::perror("socketpair");
    std::exit(1);
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(1);
  }
  if (pid == 0) {
    ::close(sv[0]);
    spawner_loop(sv[1]);
  }
  ::close(sv[1]);
  g_spawner = Spawner{sv[0], pid};
}

void stop_spawner() {
  if (g_spawner.fd < 0) return;
  ::close(g_spawner.fd);
  int st = 0;
  ::waitpid(g_spawner.pid, &st, 0);
  g_spawner.fd = -1;
}

// Runs `program args...` to its end (through the helper): stdin /dev/null,
// stdout and stderr to files in `dir`; the wall time from spawn to exit and
// the child's peak resident memory (ru_maxrss).
ChildResult run_child(const std::string& program, const std::vector<std::string>& args, const std::string& dir) {
  static int counter = 0;
  const std::string out_path = (fs::path(dir) / ("child-" + std::to_string(++counter) + ".out")).string();
  const std::string err_path = out_path.substr(0, out_path.size() - 4) + ".err";
  json req{{"program", program}, {"args", args}, {"out", out_path}, {"err", err_path}};
  if (!write_all(g_spawner.fd, req.dump() + "\n")) die("the spawning helper is gone");
  json answer = json::parse(read_line(g_spawner.fd), nullptr, false);
  if (!answer.is_object()) die("the spawning helper did not answer");
  if (answer.contains("spawn_error")) die("cannot start " + program + ": " + answer["spawn_error"].get<std::string>());
  ChildResult r;
  r.seconds = answer.value("seconds", 0.0);
  r.peak_mib = static_cast<double>(answer.value("maxrss_kb", int64_t{0})) / 1024.0;
  r.code = answer.value("code", -1);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  fs::remove(out_path);
  fs::remove(err_path);
  return r;
}

std::string describe(const std::string& what, const ChildResult& r) {
  return what + " exited " + std::to_string(r.code) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

ChildResult must(const std::string& what, ChildResult r) {
  if (r.code != 0) die(describe(what, r));
  return r;
}

// The real tramsync-server, as tests/e2e/server_process.h starts it: `serve
// --listen 127.0.0.1:0 --json`, stdout on a pipe for the one line it prints
// once listening, stderr (its request log) in a file.
class Server {
 public:
  Server(std::string program, std::string db, std::string tls_dir, bool insecure, std::string log)
      : program_(std::move(program)), db_(std::move(db)), tls_(std::move(tls_dir)), insecure_(insecure),
        log_(std::move(log)) {}
  ~Server() { stop(); }

  void start() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) die("pipe2");
    std::vector<std::string> args{program_, "--db", db_, "serve", "--listen", "127.0.0.1:0", "--json"};
    if (insecure_) {
      args.emplace_back("--insecure-http");
    } else {
      args.emplace_back("--self-signed");
      args.push_back(tls_);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, program_.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) die("cannot start " + program_ + ": " + std::strerror(rc));
    g_servers.push_back(pid_);
    // The listening line, within 30 s.
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (out.find('\n') == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) break;
      pollfd p{fds[0], POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      char buf[1024];
      ssize_t got = ::read(fds[0], buf, sizeof buf);
      if (got <= 0) break;
      out.append(buf, static_cast<size_t>(got));
    }
    out_fd_ = fds[0];  // kept open until stop(): the server may print more
    json j = json::parse(out.substr(0, out.find('\n')), nullptr, false);
    if (!j.is_object() || !j.contains("port")) {
      die("tramsync-server did not print its listening line; stdout: " + out + "\nlog: " + read_file(log_));
    }
    port = j.at("port").get<int>();
    fingerprint = j.value("fingerprint", "");
  }

  // Its peak resident memory so far (VmHWM), MiB.
  double peak_mib() const { return pid_ > 0 ? bench::proc_status_mib(pid_, "VmHWM") : -1; }

  void stop() {
    if (pid_ > 0) {
      stop_pid(pid_);
      g_servers.erase(std::remove(g_servers.begin(), g_servers.end(), pid_), g_servers.end());
      pid_ = 0;
    }
    if (out_fd_ >= 0) close(out_fd_);
    out_fd_ = -1;
  }

  int port = 0;
  std::string fingerprint;

 private:
  std::string program_, db_, tls_;
  bool insecure_;
  std::string log_;
  pid_t pid_ = 0;
  int out_fd_ = -1;
};

// --- SQLite, gzip, the plain limit ---------------------------------------------------

int64_t sql_int(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) die("cannot open " + path);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    std::string e = sqlite3_errmsg(db);
    sqlite3_close(db);
    die(path + ": " + sql + ": " + e);
  }
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

void sql_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) die("cannot open " + path);
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string e = err ? err : "?";
    sqlite3_free(err);
    sqlite3_close(db);
    die(path + ": " + e);
  }
  sqlite3_close(db);
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

// The change log of a file, in log order (optionally only those of `origin`).
std::vector<Change> read_changes(const std::string& path, const std::string& origin = "") {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) die("cannot open " + path);
  std::string sql = "SELECT seq, origin, origin_seq, hlc, station_id, kind, record_id, payload FROM changes";
  if (!origin.empty()) sql += " WHERE origin = " + quote(origin);
  sql += " ORDER BY seq";
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) die(path + ": " + sqlite3_errmsg(db));
  std::vector<Change> out;
  auto text = [&](int i) {
    const unsigned char* t = sqlite3_column_text(st, i);
    return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
  };
  while (sqlite3_step(st) == SQLITE_ROW) {
    Change c;
    c.seq = sqlite3_column_int64(st, 0);
    c.origin = text(1);
    c.origin_seq = sqlite3_column_int64(st, 2);
    c.hlc = static_cast<uint64_t>(sqlite3_column_int64(st, 3));
    c.station_id = text(4);
    c.kind = text(5);
    c.record_id = text(6);
    c.payload = text(7);
    out.push_back(std::move(c));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// gzip as the client compresses a body (zlib default level, gzip wrapper).
size_t gzip_size(const std::string& data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) die("zlib");
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t n = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) die("zlib: deflate did not finish");
  return n;
}

// The payload alone: the changes as one push body, gzipped.
double payload_gzip_bytes(const std::vector<Change>& changes) {
  return static_cast<double>(gzip_size(wire::encode_batch(changes)));
}

// The limit: plain SQLite keeping the same change rows durably (see the top).
double plain_sqlite_store(const std::string& path, const std::vector<Change>& rows) {
  for (const char* s : {"", "-wal", "-shm"}) fs::remove(path + s);
  Stopwatch sw;
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) die("cannot open " + path);
  auto exec = [&](const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) die(std::string("plain sqlite: ") + (err ? err : "?"));
  };
  exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
       "CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, origin_seq INTEGER NOT "
       "NULL, hlc INTEGER NOT NULL, station_id TEXT NOT NULL, kind TEXT NOT NULL, record_id TEXT NOT NULL, payload "
       "TEXT NOT NULL, from_peer TEXT, UNIQUE (origin, origin_seq));"
       "CREATE INDEX changes_record ON changes(kind, record_id);"
       "BEGIN IMMEDIATE;");
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO changes(origin, origin_seq, hlc, station_id, kind, record_id, payload, from_peer) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                     -1, &st, nullptr);
  for (const auto& c : rows) {
    sqlite3_bind_text(st, 1, c.origin.data(), static_cast<int>(c.origin.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c.origin_seq);
    sqlite3_bind_int64(st, 3, static_cast<sqlite3_int64>(c.hlc));
    sqlite3_bind_text(st, 4, c.station_id.data(), static_cast<int>(c.station_id.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 5, c.kind.data(), static_cast<int>(c.kind.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 6, c.record_id.data(), static_cast<int>(c.record_id.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 7, c.payload.data(), static_cast<int>(c.payload.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 8, "peer", 4, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) die(std::string("plain sqlite insert: ") + sqlite3_errmsg(db));
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  exec("COMMIT;");
  sqlite3_close(db);
  const double s = sw.seconds();
  for (const char* x : {"", "-wal", "-shm"}) fs::remove(path + x);
  return s;
}

void copy_db(const std::string& from, const std::string& to) {
  for (const char* s : {"", "-wal", "-shm"}) fs::remove(to + s);
  fs::copy_file(from, to);
  if (fs::exists(from + "-wal")) fs::copy_file(from + "-wal", to + "-wal");
}

// --- the station's data -----------------------------------------------------------

struct Station {
  std::string template_path;
  std::string device_id, station_id;
  std::vector<std::string> patients;  // all active
  int64_t patient_count = 0, visits = 0, dispenses = 0, receipts = 0, voids = 0, items = 0;
  int64_t changes = 0;            // in the laptop's log
  int64_t generated_changes = 0;  // through apply_changes
  double build_seconds = 0, apply_seconds = 0;
};

class Generator {
 public:
  Generator(const Options& o, int64_t now_ms) : o_(o), now_(now_ms), ids_(20261124), rng_(7) {}

  void build(Station& st) {
    StoreOptions so;
    so.ids = &ids_;
    auto opened = Store::open(st.template_path, so);
    if (!opened) die("open " + st.template_path + ": " + opened.error().message());
    Store& store = **opened;
    auto ident = store.identity();
    if (!ident) die(ident.error().message());
    st.device_id = ident->device_id;
    st.station_id = ident->station_id;
    sid_ = st.station_id;
    for (const auto& it : kItems) {
      auto item = store.find_item(it.code);
      if (!item) die(std::string("item ") + it.code + ": " + item.error().message());
      items_.push_back(item->id);
    }
    const int64_t n_patients = std::max<int64_t>(1, std::llround(10'000 * o_.scale));
    const int64_t n_events = std::max<int64_t>(50, std::llround(100'000 * o_.scale));
    // Patients.
    static const char* kFamily[] = {"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vàng", "Lò", "Giàng", "Lù", "Sùng"};
    static const char* kMiddle[] = {"Văn", "Thị", "A", "Seo", "Thị Thu", "Đức"};
    static const char* kGiven[] = {"An", "Bình", "Chi", "Dũng", "Hoa", "Lan", "Mai", "Páo", "Sử", "Tủa", "Xuân", "Hùng"};
    struct P {
      std::string id;
      int64_t created;
      bool chronic;
    };
    std::vector<P> ps;
    for (int64_t k = 0; k < n_patients; ++k) {
      P p{ids_.new_id(), now_ - pick(2 * 24, 400 * 24) * 3'600'000 - pick(0, 3599) * 1000, chance(0.25)};
      const bool elderly = chance(0.20), covid = chance(0.03);
      json cats = json::array();
      if (elderly) cats.push_back("elderly");
      if (p.chronic) cats.push_back("chronic");
      if (covid) cats.push_back("covid-home");
      json fields{{"birth", std::to_string(elderly ? pick(1930, 1960) : pick(1950, 2020)) + "-0" +
                                std::to_string(pick(1, 9)) + "-1" + std::to_string(pick(0, 9))},
                  {"created_at", local(p.created)},
                  {"household_id", nullptr},
                  {"name", std::string(kFamily[pick(0, 9)]) + " " + kMiddle[pick(0, 5)] + " " + kGiven[pick(0, 11)]},
                  {"national_id", ""},
                  {"phone", chance(0.6) ? "09" + std::to_string(pick(10'000'000, 99'999'999)) : ""},
                  {"sex", chance(0.5) ? "male" : "female"},
                  {"status", "active"},
                  {"village", "Bản " + std::to_string(pick(1, 20))}};
      json payload{{"op", "upsert"}, {"fields", std::move(fields)}};
      if (!cats.empty()) {
        payload["sets"] = {{"categories", {{"add", cats}, {"remove", json::array()}}},
                           {"conditions",
                            {{"add", p.chronic ? json::array({"tăng huyết áp"}) : json::array()},
                             {"remove", json::array()}}}};
      }
      add(kind::kPatient, p.id, p.created, std::move(payload));
      st.patients.push_back(p.id);
      ps.push_back(std::move(p));
    }
    st.patient_count = n_patients;
    // Lots: one per item and quarter, received 365, 270, 180 and 90 days ago.
    const int64_t lot_days[4] = {365, 270, 180, 90};
    struct Lot {
      std::string name, expiry;
      int64_t at = 0, dispensed = 0;
    };
    std::vector<std::vector<Lot>> lots(kItemCount);
    for (int i = 0; i < kItemCount; ++i) {
      for (int q = 0; q < 4; ++q) {
        Lot l;
        l.at = now_ - lot_days[q] * kDayMs + 8 * 3'600'000;
        l.name = "L" + std::to_string(pick(1000, 9999));
        l.name += static_cast<char>('A' + q);
        l.expiry = local(l.at + 540 * kDayMs).substr(0, 10);
        lots[static_cast<size_t>(i)].push_back(l);
      }
    }
    const int64_t receipts = kItemCount * 4;
    const int64_t voids = std::max<int64_t>(1, n_events / 200);
    // The big lot received with station-cli is one event too.
    const int64_t rest = std::max<int64_t>(2, n_events - receipts - voids - 1);
    const int64_t n_visits = rest * 55 / 100, n_dispenses = rest - n_visits;
    std::vector<std::pair<std::string, int64_t>> visits;  // id, at
    for (int64_t v = 0; v < n_visits; ++v) {
      const P& p = ps[static_cast<size_t>(pick(0, n_patients - 1))];
      const int64_t at = p.created + 3'600'000 + pick(0, std::max<int64_t>(0, (now_ - 3'600'000 - p.created - 3'600'000) / 1000)) * 1000;
      std::string id = ids_.new_id();
      json ev{{"at", local(at)},
              {"bp_dia", p.chronic ? json(pick(70, 100)) : json(nullptr)},
              {"bp_sys", p.chronic ? json(pick(120, 170)) : json(nullptr)},
              {"id", id},
              {"note", ""},
              {"patient_id", p.id},
              {"pulse", chance(0.5) ? json(pick(60, 100)) : json(nullptr)},
              {"refer", chance(0.02)},
              {"spo2", chance(0.4) ? json(pick(90, 99)) : json(nullptr)},
              {"station_id", sid_},
              {"symptoms", chance(0.2) ? json::array({"ho"}) : json::array()},
              {"temp_c", chance(0.6) ? json(std::round((36.3 + 0.1 * static_cast<double>(pick(0, 20))) * 10) / 10)
                                     : json(nullptr)}};
      add(kind::kVisit, id, at, json{{"op", "insert"}, {"event", std::move(ev)}});
      visits.emplace_back(id, at);
    }
    struct D {
      std::string id, patient;
      int item, lot;
      int64_t qty, at;
      json days;
    };
    std::vector<D> disp;
    for (int64_t d = 0; d < n_dispenses; ++d) {
      const P& p = ps[static_cast<size_t>(pick(0, n_patients - 1))];
      const int64_t from = std::max(p.created, lots[0][0].at) + 3'600'000;
      const int64_t at = from + pick(0, std::max<int64_t>(0, (now_ - 3'600'000 - from) / 1000)) * 1000;
      const int item = p.chronic ? static_cast<int>(pick(0, kChronicItems - 1))
                                 : static_cast<int>(pick(kChronicItems, kItemCount - 1));
      int q = 3;
      while (q > 0 && lots[static_cast<size_t>(item)][static_cast<size_t>(q)].at > at) --q;
      const int64_t qty = p.chronic ? 30 : pick(1, 20);
      lots[static_cast<size_t>(item)][static_cast<size_t>(q)].dispensed += qty;
      disp.push_back(D{ids_.new_id(), p.id, item, q, qty, at, p.chronic ? json(30) : json(nullptr)});
    }
    // Receipts cover what is dispensed from each lot, and some more.
    for (int i = 0; i < kItemCount; ++i) {
      for (const auto& l : lots[static_cast<size_t>(i)]) {
        std::string id = ids_.new_id();
        json ev{{"at", local(l.at)},         {"counterpart", "TTYT huyện"}, {"days_supply", nullptr},
                {"expiry", l.expiry},        {"id", id},                    {"item_id", items_[static_cast<size_t>(i)]},
                {"kind", "receipt"},         {"lot", l.name},               {"patient_id", nullptr},
                {"quantity", l.dispensed + pick(100, 500)}, {"reason", ""}, {"station_id", sid_}};
        add(kind::kStockMovement, id, l.at, json{{"op", "insert"}, {"event", std::move(ev)}});
      }
    }
    for (const auto& d : disp) {
      const Lot& l = lots[static_cast<size_t>(d.item)][static_cast<size_t>(d.lot)];
      json ev{{"at", local(d.at)},        {"counterpart", ""},   {"days_supply", d.days},
              {"expiry", l.expiry},       {"id", d.id},          {"item_id", items_[static_cast<size_t>(d.item)]},
              {"kind", "dispense"},       {"lot", l.name},       {"patient_id", d.patient},
              {"quantity", -d.qty},       {"reason", ""},        {"station_id", sid_}};
      add(kind::kStockMovement, d.id, d.at, json{{"op", "insert"}, {"event", std::move(ev)}});
    }
    // Voids of some visits, two hours later.
    std::shuffle(visits.begin(), visits.end(), rng_);
    for (int64_t k = 0; k < voids && k < static_cast<int64_t>(visits.size()); ++k) {
      const auto& [vid, vat] = visits[static_cast<size_t>(k)];
      const int64_t at = std::min(vat + 2 * 3'600'000, now_ - 60'000);
      std::string id = ids_.new_id();
      add(kind::kVoid, id, at,
          json{{"op", "insert"},
               {"event",
                {{"id", id}, {"station_id", sid_}, {"event_id", vid}, {"event_kind", "visit"},
                 {"reason", "nhập nhầm"}, {"at", local(at)}}}});
      ++st.voids;
    }
    st.visits = n_visits;
    st.dispenses = n_dispenses;
    st.receipts = receipts + 1;
    st.items = kItemCount;
    // In time order, as the station wrote them, under the laptop's origin.
    std::stable_sort(gen_.begin(), gen_.end(), [](const Gen& a, const Gen& b) { return a.at < b.at; });
    int64_t origin_seq = store.max_origin_seq(st.device_id);
    uint64_t last_hlc = 0;
    std::vector<Change> batch;
    ApplyContext ctx;
    ctx.from_peer = st.device_id;
    ctx.write_scope = Scope::everything();
    ctx.check_clock = false;
    auto flush = [&] {
      if (batch.empty()) return;
      Stopwatch sw;
      auto r = store.apply_changes(batch, ctx);
      st.apply_seconds += sw.seconds();
      if (!r) die("apply_changes: " + r.error().message());
      if (r->applied != static_cast<int64_t>(batch.size())) {
        for (const auto& x : r->results) {
          if (x.status != ApplyStatus::kApplied) die("a generated change was not applied: " + x.reason);
        }
      }
      st.generated_changes += static_cast<int64_t>(batch.size());
      batch.clear();
    };
    for (auto& g : gen_) {
      Change c;
      c.seq = static_cast<int64_t>(batch.size()) + 1;
      c.origin = st.device_id;
      c.origin_seq = ++origin_seq;
      c.hlc = std::max(Hlc::pack(g.at, 0), last_hlc + 1);
      last_hlc = c.hlc;
      c.station_id = sid_;
      c.kind = g.kind;
      c.record_id = g.record_id;
      c.payload = g.payload.dump();
      batch.push_back(std::move(c));
      if (batch.size() >= 5000) flush();
    }
    flush();
    gen_.clear();
    st.changes = store.change_count();
  }

 private:
  struct Gen {
    int64_t at;
    std::string kind, record_id;
    json payload;
  };
  void add(const char* kind, const std::string& record_id, int64_t at, json payload) {
    gen_.push_back(Gen{at, kind, record_id, std::move(payload)});
  }
  double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  int64_t pick(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  bool chance(double p) { return uniform() < p; }
  std::string local(int64_t ms) { return local_time_from_ms(ms, kDefaultUtcOffsetMinutes); }

  const Options& o_;
  const int64_t now_;
  RandomIdSource ids_;
  std::mt19937_64 rng_;
  std::string sid_;
  std::vector<std::string> items_;
  std::vector<Gen> gen_;
};

}  // namespace

namespace {

// --- HTTP in clear: one message's parts --------------------------------------------

struct HttpMessage {
  std::string start_line;
  int64_t head = 0;  // start line + headers + the empty line
  int64_t body = 0;  // as on the wire (compressed; chunk framing included)
  std::string content_encoding;
};

std::vector<HttpMessage> parse_http(const std::string& s) {
  std::vector<HttpMessage> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find("\r\n\r\n", pos);
    if (end == std::string::npos) die("HTTP capture: a message without the end of its headers");
    HttpMessage m;
    m.head = static_cast<int64_t>(end + 4 - pos);
    const std::string head = s.substr(pos, end - pos);
    m.start_line = head.substr(0, head.find("\r\n"));
    int64_t length = 0;
    bool chunked = false;
    std::istringstream lines(head);
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string k = line.substr(0, colon), v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (k == "content-length") length = std::stoll(v);
      if (k == "transfer-encoding" && v.find("chunked") != std::string::npos) chunked = true;
      if (k == "content-encoding") m.content_encoding = v;
    }
    pos = end + 4;
    if (chunked) {
      const size_t start = pos;
      for (;;) {
        size_t eol = s.find("\r\n", pos);
        if (eol == std::string::npos) die("HTTP capture: a cut chunk");
        const int64_t n = std::stoll(s.substr(pos, eol - pos), nullptr, 16);
        pos = eol + 2 + static_cast<size_t>(n) + 2;
        if (n == 0) break;
      }
      m.body = static_cast<int64_t>(pos - start);
    } else {
      m.body = length;
      pos += static_cast<size_t>(length);
    }
    out.push_back(m);
  }
  return out;
}

// A transport that remembers what each exchange was, around the reference one.
class RecordingTransport final : public sync::Transport {
 public:
  struct Exchange {
    std::string method, path;
    int status = 0;
    int64_t plain_request = 0, plain_response = 0;   // bodies before compression / after inflating
    int64_t counted_sent = 0, counted_received = 0;  // the transport's own count
  };
  explicit RecordingTransport(sync::Transport& inner) : inner_(inner) {}
  Result<sync::Response> roundtrip(const sync::Request& req) override {
    auto r = inner_.roundtrip(req);
    if (r) {
      exchanges.push_back(Exchange{req.method, req.path, r->status, static_cast<int64_t>(req.body.size()),
                                   static_cast<int64_t>(r->body.size()), r->wire_bytes_sent, r->wire_bytes_received});
    }
    return r;
  }
  std::vector<Exchange> exchanges;

 private:
  sync::Transport& inner_;
};

// --- one run ---------------------------------------------------------------------------

struct SyncOut {
  ChildResult child;
  json j;
  TcpProxy::Counts tcp;
  int64_t sent = 0, received = 0, bytes_sent = 0, bytes_received = 0, requests = 0;
  int64_t transport_total() const { return bytes_sent + bytes_received; }
};

struct Run {
  // first push
  double push_s = 0, push_peak = 0, push_limit_s = 0, push_payload = 0;
  SyncOut push;
  int64_t pushed = 0;
  // initial sync
  double enroll_s = 0, sync_s = 0, peak = 0, init_limit_s = 0, init_payload = 0;
  SyncOut init;
  TcpProxy::Counts init_tcp;  // enroll + sync
  int64_t init_received_rows = 0;
  // incremental
  TcpProxy::Counts handshake, close_bytes;
  SyncOut empty, visit, visit2g, day2g;
  double visit_payload = 0, visit2g_payload = 0, day_payload = 0;
  int64_t day_changes = 0;
  json breakdown, breakdown_headers;
  int64_t http_total = 0;
  double server_peak = 0;
};

class Bench {
 public:
  Bench(Options o, std::string dir) : o_(std::move(o)), dir_(std::move(dir)) {}

  void prepare() {
    ::signal(SIGPIPE, SIG_IGN);
    const fs::path self = fs::canonical("/proc/self/exe").parent_path();
    if (o_.server.empty()) o_.server = (self / ".." / "server" / "tramsync-server").lexically_normal().string();
    if (o_.station_cli.empty()) o_.station_cli = (self / ".." / "station-cli" / "station-cli").lexically_normal().string();
    for (const auto& p : {o_.server, o_.station_cli}) {
      if (::access(p.c_str(), X_OK) != 0) die(p + " is not an executable (build it, or give --server / --station-cli)");
    }
    tls_dir_ = (fs::path(dir_) / "tls").string();
    std::string err;
    if (!proxy_.start(0, &err)) die(err);
    build_station();
  }

  // The laptop, once: init, items and the big lot with station-cli, the rest generated.
  void build_station() {
    st_.template_path = (fs::path(dir_) / "laptop-template.db").string();
    for (const char* s : {"", "-wal", "-shm"}) fs::remove(st_.template_path + s);
    std::fprintf(stderr, "building the station: %lld patients, %lld events ...\n",
                 static_cast<long long>(std::max<int64_t>(1, std::llround(10'000 * o_.scale))),
                 static_cast<long long>(std::max<int64_t>(50, std::llround(100'000 * o_.scale))));
    Stopwatch sw;
    cli("init", {"--db", st_.template_path, "init", "--station", kStationCode, "--name", kStationName, "--device",
                 "laptop", "--district", "Sìn Hồ", "--province", "Lai Châu"});
    for (const auto& it : kItems) {
      cli("item add", {"--db", st_.template_path, "item", "add", "--code", it.code, "--name", it.name, "--unit", it.unit,
                       "--kind", it.kind});
    }
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    cli("stock receive", {"--db", st_.template_path, "stock", "receive", "--item", kHomeVisitItem, "--qty", "1000000",
                          "--lot", kHomeVisitLot, "--expiry",
                          local_time_from_ms(now + 600 * kDayMs, kDefaultUtcOffsetMinutes).substr(0, 10), "--source",
                          "TTYT huyện"});
    Generator g(o_, now);
    g.build(st_);
    sql_exec(st_.template_path, "PRAGMA wal_checkpoint(TRUNCATE);");
    st_.build_seconds = sw.seconds();
    // The counts every copy must reach.
    expect_ = counts(st_.template_path);
    if (expect_["patients"] != st_.patient_count || expect_["visits"] != st_.visits ||
        expect_["voids"] != st_.voids || expect_["stock_movements"] != st_.dispenses + st_.receipts) {
      die("the laptop's counts are not the generated ones: " + json(expect_).dump());
    }
    std::fprintf(stderr,
                 "  built in %.1f s: %lld changes (%lld through apply_changes in %.1f s, %.0f changes/s)\n",
                 st_.build_seconds, static_cast<long long>(st_.changes), static_cast<long long>(st_.generated_changes),
                 st_.apply_seconds, static_cast<double>(st_.generated_changes) / std::max(st_.apply_seconds, 1e-9));
  }

  std::map<std::string, int64_t> counts(const std::string& db) {
    std::map<std::string, int64_t> c;
    for (const char* t : {"patients", "visits", "stock_movements", "voids", "items"}) {
      c[t] = sql_int(db, std::string("SELECT count(*) FROM ") + t);
    }
    return c;
  }

  ChildResult cli(const std::string& what, const std::vector<std::string>& args) {
    return must("station-cli " + what, run_child(o_.station_cli, args, dir_));
  }
  ChildResult server_cli(const std::string& what, const std::vector<std::string>& args) {
    return must("tramsync-server " + what, run_child(o_.server, args, dir_));
  }

  // station-cli --json sync on `db` through the proxy, shaped as it is now.
  SyncOut sync(const std::string& what, const std::string& db) {
    SyncOut s;
    const auto before = proxy_.counts();
    s.child = must(what, run_child(o_.station_cli, {"--db", db, "--json", "sync"}, dir_));
    if (!proxy_.wait_idle(std::chrono::seconds(30))) die(what + ": the proxy still has a connection open");
    s.tcp = proxy_.counts() - before;
    s.j = s.child.out_json();
    if (!s.j.is_object() || !s.j.contains("bytes_sent")) die(what + ": not the JSON of station-cli sync: " + s.child.out);
    s.sent = s.j.value("sent", int64_t{0});
    s.received = s.j.value("received", int64_t{0});
    s.bytes_sent = s.j.value("bytes_sent", int64_t{0});
    s.bytes_received = s.j.value("bytes_received", int64_t{0});
    s.requests = s.j.value("requests", int64_t{0});
    if (s.j.value("quarantined", int64_t{0}) != 0) die(what + ": changes were quarantined: " + s.child.out);
    if (!s.j.value("refused", json::array()).empty()) die(what + ": the server refused changes: " + s.child.out);
    return s;
  }

  std::vector<Change> pending(const std::string& db) {
    auto opened = Store::open(db);
    if (!opened) die(opened.error().message());
    auto peers = (*opened)->peers();
    if (peers.empty()) die(db + " has no peer");
    auto page = (*opened)->changes_to_push(peers.front().id, 100'000, int64_t{1} << 40);
    return page.changes;
  }

  void home_visit_cli(const std::string& db, const std::string& patient) {
    cli("visit add", {"--db", db, "visit", "add", patient, "--temp", "37.8", "--spo2", "96", "--bp", "150/95",
                      "--pulse", "88", "--symptom", "ho"});
    cli("dispense", {"--db", db, "dispense", patient, "--item", kHomeVisitItem, "--qty", "60", "--days", "60", "--lot",
                     kHomeVisitLot});
  }

  void set_2g(bool on) {
    TcpProxy::Shape s;
    if (on) {
      s.rate_bps = o_.rate_kbit * 1000;
      s.delay_ms = o_.rtt_ms / 2;
    }
    proxy_.set_shape(s);
  }

  Run run(int r) {
    Run out;
    const fs::path rd = fs::path(dir_) / ("run-" + std::to_string(r));
    fs::remove_all(rd);
    fs::create_directories(rd);
    const std::string central = (rd / "central.db").string(), laptop = (rd / "laptop.db").string(),
                      fresh = (rd / "new-device.db").string();
    copy_db(st_.template_path, laptop);
    // The centre: the station and its laptop's code, then serve.
    auto added = server_cli("station add", {"--db", central, "--json", "station", "add", "--code", kStationCode,
                                            "--name", kStationName, "--district", "Sìn Hồ", "--province", "Lai Châu"});
    const std::string code = added.out_json().value("enrollment_code", "");
    if (code.empty()) die("station add printed no code: " + added.out);
    Server server(o_.server, central, tls_dir_, false, (rd / "server.log").string());
    server.start();
    proxy_.set_upstream(server.port);
    set_2g(false);
    const std::string url = "https://127.0.0.1:" + std::to_string(proxy_.port());
    cli("enroll (laptop)", {"--db", laptop, "--json", "enroll", "--server", url, "--code", code, "--pin",
                            server.fingerprint});
    if (!proxy_.wait_idle(std::chrono::seconds(30))) die("enroll: the proxy still has a connection open");

    // First push: everything the laptop holds.
    {
      auto rows = read_changes(laptop);
      out.pushed = static_cast<int64_t>(rows.size());
      out.push_payload = payload_gzip_bytes(rows);
      out.push_limit_s = plain_sqlite_store((rd / "plain-push.db").string(), rows);
    }
    out.push = sync("first push", laptop);
    out.push_s = out.push.child.seconds;
    out.push_peak = out.push.child.peak_mib;
    if (out.push.sent != out.pushed) {
      die("first push sent " + std::to_string(out.push.sent) + " changes, the laptop holds " +
          std::to_string(out.pushed));
    }
    const int64_t at_centre =
        sql_int(central, "SELECT count(*) FROM changes WHERE origin = " + quote(st_.device_id));
    if (at_centre != out.pushed) {
      die("the centre holds " + std::to_string(at_centre) + " changes of the laptop, not " + std::to_string(out.pushed));
    }
    if (sql_int(central, "SELECT count(*) FROM quarantine") != 0) die("the centre quarantined changes of the first push");

    // Initial sync of a new device.
    {
      auto dev = server_cli("device add", {"--db", central, "--json", "device", "add", "--station", kStationCode,
                                           "--name", "máy mới " + std::to_string(r)});
      const std::string dcode = dev.out_json().value("enrollment_code", "");
      if (dcode.empty()) die("device add printed no code: " + dev.out);
      const auto before = proxy_.counts();
      auto enrolled = cli("enroll (new device)", {"--db", fresh, "--json", "enroll", "--server", url, "--code", dcode,
                                                  "--pin", server.fingerprint, "--name", "máy mới"});
      if (!proxy_.wait_idle(std::chrono::seconds(30))) die("enroll: the proxy still has a connection open");
      out.enroll_s = enrolled.seconds;
      out.init = sync("initial sync", fresh);
      out.sync_s = out.init.child.seconds;
      out.peak = std::max(enrolled.peak_mib, out.init.child.peak_mib);
      out.init_tcp = proxy_.counts() - before;
      auto got = counts(fresh);
      if (got != expect_) {
        die("the new device holds " + json(got).dump() + ", the station " + json(expect_).dump());
      }
      auto rows = read_changes(fresh);
      out.init_received_rows = static_cast<int64_t>(rows.size());
      if (out.init_received_rows != out.init.received) {
        die("the new device's log holds " + std::to_string(rows.size()) + " changes, the sync says it received " +
            std::to_string(out.init.received));
      }
      out.init_payload = payload_gzip_bytes(rows);
      out.init_limit_s = plain_sqlite_store((rd / "plain-initial.db").string(), rows);
    }

    // Incremental. The first sync takes the new device's registration; the second has nothing to do.
    sync("catch-up sync", laptop);
    out.empty = sync("empty sync", laptop);
    if (out.empty.sent != 0 || out.empty.received != 0) die("the empty sync moved changes: " + out.empty.child.out);
    measure_handshake(server.fingerprint, out);

    const auto& pts = st_.patients;
    home_visit_cli(laptop, pts[static_cast<size_t>(r) % pts.size()]);
    out.visit_payload = payload_gzip_bytes(pending(laptop));
    out.visit = sync("home visit sync", laptop);
    if (out.visit.sent != 2 || out.visit.received != 0) die("the home visit sync: " + out.visit.child.out);

    set_2g(true);
    home_visit_cli(laptop, pts[(static_cast<size_t>(r) + 1) % pts.size()]);
    out.visit2g_payload = payload_gzip_bytes(pending(laptop));
    out.visit2g = sync("home visit sync at 2G", laptop);
    if (out.visit2g.sent != 2) die("the home visit sync at 2G: " + out.visit2g.child.out);

    out.day_changes = mobile_day(laptop, r);
    out.day_payload = payload_gzip_bytes(pending(laptop));
    out.day2g = sync("mobile day sync at 2G", laptop);
    if (out.day2g.sent != out.day_changes) {
      die("the mobile day sync sent " + std::to_string(out.day2g.sent) + " changes, not " +
          std::to_string(out.day_changes));
    }
    set_2g(false);
    out.server_peak = server.peak_mib();
    server.stop();

    // Per request, in clear.
    breakdown(central, laptop, rd, r, out);
    if (o_.data.empty()) fs::remove_all(rd);
    return out;
  }

  // The TLS handshake through the proxy, in this process with the reference
  // transport: the first unauthenticated status on a new connection, minus the
  // same request again on that connection; and what closing it sends.
  void measure_handshake(const std::string& pin, Run& out) {
    sync::HttpsOptions ho;
    ho.url = "https://127.0.0.1:" + std::to_string(proxy_.port());
    ho.pin = pin;
    auto t = sync::make_https_transport(ho);
    if (!t) die("transport: " + t.error().message());
    sync::Request req;
    req.method = "GET";
    req.path = "/v1/status";
    req.headers["X-TramSync-Protocol"] = "1";
    const auto c0 = proxy_.counts();
    auto r1 = (*t)->roundtrip(req);
    const auto c1 = proxy_.counts();
    auto r2 = (*t)->roundtrip(req);
    const auto c2 = proxy_.counts();
    if (!r1 || !r2 || r1->status != 200 || r2->status != 200) die("status through the proxy failed");
    if (r1->body.size() != r2->body.size()) die("the two status answers differ in size");
    t->reset();
    proxy_.wait_idle(std::chrono::seconds(10));
    const auto c3 = proxy_.counts();
    const auto first = c1 - c0, second = c2 - c1;
    out.handshake = TcpProxy::Counts{first.up - second.up, first.down - second.down, 1};
    out.close_bytes = c3 - c2;
  }

  // 50 visits, each with a dispense, and 10 phone edits, one action each, as station-cli writes them.
  int64_t mobile_day(const std::string& db, int r) {
    auto opened = Store::open(db);
    if (!opened) die(opened.error().message());
    Store& s = **opened;
    const auto& pts = st_.patients;
    std::mt19937_64 rng(static_cast<uint64_t>(1000 + r));
    int64_t changes = 0;
    for (int v = 0; v < kMobileVisits; ++v) {
      const std::string& p = pts[static_cast<size_t>(rng() % pts.size())];
      VisitInput vi;
      vi.patient_id = p;
      vi.temp_c = 36.5 + 0.1 * static_cast<double>(rng() % 20);
      vi.spo2 = 94 + static_cast<int>(rng() % 6);
      vi.bp_sys = 120 + static_cast<int>(rng() % 40);
      vi.bp_dia = 70 + static_cast<int>(rng() % 20);
      vi.pulse = 60 + static_cast<int>(rng() % 40);
      if (v % 3 == 0) vi.symptoms = {"ho"};
      if (auto x = s.add_visit(vi); !x) die("mobile day: add_visit: " + x.error().message());
      DispenseInput di;
      di.patient_id = p;
      di.item = kHomeVisitItem;
      di.quantity = 30;
      di.days_supply = 30;
      di.lot = kHomeVisitLot;
      auto d = s.dispense(di);
      if (!d) die("mobile day: dispense: " + d.error().message());
      changes += 1 + static_cast<int64_t>(d->size());
      if (v % (kMobileVisits / kMobileEdits) == 0) {
        PatientUpdate up;
        up.phone = "09" + std::to_string(10'000'000 + rng() % 89'999'999);
        if (auto u = s.update_patient(p, up); !u) die("mobile day: update_patient: " + u.error().message());
        ++changes;
      }
    }
    return changes;
  }

  // One more home visit, synced in this process over plain HTTP through the
  // proxy (capturing), with the server on the same file and --insecure-http.
  void breakdown(const std::string& central, const std::string& laptop, const fs::path& rd, int r, Run& out) {
    Server plain(o_.server, central, "", true, (rd / "server-http.log").string());
    plain.start();
    proxy_.set_upstream(plain.port);
    proxy_.take_captures();
    proxy_.set_capture(true);
    {
      auto opened = Store::open(laptop);
      if (!opened) die(opened.error().message());
      Store& s = **opened;
      const std::string& p = st_.patients[(static_cast<size_t>(r) + 2) % st_.patients.size()];
      VisitInput vi;
      vi.patient_id = p;
      vi.temp_c = 37.8;
      vi.spo2 = 96;
      vi.bp_sys = 150;
      vi.bp_dia = 95;
      vi.pulse = 88;
      vi.symptoms = {"ho"};
      if (auto x = s.add_visit(vi); !x) die("breakdown: add_visit: " + x.error().message());
      DispenseInput di;
      di.patient_id = p;
      di.item = kHomeVisitItem;
      di.quantity = 60;
      di.days_supply = 60;
      di.lot = kHomeVisitLot;
      if (auto d = s.dispense(di); !d) die("breakdown: dispense: " + d.error().message());
      sync::HttpsOptions ho;
      ho.url = "http://127.0.0.1:" + std::to_string(proxy_.port());
      auto t = sync::make_https_transport(ho);
      if (!t) die("transport: " + t.error().message());
      RecordingTransport rec(**t);
      auto report = sync::sync_with_peer(s, rec, s.peers().front().id);
      if (!report) die("breakdown sync: " + report.error().message());
      if (report->sent != 2) die("breakdown sync sent " + std::to_string(report->sent) + " changes, not 2");
      t->reset();
      if (!proxy_.wait_idle(std::chrono::seconds(10))) die("breakdown: the proxy still has a connection open");
      proxy_.set_capture(false);
      auto caps = proxy_.take_captures();
      if (caps.size() != 1) die("breakdown: expected one connection, got " + std::to_string(caps.size()));
      auto reqs = parse_http(caps[0].up), resps = parse_http(caps[0].down);
      if (reqs.size() != rec.exchanges.size() || resps.size() != reqs.size()) {
        die("breakdown: " + std::to_string(reqs.size()) + " requests and " + std::to_string(resps.size()) +
            " answers on the wire, " + std::to_string(rec.exchanges.size()) + " exchanges");
      }
      json rows = json::array();
      int64_t total = 0;
      for (size_t i = 0; i < reqs.size(); ++i) {
        const auto& x = rec.exchanges[i];
        std::string name = x.path.substr(x.path.rfind('/') + 1);
        json row{{"request", x.method + " " + x.path},
                 {"name", name},
                 {"request_head", reqs[i].head},
                 {"request_body", reqs[i].body},
                 {"request_body_plain", x.plain_request},
                 {"request_encoding", reqs[i].content_encoding},
                 {"response_head", resps[i].head},
                 {"response_body", resps[i].body},
                 {"response_body_plain", x.plain_response},
                 {"response_encoding", resps[i].content_encoding},
                 {"status_line", resps[i].start_line},
                 {"request_line", reqs[i].start_line},
                 {"transport_counted_sent", x.counted_sent},
                 {"transport_counted_received", x.counted_received}};
        total += reqs[i].head + reqs[i].body + resps[i].head + resps[i].body;
        rows.push_back(row);
      }
      out.breakdown = rows;
      out.http_total = total;
      out.breakdown_headers = json{{"request", caps[0].up.substr(0, caps[0].up.find("\r\n\r\n"))},
                                   {"response", caps[0].down.substr(0, caps[0].down.find("\r\n\r\n"))}};
    }
    plain.stop();
  }

  const Station& station() const { return st_; }
  const Options& options() const { return o_; }
  void stop() { proxy_.stop(); }

 private:
  Options o_;
  std::string dir_, tls_dir_;
  TcpProxy proxy_;
  Station st_;
  std::map<std::string, int64_t> expect_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  start_spawner();  // first, while this process is small (see run_child)
  std::string dir = o.data;
  if (dir.empty()) {
    char tmpl[] = "/tmp/tramsync-bench-sync.XXXXXX";
    if (!mkdtemp(tmpl)) die(std::string("mkdtemp: ") + std::strerror(errno));
    dir = tmpl;
    g_keep_note = "its files are kept in " + dir;
  } else {
    fs::create_directories(dir);
    dir = fs::canonical(dir).string();
  }
  Results res("sync", o.quick ? "quick" : "full");
  Bench bench(o, dir);
  bench.prepare();
  const Station& st = bench.station();
  const double rate_bps = o.rate_kbit * 1000;
  const double rtt_s = static_cast<double>(o.rtt_ms) / 1000;

  std::vector<Run> runs;
  for (int r = 1; r <= o.runs; ++r) {
    std::fprintf(stderr, "run %d/%d ...\n", r, o.runs);
    Stopwatch sw;
    runs.push_back(bench.run(r));
    const Run& x = runs.back();
    std::fprintf(stderr,
                 "  first push %.2f s, initial sync %.2f s (%.1f MiB), home visit %lld B (TCP %lld B), at 2G %.2f s, "
                 "mobile day at 2G %.2f s; run took %.1f s\n",
                 x.push_s, x.enroll_s + x.sync_s, x.peak, static_cast<long long>(x.visit.transport_total()),
                 static_cast<long long>(x.visit.tcp.total()), x.visit2g.child.seconds, x.day2g.child.seconds,
                 sw.seconds());
  }
  bench.stop();

  auto col = [&](auto f) {
    std::vector<double> v;
    for (const auto& x : runs) v.push_back(static_cast<double>(f(x)));
    return v;
  };
  auto med = [&](auto f) { return bench::median(col(f)); };
  auto fig = [&](std::string id, std::string group, std::string what, std::string unit, std::vector<double> values) {
    Figure f;
    f.id = std::move(id);
    f.group = std::move(group);
    f.what = std::move(what);
    f.unit = std::move(unit);
    f.runs = std::move(values);
    // For the scaling table: an initial sync grows with the station; a
    // home visit or a day's sync does not.
    f.whole_job = f.id.rfind("initial.", 0) == 0 && f.unit != "changes/s" && f.unit != "MiB";
    return f;
  };
  const std::string kInit = "Initial sync", kIncr = "Incremental sync";
  const std::string plain_limit = "plain SQLite storing the same change rows (log table and its indexes, one "
                                  "transaction, WAL, synchronous=FULL)";
  const std::string payload_limit = "the payload alone: the changes as one push body (JSON), gzipped";
  char rate_text[96];
  std::snprintf(rate_text, sizeof rate_text, "%g kbit/s each way, %lld ms round trip", o.rate_kbit,
                static_cast<long long>(o.rtt_ms));

  char note[160];
  // --- Initial sync -----------------------------------------------------------------
  {
    Figure f = fig("initial.first_push.seconds", kInit,
                   "the station laptop's first `station-cli sync`: every change it holds pushed to a fresh centre "
                   "(child process, wall time)",
                   "s", col([](const Run& x) { return x.push_s; }));
    f.limit = med([](const Run& x) { return x.push_limit_s; });
    f.limit_what = plain_limit;
    res.add(f);
    f = fig("initial.first_push.changes_per_s", kInit, "changes pushed per second in that first sync", "changes/s",
            col([](const Run& x) { return static_cast<double>(x.pushed) / x.push_s; }));
    f.higher_is_better = true;
    f.limit = med([](const Run& x) { return static_cast<double>(x.pushed) / x.push_limit_s; });
    f.limit_what = plain_limit;
    res.add(f);
    f = fig("initial.first_push.bytes_sent", kInit, "first push: bytes sent, as the transport counts them", "bytes",
            col([](const Run& x) { return x.push.bytes_sent; }));
    f.limit = med([](const Run& x) { return x.push_payload; });
    f.limit_what = payload_limit;
    res.add(f);
    f = fig("initial.first_push.tcp_bytes_total", kInit, "first push: TCP bytes both ways (TLS included; proxy)",
            "bytes", col([](const Run& x) { return x.push.tcp.total(); }));
    f.limit = med([](const Run& x) { return x.push_payload; });
    f.limit_what = payload_limit;
    res.add(f);
    f = fig("initial.first_push.client_peak_mib", kInit, "first push: station-cli's peak resident memory", "MiB",
            col([](const Run& x) { return x.push_peak; }));
    res.add(f);

    f = fig("initial.seconds", kInit,
            "a new device's first sync: `station-cli enroll` then `station-cli sync` on a fresh file, wall time of "
            "both child processes",
            "s", col([](const Run& x) { return x.enroll_s + x.sync_s; }));
    f.limit = med([](const Run& x) { return x.init_limit_s; });
    f.limit_what = plain_limit;
    f.target = 5;
    std::snprintf(note, sizeof note, "enroll %.2f s, sync %.2f s (medians)", med([](const Run& x) { return x.enroll_s; }),
                  med([](const Run& x) { return x.sync_s; }));
    f.note = note;
    res.add(f);
    f = fig("initial.changes_per_s", kInit, "changes received and stored per second by that sync", "changes/s",
            col([](const Run& x) { return static_cast<double>(x.init.received) / x.sync_s; }));
    f.higher_is_better = true;
    f.limit = med([](const Run& x) { return static_cast<double>(x.init_received_rows) / x.init_limit_s; });
    f.limit_what = plain_limit;
    res.add(f);
    f = fig("initial.client_peak_mib", kInit, "peak resident memory of the client (the larger of enroll and sync; "
                                              "ru_maxrss from wait4)",
            "MiB", col([](const Run& x) { return x.peak; }));
    f.target = 100;
    f.limit = bench::median([&] {
      std::vector<double> v;
      for (int i = 0; i < 3; ++i) v.push_back(run_child(bench.options().station_cli, {"--help"}, dir).peak_mib);
      return v;
    }());
    f.limit_what = "`station-cli --help`: the program and its libraries doing nothing";
    res.add(f);
    f = fig("initial.bytes_received", kInit, "initial sync: bytes received, as the transport counts them", "bytes",
            col([](const Run& x) { return x.init.bytes_received; }));
    f.limit = med([](const Run& x) { return x.init_payload; });
    f.limit_what = payload_limit;
    res.add(f);
    f = fig("initial.bytes_sent", kInit, "initial sync: bytes sent, as the transport counts them", "bytes",
            col([](const Run& x) { return x.init.bytes_sent; }));
    res.add(f);
    f = fig("initial.tcp_bytes_received", kInit, "enroll + initial sync: TCP bytes received (TLS included; proxy)",
            "bytes", col([](const Run& x) { return x.init_tcp.down; }));
    f.limit = med([](const Run& x) { return x.init_payload; });
    f.limit_what = payload_limit;
    res.add(f);
    f = fig("initial.tcp_bytes_sent", kInit, "enroll + initial sync: TCP bytes sent (TLS included; proxy)", "bytes",
            col([](const Run& x) { return x.init_tcp.up; }));
    res.add(f);
    f = fig("initial.requests", kInit, "HTTP requests of the initial sync (status, pull pages)", "requests",
            col([](const Run& x) { return x.init.requests; }));
    res.add(f);
  }

  // --- Incremental sync ----------------------------------------------------------------
  {
    Figure f = fig("incremental.tls_handshake.bytes", kIncr,
                   "TLS handshake of a new connection, both ways (with the server's session tickets): first GET "
                   "/v1/status on a connection minus the same again on it",
                   "bytes", col([](const Run& x) { return x.handshake.total(); }));
    std::snprintf(note, sizeof note, "up %.0f, down %.0f; closing the connection %.0f more",
                  med([](const Run& x) { return x.handshake.up; }), med([](const Run& x) { return x.handshake.down; }),
                  med([](const Run& x) { return x.close_bytes.total(); }));
    f.note = note;
    res.add(f);
    f = fig("incremental.empty_sync.bytes_total", kIncr,
            "a sync with nothing to send or receive (status, pull), both ways, as the transport counts", "bytes",
            col([](const Run& x) { return x.empty.transport_total(); }));
    res.add(f);
    f = fig("incremental.empty_sync.tcp_bytes_total", kIncr,
            "the same, TCP bytes both ways (a new TLS connection included)", "bytes",
            col([](const Run& x) { return x.empty.tcp.total(); }));
    res.add(f);
    f = fig("incremental.home_visit.bytes_sent", kIncr, "one home visit (a visit and a dispense): bytes sent, as the "
                                                        "transport counts (status, push, pull)",
            "bytes", col([](const Run& x) { return x.visit.bytes_sent; }));
    res.add(f);
    f = fig("incremental.home_visit.bytes_received", kIncr, "one home visit: bytes received, as the transport counts",
            "bytes", col([](const Run& x) { return x.visit.bytes_received; }));
    res.add(f);
    f = fig("incremental.home_visit.bytes_total", kIncr,
            "one home visit: bytes both ways as the transport counts (bodies compressed + request/status lines + "
            "headers)",
            "bytes", col([](const Run& x) { return x.visit.transport_total(); }));
    f.limit = med([](const Run& x) { return x.visit_payload; });
    f.limit_what = payload_limit;
    f.target = 1024;
    res.add(f);
    f = fig("incremental.home_visit.http_bytes_total", kIncr,
            "one home visit: exact HTTP bytes both ways (the same sync over http://, captured by the proxy)", "bytes",
            col([](const Run& x) { return x.http_total; }));
    f.limit = med([](const Run& x) { return x.visit_payload; });
    f.limit_what = payload_limit;
    f.target = 1024;
    res.add(f);
    f = fig("incremental.home_visit.tcp_bytes_total", kIncr,
            "one home visit: TCP bytes both ways, TLS and its handshake on a new connection included (proxy)", "bytes",
            col([](const Run& x) { return x.visit.tcp.total(); }));
    f.limit = med([](const Run& x) { return x.visit_payload; });
    f.limit_what = payload_limit;
    f.target = 1024;
    res.add(f);
    f = fig("incremental.home_visit.seconds", kIncr, "one home visit's `station-cli sync` on loopback (wall time)", "s",
            col([](const Run& x) { return x.visit.child.seconds; }));
    res.add(f);
    f = fig("incremental.home_visit_2g.seconds", kIncr,
            std::string("one home visit's `station-cli sync` at 2G (") + rate_text + ")", "s",
            col([](const Run& x) { return x.visit2g.child.seconds; }));
    f.limit = med([&](const Run& x) { return x.visit2g_payload * 8 / rate_bps + rtt_s; });
    f.limit_what = "the payload's gzipped bytes at the link rate plus one round trip";
    res.add(f);
    f = fig("incremental.home_visit_2g.tcp_bytes_total", kIncr, "that sync: TCP bytes both ways (proxy)", "bytes",
            col([](const Run& x) { return x.visit2g.tcp.total(); }));
    f.limit = med([](const Run& x) { return x.visit2g_payload; });
    f.limit_what = payload_limit;
    res.add(f);
    f = fig("incremental.mobile_day_2g.seconds", kIncr,
            std::string("a mobile team's day (50 visits each with a dispense, 10 patient edits) in one `station-cli "
                        "sync` at 2G (") +
                rate_text + ")",
            "s", col([](const Run& x) { return x.day2g.child.seconds; }));
    f.limit = med([&](const Run& x) { return x.day_payload * 8 / rate_bps + rtt_s; });
    f.limit_what = "the payload's gzipped bytes at the link rate plus one round trip";
    res.add(f);
    f = fig("incremental.mobile_day_2g.bytes_total", kIncr, "that sync: bytes both ways, as the transport counts",
            "bytes", col([](const Run& x) { return x.day2g.transport_total(); }));
    f.limit = med([](const Run& x) { return x.day_payload; });
    f.limit_what = payload_limit;
    res.add(f);
    f = fig("incremental.mobile_day_2g.tcp_bytes_total", kIncr, "that sync: TCP bytes both ways (proxy)", "bytes",
            col([](const Run& x) { return x.day2g.tcp.total(); }));
    f.limit = med([](const Run& x) { return x.day_payload; });
    f.limit_what = payload_limit;
    res.add(f);
  }

  // --- details ----------------------------------------------------------------------------
  json& d = res.details();
  d["scale"] = o.scale;
  d["runs"] = o.runs;
  d["station"] = {{"patients", st.patient_count},
                  {"events", st.visits + st.dispenses + st.receipts + st.voids},
                  {"visits", st.visits},
                  {"dispenses", st.dispenses},
                  {"receipts", st.receipts},
                  {"voids", st.voids},
                  {"items", st.items},
                  {"changes", st.changes},
                  {"generated_through_apply_changes", st.generated_changes},
                  {"build_seconds", st.build_seconds},
                  {"apply_changes_seconds", st.apply_seconds}};
  d["link_2g"] = {{"rate_kbit_each_way", o.rate_kbit},
                  {"rtt_ms", o.rtt_ms},
                  {"tcp_connect_rtt_modelled", true},
                  {"not_modelled", "TCP/IP headers, loss, slow start"}};
  d["mobile_day"] = {{"visits", kMobileVisits}, {"patient_edits", kMobileEdits}, {"changes", runs.front().day_changes}};
  json per_run = json::array();
  for (const auto& x : runs) {
    auto sj = [](const SyncOut& s) {
      return json{{"seconds", s.child.seconds}, {"sent", s.sent},       {"received", s.received},
                  {"bytes_sent", s.bytes_sent}, {"bytes_received", s.bytes_received}, {"requests", s.requests},
                  {"tcp_up", s.tcp.up},         {"tcp_down", s.tcp.down}, {"connections", s.tcp.connections},
                  {"peak_mib", s.child.peak_mib}};
    };
    per_run.push_back({{"first_push", sj(x.push)},
                       {"initial_sync", sj(x.init)},
                       {"initial_enroll_seconds", x.enroll_s},
                       {"initial_tcp", {{"up", x.init_tcp.up}, {"down", x.init_tcp.down}}},
                       {"empty_sync", sj(x.empty)},
                       {"home_visit", sj(x.visit)},
                       {"home_visit_2g", sj(x.visit2g)},
                       {"mobile_day_2g", sj(x.day2g)},
                       {"tls_handshake", {{"up", x.handshake.up}, {"down", x.handshake.down}}},
                       {"tls_close", {{"up", x.close_bytes.up}, {"down", x.close_bytes.down}}},
                       {"payload_gzip", {{"first_push", x.push_payload}, {"initial", x.init_payload},
                                         {"home_visit", x.visit_payload}, {"mobile_day", x.day_payload}}},
                       {"server_peak_mib", x.server_peak}});
  }
  d["per_run"] = per_run;
  d["home_visit_per_request"] = runs.back().breakdown;
  d["home_visit_first_request_and_answer_heads"] = runs.back().breakdown_headers;

  // The per-request table, for the reader.
  std::fprintf(stderr, "\none home visit over HTTP, per request (bytes on the wire; last run):\n");
  std::fprintf(stderr, "  %-22s %9s %9s %10s %9s %9s %10s %9s\n", "request", "req head", "req body", "(plain)",
               "resp head", "resp body", "(plain)", "total");
  int64_t th = 0, tb = 0, rh = 0, rb = 0;
  for (const auto& row : runs.back().breakdown) {
    const int64_t a = row["request_head"], b = row["request_body"], c = row["response_head"], e = row["response_body"];
    th += a;
    tb += b;
    rh += c;
    rb += e;
    std::fprintf(stderr, "  %-22s %9lld %9lld %10lld %9lld %9lld %10lld %9lld\n",
                 row["request"].get<std::string>().c_str(), static_cast<long long>(a), static_cast<long long>(b),
                 static_cast<long long>(row["request_body_plain"].get<int64_t>()), static_cast<long long>(c),
                 static_cast<long long>(e), static_cast<long long>(row["response_body_plain"].get<int64_t>()),
                 static_cast<long long>(a + b + c + e));
  }
  std::fprintf(stderr, "  %-22s %9lld %9lld %10s %9lld %9lld %10s %9lld\n", "all", static_cast<long long>(th),
               static_cast<long long>(tb), "", static_cast<long long>(rh), static_cast<long long>(rb), "",
               static_cast<long long>(th + tb + rh + rb));
  const Run& last = runs.back();
  std::fprintf(stderr,
               "  over TLS (station-cli, last run): %lld bytes, of which handshake %lld and closing %lld; "
               "transport's own count %lld\n",
               static_cast<long long>(last.visit.tcp.total()), static_cast<long long>(last.handshake.total()),
               static_cast<long long>(last.close_bytes.total()), static_cast<long long>(last.visit.transport_total()));

  stop_spawner();
  if (!res.write(o.json_out)) die("cannot write " + o.json_out);
  if (o.data.empty()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return 0;
}
