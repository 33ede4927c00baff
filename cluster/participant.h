// Participant: one shard's side of distributed transactions.
//
// Over the shard's MvccStore it keeps what the store itself has no notion
// of: write intents (provisional versions that are also write locks), the
// read locks of prepared serializable transactions, and the outcomes of
// recently finished transactions.
//
//  - Prepare places a transaction's intents after checking for conflicts;
//    its prepare timestamp comes from the shard's clock, and the commit
//    timestamp the coordinator picks is at least every participant's.
//  - Resolve makes the intents committed versions at the commit timestamp
//    (or drops them) and releases the locks.
//  - A one-phase commit (a transaction whose reads and writes all live on
//    this shard) does the same checks and applies at once: no intents, no
//    record, one round.
//  - A read at S must not miss a commit at or below S. Every commit on this
//    shard is at or above a prepare timestamp the shard's clock hands out,
//    and the read has already moved the clock past S, so only an intent
//    already here with prepare timestamp <= S can still commit at or below
//    S: BlockingIntents names them, and the caller waits (or resolves them
//    through their record) before reading the store. SafeTime() is the same
//    rule for the whole shard: the resolved timestamp.
//
// Conflicts (all kConflict, naming the key): a write to a key with a
// version newer than the transaction's start (first committer wins), or
// with another transaction's intent, or read-locked by another prepared
// transaction; in serializable mode also a read key or range with a version
// newer than the start or another transaction's intent in it. Nothing ever
// waits on the write path, so there are no deadlocks.
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_CLUSTER_PARTICIPANT_H_
#define STRATA_CLUSTER_PARTICIPANT_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cluster/change_log.h"
#include "cluster/hybrid_clock.h"
#include "cluster/txn_id.h"
#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/timestamp.h"
#include "strata/txn_store.h"

namespace strata::cluster {

// What one shard is asked to prepare (or commit in one phase).
struct PrepareRequest {
  TxnId txn;
  Timestamp start;  // the snapshot the transaction read
  Isolation isolation = Isolation::kSerializable;
  uint32_t primary = 0;            // the shard holding the transaction record
  std::vector<BatchWrite> writes;  // distinct engine keys; nullopt value = delete
  // Serializable only: what the transaction read on this shard.
  std::vector<std::string> read_keys;
  std::vector<KeyRange> read_ranges;
  // One-phase only: the writes read nothing (a lin-kv `write`), so they are
  // checked against the shard's own present instead of `start`: versions
  // committed since `start` are no conflict (any start up to the commit is
  // indistinguishable for a transaction that read nothing); intents, read
  // locks, and versions ahead of the shard's clock (raw writes) still are.
  bool blind = false;
};

struct ParticipantOptions {
  // How long a finished transaction's outcome is remembered; a prepare sent
  // longer ago than this (by its sender's clock) is refused, so a copy the
  // network delayed cannot prepare a transaction that already finished.
  std::chrono::milliseconds outcome_retention{10000};
  // How conflict messages show a key (engine bytes); default: hex.
  std::function<std::string(std::string_view)> describe_key;
  // Where every commit applied here is appended, for watches (null: none).
  ChangeLog* change_log = nullptr;
};

// Intents by age, for mvcc_stats: bucket i counts intents younger than
// kIntentAgeBoundsMs[i] (and not younger than the bound before); the last
// bucket counts the rest.
inline constexpr std::array<uint64_t, 4> kIntentAgeBoundsMs = {10, 100, 1000, 10000};
struct IntentStats {
  uint64_t intents = 0;
  uint64_t prepared_txns = 0;  // transactions with intents or read locks here
  std::array<uint64_t, kIntentAgeBoundsMs.size() + 1> age_histogram{};
  std::optional<Timestamp> oldest_prepare;  // of any intent
};

// An intent that has waited long enough that its record should be asked.
struct StaleIntent {
  TxnId txn;
  uint32_t primary = 0;
};

class Participant final {
 public:
  using Clock = std::chrono::steady_clock;

  // `store` holds the shard's data; `clock` hands out prepare and one-phase
  // commit timestamps. Neither is owned.
  Participant(MvccStore* store, HybridLogicalClock* clock, ParticipantOptions options = {});

  // Places the transaction's intents and read locks and returns its prepare
  // timestamp. A repeated prepare of a transaction already prepared here
  // returns the same timestamp (a retry). kConflict: a conflict (above), or
  // the transaction already finished here, or `sent_ms` (the sender's clock
  // when it sent the prepare, physical milliseconds) is older than the
  // outcome retention. kInvalidArgument: a write the store refuses (limits).
  // kCompacted: the start is below the compaction horizon.
  Result<Timestamp> Prepare(const PrepareRequest& request, uint64_t sent_ms, Clock::time_point now);

  // The same checks, then applies the writes at a fresh timestamp from the
  // clock and returns it: the whole transaction in one round. A retry of a
  // one-phase commit that already succeeded returns its timestamp.
  Result<Timestamp> CommitOnePhase(const PrepareRequest& request, uint64_t sent_ms);

  // Recovery: puts back a transaction prepared here before a restart (see
  // DurableClusterState), as Prepare left it, without any checks.
  void RestorePrepared(const PrepareRequest& request, Timestamp prepare_timestamp,
                       Clock::time_point now);

  // The transaction's fate is known: COMMITTED applies its intents here at
  // `commit_timestamp` (which must not be below its prepare timestamp),
  // ABORTED drops them; either releases its read locks and remembers the
  // outcome. Idempotent; resolving a transaction never prepared here only
  // records the outcome (a prepare arriving later is refused).
  // kIoError: the store's log failed while applying (see MvccStore).
  Status Resolve(TxnId txn, TxnStatus outcome, Timestamp commit_timestamp);

  // Transactions other than `reader` whose intents on `key` (or in `range`)
  // have prepare timestamp <= `read_timestamp`: a read at that timestamp
  // must wait for them (or resolve them) first. Empty: read the store.
  std::vector<TxnId> BlockingIntents(std::string_view key, Timestamp read_timestamp,
                                     std::optional<TxnId> reader = std::nullopt) const;
  std::vector<TxnId> BlockingIntents(const KeyRange& range, Timestamp read_timestamp,
                                     std::optional<TxnId> reader = std::nullopt) const;

  // The recently finished outcome of `txn` here, if remembered.
  std::optional<TxnStatus> Outcome(TxnId txn) const;
  // The shard holding `txn`'s record, if `txn` is prepared here.
  std::optional<uint32_t> PrimaryOf(TxnId txn) const;

  // The resolved timestamp: no commit at or below it can still appear on
  // this shard. min(clock's last timestamp, oldest pending prepare - 1).
  Timestamp SafeTime() const;

  // Prepared transactions whose intents or locks are older than `age`: their
  // coordinator may be gone, so the caller pushes their records.
  std::vector<StaleIntent> StaleTransactions(Clock::time_point now,
                                             std::chrono::milliseconds age) const;

  IntentStats GetIntentStats(Clock::time_point now) const;

  // Forgets outcomes of transactions whose stamp is older than the outcome
  // retention by `now_ms` (wall-clock milliseconds).
  void ForgetOldOutcomes(uint64_t now_ms);

  // --- For a replicated shard's snapshot (cluster/replicated_shard.h) -----

  // A finished transaction's outcome and, for one-phase commits, the
  // commit timestamp (a retried one-phase commit gets it back).
  struct Finished {
    TxnStatus outcome;
    Timestamp commit_timestamp;
  };
  // The prepared transactions as RestorePrepared takes them back: the
  // requests hold what a prepare leaves here (intents, read locks, the
  // primary), not the start timestamp, which only the prepare's checks
  // read; serializable if they hold reads.
  std::vector<std::pair<PrepareRequest, Timestamp>> PreparedTransactions() const;
  const std::map<TxnId, Finished>& finished() const { return finished_; }
  void RestoreFinished(TxnId txn, Finished finished) { finished_[txn] = finished; }

 private:
  struct Prepared {
    Timestamp prepare_timestamp;
    uint32_t primary = 0;
    Clock::time_point prepared_at;
    std::vector<BatchWrite> writes;  // the intents' keys and values
    std::vector<std::string> read_keys;
    std::vector<KeyRange> read_ranges;
  };
  // kConflict naming the first conflict of `request`, or OK.
  Status CheckConflicts(const PrepareRequest& request) const;
  Status CheckSentTime(uint64_t sent_ms) const;
  std::string KeyTextOf(std::string_view key) const;
  // Everything Prepare and CommitOnePhase check before taking a timestamp:
  // sent time, compaction horizon, the store's limits, conflicts.
  Status CheckRequest(const PrepareRequest& request, uint64_t sent_ms) const;
  // Records `request` as prepared at `prepare_timestamp`: its intents, read
  // locks and place in the safe time.
  void Register(const PrepareRequest& request, Timestamp prepare_timestamp, Clock::time_point now);
  void Release(TxnId txn, const Prepared& prepared);

  MvccStore* store_;
  HybridLogicalClock* clock_;
  const ParticipantOptions options_;
  std::map<TxnId, Prepared> prepared_;
  // Intents by engine key (ordered: range reads look up a key span).
  std::map<std::string, TxnId, std::less<>> intents_;
  // Read locks of prepared serializable transactions: point reads by key,
  // ranges per transaction (few, and checked against each write).
  std::multimap<std::string, TxnId, std::less<>> read_locks_;
  // Pending prepare timestamps of the transactions with intents here (only
  // those can still commit a version here), for SafeTime().
  std::multiset<uint64_t> prepare_timestamps_;
  std::map<TxnId, Finished> finished_;  // ordered by stamp: expiry is a prefix walk
  // The latest `now_ms` outcomes were forgotten at: CheckSentTime measures
  // age against it too, in case this shard's clock lags the caller's wall
  // clock.
  uint64_t forgot_at_ms_ = 0;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_PARTICIPANT_H_
