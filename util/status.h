// Status and StatusOr: how idem reports failure without exceptions.
//
// A Status is either OK or carries a Code and a message that names what went
// wrong (the field, the limit, the file). Functions that can fail return a
// [[nodiscard]] Status or StatusOr<T>; callers must look at it.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace idem {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,
    kCorruption,
    kInvalidArgument,
    kIOError,
    kResourceExhausted,
    kUnavailable,
    kNotSupported,
    kInternal,
    kRemote,  // the server answered with a protocol error (remote_code())
  };

  Status() = default;

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg) { return {Code::kNotFound, msg}; }
  static Status Corruption(std::string_view msg) { return {Code::kCorruption, msg}; }
  static Status InvalidArgument(std::string_view msg) { return {Code::kInvalidArgument, msg}; }
  static Status IOError(std::string_view msg) { return {Code::kIOError, msg}; }
  static Status ResourceExhausted(std::string_view msg) { return {Code::kResourceExhausted, msg}; }
  static Status Unavailable(std::string_view msg) { return {Code::kUnavailable, msg}; }
  static Status NotSupported(std::string_view msg) { return {Code::kNotSupported, msg}; }
  static Status Internal(std::string_view msg) { return {Code::kInternal, msg}; }
  // A protocol error the server answered with: `code` is an idem.v1.ErrorCode.
  static Status Remote(int code, std::string_view msg, uint32_t retry_after_ms = 0) {
    Status s(Code::kRemote, msg);
    s.remote_code_ = code;
    s.retry_after_ms_ = retry_after_ms;
    return s;
  }

  bool ok() const { return code_ == Code::kOk; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsResourceExhausted() const { return code_ == Code::kResourceExhausted; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsRemote() const { return code_ == Code::kRemote; }
  // The server's idem.v1.ErrorCode when IsRemote(), else 0.
  int remote_code() const { return remote_code_; }
  uint32_t retry_after_ms() const { return retry_after_ms_; }

  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "Corruption: record value truncated at byte 3"; "OK" when ok().
  std::string ToString() const;

  // Returns a copy whose message is "context: message". OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  Status(Code code, std::string_view msg) : code_(code), message_(msg) {}

  Code code_ = Code::kOk;
  std::string message_;
  int remote_code_ = 0;
  uint32_t retry_after_ms_ = 0;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok());
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace idem

// Returns early from the enclosing function when `expr` is not OK.
#define IDEM_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::idem::Status _idem_status = (expr);        \
    if (!_idem_status.ok()) return _idem_status; \
  } while (0)
