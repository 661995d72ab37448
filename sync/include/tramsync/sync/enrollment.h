// One-time enrollment codes as a server's admin commands issue them (the
// centre's `tramsync-server station add` / `device add`, later a station hub's).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tramsync/core/clock.h"
#include "tramsync/core/status.h"
#include "tramsync/core/store.h"

namespace tramsync::sync {

// Hours a code stays valid unless told otherwise, and the most allowed.
inline constexpr int64_t kDefaultCodeHours = 72;
inline constexpr int64_t kMaxCodeHours = 30 * 24;

struct IssuedCode {
  std::string code;           // "7KQ4-MZ2W-HX9C", shown once; the store keeps only its hash
  std::string role;
  std::string station_code;   // "" for a reviewer
  int64_t expires_at_ms = 0;  // UTC
  std::string expires_at;     // the same instant in the centre's local time, "YYYY-MM-DDTHH:MM:SS"
};

// Makes a fresh code for a device of `station_code` (empty for a reviewer)
// with `role`, valid `hours` (1 to kMaxCodeHours) from now by `clock` (default:
// the system clock; give the store's own clock where it has one, since the
// store checks expiry by it), narrowed to `villages` for a mobile device, and records its hash (auth::enrollment_code_hash)
// in the store. The store checks the role and the station.
Result<IssuedCode> issue_enrollment_code(Store& store, const std::string& station_code, const std::string& role,
                                         const std::string& device_name, int64_t hours, Clock* clock = nullptr,
                                         const std::vector<std::string>& villages = {});

}  // namespace tramsync::sync
