#include "cluster/resolution.h"

#include <memory>

namespace strata::cluster {

void ResolveOn(Peers* peers, TxnId txn, const std::vector<ShardId>& shards, TxnStatus outcome,
               Timestamp commit_timestamp, std::function<void(bool all_resolved)> done) {
  if (shards.empty()) return done(true);
  struct Acks {
    size_t waiting;
    bool failed = false;
    std::function<void(bool)> done;
  };
  auto acks = std::make_shared<Acks>(Acks{shards.size(), false, std::move(done)});
  for (ShardId shard : shards) {
    peers->Call(shard, ShardResolve{txn, outcome, commit_timestamp},
                [acks](const PeerReply* reply) {
                  if (ReplyAs<ResolveReply>(reply) == nullptr) acks->failed = true;
                  if (--acks->waiting == 0) acks->done(!acks->failed);
                });
  }
}

}  // namespace strata::cluster
