// Protocol constants. docs/protocol.md describes the protocol; this header is
// the one place its numbers live.
//
// Version history:
//   1 — change batches as JSON (this version).
#pragma once

namespace tramsync::protocol {

inline constexpr int kVersion = 1;
inline constexpr int kMinSupportedVersion = 1;

// Bounds of one change batch, so a 2G link finishes a batch in seconds.
inline constexpr int kMaxChangesPerBatch = 500;
inline constexpr long kMaxBatchBytes = 256 * 1024;

}  // namespace tramsync::protocol
