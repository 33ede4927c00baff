// ResolveOn: telling a transaction's participants its fate.
//
// Used by the coordinator once it knows the outcome, and by a primary
// shard finishing a commit whose coordinator is gone.
#ifndef STRATA_CLUSTER_RESOLUTION_H_
#define STRATA_CLUSTER_RESOLUTION_H_

#include <functional>
#include <vector>

#include "cluster/peers.h"
#include "cluster/txn_id.h"
#include "strata/timestamp.h"

namespace strata::cluster {

// Sends ShardResolve to each of `shards`; `done(true)` once every one has
// resolved, `done(false)` once all answered but some failed or gave up.
void ResolveOn(Peers* peers, TxnId txn, const std::vector<ShardId>& shards, TxnStatus outcome,
               Timestamp commit_timestamp, std::function<void(bool all_resolved)> done);

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_RESOLUTION_H_
