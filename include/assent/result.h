// Result<T> and Error: how every fallible Assent function reports failure.
// Codes are chosen by what the caller should do next (as absl::StatusCode), never by where
// the failure happened. A decision that denies is a value, not an error.
#ifndef ASSENT_RESULT_H_
#define ASSENT_RESULT_H_

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace assent {

enum class ErrorCode {
  kInvalidArgument,     // The input is wrong; fix it and retry. Nothing was changed.
  kNotFound,            // The thing named does not exist.
  kAlreadyExists,       // The thing being created exists (with different content).
  kFailedPrecondition,  // The system is not in a state where this can work (e.g. no terms).
  kPermissionDenied,    // The caller may not do this.
  kUnavailable,         // Transient: retry later.
  kDataLoss,            // Stored data is corrupt or missing; an operator must look.
  kInternal,            // A bug in Assent.
  kGone,                // It existed and was removed for good (an erased party): do not retry.
};

// Stable lower-case name of a code ("invalid_argument"), used in logs and JSON.
std::string_view ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // "invalid_argument: message"
  std::string ToString() const;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> MakeError(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}
inline std::unexpected<Error> InvalidArgumentError(std::string m) {
  return MakeError(ErrorCode::kInvalidArgument, std::move(m));
}
inline std::unexpected<Error> NotFoundError(std::string m) {
  return MakeError(ErrorCode::kNotFound, std::move(m));
}
inline std::unexpected<Error> AlreadyExistsError(std::string m) {
  return MakeError(ErrorCode::kAlreadyExists, std::move(m));
}
inline std::unexpected<Error> FailedPreconditionError(std::string m) {
  return MakeError(ErrorCode::kFailedPrecondition, std::move(m));
}
inline std::unexpected<Error> DataLossError(std::string m) {
  return MakeError(ErrorCode::kDataLoss, std::move(m));
}
inline std::unexpected<Error> InternalError(std::string m) {
  return MakeError(ErrorCode::kInternal, std::move(m));
}

inline Status OkStatus() { return {}; }

}  // namespace assent

// Evaluates `expr` (a Result or Status); on error returns the error from the enclosing function.
#define ASSENT_RETURN_IF_ERROR(expr)                                  \
  do {                                                                \
    if (auto assent_status_ = (expr); !assent_status_) {              \
      return std::unexpected<::assent::Error>(assent_status_.error()); \
    }                                                                 \
  } while (0)

#define ASSENT_CONCAT_INNER_(a, b) a##b
#define ASSENT_CONCAT_(a, b) ASSENT_CONCAT_INNER_(a, b)
// ASSENT_ASSIGN_OR_RETURN(auto x, F()): binds the value of F() or returns its error.
#define ASSENT_ASSIGN_OR_RETURN(lhs, expr)                                      \
  auto ASSENT_CONCAT_(assent_result_, __LINE__) = (expr);                       \
  if (!ASSENT_CONCAT_(assent_result_, __LINE__)) {                              \
    return std::unexpected<::assent::Error>(                                    \
        std::move(ASSENT_CONCAT_(assent_result_, __LINE__).error()));           \
  }                                                                             \
  lhs = std::move(*ASSENT_CONCAT_(assent_result_, __LINE__))

#endif  // ASSENT_RESULT_H_
