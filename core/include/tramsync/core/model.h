// The records a station keeps, as C++ types.
//
// Entities (station, staff, household, patient, item, item reserve, waste batch)
// are mutable and merged field by field. Events (visit, stock movement, waste
// stage change, void) are immutable facts inserted once; a mistake is corrected by
// a later void event. Derived values (stock on hand, last visit, next refill,
// waste stage) are computed from events, never stored as counters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tramsync {

// Record kinds as they appear in the change log.
namespace kind {
inline constexpr const char* kStation = "station";
inline constexpr const char* kStaff = "staff";
inline constexpr const char* kHousehold = "household";
inline constexpr const char* kPatient = "patient";
inline constexpr const char* kItem = "item";
inline constexpr const char* kItemReserve = "item_reserve";
inline constexpr const char* kWasteBatch = "waste_batch";
inline constexpr const char* kVisit = "visit";
inline constexpr const char* kStockMovement = "stock_movement";
inline constexpr const char* kWasteStage = "waste_stage";
inline constexpr const char* kVoid = "void";
inline constexpr const char* kDevice = "device";  // a device registered at a server (replica.h)
}  // namespace kind

// Allowed values of the enumerated fields, in display order.
extern const std::vector<std::string> kSexes;              // male female other
extern const std::vector<std::string> kCategories;         // elderly chronic covid-home vulnerable other
extern const std::vector<std::string> kPatientStatuses;    // active recovered referred moved deceased
extern const std::vector<std::string> kItemKinds;          // medicine test-kit consumable ppe oxygen
extern const std::vector<std::string> kMovementKinds;      // receipt dispense transfer-out transfer-in adjustment write-off
extern const std::vector<std::string> kWriteoffReasons;    // expired damaged lost
extern const std::vector<std::string> kWasteKinds;         // infectious sharps general
extern const std::vector<std::string> kWasteStages;        // bagged collected stored handed-over treated

// A station's id, derived from its code: the same on every node, so a station
// file made offline with `init` and the centre's `station add` name one station.
// (Other records get random ids where they are made.) UUID-shaped, version 8.
std::string station_id_for_code(const std::string& code);

struct Identity {
  std::string station_id;
  std::string station_code;
  std::string station_name;
  std::string device_id;     // this device's origin id in the change log
  std::string device_name;
  std::string database_id;   // random identity of this file (see DESIGN: restored backups)
  int utc_offset_minutes = 0;
};

struct StaffInput {
  std::string name;
  std::string role;  // free text: doctor, nurse, midwife, volunteer ...
};

struct HouseholdInput {
  std::string village;
  std::string head_name;
  std::string address;
  std::string phone;
};

struct Household {
  std::string id, station_id, village, head_name, address, phone, created_at;
};

struct PatientInput {
  std::string name;
  std::string sex;
  std::string birth;  // YYYY or YYYY-MM-DD
  std::string village;
  std::optional<std::string> household_id;
  std::vector<std::string> categories;
  std::vector<std::string> conditions;
  std::string phone;
  std::string national_id;
};

// A partial update: only the fields that are set change. Set-valued fields change
// by additions and removals so concurrent edits on two devices both survive.
struct PatientUpdate {
  std::optional<std::string> name, sex, birth, village, household_id, phone, national_id, status;
  std::vector<std::string> add_categories, remove_categories;
  std::vector<std::string> add_conditions, remove_conditions;
};

struct Patient {
  std::string id, station_id, name, sex, birth, village, household_id, phone, national_id;
  std::string status;          // active unless closed
  std::string status_changed_at;
  std::string created_at;      // station-local time of registration
  std::vector<std::string> categories, conditions;
  // Set by the centre's `duplicates merge`: this record is the same person as
  // patient `same_as` (the record kept), of station `same_as_station` (its
  // code). Empty: not linked. Both records and their histories are kept.
  std::string same_as, same_as_station;
};

struct ItemInput {
  std::string code, name, unit;
  std::string kind = "medicine";
  std::optional<int64_t> reserve;  // the station's reserve level (cơ số dự phòng)
};

struct Item {
  std::string id, station_id /* empty: central catalogue */, code, name, unit, kind;
};

struct VisitInput {
  std::string patient_id;
  std::optional<std::string> at;  // station-local; default now
  std::optional<double> temp_c;
  std::optional<int> spo2;
  std::optional<int> bp_sys, bp_dia;
  std::optional<int> pulse;
  std::vector<std::string> symptoms;
  std::string note;
  bool refer = false;
};

struct Visit {
  std::string id, patient_id, at;
  std::optional<double> temp_c;
  std::optional<int> spo2, bp_sys, bp_dia, pulse;
  std::vector<std::string> symptoms;
  std::string note;
  bool refer = false;
  bool voided = false;
};

// One stock movement event. `quantity` is signed: receipts and transfers in add,
// dispensing, transfers out and write-offs subtract, adjustments either way.
struct Movement {
  std::string id, station_id, item_id, item_code, kind, lot, expiry, at;
  int64_t quantity = 0;
  std::string patient_id, reason, counterpart;  // counterpart: source or destination
  std::optional<int> days_supply;
  bool voided = false;
  // A dispense split over several lots: every part carries the first part's id.
  std::string group_id;
};

struct ReceiveInput {
  std::string item;  // code or id
  int64_t quantity = 0;
  std::string lot, expiry, source;
  std::optional<std::string> at;
};

struct DispenseInput {
  std::string patient_id;
  std::string item;
  int64_t quantity = 0;
  std::optional<int> days_supply;
  std::optional<std::string> lot;  // none: first-expiry-first-out
  std::optional<std::string> at;
};

struct AdjustInput {
  std::string item;
  int64_t quantity = 0;  // signed
  std::string reason;
  std::optional<std::string> lot;
  std::optional<std::string> at;
};

struct WriteoffInput {
  std::string item, lot, reason;
  int64_t quantity = 0;
  std::optional<std::string> at;
};

struct TransferInput {
  std::string item, lot;
  std::string expiry;        // transfer in: the lot's expiry
  int64_t quantity = 0;
  std::string counterpart;   // the other station or organisation
  std::optional<std::string> at;
};

// Stock on hand of one item and lot, from the movements.
struct StockLine {
  std::string item_id, item_code, item_name, unit, lot, expiry;
  int64_t on_hand = 0;
  bool expired = false;
  bool expiring_soon = false;  // within 30 days
};

// Stock of one item over all its lots.
struct ItemStock {
  std::string item_id, item_code, item_name, unit, kind;
  int64_t on_hand = 0;          // usable: lots not expired
  int64_t expired_on_hand = 0;  // held but past expiry, shown apart
  std::optional<int64_t> reserve;
  bool under_reserve = false;
  int64_t expiring_soon = 0;    // quantity in lots expiring within 30 days
  std::vector<StockLine> lots;
};

struct WasteBatchInput {
  std::string kind;
  int bags = 0;
  double weight_kg = 0;
  std::string patient_id, household_id, note;
  std::optional<std::string> at;
};

struct WasteMoveInput {
  std::string batch_id, stage, to_org, note;
  std::optional<std::string> at;
};

struct WasteBatch {
  std::string id, kind, patient_id, household_id, note, created_at;
  int bags = 0;
  double weight_kg = 0;
  std::string stage;       // furthest stage reached by a non-voided event
  std::string stage_at;    // when it reached it
  std::string holder;      // last named organisation (handed over to ...)
  int64_t age_days = 0;    // since bagged
};

struct RefillDue {
  std::string item_id, item_code, item_name;
  std::string last_dispensed_at;
  std::string next_refill;  // YYYY-MM-DD
};

struct PatientQuery {
  std::string search;  // diacritics-insensitive, every word must match a prefix of a word in name or village
  std::string village;
  std::string category;
  std::string status;
  bool overdue_only = false;
  std::optional<int64_t> limit;
};

struct PatientRow {
  Patient patient;
  std::string last_visit;   // empty: never visited
  bool overdue = false;
  int64_t days_since_contact = 0;
};

// One change-log row (DESIGN "The change log").
struct Change {
  int64_t seq = 0;
  std::string origin;
  int64_t origin_seq = 0;
  uint64_t hlc = 0;
  std::string station_id, kind, record_id;
  std::string payload;    // JSON text
  std::string from_peer;  // empty for local writes
};

}  // namespace tramsync
