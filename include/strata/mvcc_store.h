// MvccStore: an in-memory multi-version key-value store.
//
// Every write (put or delete) adds a version of its key at a timestamp the
// caller chooses; a read at timestamp T returns the newest version whose
// timestamp is <= T. Versions may arrive out of timestamp order ("time
// travel"). Compaction drops the versions no read at or above the compaction
// horizon can see.
//
// Keys and values are byte strings. Keys are ordered by their bytes (memcmp),
// which is the order of Scan; the wire layer encodes typed keys so that this
// byte order is the order it promises.
//
// Thread safety: every method may be called from any number of threads at
// once. Readers (Get, MultiGetInto, Scan, History, Changes, GetStats) never
// take a lock and never wait for a writer; writers (Put, Delete, Compact*)
// serialize among themselves on one mutex and never wait for readers.
// Memory a writer unlinks is reclaimed only once no reader can still be
// looking at it (epoch-based reclamation, see engine/epoch.h).
#ifndef STRATA_MVCC_STORE_H_
#define STRATA_MVCC_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "strata/status.h"
#include "strata/timestamp.h"
#include "strata/write_log.h"

namespace strata {

struct StoreOptions {
  // Hard limits the engine enforces on its own; the wire layer sets tighter ones.
  size_t max_key_bytes = 64 * 1024;
  size_t max_value_bytes = 64 * 1024 * 1024;
  // Where every write and horizon change goes before it becomes visible
  // (not owned; must outlive the store). nullptr: a purely in-memory store.
  WriteLog* write_log = nullptr;
};

// The outcome of a put or delete.
struct WriteResult {
  uint64_t version = 0;  // the key's write count, this write included (1 = first write)
  Timestamp timestamp;
  bool retry = false;  // an identical write already existed; nothing new was stored
  // With a WriteLog: the record to wait for before acknowledging (for a
  // retry, the last one appended, as the original may still be in flight).
  uint64_t lsn = 0;
};

// A point read. found == false: no version at or below the read timestamp.
struct ReadResult {
  bool found = false;
  bool deleted = false;  // the version found is a delete (tombstone)
  uint64_t version = 0;
  Timestamp timestamp;
  std::string value;  // empty unless found && !deleted
  // Transactions only: the transaction's own uncommitted write (version and
  // timestamp are then 0).
  bool own_write = false;
};

// A half-open key range [start, end); end == nullopt means "to the last key".
struct KeyRange {
  std::string start;
  std::optional<std::string> end;

  static KeyRange All() { return {}; }
  // Every key that begins with `prefix`.
  static KeyRange WithPrefix(std::string_view prefix);
  bool Contains(std::string_view key) const;
};

struct ScanItem {
  std::string key;
  std::string value;
  uint64_t version = 0;
  Timestamp timestamp;
};

// A visible key as ScanVisit shows it: views valid only during the call.
struct ScanItemView {
  std::string_view key;
  std::string_view value;
  uint64_t version = 0;
  Timestamp timestamp;
};

struct ScanResult {
  std::vector<ScanItem> items;
  bool more = false;  // the limit cut the result short
};

struct HistoryEntry {
  uint64_t version = 0;
  Timestamp timestamp;
  bool deleted = false;
  std::string value;
};

struct HistoryResult {
  std::vector<HistoryEntry> versions;  // ascending timestamp
  bool more = false;
};

struct Change {
  std::string key;
  Timestamp timestamp;
  uint64_t version = 0;
  bool deleted = false;
  std::string value;
};

struct ChangesResult {
  std::vector<Change> changes;  // ordered by (timestamp, key)
  bool more = false;
};

// One write of a batch: a value, or a delete when `value` is nullopt.
struct BatchWrite {
  std::string key;
  std::optional<std::string> value;
};

struct CompactResult {
  Timestamp horizon;  // the horizon after the call
  uint64_t versions_removed = 0;
  uint64_t bytes_reclaimed = 0;  // key and value bytes no longer stored
  uint64_t lsn = 0;              // with a WriteLog: the horizon's record (0: none)
};

// One bounded slice of a compaction sweep (see CompactStep).
struct CompactStepResult {
  uint64_t keys_visited = 0;
  uint64_t versions_removed = 0;
  uint64_t bytes_reclaimed = 0;
  bool sweep_finished = false;  // the sweep reached the last key and starts over next time
};

// One stored version as a checkpoint sees it (views valid during the call).
struct ExportedVersion {
  uint64_t timestamp = 0;
  uint64_t version = 0;
  bool deleted = false;
  std::string_view value;
};

using ExportVisitor = std::function<void(std::string_view key, uint64_t write_count,
                                         std::span<const ExportedVersion> versions)>;

struct StoreStats {
  uint64_t keys = 0;                       // keys with at least one stored version
  uint64_t versions = 0;                   // stored versions, tombstones included
  uint64_t tombstones = 0;                 // stored delete versions
  uint64_t bytes = 0;                      // key bytes (once per key) + value bytes (per version)
  uint64_t memory_bytes = 0;               // estimate of everything allocated, overhead included
  std::optional<Timestamp> max_timestamp;  // highest timestamp ever written
  Timestamp compaction_horizon;
  uint64_t gc_runs = 0;  // completed compaction sweeps
  uint64_t gc_versions_removed = 0;
  uint64_t gc_bytes_reclaimed = 0;
};

class MvccStore final {
 public:
  explicit MvccStore(StoreOptions options = {});
  ~MvccStore();
  MvccStore(const MvccStore&) = delete;
  MvccStore& operator=(const MvccStore&) = delete;

  // With a WriteLog, every write below (and a rise of the horizon) is
  // appended to it before it becomes visible; if the log refuses, nothing
  // changes and its status is returned. The store never waits for the log:
  // results carry the record's LSN, and the caller waits (WriteLog::
  // AwaitDurable) after releasing its own locks, so writers share fsyncs.

  // Stores `value` as the version of `key` at `timestamp`. Writing the same
  // (key, timestamp, value) again is a retry: it returns the existing version
  // with retry = true. A different value, or a delete, already at that
  // (key, timestamp) is kPreconditionFailed. A timestamp at or below the
  // compaction horizon (once something was compacted) is kCompacted.
  Result<WriteResult> Put(std::string_view key, std::string_view value, Timestamp timestamp);

  // Records a delete (tombstone) of `key` at `timestamp`, with the same
  // retry and conflict rules as Put. A key with no visible version still gets
  // its tombstone.
  Result<WriteResult> Delete(std::string_view key, Timestamp timestamp);

  // Whether a write of `key` (and `*value`; nullptr for a delete) is within
  // the store's limits: kInvalidArgument naming the limit if not. Lets a
  // caller that buffers writes refuse them early.
  Status CheckWrite(std::string_view key, const std::string_view* value) const;

  // Applies every write at one timestamp, all or nothing: every write is
  // checked (limits, horizon, an existing version at that timestamp) before
  // any is applied, under one hold of the writer lock. Keys must be distinct.
  // `*lsn` (if given) gets the batch's log record.
  Status ApplyBatch(const std::vector<BatchWrite>& writes, Timestamp timestamp,
                    uint64_t* lsn = nullptr);

  // The newest version of `key` at or below `read_timestamp`.
  // kCompacted if read_timestamp is below the compaction horizon.
  Result<ReadResult> Get(std::string_view key, Timestamp read_timestamp = Timestamp::Max()) const;

  // Same as Get, but fills `*out` (reusing its buffer) instead of returning a
  // new ReadResult: the allocation-free path for hot loops.
  Status GetInto(std::string_view key, Timestamp read_timestamp, ReadResult* out) const;

  // Reads every key of `keys` at `read_timestamp`, as GetInto would, into
  // the `out` of the same position (out.size() must equal keys.size()).
  // The keys' lookups go step by step side by side (hash slots, entries,
  // version arrays, values fetched for a group of keys before any is
  // read), so their cache misses overlap: for keys not in cache, several
  // times the reads a second of one GetInto after another.
  Status MultiGetInto(std::span<const std::string_view> keys, Timestamp read_timestamp,
                      std::span<ReadResult> out) const;

  // Keys in `range` whose version at `read_timestamp` is a value (deleted
  // keys are left out), ascending, at most `limit` of them.
  Result<ScanResult> Scan(const KeyRange& range, Timestamp read_timestamp, size_t limit) const;

  // Scan without copies: calls `visit` for each key Scan would return, in
  // order, with views into the store that are valid only during the call
  // (copy what you keep). Returns the `more` flag. `visit` must not call
  // back into the store's writers.
  Result<bool> ScanVisit(const KeyRange& range, Timestamp read_timestamp, size_t limit,
                         const std::function<void(const ScanItemView&)>& visit) const;

  // The stored versions of `key` with timestamp in [from, to], ascending;
  // an omitted bound is open. kCompacted if `from` is given and below the
  // horizon (without `from`, the surviving versions are returned).
  Result<HistoryResult> History(std::string_view key, std::optional<Timestamp> from,
                                std::optional<Timestamp> to, size_t limit) const;

  // Every stored version of a key in `range` with timestamp > `since`,
  // ordered by (timestamp, key). kCompacted if `since` is below the horizon.
  // Cost: visits every key in `range` (there is no timestamp index yet).
  Result<ChangesResult> Changes(Timestamp since, const KeyRange& range, size_t limit) const;

  // The timestamp of the newest stored version of `key`, if it has any.
  std::optional<Timestamp> LatestTimestamp(std::string_view key) const;
  // The first key in `range` with a stored version newer than `since`.
  std::optional<std::string> FirstKeyWrittenAfter(const KeyRange& range, Timestamp since) const;

  // Raises the compaction horizon to `horizon` (it never moves down) and
  // sweeps every key, removing what no read at or above the horizon can see:
  // for each key, all versions older than its newest version at or below the
  // horizon, and that version too if it is a delete. A key left with no
  // version keeps its write count (a small entry of its own), so version
  // numbers never depend on when compaction ran. Holds the writer lock
  // only for bounded batches of keys, so writers interleave with a long sweep.
  CompactResult Compact(Timestamp horizon);

  // Incremental compaction for background collection: raises the horizon (no
  // sweep; if a WriteLog refuses the record, the horizon stays) ...
  void RaiseHorizon(Timestamp horizon);
  // ... then sweeps at most `max_keys` keys from where the last step stopped.
  CompactStepResult CompactStep(size_t max_keys);

  Timestamp compaction_horizon() const;
  // The highest timestamp written so far, if any.
  std::optional<Timestamp> max_timestamp() const;

  StoreStats GetStats() const;
  // How many keys store how many versions (deletes included): counts[i]
  // keys hold more than bounds[i-1] and at most bounds[i]; the last count,
  // more than every bound. Keys compacted down to nothing are not counted.
  // A reader: it walks every key, in batches, and never blocks a writer.
  std::vector<uint64_t> VersionsPerKey(const std::vector<uint64_t>& bounds) const;
  WriteLog* write_log() const;  // nullptr: in memory only

  // --- For checkpoints and recovery (storage/) --------------------------

  // Under one hold of the writer lock, so the batch is a consistent cut
  // ordered with the WriteLog: calls `at_cut` once, then `visit` for up to
  // `max_keys` keys from `*cursor` on, in key order, with every stored
  // version. Moves `*cursor` past them; returns true once the last key was
  // visited. Writers wait only for one batch at a time.
  bool ExportKeys(std::string* cursor, size_t max_keys, const std::function<void()>& at_cut,
                  const ExportVisitor& visit) const;
  // Recovery only: none of these log, check the horizon or wait. Stores the
  // version of `key` at `timestamp` unless one is there already, and sets
  // the key's write count to `write_count` either way.
  void RestoreVersion(std::string_view key, Timestamp timestamp, uint64_t version,
                      const std::string_view* value, uint64_t write_count);
  // A key whose every version was compacted away keeps its write count, so
  // that its next write continues the count; this restores such a key.
  void RestoreRetiredKey(std::string_view key, uint64_t write_count);
  void RestoreHorizon(Timestamp horizon);
  void RestoreMaxTimestamp(Timestamp timestamp);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata

#endif  // STRATA_MVCC_STORE_H_
