// ShardServer: one shard as the cluster's nodes see it.
//
// It serves the shard's side of every distributed transaction, over the
// shard's state and the changes made to it (ShardCore: the versions, the
// participant's intents, read locks and outcomes, the records, the
// change log), held on this node alone or replicated by the shard's Raft
// group:
//  - reads at a snapshot S (ShardRead): the shard is first closed at S
//    (its clock moved past S), so every later prepare here is above S;
//    then the read waits while an
//    intent at or below S lies in what it reads, since that transaction may
//    still commit at or below S. A waiting read pushes the intent's record
//    after `push_after`, and again while it waits: a committed record's
//    intents are applied here, an aborted one's dropped, and a record whose
//    coordinator stopped heartbeating is aborted by the push. After
//    `read_wait` the read gives up (kUnavailable).
//  - prepares, one-phase commits and resolutions;
//  - as a primary, the records of its transactions (TxnRecordTable): the
//    first prepare creates one, the coordinator commits or aborts it,
//    participants push it, and a COMMITTED record its coordinator left
//    behind is finished here (its participants resolved) before it is
//    forgotten.
// Independently of reads, intents older than the heartbeat timeout are
// pushed, so a dead coordinator leaves no key locked.
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_CLUSTER_SHARD_SERVER_H_
#define STRATA_CLUSTER_SHARD_SERVER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cluster/change_log.h"
#include "cluster/hybrid_clock.h"
#include "cluster/participant.h"
#include "cluster/peer_messages.h"
#include "cluster/peers.h"
#include "cluster/shard_core.h"
#include "cluster/timers.h"
#include "cluster/txn_record_table.h"
#include "strata/mvcc_store.h"

namespace strata::cluster {

struct ShardServerOptions {
  // A record not heartbeated for this long may be aborted by a push; intents
  // older than this are pushed even with no reader waiting.
  std::chrono::milliseconds heartbeat_timeout{1000};
  // A waiting read pushes the records in its way this often, and gives up
  // after read_wait.
  std::chrono::milliseconds push_after{20};
  std::chrono::milliseconds read_wait{5000};
  // How long outcomes are remembered (see ParticipantOptions); and, with
  // rpc_timeout, when a COMMITTED record is old enough to finish here.
  std::chrono::milliseconds outcome_retention{10000};
  std::chrono::milliseconds rpc_timeout{5000};
  // How conflict messages show a key (engine bytes); default: hex.
  std::function<std::string(std::string_view)> describe_key;
  // Recent changes kept for watches (cluster/change_log.h); a watcher
  // further behind reads the store.
  size_t change_log_bytes = size_t{16} << 20;
  // How often an idle core moves its time along (ShardCore::KeepTimeMoving).
  std::chrono::milliseconds close_interval{50};
};

struct ShardServerStats {
  IntentStats intents;
  Timestamp resolved_timestamp;
  uint64_t txn_records = 0, pending_txn_records = 0;
  uint64_t commits_finished_by_primary = 0;
  uint64_t reads_waited = 0, reads_waiting = 0, read_wait_timeouts = 0;
  uint64_t reads_at_closed = 0;  // ShardRead::at_closed
  uint64_t pushes = 0, pushed_aborts = 0;
};

class ShardServer final {
 public:
  using Clock = Timers::Clock;
  // Answers one request, now or later.
  using Respond = std::function<void(PeerReply)>;

  // `shard_count` bounds the shard ids a request may name. The shard held
  // on this node alone (LocalShardCore over the node's store and clock):
  // with `persist`, loads what the store kept from before a restart
  // (kInvalidArgument if it does not decode).
  static Result<std::unique_ptr<ShardServer>> Create(ShardId shard, uint32_t shard_count,
                                                     MvccStore* store, HybridLogicalClock* clock,
                                                     Peers* peers, Timers* timers, bool persist,
                                                     ShardServerOptions options);
  // Over any core (a replicated one, say).
  ShardServer(ShardId shard, uint32_t shard_count, std::unique_ptr<ShardCore> core, Peers* peers,
              Timers* timers, ShardServerOptions options);
  ~ShardServer();
  // Its replica moved away: the reads and watches waiting here are
  // answered kUnavailable (their callers ask another replica).
  void AnswerWaitingAsMoved();

  // Schedules the periodic work (waiting reads, pushes, abandoned commits,
  // forgetting old outcomes and records) on the timers.
  void Start();

  // `sender_clock` is the hybrid clock the request was stamped with.
  void Read(ShardRead read, Respond respond);
  void Prepare(ShardPrepare prepare, Timestamp sender_clock, Respond respond);
  void Commit(const ShardCommit& commit, Timestamp sender_clock, Respond respond);
  void Resolve(const ShardResolve& resolve, Respond respond);
  void Record(const RecordCall& call, Respond respond);
  // Collects versions below `horizon` through the core (ShardCore::Compact).
  void Compact(Timestamp horizon, Respond respond);
  // The raw API's scans and changes on this shard's store, as they are
  // (no waiting for intents), cut to fit one message.
  void Scan(const RawScan& scan, Respond respond);
  void Changes(const RawChanges& changes, Respond respond);
  // A watch's read: what this shard committed in a range since `after`, up
  // to its resolved timestamp, from its change log (or, if the log no
  // longer holds what the reader needs, from the store); with
  // with_previous, each change's previous version too, read from the store.
  // With park_ms and nothing to hand on, the read is held (a long poll):
  // answered once a change in its range is resolved (a change appended
  // here, or a resolution, wakes the held reads at the next turn of the
  // loop and again at the millisecond boundary past it, by when the
  // resolved timestamp has passed it unless a prepare holds it back), or
  // at its deadline with the resolved timestamp alone.
  void Watch(const ShardWatch& watch, Respond respond);

  ShardId shard() const { return shard_; }
  // The shard's versions as this node holds them: the node's own store, or
  // its replica of the shard's group (replaced whole when the replica
  // restores a snapshot: read it within a turn, keep no pointer).
  const MvccStore& store() const { return core_->store(); }
  // The same, kept alive across a restore for a reader over several turns.
  std::shared_ptr<const MvccStore> shared_store() const { return core_->shared_store(); }
  // Whether this node leads the shard (ShardCore::Leads).
  bool Leads() const { return core_->Leads(); }
  // Answers a redirect to the shard's leader if this node does not lead
  // it (and knows who does); whether it answered.
  bool RedirectedToLeader(const Respond& respond) const;
  // The resolved timestamp (Participant::SafeTime).
  Timestamp SafeTime() const { return core_->participant().SafeTime(); }
  // The same, moving with the wall clock while the shard is idle: no commit
  // at or below it can still be applied here (a one-phase commit takes a
  // timestamp above both the clock's last and the wall clock; a two-phase
  // one commits at or above a pending prepare).
  Timestamp WatchFrontier() const;
  ShardServerStats Stats() const;
  size_t parked_watches() const { return parked_watches_.size(); }

 private:
  struct ParkedWatch {
    ShardWatch watch;
    Respond respond;
    Clock::time_point deadline;
  };
  // Answers `watch` unless it has nothing to hand on and `even_if_empty`
  // is false; whether it answered.
  bool TryServeWatch(const ShardWatch& watch, const Respond& respond, bool even_if_empty);
  // Answers the held watch reads that have something now, or are due.
  void WakeParkedWatches();
  // Wakes them once the wall clock is in millisecond `ms` (re-armed if the
  // timer fires early), or at the next turn of the loop.
  void WakeWatchesAt(uint64_t ms);
  void WakeWatchesSoon();
  // Each change's previous version, as room in the message allows.
  void AddPrevious(ShardWatchReply* reply) const;
  struct WaitingRead {
    ShardRead read;
    Respond respond;
    Clock::time_point deadline, next_push;
  };

  // Serves `read` now, or once the intents in its way are resolved (it is
  // closed at its snapshot already).
  void ServeOrWait(ShardRead read, Respond respond);
  // Serves `read` if no intent is in its way; false if it must wait.
  // Closed at its snapshot already.
  bool TryServeRead(const ShardRead& read, const Respond& respond);
  void RetryWaitingReads();
  // Serves what can be served, gives up what waited too long, pushes the
  // records of the intents in the way of the rest.
  void CheckWaitingReads();
  Status CheckShardIds(const ShardPrepare& prepare) const;
  // Resolves `txn` here; then retries the reads it held, and tells `done`.
  void ResolveHere(TxnId txn, TxnStatus outcome, Timestamp commit_timestamp, ShardCore::Done done);
  // Asks `txn`'s record for its fate and resolves it here if it is final.
  void Push(TxnId txn, ShardId primary);
  void PushStaleIntents();
  // As a primary: resolves the participants of COMMITTED records the
  // coordinator left behind (it died, or its resolves were lost), then
  // forgets them.
  void FinishAbandonedCommits();
  void ForgetOldState();

  const ShardId shard_;
  const uint32_t shard_count_;
  const ShardServerOptions options_;
  std::unique_ptr<ShardCore> core_;
  Peers* peers_;
  Timers* timers_;

  // Lives as long as this server: its timers and its calls to other
  // shards end with it (a replica that moved away is destroyed).
  std::shared_ptr<int> lifetime_ = std::make_shared<int>(0);
  std::vector<std::unique_ptr<WaitingRead>> waiting_reads_;
  std::vector<ParkedWatch> parked_watches_;
  std::set<uint64_t> watch_wakes_;  // milliseconds a wake is armed for
  uint64_t last_append_ms_ = 0;     // of the newest change appended
  bool wake_soon_ = false;          // WakeWatchesSoon's timer is set
  std::set<TxnId> pushing_;         // pushes in flight
  std::set<TxnId> finishing_;       // FinishAbandonedCommits in flight
  uint64_t commits_finished_by_primary_ = 0;
  uint64_t reads_waited_ = 0, reads_at_closed_ = 0, pushes_ = 0, pushed_aborts_ = 0,
           read_wait_timeouts_ = 0;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_SHARD_SERVER_H_
