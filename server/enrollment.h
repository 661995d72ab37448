// One-time enrollment codes as the admin commands issue them.
#pragma once

#include <cstdint>
#include <string>

#include "tramsync/core/status.h"
#include "tramsync/core/store.h"

namespace tramsync::server {

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
// with `role`, valid `hours` from now, and records its hash
// (sha256_hex of the normalized code) in the store. The store checks the role
// and the station.
Result<IssuedCode> issue_enrollment_code(Store& store, const std::string& station_code, const std::string& role,
                                         const std::string& device_name, int64_t hours);

}  // namespace tramsync::server
