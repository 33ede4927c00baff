// What the RocksDB peers share. All three (rocksdb_adapter.cc and the two
// transactional ones) take their tuning from RocksDbBenchOptions; the two
// transactional ones (rocksdb_optimistic_adapter.cc,
// rocksdb_pessimistic_adapter.cc) also share the load and the session that
// drives a rocksdb::Transaction. They differ only in the DB
// they open and in how a transaction begins, which each adapter supplies.
//
// Tuning, as the plain rocksdb peer's (rocksdb_adapter.cc) so the figures
// compare: no WAL and no fsync (strata keeps everything in memory), no
// compression, a block cache larger than the data, a 128 MiB memtable; plus
// a 10-bit bloom filter, since these keys are stored plain (a point Get can
// use it, unlike the MVCC-encoded Seek of the plain peer). Keys are stored
// as they are: RocksDB's own sequence-number snapshots provide the MVCC.
//
// Every transaction runs with set_snapshot = true and reads through
// ReadOptions::snapshot = the transaction's snapshot, so all its reads see
// one point in time, as a strata transaction's do.
#ifndef STRATA_BENCH_ROCKSDB_COMMON_H_
#define STRATA_BENCH_ROCKSDB_COMMON_H_

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/transaction.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.h"
#include "bench/txn_adapter.h"

namespace strata::bench {

void CheckRocksDb(const rocksdb::Status& status, std::string_view what);

// The classification of a transactional step's status; dies on anything
// that is not a kind of abort.
TxnStep ClassifyRocksDb(const rocksdb::Status& status, std::string_view what);

// The options both peers open their DB with.
// The tuning every RocksDB peer uses, MVCC and transactional alike, so the
// two comparisons are made against the same engine: 128 MiB memtables, no
// compression, a 2 GiB block cache. Bloom filters help point lookups of plain
// keys but not the MVCC peer's seeks, which skip them.
rocksdb::Options RocksDbBenchOptions(bool bloom_filter);

rocksdb::Options RocksDbTxnOptions();
// WAL off, no sync.
rocksdb::WriteOptions RocksDbTxnWriteOptions();

// Stores counter 0 under every key through `db` (in batches), then flushes
// and compacts so the timed runs start from the settled LSM the plain peer
// is measured on too.
void LoadRocksDbCounters(rocksdb::DB* db, const std::vector<std::string>& keys);

// One thread's session on either peer. `begin(old)` starts a read-write
// transaction with a snapshot, reusing the handle `old` (nullptr the first
// time), as RocksDB's BeginTransaction(…, old_txn) allows so that a hot loop
// does not allocate a transaction per attempt.
class RocksDbTxnSession final : public TxnSession {
 public:
  using BeginFn = std::function<rocksdb::Transaction*(rocksdb::Transaction* old)>;

  RocksDbTxnSession(rocksdb::DB* db, BeginFn begin);
  ~RocksDbTxnSession() override;

  // Read-only transactions are a DB snapshot and plain snapshot Gets, the
  // way RocksDB serves consistent reads without a transaction object.
  void Begin(bool read_only) override;
  TxnStep Get(std::string_view key, bool for_update, uint64_t* value) override;
  TxnStep Put(std::string_view key, uint64_t value) override;
  TxnStep Commit() override;
  void Rollback() override;

 private:
  rocksdb::DB* db_;
  BeginFn begin_;
  rocksdb::Transaction* txn_ = nullptr;  // owned; reused across transactions
  const rocksdb::Snapshot* read_only_snapshot_ = nullptr;
  bool open_ = false;
  bool read_only_ = false;
  rocksdb::ReadOptions read_options_;
  std::string value_;  // the reused read buffer
};

}  // namespace strata::bench

#endif  // STRATA_BENCH_ROCKSDB_COMMON_H_
