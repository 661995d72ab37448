// The sync client: enrollment with a server, then push and pull until both
// directions are empty. docs/protocol.md describes the exchange.
//
// Guarantees, whatever the link does:
//   - push: local changes go in log order, in batches bounded by count and
//     bytes; the push cursor moves only when the server acknowledged a batch,
//     together (one transaction) with the changes it reported quarantined;
//   - pull: each page is stored with its new cursor in one transaction, so a
//     crash or a dropped link between receiving and storing loses nothing and
//     the next sync asks again from where the file is;
//   - every request is safe to repeat (the server recognises duplicates), so a
//     dropped link is retried with exponential backoff, and a sync that gives
//     up resumes where it stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tramsync/core/clock.h"
#include "tramsync/core/replica.h"
#include "tramsync/core/status.h"
#include "tramsync/core/store.h"
#include "tramsync/sync/protocol.h"
#include "tramsync/sync/transport.h"

namespace tramsync::sync {

// What a peer of this file is, as saved in its peers row (PeerState::settings).
struct PeerSettings {
  std::string token;        // the bearer token the server gave at enrollment
  std::string pin;          // the server certificate's SHA-256 fingerprint, or
  std::string ca_file;      // a CA file to verify it against
  std::string role;         // this device's role there: station, mobile, reviewer
  std::string database_id;  // the server file's id, to notice a replaced server
  int64_t clock_skew_ms = 0;  // the server's clock minus this device's, at the last exchange
  std::string last_error;     // why the last sync with it failed ("" after a success)
  // The villages this device reads there, as the server last said (a mobile
  // device narrowed to some; empty: its whole station); nullopt before the
  // first pull. When they widen, the pull starts again from the beginning.
  std::optional<std::vector<std::string>> scope_villages;
};
PeerSettings peer_settings(const PeerState& p);
std::string settings_json(const PeerSettings& s);

struct SyncProgress {
  enum class Phase { kPush, kPull, kRetry } phase = Phase::kPush;
  int64_t sent = 0;        // changes acknowledged by the server so far
  int64_t to_send = 0;     // changes waiting when the sync began (new ones may add)
  int64_t received = 0;    // changes pulled and stored so far
  // How far the pull is through the server's log: the cursor and the log's
  // end when the sync began (a device narrowed to some villages receives
  // fewer changes than the span, but the position is still the progress).
  int64_t pull_position = 0, pull_end = 0;
  int64_t bytes_sent = 0, bytes_received = 0;
  int attempt = 0;           // for kRetry: the attempt about to be made
  int64_t retry_in_ms = 0;   // for kRetry
  std::string retry_reason;  // for kRetry
};

struct SyncOptions {
  int64_t batch_changes = protocol::kMaxChangesPerBatch;  // changes per push
  int64_t batch_bytes = protocol::kMaxBatchBytes;         // payload bytes per push
  int64_t pull_limit = protocol::kDefaultPullLimit;       // changes per pull page
  int64_t pull_bytes = protocol::kDefaultPullBytes;       // payload bytes per pull page
  int max_attempts = 6;                 // per request, on a dropped link or a busy server
  int64_t backoff_initial_ms = 500;     // doubled after each failed attempt, with jitter
  int64_t backoff_max_ms = 30'000;
  std::function<void(int64_t ms)> sleep;               // default: really sleep
  std::function<void(const SyncProgress&)> on_progress;  // after each batch, and before a retry
  Clock* clock = nullptr;                                // default: the system clock
};

struct SyncReport {
  int64_t sent = 0;                 // changes pushed and acknowledged
  int64_t server_applied = 0, server_duplicates = 0, server_quarantined = 0, server_conflicts = 0;
  int64_t received = 0;             // changes pulled
  int64_t applied = 0, duplicates = 0, quarantined = 0, conflicts = 0;  // of those, here
  int64_t bytes_sent = 0, bytes_received = 0;
  int64_t requests = 0, retries = 0;
  int64_t clock_skew_ms = 0;        // the server's clock minus this device's
  bool clock_warning = false;       // protocol::clock_warning(clock_skew_ms)
  bool server_replaced = false;     // the server's file changed: everything was exchanged again
  bool scope_widened = false;       // this device's villages were widened: everything was asked for again
  // This file turned out to be an old backup or a copy of device `renewed_from`:
  // it now writes as `new_device_id`, `renumbered` of its changes moved to it.
  std::string renewed_from, new_device_id;
  int64_t renumbered = 0;
  std::vector<ApplyResult> refused;  // this device's changes the server quarantined, with reasons
};

// Push and pull with the peer `peer_id` (saved by enroll()) until both
// directions are empty. Errors name what happened in words a nurse can act on:
//   kRefused  the server refused this device (unknown token, revoked, wrong
//             protocol, a reviewer pushing, the file reuses change numbers the
//             server has with other content) or the certificate mismatched;
//   kIo       the link failed max_attempts times: what was acknowledged and
//             stored stays; the next sync resumes;
//   kNotFound no such peer: enroll first.
// Progress already made (acknowledged pushes, stored pages) is kept on error.
Result<SyncReport> sync_with_peer(Store& store, Transport& transport, const std::string& peer_id,
                                  const SyncOptions& options = {});

struct EnrollParams {
  std::string server_url;
  std::string code;         // the one-time enrollment code the server printed
  std::string pin, ca_file;  // how to trust the server (saved for later syncs)
  std::string device_name;  // for a new file; a station file keeps its own
};

struct EnrollResult {
  PeerState peer;
  Identity identity;
  std::string role;
  bool new_file = false;  // the file was empty and now belongs to the server's station
};

// Enrolls the device whose file `store` is with the server: a new (empty) file
// becomes a device of the station the code was made for; a station file made
// offline with `init` is accepted only by a code for its own station, and its
// records sync like any others. Saves the server as a peer with its token.
Result<EnrollResult> enroll(Store& store, Transport& transport, const EnrollParams& params, Clock* clock = nullptr);

struct AddServerParams {
  std::string server_url;
  std::string pin, ca_file;
};

// Adds another server this enrolled device may sync with, with the token it
// already has: a device enrolled at its station hub is known at the centre
// too once the hub has synced (device registrations sync like records), and
// the other way round. The server must answer /v1/status naming this device;
// refused (kRefused) when it does not know it yet or it was revoked.
Result<PeerState> add_server(Store& store, Transport& transport, const AddServerParams& params,
                             Clock* clock = nullptr);

}  // namespace tramsync::sync
