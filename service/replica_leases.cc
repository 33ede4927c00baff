#include "service/replica_leases.h"

namespace strata::service {

bool ReplicaLeases::Grant(int64_t id, int64_t ttl) {
  if (!leases_.emplace(id, Lease{ttl, {}}).second) return false;
  if (observer_) observer_(id, ttl);
  return true;
}

void ReplicaLeases::Load(const std::vector<std::pair<int64_t, int64_t>>& granted) {
  leases_.clear();
  for (const auto& [id, ttl] : granted) leases_.emplace(id, Lease{ttl, {}});
}

std::optional<int64_t> ReplicaLeases::GrantedTtl(int64_t id) const {
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  return it->second.ttl;
}

std::vector<std::string> ReplicaLeases::Keys(int64_t id) const {
  auto it = leases_.find(id);
  if (it == leases_.end()) return {};
  return {it->second.keys.begin(), it->second.keys.end()};
}

std::vector<int64_t> ReplicaLeases::Ids() const {
  std::vector<int64_t> out;
  out.reserve(leases_.size());
  for (const auto& [id, lease] : leases_) out.push_back(id);
  return out;
}

std::vector<std::pair<int64_t, int64_t>> ReplicaLeases::Granted() const {
  std::vector<std::pair<int64_t, int64_t>> out;
  out.reserve(leases_.size());
  for (const auto& [id, lease] : leases_) out.emplace_back(id, lease.ttl);
  return out;
}

void ReplicaLeases::Move(const std::string& key, int64_t from, int64_t to) {
  if (from != 0) {
    if (auto it = leases_.find(from); it != leases_.end()) it->second.keys.erase(key);
  }
  if (to != 0) {
    if (auto it = leases_.find(to); it != leases_.end()) it->second.keys.insert(key);
  }
}

std::optional<std::vector<std::string>> ReplicaLeases::End(int64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  std::vector<std::string> keys(it->second.keys.begin(), it->second.keys.end());
  leases_.erase(it);
  if (observer_) observer_(id, 0);
  return keys;
}

}  // namespace strata::service
