// What every benchmark program shares: figures with their runs, the limit
// beside them, the machine they ran on, and one JSON shape that
// tramsync-bench-table (table.cpp) turns into the table of bench/README.md.
//
// A Figure is one number a user or an operator feels (ms per action, changes
// per second, bytes on the wire), measured `runs.size()` times; the table
// shows its median and spread (min, max). Where the hardware or plain SQLite
// sets a limit for the same work, `limit` holds that figure measured the same
// way in the same run, and the table shows the ratio (how many times the
// limit's cost TramSync pays). `target` is the figure the project aims at
// (issue 7), shown beside it; nothing here asserts it.
#pragma once

#include <sqlite3.h>
#include <time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace tramsync::bench {

using json = nlohmann::json;

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The p-th percentile (0-100), nearest rank.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

class Stopwatch {
 public:
  Stopwatch() : t0_(std::chrono::steady_clock::now()) {}
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  double ms() const { return seconds() * 1000.0; }
  void restart() { t0_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point t0_;
};

// CPU seconds this process has used (all threads): on a shared machine, a
// figure's CPU cost is steadier than its wall time.
inline double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// A value from /proc/PID/status in MiB (VmHWM: peak resident, VmRSS: now); -1 if unreadable.
inline double proc_status_mib(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream in(line.substr(key.size() + 1));
      double kb = -1;
      in >> kb;
      return kb / 1024.0;
    }
  }
  return -1;
}

struct Figure {
  std::string id;     // stable key: "local.add_patient.median_ms"
  std::string group;  // the table section: "Local writes"
  std::string what;   // what was measured, in words
  std::string unit;   // ms, s, changes/s, records/s, bytes, MiB
  bool higher_is_better = false;
  std::vector<double> runs;
  std::optional<double> limit;  // the same work by the limit (median of its runs)
  std::string limit_what;       // what the limit is
  std::optional<double> target;  // the project's target, for the reader
  std::string note;
  // For the scaling table: whether the figure measures a whole job that grows
  // with the data (seconds of an initial sync, a report over all stations), as
  // opposed to a rate or one action's time. Unset: judged by the unit (s,
  // bytes and MiB are whole jobs).
  std::optional<bool> whole_job;

  // A figure without a limit or target (set those after, where there is one).
  static Figure of(std::string id, std::string group, std::string what, std::string unit, bool higher_is_better,
                   std::vector<double> runs) {
    Figure f;
    f.id = std::move(id);
    f.group = std::move(group);
    f.what = std::move(what);
    f.unit = std::move(unit);
    f.higher_is_better = higher_is_better;
    f.runs = std::move(runs);
    return f;
  }

  double value() const { return median(runs); }
  // How many times the limit's cost this is (>= 1 means slower/bigger than the limit).
  std::optional<double> ratio() const {
    if (!limit || *limit == 0 || runs.empty() || value() == 0) return std::nullopt;
    return higher_is_better ? *limit / value() : value() / *limit;
  }
  json to_json() const {
    json j{{"id", id},       {"group", group}, {"what", what}, {"unit", unit}, {"higher_is_better", higher_is_better},
           {"runs", runs},   {"median", value()}};
    if (!runs.empty()) {
      j["min"] = *std::min_element(runs.begin(), runs.end());
      j["max"] = *std::max_element(runs.begin(), runs.end());
    }
    if (limit) {
      j["limit"] = *limit;
      j["limit_what"] = limit_what;
    }
    if (auto r = ratio()) j["ratio"] = *r;
    if (target) j["target"] = *target;
    if (!note.empty()) j["note"] = note;
    if (whole_job) j["whole_job"] = *whole_job;
    return j;
  }
};

// The first column of the first row of `sql` on the file, read-only (waiting
// up to 10 s for a writer), with `arg` bound to ?1 when given; -1 on error.
inline int64_t count_rows(const std::string& file, const std::string& sql, const std::string& arg = "") {
  sqlite3* db = nullptr;
  sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_busy_timeout(db, 10'000);
  sqlite3_stmt* st = nullptr;
  int64_t n = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
    if (!arg.empty()) sqlite3_bind_text(st, 1, arg.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

inline std::string read_first_line(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    if (fgets(buf, sizeof buf, p)) out = buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

inline json machine() {
  utsname u{};
  uname(&u);
  std::string cpu;
  {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("model name", 0) == 0) {
        cpu = line.substr(line.find(':') + 2);
        break;
      }
    }
  }
  const double mem_gib = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE)) /
                         (1024.0 * 1024.0 * 1024.0);
  return json{{"cpu", cpu},
              {"cores", std::thread::hardware_concurrency()},
              {"memory_gib", std::round(mem_gib * 10) / 10},
              {"kernel", std::string(u.sysname) + " " + u.release},
              {"compiler", std::string("g++ ") + __VERSION__},
#ifdef NDEBUG
              {"build", "optimised (NDEBUG)"},
#else
              {"build", "debug (assertions on): figures are not representative"},
#endif
              {"sqlite", sqlite3_libversion()}};
}

// The figures of one benchmark program, written as one JSON document:
//   {"bench": NAME, "mode": "quick"|"full", "machine": {...}, "figures": [...], "details": {...}}
class Results {
 public:
  Results(std::string bench, std::string mode) : bench_(std::move(bench)), mode_(std::move(mode)) {}

  Figure& add(Figure f) {
    figures_.push_back(std::move(f));
    const Figure& g = figures_.back();
    std::fprintf(stderr, "  %-44s median %12.3f %s", g.id.c_str(), g.value(), g.unit.c_str());
    if (g.limit) std::fprintf(stderr, "   limit %.3f (ratio %.2f)", *g.limit, g.ratio().value_or(0));
    std::fprintf(stderr, "\n");
    return figures_.back();
  }
  json& details() { return details_; }

  json to_json() const {
    json figs = json::array();
    for (const auto& f : figures_) figs.push_back(f.to_json());
    return json{{"bench", bench_}, {"mode", mode_}, {"machine", machine()}, {"figures", figs}, {"details", details_}};
  }

  // Writes the JSON to `path` ("" : stdout). False (with a message) if it cannot.
  bool write(const std::string& path) const {
    const std::string text = to_json().dump(2) + "\n";
    if (path.empty()) {
      std::cout << text;
      return true;
    }
    std::ofstream f(path);
    f << text;
    f.close();
    if (!f) {
      std::cerr << "cannot write " << path << "\n";
      return false;
    }
    return true;
  }

 private:
  std::string bench_, mode_;
  std::vector<Figure> figures_;
  json details_ = json::object();
};

}  // namespace tramsync::bench
