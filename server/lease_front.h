// LeaseFront: where etcd's Lease calls go when this node's own LeaseTable
// does not answer them: a sharded cluster (ClusterFront: each lease lives
// on a home member) or a key space replicated on every member
// (ReplicatedFront: leases are replicated state, their deadlines the
// leader's). Every answer comes once, on some thread.
#ifndef STRATA_SERVER_LEASE_FRONT_H_
#define STRATA_SERVER_LEASE_FRONT_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "service/lease_table.h"
#include "service/service_error.h"

namespace strata::server {

class LeaseFront {
 public:
  template <typename T>
  using Done = std::function<void(service::Reply<T>)>;

  virtual ~LeaseFront() = default;
  // id 0: the server picks one.
  virtual void LeaseGrant(int64_t id, int64_t ttl, Done<service::LeaseGrantResult> done) = 0;
  // The revision after the lease's keys were deleted.
  virtual void LeaseRevoke(int64_t id, Done<int64_t> done) = 0;
  // The lease's TTL once renewed; 0 if there is no such lease. An error
  // only when nobody could answer (the client asks again).
  virtual void LeaseKeepAlive(int64_t id, Done<int64_t> done) = 0;
  virtual void LeaseTimeToLive(int64_t id, bool keys,
                               Done<service::LeaseTimeToLiveResult> done) = 0;
  virtual void LeaseLeases(Done<std::vector<int64_t>> done) = 0;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_LEASE_FRONT_H_
