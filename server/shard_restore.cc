#include "server/shard_restore.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "cluster/replicated_shard.h"
#include "cluster/shard_map.h"
#include "service/cluster_kv.h"
#include "service/snapshot.h"
#include "strata/mvcc_store.h"

namespace strata::server {

Result<RestoredShards> RestoreShards(const ShardRestoreInputs& in) {
  std::ifstream file(in.snapshot_file, std::ios::binary);
  if (!file) return Status::NotFound("cannot open " + in.snapshot_file);
  const std::string data((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<std::string> members = in.members;
  std::sort(members.begin(), members.end());
  Result<cluster::ShardMap> map = cluster::ShardMap::Replicated(members, in.replication_factor);
  if (!map.ok()) return map.status();
  RestoredShards restored;
  for (cluster::ShardId shard : map->ShardsReplicatedOn(in.self)) {
    service::RestoreOptions options;
    options.as_of_revision = in.as_of_revision;
    if (Status s = service::ClusterKv::RestoreAsShard(members, shard, &options); !s.ok()) return s;
    MvccStore store;
    Result<service::RestoreReport> report =
        service::RestoreMemberSnapshot(data, in.snapshot_file, options, &store);
    if (!report.ok()) return report.status();
    restored.states[shard] = cluster::ReplicatedShard::InitialSnapshot(store);
    restored.auth_state = std::move(report->auth_state);
    if (in.log) {
      in.log("restored shard " + std::to_string(shard) + " from " + in.snapshot_file +
             ": revision " + std::to_string(report->revision) + ", " +
             std::to_string(report->keys) + " keys, " + std::to_string(report->versions) +
             " versions");
    }
  }
  return restored;
}

}  // namespace strata::server
