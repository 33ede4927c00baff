#include "bench/rocksdb_common.h"

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

namespace strata::bench {

void CheckRocksDb(const rocksdb::Status& status, std::string_view what) {
  if (!status.ok()) Fatal("rocksdb " + std::string(what) + ": " + status.ToString());
}

TxnStep ClassifyRocksDb(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return TxnStep::kOk;
  // Deadlock is a Busy with a subcode, so it goes first.
  if (status.IsDeadlock()) return TxnStep::kDeadlock;
  if (status.IsBusy()) return TxnStep::kConflict;
  if (status.IsTimedOut()) return TxnStep::kLockTimeout;
  if (status.IsTryAgain()) return TxnStep::kTryAgain;
  Fatal("rocksdb " + std::string(what) + ": " + status.ToString());
}

rocksdb::Options RocksDbBenchOptions(bool bloom_filter) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);  // the benchmark machine has two cores
  options.write_buffer_size = 128 << 20;
  options.max_write_buffer_number = 4;
  options.compression = rocksdb::kNoCompression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(size_t{2} << 30);
  if (bloom_filter) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return options;
}

rocksdb::Options RocksDbTxnOptions() { return RocksDbBenchOptions(/*bloom_filter=*/true); }

rocksdb::WriteOptions RocksDbTxnWriteOptions() {
  rocksdb::WriteOptions options;
  options.disableWAL = true;
  options.sync = false;
  return options;
}

void LoadRocksDbCounters(rocksdb::DB* db, const std::vector<std::string>& keys) {
  constexpr size_t kBatchKeys = 10'000;
  char zero[8];
  EncodeCounter(0, zero);
  const rocksdb::WriteOptions write_options = RocksDbTxnWriteOptions();
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < keys.size(); ++i) {
    CheckRocksDb(batch.Put(keys[i], rocksdb::Slice(zero, sizeof(zero))), "batch put");
    if (batch.Count() == kBatchKeys || i + 1 == keys.size()) {
      CheckRocksDb(db->Write(write_options, &batch), "load write");
      batch.Clear();
    }
  }
  CheckRocksDb(db->Flush(rocksdb::FlushOptions()), "flush");
  CheckRocksDb(db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr), "compact");
}

RocksDbTxnSession::RocksDbTxnSession(rocksdb::DB* db, BeginFn begin)
    : db_(db), begin_(std::move(begin)) {}

RocksDbTxnSession::~RocksDbTxnSession() {
  Rollback();
  delete txn_;
}

void RocksDbTxnSession::Begin(bool read_only) {
  read_only_ = read_only;
  open_ = true;
  if (read_only) {
    read_only_snapshot_ = db_->GetSnapshot();
    read_options_.snapshot = read_only_snapshot_;
    return;
  }
  txn_ = begin_(txn_);
  if (txn_ == nullptr) Fatal("rocksdb BeginTransaction returned null");
  read_options_.snapshot = txn_->GetSnapshot();
}

TxnStep RocksDbTxnSession::Get(std::string_view key, bool for_update, uint64_t* value) {
  const rocksdb::Slice k(key.data(), key.size());
  rocksdb::Status status;
  if (read_only_) {
    status = db_->Get(read_options_, k, &value_);
  } else if (for_update) {
    status = txn_->GetForUpdate(read_options_, k, &value_);
  } else {
    status = txn_->Get(read_options_, k, &value_);
  }
  if (status.IsNotFound()) Fatal("rocksdb: key " + std::string(key) + " is missing");
  const TxnStep step = ClassifyRocksDb(status, "get");
  if (step == TxnStep::kOk) *value = DecodeCounter(value_);
  return step;
}

TxnStep RocksDbTxnSession::Put(std::string_view key, uint64_t value) {
  char bytes[8];
  EncodeCounter(value, bytes);
  return ClassifyRocksDb(
      txn_->Put(rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(bytes, sizeof(bytes))),
      "put");
}

TxnStep RocksDbTxnSession::Commit() {
  if (read_only_) {
    Rollback();  // a snapshot read has nothing to commit
    return TxnStep::kOk;
  }
  const TxnStep step = ClassifyRocksDb(txn_->Commit(), "commit");
  if (step == TxnStep::kOk) open_ = false;
  return step;
}

void RocksDbTxnSession::Rollback() {
  if (!open_) return;
  open_ = false;
  if (read_only_) {
    db_->ReleaseSnapshot(read_only_snapshot_);
    read_only_snapshot_ = nullptr;
  } else {
    // Releases a pessimistic transaction's locks now rather than at the next
    // Begin; a failed optimistic commit has nothing left to undo.
    CheckRocksDb(txn_->Rollback(), "rollback");
  }
  read_options_.snapshot = nullptr;
}

}  // namespace strata::bench
