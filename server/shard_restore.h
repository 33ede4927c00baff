// RestoreShards: a sharded cluster with replicated shards started from a
// backup (strata-server --restore with a replication factor above 1).
//
// Every first member is started with the same snapshot; each makes, for
// every shard it holds a first replica of, the state that shard's group
// starts from: the snapshot's keys that shard owns (laid out as the
// cluster keeps them: leases and the users as records, as a member
// without replicas restores them, service/snapshot.h), at the snapshot's
// revision and compaction, nothing under way. The replicas of a shard
// make the same state from the same file, so its group starts as if it had
// always held it (RaftHost::CreateGroup).
#ifndef STRATA_SERVER_SHARD_RESTORE_H_
#define STRATA_SERVER_SHARD_RESTORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "strata/status.h"

namespace strata::server {

struct ShardRestoreInputs {
  std::string snapshot_file;
  int64_t as_of_revision = 0;        // 0: the snapshot's
  std::vector<std::string> members;  // the first members' names (--initial-cluster)
  std::string self;
  uint32_t replication_factor = 3;
  // Lines for the operator (each shard restored); null: none.
  std::function<void(const std::string&)> log;
};

struct RestoredShards {
  std::map<uint32_t, std::string> states;  // by shard: its group's first state
  std::string auth_state;  // the users and roles (AuthState::Encode), if the snapshot has them
};

// The states of the shards `self` holds a first replica of. Errors as
// service::RestoreSnapshot's (a damaged file, a revision outside it).
Result<RestoredShards> RestoreShards(const ShardRestoreInputs& inputs);

}  // namespace strata::server

#endif  // STRATA_SERVER_SHARD_RESTORE_H_
