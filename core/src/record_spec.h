// What each kind of record looks like to the merge: its table, whether it is an
// event, and its columns with their types. Shared by applying peers' changes
// (applier.cpp) and by the centre's review decisions (review.cpp), which write
// one field of any entity and validate a typed value the same way.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "db.h"
#include "tramsync/core/merge.h"

namespace tramsync::records {

using json = nlohmann::json;

enum class Type { kText, kOptText, kInt, kOptInt, kReal, kOptReal, kBool };

struct Column {
  const char* name;
  Type type;
  bool required_on_insert = false;
  const std::vector<std::string>* allowed = nullptr;  // an enumerated field
};

struct RecordSpec {
  const char* kind;
  const char* table;
  bool is_event;
  std::vector<Column> columns;
};

const std::vector<RecordSpec>& specs();
const RecordSpec* find_spec(const std::string& kind);
const Column* find_column(const RecordSpec& spec, const std::string& name);

// Checks a received value against its column. Returns a reason, empty when fine.
std::string check_value(const Column& c, const json& v);

// Binds a JSON value to a statement parameter, as its column's type stores it.
void bind_json(db::Stmt& s, int i, const json& v);

// Reads column `col` of a row as the JSON value its spec says it holds.
json read_json(db::Stmt& s, int col, Type t);

// A version [hlc, "origin"] (or a field version [hlc, "origin", base]) as read
// from `_v` or a payload; nullopt when malformed.
std::optional<merge::Version> version_from(const json& v);
// The base [hlc, "origin"] of a field version [hlc, "origin", base], if any.
std::optional<merge::Version> base_from(const json& entry);

}  // namespace tramsync::records
