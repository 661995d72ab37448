// The station store: one SQLite file holding a node's records and change log.
//
// Every public write is one user action: it runs in its own BEGIN IMMEDIATE
// transaction, validates its input, writes the records and appends one change
// per record written to the change log in the same transaction. Either all of it
// is durable (WAL, synchronous=FULL) or none of it is.
//
// A Store owns one SQLite connection and is NOT thread-safe: use one Store per
// thread (several Stores may open the same file; SQLite's locking and the busy
// timeout serialise their writes).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tramsync/core/central.h"
#include "tramsync/core/clock.h"
#include "tramsync/core/model.h"
#include "tramsync/core/replica.h"
#include "tramsync/core/report.h"
#include "tramsync/core/review.h"
#include "tramsync/core/status.h"

namespace tramsync {

class StoreImpl;

struct StoreOptions {
  Clock* clock = nullptr;      // default: the system clock
  IdSource* ids = nullptr;     // default: random ids
  int busy_timeout_ms = 5000;
  // SQLite's page cache for this connection, in MiB (0: SQLite's default,
  // about 2 MiB). A centre's reports read far more than that; a bigger cache
  // saves re-reading pages from the operating system on every report.
  int cache_mib = 0;
  // Test hook for atomicity: called inside every write transaction after the
  // records are written and before the change-log row is appended; an Error
  // returned aborts the action (the transaction rolls back).
  std::function<Status(const std::string& kind)> before_change_append;
  // Apply migrations only up to this schema version (0: all). Used by tests to
  // make a file as an older TramSync would have; never set in the programs.
  int schema_version_limit = 0;
};

struct ImportRowError {
  int64_t line = 0;  // 1-based line in the file (the header is line 1)
  std::string message;
};

struct ImportResult {
  int64_t imported = 0;
  std::vector<std::string> ids;
  std::vector<ImportRowError> rejected;
};

class Store {
 public:
  // Opens (creating if missing) the file at `path` and applies pending migrations.
  static Result<std::unique_ptr<Store>> open(const std::string& path, StoreOptions options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schema_version();
  static int latest_schema_version();

  // --- identity -------------------------------------------------------------
  bool initialized();
  // Makes this file a station's: the station record, this device's identity.
  Result<Identity> init_station(const std::string& code, const std::string& name, const std::string& device_name,
                                const std::string& district = "", const std::string& province = "");
  Result<Identity> identity();
  // The random id of this file, made when the file was created (initialised or not).
  std::string database_id();
  // Makes a new file a device's of an existing station (or, with an empty
  // station, a reviewer's), as enrollment with a server does: the identity only.
  // The station's record itself arrives with the first pull.
  Result<Identity> init_device(const StationInfo& station, const std::string& device_id,
                               const std::string& device_name);

  // Resolves a full id or an unambiguous prefix (at least 4 characters) of a record
  // of `record_kind` ("patient", "household", "waste_batch", "event", "conflict").
  Result<std::string> resolve_id(const std::string& record_kind, const std::string& id_or_prefix);

  // --- people ----------------------------------------------------------------
  Result<std::string> add_staff(const StaffInput& in);
  Result<std::string> add_household(const HouseholdInput& in);
  Result<Household> get_household(const std::string& id);
  std::vector<Patient> household_members(const std::string& household_id);

  Result<std::string> add_patient(const PatientInput& in);
  Status update_patient(const std::string& id, const PatientUpdate& up);
  Result<Patient> get_patient(const std::string& id);
  std::vector<PatientRow> list_patients(const PatientQuery& q, const ReportSettings& settings = {});
  // All rows in one transaction: every row valid, or nothing imported unless
  // `skip_invalid`, which imports the valid rows and reports the others.
  // `validate_only` checks every row and imports nothing.
  ImportResult import_patients(const std::vector<std::pair<int64_t, PatientInput>>& rows, bool skip_invalid,
                               bool validate_only = false);

  // --- visits ------------------------------------------------------------------
  Result<std::string> add_visit(const VisitInput& in);
  std::vector<Visit> patient_visits(const std::string& patient_id);

  // --- items and stock -------------------------------------------------------
  Result<std::string> add_item(const ItemInput& in);
  Status set_reserve(const std::string& item, int64_t level);
  Result<Item> find_item(const std::string& code_or_id);
  Result<std::string> receive(const ReceiveInput& in);
  // May split across lots (first expiry first out): one movement per lot.
  Result<std::vector<std::string>> dispense(const DispenseInput& in);
  Result<std::vector<std::string>> adjust(const AdjustInput& in);
  Result<std::string> write_off(const WriteoffInput& in);
  Result<std::string> transfer_out(const TransferInput& in);
  Result<std::string> transfer_in(const TransferInput& in);
  std::vector<ItemStock> stock(const ReportSettings& settings = {});
  std::vector<Movement> patient_dispensings(const std::string& patient_id);
  std::vector<RefillDue> next_refills(const std::string& patient_id);

  // --- waste -------------------------------------------------------------------
  Result<std::string> add_waste_batch(const WasteBatchInput& in);
  Result<std::string> move_waste(const WasteMoveInput& in);
  std::vector<WasteBatch> list_waste(bool pending_only, std::optional<int64_t> older_than_days);
  std::vector<WasteBatch> patient_waste(const std::string& patient_id);

  // --- corrections -------------------------------------------------------------
  // Voids an event (visit, stock movement, waste stage) by a new void event.
  Result<std::string> void_event(const std::string& event_id, const std::string& reason,
                                 std::optional<std::string> at = std::nullopt);

  // --- several actions as one ------------------------------------------------------
  // Runs `actions`, which call this Store's write actions (add_patient,
  // add_visit, dispense, receive, move_waste, void_event, ...), in ONE
  // BEGIN IMMEDIATE transaction committed once at the end: a paper ledger
  // imported a few thousand rows at a time pays one commit (one fsync) per
  // batch instead of one per record. Each action validates, writes and appends
  // one change per record exactly as alone, and sees the batch's earlier
  // writes (stock an earlier dispense took is gone). All or nothing: when
  // `actions` returns an error (return the first one an action returned),
  // throws, or any action failed after it began writing (whatever `actions`
  // then returns), everything rolls back and the error is returned; nothing of
  // the batch is kept, in the records or the change log. While a batch runs,
  // other connections wait for its write lock (busy timeout). A batch inside a
  // batch is refused.
  Status batch(const std::function<Status()>& actions);

  // --- reports -----------------------------------------------------------------
  Result<DailyReport> daily_report(std::optional<std::string> date, const ReportSettings& settings = {});
  Result<StatusInfo> status();
  // A report across the stations this node holds (core/central.h; the centre's
  // `report` command and GET /v1/reports/NAME). Errors name the option: an
  // unknown report, station or district, a date in the future.
  Result<CentralReport> central_report(const std::string& name, const CentralReportOptions& options);
  // The current station-local time.
  std::string local_now();

  // --- change log ----------------------------------------------------------------
  std::vector<Change> changes_after(int64_t seq, int64_t limit);
  int64_t change_count();

  // --- sync (core/replica.h, docs/protocol.md) ------------------------------------
  // Applies a peer's batch in one transaction: each change is applied (merged
  // field by field, or inserted once), recognised as a duplicate, or quarantined
  // with its reason; one bad change never blocks the others. Applied changes are
  // appended to this node's log with their origin kept. With `cursor`, the pull
  // cursor is stored in the same transaction. Fails as a whole only when the file
  // cannot be written, or when a change reuses an (origin, origin_seq) already
  // here with other content (a restored backup or a copied file).
  Result<ApplyOutcome> apply_changes(const std::vector<Change>& batch, const ApplyContext& ctx,
                                     const std::optional<CursorUpdate>& cursor = std::nullopt);
  // Changes after log position `after` that `scope` may read, except those made
  // or sent here by `exclude_origin` (the peer asking), at most `limit` changes
  // and about `max_bytes` of payload (always at least one).
  LogPage changes_for_peer(int64_t after, int64_t limit, int64_t max_bytes, const Scope& scope,
                           const std::string& exclude_origin);
  // The log after the peer's push cursor that this node sends up: its own
  // changes and those its devices sent it (a hub relays), not what it received
  // from any server it syncs with.
  LogPage changes_to_push(const std::string& peer_id, int64_t limit, int64_t max_bytes);
  // How many changes changes_to_push would still send to the peer.
  int64_t count_to_push(const std::string& peer_id);
  std::optional<PeerState> peer(const std::string& id);
  std::vector<PeerState> peers();
  Status save_peer(const PeerState& p);  // url and settings; cursors are kept
  // A peer's acknowledgement of a push, in one transaction: the push cursor
  // moves to `acked_through` (never back) and the changes it refused are kept
  // with its reasons (`refused`: the peer's results with status kQuarantined;
  // seq is this node's log position).
  Status acknowledge_push(const std::string& peer_id, int64_t acked_through, const std::vector<ApplyResult>& refused);
  std::vector<PeerRefusal> peer_refusals();
  // Forgets how far this node and the peer got (the push cursor, the pull
  // cursor or both back to 0), for a peer that is not the one it was (a new or
  // restored server file): the next sync sends or asks for everything again;
  // duplicates are recognised on both sides.
  Status reset_peer_cursors(const std::string& peer_id, bool push = true, bool pull = true);
  // The highest origin_seq of this node's own changes the peer acknowledged.
  int64_t acked_own_origin_seq(const std::string& peer_id);
  // This file is a copy or an old backup of a device whose changes the server
  // holds beyond, or other than, its own: from now on it writes as the device
  // `new_device_id`. Its own changes up to origin_seq `keep_through` keep their
  // identity (the server holds them as they are); the later ones are renumbered
  // 1, 2, ... under the new origin (with the origin recorded on the events and
  // field versions they wrote), so none is taken for a duplicate and lost. The
  // peer's new settings (its new token) are saved in the same transaction.
  Status take_new_origin(const std::string& new_device_id, int64_t keep_through, const PeerState& peer);
  Status mark_synced(const std::string& peer_id);
  int64_t last_seq();
  std::vector<QuarantinedChange> quarantined(bool held_only = true);
  std::vector<ConflictRow> conflicts(bool open_only = true);

  // --- the reviewer's decisions (core/review.h) --------------------------------------
  // Settles a conflict (its id or a prefix of 4+ characters) at the centre: one
  // upsert of that field of that record, based on the field's stored version,
  // under the centre's origin, with the record's station; `keep` is "winner"
  // (the value stored now, written again), "loser" (the conflict's losing
  // value), or another value parsed by the field's type. Its payload lists the
  // versions of the field the reviewer saw (every open conflict on that record
  // and field, and the stored version) so every node closes its own conflicts
  // over them, in whatever order the edits reached it. Closes them here in the
  // same transaction. Only on a central file; an already resolved conflict is
  // refused.
  // A conflict already resolved is ErrorCode::kConflict; one on a device or
  // station registration is refused to Decider::kReviewer.
  Result<ConflictDecision> resolve_conflict(const std::string& id_or_prefix, const std::string& keep,
                                            const std::string& note = "", Decider by = Decider::kOperator);
  // Applies a held change with this node's authority: no scope, origin or
  // clock check, but the record's own rules (types, references, a record
  // staying in its station) still apply. In one transaction the change is
  // applied, appended to the log with its origin, origin_seq and hlc (so it
  // reaches the nodes that should have it, not its origin), and the entry
  // marked released with the decision. If it still cannot be applied, nothing
  // changes and the error says why.
  Result<QuarantineDecision> release_quarantined(int64_t id, const std::string& note = "");
  // Marks a held change dropped, with a reason (required); the change stays
  // in the quarantine table.
  Result<QuarantineDecision> drop_quarantined(int64_t id, const std::string& reason);
  // Patient records that may be one person: the same non-empty national id, or
  // the same folded name and birth and a close village (kMaxVillageDistance).
  // Found through the indexes (groups of name_fold+birth and of national_id),
  // never by comparing all pairs. Pairs already linked are left out.
  Result<std::vector<DuplicatePair>> duplicate_candidates(const DuplicateQuery& q = {});
  // Links `other` to `keep` (ids or prefixes): other.same_as = keep as a
  // patient change made here, synced to other's station; records linked to
  // `other` are re-pointed at `keep`. Both records and their histories stay.
  // Refuses one record twice, unknown ids, a `keep` that is itself linked
  // (naming the record it is linked to), an `other` already linked, and a
  // file that is not a centre's.
  Result<PatientMerge> merge_patients(const std::string& keep, const std::string& other);
  // Undoes a wrong link: `other` (linked by merge_patients) is its own person
  // again, as a patient change synced to its station. Refuses a record that is
  // not linked. The returned merge names the record it was linked to as keep_id.
  Result<PatientMerge> unlink_patient(const std::string& other);

  // --- a server's registry ---------------------------------------------------------
  // Makes this file a central node's: it has a node id (its origin for changes
  // the centre makes: catalogue items, resolutions) and no station of its own.
  Result<Identity> init_central(const std::string& name);
  // Registers a station (its entity syncs down to the station like any record).
  Result<StationInfo> add_station(const std::string& code, const std::string& name, const std::string& district,
                                  const std::string& province);
  std::optional<StationInfo> station_by_code(const std::string& code);
  std::vector<StationInfo> stations();
  // A one-time enrollment code for a device of `station_code` (empty for a reviewer).
  // A mobile device's code may narrow it to some villages (Scope::villages).
  Status add_enrollment_code(const std::string& code_hash, const std::string& station_code, const std::string& role,
                             const std::string& device_name, int64_t expires_at_ms,
                             const std::vector<std::string>& villages = {});
  // Redeems a code: refuses an unknown, used or expired code, a station that does
  // not match the file's, or a device id already registered; otherwise registers
  // the device, all in one transaction. The device that redeemed a code may
  // present it again until it expires (its answer was lost): it keeps its
  // registration and gets the new token.
  Result<DeviceInfo> enroll_device(const EnrollmentRequest& req);
  // A station or mobile device whose file turned out to be a copy or an old
  // backup (DESIGN "A file restored from backup") takes a new identity: a new
  // device `new_id` of the same station, role and villages, with its own token.
  // The old registration stays as it is (another copy may still use it).
  Result<DeviceInfo> renew_device(const std::string& from_id, const std::string& new_id,
                                  const std::string& token_hash, const std::string& database_id);
  std::optional<DeviceInfo> device_by_token_hash(const std::string& token_hash);
  std::optional<DeviceInfo> device(const std::string& id);
  std::vector<DeviceInfo> devices();
  // Revokes a device (its id or an unambiguous prefix). A station or mobile
  // device's registration is a record of its station (kind::kDevice): enrolling,
  // revoking and narrowing sync to the station's other servers like any edit.
  Result<DeviceInfo> revoke_device(const std::string& id);
  // Narrows a mobile device to `villages` (empty: its whole station) or widens
  // it; it takes effect on its next sync, without enrolling again.
  Result<DeviceInfo> set_device_villages(const std::string& id, const std::vector<std::string>& villages);
  // Notes a request from a device: when, its clock skew (nullopt: unknown, the
  // last one is kept), and whether it completed a sync.
  Status note_device_seen(const std::string& id, std::optional<int64_t> clock_skew_ms, bool synced);
  // The highest origin_seq this node received of `origin`, stored or held in
  // quarantine (0: none), so a device
  // can tell that a server restored from a backup lost some of its changes.
  int64_t max_origin_seq(const std::string& origin);

  // Runs PRAGMA integrity_check; "ok" when the file is sound.
  std::string integrity_check();

 private:
  explicit Store(std::unique_ptr<StoreImpl> impl);
  std::unique_ptr<StoreImpl> impl_;
};

}  // namespace tramsync
