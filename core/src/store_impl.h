// Private machinery shared by the store's source files.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

#include "db.h"
#include "tramsync/core/hlc.h"
#include "tramsync/core/store.h"
#include "tramsync/core/time.h"

namespace tramsync {

using json = nlohmann::json;

// Thrown inside an action to abort it with an expected outcome; act() turns it
// back into a returned Error after the transaction rolled back.
struct AbortAction {
  Error error;
};

class StoreImpl;

// The change-log columns in the order read_change() reads them.
inline constexpr const char* kChangeColumns =
    "seq, origin, origin_seq, hlc, station_id, kind, record_id, payload, coalesce(from_peer, '')";
inline Change read_change(db::Stmt& q) {
  return Change{q.i64(0), q.str(1), q.i64(2), static_cast<uint64_t>(q.i64(3)), q.str(4),
                q.str(5), q.str(6), q.str(7), q.str(8)};
}

// One user action in progress: its write transaction, the clock, and the change
// log appends that go with it.
class Action {
 public:
  Action(StoreImpl& s, db::WriteTxn& txn);
  db::Db& db() { return txn_.db(); }
  db::WriteTxn& txn() { return txn_; }
  StoreImpl& store() { return s_; }

  // Appends one change for `record_id` of `kind` with this payload; returns its hlc.
  uint64_t append_change(const std::string& kind, const std::string& record_id, const std::string& station_id,
                         const json& payload);
  // The hlc the next append_change will use, for versions written with the record.
  uint64_t peek_hlc();
  // Appends a change received from `from_peer`, keeping its identity and clock,
  // and advances this node's clock past it (the HLC receive rule).
  void append_remote(const Change& c, const std::string& from_peer);
  // The change the last append_change or append_remote wrote, with its seq in
  // this node's log (for a command that returns what it appended).
  const Change& last_appended() const { return last_; }
  // Persists the clock. Called by act() before commit.
  void finish();

 private:
  void insert_change(const Change& c, const std::optional<std::string>& from_peer);

  StoreImpl& s_;
  db::WriteTxn& txn_;
  Hlc hlc_;
  std::optional<uint64_t> reserved_;
  int64_t next_origin_seq_ = 0;
  Change last_;
};

class StoreImpl {
 public:
  std::unique_ptr<db::Db> db;
  StoreOptions options;
  std::unique_ptr<Clock> own_clock;
  std::unique_ptr<IdSource> own_ids;
  Clock* clock = nullptr;
  IdSource* ids = nullptr;
  std::optional<Identity> ident;

  // Store::batch in progress: act() runs each action on the batch's
  // transaction and Action instead of its own, and keeps the first failure
  // (the batch then rolls back whatever its caller returns).
  struct Batch {
    Action* action = nullptr;
    std::optional<Error> failed;
  };
  Batch* batch = nullptr;

  // What a write that SQLite refused for the machine's sake (disk full, I/O,
  // read-only) is to the caller of action `name`.
  static Error write_failed(const char* name, const db::DbError& e) {
    return Error{ErrorCode::kIo, name, "database", "could not be written (" + std::string(e.what()) + ")", ""};
  }

  // Runs f(Action&) -> Result<T> in one BEGIN IMMEDIATE transaction; commits when
  // it returns a value, rolls back on an Error, AbortAction or exception. Inside
  // Store::batch, runs f in the batch's transaction (committed by the batch).
  template <typename F>
  auto act(const char* name, F&& f) -> decltype(f(std::declval<Action&>())) {
    using R = decltype(f(std::declval<Action&>()));
    if (batch) return act_in_batch<R>(name, f);
    try {
      db::WriteTxn txn(*db);
      Action action(*this, txn);
      R r = f(action);
      if (!r.ok()) return std::move(r.error()).in(name);
      action.finish();
      txn.commit();
      return r;
    } catch (AbortAction& a) {
      return std::move(a.error).in(name);
    } catch (const db::DbError& e) {
      if (!e.is_io()) throw;
      return write_failed(name, e);
    }
  }

  template <typename R, typename F>
  R act_in_batch(const char* name, F& f) {
    auto failed = [&](Error e) -> Error {
      if (!batch->failed) batch->failed = e;
      return e;
    };
    try {
      R r = f(*batch->action);
      if (!r.ok()) return failed(std::move(r.error()).in(name));
      return r;
    } catch (AbortAction& a) {
      return failed(std::move(a.error).in(name));
    } catch (const db::DbError& e) {
      Error err = failed(write_failed(name, e));
      if (!e.is_io()) throw;
      return err;
    }
  }

  int64_t now_ms() { return clock->now_ms(); }
  std::string local_now();
  Date today() { return date_of(local_now()); }
  int utc_offset();

  std::string meta(const std::string& key);
  void set_meta(db::WriteTxn& txn, const std::string& key, const std::string& value);
  Result<Identity> require_identity();
  const std::string& station_id();
  const std::string& device_id();

  // Field versions of an entity row as stored in its `_v` column.
  json versions(const char* table, const std::string& id);
  void set_versions(Action& a, const char* table, const std::string& id, const json& v);
  // Builds the {"field": [hlc, origin]} entries for `fields` at version (hlc, origin).
  static json version_of(uint64_t hlc, const std::string& origin);

  // Looks an item up by code (own station first, then the catalogue) or by id.
  Result<Item> find_item(const std::string& code_or_id);
  // What can be taken from one lot at station-local time `at` without its
  // balance going below zero then or at any later recorded movement.
  int64_t lot_available_at(const std::string& item_id, const std::string& lot, const std::string& at);
  bool event_voided(const std::string& event_id);
  // The station's waste batches as they stood at station-local time `as_of`
  // (made by then; stage = the furthest reached by then; age up to then).
  std::vector<WasteBatch> waste_as_of(const std::string& as_of, bool pending_only,
                                      std::optional<int64_t> older_than_days);
  Result<std::string> resolve(const std::string& record_kind, const std::string& id_or_prefix);
  // The stations a centre's report or list covers, by code: one station (its
  // code or id), the stations of a district (compared folded: "SIN HO" is Sìn
  // Hồ), both, or every station when both are empty. An unknown district or a
  // station outside the district is kInvalid, an unknown station kNotFound.
  Result<std::vector<StationInfo>> stations_in_scope(const std::string& station, const std::string& district);
};

// Reads Patient rows (shared by patient queries and reports).
Patient read_patient_row(db::Stmt& s);
extern const char* const kPatientColumns;

}  // namespace tramsync
