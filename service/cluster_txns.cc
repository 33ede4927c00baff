#include "service/cluster_txns.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace strata::service {

using namespace txn_rules;  // NOLINT: the rules both kinds of transactions share

ClusterTxns::ClusterTxns(cluster::Coordinator* coordinator, ClusterKv* kv,
                         InteractiveTxnOptions options)
    : coordinator_(coordinator), kv_(kv), options_(options) {}

ClusterTxns::~ClusterTxns() { *alive_ = false; }

void ClusterTxns::ExpireIdle(Clock::time_point now) {
  for (auto it = active_.begin(); it != active_.end();) {
    if (now - it->second.last_used > options_.idle_timeout) {
      (void)coordinator_->Abort(it->first);  // the coordinator may have expired it already
      it = active_.erase(it);
      ++expired_;
    } else {
      ++it;
    }
  }
}

ClusterTxns::Txn* ClusterTxns::Find(uint64_t id) {
  const auto now = Clock::now();
  ExpireIdle(now);
  auto it = active_.find(id);
  if (it == active_.end()) return nullptr;
  // The coordinator expires idle transactions by its own clock too.
  if (!coordinator_->CheckOpen(id).ok()) {
    active_.erase(it);
    ++expired_;
    return nullptr;
  }
  it->second.last_used = now;
  return &it->second;
}

Reply<TxnBegun> ClusterTxns::Begin(TxnIsolation isolation, int64_t read_revision,
                                   const std::string& owner, const FollowerRead& follower) {
  const auto now = Clock::now();
  ExpireIdle(now);
  const int64_t current = kv_->current_revision();
  if (auto refused = RefuseBegin(read_revision, follower, current, kv_->compact_revision())) {
    return *refused;
  }
  if (auto full = RefuseAnotherTxn(active_.size(), options_.max_active)) return *full;
  const bool read_only = read_revision > 0 || follower.enabled;
  std::optional<Isolation> mode;
  if (!read_only) {
    mode = isolation == TxnIsolation::kSnapshot ? Isolation::kSnapshot : Isolation::kSerializable;
  }
  // A follower read: where ClusterKv::FollowerReadAt says.
  std::optional<Timestamp> at;
  bool here = false;
  if (read_revision > 0) {
    at = AtRevision(read_revision);
  } else if (follower.enabled) {
    const ClusterKv::FollowerReadPoint point = kv_->FollowerReadAt(follower.min_read_revision);
    at = point.at;
    here = point.here();
  }
  auto begun = coordinator_->Begin(mode, read_only, at);
  if (!begun.ok()) return ClusterError(begun.status());
  if (here) (void)coordinator_->ReadHereFirst(begun->id);
  Txn txn;
  txn.id = begun->id;
  txn.snapshot = RevisionOf(begun->start);
  txn.serializable = isolation == TxnIsolation::kSerializable;
  txn.read_only = read_only;
  txn.owner = owner;
  txn.begun = txn.last_used = now;
  active_.emplace(txn.id, std::move(txn));
  return TxnBegun{begun->id, RevisionOf(begun->start)};
}

Reply<ClusterTxns::Empty> ClusterTxns::CheckOwner(uint64_t id, const std::string& owner) {
  auto it = active_.find(id);
  if (it == active_.end()) return NoSuchTxn(id);
  if (it->second.owner != owner) return NotOwner(id);
  return Empty{};
}

void ClusterTxns::Get(uint64_t id, const std::string& key, Done<TxnRead> done) {
  Txn* txn = Find(id);
  if (txn == nullptr) return done(NoSuchTxn(id));
  if (key.empty()) return done(etcd_errors::EmptyKey());
  if (auto w = txn->writes.find(key); w != txn->writes.end()) {
    return done(OwnWrite(key, w->second));
  }
  kv_->ReadKey(id, key, [done = std::move(done)](Reply<std::vector<KeyValue>> kvs) {
    if (!kvs.ok()) return done(kvs.error());
    TxnRead read;
    if (!kvs.value().empty()) read.kv = std::move(kvs.value().front());
    done(std::move(read));
  });
}

void ClusterTxns::Range(uint64_t id, const KeySpan& span, int64_t limit, Done<RangeResponse> done) {
  Txn* txn = Find(id);
  if (txn == nullptr) return done(NoSuchTxn(id));
  if (span.key.empty()) return done(etcd_errors::EmptyKey());
  // Enough of the snapshot that the limit still holds once own deletes are
  // laid over it.
  const size_t keep = limit > 0 ? static_cast<size_t>(limit) + txn->writes.size() : SIZE_MAX;
  kv_->ScanAll(id, span, keep, /*values=*/true,
               [this, id, span, limit, alive = alive_,
                done = std::move(done)](Reply<ClusterKv::Scanned> scanned) {
                 if (!*alive) return;
                 if (!scanned.ok()) return done(scanned.error());
                 auto it = active_.find(id);
                 if (it == active_.end()) return done(NoSuchTxn(id));
                 done(OverlayWrites(std::move(scanned.value().kvs), it->second.snapshot,
                                    it->second.writes, span, limit));
               });
}

Reply<ClusterTxns::Empty> ClusterTxns::Put(uint64_t id, const std::string& key,
                                           const std::string& value) {
  return Write(id, key, value);
}

Reply<ClusterTxns::Empty> ClusterTxns::Delete(uint64_t id, const std::string& key) {
  return Write(id, key, std::nullopt);
}

Reply<ClusterTxns::Empty> ClusterTxns::Write(uint64_t id, const std::string& key,
                                             std::optional<std::string> value) {
  Txn* txn = Find(id);
  if (txn == nullptr) return NoSuchTxn(id);
  if (key.empty()) return etcd_errors::EmptyKey();
  if (txn->read_only) return ReadOnly();
  // The cluster's own bound on one transaction's writes (peer_messages.h).
  const size_t max_writes = std::min(options_.max_writes, cluster::kMaxTxnWriteKeys);
  if (txn->writes.size() >= max_writes && !txn->writes.count(key)) {
    return TooMany("write", max_writes);
  }
  txn->writes[key] = std::move(value);
  return Empty{};
}

void ClusterTxns::Commit(uint64_t id, Done<int64_t> done) {
  Txn* found = Find(id);
  if (found == nullptr) return done(NoSuchTxn(id));
  Txn txn = std::move(*found);
  active_.erase(id);  // ends now, whatever the outcome
  if (txn.writes.empty()) {
    // What it read was one consistent snapshot: nothing to validate.
    (void)coordinator_->Abort(id);
    ++commits_;
    return done(txn.snapshot);
  }
  kv_->CommitWrites(id, txn.snapshot, txn.writes,
                    [this, alive = alive_, done = std::move(done)](Reply<int64_t> r) {
                      if (*alive) {
                        if (r.ok()) {
                          ++commits_;
                        } else if (r.error().code == ErrorCode::kAborted) {
                          ++conflicts_;
                        }
                      }
                      done(std::move(r));
                    });
}

Reply<ClusterTxns::Empty> ClusterTxns::Abort(uint64_t id) {
  if (active_.erase(id) == 0) return NoSuchTxn(id);
  (void)coordinator_->Abort(id);
  return Empty{};
}

TxnStats ClusterTxns::Stats() {
  const auto now = Clock::now();
  ExpireIdle(now);
  std::vector<OpenTxn> open;
  for (const auto& [id, t] : active_) open.push_back({id, t.snapshot, t.begun});
  TxnStats s = SummarizeOpen(open, now);
  s.commits = commits_;
  s.conflicts = conflicts_;
  s.expired = expired_;
  return s;
}

}  // namespace strata::service
