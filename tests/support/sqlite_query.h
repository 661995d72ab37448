// Reading a node's SQLite file directly with the sqlite3 C API, as an outside
// observer: the tests check what is in the file, not what the store says.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace tramsync::testing {

struct SqliteDb {
  sqlite3* db = nullptr;
  explicit SqliteDb(const std::string& path, int flags = SQLITE_OPEN_READWRITE) {
    if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
      std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close(db);
      throw std::runtime_error("cannot open " + path + ": " + msg);
    }
    // A program may be writing the file at the same moment (the kill tests
    // read while station-cli syncs): wait for its lock as the programs do.
    sqlite3_busy_timeout(db, 5000);
  }
  ~SqliteDb() { sqlite3_close(db); }
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error("cannot run " + sql + ": " + msg);
    }
  }
};

struct SqliteStmt {
  sqlite3_stmt* stmt = nullptr;
  SqliteStmt(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error("cannot prepare " + sql + ": " + sqlite3_errmsg(db));
    }
  }
  ~SqliteStmt() { sqlite3_finalize(stmt); }
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;
  bool step() {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(std::string("sqlite3_step: ") + sqlite3_errstr(rc));
  }
};

// One integer from a query on a node's file (e.g. a count); 0 without a row.
inline int64_t query_int(const std::string& path, const std::string& sql) {
  SqliteDb conn(path);
  SqliteStmt s(conn.db, sql);
  return s.step() ? sqlite3_column_int64(s.stmt, 0) : 0;
}

// The first column of every row of a query, as text.
inline std::vector<std::string> query_texts(const std::string& path, const std::string& sql) {
  SqliteDb conn(path);
  SqliteStmt s(conn.db, sql);
  std::vector<std::string> out;
  while (s.step()) out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s.stmt, 0)));
  return out;
}

}  // namespace tramsync::testing
