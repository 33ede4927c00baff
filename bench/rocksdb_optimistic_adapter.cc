// rocksdb-optimistic: RocksDB's OptimisticTransactionDB, the peer closest to
// strata's design (no locks while the transaction runs, validation at
// commit). See rocksdb_txn_common.h for the tuning and the session.
//
// What it validates: each transaction has a snapshot (set_snapshot) and
// reads at it; the keys it writes are read with GetForUpdate, so at commit
// RocksDB checks that none of them was written after the snapshot (Busy if
// one was: first committer wins). The keys it only reads are not tracked,
// so this is snapshot isolation, not serializability. Validation policy is
// the default kValidateParallel (per-key locks taken only during commit).
#include <rocksdb/utilities/optimistic_transaction_db.h>

#include <memory>

#include "bench/rocksdb_common.h"

namespace strata::bench {
namespace {

class RocksDbOptimisticAdapter final : public TxnAdapter {
 public:
  RocksDbOptimisticAdapter() : dir_("rocksdb-occ") {
    rocksdb::OptimisticTransactionDB* db = nullptr;
    CheckRocksDb(rocksdb::OptimisticTransactionDB::Open(RocksDbTxnOptions(), dir_.path(), &db),
                 "open OptimisticTransactionDB");
    db_.reset(db);
    txn_options_.set_snapshot = true;
  }

  ~RocksDbOptimisticAdapter() override {
    if (db_) CheckRocksDb(db_->Close(), "close");
  }

  std::string_view name() const override { return "rocksdb-optimistic"; }
  std::string_view config() const override {
    return "OptimisticTransactionDB (kValidateParallel), set_snapshot, GetForUpdate on the keys "
           "written, plain Get at the snapshot for the others; handles reused; WAL off, no "
           "sync, no compression, 10-bit bloom, 2 GiB block cache, 128 MiB memtable";
  }
  std::string_view IsolationLabel(TxnIsolation /*requested*/) const override { return "snapshot"; }
  bool honours_isolation() const override { return false; }
  std::string_view validation_note() const override {
    return "reads at the transaction's snapshot (set_snapshot); commit validates only the "
           "keys written (GetForUpdate + Put): Busy if one was written after the snapshot. "
           "Keys only read are not validated: snapshot isolation, not serializable";
  }

  void Load(const std::vector<std::string>& keys) override { LoadRocksDbCounters(db_.get(), keys); }

  std::unique_ptr<TxnSession> NewSession(TxnIsolation /*isolation*/) override {
    rocksdb::OptimisticTransactionDB* db = db_.get();
    const rocksdb::WriteOptions write_options = RocksDbTxnWriteOptions();
    const rocksdb::OptimisticTransactionOptions txn_options = txn_options_;
    return std::make_unique<RocksDbTxnSession>(
        db, [db, write_options, txn_options](rocksdb::Transaction* old) {
          return db->BeginTransaction(write_options, txn_options, old);
        });
  }

 private:
  TempDir dir_;
  std::unique_ptr<rocksdb::OptimisticTransactionDB> db_;
  rocksdb::OptimisticTransactionOptions txn_options_;
};

}  // namespace

std::unique_ptr<TxnAdapter> MakeRocksDbOptimisticAdapter() {
  return std::make_unique<RocksDbOptimisticAdapter>();
}

}  // namespace strata::bench
