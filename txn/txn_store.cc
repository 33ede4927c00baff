// TxnStore: timestamps at begin, validation and apply at commit, the
// registry of live snapshots that holds back garbage collection, and raw
// writes that respect those snapshots.
#include "strata/txn_store.h"

#include <algorithm>
#include <thread>

#include "txn/txn_state.h"

namespace strata {

using txn_internal::TxnState;

TxnStore::TxnStore(MvccStore* store, TxnStoreOptions options)
    : store_(store),
      own_oracle_(std::make_unique<LocalOracle>()),
      oracle_(own_oracle_.get()),
      options_(options) {
  if (auto max_ts = store_->max_timestamp()) oracle_->Observe(*max_ts);
  oracle_->Observe(store_->compaction_horizon());
}

TxnStore::TxnStore(MvccStore* store, TimestampOracle* oracle, TxnStoreOptions options)
    : store_(store), oracle_(oracle), options_(options) {
  if (auto max_ts = store_->max_timestamp()) oracle_->Observe(*max_ts);
  oracle_->Observe(store_->compaction_horizon());
}

TxnStore::~TxnStore() = default;

Result<Transaction> TxnStore::Begin(const TxnOptions& options) {
  if (options.read_timestamp && !options.read_only) {
    return Status::InvalidArgument("read_timestamp is only allowed for read-only transactions");
  }
  auto state = std::make_unique<TxnState>();
  state->isolation = options.isolation;
  state->read_only = options.read_only;
  state->began = std::chrono::steady_clock::now();

  {
    std::lock_guard registry(registry_mutex_);
    if (active_.size() >= options_.max_active_txns) {
      return Status::Unavailable("too many active transactions (the limit is " +
                                 std::to_string(options_.max_active_txns) +
                                 "); commit or abort some first");
    }
    if (options.read_timestamp) {
      const Timestamp horizon = store_->compaction_horizon();
      if (*options.read_timestamp < horizon) {
        return Status::Compacted(
            "read_timestamp " + std::to_string(options.read_timestamp->value()) +
            " is below the compaction horizon " + std::to_string(horizon.value()));
      }
      if (*options.read_timestamp > oracle_->Last()) {
        // A snapshot in the future would change under the reader as commits
        // arrive; it would not be a snapshot.
        return Status::InvalidArgument(
            "read_timestamp " + std::to_string(options.read_timestamp->value()) +
            " is ahead of the store's clock (" + std::to_string(oracle_->Last().value()) + ")");
      }
    }
    // The id is a fresh timestamp too (the start timestamp, unless the
    // snapshot is a past one): unique for as long as the oracle's
    // timestamps are, across restarts of a durable store included, so a
    // request naming a transaction lost in a crash can never reach a new one.
    Result<Timestamp> fresh = oracle_->Next();
    if (fresh.ok()) {
      state->id = fresh->value();
    } else if (options.read_timestamp) {
      // The past stays readable after the timestamps ran out; these ids lie
      // above every timestamp, so they cannot meet one.
      state->id = kIdsAfterTimestamps + exhausted_ids_++;
    } else {
      return fresh.status();
    }
    state->start = options.read_timestamp ? *options.read_timestamp : *fresh;
    active_.emplace(state->id, state.get());
    active_starts_.insert(state->start.value());
  }
  // The snapshot must not show part of a commit: wait out the one write
  // that may be landing below it (an apply of a few keys, never a
  // validation).
  WaitForApplyAtOrBelow(state->start);
  return Transaction(this, std::move(state));
}

void TxnStore::WaitForApplyAtOrBelow(Timestamp snapshot) const {
  for (;;) {
    uint64_t applying = applying_.load(std::memory_order_seq_cst);
    if (applying == kNotApplying ||
        (applying != kTimestampPending && applying > snapshot.value())) {
      return;
    }
    std::this_thread::yield();
  }
}

void TxnStore::Unregister(TxnState* txn) {
  txn->active = false;
  active_.erase(txn->id);
  active_starts_.erase(active_starts_.find(txn->start.value()));
}

Result<Timestamp> TxnStore::Commit(TxnState* txn) {
  auto finish = [&] {
    std::lock_guard registry(registry_mutex_);
    Unregister(txn);
  };
  if (txn->writes.empty()) {
    // Nothing to apply; a snapshot of reads is serializable at its start.
    // No commit mutex: read-only transactions never queue behind writers.
    finish();
    commits_.fetch_add(1, std::memory_order_relaxed);
    return txn->start;
  }
  std::unique_lock commit(commit_mutex_);
  auto conflict = [&](const std::string& key, std::string_view what) -> Status {
    txn->conflict_key = key;
    finish();
    conflicts_.fetch_add(1, std::memory_order_relaxed);
    return Status(StatusCode::kConflict,
                  std::string(what) + " conflict on a key written after the " +
                      "transaction's start timestamp " + std::to_string(txn->start.value()));
  };
  // Every other commit is either fully applied or not begun (they run under
  // the commit mutex), so "written after start" means committed before us:
  // we lose.
  for (const auto& [key, value] : txn->writes) {
    auto latest = store_->LatestTimestamp(key);
    if (latest && *latest > txn->start) return conflict(key, "write-write");
  }
  if (txn->validates_reads()) {
    for (const std::string& key : txn->read_keys) {
      auto latest = store_->LatestTimestamp(key);
      if (latest && *latest > txn->start) return conflict(key, "read-write");
    }
    for (const KeyRange& range : txn->read_ranges) {
      if (auto key = store_->FirstKeyWrittenAfter(range, txn->start)) {
        return conflict(*key, "read-write (phantom)");
      }
    }
  }
  std::vector<BatchWrite> batch;
  batch.reserve(txn->writes.size());
  for (auto& [key, value] : txn->writes) batch.push_back({key, std::move(value)});

  // Announce the apply before taking the timestamp: a begin whose fresh
  // timestamp is above ours then sees the announcement and waits for the
  // apply (see WaitForApplyAtOrBelow).
  applying_.store(kTimestampPending, std::memory_order_seq_cst);
  const Result<Timestamp> commit_ts = oracle_->Next();
  if (!commit_ts.ok()) {
    applying_.store(kNotApplying, std::memory_order_seq_cst);
    finish();
    return commit_ts.status();
  }
  applying_.store(commit_ts->value(), std::memory_order_seq_cst);
  // Cannot fail in practice: Put checked the limits, and a fresh timestamp
  // is above the horizon and every stored version. If it ever does, nothing
  // was applied (the batch is all or nothing) and the caller is told.
  uint64_t lsn = 0;
  Status applied = store_->ApplyBatch(batch, *commit_ts, &lsn);
  applying_.store(kNotApplying, std::memory_order_seq_cst);
  finish();
  commit.unlock();
  if (!applied.ok()) return applied;
  // Visible now; acknowledged only once durable. Waiting outside the commit
  // mutex lets the commits behind this one join the same fsync.
  if (Status durable = AwaitDurable(lsn); !durable.ok()) return durable;
  commits_.fetch_add(1, std::memory_order_relaxed);
  return *commit_ts;
}

void TxnStore::Finish(TxnState* txn) {
  std::lock_guard registry(registry_mutex_);
  if (txn->active) Unregister(txn);
}

Status TxnStore::AwaitDurable(uint64_t lsn) const {
  WriteLog* log = store_->write_log();
  if (log == nullptr || lsn == 0) return Status::Ok();
  return log->AwaitDurable(lsn);
}

Result<WriteResult> TxnStore::RawWrite(std::string_view key, const std::string_view* value,
                                       Timestamp timestamp) {
  Result<WriteResult> result = RawWriteLocked(key, value, timestamp);
  if (result.ok()) {
    if (Status durable = AwaitDurable(result->lsn); !durable.ok()) return durable;
  }
  return result;
}

Result<WriteResult> TxnStore::RawWriteLocked(std::string_view key, const std::string_view* value,
                                             Timestamp timestamp) {
  std::lock_guard commit(commit_mutex_);
  {
    std::lock_guard registry(registry_mutex_);
    if (!active_starts_.empty() && timestamp.value() <= *active_starts_.rbegin()) {
      // Name the youngest snapshot the write would change.
      uint64_t holder = 0;
      for (const auto& [id, txn] : active_) {
        if (txn->start.value() == *active_starts_.rbegin()) holder = id;
      }
      return Status::PreconditionFailed(
          "timestamp " + std::to_string(timestamp.value()) +
          " is at or below the start timestamp " + std::to_string(*active_starts_.rbegin()) +
          " of active transaction " + std::to_string(holder) +
          "; a raw write there would change that transaction's snapshot");
    }
    // Before the registry is released: every begin from now on starts
    // above this timestamp and waits for the write to land.
    oracle_->Observe(timestamp);
    applying_.store(timestamp.value(), std::memory_order_seq_cst);
  }
  Result<WriteResult> result =
      value == nullptr ? store_->Delete(key, timestamp) : store_->Put(key, *value, timestamp);
  applying_.store(kNotApplying, std::memory_order_seq_cst);
  return result;
}

Result<WriteResult> TxnStore::RawPut(std::string_view key, std::string_view value,
                                     Timestamp timestamp) {
  return RawWrite(key, &value, timestamp);
}

Result<WriteResult> TxnStore::RawDelete(std::string_view key, Timestamp timestamp) {
  return RawWrite(key, nullptr, timestamp);
}

Timestamp TxnStore::RaiseHorizonLocked(Timestamp wanted) {
  Timestamp horizon = wanted;
  if (!active_starts_.empty()) horizon = std::min(horizon, Timestamp(*active_starts_.begin()));
  store_->RaiseHorizon(horizon);
  // Snapshots begun from now on start above the horizon, and above the
  // timestamp asked for even when a live snapshot held the horizon lower.
  oracle_->Observe(wanted);
  return store_->compaction_horizon();
}

Timestamp TxnStore::RaiseHorizon(Timestamp wanted) {
  std::lock_guard registry(registry_mutex_);
  return RaiseHorizonLocked(wanted);
}

CompactResult TxnStore::Compact(Timestamp requested) {
  Timestamp horizon = RaiseHorizon(requested);
  // The sweep runs outside the mutex: begins and commits go on meanwhile,
  // and nothing they do can fall below the horizon just raised.
  CompactResult result = store_->Compact(horizon);
  // The horizon's record may have been appended by RaiseHorizon above (then
  // Compact found nothing to raise): wait for everything appended so far.
  if (WriteLog* log = store_->write_log()) (void)log->AwaitDurable(log->last_appended_lsn());
  return result;
}

TxnStats TxnStore::GetStats() const {
  std::lock_guard registry(registry_mutex_);
  TxnStats stats;
  stats.active_txns = active_.size();
  stats.commits = commits_.load(std::memory_order_relaxed);
  stats.conflicts = conflicts_.load(std::memory_order_relaxed);
  const TxnState* oldest = nullptr;
  for (const auto& [id, txn] : active_) {
    if (oldest == nullptr || txn->start < oldest->start) oldest = txn;
  }
  if (oldest != nullptr) {
    stats.min_active_snapshot = oldest->start;
    stats.oldest_txn_id = oldest->id;
    stats.oldest_txn_age = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - oldest->began);
  }
  return stats;
}

}  // namespace strata
