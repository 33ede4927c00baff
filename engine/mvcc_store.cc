// MvccStore: ties the key indexes, the version chains and the epoch domain
// together, and owns the write path, the read paths and compaction.
#include "strata/mvcc_store.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <queue>
#include <string>
#include <utility>

#include "base/mutex.h"
#include "engine/epoch.h"
#include "engine/key_entry.h"
#include "engine/key_hash_index.h"
#include "engine/key_order_index.h"
#include "engine/version_chain.h"

namespace strata {

using engine::EpochDomain;
using engine::KeyEntry;
using engine::KeyHashIndex;
using engine::KeyOrderIndex;
using engine::ValueBlob;
using engine::VersionArray;
using engine::VersionRecord;

KeyRange KeyRange::WithPrefix(std::string_view prefix) {
  KeyRange range{std::string(prefix), std::nullopt};
  // The first key after every key with this prefix: drop trailing 0xff bytes
  // and increment the last remaining byte. All-0xff prefixes have no bound.
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) {
    end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
    range.end = std::move(end);
  }
  return range;
}

bool KeyRange::Contains(std::string_view key) const { return key >= start && (!end || key < *end); }

namespace {

// Keys the full Compact() sweeps per hold of the writer lock.
constexpr size_t kCompactBatchKeys = 1024;

std::string HorizonText(uint64_t horizon) {
  return "compaction horizon " + std::to_string(horizon);
}

// The version of `entry` a read at `read_ts` sees: the newest at or below
// it, a delete included (nullptr: none). REQUIRES: a ReadGuard.
const VersionRecord* VisibleVersion(const KeyEntry* entry, uint64_t read_ts) {
  const VersionArray* array = entry->versions.load(std::memory_order_acquire);
  const VersionRecord* records = array->records();
  const int64_t at = VersionArray::FindAtOrBelow(records, array->published_size(), read_ts);
  return at < 0 ? nullptr : &records[at];
}

// A point read's answer: the version it saw (nullptr: none). REQUIRES: a
// ReadGuard (the value is copied out of the store).
void FillRead(const VersionRecord* r, ReadResult* out) {
  out->found = r != nullptr;
  out->deleted = r != nullptr && r->deleted();
  out->own_write = false;
  out->version = r != nullptr ? r->version : 0;
  out->timestamp = r != nullptr ? Timestamp(r->timestamp) : Timestamp();
  if (r != nullptr && !r->deleted()) {
    out->value.assign(r->value());
  } else {
    out->value.clear();
  }
}

}  // namespace

class MvccStore::Impl {
 public:
  explicit Impl(StoreOptions options)
      : options_(options), log_(options.write_log), hash_index_(&epochs_), order_index_(&epochs_) {}

  ~Impl() {
    // No reader may be active any more: free everything directly, once
    // gathered (the cursor reads the entries' keys as it moves on).
    std::vector<KeyEntry*> entries;
    for (KeyOrderIndex::Cursor c(order_index_, {}); c.entry() != nullptr; c.Next()) {
      entries.push_back(c.entry());
    }
    for (KeyEntry* entry : entries) FreeEntryNow(entry);
  }

  Result<WriteResult> Write(std::string_view key, const std::string_view* value, Timestamp ts);
  Status ApplyBatch(const std::vector<BatchWrite>& writes, Timestamp timestamp, uint64_t* lsn);
  Status CheckLimits(std::string_view key, const std::string_view* value, Timestamp ts) const;
  std::optional<Timestamp> LatestTimestamp(std::string_view key) const;
  std::optional<std::string> FirstKeyWrittenAfter(const KeyRange& range, Timestamp since) const;
  Status GetInto(std::string_view key, Timestamp read_ts, ReadResult* out) const;
  Status MultiGetInto(std::span<const std::string_view> keys, Timestamp read_ts,
                      std::span<ReadResult> out) const;
  Result<ScanResult> Scan(const KeyRange& range, Timestamp read_ts, size_t limit) const;
  Result<bool> ScanVisit(const KeyRange& range, Timestamp read_ts, size_t limit,
                         const std::function<void(const ScanItemView&)>& visit) const;
  Result<HistoryResult> History(std::string_view key, std::optional<Timestamp> from,
                                std::optional<Timestamp> to, size_t limit) const;
  Result<ChangesResult> Changes(Timestamp since, const KeyRange& range, size_t limit) const;
  // Returns the LSN of the horizon record (0: nothing logged).
  uint64_t RaiseHorizon(Timestamp horizon);
  WriteLog* log() const { return log_; }
  bool ExportKeys(std::string* cursor, size_t max_keys, const std::function<void()>& at_cut,
                  const ExportVisitor& visit);
  void RestoreVersion(std::string_view key, uint64_t ts, uint64_t version,
                      const std::string_view* value, uint64_t write_count);
  void RestoreHorizon(uint64_t horizon);
  void RestoreMaxTimestamp(uint64_t ts);
  void RestoreRetiredKey(std::string_view key, uint64_t write_count);
  CompactStepResult SweepFrom(std::string* cursor, size_t max_keys);
  CompactStepResult CompactStep(size_t max_keys) {
    return SweepFrom(&background_cursor_, max_keys);
  }

  uint64_t horizon() const { return horizon_.load(std::memory_order_acquire); }
  std::optional<Timestamp> max_timestamp() const {
    uint64_t v = max_ts_plus_one_.load(std::memory_order_acquire);
    if (v == 0) return std::nullopt;
    return Timestamp(v - 1);
  }
  StoreStats Stats() const;
  std::vector<uint64_t> VersionsPerKey(const std::vector<uint64_t>& bounds) const;

 private:
  // Stats counters: written by the writer, read by anyone (relaxed: each is
  // exact on its own; a stats reply is not a consistent cut across them).
  struct Counters {
    std::atomic<uint64_t> keys{0}, versions{0}, tombstones{0}, bytes{0}, memory{0};
    std::atomic<uint64_t> gc_runs{0}, gc_versions_removed{0}, gc_bytes_reclaimed{0};
  };
  static void Add(std::atomic<uint64_t>& c, uint64_t n) {
    c.fetch_add(n, std::memory_order_relaxed);
  }
  static void Sub(std::atomic<uint64_t>& c, uint64_t n) {
    c.fetch_sub(n, std::memory_order_relaxed);
  }

  // A read below the horizon must fail even if compaction raced with it:
  // compaction raises the horizon before touching any chain, so checking
  // again after reading catches every read that may have seen its effects.
  Status CheckReadable(uint64_t read_ts) const {
    uint64_t h = horizon();
    if (read_ts < h) {
      return Status::Compacted("read timestamp " + std::to_string(read_ts) + " is below the " +
                               HorizonText(h));
    }
    return Status::Ok();
  }

  Status CheckAboveHorizon(uint64_t ts) const;
  // The version of `entry` at exactly `ts`, if any (the writer's view).
  static const VersionRecord* FindExact(const KeyEntry* entry, uint64_t ts);
  static Status ConflictAt(const VersionRecord& existing, uint64_t ts);
  // Stores a version; `entry` is the key's entry or nullptr for a new key.
  // Every check has passed.
  WriteResult ApplyLocked(std::string_view key, uint64_t hash, KeyEntry* entry,
                          const std::string_view* value, uint64_t ts) STRATA_REQUIRES(write_mutex_);
  void InsertVersion(KeyEntry* entry, const VersionRecord& record);
  // Removes what the horizon makes invisible from one key; returns whether
  // its last version went (the key is retired).
  bool SweepKey(KeyEntry* entry, uint64_t horizon, CompactStepResult* result)
      STRATA_REQUIRES(write_mutex_);
  void RetireValue(const VersionRecord& record);
  void FreeEntryNow(KeyEntry* entry);
  static uint64_t ValueBytes(const VersionRecord& r) { return r.deleted() ? 0 : r.value().size(); }

  const StoreOptions options_;
  WriteLog* const log_;  // nullptr: in memory only
  // Declared before the indexes: retired memory outlives every structure
  // that may still point at it.
  mutable EpochDomain epochs_;
  KeyHashIndex hash_index_;
  KeyOrderIndex order_index_;

  Mutex write_mutex_;  // serializes writers; readers never take it
  std::atomic<uint64_t> horizon_{0};
  std::atomic<uint64_t> max_ts_plus_one_{0};  // 0: nothing written yet
  std::string background_cursor_
      STRATA_GUARDED_BY(write_mutex_);  // the background sweep's next key
  Counters counters_;
};

Status MvccStore::Impl::CheckLimits(std::string_view key, const std::string_view* value,
                                    Timestamp timestamp) const {
  if (key.size() > options_.max_key_bytes) {
    return Status::InvalidArgument("key is " + std::to_string(key.size()) +
                                   " bytes; the limit is " +
                                   std::to_string(options_.max_key_bytes));
  }
  if (value != nullptr && value->size() > options_.max_value_bytes) {
    return Status::InvalidArgument("value is " + std::to_string(value->size()) +
                                   " bytes; the limit is " +
                                   std::to_string(options_.max_value_bytes));
  }
  if (timestamp.value() > Timestamp::kMaxValue) {
    return Status::InvalidArgument("timestamp " + std::to_string(timestamp.value()) +
                                   " is above 2^63-1");
  }
  return Status::Ok();
}

Status MvccStore::Impl::CheckAboveHorizon(uint64_t ts) const {
  const uint64_t h = horizon();
  if (h > 0 && ts <= h) {
    return Status::Compacted("write timestamp " + std::to_string(ts) + " is at or below the " +
                             HorizonText(h));
  }
  return Status::Ok();
}

const VersionRecord* MvccStore::Impl::FindExact(const KeyEntry* entry, uint64_t ts) {
  if (entry == nullptr) return nullptr;
  const VersionArray* array = entry->versions.load(std::memory_order_relaxed);
  const VersionRecord* records = array->records();
  uint32_t size = array->published_size();
  uint32_t at = VersionArray::LowerBound(records, size, ts);
  return (at < size && records[at].timestamp == ts) ? &records[at] : nullptr;
}

Status MvccStore::Impl::ConflictAt(const VersionRecord& existing, uint64_t ts) {
  return Status::PreconditionFailed("key already has a different " +
                                    std::string(existing.deleted() ? "delete" : "value") +
                                    " at timestamp " + std::to_string(ts));
}

Result<WriteResult> MvccStore::Impl::Write(std::string_view key, const std::string_view* value,
                                           Timestamp timestamp) {
  if (Status s = CheckLimits(key, value, timestamp); !s.ok()) return s;
  const uint64_t ts = timestamp.value();
  const uint64_t hash = KeyHashIndex::Hash(key);

  WriteResult result;
  uint64_t lsn = 0;
  {
    MutexLock lock(write_mutex_);
    if (Status s = CheckAboveHorizon(ts); !s.ok()) return s;
    KeyEntry* entry = hash_index_.Find(key, hash);
    if (const VersionRecord* existing = FindExact(entry, ts)) {
      bool same = (value == nullptr) ? existing->deleted()
                                     : (!existing->deleted() && existing->value() == *value);
      if (!same) return ConflictAt(*existing, ts);
      // The original may still be on its way to disk: a retry is
      // acknowledged no earlier than it.
      if (log_ != nullptr) lsn = log_->last_appended_lsn();
      result = WriteResult{existing->version, timestamp, /*retry=*/true};
    } else {
      if (log_ != nullptr) {
        LoggedWrite logged{key, std::nullopt, (entry == nullptr ? 0 : entry->write_count) + 1};
        if (value != nullptr) logged.value = *value;
        Result<uint64_t> appended = log_->AppendWrites(timestamp, {&logged, 1});
        if (!appended.ok()) return appended.status();
        lsn = *appended;
      }
      result = ApplyLocked(key, hash, entry, value, ts);
    }
  }
  result.lsn = lsn;
  return result;
}

Status MvccStore::Impl::ApplyBatch(const std::vector<BatchWrite>& writes, Timestamp timestamp,
                                   uint64_t* lsn_out) {
  const uint64_t ts = timestamp.value();
  std::vector<uint64_t> hashes;
  hashes.reserve(writes.size());
  for (const BatchWrite& w : writes) {
    std::optional<std::string_view> value;
    if (w.value) value = *w.value;
    if (Status s = CheckLimits(w.key, value ? &*value : nullptr, timestamp); !s.ok()) return s;
    hashes.push_back(KeyHashIndex::Hash(w.key));
  }
  uint64_t lsn = 0;
  {
    MutexLock lock(write_mutex_);
    if (Status s = CheckAboveHorizon(ts); !s.ok()) return s;
    // All checks before any write: the batch lands whole or not at all.
    std::vector<KeyEntry*> entries(writes.size());
    for (size_t i = 0; i < writes.size(); ++i) {
      entries[i] = hash_index_.Find(writes[i].key, hashes[i]);
      if (const VersionRecord* existing = FindExact(entries[i], ts)) {
        return ConflictAt(*existing, ts);
      }
    }
    if (log_ != nullptr) {
      // One record for the whole batch: replay, like readers, sees all of
      // it or none of it.
      std::vector<LoggedWrite> logged(writes.size());
      for (size_t i = 0; i < writes.size(); ++i) {
        logged[i].key = writes[i].key;
        if (writes[i].value) logged[i].value = *writes[i].value;
        logged[i].version = (entries[i] == nullptr ? 0 : entries[i]->write_count) + 1;
      }
      Result<uint64_t> appended = log_->AppendWrites(timestamp, logged);
      if (!appended.ok()) return appended.status();
      lsn = *appended;
    }
    for (size_t i = 0; i < writes.size(); ++i) {
      std::optional<std::string_view> value;
      if (writes[i].value) value = *writes[i].value;
      ApplyLocked(writes[i].key, hashes[i], entries[i], value ? &*value : nullptr, ts);
    }
  }
  if (lsn_out != nullptr) *lsn_out = lsn;
  return Status::Ok();
}

WriteResult MvccStore::Impl::ApplyLocked(std::string_view key, uint64_t hash, KeyEntry* entry,
                                         const std::string_view* value, uint64_t ts) {
  const bool new_key = (entry == nullptr);
  if (new_key) {
    entry = KeyEntry::Create(key, hash, order_index_.RandomHeight());
    Add(counters_.memory, entry->allocation_size());
  }
  // A retired key (every version compacted away, see SweepKey) comes back.
  const bool revived =
      !new_key && entry->versions.load(std::memory_order_relaxed)->published_size() == 0;
  const VersionRecord record = VersionRecord::Make(ts, ++entry->write_count, value);
  InsertVersion(entry, record);
  if (new_key) {
    // Publish the entry only once it has a version, so readers never meet
    // a new entry without one.
    hash_index_.Insert(entry);
    order_index_.Insert(entry);
  }
  if (new_key || revived) {
    Add(counters_.keys, 1);
    Add(counters_.bytes, key.size());
  }

  Add(counters_.versions, 1);
  if (record.deleted()) {
    Add(counters_.tombstones, 1);
  } else {
    Add(counters_.bytes, value->size());
    if (record.blob() != nullptr) Add(counters_.memory, ValueBlob::AllocationSize(value->size()));
  }
  if (ts + 1 > max_ts_plus_one_.load(std::memory_order_relaxed)) {
    max_ts_plus_one_.store(ts + 1, std::memory_order_release);
  }
  return WriteResult{record.version, Timestamp(ts), /*retry=*/false};
}

std::optional<Timestamp> MvccStore::Impl::LatestTimestamp(std::string_view key) const {
  EpochDomain::ReadGuard guard(epochs_);
  const KeyEntry* entry = hash_index_.Find(key, KeyHashIndex::Hash(key));
  if (entry == nullptr) return std::nullopt;
  const VersionArray* array = entry->versions.load(std::memory_order_acquire);
  uint32_t size = array->published_size();
  if (size == 0) return std::nullopt;
  return Timestamp(array->records()[size - 1].timestamp);
}

std::optional<std::string> MvccStore::Impl::FirstKeyWrittenAfter(const KeyRange& range,
                                                                 Timestamp since) const {
  EpochDomain::ReadGuard guard(epochs_);
  for (KeyOrderIndex::Cursor c(order_index_, range.start); c.entry() != nullptr; c.Next()) {
    const KeyEntry* entry = c.entry();
    if (range.end && entry->key() >= *range.end) break;
    const VersionArray* array = entry->versions.load(std::memory_order_acquire);
    uint32_t size = array->published_size();
    if (size > 0 && array->records()[size - 1].timestamp > since.value()) {
      return std::string(entry->key());
    }
  }
  return std::nullopt;
}

void MvccStore::Impl::InsertVersion(KeyEntry* entry, const VersionRecord& record) {
  VersionArray* array = entry->versions.load(std::memory_order_relaxed);
  uint32_t size = array == nullptr ? 0 : array->published_size();
  const bool newest = size == 0 || array->records()[size - 1].timestamp < record.timestamp;
  if (array != nullptr && newest && size < array->capacity()) {
    // The common case: append in place; readers see it once size is published.
    array->mutable_records()[size] = record;
    array->Publish(size + 1);
    return;
  }
  // Copy into a new array (grown if full) with the record in timestamp order.
  uint32_t capacity = array == nullptr ? 1 : array->capacity();
  if (size + 1 > capacity) capacity = std::max<uint32_t>(2 * capacity, size + 1);
  VersionArray* grown = VersionArray::Create(capacity);
  VersionRecord* out = grown->mutable_records();
  uint32_t at = newest ? size : VersionArray::LowerBound(array->records(), size, record.timestamp);
  if (at > 0) std::memcpy(out, array->records(), at * sizeof(VersionRecord));
  out[at] = record;
  if (size > at)
    std::memcpy(out + at + 1, array->records() + at, (size - at) * sizeof(VersionRecord));
  grown->Publish(size + 1);
  entry->versions.store(grown, std::memory_order_release);
  Add(counters_.memory, VersionArray::AllocationSize(capacity));
  if (array != nullptr) {
    Sub(counters_.memory, VersionArray::AllocationSize(array->capacity()));
    epochs_.Retire(array, &VersionArray::Destroy);
  }
}

Status MvccStore::Impl::GetInto(std::string_view key, Timestamp read_timestamp,
                                ReadResult* out) const {
  const uint64_t read_ts = read_timestamp.value();
  if (Status s = CheckReadable(read_ts); !s.ok()) return s;
  const uint64_t hash = KeyHashIndex::Hash(key);
  {
    EpochDomain::ReadGuard guard(epochs_);
    const KeyEntry* entry = hash_index_.Find(key, hash);
    FillRead(entry != nullptr ? VisibleVersion(entry, read_ts) : nullptr, out);
  }
  return CheckReadable(read_ts);
}

Status MvccStore::Impl::MultiGetInto(std::span<const std::string_view> keys,
                                     Timestamp read_timestamp, std::span<ReadResult> out) const {
  if (keys.size() != out.size()) {
    return Status::InvalidArgument("MultiGetInto: as many results as keys are needed");
  }
  const uint64_t read_ts = read_timestamp.value();
  if (Status s = CheckReadable(read_ts); !s.ok()) return s;
  // A group's loads are all started before any is waited for. 16 keys
  // keep a core's outstanding misses busy (about ten at once) without
  // spilling what was fetched before it is used.
  constexpr size_t kGroup = 16;
  uint64_t hashes[kGroup];
  const KeyEntry* entries[kGroup];
  const VersionRecord* records[kGroup];
  {
    EpochDomain::ReadGuard guard(epochs_);
    for (size_t base = 0; base < keys.size(); base += kGroup) {
      const size_t n = std::min(kGroup, keys.size() - base);
      for (size_t i = 0; i < n; ++i) {
        hashes[i] = KeyHashIndex::Hash(keys[base + i]);
        hash_index_.PrefetchSlot(hashes[i]);
      }
      for (size_t i = 0; i < n; ++i) hash_index_.PrefetchEntry(hashes[i]);
      for (size_t i = 0; i < n; ++i) {
        entries[i] = hash_index_.Find(keys[base + i], hashes[i]);
        if (entries[i] != nullptr) {
          __builtin_prefetch(entries[i]->versions.load(std::memory_order_acquire));
        }
      }
      for (size_t i = 0; i < n; ++i) {
        records[i] = entries[i] != nullptr ? VisibleVersion(entries[i], read_ts) : nullptr;
        if (records[i] != nullptr && !records[i]->deleted()) {
          __builtin_prefetch(records[i]->value_address());
        }
      }
      for (size_t i = 0; i < n; ++i) FillRead(records[i], &out[base + i]);
    }
  }
  return CheckReadable(read_ts);
}

Result<bool> MvccStore::Impl::ScanVisit(
    const KeyRange& range, Timestamp read_timestamp, size_t limit,
    const std::function<void(const ScanItemView&)>& visit) const {
  const uint64_t read_ts = read_timestamp.value();
  if (Status s = CheckReadable(read_ts); !s.ok()) return s;
  // Keys are visited in batches. The cursor has the entries on their way
  // ahead of the walk; the version arrays and values of a whole batch are
  // prefetched before any is read, so their misses overlap too instead of
  // adding up (a scan of cold keys runs several times faster).
  constexpr size_t kBatch = 16;
  struct Candidate {
    const KeyEntry* entry;
    const VersionRecord* record;  // the visible version, or nullptr
  };
  Candidate batch[kBatch];
  size_t visited = 0;
  bool more = false;
  {
    EpochDomain::ReadGuard guard(epochs_);
    KeyOrderIndex::Cursor cursor(order_index_, range.start);
    bool in_range = true;
    while (in_range && cursor.entry() != nullptr && !more) {
      size_t n = 0;
      for (; n < kBatch && cursor.entry() != nullptr; cursor.Next()) {
        const KeyEntry* entry = cursor.entry();
        if (range.end && entry->key() >= *range.end) {
          in_range = false;
          break;
        }
        const VersionArray* array = entry->versions.load(std::memory_order_acquire);
        __builtin_prefetch(array);
        batch[n++] = {entry, nullptr};
      }
      for (size_t i = 0; i < n; ++i) {
        const VersionRecord* visible = VisibleVersion(batch[i].entry, read_ts);
        if (visible != nullptr && !visible->deleted()) {
          batch[i].record = visible;
          __builtin_prefetch(visible->value_address());
        }
      }
      for (size_t i = 0; i < n; ++i) {
        const VersionRecord* r = batch[i].record;
        if (r == nullptr) continue;
        if (visited == limit) {
          more = true;  // one more visible key exists past the limit
          break;
        }
        visit({batch[i].entry->key(), r->value(), r->version, Timestamp(r->timestamp)});
        ++visited;
      }
    }
  }
  if (Status s = CheckReadable(read_ts); !s.ok()) return s;
  return more;
}

Result<ScanResult> MvccStore::Impl::Scan(const KeyRange& range, Timestamp read_timestamp,
                                         size_t limit) const {
  ScanResult result;
  Result<bool> more = ScanVisit(range, read_timestamp, limit, [&](const ScanItemView& item) {
    result.items.push_back(
        {std::string(item.key), std::string(item.value), item.version, item.timestamp});
  });
  if (!more.ok()) return more.status();
  result.more = *more;
  return result;
}

std::vector<uint64_t> MvccStore::Impl::VersionsPerKey(const std::vector<uint64_t>& bounds) const {
  std::vector<uint64_t> counts(bounds.size() + 1, 0);
  // Batches of keys, each under its own read guard, so a walk over millions
  // of keys does not hold back the reclamation of what writers unlink.
  constexpr size_t kBatch = 4096;
  std::string resume;
  bool first = true;
  for (;;) {
    EpochDomain::ReadGuard guard(epochs_);
    KeyOrderIndex::Cursor c(order_index_, resume);
    if (!first && c.entry() != nullptr && c.entry()->key() == resume) c.Next();
    size_t n = 0;
    for (; c.entry() != nullptr && n < kBatch; c.Next(), ++n) {
      const KeyEntry* entry = c.entry();
      resume.assign(entry->key());
      const uint64_t size = entry->versions.load(std::memory_order_acquire)->published_size();
      if (size == 0) continue;
      counts[std::lower_bound(bounds.begin(), bounds.end(), size) - bounds.begin()] += 1;
    }
    first = false;
    if (c.entry() == nullptr) return counts;
  }
}

Result<HistoryResult> MvccStore::Impl::History(std::string_view key, std::optional<Timestamp> from,
                                               std::optional<Timestamp> to, size_t limit) const {
  if (from) {
    if (Status s = CheckReadable(from->value()); !s.ok()) return s;
  }
  const uint64_t lo = from ? from->value() : 0;
  const uint64_t hi = to ? to->value() : Timestamp::kMaxValue;
  HistoryResult result;
  {
    EpochDomain::ReadGuard guard(epochs_);
    const KeyEntry* entry = hash_index_.Find(key, KeyHashIndex::Hash(key));
    if (entry != nullptr) {
      const VersionArray* array = entry->versions.load(std::memory_order_acquire);
      const VersionRecord* records = array->records();
      uint32_t size = array->published_size();
      for (uint32_t i = VersionArray::LowerBound(records, size, lo);
           i < size && records[i].timestamp <= hi; ++i) {
        if (result.versions.size() == limit) {
          result.more = true;
          break;
        }
        const VersionRecord& r = records[i];
        result.versions.push_back({r.version, Timestamp(r.timestamp), r.deleted(),
                                   r.deleted() ? std::string() : std::string(r.value())});
      }
    }
  }
  if (from) {
    if (Status s = CheckReadable(from->value()); !s.ok()) return s;
  }
  return result;
}

Result<ChangesResult> MvccStore::Impl::Changes(Timestamp since, const KeyRange& range,
                                               size_t limit) const {
  const uint64_t since_ts = since.value();
  if (Status s = CheckReadable(since_ts); !s.ok()) return s;
  // Keep the `limit + 1` smallest (timestamp, key) candidates in a max-heap:
  // the extra one tells whether the result was cut.
  struct Candidate {
    uint64_t timestamp;
    const KeyEntry* entry;
    VersionRecord record;
  };
  auto before = [](const Candidate& a, const Candidate& b) {
    if (a.timestamp != b.timestamp) return a.timestamp < b.timestamp;
    return a.entry->key() < b.entry->key();
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(before)> heap(before);
  ChangesResult result;
  {
    EpochDomain::ReadGuard guard(epochs_);
    for (KeyOrderIndex::Cursor c(order_index_, range.start); c.entry() != nullptr; c.Next()) {
      const KeyEntry* entry = c.entry();
      if (range.end && entry->key() >= *range.end) break;
      const VersionArray* array = entry->versions.load(std::memory_order_acquire);
      const VersionRecord* records = array->records();
      uint32_t size = array->published_size();
      if (size == 0 || records[size - 1].timestamp <= since_ts) continue;
      for (uint32_t i = VersionArray::LowerBound(records, size, since_ts + 1); i < size; ++i) {
        Candidate c{records[i].timestamp, entry, records[i]};
        if (heap.size() > limit) {  // holds limit + 1 (never overflows, even for SIZE_MAX)
          if (!before(c, heap.top())) break;  // later versions of this key are later still
          heap.pop();
        }
        heap.push(c);
      }
    }
    result.more = heap.size() > limit;
    if (result.more) heap.pop();
    result.changes.resize(heap.size());
    for (size_t i = heap.size(); i-- > 0; heap.pop()) {
      const Candidate& c = heap.top();
      result.changes[i] = {std::string(c.entry->key()), Timestamp(c.timestamp), c.record.version,
                           c.record.deleted(),
                           c.record.deleted() ? std::string() : std::string(c.record.value())};
    }
  }
  if (Status s = CheckReadable(since_ts); !s.ok()) return s;
  return result;
}

uint64_t MvccStore::Impl::RaiseHorizon(Timestamp horizon) {
  MutexLock lock(write_mutex_);
  if (horizon.value() <= horizon_.load(std::memory_order_relaxed)) return 0;
  uint64_t lsn = 0;
  if (log_ != nullptr) {
    // Logged before anything is swept: a horizon that did not reach the log
    // must not remove versions a restart would bring back as readable.
    Result<uint64_t> appended = log_->AppendHorizon(horizon);
    if (!appended.ok()) return 0;  // the horizon stays; the caller sees it did
    lsn = *appended;
  }
  horizon_.store(horizon.value(), std::memory_order_seq_cst);
  return lsn;
}

bool MvccStore::Impl::ExportKeys(std::string* cursor, size_t max_keys,
                                 const std::function<void()>& at_cut, const ExportVisitor& visit) {
  std::vector<ExportedVersion> versions;
  MutexLock lock(write_mutex_);
  at_cut();
  KeyOrderIndex::Cursor c(order_index_, *cursor);
  for (size_t n = 0; c.entry() != nullptr && n < max_keys; ++n, c.Next()) {
    const KeyEntry* entry = c.entry();
    const VersionArray* array = entry->versions.load(std::memory_order_relaxed);
    const VersionRecord* records = array->records();
    const uint32_t size = array->published_size();
    versions.resize(size);
    for (uint32_t i = 0; i < size; ++i) {
      versions[i] = {records[i].timestamp, records[i].version, records[i].deleted(),
                     records[i].deleted() ? std::string_view() : records[i].value()};
    }
    visit(entry->key(), entry->write_count, versions);
  }
  if (c.entry() == nullptr) {
    cursor->clear();
    return true;
  }
  cursor->assign(c.entry()->key());
  return false;
}

void MvccStore::Impl::RestoreVersion(std::string_view key, uint64_t ts, uint64_t version,
                                     const std::string_view* value, uint64_t write_count) {
  const uint64_t hash = KeyHashIndex::Hash(key);
  MutexLock lock(write_mutex_);
  KeyEntry* entry = hash_index_.Find(key, hash);
  if (FindExact(entry, ts) == nullptr) {
    ApplyLocked(key, hash, entry, value, ts);
    entry = hash_index_.Find(key, hash);
    // ApplyLocked numbered the version by counting; recovery knows better.
    VersionArray* array = entry->versions.load(std::memory_order_relaxed);
    VersionRecord* records = array->mutable_records();
    const uint32_t at = VersionArray::LowerBound(records, array->published_size(), ts);
    records[at].version = version;
  }
  entry->write_count = write_count;
}

void MvccStore::Impl::RestoreRetiredKey(std::string_view key, uint64_t write_count) {
  const uint64_t hash = KeyHashIndex::Hash(key);
  MutexLock lock(write_mutex_);
  KeyEntry* entry = hash_index_.Find(key, hash);
  if (entry == nullptr) {
    entry = KeyEntry::Create(key, hash, order_index_.RandomHeight());
    Add(counters_.memory, entry->allocation_size());
    VersionArray* empty = VersionArray::Create(0);
    empty->Publish(0);
    entry->versions.store(empty, std::memory_order_release);
    Add(counters_.memory, VersionArray::AllocationSize(0));
    hash_index_.Insert(entry);
    order_index_.Insert(entry);
  }
  entry->write_count = std::max(entry->write_count, write_count);
}

void MvccStore::Impl::RestoreHorizon(uint64_t horizon) {
  MutexLock lock(write_mutex_);
  if (horizon > horizon_.load(std::memory_order_relaxed)) {
    horizon_.store(horizon, std::memory_order_seq_cst);
  }
}

void MvccStore::Impl::RestoreMaxTimestamp(uint64_t ts) {
  MutexLock lock(write_mutex_);
  if (ts + 1 > max_ts_plus_one_.load(std::memory_order_relaxed)) {
    max_ts_plus_one_.store(ts + 1, std::memory_order_release);
  }
}

CompactStepResult MvccStore::Impl::SweepFrom(std::string* cursor, size_t max_keys) {
  CompactStepResult result;
  MutexLock lock(write_mutex_);
  const uint64_t h = horizon();
  KeyOrderIndex::Cursor c(order_index_, *cursor);
  for (; c.entry() != nullptr && result.keys_visited < max_keys; c.Next()) {
    ++result.keys_visited;
    if (h > 0) SweepKey(c.entry(), h, &result);
  }
  if (c.entry() == nullptr) {
    result.sweep_finished = true;
    cursor->clear();
  } else {
    cursor->assign(c.entry()->key());
  }
  Add(counters_.gc_versions_removed, result.versions_removed);
  Add(counters_.gc_bytes_reclaimed, result.bytes_reclaimed);
  if (result.sweep_finished) Add(counters_.gc_runs, 1);
  return result;
}

bool MvccStore::Impl::SweepKey(KeyEntry* entry, uint64_t horizon, CompactStepResult* result) {
  VersionArray* array = entry->versions.load(std::memory_order_relaxed);
  const VersionRecord* records = array->records();
  const uint32_t size = array->published_size();
  // The newest version at or below the horizon is what reads at the horizon
  // see; everything older is invisible to every permitted read. If it is a
  // delete, reads at or above the horizon see "no value" without it too.
  int64_t newest_visible = VersionArray::FindAtOrBelow(records, size, horizon);
  if (newest_visible < 0) return false;
  uint32_t drop =
      static_cast<uint32_t>(newest_visible) + (records[newest_visible].deleted() ? 1 : 0);
  if (drop == 0) return false;

  uint64_t tombstones = 0, value_bytes = 0;
  for (uint32_t i = 0; i < drop; ++i) {
    if (records[i].deleted()) ++tombstones;
    value_bytes += ValueBytes(records[i]);
  }
  const bool key_gone = (drop == size);
  uint64_t reclaimed = value_bytes + (key_gone ? entry->key().size() : 0);

  // A key whose every version goes is retired, not removed: its entry stays
  // with no versions, keeping its write count, so that a later write of the
  // key gets the same version number whenever compaction ran (PROTOCOL.md:
  // version counts every write a key received). Readers skip such entries;
  // `keys` and `bytes` no longer count it.
  VersionArray* kept = VersionArray::Create(size - drop);
  std::memcpy(kept->mutable_records(), records + drop, (size - drop) * sizeof(VersionRecord));
  kept->Publish(size - drop);
  entry->versions.store(kept, std::memory_order_release);
  Add(counters_.memory, VersionArray::AllocationSize(size - drop));
  if (key_gone) Sub(counters_.keys, 1);
  for (uint32_t i = 0; i < drop; ++i) RetireValue(records[i]);
  Sub(counters_.memory, VersionArray::AllocationSize(array->capacity()));
  epochs_.Retire(array, &VersionArray::Destroy);

  Sub(counters_.versions, drop);
  Sub(counters_.tombstones, tombstones);
  Sub(counters_.bytes, reclaimed);
  result->versions_removed += drop;
  result->bytes_reclaimed += reclaimed;
  return key_gone;
}

void MvccStore::Impl::RetireValue(const VersionRecord& record) {
  const ValueBlob* blob = record.blob();
  if (blob == nullptr) return;  // inline values go with their array
  Sub(counters_.memory, ValueBlob::AllocationSize(blob->bytes().size()));
  epochs_.Retire(const_cast<ValueBlob*>(blob), &ValueBlob::Destroy);
}

void MvccStore::Impl::FreeEntryNow(KeyEntry* entry) {
  VersionArray* array = entry->versions.load(std::memory_order_relaxed);
  const VersionRecord* records = array->records();
  for (uint32_t i = 0, n = array->published_size(); i < n; ++i) {
    if (const ValueBlob* blob = records[i].blob()) ValueBlob::Destroy(const_cast<ValueBlob*>(blob));
  }
  VersionArray::Destroy(array);
  KeyEntry::Destroy(entry);
}

StoreStats MvccStore::Impl::Stats() const {
  StoreStats s;
  s.keys = counters_.keys.load(std::memory_order_relaxed);
  s.versions = counters_.versions.load(std::memory_order_relaxed);
  s.tombstones = counters_.tombstones.load(std::memory_order_relaxed);
  s.bytes = counters_.bytes.load(std::memory_order_relaxed);
  s.memory_bytes = counters_.memory.load(std::memory_order_relaxed) + hash_index_.memory_bytes() +
                   order_index_.memory_bytes();
  s.max_timestamp = max_timestamp();
  s.compaction_horizon = Timestamp(horizon());
  s.gc_runs = counters_.gc_runs.load(std::memory_order_relaxed);
  s.gc_versions_removed = counters_.gc_versions_removed.load(std::memory_order_relaxed);
  s.gc_bytes_reclaimed = counters_.gc_bytes_reclaimed.load(std::memory_order_relaxed);
  return s;
}

// --- MvccStore: the public face --------------------------------------------

MvccStore::MvccStore(StoreOptions options) : impl_(std::make_unique<Impl>(options)) {}
MvccStore::~MvccStore() = default;

Result<WriteResult> MvccStore::Put(std::string_view key, std::string_view value,
                                   Timestamp timestamp) {
  return impl_->Write(key, &value, timestamp);
}

Result<WriteResult> MvccStore::Delete(std::string_view key, Timestamp timestamp) {
  return impl_->Write(key, nullptr, timestamp);
}

Status MvccStore::CheckWrite(std::string_view key, const std::string_view* value) const {
  return impl_->CheckLimits(key, value, Timestamp());
}

Status MvccStore::ApplyBatch(const std::vector<BatchWrite>& writes, Timestamp timestamp,
                             uint64_t* lsn) {
  return impl_->ApplyBatch(writes, timestamp, lsn);
}

WriteLog* MvccStore::write_log() const { return impl_->log(); }

std::optional<Timestamp> MvccStore::LatestTimestamp(std::string_view key) const {
  return impl_->LatestTimestamp(key);
}

std::optional<std::string> MvccStore::FirstKeyWrittenAfter(const KeyRange& range,
                                                           Timestamp since) const {
  return impl_->FirstKeyWrittenAfter(range, since);
}

Result<ReadResult> MvccStore::Get(std::string_view key, Timestamp read_timestamp) const {
  ReadResult out;
  if (Status s = impl_->GetInto(key, read_timestamp, &out); !s.ok()) return s;
  return out;
}

Status MvccStore::GetInto(std::string_view key, Timestamp read_timestamp, ReadResult* out) const {
  return impl_->GetInto(key, read_timestamp, out);
}

Status MvccStore::MultiGetInto(std::span<const std::string_view> keys, Timestamp read_timestamp,
                               std::span<ReadResult> out) const {
  return impl_->MultiGetInto(keys, read_timestamp, out);
}

Result<ScanResult> MvccStore::Scan(const KeyRange& range, Timestamp read_timestamp,
                                   size_t limit) const {
  return impl_->Scan(range, read_timestamp, limit);
}

Result<bool> MvccStore::ScanVisit(const KeyRange& range, Timestamp read_timestamp, size_t limit,
                                  const std::function<void(const ScanItemView&)>& visit) const {
  return impl_->ScanVisit(range, read_timestamp, limit, visit);
}

Result<HistoryResult> MvccStore::History(std::string_view key, std::optional<Timestamp> from,
                                         std::optional<Timestamp> to, size_t limit) const {
  return impl_->History(key, from, to, limit);
}

Result<ChangesResult> MvccStore::Changes(Timestamp since, const KeyRange& range,
                                         size_t limit) const {
  return impl_->Changes(since, range, limit);
}

CompactResult MvccStore::Compact(Timestamp horizon) {
  const uint64_t lsn = impl_->RaiseHorizon(horizon);
  // A sweep of its own, from the first key, in batches so writers interleave.
  CompactResult total;
  std::string cursor;
  for (;;) {
    CompactStepResult step = impl_->SweepFrom(&cursor, kCompactBatchKeys);
    total.versions_removed += step.versions_removed;
    total.bytes_reclaimed += step.bytes_reclaimed;
    if (step.sweep_finished) break;
  }
  total.horizon = Timestamp(impl_->horizon());
  total.lsn = lsn;
  return total;
}

void MvccStore::RaiseHorizon(Timestamp horizon) { impl_->RaiseHorizon(horizon); }

bool MvccStore::ExportKeys(std::string* cursor, size_t max_keys,
                           const std::function<void()>& at_cut, const ExportVisitor& visit) const {
  return impl_->ExportKeys(cursor, max_keys, at_cut, visit);
}

void MvccStore::RestoreVersion(std::string_view key, Timestamp timestamp, uint64_t version,
                               const std::string_view* value, uint64_t write_count) {
  impl_->RestoreVersion(key, timestamp.value(), version, value, write_count);
}

void MvccStore::RestoreRetiredKey(std::string_view key, uint64_t write_count) {
  impl_->RestoreRetiredKey(key, write_count);
}

void MvccStore::RestoreHorizon(Timestamp horizon) { impl_->RestoreHorizon(horizon.value()); }

void MvccStore::RestoreMaxTimestamp(Timestamp timestamp) {
  impl_->RestoreMaxTimestamp(timestamp.value());
}

CompactStepResult MvccStore::CompactStep(size_t max_keys) { return impl_->CompactStep(max_keys); }

Timestamp MvccStore::compaction_horizon() const { return Timestamp(impl_->horizon()); }

std::optional<Timestamp> MvccStore::max_timestamp() const { return impl_->max_timestamp(); }

StoreStats MvccStore::GetStats() const { return impl_->Stats(); }

std::vector<uint64_t> MvccStore::VersionsPerKey(const std::vector<uint64_t>& bounds) const {
  return impl_->VersionsPerKey(bounds);
}

}  // namespace strata
