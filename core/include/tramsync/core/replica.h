// What a node needs to exchange changes with its peers: scopes, the outcome of
// applying a peer's batch, pages of the log to send, and per-peer cursors.
// The protocol around them is in sync/ and docs/protocol.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tramsync/core/model.h"

namespace tramsync {

// Which records a peer may read or write: one station's (plus the shared
// catalogue, which has station_id ""), or everything.
struct Scope {
  bool all = false;
  std::string station_id;
  // Reading only. A mobile device narrowed to some villages (names as folded
  // by fold_for_search; empty: the whole station) reads the households and
  // patients of those villages and what belongs to them (visits, waste,
  // dispenses to them), and the station's other records (the station, staff,
  // the catalogue, reserves, receipts and other stock movements of no patient).
  std::vector<std::string> villages;
  // Device registrations hold token hashes: a hub and the centre read them
  // (to accept each other's devices), a mobile device does not.
  bool devices = true;
  static Scope everything() { return Scope{true, "", {}, true}; }
  static Scope station(std::string id) { return Scope{false, std::move(id), {}, true}; }
  // Writing: the station's own records. (Reading adds the shared catalogue,
  // station ""; Store::changes_for_peer applies that in SQL. Writing the
  // catalogue is ApplyContext::may_write_catalogue.)
  bool may_write(const std::string& change_station_id) const { return all || change_station_id == station_id; }
};

struct ApplyContext {
  std::string from_peer;          // the device or node that sent the batch
  Scope write_scope = Scope::everything();
  bool may_write_catalogue = true;  // items with station_id "" (published by the centre)
  // The origins the sender may send changes of (its own, and devices it relays
  // for); empty: any. A change of another origin is quarantined, so no device
  // can write under another's name or take its change numbers.
  std::vector<std::string> allowed_origins;
  // Hold changes whose hlc runs more than kMaxHlcAheadMs ahead of this node's
  // clock. A server checks what devices send; a device taking its server's
  // changes does not (its own clock may be the one that is behind).
  bool check_clock = true;
  // A station hub relays the changes of its station's other devices: an
  // origin that is a device of this station registered here (when the change
  // arrives, so a registration earlier in the same batch counts) is allowed too.
  std::string relay_station;
};

// A change whose hlc runs further than this ahead of the receiver's clock is
// held in quarantine: a clock set years ahead would otherwise drag every node's
// clock with it. A device a few days off is accepted (and flagged).
inline constexpr int64_t kMaxHlcAheadMs = 7LL * 24 * 3600 * 1000;

enum class ApplyStatus { kApplied, kDuplicate, kQuarantined };
const char* to_string(ApplyStatus s);

struct ApplyResult {
  int64_t seq = 0;  // the sender's log position of the change
  std::string origin;
  int64_t origin_seq = 0;
  ApplyStatus status = ApplyStatus::kApplied;
  std::string reason;  // for kQuarantined
};

struct ApplyOutcome {
  std::vector<ApplyResult> results;  // one per change, in batch order
  int64_t applied = 0, duplicates = 0, quarantined = 0, conflicts = 0;
  // The sender's log position up to which everything sent is durable here.
  int64_t acked_through = 0;
};

// A cursor to store with a pulled batch, in the same transaction.
struct CursorUpdate {
  std::string peer_id;
  int64_t pull_cursor = 0;
};

// A page of this node's log for a peer.
struct LogPage {
  std::vector<Change> changes;
  int64_t next = 0;    // the cursor to ask after next time
  bool more = false;   // more changes remain after `next`
  int64_t bytes = 0;   // payload bytes in this page
};

// What this node knows of one peer it syncs with (a hub or the centre).
//   push_cursor: every local log position <= it is durable at the peer.
//   pull_cursor: every position of the peer's log <= it is stored here.
struct PeerState {
  std::string id;  // the peer's node id
  std::string url;
  int64_t push_cursor = 0;
  int64_t pull_cursor = 0;
  std::string last_sync_at;   // station-local time of the last complete sync
  std::string settings;       // JSON: token, pin or CA file, last server clock skew ...
};

// A change of this node's log that a peer would not take (it holds it in its
// quarantine), with the peer's reason.
struct PeerRefusal {
  std::string peer_id, origin;
  int64_t origin_seq = 0;
  int64_t seq = 0;  // the position in this node's log
  std::string kind, record_id, reason, reported_at;
};

// A change held back in quarantine, and what was decided about it.
//   status: held; applied (it arrived again and was taken); released (the
//   centre applied it: Store::release_quarantined); dropped (with a reason).
struct QuarantinedChange {
  int64_t id = 0;
  std::string received_at, from_peer, origin, station_id, kind, record_id, payload, reason, status;
  int64_t origin_seq = 0;
  uint64_t hlc = 0;
  std::string decided_at, decision;  // empty while held
};

// Concurrent edits of one field: the value that won everywhere and the one
// that lost, kept for review. status: open, or resolved (resolution says how,
// by whom and why; docs/protocol.md §6 "Resolutions"). Values are JSON text.
struct ConflictRow {
  std::string id, kind, record_id, station_id, field, winner_value, loser_value, winner_origin, loser_origin,
      detected_at, status;
  uint64_t winner_hlc = 0, loser_hlc = 0;
  std::string resolution;
};

// --- a server's registry (the centre, later a station hub) ----------------------

inline constexpr const char* kRoleStation = "station";    // a station's own device: its station's records
inline constexpr const char* kRoleMobile = "mobile";      // a mobile team's device of one station
inline constexpr const char* kRoleReviewer = "reviewer";  // the centre's reviewer: reads everything

struct StationInfo {
  std::string id, code, name, district, province;
};

struct DeviceInfo {
  std::string id, station_id, station_code, name, role, database_id;
  std::vector<std::string> villages;  // a mobile device's villages (empty: the whole station)
  std::string created_at, revoked_at, last_seen_at, last_sync_at;
  int64_t clock_skew_ms = 0;  // device clock minus server clock at its last request
  std::string token_hash;     // SHA-256 of its bearer token; never shown
  // The device this one was renewed from (/v1/renew: a restored or copied
  // file), or "". Revoking that device revokes this one.
  std::string renewed_from;
  bool revoked() const { return !revoked_at.empty(); }
};

// What an enrollment asks for. The code and the token arrive already hashed:
// the store never sees a secret.
struct EnrollmentRequest {
  std::string code_hash;
  std::string device_id;      // the device's origin id (made where its file was made)
  std::string device_name;
  std::string token_hash;
  std::string database_id;
  std::string station_code;   // the file's station, when it was made offline with init; else empty
};

}  // namespace tramsync
