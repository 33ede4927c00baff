#include "service/lease_rules.h"

#include <algorithm>

namespace strata::service {

Reply<int64_t> GrantedTtl(int64_t requested, const LeaseLimits& limits) {
  if (requested > limits.max_ttl_seconds) return etcd_errors::LeaseTtlTooLarge();
  return std::max(requested, limits.min_ttl_seconds);
}

std::optional<ServiceError> RoomForGrant(size_t kept, const LeaseLimits& limits) {
  if (kept >= limits.max_leases) return etcd_errors::TooManyRequests();
  return std::nullopt;
}

int64_t ChooseLeaseId(std::mt19937_64* random, const std::function<bool(int64_t)>& taken) {
  int64_t id = 0;
  while (id == 0 || taken(id)) id = static_cast<int64_t>((*random)() >> 1);
  return id;
}

}  // namespace strata::service
