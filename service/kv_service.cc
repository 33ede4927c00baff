#include "service/kv_service.h"

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "service/history_hash.h"
#include "service/kv_rules.h"
#include "service/stored_value.h"

namespace strata::service {
namespace {

constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

ServiceError FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kCompacted:
      return etcd_errors::Compacted();
    case StatusCode::kInvalidArgument:
      return {ErrorCode::kInvalidArgument, "strata: " + std::string(s.message())};
    case StatusCode::kUnavailable:
    case StatusCode::kIoError:
      return etcd_errors::StorageFailed(std::string(s.message()));
    default:
      return {ErrorCode::kInternal, "strata: " + std::string(s.message())};
  }
}

Timestamp AtRevision(int64_t revision) { return Timestamp(static_cast<uint64_t>(revision)); }

}  // namespace

// The engine as a write request sees it: the store at the base revision.
class KvService::EngineView final : public KvView {
 public:
  EngineView(const KvService& kv, int64_t base) : kv_(kv), base_(base) {}

  Reply<std::optional<KeyValue>> Get(const std::string& key) const override {
    auto r = kv_.store_->Get(key, AtRevision(base_));
    if (!r.ok()) return FromStatus(r.status());
    if (!r.value().found || r.value().deleted) return std::optional<KeyValue>();
    auto kv = StoredToKeyValue(key, r.value().timestamp, r.value().value);
    if (!kv) return DamagedValue(key);
    return std::optional<KeyValue>(std::move(*kv));
  }

  Reply<std::vector<KeyValue>> Scan(const KeySpan& span) const override {
    std::vector<KeyValue> out;
    int64_t count = 0;
    if (auto e = kv_.ScanEngine(span, base_, kNoLimit, &out, &count)) return *e;
    return out;
  }

  Reply<RangeResponse> RangeAt(const RangeRequest& request, int64_t revision,
                               int64_t current) const override {
    return kv_.RangeFromEngine(request, revision, current);
  }

  bool LeaseExists(int64_t lease) const override {
    return kv_.leases_ != nullptr && kv_.leases_->Exists(lease);
  }
  int64_t compact_revision() const override { return kv_.compact_revision(); }

 private:
  const KvService& kv_;
  const int64_t base_;
};

KvService::KvService(MvccStore* store, CommitPipeline* pipeline, LeaseKeys* leases,
                     KvServiceOptions options)
    : store_(store), pipeline_(pipeline), leases_(leases), options_(options) {
  const auto max_ts = store_->max_timestamp();
  applied_revision_ =
      std::max<int64_t>(kFirstRevision, max_ts ? static_cast<int64_t>(max_ts->value()) : 0);
  // -1: never compacted (etcd's starting point, so that Compact(0) succeeds
  // once, as etcd's does).
  const auto horizon = static_cast<int64_t>(store_->compaction_horizon().value());
  compact_revision_ = horizon > 0 ? horizon : -1;
  // Counted once here (a recovered store), then kept by every write.
  int64_t live = 0;
  auto r = store_->ScanVisit(KeyRange::All(), Timestamp::Max(), kNoLimit,
                             [&](const ScanItemView&) { ++live; });
  (void)r;  // Timestamp::Max() is never below the horizon
  live_keys_ = live;
}

template <typename T>
void KvService::ExecuteWrite(const std::function<Reply<T>(TxnOverlay&)>& body, Done<T> done) {
  auto reply = std::make_shared<Reply<T>>(ServiceError{});
  uint64_t lsn = 0;
  {
    MutexLock lock(writer_mu_);
    const EngineView view(*this, applied_revision_);
    TxnOverlay txn(view, applied_revision_, applied_revision_ + 1);
    *reply = body(txn);
    if (reply->ok() && txn.changed()) {
      const int64_t revision = txn.revision();
      const auto writes = txn.TakeWrites();
      Status s = store_->ApplyBatch(writes, Timestamp(static_cast<uint64_t>(revision)), &lsn);
      if (!s.ok()) {
        done(FromStatus(s));
        return;
      }
      applied_revision_ = revision;
      live_keys_.fetch_add(txn.LiveKeyDelta(), std::memory_order_relaxed);
      if (leases_) {
        for (const auto& [key, from, to] : txn.LeaseMoves()) leases_->Move(key, from, to);
      }
      pipeline_->Applied(revision, lsn, txn.TakeEvents());
    }
  }
  // Even a refusal or a read-only Txn waits: what it looked at may not be
  // durable yet, and no reply may show what a crash could take back.
  pipeline_->WhenDurable(
      [reply, done = std::move(done)](bool durable) {
        if (durable) {
          done(std::move(*reply));
        } else {
          done(etcd_errors::StorageFailed("the write may or may not survive a restart"));
        }
      },
      lsn);
}

Reply<RangeResponse> KvService::Range(const RangeRequest& request) const {
  if (request.span.key.empty()) return etcd_errors::EmptyKey();
  const int64_t current = current_revision();
  const int64_t rev = request.revision > 0 ? request.revision : current;
  if (rev > current) return etcd_errors::FutureRev();
  if (rev < compact_revision()) return etcd_errors::Compacted();
  return RangeFromEngine(request, rev, current);
}

std::optional<ServiceError> KvService::ScanEngine(const KeySpan& span, int64_t revision,
                                                  size_t keep, std::vector<KeyValue>* out,
                                                  int64_t* count) const {
  auto range = SpanToKeyRange(span);
  if (!range) return std::nullopt;
  std::optional<ServiceError> error;
  auto r = store_->ScanVisit(*range, AtRevision(revision), kNoLimit, [&](const ScanItemView& item) {
    ++*count;
    if (error || out->size() >= keep) return;
    auto kv = StoredToKeyValue(item.key, item.timestamp, item.value);
    if (!kv) {
      error = DamagedValue(item.key);
      return;
    }
    out->push_back(std::move(*kv));
  });
  if (!r.ok()) return FromStatus(r.status());
  return error;
}

Reply<RangeResponse> KvService::RangeFromEngine(const RangeRequest& request, int64_t revision,
                                                int64_t current) const {
  // Without filters or a sort, the first limit + 1 keys decide the reply
  // (the one past the limit says there are more); the rest are counted.
  size_t keep = kNoLimit;
  if (request.count_only) {
    keep = 0;
  } else if (request.limit > 0 && !RangeNeedsAll(request)) {
    keep = static_cast<size_t>(request.limit) + 1;
  }
  std::vector<KeyValue> kvs;
  int64_t count = 0;
  if (auto e = ScanEngine(request.span, revision, keep, &kvs, &count)) return *e;
  return ShapeRange(request, std::move(kvs), count, current);
}

void KvService::Put(const PutRequest& request, Done<PutResponse> done) {
  if (auto e = CheckPut(request)) return done(*e);
  if (options_.quota && !options_.quota->Admit(request.key.size() + request.value.size())) {
    return done(etcd_errors::NoSpace());
  }
  // Under the writer lock: a revocation cannot slip in between the lease
  // check and the write.
  ExecuteWrite<PutResponse>(
      [&](TxnOverlay& txn) -> Reply<PutResponse> {
        if (request.lease != 0 && !txn.view().LeaseExists(request.lease)) {
          return etcd_errors::LeaseNotFound();
        }
        return RunPut(request, txn);
      },
      std::move(done));
}

void KvService::DeleteRange(const DeleteRangeRequest& request, Done<DeleteRangeResponse> done) {
  if (request.span.key.empty()) return done(etcd_errors::EmptyKey());
  ExecuteWrite<DeleteRangeResponse>([&](TxnOverlay& txn) { return RunDeleteRange(request, txn); },
                                    std::move(done));
}

void KvService::Txn(const TxnRequest& request, Done<TxnResponse> done) {
  if (auto e = CheckTxnRequest(request, options_.max_txn_ops)) return done(*e);
  if (options_.quota) {
    const uint64_t bytes = TxnPutBytes(request);
    if (bytes > 0 && !options_.quota->Admit(bytes)) return done(etcd_errors::NoSpace());
  }
  ExecuteWrite<TxnResponse>([&](TxnOverlay& txn) { return RunTxn(request, txn); }, std::move(done));
}

void KvService::Compact(const CompactionRequest& request, Done<CompactionResponse> done) {
  CompactionResponse resp;
  {
    MutexLock lock(writer_mu_);
    if (request.revision > applied_revision_) return done(etcd_errors::FutureRev());
    if (request.revision <= compact_revision_.load()) return done(etcd_errors::Compacted());
    compact_revision_ = request.revision;
    resp.header.revision = applied_revision_;
  }
  // The sweep takes the engine's writer lock in bounded batches only, so
  // writers go on meanwhile; the reply waits for the horizon's log record.
  // Watchers that keep up may hold the physical part back (the rest is
  // done by ApplyDeferredCompaction); reads below the revision are refused
  // from now on either way.
  int64_t target = request.revision;
  if (options_.compaction_floor) target = std::min(target, options_.compaction_floor());
  CompactResult result;
  if (target > static_cast<int64_t>(store_->compaction_horizon().value())) {
    result = store_->Compact(AtRevision(target));
  }
  pipeline_->WhenDurable(
      [resp, done = std::move(done)](bool durable) {
        if (durable) {
          done(resp);
        } else {
          done(etcd_errors::StorageFailed("the compaction may or may not survive a restart"));
        }
      },
      result.lsn);
}

void KvService::ApplyDeferredCompaction() {
  int64_t target = compact_revision();
  if (options_.compaction_floor) target = std::min(target, options_.compaction_floor());
  if (target > static_cast<int64_t>(store_->compaction_horizon().value())) {
    (void)store_->Compact(AtRevision(target));
  }
}

void KvService::CommitTransaction(const TransactionCommit& t, Done<int64_t> done) {
  ExecuteWrite<int64_t>(
      [&](TxnOverlay& txn) -> Reply<int64_t> {
        auto conflict = [](std::string_view key) {
          return ServiceError{ErrorCode::kAborted,
                              "strata: transaction conflict on key '" + std::string(key) + "'"};
        };
        const Timestamp snapshot(static_cast<uint64_t>(t.snapshot));
        // First committer wins: nothing it writes changed after its snapshot.
        for (const auto& [key, value] : t.writes) {
          auto latest = store_->LatestTimestamp(key);
          if (latest && *latest > snapshot) return conflict(key);
        }
        if (t.serializable) {
          for (const auto& key : t.reads) {
            auto latest = store_->LatestTimestamp(key);
            if (latest && *latest > snapshot) return conflict(key);
          }
          for (const auto& span : t.scans) {
            auto range = SpanToKeyRange(span);
            if (!range) continue;
            if (auto key = store_->FirstKeyWrittenAfter(*range, snapshot)) return conflict(*key);
          }
        }
        for (const auto& [key, value] : t.writes) {
          auto prev = txn.Get(key);
          if (!prev.ok()) return prev.error();
          if (value) {
            txn.Put(key, *value, 0, prev.value());
          } else if (prev.value()) {
            txn.Delete(*prev.value());
          }
        }
        return txn.changed() ? txn.revision() : t.snapshot;
      },
      std::move(done));
}

void KvService::RevokeLease(int64_t lease, Done<int64_t> done) {
  ExecuteWrite<int64_t>(
      [&](TxnOverlay& txn) -> Reply<int64_t> {
        auto keys = leases_ ? leases_->End(lease) : std::nullopt;
        if (!keys) return etcd_errors::LeaseNotFound();
        for (const auto& key : *keys) {
          auto kv = txn.Get(key);
          if (!kv.ok()) return kv.error();
          if (kv.value() && kv.value()->lease == lease) txn.Delete(*kv.value());
        }
        return txn.current();
      },
      std::move(done));
}

Reply<uint32_t> KvService::HashKV(int64_t revision) const {
  const int64_t current = current_revision();
  const int64_t rev = revision > 0 ? revision : current;
  if (rev > current) return etcd_errors::FutureRev();
  const int64_t compacted = compact_revision();
  if (rev < compacted) return etcd_errors::Compacted();
  // Batches of keys, each read under the engine's writer lock for a
  // moment; versions at or below `rev` do not change meanwhile.
  HistoryHasher hasher(store_, rev, compacted, "");
  while (!hasher.Step(256)) {
  }
  return hasher.Digest();
}

void KvService::ForEachLeasedKey(
    const std::function<void(const std::string& key, int64_t lease)>& f) const {
  auto r =
      store_->ScanVisit(KeyRange::All(), Timestamp::Max(), kNoLimit, [&](const ScanItemView& item) {
        auto sv = DecodeStoredValue(item.value);
        if (sv && sv->lease != 0) f(std::string(item.key), sv->lease);
      });
  (void)r;  // Timestamp::Max() is never below the horizon
}

}  // namespace strata::service
