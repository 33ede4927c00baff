// Store: a durable strata store in a directory.
//
//   strata::StoreOpenOptions options;
//   options.durability.sync = strata::SyncMode::kBatch;
//   auto store = strata::Store::Open("/var/lib/strata", options);
//   if (!store.ok()) { /* store.status().message() says why */ }
//   auto txn = (*store)->db().Begin();
//   txn->Put("alice", "90");
//   txn->Commit();  // returns once the commit is durable
//
// Open recovers the directory: it loads the newest checkpoint, replays the
// write-ahead log after it, and comes back to exactly the state whose writes
// were acknowledged (a torn record at the log's tail, from a crash in the
// middle of a write, is dropped and reported; a corrupt record anywhere
// else, or a damaged checkpoint, makes Open fail naming the file and offset).
// From then on every raw write, commit and compaction is in the log before
// it is acknowledged, and a background thread writes checkpoints so that the
// log, and the next recovery, stay bounded.
//
// Layout of the directory: LOCK (held while open), wal-<first LSN>.log
// segments, checkpoint-<LSN>.ckpt; the formats are in storage/wal_format.h
// and storage/checkpoint_format.h.
//
// Thread safety: as MvccStore and TxnStore. Commits from many threads share
// one fsync (group commit).
#ifndef STRATA_STORE_H_
#define STRATA_STORE_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/txn_store.h"

namespace strata {

enum class SyncMode {
  kAlways,  // fsync as soon as a record is waiting (records arriving meanwhile share the next one)
  kBatch,   // wait up to batch_delay for more records, then one fsync for all of them
  kNone,    // hand records to the OS, never fsync: survives a process crash, not a power loss
};

struct DurabilityOptions {
  SyncMode sync = SyncMode::kBatch;
  // kBatch: the longest the first record of a group waits for others.
  std::chrono::microseconds batch_delay{1000};
  // Writes, commits and compactions return only once their record is
  // durable (in kNone: handed to the OS). The node turns this off and holds
  // each reply until durable_lsn() passes it instead, so that one thread can
  // keep many requests in flight.
  bool wait_for_durability = true;
  // A log segment file grows to about this size before the next one starts.
  uint64_t segment_bytes = uint64_t{64} << 20;
  // A background checkpoint starts once the log grew this much since the
  // last one (0: only when Checkpoint() is called).
  uint64_t checkpoint_after_log_bytes = uint64_t{256} << 20;
  // Called from the log's own thread each time durable_lsn() advances or the
  // log fails. Must be quick and must not call back into the store.
  std::function<void()> on_durable;
  // One line of progress for long work (recovery, checkpoints), no newline.
  std::function<void(std::string_view)> progress;
  // How often a long log replay says how far it is and how long is left.
  std::chrono::milliseconds replay_progress_every{2000};
};

struct StoreOpenOptions {
  StoreOptions engine;
  TxnStoreOptions txn;
  DurabilityOptions durability;
};

// What Open found and did.
struct RecoveryReport {
  std::optional<uint64_t> checkpoint_lsn;  // the checkpoint loaded, if any
  uint64_t checkpoint_keys = 0;
  uint64_t checkpoint_versions = 0;
  uint64_t segments_read = 0;
  uint64_t records_replayed = 0;  // log records applied after the checkpoint
  uint64_t log_bytes_read = 0;
  std::optional<std::string> torn_tail;  // what was dropped at the log's tail, if anything
  uint64_t last_lsn = 0;                 // the last record recovered
  std::chrono::milliseconds elapsed{0};
};

// How long the log's fsyncs took and how many records each group commit
// carried, as histograms: counts[i] is how many fell at or below bounds[i]
// (and above bounds[i-1]); the last count is everything above the last bound.
struct LogHistograms {
  // Seconds: 1 ms, 2 ms, ... 8.192 s (etcd's wal_fsync_duration buckets).
  static constexpr size_t kSyncBounds = 14;
  static double SyncBound(size_t i) { return 0.001 * static_cast<double>(uint64_t{1} << i); }
  std::array<uint64_t, kSyncBounds + 1> sync_counts{};
  double sync_seconds_sum = 0;
  // Records: 1, 2, 4, ... 4096.
  static constexpr size_t kGroupBounds = 13;
  static uint64_t GroupBound(size_t i) { return uint64_t{1} << i; }
  std::array<uint64_t, kGroupBounds + 1> group_counts{};
  uint64_t group_records_sum = 0;
};

struct DurabilityStats {
  uint64_t appended_lsn = 0;  // last record appended to the log
  uint64_t durable_lsn = 0;   // last record known durable
  uint64_t syncs = 0;         // fsyncs (group commits) done
  uint64_t records = 0;       // records appended since open
  uint64_t log_bytes = 0;     // bytes appended since open
  uint64_t checkpoints = 0;   // checkpoints written since open
  std::optional<uint64_t> last_checkpoint_lsn;
  std::optional<std::string> failure;  // set once the log failed; writes are refused since
  LogHistograms histograms;
};

class Store final {
 public:
  // Opens (creating it if needed) and recovers the store in `dir`.
  // kUnavailable if another process has it open or it cannot be read or
  // written; kInvalidArgument if its contents are damaged (the message names
  // the file and the offset).
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, StoreOpenOptions options = {});
  // Makes everything appended durable and stops the background threads.
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  MvccStore& mvcc();  // reads; raw writes through db() respect live snapshots
  TxnStore& db();

  uint64_t appended_lsn() const;
  uint64_t durable_lsn() const;
  // Ok, or why the log refuses every write from now on (a failed fsync or
  // write: what is on disk is intact, what was in flight is unknown).
  Status health() const;
  // Returns once every record appended so far is durable.
  Status Sync();
  // Tells the log nothing more is coming for now: in kBatch it writes the
  // pending group at once instead of waiting out batch_delay. For callers
  // that do not wait for durability themselves (the node, after it has
  // processed all the input there is).
  void Flush();
  // Writes a checkpoint now (readers and writers go on meanwhile) and
  // deletes the log segments it makes unnecessary.
  Status Checkpoint();

  const RecoveryReport& recovery() const;
  DurabilityStats GetDurabilityStats() const;
  const std::string& dir() const;

  class Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata

#endif  // STRATA_STORE_H_
