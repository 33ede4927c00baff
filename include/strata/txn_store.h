// TxnStore and Transaction: snapshot-isolated and serializable transactions
// over an MvccStore.
//
//   strata::MvccStore store;
//   strata::TxnStore db(&store);
//   auto txn = db.Begin({.isolation = strata::Isolation::kSerializable});
//   auto balance = txn->Get("alice");
//   txn->Put("alice", "90");
//   strata::Result<strata::Timestamp> committed = txn->Commit();  // or kConflict
//
// A transaction reads the snapshot at its start timestamp plus its own
// writes; its writes are buffered and become visible together at its commit
// timestamp. Conflicts are detected at commit (optimistic concurrency):
//  - snapshot isolation: first committer wins; commit fails if a key it
//    writes has a version committed after its start timestamp;
//  - serializable: additionally fails if anything it read (keys, and the
//    key ranges it scanned, so phantoms too) changed after its start.
// Read-only transactions never fail to commit. Readers never wait for
// writers: reads go straight to the lock-free store at the snapshot, and a
// begin waits at most for the apply of one commit landing below its
// snapshot (never for a validation).
//
// Active transactions hold back garbage collection at their start timestamp
// (the low-water mark); raw writes at or below a live snapshot are refused.
//
// Thread safety: TxnStore is thread-safe. A Transaction is used by one
// thread at a time (it may move between threads). The TxnStore must outlive
// its transactions.
#ifndef STRATA_TXN_STORE_H_
#define STRATA_TXN_STORE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/timestamp.h"
#include "strata/timestamp_oracle.h"

namespace strata {

enum class Isolation { kSnapshot, kSerializable };

struct TxnOptions {
  Isolation isolation = Isolation::kSerializable;
  bool read_only = false;
  // Read-only transactions only: read this past timestamp instead of a fresh
  // one. Must not be below the compaction horizon.
  std::optional<Timestamp> read_timestamp;
};

struct TxnStoreOptions {
  // Begin fails with kUnavailable past this many active transactions, so a
  // client that never finishes them cannot grow memory without bound.
  size_t max_active_txns = 10000;
  // Distinct keys one transaction may write, and reads (keys plus scanned
  // ranges) a serializable one may record for validation; past either,
  // Put/Delete/Get/Scan fail with kInvalidArgument. Bounds one client's
  // memory.
  size_t max_writes_per_txn = 100000;
  size_t max_reads_per_txn = 100000;
};

// What holds the garbage-collection low-water mark back.
struct TxnStats {
  uint64_t active_txns = 0;
  uint64_t commits = 0;
  uint64_t conflicts = 0;
  std::optional<Timestamp> min_active_snapshot;  // oldest active start timestamp
  std::optional<uint64_t> oldest_txn_id;         // the transaction holding it
  std::optional<std::chrono::milliseconds> oldest_txn_age;
};

class Transaction;

namespace txn_internal {
struct TxnState;
}

class TxnStore final {
 public:
  explicit TxnStore(MvccStore* store, TxnStoreOptions options = {});
  // Uses `oracle` (not owned; must outlive the TxnStore) instead of a
  // LocalOracle of its own.
  TxnStore(MvccStore* store, TimestampOracle* oracle, TxnStoreOptions options = {});
  ~TxnStore();
  TxnStore(const TxnStore&) = delete;
  TxnStore& operator=(const TxnStore&) = delete;

  // Starts a transaction. kInvalidArgument: read_timestamp without read_only;
  // kCompacted: read_timestamp below the horizon; kUnavailable: too many
  // active transactions, or no timestamp left (Timestamp::Max() was used).
  Result<Transaction> Begin(const TxnOptions& options = {});

  // Raw (non-transactional) writes, as MvccStore's, plus two rules: a write
  // at or below the start timestamp of an active transaction is
  // kPreconditionFailed (it would change a snapshot already being read), and
  // the oracle observes the timestamp.
  Result<WriteResult> RawPut(std::string_view key, std::string_view value, Timestamp timestamp);
  Result<WriteResult> RawDelete(std::string_view key, Timestamp timestamp);

  // With a WriteLog (Store), raw writes, commits and Compact return once
  // durable; a kIoError then means the change is visible but may not
  // survive a restart.

  // Compacts to min(requested, oldest active start timestamp).
  CompactResult Compact(Timestamp requested);
  // Raises the horizon (without sweeping) to min(wanted, oldest active start
  // timestamp), for background collection; returns the horizon after.
  Timestamp RaiseHorizon(Timestamp wanted);

  TxnStats GetStats() const;
  MvccStore& store() { return *store_; }
  TimestampOracle& oracle() { return *oracle_; }

 private:
  friend class Transaction;
  const TxnStoreOptions& options() const { return options_; }
  Result<Timestamp> Commit(txn_internal::TxnState* txn);
  void Finish(txn_internal::TxnState* txn);  // unregisters
  Result<WriteResult> RawWrite(std::string_view key, const std::string_view* value,
                               Timestamp timestamp);
  Result<WriteResult> RawWriteLocked(std::string_view key, const std::string_view* value,
                                     Timestamp timestamp);
  // With a WriteLog: returns once record `lsn` is durable (see WriteLog).
  Status AwaitDurable(uint64_t lsn) const;
  // min(wanted, oldest active start), raised into the store and observed by
  // the oracle. REQUIRES: registry_mutex_ held.
  Timestamp RaiseHorizonLocked(Timestamp wanted);
  // Returns once no write at or below `snapshot` is being applied.
  void WaitForApplyAtOrBelow(Timestamp snapshot) const;
  void Unregister(txn_internal::TxnState* txn);  // REQUIRES: registry_mutex_ held

  MvccStore* store_;
  std::unique_ptr<TimestampOracle> own_oracle_;
  TimestampOracle* oracle_;
  const TxnStoreOptions options_;

  // Serializes writes into the store: validation + apply of a commit, and
  // raw writes. Begins, reads and read-only commits never take it.
  std::mutex commit_mutex_;
  // What is being applied under commit_mutex_ right now: kNotApplying, the
  // timestamp being written, or kTimestampPending while a commit takes its
  // timestamp. A begin waits while it is at or below the new snapshot.
  static constexpr uint64_t kNotApplying = 0;
  static constexpr uint64_t kTimestampPending = UINT64_MAX;
  std::atomic<uint64_t> applying_{kNotApplying};

  // Guards the registry of live snapshots; held only for short steps (and
  // while a begin takes its timestamp, so the horizon and raw-write checks
  // see every snapshot). Ordered after commit_mutex_.
  mutable std::mutex registry_mutex_;
  std::map<uint64_t, txn_internal::TxnState*> active_;  // by id; REQUIRES: registry_mutex_
  // Ids of past-snapshot transactions begun once no timestamp is left.
  static constexpr uint64_t kIdsAfterTimestamps = uint64_t{1} << 63;
  uint64_t exhausted_ids_ = 0;             // REQUIRES: registry_mutex_
  std::multiset<uint64_t> active_starts_;  // start timestamps; REQUIRES: registry_mutex_
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> conflicts_{0};
};

class Transaction final {
 public:
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&& other) noexcept;
  ~Transaction();  // aborts the transaction if it is still active

  // Unique, never reused (a timestamp from the oracle: the start timestamp
  // unless read_timestamp chose a past snapshot).
  uint64_t id() const;
  Timestamp start_timestamp() const;
  Isolation isolation() const;
  bool read_only() const;
  bool active() const;

  // The key at the snapshot, or the transaction's own latest write to it
  // (then `own_write` is true and version/timestamp are 0).
  Result<ReadResult> Get(std::string_view key);
  // kInvalidArgument in a read-only transaction.
  Status Put(std::string_view key, std::string_view value);
  Status Delete(std::string_view key);
  // Like MvccStore::Scan at the snapshot, merged with the transaction's own
  // writes.
  Result<ScanResult> Scan(const KeyRange& range, size_t limit);

  // Makes the writes visible at a fresh commit timestamp and ends the
  // transaction. kConflict (naming the key) ends it too, as an abort.
  // A transaction without writes commits at its start timestamp.
  // kUnavailable (ending the transaction) if no timestamp is left.
  Result<Timestamp> Commit();
  void Abort();

  // After a kConflict: the key that conflicted.
  const std::optional<std::string>& conflict_key() const;

 private:
  friend class TxnStore;
  Transaction(TxnStore* owner, std::unique_ptr<txn_internal::TxnState> state);
  Status CheckActive() const;
  Status CheckWriteRoom(std::string_view key) const;  // max_writes_per_txn
  Status CheckReadRoom() const;                       // max_reads_per_txn

  TxnStore* owner_;
  std::unique_ptr<txn_internal::TxnState> state_;
};

}  // namespace strata

#endif  // STRATA_TXN_STORE_H_
