// Property: whatever a random history does (raw puts and deletes,
// transactions committed, conflicting or aborted, compactions, checkpoints),
// closing the store and opening it again, in any sync mode, gives back
// exactly the same store: every version a read at or above the horizon can
// see with its version number, timestamp and value or tombstone, the
// horizon, max_timestamp, and an oracle that starts above every timestamp it
// handed out before.
//
// Comparing the store with itself across a reopen cannot see state that no
// read shows, such as a key's write count after compaction forgot the key.
// So an in-memory twin MvccStore receives every change the durable store
// accepted (raw writes with the same timestamp, commits as one batch at the
// commit timestamp, compactions to the horizon reached), and the two must
// agree on every write's result and, at every reopen, on the whole state.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage_test_support.h"
#include "strata/mvcc_store.h"
#include "strata/store.h"
#include "strata/txn_store.h"

namespace strata::storage_testing {
namespace {

using namespace std::string_literals;

// A handful of keys (with "", '\0' and 0xff bytes), so histories collide.
const std::vector<std::string> kKeys = {"a"s, "b"s, "c"s, "d"s, ""s, "\0k"s, "\xffz"s};

rc::Gen<std::string> GenKey() { return rc::gen::elementOf(kKeys); }

// Mostly short values; some stored out of line (> 22 bytes); rarely one
// larger than a whole log segment.
rc::Gen<std::string> GenValue() {
  return rc::gen::weightedOneOf<std::string>({
      {10, rc::gen::element(""s, "x"s, "yy"s, "v1"s, "\0\xff"s)},
      {3, rc::gen::map(rc::gen::inRange(23, 300), [](int n) { return std::string(n, 'L'); })},
      {1, rc::gen::just(std::string(5000, 'H'))},
  });
}

enum class OpKind {
  kRawPut,
  kRawDelete,
  kBegin,
  kTxnPut,
  kTxnDelete,
  kTxnGet,
  kCommit,
  kAbort,
  kCompact,
  kCheckpoint,
  kReopen,
};

rc::Gen<OpKind> GenOpKind() {
  return rc::gen::weightedElement<OpKind>({
      {8, OpKind::kRawPut},
      {3, OpKind::kRawDelete},
      {4, OpKind::kBegin},
      {7, OpKind::kTxnPut},
      {2, OpKind::kTxnDelete},
      {2, OpKind::kTxnGet},
      {4, OpKind::kCommit},
      {1, OpKind::kAbort},
      {3, OpKind::kCompact},
      {2, OpKind::kCheckpoint},
      {2, OpKind::kReopen},
  });
}

// fsyncs cost milliseconds here: mostly kNone, every mode regularly.
rc::Gen<SyncMode> GenSyncMode() {
  return rc::gen::weightedElement<SyncMode>(
      {{3, SyncMode::kNone}, {1, SyncMode::kBatch}, {1, SyncMode::kAlways}});
}

TxnOptions WithIsolation(Isolation isolation) {
  TxnOptions options;
  options.isolation = isolation;
  return options;
}

struct LiveTxn {
  Transaction txn;
  // Its writes as they will be committed: the last write of each key wins.
  std::map<std::string, std::optional<std::string>> writes;
};

// The durable store under test, its in-memory twin, and what the history
// has handed out so far.
class Harness {
 public:
  explicit Harness(std::string dir) : dir_(std::move(dir)) {
    options_.durability.batch_delay = std::chrono::microseconds(100);
    // Sometimes background checkpoints too, racing with everything else.
    options_.durability.checkpoint_after_log_bytes = *rc::gen::element<uint64_t>(0, 0, 8192);
    Open();
  }

  ~Harness() {
    live_.clear();  // transactions go before their store
  }

  void Step(OpKind kind) {
    switch (kind) {
      case OpKind::kRawPut:
      case OpKind::kRawDelete:
        return RawWrite(kind == OpKind::kRawPut);
      case OpKind::kBegin:
        return Begin();
      case OpKind::kTxnPut:
      case OpKind::kTxnDelete:
      case OpKind::kTxnGet:
        return TxnOp(kind);
      case OpKind::kCommit:
        return Commit();
      case OpKind::kAbort:
        return Abort();
      case OpKind::kCompact:
        return Compact();
      case OpKind::kCheckpoint: {
        Log("Checkpoint");
        checkpoint_since_reopen_ = true;
        const Status s = store_->Checkpoint();
        RC_ASSERT(s.ok());
        return;
      }
      case OpKind::kReopen:
        return Reopen();
    }
  }

  void Reopen() {
    for (LiveTxn& live : live_) live.txn.Abort();
    live_.clear();
    const StoreState before = CaptureState(store_->mvcc(), kKeys);
    // The twin is the store without durability: if they differ before the
    // reopen, the harness itself is wrong (or the write path is).
    Check("durable store vs in-memory twin before reopen", CaptureState(twin_, kKeys), before);
    Timestamp bound = std::max(highest_issued_, before.horizon);
    if (before.max_timestamp) bound = std::max(bound, *before.max_timestamp);

    const StoreStats stats_before = store_->mvcc().GetStats();
    ++coverage_.reopens;
    if (checkpoint_since_reopen_) ++coverage_.reopens_after_checkpoint;
    checkpoint_since_reopen_ = false;

    store_.reset();
    Open();
    Check("state after reopen", before, CaptureState(store_->mvcc(), kKeys));
    // Recovery may sweep what compaction made invisible, never bring it back.
    const StoreStats stats_after = store_->mvcc().GetStats();
    if (stats_after.versions > stats_before.versions || stats_after.keys > stats_before.keys) {
      Fail(StrCat("after reopen the store holds ", std::to_string(stats_after.keys), " keys and ",
                  std::to_string(stats_after.versions), " versions, before it held ",
                  std::to_string(stats_before.keys), " and ",
                  std::to_string(stats_before.versions)));
    }

    Result<Transaction> probe = store_->db().Begin();
    RC_ASSERT(probe.ok());
    Log("  probe begin at " + std::to_string(probe->start_timestamp().value()) +
        ", must be above " + std::to_string(bound.value()));
    if (probe->start_timestamp() <= bound) {
      Fail("after reopen the oracle handed out " +
           std::to_string(probe->start_timestamp().value()) + ", not above " +
           std::to_string(bound.value()) + " issued or written before");
    }
    highest_issued_ = probe->start_timestamp();
    probe->Abort();
  }

 private:
  void Open() {
    options_.durability.sync = *GenSyncMode();
    // The segment size may change between opens (the log must not assume
    // the files it finds were written with today's size).
    options_.durability.segment_bytes = *rc::gen::element<uint64_t>(1024, 4096);
    Log(std::string("Open (") + SyncModeName(options_.durability.sync) + ", segments of " +
        std::to_string(options_.durability.segment_bytes) + " bytes)");
    Result<std::unique_ptr<Store>> store = Store::Open(dir_, options_);
    if (!store.ok()) Fail("Open failed: " + StatusText(store.status()));
    store_ = std::move(*store);
  }

  void RawWrite(bool put) {
    const std::string key = *GenKey();
    const std::string value = put ? *GenValue() : "";
    // Near the newest timestamps, sometimes at or below the horizon or a
    // live snapshot.
    const int64_t base = static_cast<int64_t>(
        std::max(store_->db().oracle().Last(), store_->mvcc().compaction_horizon()).value());
    const uint64_t ts =
        static_cast<uint64_t>(std::max<int64_t>(0, base + *rc::gen::inRange(-4, 5)));
    Log(std::string(put ? "RawPut(" : "RawDelete(") + EscapeBytes(key) +
        (put ? ", " + std::to_string(value.size()) + " bytes" : "") + ", ts " + std::to_string(ts) +
        ")");
    Result<WriteResult> durable = put ? store_->db().RawPut(key, value, Timestamp(ts))
                                      : store_->db().RawDelete(key, Timestamp(ts));
    const bool below_snapshot = std::any_of(live_.begin(), live_.end(), [&](const LiveTxn& live) {
      return live.txn.start_timestamp().value() >= ts;
    });
    if (below_snapshot) {
      // Refused before it reached the engine; the twin has no snapshots.
      if (durable.ok()) Fail("a raw write at or below a live snapshot was accepted");
      return;
    }
    Result<WriteResult> expected =
        put ? twin_.Put(key, value, Timestamp(ts)) : twin_.Delete(key, Timestamp(ts));
    if (durable.status().code() != expected.status().code()) {
      Fail("the durable store answered " + StatusText(durable.status()) + ", the in-memory one " +
           StatusText(expected.status()));
    }
    if (durable.ok() &&
        (durable->version != expected->version || durable->timestamp != expected->timestamp ||
         durable->retry != expected->retry)) {
      Fail("write result differs: durable version " + std::to_string(durable->version) +
           (durable->retry ? " (retry)" : "") + ", in-memory version " +
           std::to_string(expected->version) + (expected->retry ? " (retry)" : ""));
    }
  }

  void Begin() {
    if (live_.size() >= 2) return;
    const Isolation isolation = *rc::gen::element(Isolation::kSnapshot, Isolation::kSerializable);
    Result<Transaction> txn = store_->db().Begin(WithIsolation(isolation));
    RC_ASSERT(txn.ok());
    Log("Begin -> txn at " + std::to_string(txn->start_timestamp().value()));
    if (txn->start_timestamp() <= highest_issued_) Fail("Begin handed out a timestamp again");
    highest_issued_ = txn->start_timestamp();
    live_.push_back(LiveTxn{std::move(*txn), {}});
  }

  LiveTxn* PickLive() {
    if (live_.empty()) return nullptr;
    return &live_[*rc::gen::inRange<size_t>(0, live_.size())];
  }

  void TxnOp(OpKind kind) {
    LiveTxn* live = PickLive();
    if (live == nullptr) return;
    const std::string key = *GenKey();
    const std::string at = " in txn at " + std::to_string(live->txn.start_timestamp().value());
    if (kind == OpKind::kTxnGet) {
      Log("Get(" + EscapeBytes(key) + ")" + at);
      RC_ASSERT(live->txn.Get(key).ok());
    } else if (kind == OpKind::kTxnPut) {
      const std::string value = *GenValue();
      Log("Put(" + EscapeBytes(key) + ", " + std::to_string(value.size()) + " bytes)" + at);
      RC_ASSERT(live->txn.Put(key, value).ok());
      live->writes[key] = value;
    } else {
      Log("Delete(" + EscapeBytes(key) + ")" + at);
      RC_ASSERT(live->txn.Delete(key).ok());
      live->writes[key] = std::nullopt;
    }
  }

  void Commit() {
    LiveTxn* live = PickLive();
    if (live == nullptr) return;
    Result<Timestamp> committed = live->txn.Commit();
    Log("Commit txn at " + std::to_string(live->txn.start_timestamp().value()) + " (" +
        std::to_string(live->writes.size()) + " writes) -> " +
        (committed.ok() ? "ts " + std::to_string(committed->value())
                        : StatusText(committed.status())));
    if (!committed.ok() && committed.status().code() == StatusCode::kConflict)
      ++coverage_.conflicts;
    if (committed.ok() && !live->writes.empty()) {
      ++coverage_.commits;
      if (*committed <= highest_issued_) Fail("Commit handed out a timestamp again");
      highest_issued_ = *committed;
      std::vector<BatchWrite> batch;
      for (const auto& [key, value] : live->writes) batch.push_back(BatchWrite{key, value});
      const Status applied = twin_.ApplyBatch(batch, *committed);
      if (!applied.ok()) {
        Fail("the durable store committed a batch the in-memory one refuses: " +
             StatusText(applied));
      }
    } else if (!committed.ok() && committed.status().code() != StatusCode::kConflict) {
      Fail("Commit failed: " + StatusText(committed.status()));
    }
    live_.erase(live_.begin() + (live - live_.data()));
  }

  void Abort() {
    LiveTxn* live = PickLive();
    if (live == nullptr) return;
    Log("Abort txn at " + std::to_string(live->txn.start_timestamp().value()));
    live->txn.Abort();
    live_.erase(live_.begin() + (live - live_.data()));
  }

  void Compact() {
    const uint64_t horizon = store_->mvcc().compaction_horizon().value();
    const uint64_t last = store_->db().oracle().Last().value();
    const uint64_t requested =
        *rc::gen::element(horizon + 1, horizon + 3, last > 2 ? last - 2 : 0, last);
    const CompactResult durable = store_->db().Compact(Timestamp(requested));
    Log("Compact(" + std::to_string(requested) + ") -> horizon " +
        std::to_string(durable.horizon.value()) + ", removed " +
        std::to_string(durable.versions_removed));
    if (durable.versions_removed > 0) ++coverage_.compactions_that_removed;
    const CompactResult expected = twin_.Compact(durable.horizon);
    if (expected.horizon != durable.horizon ||
        expected.versions_removed != durable.versions_removed) {
      Fail("in memory the same compaction reached horizon " +
           std::to_string(expected.horizon.value()) + " and removed " +
           std::to_string(expected.versions_removed));
    }
  }

  void Check(const std::string& what, const StoreState& expected, const StoreState& actual) {
    const std::string difference = DescribeDifference(expected, actual);
    if (!difference.empty())
      Fail(what + " differs:\n" + difference + "expected:\n" + ToString(expected));
  }

  void Log(std::string line) { trace_.push_back(std::move(line)); }

 public:
  // What the history exercised, for rapidcheck's summary of the runs.
  struct Coverage {
    int reopens = 0;
    int reopens_after_checkpoint = 0;  // a checkpoint, then writes, then the reopen
    int compactions_that_removed = 0;
    int conflicts = 0;
    int commits = 0;
  };
  const Coverage& coverage() const { return coverage_; }

 private:
  Coverage coverage_;
  bool checkpoint_since_reopen_ = false;

  [[noreturn]] void Fail(const std::string& why) {
    std::string message = why + "\nafter these steps:\n";
    for (const std::string& line : trace_) message += "  " + line + "\n";
    RC_FAIL(message);
  }

  const std::string dir_;
  StoreOpenOptions options_;
  std::unique_ptr<Store> store_;
  MvccStore twin_;
  std::vector<LiveTxn> live_;
  Timestamp highest_issued_;
  std::vector<std::string> trace_;
};

RC_GTEST_PROP(StoreRoundTripProperty, ReopenRestoresExactlyTheSameState, ()) {
  TempDir dir;
  Harness harness(dir.path());
  // Not scaled by rapidcheck's size (which starts at 0): even the first
  // runs get histories long enough to reach a reopen in the middle.
  const int steps = *rc::gen::resize(100, rc::gen::inRange(1, 80));
  for (int i = 0; i < steps; ++i) harness.Step(*GenOpKind());
  harness.Reopen();  // every history ends with at least one reopen
  const Harness::Coverage& coverage = harness.coverage();
  RC_TAG(coverage.reopens > 1 ? "reopened mid-history" : "reopened at the end only");
  if (coverage.reopens_after_checkpoint > 0) RC_TAG("reopened after a checkpoint");
  if (coverage.compactions_that_removed > 0) RC_TAG("compaction removed versions");
  if (coverage.commits > 0) RC_TAG("committed a transaction");
  if (coverage.conflicts > 0) RC_TAG("a commit conflicted");
}

}  // namespace
}  // namespace strata::storage_testing
