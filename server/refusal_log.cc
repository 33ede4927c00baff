#include "server/refusal_log.h"

#include "service/space_quota.h"

namespace strata::server {

std::optional<Refusal> ClassifyRefusal(const grpc::Status& status, const ServerOptions& options) {
  const std::string& m = status.error_message();
  if (m == "etcdserver: request is too large") {
    return Refusal{"request-too-large",
                   "a request was larger than --max-request-bytes (" +
                       std::to_string(options.max_request_bytes) +
                       " bytes): split it, or raise the flag (clients must allow it too)"};
  }
  if (m == "etcdserver: too many operations in txn request") {
    return Refusal{"txn-too-many-ops", "a Txn had more operations than --max-txn-ops (" +
                                           std::to_string(options.max_txn_ops) +
                                           "): split it, or raise the flag"};
  }
  if (m == "etcdserver: mvcc: database space exceeded") {
    const uint64_t quota = options.quota_backend_bytes ? options.quota_backend_bytes
                                                       : service::SpaceQuota::kDefaultBytes;
    return Refusal{"nospace",
                   "the NOSPACE alarm is raised (the store passed --quota-backend-bytes, " +
                       std::to_string(quota) +
                       " bytes): compact (etcdctl compact), defragment, then "
                       "'etcdctl alarm disarm'; or restart with a larger quota"};
  }
  if (m == "etcdserver: too many requests") {
    return Refusal{"too-many-leases",
                   "live leases reached their bound (1,000,000): revoke the ones no longer used"};
  }
  if (m.rfind("strata: storage failed", 0) == 0) {
    return Refusal{"storage-failed",
                   "the write-ahead log failed and writes are refused (see the first line about "
                   "it): fix the disk, then restart; nothing acknowledged is lost"};
  }
  return std::nullopt;
}

}  // namespace strata::server
