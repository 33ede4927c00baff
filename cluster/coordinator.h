// Coordinator: a node's side of the transactions its clients run across
// the cluster's shards.
//
// Snapshot: a transaction's start timestamp S comes from this node's
// hybrid clock, and every shard serves its reads at S (ShardServer makes
// them wait for intents at or below S, so none misses a commit); a write
// may read at its shards' closed times instead (StartAtShardClocks).
// Writes are buffered here until commit:
//  - one participant shard: ShardCommit checks and applies in one round;
//  - several: ShardPrepare on each (intents + read locks; the primary's
//    also creates the PENDING record), then RecordOp::kCommit at
//    C = max(prepare timestamps) on the primary, then the client's answer,
//    then ShardResolve everywhere, asynchronously. Any failure before the
//    record commits aborts (and the coordinator never commits it after
//    that); a transaction whose coordinator dies is aborted by the first
//    participant that pushes its stale record.
// Commit wait: an answer that shows a commit at C (its own, or a version
// it read) waits until every node's wall clock is past C + max_clock_offset
// (its own past C + 2 offsets), so a transaction that starts anywhere after
// the answer has S > C, and so does a ReadTimestamp() taken anywhere after
// it, which reads an offset in the past (strict serializability, for clocks
// within max_clock_offset of each other).
//
// Errors are Status values with these meanings for callers: kNotFound, and
// only it, says that no open transaction has the id (it committed, aborted,
// expired or was begun elsewhere); kIoError on a commit says the outcome
// is unknown (a shard or the record's primary did not answer), so the
// client must not be told either way; kConflict is a lost conflict.
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_CLUSTER_COORDINATOR_H_
#define STRATA_CLUSTER_COORDINATOR_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/hybrid_clock.h"
#include "cluster/peer_messages.h"
#include "cluster/peers.h"
#include "cluster/timers.h"
#include "cluster/txn_id.h"
#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/txn_store.h"

namespace strata::cluster {

// Keys and ranges a serializable transaction may read (it remembers them
// for validation at commit: bounded, so one client cannot grow a node's
// memory without end).
inline constexpr size_t kMaxTxnReads = 100000;

struct CoordinatorOptions {
  Isolation isolation = Isolation::kSerializable;  // when Begin names none
  std::chrono::milliseconds txn_timeout{10000};    // idle transactions expire
  size_t max_active_txns = 10000;
  // How often a commit in flight refreshes its record (a record not
  // refreshed for the shards' heartbeat timeout may be aborted by a push).
  std::chrono::milliseconds heartbeat_interval{100};
  // Commit wait assumes clocks differ by at most this.
  std::chrono::milliseconds max_clock_offset{0};
  // The wall clock in microseconds, which commit wait and read timestamps
  // are about (null: the system's; a test may drive its own).
  std::function<uint64_t()> wall_micros = nullptr;
};

struct CoordinatorStats {
  uint64_t active_txns = 0;
  uint64_t commits = 0, conflicts = 0, one_phase_commits = 0, two_phase_commits = 0;
  uint64_t expired_txns = 0, unknown_outcomes = 0;
  std::optional<Timestamp> oldest_snapshot;  // held by an open transaction or request
  std::optional<std::chrono::milliseconds> oldest_txn_age;
};

class Coordinator final {
 public:
  template <typename T>
  using Done = std::function<void(Result<T>)>;
  // Engine key -> value, or nullopt for a delete.
  using Writes = std::map<std::string, std::optional<std::string>>;

  // `node_index` numbers this node's transaction ids; `local_shard` is the
  // shard this node serves (preferred as the primary); `store` is its
  // store, for write limits and the compaction horizon.
  Coordinator(uint32_t node_index, ShardId local_shard, const MvccStore* store,
              HybridLogicalClock* clock, Peers* peers, Timers* timers, CoordinatorOptions options);
  ~Coordinator();

  ShardId local_shard() const { return local_shard_; }

  // --- interactive transactions ---
  struct Begun {
    uint64_t id = 0;
    Timestamp start;
  };
  // A read-only transaction may read the past (read_timestamp).
  Result<Begun> Begin(std::optional<Isolation> isolation, bool read_only,
                      std::optional<Timestamp> read_timestamp);
  // OK if `id` is open (and now used), else kNotFound: lets a front end
  // report a missing transaction before anything else wrong with a request.
  Status CheckOpen(uint64_t id);
  // The read-only transaction `id` reads from this node's own replicas
  // first (Peers::CallHereFirst): for a snapshot they have closed
  // (ShardCore::LastTimestamp), which they serve without a leader; a
  // replica behind it passes the read to the leader.
  Status ReadHereFirst(uint64_t id);
  // The serializable write transaction `id`, which has read nothing yet,
  // reads each key at the newest timestamp a replica of its shard has
  // closed (ShardRead::at_closed) instead of at its start: this node's own
  // replica if it has one that closed the key's last commit made here
  // (its own writes), else the shard's leader (`at_leaders`: the leader's
  // alone, after a lost conflict). Each shard checks the transaction's
  // reads and writes from the oldest such timestamp it served (its start
  // there; the transaction's start on a shard it writes unread). Its
  // commit validates every read up to the commit timestamp, so the reads
  // need not be one snapshot, and a replicated shard serves them without
  // the round of its log a read at a fresh timestamp takes (a close). It
  // reads keys only (Scan: kInvalidArgument).
  Status StartAtShardClocks(uint64_t id, bool at_leaders = false);
  void Get(uint64_t id, std::string key, Done<ReadResult> done);
  Status Write(uint64_t id, std::string key, std::optional<std::string> value);
  void Scan(uint64_t id, KeyRange range, size_t limit, Done<ScanResult> done);
  // Ends the transaction whatever happens; `done` gets the commit timestamp.
  void Commit(uint64_t id, Done<Timestamp> done);
  Status Abort(uint64_t id);
  // Forgets transactions idle for longer than the timeout (run periodically).
  void ExpireIdle();

  // --- building blocks for one-shot requests ---
  // A fresh timestamp from the clock (a snapshot nobody holds).
  Timestamp FreshTimestamp();
  // The newest snapshot a read may take without commit wait: the last
  // timestamp of the millisecond before (wall clock - max_clock_offset).
  // Every clock is already past it, so no commit at or below it can come
  // later and an answer at it needs no wait; and every commit acknowledged
  // before now is at or below it, since its commit wait ended only once
  // every clock was past C + max_clock_offset.
  Timestamp ReadTimestamp();
  // A fresh snapshot that holds the low-water mark until released.
  Timestamp HoldSnapshot();
  // Holds the low-water mark at `snapshot` (a reader of the past: a watch
  // feed's position) until released.
  void HoldSnapshotAt(Timestamp snapshot) { active_snapshots_.insert(snapshot.value()); }
  // Releases one hold of `snapshot` (which must be held).
  void ReleaseSnapshot(Timestamp snapshot);
  // Reads `keys` at `snapshot` (one ShardRead per shard); `done` gets the
  // results in the order of `keys`. `here_first`: see ReadHereFirst.
  void ReadKeys(std::vector<std::string> keys, Timestamp snapshot,
                Done<std::vector<ReadResult>> done, bool here_first = false);
  // Commits `writes` read at `start` (serializable: validating `read_keys`
  // and `read_ranges`) under a fresh transaction id; `done` gets the
  // commit timestamp, after commit wait. `blind`: nothing read, one shard
  // written (see PrepareRequest::blind).
  // `shard_starts`: a shard's own start, where it differs (see
  // StartAtShardClocks).
  void CommitWrites(Timestamp start, Isolation isolation, Writes writes,
                    std::set<std::string> read_keys, std::vector<KeyRange> read_ranges, bool blind,
                    Done<Timestamp> done, std::map<ShardId, Timestamp> shard_starts = {});
  // Runs `reply` once every clock is past `timestamp` (commit wait), as
  // the wall clock says when its timer fires (a timer counts from the start
  // of a loop turn, which may be before the wall clock was read).
  void AfterCommitWait(Timestamp timestamp, std::function<void()> reply);
  // The newest committed version among `reads` (own writes aside): an
  // answer showing it waits for it like the commit that wrote it.
  static Timestamp NewestSeen(const std::vector<ReadResult>& reads);

  // Below it a read-only transaction may not begin (Begin: kCompacted).
  Timestamp CompactionHorizon() const { return store_->compaction_horizon(); }
  // The oldest snapshot held here (open transactions, one-shot requests).
  std::optional<Timestamp> OldestSnapshot() const;
  const CoordinatorOptions& options() const { return options_; }
  CoordinatorStats Stats() const;

 private:
  struct Txn;
  struct CommitInFlight;
  Txn* Find(uint64_t id);
  // Get for a transaction reading at its shards' clocks.
  void GetAtShardClock(Txn& txn, std::string key, Done<ReadResult> done);
  // The keys of a commit made here, for FloorOf (once a transaction reads
  // at its shards' clocks).
  void RememberCommit(const CommitInFlight& commit, Timestamp commit_timestamp);
  // The newest commit of `key` made here lately (zero if none remembered).
  Timestamp FloorOf(const std::string& key) const;
  // Peers::CallHereFirst, or Peers::Call.
  void CallToRead(ShardId shard, PeerRequest request, bool here_first, PeerRpc::Callback done);
  TxnId NewTxnId(Timestamp* stamp);
  void CommitOnePhase(std::shared_ptr<CommitInFlight> commit);
  void CommitTwoPhase(std::shared_ptr<CommitInFlight> commit);
  void DecideTwoPhase(std::shared_ptr<CommitInFlight> commit);
  void AbortTwoPhase(std::shared_ptr<CommitInFlight> commit, Status error);
  void ResolveEverywhere(const CommitInFlight& commit, TxnStatus outcome,
                         Timestamp commit_timestamp);
  void Heartbeat(std::weak_ptr<CommitInFlight> commit);

  const uint32_t node_index_;
  const ShardId local_shard_;
  const MvccStore* store_;
  HybridLogicalClock* clock_;
  Peers* peers_;
  Timers* timers_;
  uint64_t WallMicros() const;  // options_.wall_micros or the system's
  const CoordinatorOptions options_;

  // Open transactions by id, and every snapshot in use here (open
  // transactions and one-shot requests) for the low-water mark.
  std::unordered_map<uint64_t, std::unique_ptr<Txn>> txns_;
  std::multiset<uint64_t> active_snapshots_;
  // Keys committed here lately (RememberCommit), by a hash of the key (a
  // key may be long; two keys that share a hash share the newer floor,
  // which sends a read to the leader at worst), the oldest forgotten first
  // beyond kRecentCommits: a write's read of a key served by this node's
  // replica must see the last commit of it made here, or lose a conflict
  // with it.
  static constexpr size_t kRecentCommits = 16384;
  bool remember_commits_ = false;
  std::unordered_map<uint64_t, Timestamp> recent_commits_;
  std::deque<std::pair<uint64_t, Timestamp>> recent_order_;
  uint64_t commits_ = 0, conflicts_ = 0, one_phase_commits_ = 0, two_phase_commits_ = 0;
  uint64_t expired_txns_ = 0, unknown_outcomes_ = 0;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_COORDINATOR_H_
