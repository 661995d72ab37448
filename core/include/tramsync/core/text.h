// Text folding for Vietnamese search.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace tramsync {

// Folds UTF-8 text (NFC or NFD) for diacritics- and case-insensitive matching:
// decomposes (ICU NFD), drops combining marks, maps đ/Đ to d, lower-cases, and
// collapses runs of whitespace to one space. "Nguyễn Văn  An" -> "nguyen van an".
// Invalid UTF-8 is folded as far as it decodes (bad bytes become U+FFFD).
std::string fold_for_search(std::string_view utf8);

// True when `s` is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);

// Levenshtein distance between two UTF-8 strings, counted in code points
// (an invalid byte counts as one). Duplicate patients' villages compare
// folded names with it.
int edit_distance(std::string_view a, std::string_view b);

}  // namespace tramsync

namespace tramsync {
// Terminal columns taken by UTF-8 text: combining marks take none, wide (East
// Asian) characters two. Used to line up tables of Vietnamese names.
int display_width(std::string_view utf8);

// A plain text table for the command-line programs: columns padded to the
// widest cell by display_width (so Vietnamese names line up), a header row and
// a rule under it.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};
}  // namespace tramsync
