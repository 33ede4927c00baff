// Which refused requests an operator should hear about, and what to do
// about them: a limit reached (request size, Txn size, the space quota, the
// lease bound) or a fault (the log failed). The answers clients expect in
// normal work (a compacted revision, a missing lease, a failed compare) are
// not logged. Each kind is logged at most once a minute (ops::Log::Throttled).
#ifndef STRATA_SERVER_REFUSAL_LOG_H_
#define STRATA_SERVER_REFUSAL_LOG_H_

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>

#include "server/etcd_server.h"

namespace strata::server {

struct Refusal {
  std::string kind;    // one throttled line per kind
  std::string advice;  // what to do about it
};

std::optional<Refusal> ClassifyRefusal(const grpc::Status& status, const ServerOptions& options);

}  // namespace strata::server

#endif  // STRATA_SERVER_REFUSAL_LOG_H_
