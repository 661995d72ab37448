#include "tramsync/core/csv_import.h"

#include <algorithm>
#include <map>

#include "tramsync/core/text.h"
#include "tramsync/core/validate.h"

namespace tramsync::csv {

Result<std::vector<std::vector<std::string>>> parse(std::string_view text, std::vector<int64_t>* lines) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<std::vector<std::string>> out;
  std::vector<std::string> record;
  std::string cell;
  bool quoted = false, any = false;
  int64_t line = 1, record_line = 1, quote_line = 0;
  auto end_record = [&]() {
    record.push_back(std::move(cell));
    cell.clear();
    bool blank = record.size() == 1 && record[0].empty();
    if (!blank) {
      out.push_back(std::move(record));
      if (lines) lines->push_back(record_line);
    }
    record.clear();
    any = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        cell += c;
      }
      continue;
    }
    if (!any) record_line = line;
    any = true;
    if (c == '"' && cell.empty()) {
      quoted = true;
      quote_line = line;
    } else if (c == ',') {
      record.push_back(std::move(cell));
      cell.clear();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      continue;
    } else if (c == '\n' || c == '\r') {  // LF, or a bare CR (old spreadsheet programs)
      end_record();
      ++line;
    } else {
      cell += c;
    }
  }
  if (quoted) {
    return Error::invalid("line " + std::to_string(quote_line), "has a quote that is never closed", "");
  }
  if (any) end_record();
  return out;
}

namespace {
std::vector<std::string> split_multi(const std::string& cell) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : cell) {
    if (c == ';' || c == '|') {
      if (!validate::trim(cur).empty()) out.push_back(validate::trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!validate::trim(cur).empty()) out.push_back(validate::trim(cur));
  return out;
}

enum class Col { kName, kSex, kBirth, kVillage, kHousehold, kCategory, kCondition, kPhone, kNationalId };
}  // namespace

Result<PatientRows> patient_rows(std::string_view text) {
  if (!is_valid_utf8(text)) {
    return Error::invalid("file", "must be UTF-8 text (save the spreadsheet as \"CSV UTF-8\")", "").in("patient import");
  }
  std::vector<int64_t> lines;
  auto records = parse(text, &lines);
  if (!records) return std::move(records.error()).in("patient import");
  if (records->empty()) return Error::invalid("file", "must have a header row", "").in("patient import");
  static const std::map<std::string, Col> kNames = {
      {"name", Col::kName},           {"sex", Col::kSex},
      {"birth", Col::kBirth},         {"village", Col::kVillage},
      {"household", Col::kHousehold}, {"category", Col::kCategory},
      {"categories", Col::kCategory}, {"condition", Col::kCondition},
      {"conditions", Col::kCondition}, {"phone", Col::kPhone},
      {"national-id", Col::kNationalId}, {"national_id", Col::kNationalId},
  };
  std::vector<Col> cols;
  std::vector<Col> seen;
  for (const auto& h : records->front()) {
    std::string key = validate::trim(h);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    auto it = kNames.find(key);
    if (it == kNames.end()) {
      return Error::invalid("header", "names an unknown column (known: name, sex, birth, village, household, "
                                      "category, condition, phone, national-id)",
                            h)
          .in("patient import");
    }
    if (std::find(seen.begin(), seen.end(), it->second) != seen.end()) {
      return Error::invalid("header", "names a column twice", h).in("patient import");
    }
    seen.push_back(it->second);
    cols.push_back(it->second);
  }
  for (auto [col, name] : {std::pair{Col::kName, "name"}, std::pair{Col::kSex, "sex"},
                           std::pair{Col::kBirth, "birth"}, std::pair{Col::kVillage, "village"}}) {
    if (std::find(cols.begin(), cols.end(), col) == cols.end()) {
      return Error::invalid("header", "must have the column \"" + std::string(name) + "\"", "").in("patient import");
    }
  }
  PatientRows result;
  result.rows.reserve(records->size() - 1);
  for (size_t r = 1; r < records->size(); ++r) {
    const auto& rec = (*records)[r];
    if (rec.size() != cols.size()) {
      result.errors.push_back({lines[r], "has " + std::to_string(rec.size()) + " cells, the header has " +
                                             std::to_string(cols.size())});
      continue;
    }
    PatientInput in;
    for (size_t c = 0; c < cols.size(); ++c) {
      const std::string& v = rec[c];
      switch (cols[c]) {
        case Col::kName: in.name = v; break;
        case Col::kSex: in.sex = validate::trim(v); break;
        case Col::kBirth: in.birth = validate::trim(v); break;
        case Col::kVillage: in.village = v; break;
        case Col::kHousehold:
          if (!validate::trim(v).empty()) in.household_id = validate::trim(v);
          break;
        case Col::kCategory: in.categories = split_multi(v); break;
        case Col::kCondition: in.conditions = split_multi(v); break;
        case Col::kPhone: in.phone = v; break;
        case Col::kNationalId: in.national_id = v; break;
      }
    }
    result.rows.emplace_back(lines[r], std::move(in));
  }
  return result;
}

std::string field(std::string_view v) {
  if (v.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace tramsync::csv
