// Status and Result<T>: the error type at every kiln module boundary.
//
// One code enum for the whole project. The server maps each code onto exactly one HTTP status
// and one gRPC code in a single table, so a code must keep its meaning everywhere it is used.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace kiln {

/// Error categories; each maps 1:1 onto an HTTP and a gRPC code in the server's table.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     ///< the caller's input is malformed (HTTP 400, gRPC INVALID_ARGUMENT)
  kNotFound,            ///< a named thing does not exist (404, NOT_FOUND)
  kAlreadyExists,       ///< (409, ALREADY_EXISTS)
  kFailedPrecondition,  ///< valid input in the wrong state (400, FAILED_PRECONDITION)
  kOutOfRange,          ///< an index or size past its limit (400, OUT_OF_RANGE)
  kUnimplemented,       ///< a valid request kiln does not support (501, UNIMPLEMENTED)
  kResourceExhausted,   ///< memory, queue or size limits (429, RESOURCE_EXHAUSTED)
  kUnavailable,         ///< try again later (503, UNAVAILABLE)
  kDataLoss,            ///< a corrupt or truncated file (500, DATA_LOSS)
  kInternal,            ///< a bug in kiln (500, INTERNAL)
};

/// Short upper-case name of a code, e.g. "INVALID_ARGUMENT".
std::string_view status_code_name(StatusCode code);

/// An error code plus a message naming the problem; cheap to copy when ok.
class [[nodiscard]] Status {
 public:
  /// The success value.
  Status() = default;
  /// An error; `code` must not be kOk.
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  /// True when this is success.
  bool ok() const { return code_ == StatusCode::kOk; }
  /// The error category.
  StatusCode code() const { return code_; }
  /// Human-readable message; empty when ok.
  const std::string& message() const { return message_; }
  /// "CODE: message", or "OK".
  std::string to_string() const;
  /// Returns a copy whose message is prefixed with `context: `.
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

/// Convenience constructors for the common codes.
Status ok_status();
Status invalid_argument(std::string message);
Status not_found(std::string message);
Status failed_precondition(std::string message);
Status out_of_range(std::string message);
Status unimplemented(std::string message);
Status resource_exhausted(std::string message);
Status unavailable(std::string message);
Status data_loss(std::string message);
Status internal_error(std::string message);

/// A value or an error Status. Accessing value() of an error is a bug (asserted).
template <typename T>
class [[nodiscard]] Result {
 public:
  /// Success holding `value`.
  Result(T value) : data_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  /// Failure; `status` must not be ok.
  Result(Status status) : data_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(data_).ok());
  }

  /// True when a value is held.
  bool ok() const { return std::holds_alternative<T>(data_); }
  /// The error, or an ok Status when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(data_); }
  /// The held value; only when ok().
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace kiln

#define KILN_CONCAT_INNER_(a, b) a##b
#define KILN_CONCAT_(a, b) KILN_CONCAT_INNER_(a, b)

/// Returns the Status from the enclosing function when `expr` is not ok.
#define KILN_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::kiln::Status kiln_status_ = (expr);        \
    if (!kiln_status_.ok()) return kiln_status_; \
  } while (false)

/// `KILN_ASSIGN_OR_RETURN(auto x, f());` binds the value of a Result or returns its error.
#define KILN_ASSIGN_OR_RETURN(lhs, rexpr) \
  KILN_ASSIGN_OR_RETURN_IMPL_(KILN_CONCAT_(kiln_result_, __LINE__), lhs, rexpr)
#define KILN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
