// rocksdb: the LSM-tree peer, with MVCC versions encoded in its keys
// (mvcc_key_codec.h). Tuned to be a fair in-memory-ish comparison rather than
// a durable store: no WAL, no fsync, no compression, a block cache larger
// than the data, a 128 MiB memtable. Bloom filters are off because every
// read is a Seek, which whole-key filters cannot help (a prefix extractor
// could; left out to keep the peer simple, noted in config()).
//
// Reads go through one iterator that is reused and Refresh()ed every
// kReadsPerRefresh reads, so a read costs a Seek, not an iterator
// construction; a reader therefore sees concurrent writes with a lag of at
// most that many reads (the LMDB adapter renews its read transaction on the
// same schedule).
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include <memory>
#include <string>

#include "bench/bench_util.h"
#include "bench/engine_adapter.h"
#include "bench/mvcc_key_codec.h"
#include "bench/mvcc_scan.h"
#include "bench/rocksdb_common.h"

namespace strata::bench {
namespace {

constexpr int kReadsPerRefresh = 10000;

void Check(const rocksdb::Status& status, std::string_view what) {
  if (!status.ok()) Fatal("rocksdb " + std::string(what) + ": " + status.ToString());
}

// MvccScan's cursor interface over a RocksDB iterator.
class IteratorCursor {
 public:
  explicit IteratorCursor(rocksdb::Iterator* it) : it_(it) {}
  void Seek(std::string_view key) { it_->Seek(rocksdb::Slice(key.data(), key.size())); }
  void Next() { it_->Next(); }
  bool Valid() const { return it_->Valid(); }
  std::string_view key() const { return it_->key().ToStringView(); }
  std::string_view value() const { return it_->value().ToStringView(); }

 private:
  rocksdb::Iterator* it_;
};

class RocksDbAdapter final : public EngineAdapter {
 public:
  RocksDbAdapter() : dir_("rocksdb") {
    // Seeks (not point lookups) serve MVCC reads: no bloom filter.
    rocksdb::Options options = RocksDbBenchOptions(/*bloom_filter=*/false);
    rocksdb::DB* db = nullptr;
    Check(rocksdb::DB::Open(options, dir_.path(), &db), "open");
    db_.reset(db);
    write_options_.disableWAL = true;
    write_options_.sync = false;
  }

  ~RocksDbAdapter() override {
    iterator_.reset();  // must go before the DB
    if (db_) Check(db_->Close(), "close");
  }

  std::string_view name() const override { return "rocksdb"; }
  std::string_view config() const override {
    return "key ++ be64(~ts), Seek per read via one reused iterator (Refresh every 10k reads); "
           "WAL off, no sync, no compression, no bloom, 2 GiB block cache, 128 MiB memtable; "
           "flushed + compacted after load";
  }
  bool concurrent() const override { return true; }
  bool in_memory() const override { return false; }
  bool ordered() const override { return true; }

  void Put(std::string_view key, uint64_t ts, std::string_view value) override {
    EncodeMvccKey(key, ts, &write_key_);
    Check(db_->Put(write_options_, write_key_, rocksdb::Slice(value.data(), value.size())), "put");
  }

  void Settle() override {
    Check(db_->Flush(rocksdb::FlushOptions()), "flush");
    Check(db_->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr), "compact");
    iterator_.reset();  // so the next read starts from the compacted files
  }

  std::optional<std::string_view> Get(std::string_view key, uint64_t read_ts) override {
    rocksdb::Iterator* it = ReadIterator();
    EncodeMvccKey(key, read_ts, &read_key_);
    it->Seek(read_key_);
    if (!it->Valid() || !IsVersionOf(it->key().ToStringView(), key)) return std::nullopt;
    return it->value().ToStringView();
  }

  size_t Scan(std::string_view start, size_t limit, uint64_t read_ts, uint64_t* checksum) override {
    IteratorCursor cursor(ReadIterator());
    return MvccScan(cursor, start, limit, read_ts, checksum, &read_key_, &scan_key_);
  }

  std::optional<uint64_t> DiskBytes() const override { return dir_.SizeBytes(); }

 private:
  rocksdb::Iterator* ReadIterator() {
    if (!iterator_) {
      iterator_.reset(db_->NewIterator(rocksdb::ReadOptions()));
      reads_since_refresh_ = 0;
    } else if (++reads_since_refresh_ >= kReadsPerRefresh) {
      Check(iterator_->Refresh(), "iterator refresh");
      reads_since_refresh_ = 0;
    }
    return iterator_.get();
  }

  TempDir dir_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
  std::unique_ptr<rocksdb::Iterator> iterator_;  // the reader's, see the file comment
  int reads_since_refresh_ = 0;
  std::string write_key_;  // the writer's encode buffer
  std::string read_key_;   // the reader's encode buffers
  std::string scan_key_;
};

}  // namespace

std::unique_ptr<EngineAdapter> MakeRocksDbAdapter() { return std::make_unique<RocksDbAdapter>(); }

}  // namespace strata::bench
