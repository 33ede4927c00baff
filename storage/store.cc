// Store: opens a directory (recovery), wires the write-ahead log under the
// engine and the durable oracle under the transactions, and runs the
// background checkpointer.
#include "strata/store.h"

#include <algorithm>
#include <mutex>
#include <thread>

#include "base/mutex.h"
#include "base/thread_name.h"
#include "storage/checkpoint.h"
#include "storage/coding.h"
#include "storage/durable_oracle.h"
#include "storage/file_util.h"
#include "storage/wal_reader.h"
#include "storage/wal_writer.h"

namespace strata {

using storage::CheckpointInfo;
using storage::DurableOracle;
using storage::WalWriter;

namespace {

// How often the checkpointer looks at the log's growth.
constexpr std::chrono::milliseconds kCheckpointPoll{100};

// Applies one log record to the store being recovered.
Status ReplayRecord(const storage::WalRecord& record, const CheckpointInfo& checkpoint,
                    MvccStore* store, uint64_t* reserved_through) {
  storage::Decoder in(record.payload);
  auto malformed = [&] {
    return Status::InvalidArgument("log record " + std::to_string(record.lsn) +
                                   " has a valid checksum but does not decode");
  };
  switch (record.type) {
    case storage::RecordType::kWrites: {
      uint64_t ts = 0, count = 0;
      if (!in.Varint(&ts) || ts > Timestamp::kMaxValue || !in.Varint(&count)) return malformed();
      for (uint64_t i = 0; i < count; ++i) {
        uint8_t kind = 0;
        std::string_view key, value;
        uint64_t version = 0;
        if (!in.Byte(&kind) || kind > 1 || !in.Bytes(&key) || !in.Varint(&version) ||
            (kind == 1 && !in.Bytes(&value))) {
          return malformed();
        }
        if (checkpoint.Contains(key, record.lsn)) continue;
        store->RestoreVersion(key, Timestamp(ts), version, kind == 1 ? &value : nullptr, version);
      }
      break;
    }
    case storage::RecordType::kHorizon: {
      uint64_t horizon = 0;
      if (!in.Varint(&horizon) || horizon > Timestamp::kMaxValue) return malformed();
      store->RestoreHorizon(Timestamp(horizon));
      break;
    }
    case storage::RecordType::kDurableMark: {
      uint64_t lsn = 0;  // the reader's evidence; nothing to restore
      if (!in.Varint(&lsn)) return malformed();
      break;
    }
    case storage::RecordType::kReserve: {
      uint64_t through = 0;
      if (!in.Varint(&through)) return malformed();
      *reserved_through = std::max(*reserved_through, through);
      break;
    }
    default:
      return Status::InvalidArgument("log record " + std::to_string(record.lsn) +
                                     " has an unknown type " +
                                     std::to_string(static_cast<int>(record.type)));
  }
  if (!in.done()) return malformed();
  return Status::Ok();
}

}  // namespace

class Store::Impl {
 public:
  Impl(std::string dir, StoreOpenOptions options, storage::DirLock lock)
      : dir_(std::move(dir)), options_(std::move(options)), lock_(std::move(lock)) {}

  ~Impl() {
    {
      MutexLock guard(checkpointer_mutex_);
      stopping_ = true;
    }
    checkpointer_cv_.NotifyAll();
    if (checkpointer_.joinable()) checkpointer_.join();
    // Members go in reverse order: transactions, oracle, engine, then the
    // log, whose destructor writes and syncs what is still pending.
  }

  Status Recover();
  Status Checkpoint();
  void CheckpointLoop();
  void Progress(std::string_view line) const {
    if (options_.durability.progress) options_.durability.progress(line);
  }

  const std::string dir_;
  const StoreOpenOptions options_;
  storage::DirLock lock_;
  std::unique_ptr<WalWriter> wal_;
  std::unique_ptr<MvccStore> mvcc_;
  std::unique_ptr<DurableOracle> oracle_;
  std::unique_ptr<TxnStore> db_;
  RecoveryReport report_;

  Mutex checkpoint_run_mutex_;  // one checkpoint at a time
  mutable Mutex checkpointer_mutex_;
  CondVar checkpointer_cv_;
  bool stopping_ STRATA_GUARDED_BY(checkpointer_mutex_) = false;
  // Log bytes since open, plus those recovery found after the checkpoint:
  // the log left by earlier runs counts towards the next checkpoint too.
  uint64_t LogBytes() const { return report_.log_bytes_read + wal_->bytes_appended(); }
  uint64_t log_bytes_at_checkpoint_ STRATA_GUARDED_BY(checkpointer_mutex_) = 0;  // LogBytes() then
  uint64_t checkpoints_ STRATA_GUARDED_BY(checkpointer_mutex_) = 0;
  std::optional<uint64_t> last_checkpoint_lsn_ STRATA_GUARDED_BY(checkpointer_mutex_);
  std::thread checkpointer_;
};

Status Store::Impl::Recover() {
  const auto started = std::chrono::steady_clock::now();
  const DurabilityOptions& d = options_.durability;
  wal_ = std::make_unique<WalWriter>(
      dir_, storage::WalOptions{d.sync, d.batch_delay, d.wait_for_durability, d.segment_bytes,
                                d.on_durable});
  StoreOptions engine = options_.engine;
  engine.write_log = wal_.get();
  mvcc_ = std::make_unique<MvccStore>(engine);

  // The newest complete checkpoint is the base; a .tmp one never finished.
  Result<std::vector<std::string>> names = storage::ListDir(dir_);
  if (!names.ok()) return names.status();
  if (Status s = storage::RemoveTemporaryCheckpoints(dir_); !s.ok()) return s;
  std::optional<uint64_t> newest;
  for (const std::string& name : *names) {
    if (auto lsn = storage::ParseCheckpointFileName(name)) {
      newest = std::max(newest.value_or(0), *lsn);
    }
  }
  CheckpointInfo checkpoint;
  if (newest) {
    const std::string path = storage::JoinPath(dir_, storage::CheckpointFileName(*newest));
    Progress("recovery: loading " + path);
    Result<CheckpointInfo> loaded = storage::LoadCheckpoint(path, mvcc_.get());
    if (!loaded.ok()) return loaded.status();
    checkpoint = std::move(*loaded);
    report_.checkpoint_lsn = checkpoint.covered_lsn;
    report_.checkpoint_keys = checkpoint.keys;
    report_.checkpoint_versions = checkpoint.versions;
  }

  uint64_t reserved_through = checkpoint.reserved_through;
  Result<storage::WalReadSummary> wal = storage::ReadWal(
      dir_, checkpoint.covered_lsn,
      [&](const storage::WalRecord& record) {
        return ReplayRecord(record, checkpoint, mvcc_.get(), &reserved_through);
      },
      d.progress, d.replay_progress_every);
  if (!wal.ok()) return wal.status();
  report_.segments_read = wal->segments.size();
  report_.records_replayed = wal->records_applied;
  report_.log_bytes_read = wal->bytes_read;
  report_.torn_tail = wal->torn_tail;

  // Replay restored versions that a later horizon had already swept away
  // in the running store: sweep them again, so the state matches.
  mvcc_->Compact(mvcc_->compaction_horizon());

  uint64_t last_lsn = std::max(checkpoint.covered_lsn, wal->last_lsn);
  for (uint64_t first : wal->segments) last_lsn = std::max(last_lsn, first - 1);
  report_.last_lsn = last_lsn;
  if (Status s = wal_->Start(last_lsn + 1, wal->segments); !s.ok()) return s;

  uint64_t through = std::max(reserved_through, mvcc_->compaction_horizon().value());
  if (auto max_ts = mvcc_->max_timestamp()) through = std::max(through, max_ts->value());
  oracle_ = std::make_unique<DurableOracle>(wal_.get(), through);
  db_ = std::make_unique<TxnStore>(mvcc_.get(), oracle_.get(), options_.txn);

  report_.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  if (d.checkpoint_after_log_bytes > 0) {
    checkpointer_ = std::thread([this] {
      NameThisThread("strata-checkpt");
      CheckpointLoop();
    });
  }
  return Status::Ok();
}

Status Store::Impl::Checkpoint() {
  MutexLock run(checkpoint_run_mutex_);
  const uint64_t log_bytes = LogBytes();
  Result<storage::CheckpointResult> written = storage::WriteCheckpoint(
      dir_, *mvcc_, wal_.get(), [this] { return oracle_->reserved_through(); },
      options_.durability.progress);
  MutexLock guard(checkpointer_mutex_);
  // Even after a failure: the next attempt waits for the log to grow again
  // instead of retrying in a loop.
  log_bytes_at_checkpoint_ = log_bytes;
  if (!written.ok()) {
    // The half-written file is useless; the log it would have replaced stays.
    (void)storage::RemoveTemporaryCheckpoints(dir_);
    return written.status();
  }
  ++checkpoints_;
  last_checkpoint_lsn_ = written->covered_lsn;
  return Status::Ok();
}

void Store::Impl::CheckpointLoop() {
  UniqueLock lock(checkpointer_mutex_);
  while (!stopping_) {
    checkpointer_cv_.WaitFor(lock, kCheckpointPoll);
    if (stopping_) break;
    if (LogBytes() - log_bytes_at_checkpoint_ < options_.durability.checkpoint_after_log_bytes) {
      continue;
    }
    if (!wal_->health().ok()) continue;
    lock.unlock();
    Status s = Checkpoint();
    if (!s.ok()) Progress("checkpoint failed (the log is kept, nothing is lost): " + s.message());
    lock.lock();
  }
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, StoreOpenOptions options) {
  if (Status s = storage::CreateDir(dir); !s.ok()) return s;
  Result<storage::DirLock> lock = storage::DirLock::Acquire(dir);
  if (!lock.ok()) return lock.status();
  auto impl = std::make_unique<Impl>(dir, std::move(options), std::move(*lock));
  if (Status s = impl->Recover(); !s.ok()) return s;
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

MvccStore& Store::mvcc() { return *impl_->mvcc_; }
TxnStore& Store::db() { return *impl_->db_; }
uint64_t Store::appended_lsn() const { return impl_->wal_->last_appended_lsn(); }
uint64_t Store::durable_lsn() const { return impl_->wal_->durable_lsn(); }
Status Store::health() const { return impl_->wal_->health(); }
Status Store::Sync() { return impl_->wal_->WaitDurable(impl_->wal_->last_appended_lsn()); }
Status Store::Checkpoint() { return impl_->Checkpoint(); }
void Store::Flush() { impl_->wal_->Flush(); }
const RecoveryReport& Store::recovery() const { return impl_->report_; }
const std::string& Store::dir() const { return impl_->dir_; }

DurabilityStats Store::GetDurabilityStats() const {
  storage::WalStats wal = impl_->wal_->stats();
  DurabilityStats stats;
  stats.appended_lsn = wal.appended_lsn;
  stats.durable_lsn = wal.durable_lsn;
  stats.syncs = wal.syncs;
  stats.records = wal.records;
  stats.log_bytes = wal.bytes;
  stats.failure = wal.failure;
  stats.histograms = wal.histograms;
  MutexLock guard(impl_->checkpointer_mutex_);
  stats.checkpoints = impl_->checkpoints_;
  stats.last_checkpoint_lsn = impl_->last_checkpoint_lsn_;
  return stats;
}

}  // namespace strata
