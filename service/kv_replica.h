// KvReplica: one replica of an etcd key space that is replicated the way
// etcd replicates its own. A change is a command in a Raft log, and every
// replica applies the same commands in the same order to an engine of its
// own through KvService, so every replica numbers revisions alike and
// holds the same history.
//
// A command carries the request, not its effect: the rules
// (service/kv_rules.h) run on each replica as it applies, as etcd's apply
// does. That is deterministic given the same state, since nothing on the
// apply path reads a clock or anything of the node's own: no space quota
// (the proposer checks it before proposing), no watcher-held compaction
// floor (a compaction is physical at once), no lease expiry (a lease
// ends by a revocation in the log, which the leader proposes once the
// lease's time is up: service/replica_leases.h).
//
// The engine lives in memory: after a restart it is rebuilt from the Raft
// log's snapshot (Save: the node snapshot stream of service/snapshot.h)
// and the entries after it.
//
// Watchers: given a WatchHub, the replica publishes every revision it
// applies to it, and a restore rebases it on the new engine (the hub's
// watchers stay and catch up from there), so a replica's watchers see
// each revision once, in order, whatever snapshots it installs.
//
// Not thread-safe: the Raft driver's thread applies, restores and reads.
#ifndef STRATA_SERVICE_KV_REPLICA_H_
#define STRATA_SERVICE_KV_REPLICA_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "service/commit_pipeline.h"
#include "service/forwarded_write.h"
#include "service/kv_service.h"
#include "service/lease_table.h"
#include "service/replica_leases.h"
#include "service/watch_hub.h"
#include "strata/mvcc_store.h"
#include "strata/status.h"

namespace strata::service {

class KvReplica final {
 public:
  // `codec` encodes writes and their replies (the server's: etcd's
  // protobuf) and must outlive the replica.
  explicit KvReplica(const KvWriteCodec* codec, size_t max_txn_ops = 128, WatchHub* hub = nullptr);
  ~KvReplica();

  // The commands: a Put, DeleteRange or Txn; a compaction; a lease grant
  // (the id and TTL chosen by the proposer: etcd's rules, LeaseLimits)
  // and a revocation (its keys deleted at one revision).
  static std::string WriteCommand(const KvWriteCodec& codec, const KvWrite& write);
  static std::string CompactCommand(int64_t revision);
  static std::string GrantCommand(int64_t id, int64_t ttl);
  static std::string RevokeCommand(int64_t id);

  // Applies one committed command; returns its reply as bytes, which
  // DecodeWriteReply or DecodeCompactReply read. A command that does not
  // decode gets an error reply (on every replica alike).
  std::string Apply(std::string_view command);
  Reply<KvWriteReply> DecodeWriteReply(std::string_view reply) const;
  static Reply<CompactionResponse> DecodeCompactReply(std::string_view reply);
  // A grant's reply: the id, TTL and revision.
  static Reply<LeaseGrantResult> DecodeGrantReply(std::string_view reply);
  // A revocation's reply: the revision after its keys were deleted.
  static Reply<int64_t> DecodeRevokeReply(std::string_view reply);

  // The whole key space and its history (a node snapshot), and back. An
  // empty snapshot is the empty key space a new group starts from.
  std::string Save() const;
  Status Restore(std::string_view snapshot);
  // Save() as a function that may run on another thread while Apply goes
  // on: it reads the engine at today's revision, whose history above
  // today's compaction stays in the engine until SaveFinished (later
  // compactions are logical until then: reads below them are refused at
  // once, the sweep waits).
  std::function<std::string()> SaveLater();
  void SaveFinished();

  // Reads (Range, HashKV) and the newest revision.
  const KvService& kv() const { return *kv_; }
  const MvccStore& store() const { return *store_; }
  // The engine, kept alive for a reader that outlasts a restore (which
  // replaces it), as a snapshot stream does.
  std::shared_ptr<const MvccStore> shared_store() const { return store_; }
  int64_t revision() const { return kv_->current_revision(); }
  // The leases; the observer is told of grants and ends as they apply (a
  // restore replaces the leases without telling it).
  const ReplicaLeases& leases() const { return leases_; }
  void set_lease_observer(ReplicaLeases::Observer observer) {
    leases_.set_observer(std::move(observer));
  }

 private:
  // A fresh engine and service over it, at `revision`.
  void Reset(std::unique_ptr<MvccStore> store);

  const KvWriteCodec* codec_;
  const size_t max_txn_ops_;
  WatchHub* const hub_;
  ReplicaLeases leases_;
  // Shared with the hub, whose thread may still read a replaced one.
  std::shared_ptr<MvccStore> store_;
  std::unique_ptr<CommitPipeline> pipeline_;
  std::unique_ptr<KvService> kv_;
  // While a SaveLater runs: the compaction it holds the sweep at.
  int64_t save_floor_ = INT64_MAX;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_KV_REPLICA_H_
