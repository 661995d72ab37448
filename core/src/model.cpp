#include "tramsync/core/model.h"

#include <cstdio>

namespace tramsync {

const std::vector<std::string> kSexes = {"male", "female", "other"};
const std::vector<std::string> kCategories = {"elderly", "chronic", "covid-home", "vulnerable", "other"};
const std::vector<std::string> kPatientStatuses = {"active", "recovered", "referred", "moved", "deceased"};
const std::vector<std::string> kItemKinds = {"medicine", "test-kit", "consumable", "ppe", "oxygen"};
const std::vector<std::string> kMovementKinds = {"receipt",     "dispense",   "transfer-out",
                                                 "transfer-in", "adjustment", "write-off"};
const std::vector<std::string> kWriteoffReasons = {"expired", "damaged", "lost"};
const std::vector<std::string> kWasteKinds = {"infectious", "sharps", "general"};
const std::vector<std::string> kWasteStages = {"bagged", "collected", "stored", "handed-over", "treated"};

std::string station_id_for_code(const std::string& code) {
  // Two FNV-1a 64-bit hashes with different offset bases give 128 bits. Not a
  // secret, just a stable name-based id; codes are assigned by the centre.
  auto fnv = [&](uint64_t h) {
    for (unsigned char c : std::string("tramsync/station/") + code) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
    return h;
  };
  uint64_t hi = fnv(0xcbf29ce484222325ULL), lo = fnv(0x84222325cbf29ce4ULL);
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000008000ULL;  // version 8: custom
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

}  // namespace tramsync
