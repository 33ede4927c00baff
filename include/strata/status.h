// Status and Result: errors as values, never exceptions across the API.
//
// The codes are the store's own vocabulary (a write at an existing timestamp,
// a read below the compaction horizon) rather than generic RPC codes, so each
// layer above can map them to its own wire errors without guessing.
#ifndef STRATA_STATUS_H_
#define STRATA_STATUS_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace strata {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // a parameter outside its documented range
  kPreconditionFailed,  // e.g. a different write already exists at (key, timestamp)
  kCompacted,           // the timestamp is below the compaction horizon
  kNotFound,
  kConflict,     // a transaction lost a conflict (later layers)
  kUnavailable,  // resource exhausted or temporarily unable to serve; nothing was changed
  kIoError,      // storage failed after the change was made: it may or may not be durable
};

// The code's name as written here ("kCompacted"), for logs and test output.
constexpr std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "kOk";
    case StatusCode::kInvalidArgument:
      return "kInvalidArgument";
    case StatusCode::kPreconditionFailed:
      return "kPreconditionFailed";
    case StatusCode::kCompacted:
      return "kCompacted";
    case StatusCode::kNotFound:
      return "kNotFound";
    case StatusCode::kConflict:
      return "kConflict";
    case StatusCode::kUnavailable:
      return "kUnavailable";
    case StatusCode::kIoError:
      return "kIoError";
  }
  return "unknown StatusCode";
}

class [[nodiscard]] Status final {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status PreconditionFailed(std::string m) {
    return {StatusCode::kPreconditionFailed, std::move(m)};
  }
  static Status Compacted(std::string m) { return {StatusCode::kCompacted, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result final {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace strata

#endif  // STRATA_STATUS_H_
