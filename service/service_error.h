// ServiceError: a refusal as etcd words it.
//
// etcd clients recognize errors by their exact message text (clientv3's
// rpctypes maps status messages back to typed errors), so the service layer
// names etcd's code and text here, once; front ends only translate the code
// to their transport's (server/ maps it to a gRPC status code one to one).
#ifndef STRATA_SERVICE_SERVICE_ERROR_H_
#define STRATA_SERVICE_SERVICE_ERROR_H_

#include <string>
#include <utility>
#include <variant>

namespace strata::service {

// The gRPC status codes etcd uses, without depending on gRPC.
enum class ErrorCode {
  kCanceled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

struct ServiceError {
  ErrorCode code = ErrorCode::kUnknown;
  std::string message;
};

// etcd's errors (etcdserver/api/v3rpc/rpctypes), same code, same text.
namespace etcd_errors {
inline ServiceError EmptyKey() {
  return {ErrorCode::kInvalidArgument, "etcdserver: key is not provided"};
}
inline ServiceError KeyNotFound() {
  return {ErrorCode::kInvalidArgument, "etcdserver: key not found"};
}
inline ServiceError ValueProvided() {
  return {ErrorCode::kInvalidArgument, "etcdserver: value is provided"};
}
inline ServiceError LeaseProvided() {
  return {ErrorCode::kInvalidArgument, "etcdserver: lease is provided"};
}
inline ServiceError TooManyOps() {
  return {ErrorCode::kInvalidArgument, "etcdserver: too many operations in txn request"};
}
inline ServiceError DuplicateKey() {
  return {ErrorCode::kInvalidArgument, "etcdserver: duplicate key given in txn request"};
}
inline ServiceError Compacted() {
  return {ErrorCode::kOutOfRange, "etcdserver: mvcc: required revision has been compacted"};
}
inline ServiceError FutureRev() {
  return {ErrorCode::kOutOfRange, "etcdserver: mvcc: required revision is a future revision"};
}
inline ServiceError NoSpace() {
  return {ErrorCode::kResourceExhausted, "etcdserver: mvcc: database space exceeded"};
}
inline ServiceError LeaseNotFound() {
  return {ErrorCode::kNotFound, "etcdserver: requested lease not found"};
}
inline ServiceError LeaseExist() {
  return {ErrorCode::kFailedPrecondition, "etcdserver: lease already exists"};
}
inline ServiceError LeaseTtlTooLarge() {
  return {ErrorCode::kOutOfRange, "etcdserver: too large lease TTL"};
}
inline ServiceError RequestTooLarge() {
  return {ErrorCode::kInvalidArgument, "etcdserver: request is too large"};
}
inline ServiceError TooManyRequests() {
  return {ErrorCode::kResourceExhausted, "etcdserver: too many requests"};
}
inline ServiceError Stopped() { return {ErrorCode::kUnavailable, "etcdserver: server stopped"}; }
inline ServiceError NotSupportedForLearner() {
  return {ErrorCode::kUnavailable, "etcdserver: rpc not supported for learner"};
}
inline ServiceError MemberNotFound() {
  return {ErrorCode::kNotFound, "etcdserver: member not found"};
}
// etcd's Auth errors.
inline ServiceError RootUserNotExist() {
  return {ErrorCode::kFailedPrecondition, "etcdserver: root user does not exist"};
}
inline ServiceError RootRoleNotExist() {
  return {ErrorCode::kFailedPrecondition, "etcdserver: root user does not have root role"};
}
inline ServiceError UserAlreadyExist() {
  return {ErrorCode::kFailedPrecondition, "etcdserver: user name already exists"};
}
inline ServiceError UserEmpty() {
  return {ErrorCode::kInvalidArgument, "etcdserver: user name is empty"};
}
inline ServiceError UserNotFound() {
  return {ErrorCode::kFailedPrecondition, "etcdserver: user name not found"};
}
inline ServiceError RoleAlreadyExist() {
  return {ErrorCode::kFailedPrecondition, "etcdserver: role name already exists"};
}
inline ServiceError RoleNotFound() {
  return {ErrorCode::kFailedPrecondition, "etcdserver: role name not found"};
}
inline ServiceError RoleEmpty() {
  return {ErrorCode::kInvalidArgument, "etcdserver: role name is empty"};
}
inline ServiceError AuthFailed() {
  return {ErrorCode::kInvalidArgument,
          "etcdserver: authentication failed, invalid user ID or password"};
}
inline ServiceError PermissionDenied() {
  return {ErrorCode::kPermissionDenied, "etcdserver: permission denied"};
}
inline ServiceError RoleNotGranted() {
  return {ErrorCode::kFailedPrecondition, "etcdserver: role is not granted to the user"};
}
inline ServiceError PermissionNotGranted() {
  return {ErrorCode::kFailedPrecondition, "etcdserver: permission is not granted to the role"};
}
inline ServiceError AuthNotEnabled() {
  return {ErrorCode::kFailedPrecondition, "etcdserver: authentication is not enabled"};
}
inline ServiceError InvalidAuthToken() {
  return {ErrorCode::kUnauthenticated, "etcdserver: invalid auth token"};
}
inline ServiceError InvalidAuthMgmt() {
  return {ErrorCode::kInvalidArgument, "etcdserver: invalid auth management"};
}
// Not etcd's: the log failed, so no write can be made durable any more.
inline ServiceError StorageFailed(const std::string& why) {
  return {ErrorCode::kUnavailable, "strata: storage failed, writes are refused: " + why};
}
}  // namespace etcd_errors

// A reply or the error that replaces it.
template <typename T>
class Reply {
 public:
  Reply(T value) : v_(std::move(value)) {}  // NOLINT: implicit, like Result
  Reply(ServiceError error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  const ServiceError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, ServiceError> v_;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_SERVICE_ERROR_H_
