// RAII over the SQLite C API. Private to core/: nothing outside the store sees
// sqlite3 handles or SQL text.
//
// A Db owns one connection and a cache of prepared statements keyed by SQL text
// (prepared with SQLITE_PREPARE_PERSISTENT). A Stmt borrowed from the cache is
// reset and unbound when it goes out of scope. Errors from SQLite that the
// caller did not expect (I/O errors, corruption, misuse) throw DbError; the
// store turns the I/O ones into Error{kIo} at its boundary.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

#include "tramsync/core/timed_mutex.h"

namespace tramsync::db {

class DbError : public std::runtime_error {
 public:
  DbError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }
  // Disk full, read-only, I/O: a condition of the machine, not a bug.
  bool is_io() const;

 private:
  int code_;
};

class Stmt;

class Db {
 public:
  static std::unique_ptr<Db> open(const std::string& path, int busy_timeout_ms);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements with no parameters and no results.
  void exec(std::string_view sql);
  // A cached prepared statement, reset on release.
  Stmt prepare(const std::string& sql);
  int64_t last_insert_rowid() const;
  int changes() const;
  sqlite3* raw() { return db_; }
  [[noreturn]] void fail(int rc, std::string_view what) const;

 private:
  friend class WriteTxn;
  Db(sqlite3* db, std::shared_ptr<TimedMutex> writer, int busy_timeout_ms)
      : db_(db), writer_(std::move(writer)), busy_timeout_ms_(busy_timeout_ms) {}
  sqlite3* db_;
  // Shared by every connection of this process to the same file: writers
  // queue here rather than in SQLite's busy handler (WriteTxn).
  std::shared_ptr<TimedMutex> writer_;
  int busy_timeout_ms_;
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<sqlite3_stmt, Finalizer>> cache_;
};

// A borrowed cached statement. Bind by 1-based index or by ":name".
class Stmt {
 public:
  Stmt(Db* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_) { o.s_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  Stmt& bind(int i, std::nullopt_t);
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, uint64_t v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, double v);
  Stmt& bind(int i, bool v) { return bind(i, static_cast<int64_t>(v ? 1 : 0)); }
  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  template <typename T>
  Stmt& bind(int i, const std::optional<T>& v) {
    if (v) return bind(i, *v);
    return bind(i, std::nullopt);
  }
  template <typename T>
  Stmt& bind(const char* name, const T& v) {
    return bind(index(name), v);
  }
  int index(const char* name) const;
  // Resets and gives the statement back to the cache now rather than at scope end.
  void release();

  // Steps once: true while a row is available.
  bool step();
  // Steps to completion, expecting no rows.
  void run();

  bool is_null(int col) const;
  int64_t i64(int col) const;
  double dbl(int col) const;
  std::string str(int col) const;  // NULL -> ""
  int column_count() const;
  std::optional<int64_t> opt_i64(int col) const;
  std::optional<double> opt_dbl(int col) const;

 private:
  Db* db_;
  sqlite3_stmt* s_;
};

// A write transaction: BEGIN IMMEDIATE on construction, ROLLBACK in the
// destructor unless commit() was called. Store functions that write take a
// WriteTxn& so that a write outside a transaction does not compile.
// BEGIN IMMEDIATE ... COMMIT, rolled back unless committed.
//
// Connections of one process to the same file take turns on a process-wide
// lock before BEGIN IMMEDIATE (waiting up to the busy timeout, then failing
// as SQLITE_BUSY would). Without it, concurrent writers in one process (the
// server's pushes) would poll SQLite's lock with sleeps that grow to 100 ms:
// 100 stations pushing at once kept a push waiting past the 5 s timeout and
// it failed with "database is locked" (bench/ingest_bench.cpp found it).
// Writers in other processes still meet SQLite's own lock and busy timeout.
class WriteTxn {
 public:
  explicit WriteTxn(Db& db);
  ~WriteTxn();
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;
  void commit();
  Db& db() { return db_; }

 private:
  Db& db_;
  std::unique_lock<TimedMutex> turn_;
  bool done_ = false;
};

// A read snapshot: BEGIN (deferred) ... COMMIT, so multi-query reads agree.
class ReadTxn {
 public:
  explicit ReadTxn(Db& db);
  ~ReadTxn();
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;

 private:
  Db& db_;
  bool active_ = false;
};

}  // namespace tramsync::db
