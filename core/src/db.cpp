#include "db.h"

#include "tramsync/core/status.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

#include <chrono>
#include <map>
#include <string>
#include <utility>

namespace tramsync::db {

bool DbError::is_io() const {
  switch (code_ & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return true;
    default:
      return false;
  }
}

namespace {
// Whether a failed write was for want of space: the filesystem holding the
// file nearly full, or the file (or its WAL) at the process's file-size limit.
// SQLite reports ENOSPC as SQLITE_FULL, but EFBIG (a file-size limit) and
// EDQUOT (a quota) only as SQLITE_IOERR_WRITE, and the errno it keeps may be
// overwritten by the time the error surfaces: so the file is looked at.
bool out_of_space(sqlite3* db) {
  const char* file = db ? sqlite3_db_filename(db, "main") : nullptr;
  if (!file || !*file) return false;
  const std::string path(file);
  const std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/'));
  struct statvfs fs {};
  if (::statvfs(dir.empty() ? "." : dir.c_str(), &fs) == 0 &&
      static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < 4u * 1024 * 1024) {
    return true;
  }
  rlimit lim{};
  if (::getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    for (const std::string& f : {path, path + "-wal", path + "-journal"}) {
      struct stat st {};
      if (::stat(f.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) + 64 * 1024 > lim.rlim_cur) return true;
    }
  }
  return false;
}

// SQLite's words for a failed call, except that a write refused for want of
// space says so in words a person acts on.
std::string explain(sqlite3* db, int rc, const char* sqlite_words) {
  const int primary = rc & 0xff;
  const int sys = db ? sqlite3_system_errno(db) : 0;
  if (primary == SQLITE_FULL ||
      (primary == SQLITE_IOERR && (sys == ENOSPC || sys == EFBIG || sys == EDQUOT ||
                                   ((rc == SQLITE_IOERR_WRITE || rc == SQLITE_IOERR) && out_of_space(db))))) {
    return std::string(kDiskFullText) + " (no space left to write the file: free some space and try again)";
  }
  return sqlite_words;
}

// The writer lock of each file this process has open, by device and inode (a
// file reached by two paths is one file). Entries live as long as a
// connection holds them.
std::shared_ptr<TimedMutex> writer_lock_of(const std::string& path) {
  static std::mutex mu;
  static std::map<std::pair<dev_t, ino_t>, std::weak_ptr<TimedMutex>> locks;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::make_shared<TimedMutex>();  // no file: nothing to share
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = locks.begin(); it != locks.end();) it = it->second.expired() ? locks.erase(it) : std::next(it);
  auto& slot = locks[{st.st_dev, st.st_ino}];
  auto m = slot.lock();
  if (!m) slot = m = std::make_shared<TimedMutex>();
  return m;
}
}  // namespace

std::unique_ptr<Db> Db::open(const std::string& path, int busy_timeout_ms) {
  // A new file is made owner-only (0600) before SQLite opens it, whatever the
  // umask: it holds health records and device tokens (a station's peers). SQLite
  // gives its -wal, -shm and -journal files the database file's mode. An
  // existing file keeps the mode its owner gave it.
  if (path != ":memory:" && !path.empty()) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
      (void)::fchmod(fd, 0600);
      ::close(fd);
    }
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close(raw);
    throw DbError(rc, "cannot open " + path + ": " + msg);
  }
  std::unique_ptr<Db> db(new Db(raw, writer_lock_of(path), busy_timeout_ms));
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  return db;
}

Db::~Db() {
  cache_.clear();  // finalize statements before closing
  sqlite3_close(db_);
}

void Db::fail(int rc, std::string_view what) const {
  throw DbError(rc, std::string(what) + ": " + explain(db_, rc, sqlite3_errmsg(db_)));
}

void Db::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = explain(db_, rc, err ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    throw DbError(rc, "sql failed: " + msg);
  }
}

Stmt Db::prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s,
                                nullptr);
    if (rc != SQLITE_OK) fail(rc, "prepare");
    it = cache_.emplace(sql, std::unique_ptr<sqlite3_stmt, Finalizer>(s)).first;
  }
  return Stmt(this, it->second.get());
}

int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int Db::changes() const { return sqlite3_changes(db_); }

Stmt::~Stmt() { release(); }

void Stmt::release() {
  if (s_) {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    s_ = nullptr;
  }
}

int Stmt::index(const char* name) const {
  int i = sqlite3_bind_parameter_index(s_, name);
  if (i == 0) throw DbError(SQLITE_RANGE, std::string("no SQL parameter named ") + name);
  return i;
}

Stmt& Stmt::bind(int i, std::nullopt_t) {
  int rc = sqlite3_bind_null(s_, i);
  if (rc != SQLITE_OK) db_->fail(rc, "bind");
  return *this;
}
Stmt& Stmt::bind(int i, int64_t v) {
  int rc = sqlite3_bind_int64(s_, i, v);
  if (rc != SQLITE_OK) db_->fail(rc, "bind");
  return *this;
}
Stmt& Stmt::bind(int i, double v) {
  int rc = sqlite3_bind_double(s_, i, v);
  if (rc != SQLITE_OK) db_->fail(rc, "bind");
  return *this;
}
Stmt& Stmt::bind(int i, std::string_view v) {
  int rc = sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) db_->fail(rc, "bind");
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_->fail(rc, "step");
}

void Stmt::run() {
  while (step()) {
  }
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
int64_t Stmt::i64(int col) const { return sqlite3_column_int64(s_, col); }
double Stmt::dbl(int col) const { return sqlite3_column_double(s_, col); }
int Stmt::column_count() const { return sqlite3_column_count(s_); }

std::string Stmt::str(int col) const {
  const unsigned char* t = sqlite3_column_text(s_, col);
  if (!t) return {};
  return std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(s_, col)));
}
std::optional<int64_t> Stmt::opt_i64(int col) const {
  if (is_null(col)) return std::nullopt;
  return i64(col);
}
std::optional<double> Stmt::opt_dbl(int col) const {
  if (is_null(col)) return std::nullopt;
  return dbl(col);
}

WriteTxn::WriteTxn(Db& db) : db_(db), turn_(*db.writer_, std::defer_lock) {
  if (!turn_.try_lock_for(std::chrono::milliseconds(db_.busy_timeout_ms_))) {
    throw DbError(SQLITE_BUSY, "sql failed: database is locked (another write of this process took longer than " +
                                   std::to_string(db_.busy_timeout_ms_) + " ms)");
  }
  db_.exec("BEGIN IMMEDIATE");
}
WriteTxn::~WriteTxn() {
  if (!done_) {
    // Never throw from a destructor; a failed rollback leaves SQLite to roll back on close.
    sqlite3_exec(db_.raw(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}
void WriteTxn::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

ReadTxn::ReadTxn(Db& db) : db_(db) {
  if (sqlite3_get_autocommit(db_.raw())) {
    db_.exec("BEGIN");
    active_ = true;
  }
}
ReadTxn::~ReadTxn() {
  if (active_) sqlite3_exec(db_.raw(), "COMMIT", nullptr, nullptr, nullptr);
}

}  // namespace tramsync::db
