// etcd's rules for granting a lease, written once: one node (LeaseTable)
// and a cluster (ClusterLeases) both grant by them.
#ifndef STRATA_SERVICE_LEASE_RULES_H_
#define STRATA_SERVICE_LEASE_RULES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>

#include "service/service_error.h"

namespace strata::service {

struct LeaseLimits {
  // etcd's minimum: shorter TTLs are raised to it (3/2 of an election
  // timeout of 1 s, rounded up).
  int64_t min_ttl_seconds = 2;
  // etcd's MaxLeaseTTL; longer is "too large lease TTL".
  int64_t max_ttl_seconds = 9'000'000'000;
  // A bound on the leases one table keeps (one node's, or those homed on
  // one member of a cluster), so a client cannot grow memory without end.
  size_t max_leases = 1'000'000;
};

// The TTL a grant asking for `requested` seconds gets: raised to the
// minimum; "too large lease TTL" above the maximum. Any id but 0 may be
// asked for, negative ones too, as etcd's lessor takes them.
Reply<int64_t> GrantedTtl(int64_t requested, const LeaseLimits& limits);

// "too many requests" when `kept` leases (grants under way included)
// already fill the bound; else nullopt.
std::optional<ServiceError> RoomForGrant(size_t kept, const LeaseLimits& limits);

// The id of a lease granted without one (id 0): random and positive, as
// etcd's, and not `taken`.
int64_t ChooseLeaseId(std::mt19937_64* random, const std::function<bool(int64_t)>& taken);

}  // namespace strata::service

#endif  // STRATA_SERVICE_LEASE_RULES_H_
