// ShardMap: which shard owns a key, and which nodes hold each shard.
//
// Keys are placed by a 64-bit hash of their engine bytes (XXH3), and a shard
// owns a contiguous range of the hash space. Hashing spreads any key
// distribution evenly without knowing it in advance (scans fan out to every
// shard anyway); ranges, unlike "hash mod N", can later be split, merged or
// moved one at a time, which is what adding nodes and replicas needs. Each
// shard lists its replicas, the first being the one that serves it; today
// every shard has exactly one, on its own node (issue 5), and the map
// carries a generation so that a later issue can change it safely.
// Replicated maps list several replicas a shard (the members of its Raft
// group): calls try them in turn, and one that does not lead the shard
// names the one that does.
#ifndef STRATA_CLUSTER_SHARD_MAP_H_
#define STRATA_CLUSTER_SHARD_MAP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/status.h"

namespace strata::cluster {

using ShardId = uint32_t;

struct Shard {
  ShardId id = 0;
  // The hash range [hash_begin, hash_end]; inclusive, so one shard can own
  // the whole space.
  uint64_t hash_begin = 0;
  uint64_t hash_end = UINT64_MAX;
  std::vector<std::string> replicas;  // node ids; replicas[0] serves the shard

  const std::string& leaseholder() const { return replicas.front(); }
  bool Contains(uint64_t hash) const { return hash >= hash_begin && hash <= hash_end; }
};

class ShardMap final {
 public:
  // One shard per node, in the order given, splitting the hash space into
  // equal ranges. kInvalidArgument for no nodes, an empty id or a repeated id.
  static Result<ShardMap> OnePerNode(const std::vector<std::string>& node_ids);
  // The same shards, each with `replication_factor` replicas (at most one
  // a node): shard i on node i first, then the nodes after it round the
  // list, so every node holds as many replicas as any other.
  static Result<ShardMap> Replicated(const std::vector<std::string>& node_ids,
                                     uint32_t replication_factor);
  // Replicated over the first `shard_count` nodes alone (a cluster's first
  // members, cluster/node_list.h; 0: every node): the nodes after them
  // joined later and hold only replicas moved onto them.
  // kInvalidArgument as Replicated, or for more shards than nodes.
  static Result<ShardMap> OfFirstNodes(const std::vector<std::string>& node_ids, size_t shard_count,
                                       uint32_t replication_factor);

  static uint64_t HashKey(std::string_view key);

  const Shard& ShardFor(std::string_view key) const { return ShardForHash(HashKey(key)); }
  const Shard& ShardForHash(uint64_t hash) const;
  const std::vector<Shard>& shards() const { return shards_; }
  // The shard `node_id` serves, if any (the one it is first replica of).
  std::optional<ShardId> ShardServedBy(std::string_view node_id) const;
  // The shards `node_id` holds a replica of, in id order.
  std::vector<ShardId> ShardsReplicatedOn(std::string_view node_id) const;
  uint64_t generation() const { return generation_; }
  // Names `replicas` (non-empty, the one to try first first) as `shard`'s,
  // when its group moved replicas (cluster/shard_group_report.h); a new
  // generation. False, changing nothing, for an unknown shard or none.
  bool SetReplicas(ShardId shard, std::vector<std::string> replicas);

 private:
  ShardMap(std::vector<Shard> shards, uint64_t generation)
      : shards_(std::move(shards)), generation_(generation) {}
  std::vector<Shard> shards_;  // ascending hash ranges covering [0, 2^64)
  uint64_t generation_;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_SHARD_MAP_H_
