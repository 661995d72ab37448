// Protocol constants. docs/protocol.md describes the protocol; this header is
// the one place its numbers and names live.
//
// Version history:
//   1 — enroll, push, pull, status; JSON bodies, gzip either way (this version).
#pragma once

#include <cstdint>

namespace tramsync::protocol {

inline constexpr int kVersion = 1;
inline constexpr int kMinSupportedVersion = 1;

// Bounds of one push batch, so a 2G link finishes a batch in seconds.
inline constexpr int64_t kMaxChangesPerBatch = 500;
inline constexpr int64_t kMaxBatchBytes = 256 * 1024;
// What a server accepts in one push (a client may send smaller batches).
inline constexpr int64_t kMaxChangesPerPush = 2000;
// Pull: the default and largest page a server returns.
inline constexpr int64_t kDefaultPullLimit = 500;
inline constexpr int64_t kMaxPullLimit = 5000;
inline constexpr int64_t kDefaultPullBytes = 256 * 1024;
inline constexpr int64_t kMaxPullBytes = 4 * 1024 * 1024;
// Largest request body a server reads (after decompression).
inline constexpr int64_t kMaxRequestBytes = 8 * 1024 * 1024;
// Deepest nesting of arrays and objects in a body either side accepts. A
// push body is at most about 9 deep (a resolution's versions); one nested
// 100,000 deep (200 KB) overflowed the stack of a server worker
// re-serialising it (fuzz/README.md).
inline constexpr int kMaxJsonDepth = 64;

// Headers.
inline constexpr const char* kProtocolHeader = "X-TramSync-Protocol";  // GET requests name their version here
inline constexpr const char* kClientTimeHeader = "X-TramSync-Time";    // the sender's clock, ms since the epoch

// A device whose clock is this far off the server's, ahead or behind, is
// flagged at the server (the times it records are suspect).
inline constexpr int64_t kClockAheadFlagMs = 24LL * 3600 * 1000;
// A client warns when the server's clock differs from its own by more than this.
inline constexpr int64_t kClockWarnMs = 5LL * 60 * 1000;

// The two clock rules, on a skew in either sign (device minus server or the
// reverse): the server flags a device, the device warns its user.
inline bool clock_flagged(int64_t skew_ms) { return skew_ms > kClockAheadFlagMs || skew_ms < -kClockAheadFlagMs; }
inline bool clock_warning(int64_t skew_ms) { return skew_ms > kClockWarnMs || skew_ms < -kClockWarnMs; }

}  // namespace tramsync::protocol
