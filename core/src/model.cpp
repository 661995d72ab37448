#include "tramsync/core/model.h"

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

}  // namespace tramsync
