// ReplicatedShard: one shard's transactional state as the replicated state
// of the shard's Raft group (replication/raft_host.h), so a leader change
// loses no prepared transaction and strands no intent: the versions, the
// write intents and read locks (Participant), the transaction records the
// shard keeps as a primary (TxnRecordTable), the outcomes it remembers,
// and the shard's clock.
//
// Every change is a command its group's leader proposes (the operations
// ShardServer serves today: prepare, one-phase commit, resolve, a
// record's commit, abort and forget, compaction) and every replica applies
// the same commands in the same order to the same state, so each one's
// checks (conflicts, the records' rules) give the same answer everywhere.
// What would differ between replicas is kept off the apply path:
//  - Timestamps. The shard's hybrid clock is replicated state: its last
//    timestamp moves only as commands apply, and its "wall clock" is the
//    proposer's, carried in each command. A prepare or a one-phase commit
//    takes max(last + 1, proposer's wall time) on every replica alike, so
//    timestamps rise in log order whoever proposed them (an old leader's
//    proposals that commit after a new leader's get later timestamps,
//    never earlier ones).
//  - Reads. A read at S is complete on a replica whose clock has reached
//    S (every command applied later takes a timestamp above it) once no
//    intent at or below S is in its way. A read above the clock is made
//    servable by a close command (Close), which moves the clock to S on
//    every replica: the leader proposes one for reads above its clock, and
//    the same closed timestamp lets followers serve reads at or below it.
//  - Heartbeats of transaction records. They are the leader's alone (not
//    commands: one a transaction per second would fill the log); a push
//    is the leader's judgement, then an abort command
//    (cluster/replicated_shard_core.h). The records' heartbeat times here
//    are each replica's apply times, and mean nothing.
//  - Forgetting. Old outcomes and aborted records are forgotten by the
//    replicated clock's time (once each of its seconds, at the first
//    command applied in it), not the wall clock.
// A command that does not decode gets an error reply, on every replica.
//
// Not thread-safe: the Raft driver's thread applies, restores and reads.
#ifndef STRATA_CLUSTER_REPLICATED_SHARD_H_
#define STRATA_CLUSTER_REPLICATED_SHARD_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cluster/change_log.h"
#include "cluster/hybrid_clock.h"
#include "cluster/participant.h"
#include "cluster/peer_messages.h"
#include "cluster/shard_map.h"
#include "cluster/txn_record_table.h"
#include "replication/raft_host.h"
#include "strata/mvcc_store.h"

namespace strata::cluster {

struct ReplicatedShardOptions {
  ShardId shard = 0;
  // The low bits of the timestamps the shard's clock hands out (see
  // HybridClockOptions::node_index): the caller keeps them distinct from
  // every other clock's in the cluster.
  std::optional<uint32_t> residue;
  std::chrono::milliseconds outcome_retention{10000};
  std::chrono::milliseconds heartbeat_timeout{1000};
  std::function<std::string(std::string_view)> describe_key;
  // The replica's own time, for what is not replicated (intents' ages,
  // records' heartbeats).
  std::function<std::chrono::steady_clock::time_point()> steady_now =
      std::chrono::steady_clock::now;
  size_t change_log_bytes = size_t{16} << 20;
};

class ReplicatedShard final : public replication::ReplicatedState {
 public:
  explicit ReplicatedShard(ReplicatedShardOptions options);
  ~ReplicatedShard() override;

  // --- The commands. `proposer_ms` is the proposer's wall clock
  // (milliseconds), the floor of the timestamps the command takes.
  // `sent_ms` is when the transaction's coordinator sent the request (its
  // clock), for the participant's retention check.
  static std::string PrepareCommand(const ShardPrepare& prepare, uint64_t sent_ms,
                                    uint64_t proposer_ms);
  static std::string CommitCommand(const ShardCommit& commit, uint64_t sent_ms,
                                   uint64_t proposer_ms);
  static std::string ResolveCommand(const ShardResolve& resolve, uint64_t proposer_ms);
  // kCommit, kAbort or kForget (a push is the leader's abort; a heartbeat
  // is not replicated); the reply's op is the call's.
  static std::string RecordCommand(const RecordCall& call, uint64_t proposer_ms);
  // Moves the clock to `closed`: reads at or below it are then complete
  // on any replica that applied it (once no intent is in their way).
  static std::string CloseCommand(Timestamp closed, uint64_t proposer_ms);
  static std::string CompactCommand(Timestamp horizon, uint64_t proposer_ms);
  // What Apply returned, as the reply a shard server sends: PrepareReply,
  // CommitReply, ResolveReply, RecordReply, RawCompactReply (a close's
  // reply too), or PeerError.
  static PeerReply DecodeReply(std::string_view reply);

  // A snapshot of a shard that holds `store` (its versions, the clock at
  // its newest timestamp) and nothing under way: the state every replica
  // of a shard restored from a backup starts from (server/shard_restore.h).
  static std::string InitialSnapshot(const MvccStore& store);

  // --- ReplicatedState.
  Status Restore(std::string_view snapshot) override;
  std::string Apply(raft::Index index, std::string_view command) override;
  std::string Save() const override;

  // --- The replica, for reads and the leader's own decisions.
  const MvccStore& store() const;
  // The same, kept alive for a reader that outlives a restore (which
  // replaces the store: the reader goes on over the one it began with).
  std::shared_ptr<const MvccStore> shared_store() const;
  const Participant& participant() const;
  // Every command applied after now takes a timestamp above this.
  Timestamp closed() const;
  // The resolved timestamp: no commit at or below it can still appear here.
  Timestamp SafeTime() const;
  const TxnRecordTable& records() const;
  // Every commit applied here, in apply order, for watches. Kept across
  // restores (which empty it: ChangeLog::Reset).
  ChangeLog& change_log() { return change_log_; }
  const ChangeLog& change_log() const { return change_log_; }
  uint64_t commands_refused() const { return commands_refused_; }

 private:
  struct Core;
  std::shared_ptr<Core> NewCore();
  PeerReply ApplyDecoded(uint8_t kind, std::string_view body);
  // The reply to a command that does not decode (counted).
  PeerReply Refuse();
  // Forgets outcomes and aborted records older than their retention by
  // the replicated clock, once each second of it.
  void ForgetOld();

  const ReplicatedShardOptions options_;
  // The proposer's wall clock of the command being applied: the shard's
  // clock reads it as its own.
  uint64_t proposer_ms_ = 0;
  ChangeLog change_log_;           // before core_, whose participant appends to it
  std::shared_ptr<Core> core_;     // shared: readers may keep its store across a restore
  uint64_t commands_refused_ = 0;  // did not decode (not replicated state)
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_REPLICATED_SHARD_H_
