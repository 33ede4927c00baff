// strata: strata::TxnStore over strata::MvccStore, through the public
// transaction API (Begin, Transaction::Get/Put/Commit). Optimistic: reads
// never wait, conflicts are found at commit (first committer wins; in
// serializable mode the read set is validated too).
//
// Garbage collection: TxnStore does not collect on its own (strata-node
// runs a scheduler for that), so the adapter compacts to the latest
// timestamp between timed runs, untimed. Within a run version chains grow;
// reads at a fresh snapshot find the newest version first.
#include <optional>
#include <string>

#include "bench/bench_util.h"
#include "bench/txn_adapter.h"
#include "strata/mvcc_store.h"
#include "strata/txn_store.h"

namespace strata::bench {
namespace {

// The load's timestamp: below every transaction's, which the oracle
// hands out above it once RawPut has shown it the timestamp.
constexpr uint64_t kLoadTs = 1;

class StrataTxnSession final : public TxnSession {
 public:
  StrataTxnSession(TxnStore* db, TxnIsolation isolation)
      : db_(db),
        isolation_(isolation == TxnIsolation::kSerializable ? Isolation::kSerializable
                                                            : Isolation::kSnapshot) {}

  void Begin(bool read_only) override {
    TxnOptions options;
    options.isolation = isolation_;
    options.read_only = read_only;
    Result<Transaction> txn = db_->Begin(options);
    if (!txn.ok()) Fatal("strata Begin: " + txn.status().message());
    txn_.emplace(std::move(*txn));
  }

  TxnStep Get(std::string_view key, bool /*for_update*/, uint64_t* value) override {
    Result<ReadResult> read = txn_->Get(key);
    if (!read.ok()) Fatal("strata Transaction::Get: " + read.status().message());
    if (!read->found || read->deleted) Fatal("strata: key " + std::string(key) + " is missing");
    *value = DecodeCounter(read->value);
    return TxnStep::kOk;
  }

  TxnStep Put(std::string_view key, uint64_t value) override {
    char bytes[8];
    EncodeCounter(value, bytes);
    const Status status = txn_->Put(key, std::string_view(bytes, sizeof(bytes)));
    if (!status.ok()) Fatal("strata Transaction::Put: " + status.message());
    return TxnStep::kOk;
  }

  TxnStep Commit() override {
    Result<Timestamp> committed = txn_->Commit();
    txn_.reset();
    if (committed.ok()) return TxnStep::kOk;
    if (committed.status().code() == StatusCode::kConflict) return TxnStep::kConflict;
    Fatal("strata Commit: " + committed.status().message());
  }

  void Rollback() override { txn_.reset(); }  // the destructor aborts

 private:
  TxnStore* db_;
  Isolation isolation_;
  std::optional<Transaction> txn_;
};

class StrataTxnAdapter final : public TxnAdapter {
 public:
  StrataTxnAdapter() : db_(&store_) {}

  std::string_view name() const override { return "strata"; }
  std::string_view config() const override {
    return "strata::TxnStore over MvccStore (in memory), Transaction::Get/Put/Commit; "
           "old versions compacted between timed runs (untimed), not during them";
  }
  std::string_view IsolationLabel(TxnIsolation requested) const override {
    return TxnIsolationName(requested);
  }
  bool honours_isolation() const override { return true; }
  std::string_view validation_note() const override {
    return "reads at the start snapshot; commit validates the write set (first committer "
           "wins) and, in serializable mode, every key read as well";
  }

  void Load(const std::vector<std::string>& keys) override {
    char zero[8];
    EncodeCounter(0, zero);
    for (const std::string& key : keys) {
      Result<WriteResult> result =
          db_.RawPut(key, std::string_view(zero, sizeof(zero)), Timestamp(kLoadTs));
      if (!result.ok()) Fatal("strata RawPut: " + result.status().message());
    }
  }

  void BetweenRuns() override { db_.Compact(db_.oracle().Last()); }

  std::unique_ptr<TxnSession> NewSession(TxnIsolation isolation) override {
    return std::make_unique<StrataTxnSession>(&db_, isolation);
  }

 private:
  MvccStore store_;
  TxnStore db_;  // after store_, which it points into
};

}  // namespace

std::unique_ptr<TxnAdapter> MakeStrataTxnAdapter() { return std::make_unique<StrataTxnAdapter>(); }

}  // namespace strata::bench
