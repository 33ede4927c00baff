// lmdb: the copy-on-write B+tree peer, with MVCC versions encoded in its
// keys (mvcc_key_codec.h). Opened without any syncing (MDB_NOSYNC,
// MDB_NOMETASYNC) and with a writable memory map, so that it is measured as
// an in-memory-ish store like the others. The map is 16 GiB of sparse
// address space; only what is written takes disk or memory.
//
// Writes are batched into transactions of kPutsPerTxn puts (one transaction
// per put would measure commit overhead, not the tree). Reads share one
// read-only transaction renewed every kReadsPerTxn reads, through one
// cursor and MDB_SET_RANGE: a long-lived reader would pin old pages while a
// writer runs, and a transaction per read would measure transaction setup.
#include <lmdb.h>

#include <string>

#include "bench/bench_util.h"
#include "bench/engine_adapter.h"
#include "bench/mvcc_key_codec.h"
#include "bench/mvcc_scan.h"

namespace strata::bench {
namespace {

constexpr int kPutsPerTxn = 10000;
constexpr int kReadsPerTxn = 10000;
constexpr size_t kMapSize = size_t{16} << 30;

void Check(int rc, std::string_view what) {
  if (rc != MDB_SUCCESS) Fatal("lmdb " + std::string(what) + ": " + mdb_strerror(rc));
}

MDB_val ToVal(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

std::string_view ToView(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// MvccScan's cursor interface over an LMDB cursor.
class LmdbCursor {
 public:
  explicit LmdbCursor(MDB_cursor* cursor) : cursor_(cursor) {}
  void Seek(std::string_view key) {
    key_ = ToVal(key);
    valid_ = mdb_cursor_get(cursor_, &key_, &value_, MDB_SET_RANGE) == MDB_SUCCESS;
  }
  void Next() { valid_ = mdb_cursor_get(cursor_, &key_, &value_, MDB_NEXT) == MDB_SUCCESS; }
  bool Valid() const { return valid_; }
  std::string_view key() const { return ToView(key_); }
  std::string_view value() const { return ToView(value_); }

 private:
  MDB_cursor* cursor_;
  MDB_val key_{};
  MDB_val value_{};
  bool valid_ = false;
};

class LmdbAdapter final : public EngineAdapter {
 public:
  LmdbAdapter() : dir_("lmdb") {
    Check(mdb_env_create(&env_), "env_create");
    Check(mdb_env_set_mapsize(env_, kMapSize), "set_mapsize");
    // MDB_NOTLS: the read transaction belongs to the adapter, not to a thread.
    Check(mdb_env_open(env_, dir_.path().c_str(),
                       MDB_NOSYNC | MDB_WRITEMAP | MDB_NOMETASYNC | MDB_NOTLS, 0644),
          "env_open");
    MDB_txn* txn = nullptr;
    Check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    Check(mdb_dbi_open(txn, nullptr, 0, &dbi_), "dbi_open");
    Check(mdb_txn_commit(txn), "txn_commit");
  }

  ~LmdbAdapter() override {
    if (read_cursor_ != nullptr) mdb_cursor_close(read_cursor_);
    if (read_txn_ != nullptr) mdb_txn_abort(read_txn_);
    if (write_txn_ != nullptr) mdb_txn_abort(write_txn_);
    mdb_env_close(env_);
  }

  std::string_view name() const override { return "lmdb"; }
  std::string_view config() const override {
    return "key ++ be64(~ts), MDB_SET_RANGE per read; NOSYNC|WRITEMAP|NOMETASYNC, 16 GiB map, "
           "10k puts per write txn, read txn renewed every 10k reads";
  }
  bool concurrent() const override { return true; }
  bool in_memory() const override { return false; }
  bool ordered() const override { return true; }

  void Put(std::string_view key, uint64_t ts, std::string_view value) override {
    if (write_txn_ == nullptr) Check(mdb_txn_begin(env_, nullptr, 0, &write_txn_), "txn_begin");
    EncodeMvccKey(key, ts, &write_key_);
    MDB_val k = ToVal(write_key_);
    MDB_val v = ToVal(value);
    Check(mdb_put(write_txn_, dbi_, &k, &v, 0), "put");
    if (++puts_in_txn_ >= kPutsPerTxn) FlushWrites();
  }

  void FlushWrites() override {
    if (write_txn_ == nullptr) return;
    Check(mdb_txn_commit(write_txn_), "txn_commit");
    write_txn_ = nullptr;
    puts_in_txn_ = 0;
  }

  // Drops the reader's snapshot so the next read sees everything loaded.
  void Settle() override {
    if (read_cursor_ != nullptr) mdb_cursor_close(read_cursor_);
    if (read_txn_ != nullptr) mdb_txn_abort(read_txn_);
    read_cursor_ = nullptr;
    read_txn_ = nullptr;
  }

  std::optional<std::string_view> Get(std::string_view key, uint64_t read_ts) override {
    MDB_cursor* cursor = ReadCursor();
    EncodeMvccKey(key, read_ts, &read_key_);
    MDB_val k = ToVal(read_key_);
    MDB_val v;
    const int rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    Check(rc, "cursor_get");
    if (!IsVersionOf(ToView(k), key)) return std::nullopt;
    return ToView(v);
  }

  size_t Scan(std::string_view start, size_t limit, uint64_t read_ts, uint64_t* checksum) override {
    LmdbCursor cursor(ReadCursor());
    return MvccScan(cursor, start, limit, read_ts, checksum, &read_key_, &scan_key_);
  }

  std::optional<uint64_t> DiskBytes() const override {
    // The data file is sparse; what counts is the pages in use.
    MDB_stat stat;
    MDB_envinfo info;
    mdb_env_stat(env_, &stat);
    mdb_env_info(env_, &info);
    return static_cast<uint64_t>(info.me_last_pgno + 1) * stat.ms_psize;
  }

 private:
  MDB_cursor* ReadCursor() {
    if (read_txn_ == nullptr) {
      Check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &read_txn_), "read txn_begin");
      Check(mdb_cursor_open(read_txn_, dbi_, &read_cursor_), "cursor_open");
      reads_in_txn_ = 0;
    } else if (++reads_in_txn_ >= kReadsPerTxn) {
      mdb_txn_reset(read_txn_);
      Check(mdb_txn_renew(read_txn_), "txn_renew");
      Check(mdb_cursor_renew(read_txn_, read_cursor_), "cursor_renew");
      reads_in_txn_ = 0;
    }
    return read_cursor_;
  }

  TempDir dir_;
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  MDB_txn* write_txn_ = nullptr;  // the writer's open batch
  int puts_in_txn_ = 0;
  MDB_txn* read_txn_ = nullptr;  // the reader's snapshot
  MDB_cursor* read_cursor_ = nullptr;
  int reads_in_txn_ = 0;
  std::string write_key_;
  std::string read_key_;
  std::string scan_key_;
};

}  // namespace

std::unique_ptr<EngineAdapter> MakeLmdbAdapter() { return std::make_unique<LmdbAdapter>(); }

}  // namespace strata::bench
