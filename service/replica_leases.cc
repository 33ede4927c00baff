#include "service/replica_leases.h"

#include "storage/coding.h"

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

std::string EncodeLeaseQuery(const LeaseQuery& query) {
  std::string out(1, static_cast<char>(query.kind));
  storage::PutVarint(&out, static_cast<uint64_t>(query.id));
  out.push_back(query.keys ? 1 : 0);
  return out;
}

std::optional<LeaseQuery> DecodeLeaseQuery(std::string_view bytes) {
  if (bytes.empty()) return std::nullopt;
  LeaseQuery query;
  query.kind = static_cast<LeaseQuery::Kind>(bytes.front());
  if (query.kind != LeaseQuery::Kind::kRenewal && query.kind != LeaseQuery::Kind::kTimeToLive) {
    return std::nullopt;
  }
  storage::Decoder in(bytes.substr(1));
  uint64_t id = 0;
  uint8_t keys = 0;
  if (!in.Varint(&id) || !in.Byte(&keys) || !in.done() || keys > 1) return std::nullopt;
  query.id = static_cast<int64_t>(id);
  query.keys = keys == 1;
  return query;
}

std::string EncodeLeaseAnswer(const LeaseTimeToLiveResult& answer) {
  std::string out;
  storage::PutVarint(&out, static_cast<uint64_t>(answer.ttl));
  storage::PutVarint(&out, static_cast<uint64_t>(answer.granted_ttl));
  storage::PutVarint(&out, answer.keys.size());
  for (const auto& key : answer.keys) storage::PutBytes(&out, key);
  return out;
}

std::optional<LeaseTimeToLiveResult> DecodeLeaseAnswer(std::string_view bytes, int64_t id) {
  storage::Decoder in(bytes);
  uint64_t left = 0, granted = 0, count = 0;
  LeaseTimeToLiveResult answer;
  answer.id = id;
  // Each key takes a byte at least: a count past that is not ours.
  if (!in.Varint(&left) || !in.Varint(&granted) || !in.Varint(&count) || count > bytes.size()) {
    return std::nullopt;
  }
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view key;
    if (!in.Bytes(&key)) return std::nullopt;
    answer.keys.emplace_back(key);
  }
  if (!in.done()) return std::nullopt;
  answer.ttl = static_cast<int64_t>(left);
  answer.granted_ttl = static_cast<int64_t>(granted);
  return answer;
}

}  // namespace strata::service
