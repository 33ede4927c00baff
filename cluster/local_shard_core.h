// LocalShardCore: a shard held by one node (no replicas), changed at once.
//
// Over the node's MvccStore and hybrid clock it keeps the shard's
// participant (intents, read locks, outcomes), the records it keeps as a
// primary and the change log watches read. With `persist`, prepares and
// records are kept in the store (DurableClusterState) and come back after
// a restart; requests sent before this core started are refused, since
// what it refused or finished before the restart is no longer remembered.
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_CLUSTER_LOCAL_SHARD_CORE_H_
#define STRATA_CLUSTER_LOCAL_SHARD_CORE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cluster/durable_state.h"
#include "cluster/hybrid_clock.h"
#include "cluster/shard_core.h"
#include "cluster/shard_map.h"
#include "cluster/timers.h"

namespace strata::cluster {

struct LocalShardCoreOptions {
  std::chrono::milliseconds heartbeat_timeout{1000};
  std::chrono::milliseconds outcome_retention{10000};
  std::function<std::string(std::string_view)> describe_key;
  size_t change_log_bytes = size_t{16} << 20;
};

class LocalShardCore final : public ShardCore {
 public:
  // `store` and `clock` are the node's; `timers` tells the time. With
  // `persist`, loads what the store kept (kInvalidArgument if it does not
  // decode).
  static Result<std::unique_ptr<LocalShardCore>> Create(ShardId shard, MvccStore* store,
                                                        HybridLogicalClock* clock, Timers* timers,
                                                        bool persist,
                                                        LocalShardCoreOptions options);

  void Prepare(ShardPrepare prepare, Timestamp sender_clock, Respond done) override;
  void CommitOnePhase(const PrepareRequest& request, Timestamp sender_clock, Respond done) override;
  void Resolve(TxnId txn, TxnStatus outcome, Timestamp commit_timestamp, Done done) override;
  void Record(const RecordCall& call, Respond done) override;
  void Close(Timestamp snapshot, Done done) override;
  void ForgetOldState(uint64_t now_ms) override;

  const MvccStore& store() const override { return *store_; }
  // The node's store, which outlives every reader: not owned.
  std::shared_ptr<const MvccStore> shared_store() const override {
    return std::shared_ptr<const MvccStore>(std::shared_ptr<const MvccStore>(), store_);
  }
  const Participant& participant() const override { return participant_; }
  const TxnRecordTable& records() const override { return records_; }
  const ChangeLog& change_log() const override { return change_log_; }
  ChangeLog& change_log() override { return change_log_; }
  Timestamp LastTimestamp() const override { return clock_->Last(); }

 private:
  LocalShardCore(ShardId shard, MvccStore* store, HybridLogicalClock* clock, Timers* timers,
                 const LocalShardCoreOptions& options);
  // kConflict for a request sent before this core started.
  Status CheckSentAfterStart(TxnId txn, Timestamp sender_clock) const;
  // Persisted: saves `txn`'s record if it changed from `before` (or erases
  // it, once forgotten).
  Status PersistRecord(TxnId txn, const std::optional<TxnRecord>& before);

  const ShardId shard_;
  MvccStore* store_;
  HybridLogicalClock* clock_;
  Timers* timers_;
  // Wall-clock ms when this core started (see CheckSentAfterStart).
  const uint64_t boot_ms_;
  ChangeLog change_log_;  // before participant_, which appends to it
  Participant participant_;
  TxnRecordTable records_;
  std::optional<DurableClusterState> durable_state_;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_LOCAL_SHARD_CORE_H_
