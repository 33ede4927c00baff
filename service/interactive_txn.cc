#include "service/interactive_txn.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace strata::service {

struct InteractiveTxns::Txn {
  uint64_t id = 0;
  TxnIsolation isolation = TxnIsolation::kSerializable;
  bool read_only = false;
  int64_t snapshot = 0;
  Clock::time_point begun;
  std::string owner;            // set at Begin, then only read
  Mutex mu;                     // one call at a time on a transaction
  Clock::time_point last_used;  // guarded by InteractiveTxns::mu_ (not expressible here)
  TransactionCommit commit STRATA_GUARDED_BY(mu);
};

namespace txn_rules {

ServiceError NoSuchTxn(uint64_t id) {
  return {ErrorCode::kNotFound, "strata: transaction " + std::to_string(id) +
                                    " does not exist (committed, aborted or expired)"};
}

ServiceError ReadOnly() {
  return {ErrorCode::kFailedPrecondition,
          "strata: the transaction is read-only (a past revision or a follower read): it cannot "
          "write"};
}

ServiceError TooMany(const char* what, size_t limit) {
  return {ErrorCode::kInvalidArgument,
          std::string("strata: a transaction may ") + what + " at most " + std::to_string(limit)};
}

ServiceError NotOwner(uint64_t id) {
  return {ErrorCode::kPermissionDenied,
          "strata: transaction " + std::to_string(id) + " belongs to another user"};
}

std::optional<ServiceError> RefuseBegin(int64_t read_revision, const FollowerRead& follower,
                                        int64_t current, int64_t compacted) {
  if (read_revision > current) return etcd_errors::FutureRev();
  if (read_revision > 0 && read_revision < compacted) return etcd_errors::Compacted();
  if (!follower.enabled) return std::nullopt;
  if (read_revision != 0) {
    return ServiceError{ErrorCode::kInvalidArgument,
                        "strata: a follower read reads at what the member's replicas have "
                        "resolved: give min_read_revision, not read_revision"};
  }
  if (follower.min_read_revision < 0) {
    return ServiceError{ErrorCode::kInvalidArgument,
                        "strata: min_read_revision must be a revision (0 or more)"};
  }
  if (follower.min_read_revision > current) return etcd_errors::FutureRev();
  return std::nullopt;
}

std::optional<ServiceError> RefuseAnotherTxn(size_t open, size_t max_open) {
  if (open < max_open) return std::nullopt;
  return ServiceError{ErrorCode::kResourceExhausted,
                      "strata: too many open transactions (" + std::to_string(max_open) + ")"};
}

TxnRead OwnWrite(const std::string& key, const std::optional<std::string>& value) {
  TxnRead r;
  r.own_write = true;
  if (value) {
    KeyValue kv;
    kv.key = key;
    kv.value = *value;
    r.kv = std::move(kv);
  }
  return r;
}

RangeResponse OverlayWrites(std::vector<KeyValue> snapshot, int64_t revision,
                            const std::map<std::string, std::optional<std::string>>& writes,
                            const KeySpan& span, int64_t limit) {
  std::map<std::string, KeyValue> merged;
  for (auto& kv : snapshot) merged.emplace(kv.key, std::move(kv));
  for (const auto& [key, value] : writes) {
    if (!SpanContains(span, key)) continue;
    if (value) {
      KeyValue kv;
      kv.key = key;
      kv.value = *value;
      merged[key] = std::move(kv);
    } else {
      merged.erase(key);
    }
  }
  RangeResponse out;
  out.header.revision = revision;
  out.count = static_cast<int64_t>(merged.size());
  const size_t cap = limit > 0 ? static_cast<size_t>(limit) : std::numeric_limits<size_t>::max();
  for (auto& [key, kv] : merged) {
    if (out.kvs.size() == cap) {
      out.more = true;
      break;
    }
    out.kvs.push_back(std::move(kv));
  }
  return out;
}

TxnStats SummarizeOpen(const std::vector<OpenTxn>& open,
                       std::chrono::steady_clock::time_point now) {
  TxnStats s;
  s.active = open.size();
  for (const OpenTxn& t : open) {
    s.snapshots.push_back({t.id, t.snapshot});
    if (!s.min_active_snapshot || t.snapshot < *s.min_active_snapshot) {
      s.min_active_snapshot = t.snapshot;
      s.oldest_txn_id = t.id;
      s.oldest_txn_age = std::chrono::duration_cast<std::chrono::milliseconds>(now - t.begun);
    }
  }
  const size_t listed = std::min(s.snapshots.size(), TxnStats::kListedSnapshots);
  std::partial_sort(
      s.snapshots.begin(), s.snapshots.begin() + static_cast<ptrdiff_t>(listed), s.snapshots.end(),
      [](const TxnSnapshot& a, const TxnSnapshot& b) { return a.revision < b.revision; });
  s.snapshots.resize(listed);
  return s;
}

}  // namespace txn_rules

using namespace txn_rules;  // NOLINT: this file is their first user

InteractiveTxns::InteractiveTxns(KvService* kv, InteractiveTxnOptions options)
    : kv_(kv), options_(options) {
  // Ids never repeat across restarts (a client holding an id from before a
  // restart must get "does not exist", not somebody else's transaction).
  next_id_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
}

void InteractiveTxns::ExpireIdleLocked(Clock::time_point now) {
  for (auto it = active_.begin(); it != active_.end();) {
    if (now - it->second->last_used > options_.idle_timeout) {
      it = active_.erase(it);
      ++expired_;
    } else {
      ++it;
    }
  }
}

Reply<TxnBegun> InteractiveTxns::Begin(TxnIsolation isolation, int64_t read_revision,
                                       const std::string& owner, const FollowerRead& follower) {
  const int64_t current = kv_->current_revision();
  if (auto refused = RefuseBegin(read_revision, follower, current, kv_->compact_revision())) {
    return *refused;
  }
  const int64_t snapshot = read_revision > 0 ? read_revision : current;
  auto txn = std::make_shared<Txn>();
  txn->isolation = isolation;
  txn->owner = owner;
  txn->read_only = read_revision > 0 || follower.enabled;
  txn->snapshot = snapshot;
  {
    MutexLock init(txn->mu);  // not shared yet: uncontended, but says what guards it
    txn->commit.snapshot = snapshot;
    txn->commit.serializable = isolation == TxnIsolation::kSerializable;
  }
  const auto now = Clock::now();
  txn->begun = txn->last_used = now;
  MutexLock lock(mu_);
  ExpireIdleLocked(now);
  if (auto full = RefuseAnotherTxn(active_.size(), options_.max_active)) return *full;
  txn->id = next_id_++;
  active_[txn->id] = txn;
  return TxnBegun{txn->id, snapshot};
}

Reply<InteractiveTxns::Empty> InteractiveTxns::CheckOwner(uint64_t id, const std::string& owner) {
  MutexLock lock(mu_);
  auto it = active_.find(id);
  if (it == active_.end()) return NoSuchTxn(id);
  if (it->second->owner != owner) return NotOwner(id);
  return Empty{};
}

Reply<std::shared_ptr<InteractiveTxns::Txn>> InteractiveTxns::Find(uint64_t id) {
  MutexLock lock(mu_);
  auto it = active_.find(id);
  if (it == active_.end()) return NoSuchTxn(id);
  const auto now = Clock::now();
  if (now - it->second->last_used > options_.idle_timeout) {
    active_.erase(it);
    ++expired_;
    return NoSuchTxn(id);
  }
  it->second->last_used = now;
  return it->second;
}

Reply<TxnRead> InteractiveTxns::Get(uint64_t id, const std::string& key) {
  auto found = Find(id);
  if (!found.ok()) return found.error();
  Txn& t = *found.value();
  MutexLock lock(t.mu);
  if (auto w = t.commit.writes.find(key); w != t.commit.writes.end()) {
    return OwnWrite(key, w->second);
  }
  if (t.commit.serializable && !t.read_only) {
    if (t.commit.reads.size() + t.commit.scans.size() >= options_.max_reads &&
        !t.commit.reads.count(key)) {
      return TooMany("record reads of", options_.max_reads);
    }
    t.commit.reads.insert(key);
  }
  RangeRequest req;
  req.span = {key, ""};
  req.revision = t.snapshot;
  auto r = kv_->Range(req);
  if (!r.ok()) return r.error();
  TxnRead out;
  if (!r.value().kvs.empty()) out.kv = std::move(r.value().kvs[0]);
  return out;
}

Reply<RangeResponse> InteractiveTxns::Range(uint64_t id, const KeySpan& span, int64_t limit) {
  auto found = Find(id);
  if (!found.ok()) return found.error();
  Txn& t = *found.value();
  MutexLock lock(t.mu);
  if (span.key.empty()) return etcd_errors::EmptyKey();
  if (t.commit.serializable && !t.read_only) {
    if (t.commit.reads.size() + t.commit.scans.size() >= options_.max_reads) {
      return TooMany("record reads of", options_.max_reads);
    }
    t.commit.scans.push_back(span);
  }
  RangeRequest req;
  req.span = span;
  req.revision = t.snapshot;
  auto r = kv_->Range(req);
  if (!r.ok()) return r.error();
  return OverlayWrites(std::move(r.value().kvs), t.snapshot, t.commit.writes, span, limit);
}

Reply<InteractiveTxns::Empty> InteractiveTxns::Put(uint64_t id, const std::string& key,
                                                   const std::string& value) {
  return Write(id, key, value);
}

Reply<InteractiveTxns::Empty> InteractiveTxns::Delete(uint64_t id, const std::string& key) {
  return Write(id, key, std::nullopt);
}

Reply<InteractiveTxns::Empty> InteractiveTxns::Write(uint64_t id, const std::string& key,
                                                     std::optional<std::string> value) {
  auto found = Find(id);
  if (!found.ok()) return found.error();
  Txn& t = *found.value();
  MutexLock lock(t.mu);
  if (key.empty()) return etcd_errors::EmptyKey();
  if (t.read_only) return ReadOnly();
  if (t.commit.writes.size() >= options_.max_writes && !t.commit.writes.count(key)) {
    return TooMany("write", options_.max_writes);
  }
  t.commit.writes[key] = std::move(value);
  return Empty{};
}

void InteractiveTxns::Commit(uint64_t id, std::function<void(Reply<int64_t>)> done) {
  std::shared_ptr<Txn> txn;
  {
    auto found = Find(id);
    if (!found.ok()) return done(found.error());
    txn = found.value();
    MutexLock lock(mu_);
    active_.erase(id);  // ends now, whatever the outcome
  }
  MutexLock lock(txn->mu);
  if (txn->commit.writes.empty()) {
    ++commits_;
    return done(txn->snapshot);  // read-only: its snapshot was consistent
  }
  kv_->CommitTransaction(txn->commit, [this, done = std::move(done)](Reply<int64_t> r) {
    if (r.ok()) {
      ++commits_;
    } else if (r.error().code == ErrorCode::kAborted) {
      ++conflicts_;
    }
    done(std::move(r));
  });
}

Reply<InteractiveTxns::Empty> InteractiveTxns::Abort(uint64_t id) {
  MutexLock lock(mu_);
  if (active_.erase(id) == 0) return NoSuchTxn(id);
  return Empty{};
}

TxnStats InteractiveTxns::Stats() {
  const auto now = Clock::now();
  MutexLock lock(mu_);
  ExpireIdleLocked(now);
  std::vector<OpenTxn> open;
  for (const auto& [id, t] : active_) open.push_back({id, t->snapshot, t->begun});
  TxnStats s = SummarizeOpen(open, now);
  s.commits = commits_;
  s.conflicts = conflicts_;
  s.expired = expired_;
  return s;
}

}  // namespace strata::service
