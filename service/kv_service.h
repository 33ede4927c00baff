// KvService: etcd's key-value API (Range, Put, DeleteRange, Txn, Compact)
// over one strata engine; the rules themselves are service/kv_rules.h.
//
// The model: revision = engine timestamp. Every write transaction that
// changes something takes the next revision (dense, from 1 on an empty
// store as in etcd, where the first write is revision 2) and applies all its
// writes at that timestamp in one engine batch, so a reader at any revision
// sees whole transactions. Writes are serialized on one writer lock, which
// is what makes revisions dense and a Txn's compares and writes atomic; the
// lock is held only while the engine applies in memory, never while the log
// syncs (CommitPipeline holds the reply until then). Reads take no lock:
// they read the engine at a revision, and without one at the newest durable
// revision.
//
// Per-version fields (create_revision, version, lease) are kept in every
// stored version (service/stored_value.h); a delete is an engine tombstone.
// Compaction at revision R is the engine's compaction at horizon R: it keeps,
// per key, the newest version at or below R unless that is a delete, exactly
// what etcd keeps.
#ifndef STRATA_SERVICE_KV_SERVICE_H_
#define STRATA_SERVICE_KV_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "service/commit_pipeline.h"
#include "service/kv_rules.h"
#include "service/kv_types.h"
#include "service/service_error.h"
#include "service/space_quota.h"
#include "strata/mvcc_store.h"

namespace strata::service {

// What the key-value rules need of leases (service/lease_table.h).
class LeaseKeys {
 public:
  virtual ~LeaseKeys() = default;
  virtual bool Exists(int64_t lease) const = 0;
  // `key` moved from lease `from` to lease `to` (0: none) at a write.
  virtual void Move(const std::string& key, int64_t from, int64_t to) = 0;
  // Ends `lease` now (nothing may attach to it any more) and returns the
  // keys attached to it; nullopt if there is no such lease.
  virtual std::optional<std::vector<std::string>> End(int64_t lease) = 0;
};

// What an interactive transaction (service/interactive_txn.h) asks to
// commit: its writes, and for a serializable one what it read.
struct TransactionCommit {
  int64_t snapshot = 0;
  bool serializable = true;
  std::map<std::string, std::optional<std::string>> writes;  // nullopt: delete
  std::set<std::string> reads;
  std::vector<KeySpan> scans;
};

struct KvServiceOptions {
  // etcd's --max-txn-ops: operations in one Txn branch (and compares).
  size_t max_txn_ops = 128;
  // Writes that add data are refused once it raised its alarm (null: none).
  SpaceQuota* quota = nullptr;
  // The highest revision compaction may remove physically now: what the
  // watchers that keep up still have to read (WatchHub::ProtectedFloor).
  // Unset: compaction is physical at once.
  std::function<int64_t()> compaction_floor;
};

class KvService final {
 public:
  template <typename T>
  using Done = std::function<void(Reply<T>)>;

  // `store`, `pipeline` and `leases` (may be null) must outlive the service.
  KvService(MvccStore* store, CommitPipeline* pipeline, LeaseKeys* leases,
            KvServiceOptions options = {});

  // Reads never wait (a linearizable and a serializable range are the same
  // on one node: both read the newest durable revision).
  Reply<RangeResponse> Range(const RangeRequest& request) const;
  // Writes call `done` once the result is durable (maybe on another thread).
  void Put(const PutRequest& request, Done<PutResponse> done);
  void DeleteRange(const DeleteRangeRequest& request, Done<DeleteRangeResponse> done);
  void Txn(const TxnRequest& request, Done<TxnResponse> done);
  void Compact(const CompactionRequest& request, Done<CompactionResponse> done);
  // Validates `t` against what committed after its snapshot (kAborted
  // naming the key on a conflict) and applies its writes at one revision;
  // done gets that revision (the snapshot if it wrote nothing).
  void CommitTransaction(const TransactionCommit& t, Done<int64_t> done);
  // Ends `lease` and deletes the keys attached to it in one revision (a
  // revocation or an expiry); done gets the revision, or LeaseNotFound.
  // Under the writer lock, so no write can attach a key to it meanwhile.
  void RevokeLease(int64_t lease, Done<int64_t> done);

  // The newest durable revision (what a read sees and header.revision says).
  int64_t current_revision() const { return pipeline_->visible_revision(); }
  // The last compaction's revision (-1: none yet; 0 after a Compact(0)):
  // reads below it are refused, as etcd's.
  int64_t compact_revision() const { return compact_revision_.load(); }
  // Keys that exist (not deleted) at the newest applied revision.
  int64_t live_keys() const { return live_keys_.load(std::memory_order_relaxed); }
  // What the engine has removed so far is at most compact_revision(), lower
  // while a watcher that keeps up still needs older history. This completes
  // what compaction deferred, once the floor allows; called now and then by
  // the auto-compactor's thread.
  void ApplyDeferredCompaction();
  // A hash of every version in (compact revision, revision] (revision 0:
  // the current one), for comparing stores that should hold the same
  // history (etcd's HashKV; the value is strata's own, not etcd's).
  Reply<uint32_t> HashKV(int64_t revision) const;
  // Every key's latest lease, for rebuilding lease attachments at start.
  void ForEachLeasedKey(const std::function<void(const std::string& key, int64_t lease)>& f) const;

  // The revision an empty store starts at, as etcd's.
  static constexpr int64_t kFirstRevision = 1;

 private:
  class EngineView;
  // Runs `body` under the writer lock against an overlay of the newest
  // revision, applies what it wrote as the next revision, and calls `done`
  // once durable.
  template <typename T>
  void ExecuteWrite(const std::function<Reply<T>(TxnOverlay&)>& body, Done<T> done);
  // The keys of `span` at `revision`: all counted in *count, the first
  // `keep` converted into *out.
  std::optional<ServiceError> ScanEngine(const KeySpan& span, int64_t revision, size_t keep,
                                         std::vector<KeyValue>* out, int64_t* count) const;
  Reply<RangeResponse> RangeFromEngine(const RangeRequest& request, int64_t revision,
                                       int64_t current) const;

  MvccStore* store_;
  CommitPipeline* pipeline_;
  LeaseKeys* leases_;
  const KvServiceOptions options_;

  Mutex writer_mu_;
  int64_t applied_revision_ STRATA_GUARDED_BY(writer_mu_);  // the newest revision in the engine
  std::atomic<int64_t> compact_revision_{-1};
  std::atomic<int64_t> live_keys_{0};
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_KV_SERVICE_H_
