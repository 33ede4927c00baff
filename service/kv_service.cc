#include "service/kv_service.h"

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include <xxhash.h>

#include "service/stored_value.h"

namespace strata::service {
namespace {

constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

ServiceError DamagedValue(std::string_view key) {
  return {ErrorCode::kInternal,
          "strata: a stored version of key '" + std::string(key) + "' is not an etcd value"};
}

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

// The engine range a span covers; nullopt if it covers nothing (an inverted
// range). A single key is [key, key + "\0").
std::optional<KeyRange> EngineRange(const KeySpan& span) {
  KeyRange r;
  r.start = span.key;
  if (span.range_end.empty()) {
    r.end = span.key + std::string(1, '\0');
  } else if (span.range_end == std::string_view("\0", 1)) {
    r.end = std::nullopt;
  } else {
    if (span.key >= span.range_end) return std::nullopt;
    r.end = span.range_end;
  }
  return r;
}

// A stored version as a client sees it.
std::optional<KeyValue> ToKeyValue(std::string_view key, Timestamp ts, std::string_view bytes) {
  auto sv = DecodeStoredValue(bytes);
  if (!sv) return std::nullopt;
  KeyValue kv;
  kv.key = std::string(key);
  kv.mod_revision = static_cast<int64_t>(ts.value());
  kv.create_revision = sv->create_revision == 0 ? kv.mod_revision : sv->create_revision;
  kv.version = sv->version;
  kv.lease = sv->lease;
  kv.value = std::string(sv->value);
  return kv;
}

bool CompareKv(const Compare& c, const KeyValue& kv) {
  int result = 0;
  auto cmp = [](int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); };
  switch (c.target) {
    case CompareTarget::kValue:
      result = kv.value.compare(c.value);
      result = result < 0 ? -1 : (result > 0 ? 1 : 0);
      break;
    case CompareTarget::kCreate:
      result = cmp(kv.create_revision, c.number);
      break;
    case CompareTarget::kMod:
      result = cmp(kv.mod_revision, c.number);
      break;
    case CompareTarget::kVersion:
      result = cmp(kv.version, c.number);
      break;
    case CompareTarget::kLease:
      result = cmp(kv.lease, c.number);
      break;
  }
  switch (c.result) {
    case CompareResult::kEqual:
      return result == 0;
    case CompareResult::kNotEqual:
      return result != 0;
    case CompareResult::kGreater:
      return result > 0;
    case CompareResult::kLess:
      return result < 0;
  }
  return true;
}

// Which branch each Txn (and each nested Txn of the branch taken) takes:
// all compares are evaluated against the state before the Txn, as etcd does.
struct TxnPath {
  bool succeeded = false;
  std::vector<TxnPath> nested;  // one per nested Txn op of the branch taken, in order
};

const std::vector<RequestOp>& Branch(const TxnRequest& t, bool succeeded) {
  return succeeded ? t.success : t.failure;
}

}  // namespace

std::optional<KeyRange> SpanToKeyRange(const KeySpan& span) { return EngineRange(span); }

std::optional<KeyValue> StoredToKeyValue(std::string_view key, Timestamp ts,
                                         std::string_view bytes) {
  return ToKeyValue(key, ts, bytes);
}

bool SpanContains(const KeySpan& span, std::string_view key) {
  auto r = EngineRange(span);
  return r && r->Contains(key);
}

// A write transaction in progress: reads see the state at base_revision plus
// its own writes; the writes are buffered until the writer applies them.
class KvService::WriteTxn {
 public:
  WriteTxn(const MvccStore* store, int64_t base) : store_(store), base_(base) {}

  int64_t base_revision() const { return base_; }
  int64_t revision() const { return base_ + 1; }  // the revision its writes get
  bool changed() const { return !writes_.empty(); }
  // header.revision of what ran so far (etcd: base + 1 once anything changed).
  int64_t current() const { return changed() ? revision() : base_; }

  // The key before this transaction.
  Reply<std::optional<KeyValue>> GetBase(const std::string& key) const {
    auto r = store_->Get(key, Timestamp(static_cast<uint64_t>(base_)));
    if (!r.ok()) return FromStatus(r.status());
    if (!r.value().found || r.value().deleted) return std::optional<KeyValue>();
    auto kv = ToKeyValue(key, r.value().timestamp, r.value().value);
    if (!kv) return DamagedValue(key);
    return std::optional<KeyValue>(std::move(*kv));
  }

  // The key now, this transaction's writes included.
  Reply<std::optional<KeyValue>> Get(const std::string& key) const {
    auto it = writes_.find(key);
    if (it != writes_.end()) return it->second.now;
    return GetBase(key);
  }

  // Every key in `span` at base_revision, ascending.
  Reply<std::vector<KeyValue>> ScanBase(const KeySpan& span) const {
    std::vector<KeyValue> out;
    auto range = EngineRange(span);
    if (!range) return out;
    std::optional<ServiceError> error;
    auto r = store_->ScanVisit(*range, Timestamp(static_cast<uint64_t>(base_)), kNoLimit,
                               [&](const ScanItemView& item) {
                                 if (error) return;
                                 auto kv = ToKeyValue(item.key, item.timestamp, item.value);
                                 if (!kv) {
                                   error = DamagedValue(item.key);
                                   return;
                                 }
                                 out.push_back(std::move(*kv));
                               });
    if (!r.ok()) return FromStatus(r.status());
    if (error) return *error;
    return out;
  }

  // Every key in `span` now, ascending.
  Reply<std::vector<KeyValue>> Scan(const KeySpan& span) const {
    auto base = ScanBase(span);
    if (!base.ok() || writes_.empty()) return base;
    std::map<std::string, KeyValue> merged;
    for (auto& kv : base.value()) merged.emplace(kv.key, std::move(kv));
    for (const auto& [key, w] : writes_) {
      if (!SpanContains(span, key)) continue;
      if (w.now) {
        merged[key] = *w.now;
      } else {
        merged.erase(key);
      }
    }
    std::vector<KeyValue> out;
    out.reserve(merged.size());
    for (auto& [key, kv] : merged) out.push_back(std::move(kv));
    return out;
  }

  void Put(const std::string& key, std::string_view value, int64_t lease,
           const std::optional<KeyValue>& prev) {
    KeyValue kv;
    kv.key = key;
    kv.mod_revision = revision();
    kv.create_revision = prev ? prev->create_revision : revision();
    kv.version = prev ? prev->version + 1 : 1;
    kv.lease = lease;
    kv.value = std::string(value);
    StoredValue sv;
    sv.create_revision = kv.create_revision == revision() ? 0 : kv.create_revision;
    sv.version = kv.version;
    sv.lease = lease;
    sv.value = value;
    Event e;
    e.type = Event::Type::kPut;
    e.kv = kv;
    Record(key, EncodeStoredValue(sv), std::move(kv), prev);
    // As etcd: an event that creates the key has no prev_kv, even when the
    // same Txn deleted an older life of the key first.
    if (e.kv.version != 1) e.prev_kv = writes_[key].before;
    events_.push_back(std::move(e));
  }

  void Delete(const KeyValue& prev) {
    Event e;
    e.type = Event::Type::kDelete;
    e.kv.key = prev.key;
    e.kv.mod_revision = revision();
    Record(prev.key, std::nullopt, std::nullopt, prev);
    e.prev_kv = writes_[prev.key].before;
    events_.push_back(std::move(e));
  }

  std::vector<BatchWrite> TakeWrites() {
    std::vector<BatchWrite> out;
    out.reserve(writes_.size());
    for (auto& [key, w] : writes_) out.push_back({key, std::move(w.stored)});
    return out;
  }
  // (key, lease before, lease after) for every key written.
  std::vector<std::tuple<std::string, int64_t, int64_t>> LeaseMoves() const {
    std::vector<std::tuple<std::string, int64_t, int64_t>> out;
    for (const auto& [key, w] : writes_) {
      const int64_t after = w.now ? w.now->lease : 0;
      if (w.lease_before != after) out.emplace_back(key, w.lease_before, after);
    }
    return out;
  }
  std::vector<Event> TakeEvents() { return std::move(events_); }
  // Keys that exist after this transaction less those that existed before.
  int64_t LiveKeyDelta() const {
    int64_t delta = 0;
    for (const auto& [key, w] : writes_) delta += (w.now ? 1 : 0) - (w.before ? 1 : 0);
    return delta;
  }

 private:
  struct Buffered {
    std::optional<std::string> stored;  // engine bytes; nullopt: a delete
    std::optional<KeyValue> now;        // what a read in this txn sees
    // The key before this transaction: an event's prev_kv is the key at the
    // revision before, as etcd's, even after an earlier write of the Txn.
    std::optional<KeyValue> before;
    int64_t lease_before = 0;
  };
  void Record(const std::string& key, std::optional<std::string> stored,
              std::optional<KeyValue> now, const std::optional<KeyValue>& prev) {
    auto [it, inserted] = writes_.try_emplace(key);
    if (inserted) {
      it->second.before = prev;
      it->second.lease_before = prev ? prev->lease : 0;
    }
    it->second.stored = std::move(stored);
    it->second.now = std::move(now);
  }

  const MvccStore* store_;
  const int64_t base_;
  std::map<std::string, Buffered> writes_;
  std::vector<Event> events_;
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
void KvService::ExecuteWrite(const std::function<Reply<T>(WriteTxn&)>& body, Done<T> done) {
  auto reply = std::make_shared<Reply<T>>(ServiceError{});
  uint64_t lsn = 0;
  {
    MutexLock lock(writer_mu_);
    WriteTxn txn(store_, applied_revision_);
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
  return RangeAt(request, current_revision(), nullptr);
}

Reply<RangeResponse> KvService::RangeAt(const RangeRequest& request, int64_t current,
                                        const WriteTxn* overlay) const {
  const int64_t rev = request.revision > 0 ? request.revision : current;
  if (rev > current) return etcd_errors::FutureRev();
  if (rev < compact_revision()) return etcd_errors::Compacted();

  RangeResponse resp;
  resp.header.revision = current;
  const bool filtered = request.min_mod_revision != 0 || request.max_mod_revision != 0 ||
                        request.min_create_revision != 0 || request.max_create_revision != 0;
  SortOrder order = request.sort_order;
  if (request.sort_target != SortTarget::kKey && order == SortOrder::kNone) {
    order = SortOrder::kAscend;
  }
  const bool need_all = filtered || order != SortOrder::kNone;
  const size_t limit = request.limit > 0 ? static_cast<size_t>(request.limit) : 0;

  if (overlay != nullptr && rev == current) {
    auto all = overlay->Scan(request.span);
    if (!all.ok()) return all.error();
    resp.count = static_cast<int64_t>(all.value().size());
    if (!request.count_only) resp.kvs = std::move(all.value());
  } else {
    auto range = EngineRange(request.span);
    if (range) {
      std::optional<ServiceError> error;
      int64_t count = 0;
      auto r = store_->ScanVisit(*range, Timestamp(static_cast<uint64_t>(rev)), kNoLimit,
                                 [&](const ScanItemView& item) {
                                   ++count;
                                   if (request.count_only || error) return;
                                   if (!need_all && limit != 0 && resp.kvs.size() > limit) return;
                                   auto kv = ToKeyValue(item.key, item.timestamp, item.value);
                                   if (!kv) {
                                     error = DamagedValue(item.key);
                                     return;
                                   }
                                   resp.kvs.push_back(std::move(*kv));
                                 });
      if (!r.ok()) return FromStatus(r.status());
      if (error) return *error;
      resp.count = count;
    }
  }

  auto prune = [&](auto&& drop) {
    resp.kvs.erase(std::remove_if(resp.kvs.begin(), resp.kvs.end(), drop), resp.kvs.end());
  };
  if (request.max_mod_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.mod_revision > request.max_mod_revision; });
  }
  if (request.min_mod_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.mod_revision < request.min_mod_revision; });
  }
  if (request.max_create_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.create_revision > request.max_create_revision; });
  }
  if (request.min_create_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.create_revision < request.min_create_revision; });
  }
  if (order != SortOrder::kNone) {
    auto less = [&](const KeyValue& a, const KeyValue& b) {
      switch (request.sort_target) {
        case SortTarget::kKey:
          return a.key < b.key;
        case SortTarget::kVersion:
          return a.version < b.version;
        case SortTarget::kCreate:
          return a.create_revision < b.create_revision;
        case SortTarget::kMod:
          return a.mod_revision < b.mod_revision;
        case SortTarget::kValue:
          return a.value < b.value;
      }
      return false;
    };
    if (order == SortOrder::kAscend) {
      std::stable_sort(resp.kvs.begin(), resp.kvs.end(), less);
    } else {
      std::stable_sort(resp.kvs.begin(), resp.kvs.end(),
                       [&](const KeyValue& a, const KeyValue& b) { return less(b, a); });
    }
  }
  if (limit != 0 && resp.kvs.size() > limit) {
    resp.kvs.resize(limit);
    resp.more = true;
  }
  if (request.keys_only) {
    for (auto& kv : resp.kvs) kv.value.clear();
  }
  return resp;
}

namespace {

std::optional<ServiceError> CheckPut(const PutRequest& r) {
  if (r.key.empty()) return etcd_errors::EmptyKey();
  if (r.ignore_value && !r.value.empty()) return etcd_errors::ValueProvided();
  if (r.ignore_lease && r.lease != 0) return etcd_errors::LeaseProvided();
  return std::nullopt;
}

}  // namespace

namespace {

// What a Txn's puts would add at most (etcd charges the larger branch).
uint64_t PutBytes(const std::vector<RequestOp>& ops) {
  uint64_t n = 0;
  for (const auto& op : ops) {
    if (auto* p = std::get_if<PutRequest>(&op.op)) n += p->key.size() + p->value.size();
    if (auto* t = std::get_if<std::shared_ptr<TxnRequest>>(&op.op); t && *t) {
      n += std::max(PutBytes((*t)->success), PutBytes((*t)->failure));
    }
  }
  return n;
}

}  // namespace

void KvService::Put(const PutRequest& request, Done<PutResponse> done) {
  if (auto e = CheckPut(request)) return done(*e);
  if (options_.quota && !options_.quota->Admit(request.key.size() + request.value.size())) {
    return done(etcd_errors::NoSpace());
  }
  ExecuteWrite<PutResponse>(
      [&](WriteTxn& txn) -> Reply<PutResponse> {
        // Under the writer lock: a revocation cannot slip in between.
        if (request.lease != 0 && (leases_ == nullptr || !leases_->Exists(request.lease))) {
          return etcd_errors::LeaseNotFound();
        }
        auto prev = txn.Get(request.key);
        if (!prev.ok()) return prev.error();
        const auto& p = prev.value();
        if ((request.ignore_value || request.ignore_lease) && !p) return etcd_errors::KeyNotFound();
        PutResponse resp;
        txn.Put(request.key, request.ignore_value ? std::string_view(p->value) : request.value,
                request.ignore_lease ? p->lease : request.lease, p);
        if (request.prev_kv) resp.prev_kv = p;
        resp.header.revision = txn.revision();
        return resp;
      },
      std::move(done));
}

void KvService::DeleteRange(const DeleteRangeRequest& request, Done<DeleteRangeResponse> done) {
  if (request.span.key.empty()) return done(etcd_errors::EmptyKey());
  ExecuteWrite<DeleteRangeResponse>(
      [&](WriteTxn& txn) -> Reply<DeleteRangeResponse> {
        auto kvs = txn.Scan(request.span);
        if (!kvs.ok()) return kvs.error();
        DeleteRangeResponse resp;
        for (const auto& kv : kvs.value()) txn.Delete(kv);
        resp.deleted = static_cast<int64_t>(kvs.value().size());
        if (request.prev_kv) resp.prev_kvs = std::move(kvs.value());
        resp.header.revision = txn.current();
        return resp;
      },
      std::move(done));
}

namespace {

// etcd's checkIntervals: within one branch list, no key may be put twice or
// put inside a range the same list deletes, nested Txns included (their two
// branches may put the same key, as only one runs).
struct WrittenKeys {
  std::set<std::string> puts;
  std::vector<KeySpan> deletes;
  // etcd compares the raw [key, range_end) here, without the "\0 means to
  // the end" rule of the read path, so such a delete conflicts with no put;
  // clients have come to rely on what etcd accepts, so the same is kept.
  bool Deleted(const std::string& key) const {
    for (const auto& d : deletes) {
      if (d.range_end.empty() ? key == d.key : (d.key <= key && key < d.range_end)) return true;
    }
    return false;
  }
};

std::optional<ServiceError> CheckIntervals(const std::vector<RequestOp>& ops, WrittenKeys* out) {
  WrittenKeys here;
  for (const auto& op : ops) {
    if (auto* d = std::get_if<DeleteRangeRequest>(&op.op)) here.deletes.push_back(d->span);
  }
  for (const auto& op : ops) {
    auto* t = std::get_if<std::shared_ptr<TxnRequest>>(&op.op);
    if (t == nullptr || !*t) continue;
    WrittenKeys then_keys, else_keys;
    if (auto e = CheckIntervals((*t)->success, &then_keys)) return e;
    if (auto e = CheckIntervals((*t)->failure, &else_keys)) return e;
    for (const auto& k : then_keys.puts) {
      if (here.puts.count(k) || here.Deleted(k)) return etcd_errors::DuplicateKey();
      here.puts.insert(k);
    }
    for (const auto& k : else_keys.puts) {
      if ((here.puts.count(k) && !then_keys.puts.count(k)) || here.Deleted(k)) {
        return etcd_errors::DuplicateKey();
      }
      here.puts.insert(k);
    }
    here.deletes.insert(here.deletes.end(), then_keys.deletes.begin(), then_keys.deletes.end());
    here.deletes.insert(here.deletes.end(), else_keys.deletes.begin(), else_keys.deletes.end());
  }
  for (const auto& op : ops) {
    auto* p = std::get_if<PutRequest>(&op.op);
    if (p == nullptr) continue;
    if (here.puts.count(p->key) || here.Deleted(p->key)) return etcd_errors::DuplicateKey();
    here.puts.insert(p->key);
  }
  *out = std::move(here);
  return std::nullopt;
}

std::optional<ServiceError> CheckOps(const TxnRequest& t, size_t max_ops) {
  const size_t opc = std::max({t.compare.size(), t.success.size(), t.failure.size()});
  if (opc > max_ops) return etcd_errors::TooManyOps();
  for (const auto& c : t.compare) {
    if (c.span.key.empty()) return etcd_errors::EmptyKey();
  }
  for (const auto* branch : {&t.success, &t.failure}) {
    for (const auto& op : *branch) {
      if (auto* r = std::get_if<RangeRequest>(&op.op)) {
        if (r->span.key.empty()) return etcd_errors::EmptyKey();
      } else if (auto* p = std::get_if<PutRequest>(&op.op)) {
        if (auto e = CheckPut(*p)) return e;
      } else if (auto* d = std::get_if<DeleteRangeRequest>(&op.op)) {
        if (d->span.key.empty()) return etcd_errors::EmptyKey();
      } else if (auto* n = std::get_if<std::shared_ptr<TxnRequest>>(&op.op)) {
        if (!*n) return etcd_errors::KeyNotFound();  // etcd's answer to an empty RequestOp
        if (auto e = CheckOps(**n, max_ops - opc)) return e;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<ServiceError> CheckTxnRequest(const TxnRequest& request, size_t max_txn_ops) {
  if (auto e = CheckOps(request, max_txn_ops)) return e;
  WrittenKeys ignored;
  if (auto e = CheckIntervals(request.success, &ignored)) return e;
  if (auto e = CheckIntervals(request.failure, &ignored)) return e;
  return std::nullopt;
}

void KvService::Txn(const TxnRequest& request, Done<TxnResponse> done) {
  if (auto e = CheckTxnRequest(request, options_.max_txn_ops)) return done(*e);
  if (options_.quota) {
    const uint64_t bytes = std::max(PutBytes(request.success), PutBytes(request.failure));
    if (bytes > 0 && !options_.quota->Admit(bytes)) return done(etcd_errors::NoSpace());
  }
  ExecuteWrite<TxnResponse>(
      [&](WriteTxn& txn) -> Reply<TxnResponse> {
        std::optional<ServiceError> error;
        // 1. Every compare, against the state before the Txn.
        std::function<TxnPath(const TxnRequest&)> path_of = [&](const TxnRequest& t) {
          TxnPath path;
          path.succeeded = true;
          for (const auto& c : t.compare) {
            if (error) break;
            auto kvs = c.span.range_end.empty() ? [&]() -> Reply<std::vector<KeyValue>> {
              auto kv = txn.GetBase(c.span.key);
              if (!kv.ok()) return kv.error();
              std::vector<KeyValue> v;
              if (kv.value()) v.push_back(std::move(*kv.value()));
              return v;
            }()
                : txn.ScanBase(c.span);
            if (!kvs.ok()) {
              error = kvs.error();
              break;
            }
            bool holds;
            if (kvs.value().empty()) {
              holds = c.target != CompareTarget::kValue && CompareKv(c, KeyValue{});
            } else {
              holds = std::all_of(kvs.value().begin(), kvs.value().end(),
                                  [&](const KeyValue& kv) { return CompareKv(c, kv); });
            }
            if (!holds) {
              path.succeeded = false;
              break;
            }
          }
          for (const auto& op : Branch(t, path.succeeded)) {
            if (auto* n = std::get_if<std::shared_ptr<TxnRequest>>(&op.op)) {
              path.nested.push_back(path_of(**n));
            }
          }
          return path;
        };
        const TxnPath path = path_of(request);
        if (error) return *error;

        // 2. The branch's requests can all run: etcd checks every put of the
        // path first, then every range, before applying anything.
        std::function<std::optional<ServiceError>(const TxnRequest&, const TxnPath&, bool)> check =
            [&](const TxnRequest& t, const TxnPath& p, bool puts) -> std::optional<ServiceError> {
          size_t nested = 0;
          for (const auto& op : Branch(t, p.succeeded)) {
            if (auto* put = std::get_if<PutRequest>(&op.op); put && puts) {
              if (put->ignore_value || put->ignore_lease) {
                auto kv = txn.GetBase(put->key);
                if (!kv.ok()) return kv.error();
                if (!kv.value()) return etcd_errors::KeyNotFound();
              }
              if (put->lease != 0 && (leases_ == nullptr || !leases_->Exists(put->lease))) {
                return etcd_errors::LeaseNotFound();
              }
            } else if (auto* r = std::get_if<RangeRequest>(&op.op); r && !puts) {
              if (r->revision > 0 && r->revision > txn.base_revision()) {
                return etcd_errors::FutureRev();
              }
              if (r->revision > 0 && r->revision < compact_revision()) {
                return etcd_errors::Compacted();
              }
            } else if (auto* n = std::get_if<std::shared_ptr<TxnRequest>>(&op.op)) {
              if (auto e = check(**n, p.nested[nested++], puts)) return e;
            }
          }
          return std::nullopt;
        };
        if (auto e = check(request, path, true)) return *e;
        if (auto e = check(request, path, false)) return *e;

        // 3. Run the branch; reads see the writes before them.
        std::function<Reply<TxnResponse>(const TxnRequest&, const TxnPath&)> run =
            [&](const TxnRequest& t, const TxnPath& p) -> Reply<TxnResponse> {
          TxnResponse resp;
          resp.succeeded = p.succeeded;
          size_t nested = 0;
          for (const auto& op : Branch(t, p.succeeded)) {
            if (auto* r = std::get_if<RangeRequest>(&op.op)) {
              auto rr = RangeAt(*r, txn.current(), &txn);
              if (!rr.ok()) return rr.error();
              resp.responses.emplace_back().response.emplace<RangeResponse>(std::move(rr.value()));
            } else if (auto* put = std::get_if<PutRequest>(&op.op)) {
              auto prev = txn.Get(put->key);
              if (!prev.ok()) return prev.error();
              const auto& pv = prev.value();
              if ((put->ignore_value || put->ignore_lease) && !pv) {
                return etcd_errors::KeyNotFound();
              }
              txn.Put(put->key, put->ignore_value ? std::string_view(pv->value) : put->value,
                      put->ignore_lease ? pv->lease : put->lease, pv);
              PutResponse pr;
              pr.header.revision = txn.revision();
              if (put->prev_kv) pr.prev_kv = pv;
              resp.responses.emplace_back().response.emplace<PutResponse>(std::move(pr));
            } else if (auto* d = std::get_if<DeleteRangeRequest>(&op.op)) {
              auto kvs = txn.Scan(d->span);
              if (!kvs.ok()) return kvs.error();
              for (const auto& kv : kvs.value()) txn.Delete(kv);
              DeleteRangeResponse dr;
              dr.deleted = static_cast<int64_t>(kvs.value().size());
              if (d->prev_kv) dr.prev_kvs = std::move(kvs.value());
              dr.header.revision = txn.current();
              resp.responses.emplace_back().response.emplace<DeleteRangeResponse>(std::move(dr));
            } else if (auto* n = std::get_if<std::shared_ptr<TxnRequest>>(&op.op)) {
              auto nr = run(**n, p.nested[nested++]);
              if (!nr.ok()) return nr.error();
              nr.value().header.revision = 0;  // etcd leaves a nested Txn's header empty
              resp.responses.emplace_back().response =
                  std::make_shared<TxnResponse>(std::move(nr.value()));
            }
          }
          resp.header.revision = txn.current();
          return resp;
        };
        auto result = run(request, path);
        if (result.ok()) result.value().header.revision = txn.current();
        return result;
      },
      std::move(done));
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
    result = store_->Compact(Timestamp(static_cast<uint64_t>(target)));
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
    (void)store_->Compact(Timestamp(static_cast<uint64_t>(target)));
  }
}

void KvService::CommitTransaction(const TransactionCommit& t, Done<int64_t> done) {
  ExecuteWrite<int64_t>(
      [&](WriteTxn& txn) -> Reply<int64_t> {
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
            auto range = EngineRange(span);
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
      [&](WriteTxn& txn) -> Reply<int64_t> {
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
  // Keys in order, each key's versions in order: the same history always
  // hashes the same. Each batch of keys is read under the engine's writer
  // lock for a moment; versions at or below `rev` do not change meanwhile.
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  std::string cursor;
  bool done = false;
  while (!done) {
    done = store_->ExportKeys(
        &cursor, 256, [] {},
        [&](std::string_view key, uint64_t, std::span<const ExportedVersion> versions) {
          for (const auto& v : versions) {
            if (static_cast<int64_t>(v.timestamp) > rev ||
                static_cast<int64_t>(v.timestamp) <= compacted) {
              continue;
            }
            const uint64_t header[3] = {key.size(), v.timestamp, v.deleted ? 0 : v.value.size()};
            XXH3_64bits_update(state, header, sizeof header);
            XXH3_64bits_update(state, key.data(), key.size());
            if (!v.deleted) XXH3_64bits_update(state, v.value.data(), v.value.size());
          }
        });
  }
  const uint64_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return static_cast<uint32_t>(h ^ (h >> 32));
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
