#include "protocol/errors.h"

namespace strata::protocol {

ErrorReply ErrorFromStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kPreconditionFailed:
      return {ErrorCode::kPreconditionFailed, status.message()};
    case StatusCode::kCompacted:
      return {ErrorCode::kCompacted, status.message()};
    case StatusCode::kNotFound:
      return {ErrorCode::kKeyDoesNotExist, status.message()};
    case StatusCode::kConflict:
      return {ErrorCode::kTxnConflict, status.message()};
    case StatusCode::kUnavailable:
      return {ErrorCode::kTemporarilyUnavailable, status.message()};
    case StatusCode::kIoError:
      // Indefinite: the change may or may not survive a restart.
      return {ErrorCode::kCrash, status.message()};
    case StatusCode::kInvalidArgument:
      return {ErrorCode::kMalformedRequest, status.message()};
    case StatusCode::kOk:
      break;
  }
  return {ErrorCode::kCrash, "internal error: an OK status was reported as an error"};
}

Status StatusFromError(const ErrorReply& error) {
  switch (error.code) {
    case ErrorCode::kPreconditionFailed:
      return Status(StatusCode::kPreconditionFailed, error.text);
    case ErrorCode::kCompacted:
      return Status(StatusCode::kCompacted, error.text);
    case ErrorCode::kKeyDoesNotExist:
      return Status(StatusCode::kNotFound, error.text);
    case ErrorCode::kTxnConflict:
    case ErrorCode::kAbort:
      return Status(StatusCode::kConflict, error.text);
    case ErrorCode::kTemporarilyUnavailable:
      return Status(StatusCode::kUnavailable, error.text);
    case ErrorCode::kMalformedRequest:
    case ErrorCode::kNotSupported:
      return Status(StatusCode::kInvalidArgument, error.text);
    case ErrorCode::kCrash:
      break;
  }
  return Status(StatusCode::kIoError, error.text);
}

}  // namespace strata::protocol
