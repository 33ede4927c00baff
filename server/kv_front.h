// KvFront: where etcd's KV calls go when this node's own KvService does
// not answer them: a sharded cluster (ClusterFront) or a key space
// replicated on every member (ReplicatedFront). The gRPC KV service calls
// whichever the server runs; every answer comes once, on some thread.
#ifndef STRATA_SERVER_KV_FRONT_H_
#define STRATA_SERVER_KV_FRONT_H_

#include <cstdint>
#include <functional>

#include "service/kv_types.h"
#include "service/service_error.h"

namespace strata::server {

class KvFront {
 public:
  template <typename T>
  using Done = std::function<void(service::Reply<T>)>;

  virtual ~KvFront() = default;
  virtual void Range(service::RangeRequest request, Done<service::RangeResponse> done) = 0;
  virtual void Put(service::PutRequest request, Done<service::PutResponse> done) = 0;
  virtual void DeleteRange(service::DeleteRangeRequest request,
                           Done<service::DeleteRangeResponse> done) = 0;
  virtual void Txn(service::TxnRequest request, Done<service::TxnResponse> done) = 0;
  virtual void Compact(service::CompactionRequest request,
                       Done<service::CompactionResponse> done) = 0;
  // The newest revision a read here sees (what a header says).
  virtual int64_t current_revision() const = 0;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_KV_FRONT_H_
