// Expected outcomes of user actions as values.
//
// A validation failure, a missing record or a refused action is not a bug: it is
// returned as an Error naming the field, the rule and the value, so the CLI can
// print one clear line and the server a JSON error. Exceptions are reserved for
// bugs and corruption (see DbError in the store).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tramsync {

enum class ErrorCode {
  kInvalid,    // input broke a rule (field, rule, value set)
  kNotFound,   // a named record does not exist
  kRefused,    // valid input, but the action is not allowed now (stock, stage order)
  kConflict,   // the record already exists / identity clash
  kIo,         // the file could not be read or written (disk full, permissions)
};

// The words every "no space left" error carries (SQLITE_FULL, or a write the
// system refused with ENOSPC, EFBIG or EDQUOT), so a server can answer 507 and
// a person reading it knows what to do.
inline constexpr const char* kDiskFullText = "the disk is full";

struct Error {
  ErrorCode code = ErrorCode::kInvalid;
  std::string context;  // the action, e.g. "dispense"
  std::string field;    // e.g. "quantity"
  std::string rule;     // e.g. "must be greater than 0"
  std::string value;    // the offending value as typed, e.g. "-5"

  // "dispense: quantity must be greater than 0, got -5"
  std::string message() const;
  // A write failed for want of space (see kDiskFullText).
  bool disk_full() const { return code == ErrorCode::kIo && rule.find(kDiskFullText) != std::string::npos; }

  static Error invalid(std::string field, std::string rule, std::string value) {
    return Error{ErrorCode::kInvalid, "", std::move(field), std::move(rule), std::move(value)};
  }
  static Error not_found(std::string field, std::string value) {
    return Error{ErrorCode::kNotFound, "", std::move(field), "must name an existing record", std::move(value)};
  }
  static Error refused(std::string field, std::string rule, std::string value) {
    return Error{ErrorCode::kRefused, "", std::move(field), std::move(rule), std::move(value)};
  }
  Error&& in(std::string ctx) && {
    if (context.empty()) context = std::move(ctx);
    return std::move(*this);
  }
};

// Result<T>: either a value or an Error. Result<void> carries only the error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<1>(v_); }
  Error& error() { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }
  Error& error() { return *e_; }

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;

}  // namespace tramsync
