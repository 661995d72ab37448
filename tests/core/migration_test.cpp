// Opening files: migrations from older schemas keep every record; files this
// version cannot handle are refused with a clear error and left untouched.
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fixture.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {

// A plain sqlite3 connection, for writing a file the way an older TramSync (or
// something else entirely) would have.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_close(db_);
      db_ = nullptr;
      FAIL("cannot open " << path << ": " << sqlite3_errstr(rc));
    }
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    const std::string msg = err ? err : "";
    sqlite3_free(err);
    INFO(sql << ": " << msg);
    REQUIRE(rc == SQLITE_OK);
  }

  // Runs one statement with text parameters ?1, ?2, ...
  void run(const std::string& sql, const std::vector<std::string>& params) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr);
    INFO(sql << ": " << sqlite3_errmsg(db_));
    REQUIRE(rc == SQLITE_OK);
    for (size_t i = 0; i < params.size(); ++i) {
      sqlite3_bind_text(s, static_cast<int>(i) + 1, params[i].c_str(), static_cast<int>(params[i].size()),
                        SQLITE_TRANSIENT);
    }
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    REQUIRE(rc == SQLITE_DONE);
  }

  int64_t scalar(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    int64_t v = -1;
    if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// A file made by a TramSync that knew only schema version 1.
class V1Fixture : public StoreFixture {
 public:
  V1Fixture() : StoreFixture(false, 1) {}
};

}  // namespace

TEST_CASE_METHOD(V1Fixture, "a version 1 file is migrated on open and keeps all its records", "[core][migration]") {
  REQUIRE(store->schema_version() == 1);
  REQUIRE(Store::latest_schema_version() > 1);

  // What a v1 store can do: the station, items, households.
  identity = must(store->init_station("TYT-CU", "Trạm Y tế xã Cũ", "laptop-cu"));
  const std::string item = add_item("PARA500", "tablet", 50, "Paracetamol 500 mg");
  HouseholdInput h;
  h.village = "Thôn Đông";
  h.head_name = "Nguyễn Văn Ba";
  const std::string household = must(store->add_household(h));
  close();

  // Rows only as v1's columns could hold them, written raw so that later
  // migrations' columns cannot creep in: a receipt with its change, and
  // patients (v1 had no search index yet), one name typed in NFD.
  int64_t changes_v1 = 0;
  {
    RawDb raw(path());
    REQUIRE(raw.scalar("PRAGMA user_version") == 1);
    raw.run("INSERT INTO stock_movements(id, station_id, item_id, kind, lot, expiry, quantity, at, origin, hlc) "
            "VALUES ('44444444-4444-4444-8444-444444444444', ?1, ?2, 'receipt', 'L1', '2027-06-30', 120, "
            "'2026-11-01T07:00:00', ?3, (SELECT max(hlc) + 1 FROM changes))",
            {identity.station_id, item, identity.device_id});
    raw.run("INSERT INTO changes(origin, origin_seq, hlc, station_id, kind, record_id, payload) "
            "SELECT ?1, (SELECT max(origin_seq) + 1 FROM changes), hlc, station_id, 'stock_movement', id, "
            "json_object('id', id, 'station_id', station_id, 'item_id', item_id, 'kind', kind, 'lot', lot, "
            "'expiry', expiry, 'quantity', quantity, 'patient_id', NULL, 'days_supply', NULL, 'reason', '', "
            "'counterpart', '', 'at', at) FROM stock_movements",
            {identity.device_id});
    raw.exec("UPDATE meta SET value = (SELECT CAST(max(hlc) AS TEXT) FROM changes) WHERE key = 'hlc'");
    changes_v1 = raw.scalar("SELECT count(*) FROM changes");
    REQUIRE(changes_v1 == 5);  // station, item, reserve, household, receipt
    const std::string ins =
        "INSERT INTO patients(id, station_id, household_id, name, sex, birth, village, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '2026-11-01T08:00:00')";
    raw.run(ins, {"11111111-1111-4111-8111-111111111111", identity.station_id, household, "Nguyễn Văn An", "male",
                  "1950", "Thôn Đông"});
    raw.run("INSERT INTO patients(id, station_id, name, sex, birth, village, created_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, '2026-11-01T08:00:00')",
            {"22222222-2222-4222-8222-222222222222", identity.station_id, "Đặng Thị Thu", "female", "1962",
             "Xóm Bãi"});
    raw.run("INSERT INTO patients(id, station_id, name, sex, birth, village, created_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, '2026-11-01T08:00:00')",
            {"33333333-3333-4333-8333-333333333333", identity.station_id, "Tra\xCC\x82\xCC\x80n Thi\xCC\xA3 Mai",
             "female", "1970", "Thôn Tây"});
    raw.run("INSERT INTO patient_sets(patient_id, field, value, present, hlc, origin) "
            "VALUES (?1, 'categories', 'elderly', 1, 1, ?2)",
            {"11111111-1111-4111-8111-111111111111", identity.device_id});
  }

  open();
  CHECK(store->schema_version() == Store::latest_schema_version());
  CHECK(store->integrity_check() == "ok");

  // Identity and change log unchanged.
  Identity after = must(store->identity());
  CHECK(after.station_id == identity.station_id);
  CHECK(after.station_code == "TYT-CU");
  CHECK(after.device_id == identity.device_id);
  CHECK(after.database_id == identity.database_id);
  CHECK(store->change_count() == changes_v1);

  // Stock and the reserve survived.
  ItemStock s = stock_of("PARA500");
  CHECK(s.on_hand == 120);
  CHECK(s.reserve == 50);
  CHECK(must(store->get_household(household)).head_name == "Nguyễn Văn Ba");

  // Patients written at v1 were indexed by migration 2's backfill.
  CHECK(search("nguyen van an") == std::vector<std::string>{"Nguyễn Văn An"});
  CHECK(search("dang") == std::vector<std::string>{"Đặng Thị Thu"});
  CHECK(search("tran thi mai").size() == 1);
  CHECK(search("bai") == std::vector<std::string>{"Đặng Thị Thu"});
  PatientQuery q;
  q.village = "thon dong";
  auto rows = store->list_patients(q);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].patient.name == "Nguyễn Văn An");
  CHECK(rows[0].patient.categories == std::vector<std::string>{"elderly"});
  CHECK(store->household_members(household).size() == 1);

  // The migrated file takes new writes, and the log carries on where it stopped.
  const std::string added = add_patient("Lê Văn Tư", "Thôn Tây");
  auto changes = all_changes();
  REQUIRE(changes.size() == 6);
  CHECK(changes.back().record_id == added);
  CHECK(changes.back().origin_seq == 6);
  CHECK(changes.back().hlc > changes[4].hlc);
  CHECK(search("thon tay").size() == 2);

  // Migration 3's tables are there: status reads the sync peers.
  StatusInfo st = must(store->status());
  CHECK(st.schema_version == Store::latest_schema_version());
  CHECK(st.changes_total == 6);
  CHECK(st.changes_pending == 6);
  CHECK(st.last_sync.empty());
}

TEST_CASE_METHOD(StoreFixture, "reopening a current file changes nothing", "[core][migration]") {
  add_patient("Nguyễn Văn An");
  const Identity before = must(store->identity());
  reopen();
  CHECK(store->schema_version() == Store::latest_schema_version());
  const Identity after = must(store->identity());
  CHECK(after.database_id == before.database_id);
  CHECK(after.device_id == before.device_id);
  CHECK(after.utc_offset_minutes == 420);
  CHECK(store->change_count() == 2);
  CHECK(search("an").size() == 1);
  // A limit below the file's version does not take it back.
  reopen(1);
  CHECK(store->schema_version() == Store::latest_schema_version());
}

TEST_CASE_METHOD(BareStoreFixture, "a new file gets a random database identity before it is a station's",
                 "[core][migration]") {
  CHECK(store->schema_version() == Store::latest_schema_version());
  CHECK_FALSE(store->initialized());
  Identity id = must(store->init_station("TYT-MOI", "Trạm mới", ""));
  CHECK(id.database_id.size() == 36);
  CHECK(id.device_id.size() == 36);
  CHECK(id.device_name == "station");
  CHECK(id.database_id != id.device_id);
  CHECK(id.database_id != id.station_id);
}

TEST_CASE("a file made by a newer TramSync is refused and left as it was", "[core][migration]") {
  TempDir dir;
  const std::string path = dir.file("newer.tramsync");
  {
    RawDb raw(path);
    raw.exec("CREATE TABLE future_things(x TEXT); PRAGMA user_version = 999;");
  }
  ManualClock clock(kStartMs);
  StoreOptions o;
  o.clock = &clock;
  auto r = Store::open(path, o);
  Error e = must_fail(std::move(r));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK_THAT(e.message(), Contains("newer TramSync") && Contains("schema version 999") &&
                              Contains("knows up to " + std::to_string(Store::latest_schema_version())));
  RawDb check(path);
  CHECK(check.scalar("PRAGMA user_version") == 999);
  CHECK(check.scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'meta'") == 0);
}

TEST_CASE("a file that is not a database is refused and not changed", "[core][migration]") {
  TempDir dir;
  const std::string path = dir.file("patients.csv");
  std::string content = "name,sex,birth,village\n";
  for (int i = 0; i < 100; ++i) content += "Nguyễn Văn An,male,1950,Thôn Đông\n";
  {
    std::ofstream f(path, std::ios::binary);
    f << content;
  }
  auto r = Store::open(path, {});
  Error e = must_fail(std::move(r));
  CHECK(e.code == ErrorCode::kIo);
  CHECK_THAT(e.message(), Contains("cannot be opened") && Contains("not a database") && Contains(path));
  CHECK(read_file(path) == content);
  CHECK_FALSE(std::filesystem::exists(path + "-wal"));
}

TEST_CASE("another program's SQLite database is refused and left as it was", "[core][migration]") {
  // Pointed at the wrong .db file (a pharmacy program's, say), Store::open must
  // not create TramSync's tables in it: a file that already has tables but no
  // TramSync schema is refused like a file that is not a database.
  TempDir dir;
  const std::string path = dir.file("pharmacy.db");
  {
    RawDb raw(path);
    raw.exec("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers(name) VALUES ('An');");
  }
  auto r = Store::open(path, {});
  CHECK_FALSE(r.ok());
  r = Error{};  // close the store, if it was opened, before looking at the file
  RawDb check(path);
  CHECK(check.scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'changes'") == 0);
  CHECK(check.scalar("PRAGMA user_version") == 0);
}

TEST_CASE("a file in a directory that does not exist is refused", "[core][migration]") {
  TempDir dir;
  const std::string path = (dir.path() / "missing" / "station.tramsync").string();
  Error e = must_fail(Store::open(path, {}));
  CHECK(e.code == ErrorCode::kIo);
  CHECK_THAT(e.message(), Contains("cannot be opened"));
}

TEST_CASE_METHOD(StoreFixture, "initialising a station twice is refused", "[core][migration][identity]") {
  const auto before = store->change_count();
  Error e = must_fail(store->init_station("TYT-KHAC", "Trạm khác", "laptop-2"));
  CHECK(e.code == ErrorCode::kConflict);
  CHECK(e.message() == "init: station file is already initialised for station TYT-ANHOA");
  CHECK(store->change_count() == before);
  CHECK(must(store->identity()).station_code == "TYT-ANHOA");

  reopen();
  CHECK(must_fail(store->init_station("TYT-KHAC", "Trạm khác", "laptop-2")).code == ErrorCode::kConflict);
  CHECK(must(store->identity()).station_id == identity.station_id);
}

TEST_CASE_METHOD(BareStoreFixture, "a station code with spaces or an empty name is refused", "[core][identity]") {
  CHECK_THAT(must_fail(store->init_station("TYT AN", "Trạm", "")).message(),
             Contains("station must be a code without spaces or slashes") && Contains("TYT AN"));
  CHECK_THAT(must_fail(store->init_station("TYT-AN", " ", "")).message(), Contains("init: name must not be empty"));
  CHECK_FALSE(store->initialized());
  CHECK(store->change_count() == 0);
}
