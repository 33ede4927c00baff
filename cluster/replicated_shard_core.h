// ReplicatedShardCore: a ShardCore whose shard is the state of a Raft
// group (cluster/replicated_shard.h), for the ShardServer on one of the
// group's members.
//
// Each change is proposed to the group from this member, which must lead
// it (RaftHost refuses otherwise: kUnavailable naming the leader, which a
// caller retries there), and answered once applied here. What is not
// replicated lives here, the leader's own:
//  - Heartbeats of transaction records. A push aborts a PENDING record not
//    heartbeated here within the heartbeat timeout (an abort command); a
//    record this member never saw heartbeated counts from when it first
//    looked, so a new leader gives every coordinator a full timeout to
//    reach it.
//  - Idle time. The shard's clock moves only as commands apply, so the
//    leader proposes a close at its own clock now and then while idle
//    (KeepTimeMoving): followers' reads and every replica's watches keep
//    up without a write.
//  - Closing. A read at S is complete on this replica once its shard's
//    clock is at S or past it (ReplicatedShard::closed); a read above it
//    waits for a close. One close is in flight at a time, at this node's
//    clock (past every waiting read's snapshot), so reads cost one close a
//    Raft round however many come. A follower serves a read at or below
//    what its replica has closed, and sends one above it to the leader
//    (only the leader proposes). At most kMaxClosing reads wait.
// Answers arrive from the host's rounds (RaftHost::Run); none arrives
// after the core is destroyed.
//
// Not thread-safe: the node's event loop owns it, and the host.
#ifndef STRATA_CLUSTER_REPLICATED_SHARD_CORE_H_
#define STRATA_CLUSTER_REPLICATED_SHARD_CORE_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/hybrid_clock.h"
#include "cluster/replicated_shard.h"
#include "cluster/shard_core.h"
#include "cluster/timers.h"
#include "replication/raft_host.h"

namespace strata::cluster {

struct ReplicatedShardCoreStats {
  uint64_t closes_proposed = 0;  // for reads and idle time alike
  uint64_t idle_closes = 0;      // KeepTimeMoving's
  uint64_t pushes_aborted = 0;   // pushes this leader turned into aborts
};

class ReplicatedShardCore final : public ShardCore {
 public:
  // The node a Raft member id names (nullopt: none this node knows).
  using NodeName = std::function<std::optional<std::string>(raft::NodeId)>;

  // `shard` is the state `host` applies for `group` (made by the host's
  // state factory; it lives as long as the group does here). `node_clock`
  // is the node's: it stamps proposals with its wall time and refuses
  // reads too far ahead of it. `timers` tells the time; `node_name` names
  // the group's leader for callers this member redirects.
  ReplicatedShardCore(replication::RaftHost* host, raft::GroupId group, ReplicatedShard* shard,
                      HybridLogicalClock* node_clock, Timers* timers,
                      std::chrono::milliseconds heartbeat_timeout, NodeName node_name);
  ~ReplicatedShardCore() override;

  void Prepare(ShardPrepare prepare, Timestamp sender_clock, Respond done) override;
  void CommitOnePhase(const PrepareRequest& request, Timestamp sender_clock, Respond done) override;
  void Resolve(TxnId txn, TxnStatus outcome, Timestamp commit_timestamp, Done done) override;
  void Record(const RecordCall& call, Respond done) override;
  void Close(Timestamp snapshot, Done done) override;
  // Forgets the heartbeats of records no longer PENDING (the replica
  // forgets its old state as it applies).
  void ForgetOldState(uint64_t now_ms) override;
  // A compaction command: every replica collects below the same horizon.
  void Compact(Timestamp horizon, Respond done) override;

  const MvccStore& store() const override { return shard_->store(); }
  std::shared_ptr<const MvccStore> shared_store() const override { return shard_->shared_store(); }
  const Participant& participant() const override { return shard_->participant(); }
  const TxnRecordTable& records() const override { return shard_->records(); }
  const ChangeLog& change_log() const override { return shard_->change_log(); }
  ChangeLog& change_log() override { return shard_->change_log(); }
  Timestamp LastTimestamp() const override { return shard_->closed(); }
  // The group's leader when it is another member (and named).
  std::optional<std::string> LeaderElsewhere() const override;
  bool Leads() const override;
  bool ChangesFollowWallClock() const override { return false; }
  // On the leader, a close at this node's clock unless the shard's clock
  // is already within a close interval of it or a close is under way.
  void KeepTimeMoving() override;

  const ReplicatedShardCoreStats& stats() const { return stats_; }

 private:
  void Propose(std::string command, Respond done);
  uint64_t WallMs() const;
  // Whether a push should abort `txn`'s PENDING record now.
  bool HeartbeatStale(TxnId txn);
  // Proposes a close at this node's clock; answers the reads it covers
  // once applied, and proposes the next while others wait.
  void ProposeClose();

  static constexpr size_t kMaxClosing = 100000;

  replication::RaftHost* host_;
  const raft::GroupId group_;
  ReplicatedShard* shard_;
  HybridLogicalClock* node_clock_;
  Timers* timers_;
  const std::chrono::milliseconds heartbeat_timeout_;
  const NodeName node_name_;
  // Dropped with the core: answers the host gives later go nowhere.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::map<TxnId, Clock::time_point> heartbeats_;
  // Reads waiting for a close, by snapshot.
  std::multimap<Timestamp, Done> closing_;
  bool close_in_flight_ = false;
  ReplicatedShardCoreStats stats_;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_REPLICATED_SHARD_CORE_H_
