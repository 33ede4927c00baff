// The wire error codes (PROTOCOL.md section 1) and the error a parse or a
// handler produces.
#ifndef STRATA_PROTOCOL_ERRORS_H_
#define STRATA_PROTOCOL_ERRORS_H_

#include <string>

#include "strata/status.h"

namespace strata::protocol {

enum class ErrorCode : int {
  kNotSupported = 10,
  kTemporarilyUnavailable = 11,
  kMalformedRequest = 12,
  kCrash = 13,
  kAbort = 14,
  kKeyDoesNotExist = 20,
  kPreconditionFailed = 22,
  kTxnConflict = 30,
  kCompacted = 1000,
};

struct ErrorReply {
  ErrorCode code;
  std::string text;  // a sentence a person can act on
};

// The wire error for a store Status (which must not be OK).
ErrorReply ErrorFromStatus(const Status& status);
// The Status a wire error stands for: the inverse of ErrorFromStatus
// (codes it never produces map to the nearest: 10 to kInvalidArgument,
// 14 to kConflict, unknown ones to kIoError).
Status StatusFromError(const ErrorReply& error);

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_ERRORS_H_
