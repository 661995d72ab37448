// Reading patient lists that stations keep in spreadsheets.
//
// The file is CSV (RFC 4180: quoted fields, doubled quotes, CRLF, LF or CR line ends), UTF-8
// with or without a byte-order mark. The header row names the columns with the
// same names as `patient add`'s options: name, sex, birth, village, household,
// category, condition, phone, national-id. A cell may hold several categories or
// conditions separated by ';' or '|'.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tramsync/core/model.h"
#include "tramsync/core/status.h"
#include "tramsync/core/store.h"

namespace tramsync::csv {

// Splits CSV text into records of fields. `lines` receives the 1-based line on
// which each record starts. Fails on an unterminated quote.
Result<std::vector<std::vector<std::string>>> parse(std::string_view text, std::vector<int64_t>* lines = nullptr);

struct PatientRows {
  std::vector<std::pair<int64_t, PatientInput>> rows;  // (line, row)
  std::vector<ImportRowError> errors;                  // rows that could not be read at all
};

// Maps the records to patient inputs. A bad header is an Error; a row with the
// wrong number of cells is reported in `errors` with its line.
Result<PatientRows> patient_rows(std::string_view text);

// Writes one CSV field, quoted when it needs to be.
std::string field(std::string_view v);

}  // namespace tramsync::csv
