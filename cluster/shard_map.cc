#include "cluster/shard_map.h"

#include <xxhash.h>

#include <algorithm>
#include <set>

namespace strata::cluster {

Result<ShardMap> ShardMap::OfFirstNodes(const std::vector<std::string>& node_ids,
                                        size_t shard_count, uint32_t replication_factor) {
  const size_t shards = shard_count == 0 ? node_ids.size() : shard_count;
  if (shards > node_ids.size()) return Status::InvalidArgument("more shards than nodes");
  return Replicated(
      std::vector<std::string>(node_ids.begin(), node_ids.begin() + static_cast<ptrdiff_t>(shards)),
      replication_factor);
}

uint64_t ShardMap::HashKey(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

Result<ShardMap> ShardMap::OnePerNode(const std::vector<std::string>& node_ids) {
  return Replicated(node_ids, 1);
}

Result<ShardMap> ShardMap::Replicated(const std::vector<std::string>& node_ids,
                                      uint32_t replication_factor) {
  if (node_ids.empty()) return Status::InvalidArgument("a cluster needs at least one node");
  std::set<std::string_view> seen;
  for (const std::string& id : node_ids) {
    if (id.empty()) return Status::InvalidArgument("a node id is empty");
    if (!seen.insert(id).second) {
      return Status::InvalidArgument("node id '" + id + "' appears twice");
    }
  }
  // Equal ranges: shard i starts at floor(i * 2^64 / n), computed in 128 bits.
  const unsigned __int128 space = static_cast<unsigned __int128>(1) << 64;
  const size_t n = node_ids.size();
  std::vector<Shard> shards(n);
  for (size_t i = 0; i < n; ++i) {
    shards[i].id = static_cast<ShardId>(i);
    shards[i].hash_begin = static_cast<uint64_t>(space * i / n);
    shards[i].hash_end = i + 1 == n ? UINT64_MAX : static_cast<uint64_t>(space * (i + 1) / n) - 1;
    // Its own node first, then the next ones round the list.
    const size_t copies = std::clamp<size_t>(replication_factor, 1, n);
    for (size_t r = 0; r < copies; ++r) shards[i].replicas.push_back(node_ids[(i + r) % n]);
  }
  return ShardMap(std::move(shards), /*generation=*/1);
}

const Shard& ShardMap::ShardForHash(uint64_t hash) const {
  // The last shard whose range begins at or below the hash.
  auto after = std::upper_bound(shards_.begin(), shards_.end(), hash,
                                [](uint64_t h, const Shard& s) { return h < s.hash_begin; });
  return *std::prev(after);
}

std::vector<ShardId> ShardMap::ShardsReplicatedOn(std::string_view node_id) const {
  std::vector<ShardId> found;
  for (const Shard& shard : shards_) {
    if (std::find(shard.replicas.begin(), shard.replicas.end(), node_id) != shard.replicas.end()) {
      found.push_back(shard.id);
    }
  }
  return found;
}

bool ShardMap::SetReplicas(ShardId shard, std::vector<std::string> replicas) {
  if (shard >= shards_.size() || replicas.empty()) return false;
  shards_[shard].replicas = std::move(replicas);
  ++generation_;
  return true;
}

std::optional<ShardId> ShardMap::ShardServedBy(std::string_view node_id) const {
  for (const Shard& shard : shards_) {
    if (shard.leaseholder() == node_id) return shard.id;
  }
  return std::nullopt;
}

}  // namespace strata::cluster
