#include "tramsync/core/status.h"

namespace tramsync {

std::string Error::message() const {
  std::string m;
  if (!context.empty()) m += context + ": ";
  if (!field.empty()) m += field + " ";
  m += rule;
  if (!value.empty()) m += ", got \"" + value + "\"";
  return m;
}

}  // namespace tramsync
