#include "tramsync/sync/message.h"

#include <algorithm>
#include <cctype>

namespace tramsync::sync {

bool HeaderLess::operator()(const std::string& a, const std::string& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) < std::tolower(static_cast<unsigned char>(y));
  });
}

namespace {
std::string find_header(const Headers& h, const std::string& name) {
  auto it = h.find(name);
  return it == h.end() ? std::string() : it->second;
}
}  // namespace

std::string Request::header(const std::string& name) const { return find_header(headers, name); }
std::string Response::header(const std::string& name) const { return find_header(headers, name); }

}  // namespace tramsync::sync
