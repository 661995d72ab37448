// Shared fixture for the core unit tests.
//
// Every test gets a fresh temporary directory (removed afterwards), a ManualClock
// standing at 2026-11-20T09:00 station time (UTC+7) and a seeded RandomIdSource,
// so ids, times and change-log hlc values are the same on every run. Nothing
// here sleeps or touches the network.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/temp_dir.h"
#include "tramsync/core/clock.h"
#include "tramsync/core/model.h"
#include "tramsync/core/status.h"
#include "tramsync/core/store.h"

namespace tramsync::test {

using json = nlohmann::json;
using Catch::Matchers::Contains;

// 2026-11-20T02:00:00Z, i.e. 2026-11-20T09:00:00 in Vietnam (UTC+7).
inline constexpr int64_t kStartMs = 1'795'140'000'000;
inline constexpr int64_t kMinuteMs = 60'000;
inline constexpr int64_t kHourMs = 60 * kMinuteMs;
inline constexpr int64_t kDayMs = 24 * kHourMs;
inline constexpr const char* kStartLocal = "2026-11-20T09:00:00";
inline constexpr const char* kToday = "2026-11-20";

// A fresh temporary directory per test (tests/support/temp_dir.h).
class TempDir : public testing::TempDir {
 public:
  TempDir() : testing::TempDir("tramsync-core") {}
};

// The value of a Result that must have succeeded; fails the test with the
// error's message otherwise.
template <typename T>
T must(Result<T> r) {
  INFO("unexpected error: " << (r.ok() ? std::string() : r.error().message()));
  REQUIRE(r.ok());
  return std::move(r).value();
}

inline void must(Status s) {
  INFO("unexpected error: " << (s.ok() ? std::string() : s.error().message()));
  REQUIRE(s.ok());
}

// A patient with the fields every test needs and no others.
inline PatientInput patient_input(const std::string& name, const std::string& village = "Thôn Đông",
                                  std::vector<std::string> categories = {}, const std::string& birth = "1950",
                                  const std::string& sex = "female") {
  PatientInput in;
  in.name = name;
  in.sex = sex;
  in.birth = birth;
  in.village = village;
  in.categories = std::move(categories);
  return in;
}

// The error of a Result that must have failed.
template <typename T>
Error must_fail(Result<T> r) {
  REQUIRE_FALSE(r.ok());
  return r.error();
}

inline Error must_fail(Status s) {
  REQUIRE_FALSE(s.ok());
  return s.error();
}

// A store in a fresh directory, opened with the manual clock and seeded ids.
// `fail_kind`: when set, the before_change_append hook refuses changes of that
// kind (the atomicity tests' fault injection).
class StoreFixture {
 public:
  // Opens the store, migrated up to `schema_version_limit` (0: all), and makes it
  // a station's when `init`.
  explicit StoreFixture(bool init = true, int schema_version_limit = 0) {
    open(schema_version_limit);
    if (init) {
      identity = must(store->init_station("TYT-ANHOA", "Trạm Y tế xã An Hòa", "laptop-1", "Huyện Đông Anh", "Hà Nội"));
    }
  }
  virtual ~StoreFixture() = default;

  StoreOptions options(int schema_version_limit = 0) {
    StoreOptions o;
    o.clock = &clock;
    o.ids = &id_source;
    o.schema_version_limit = schema_version_limit;
    o.before_change_append = [this](const std::string& kind) -> Status {
      if (!fail_kind.empty() && kind == fail_kind) {
        return Error{ErrorCode::kIo, "", "disk", "injected failure before appending a " + kind + " change", ""};
      }
      return {};
    };
    return o;
  }

  void open(int schema_version_limit = 0) { store = must(Store::open(path(), options(schema_version_limit))); }
  void close() { store.reset(); }
  void reopen(int schema_version_limit = 0) {
    close();
    open(schema_version_limit);
  }

  std::string path() const { return dir.file("station.tramsync"); }

  // --- helpers for the common records ---------------------------------------

  std::string add_patient(const std::string& name, const std::string& village = "Thôn Đông",
                          std::vector<std::string> categories = {}, const std::string& birth = "1950",
                          const std::string& sex = "female") {
    return must(store->add_patient(patient_input(name, village, std::move(categories), birth, sex)));
  }

  std::string add_item(const std::string& code, const std::string& unit = "tablet",
                       std::optional<int64_t> reserve = std::nullopt, const std::string& name = "") {
    ItemInput in;
    in.code = code;
    in.name = name.empty() ? code + " name" : name;
    in.unit = unit;
    in.reserve = reserve;
    return must(store->add_item(in));
  }

  std::string receive(const std::string& item, int64_t quantity, const std::string& lot, const std::string& expiry,
                      std::optional<std::string> at = std::nullopt) {
    ReceiveInput in;
    in.item = item;
    in.quantity = quantity;
    in.lot = lot;
    in.expiry = expiry;
    in.source = "TTYT huyện";
    in.at = std::move(at);
    return must(store->receive(in));
  }

  std::vector<std::string> dispense(const std::string& patient, const std::string& item, int64_t quantity,
                                    std::optional<int> days = std::nullopt,
                                    std::optional<std::string> at = std::nullopt,
                                    std::optional<std::string> lot = std::nullopt) {
    DispenseInput in;
    in.patient_id = patient;
    in.item = item;
    in.quantity = quantity;
    in.days_supply = days;
    in.at = std::move(at);
    in.lot = std::move(lot);
    return must(store->dispense(in));
  }

  std::string visit(const std::string& patient, std::optional<std::string> at = std::nullopt) {
    VisitInput in;
    in.patient_id = patient;
    in.at = std::move(at);
    in.temp_c = 37.2;
    in.spo2 = 97;
    return must(store->add_visit(in));
  }

  std::vector<Change> all_changes() { return store->changes_after(0, 10'000'000); }

  // Names of the patients a search finds, in the store's order.
  std::vector<std::string> search(const std::string& text) {
    PatientQuery q;
    q.search = text;
    std::vector<std::string> names;
    for (const auto& row : store->list_patients(q)) names.push_back(row.patient.name);
    return names;
  }

  // The stock of one item, by code; fails the test when the item is not listed.
  ItemStock stock_of(const std::string& code) {
    for (auto& s : store->stock()) {
      if (s.item_code == code) return s;
    }
    FAIL("item " << code << " is not in the stock list");
    return {};
  }

  // On hand of one lot of an item as the stock list shows it (0 when not listed).
  int64_t lot_on_hand(const std::string& code, const std::string& lot) {
    for (const auto& l : stock_of(code).lots) {
      if (l.lot == lot) return l.on_hand;
    }
    return 0;
  }

  TempDir dir;
  ManualClock clock{kStartMs};
  RandomIdSource id_source{20261120};
  std::string fail_kind;
  std::unique_ptr<Store> store;
  Identity identity;
};

// A store file that is created but not initialised as a station.
class BareStoreFixture : public StoreFixture {
 public:
  BareStoreFixture() : StoreFixture(false) {}
};

}  // namespace tramsync::test
