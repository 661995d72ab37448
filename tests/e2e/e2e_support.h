// What the end-to-end tests share besides running the program: Vietnam dates,
// a content digest of a station file read with the sqlite3 C API, a strict CSV
// reader, and a fixture holding a fresh station file in its own directory.
#pragma once

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "support/sqlite_query.h"

namespace tramsync::e2e {

// --- dates -----------------------------------------------------------------------

// Station time is Vietnam time, UTC+7 all year, whatever the machine's TZ says.
inline std::chrono::sys_days vn_today() {
  using namespace std::chrono;
  return floor<days>(system_clock::now() + hours(7));
}

inline std::string iso(std::chrono::sys_days d) {
  std::chrono::year_month_day ymd{d};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  return buf;
}

// The date `n` days from Vietnam's today (negative: earlier), as YYYY-MM-DD.
inline std::string vn_day(int n) { return iso(vn_today() + std::chrono::days(n)); }

// Whole hours from a station-local "YYYY-MM-DDTHH:MM" to now.
inline int64_t hours_since_local(const std::string& local) {
  using namespace std::chrono;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  if (std::sscanf(local.c_str(), "%d-%d-%dT%d:%d", &y, &mo, &d, &h, &mi) != 5) {
    throw std::invalid_argument("not a local time: " + local);
  }
  sys_days day = year_month_day{year{y}, month{static_cast<unsigned>(mo)}, std::chrono::day{static_cast<unsigned>(d)}};
  auto then_utc = day + hours(h) + minutes(mi) - hours(7);
  return duration_cast<hours>(system_clock::now() - then_utc).count();
}

// --- the station file's content -----------------------------------------------------

// Every row of every table of a station file, read with the sqlite3 C API: the
// schema, user_version and, per table, its rows (rowid included where the table
// has one) as canonical text, sorted. Two snapshots are equal exactly when the
// file's content is; `digest` is an FNV-1a hash of all of it, for messages.
struct DbSnapshot {
  std::string schema;
  int64_t user_version = 0;
  std::map<std::string, std::vector<std::string>> tables;
  int64_t change_count = 0;
  uint64_t digest = 0;

  // Names of the tables whose rows differ (or exist in one snapshot only).
  std::vector<std::string> differing_tables(const DbSnapshot& other) const {
    std::vector<std::string> out;
    if (schema != other.schema) out.emplace_back("(schema)");
    if (user_version != other.user_version) out.emplace_back("(user_version)");
    for (const auto& [name, rows] : tables) {
      auto it = other.tables.find(name);
      if (it == other.tables.end() || it->second != rows) out.push_back(name);
    }
    for (const auto& [name, rows] : other.tables) {
      if (!tables.count(name)) out.push_back(name);
    }
    return out;
  }
};

namespace detail {
inline void fnv(uint64_t& h, const std::string& s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h ^= 0xff;  // separator, so ("ab","c") and ("a","bc") differ
  h *= 1099511628211ULL;
}

using testing::SqliteDb;
using testing::SqliteStmt;

inline std::string cell_text(sqlite3_stmt* s, int c) {
  switch (sqlite3_column_type(s, c)) {
    case SQLITE_NULL:
      return "N";
    case SQLITE_INTEGER:
      return "I" + std::to_string(sqlite3_column_int64(s, c));
    case SQLITE_FLOAT: {
      char buf[40];
      std::snprintf(buf, sizeof buf, "F%.17g", sqlite3_column_double(s, c));
      return buf;
    }
    case SQLITE_TEXT: {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
      return "T" + std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, c)));
    }
    default: {
      const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(s, c));
      int n = sqlite3_column_bytes(s, c);
      std::string hex = "B";
      char b[3];
      for (int i = 0; i < n; ++i) {
        std::snprintf(b, sizeof b, "%02x", p[i]);
        hex += b;
      }
      return hex;
    }
  }
}
}  // namespace detail

inline DbSnapshot snapshot(const std::string& path) {
  DbSnapshot snap;
  detail::SqliteDb conn(path);
  sqlite3* db = conn.db;
  // One read transaction, so the snapshot is of one state of the file.
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  {
    detail::SqliteStmt s(db, "PRAGMA user_version");
    if (s.step()) snap.user_version = sqlite3_column_int64(s.stmt, 0);
  }
  std::vector<std::string> names;
  {
    detail::SqliteStmt s(db, "SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name");
    while (s.step()) {
      std::string type = reinterpret_cast<const char*>(sqlite3_column_text(s.stmt, 0));
      std::string name = reinterpret_cast<const char*>(sqlite3_column_text(s.stmt, 1));
      snap.schema += type + " " + name + ": " + reinterpret_cast<const char*>(sqlite3_column_text(s.stmt, 2)) + "\n";
      // Every table, the FTS5 index and its shadow tables included; of SQLite's
      // own tables only sqlite_sequence holds data of the file's.
      if (type == "table" && (name.rfind("sqlite_", 0) != 0 || name == "sqlite_sequence")) names.push_back(name);
    }
  }
  for (const auto& name : names) {
    std::string quoted = "\"" + name + "\"";
    sqlite3_stmt* probe = nullptr;
    // rowid too where there is one (WITHOUT ROWID tables refuse it).
    std::string sql = "SELECT rowid, * FROM " + quoted;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &probe, nullptr) != SQLITE_OK) sql = "SELECT * FROM " + quoted;
    sqlite3_finalize(probe);
    detail::SqliteStmt s(db, sql);
    std::vector<std::string> rows;
    int n = sqlite3_column_count(s.stmt);
    while (s.step()) {
      std::string row;
      for (int c = 0; c < n; ++c) {
        if (c) row += '\x1f';
        row += detail::cell_text(s.stmt, c);
      }
      rows.push_back(std::move(row));
    }
    std::sort(rows.begin(), rows.end());
    snap.tables[name] = std::move(rows);
  }
  {
    detail::SqliteStmt s(db, "SELECT count(*) FROM changes");
    if (s.step()) snap.change_count = sqlite3_column_int64(s.stmt, 0);
  }
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);

  uint64_t h = 14695981039346656037ULL;
  detail::fnv(h, snap.schema);
  detail::fnv(h, std::to_string(snap.user_version));
  for (const auto& [name, rows] : snap.tables) {
    detail::fnv(h, name);
    for (const auto& r : rows) detail::fnv(h, r);
  }
  snap.digest = h;
  return snap;
}

// A copy of the file at `src` made the way an operator makes a backup of a
// file in use: SQLite's online backup API (what `sqlite3 FILE .backup DST` does).
inline void backup_file(const std::string& src, const std::string& dst) {
  testing::SqliteDb from(src), to(dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3_backup* b = sqlite3_backup_init(to.db, "main", from.db, "main");
  if (!b) throw std::runtime_error("cannot back up " + src + ": " + sqlite3_errmsg(to.db));
  const int rc = sqlite3_backup_step(b, -1);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) throw std::runtime_error("backup of " + src + " failed: " + sqlite3_errstr(rc));
}

using testing::query_int;    // tests/support/sqlite_query.h
using testing::query_texts;

// --- CSV ---------------------------------------------------------------------------

// Reads RFC 4180 CSV strictly: records end with CRLF (`require_crlf`) or LF,
// fields may be quoted with "" for a quote inside; a quote inside an unquoted
// field, text after a closing quote or an unclosed quote is an error (nullopt).
inline std::optional<std::vector<std::vector<std::string>>> parse_csv(const std::string& text,
                                                                      bool require_crlf = true) {
  std::vector<std::vector<std::string>> out;
  std::vector<std::string> rec;
  std::string cell;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    // One field.
    cell.clear();
    if (text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        if (text[i] == '"') {
          if (i + 1 < n && text[i + 1] == '"') {
            cell += '"';
            i += 2;
          } else {
            ++i;
            closed = true;
            break;
          }
        } else {
          cell += text[i++];
        }
      }
      if (!closed) return std::nullopt;
    } else {
      while (i < n && text[i] != ',' && text[i] != '\r' && text[i] != '\n') {
        if (text[i] == '"') return std::nullopt;
        cell += text[i++];
      }
    }
    rec.push_back(cell);
    if (i == n) return std::nullopt;  // the last record must end with a line end
    if (text[i] == ',') {
      ++i;
      continue;
    }
    if (text[i] == '\r') {
      if (i + 1 >= n || text[i + 1] != '\n') return std::nullopt;
      i += 2;
    } else if (text[i] == '\n') {
      if (require_crlf) return std::nullopt;
      ++i;
    } else {
      return std::nullopt;  // text after a closing quote
    }
    out.push_back(std::move(rec));
    rec.clear();
  }
  return out;
}

// A random lower-case version-4 UUID, as device and database ids are.
inline std::string random_uuid() {
  std::random_device rd;
  std::uniform_int_distribution<int> hex(0, 15);
  std::string s = "xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx";
  for (char& ch : s) {
    if (ch == 'x') ch = "0123456789abcdef"[hex(rd)];
  }
  return s;
}

// --- a fresh station ------------------------------------------------------------------

// A station file in a fresh temporary directory and a runner bound to it, whose
// children run in that directory. The file does not exist until a test runs
// `init`; it is not named station.db (station-cli's default), so a command that
// forgets --db cannot find it by accident.
struct StationFixture {
  TempDir dir;
  std::string db = dir.file("tram-sinho.db");
  CliRunner cli{db, dir.path().string()};

  // Writes `content` to a file in the directory and returns its path.
  std::string write_file(const std::string& name, const std::string& content) const {
    std::string path = dir.file(name);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot write " + path);
    std::fwrite(content.data(), 1, content.size(), f);
    std::fclose(f);
    return path;
  }

  int64_t patient_count() const { return query_int(db, "SELECT count(*) FROM patients"); }
};

}  // namespace tramsync::e2e
