// ShardLayout: how many replicas each shard of a sharded cluster has
// (--replication-factor), as a member decides it at start.
//
// Given, the flag's number (at most the members there are); not given, 3
// (or the members there are, if fewer). Either way the first start records
// the factor in the data directory (DATA_DIR/replication-factor), and a
// restart keeps it: without the flag it takes the recorded one, with a
// different one it is refused. A member's data lives in its own store
// (factor 1) or in its shards' Raft groups (above 1), and nothing moves it
// from one to the other, so a member restarted with the other kind would
// serve none of what it holds. Data directories from before the record
// are read by what they hold.
#ifndef STRATA_SERVER_SHARD_LAYOUT_H_
#define STRATA_SERVER_SHARD_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "strata/status.h"

namespace strata::server {

// The factor of a member given no --replication-factor, where the cluster
// has that many members.
inline constexpr uint32_t kDefaultReplicationFactor = 3;

// Where a member's replicated shards keep their Raft log.
std::string ShardRaftDir(const std::string& data_dir);

struct ShardLayoutInputs {
  std::string data_dir;         // empty: the member keeps everything in memory
  uint32_t flag = 0;            // --replication-factor; 0: not given
  size_t members = 1;           // the members the cluster starts with (--initial-cluster)
  bool holds_own_keys = false;  // its own store holds etcd keys: a factor-1 member's
};

struct ShardLayout {
  uint32_t replication_factor = 1;
  std::string why;  // a line for the operator: the factor and where it comes from
};

// The factor the member runs with, or InvalidArgument saying why its data
// directory cannot be served with the one asked for.
Result<ShardLayout> ChooseShardLayout(const ShardLayoutInputs& inputs);

// Records `factor` in `data_dir` unless a record is there already.
Status RecordShardLayout(const std::string& data_dir, uint32_t factor);

}  // namespace strata::server

#endif  // STRATA_SERVER_SHARD_LAYOUT_H_
