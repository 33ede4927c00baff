// InteractiveTxns: strata.v1's interactive transactions over the etcd
// model, for what etcd's one-shot Txn cannot express (read, decide, write,
// over several round trips).
//
// A transaction reads the snapshot at its read revision plus its own
// buffered writes; its writes are applied at commit, at one new revision,
// through KvService (so revisions, events, watchers and durability are the
// etcd API's own). Conflicts are detected at commit, optimistically:
//  - snapshot isolation: first committer wins, a key it writes must not
//    have a version newer than its snapshot;
//  - serializable: also nothing it read (keys, and every key in the ranges
//    it scanned, so phantoms too) may have changed since its snapshot.
// A transaction idle longer than the timeout expires (its id then answers
// "does not exist"), so none can pin memory or be waited on forever; open
// ones are reported in stats with the oldest snapshot, the holder of the
// garbage-collection low-water mark (a compaction past it makes the
// transaction's reads fail as compacted, as etcd's Range would).
#ifndef STRATA_SERVICE_INTERACTIVE_TXN_H_
#define STRATA_SERVICE_INTERACTIVE_TXN_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "service/kv_service.h"
#include "service/kv_types.h"
#include "service/service_error.h"
#include "strata/mvcc_store.h"

namespace strata::service {

enum class TxnIsolation { kSerializable, kSnapshot };

struct InteractiveTxnOptions {
  size_t max_active = 10000;
  std::chrono::milliseconds idle_timeout{10000};
  size_t max_writes = 100000;  // distinct keys one transaction writes
  size_t max_reads = 100000;   // keys and ranges a serializable one records
};

struct TxnBegun {
  uint64_t id = 0;
  int64_t read_revision = 0;
};

// strata.v1's follower reads (BeginRequest.follower_read): a read-only
// transaction from the member's own replicas, where a sharded cluster
// keeps one of every shard on it, at the newest revision they have all
// resolved and at least at `min_read_revision` (a revision the client saw:
// a commit's, or another transaction's read revision). Elsewhere (one node,
// a cluster without such replicas) at the current revision.
struct FollowerRead {
  bool enabled = false;
  int64_t min_read_revision = 0;
};

struct TxnRead {
  std::optional<KeyValue> kv;  // nullopt: no such key at the snapshot
  bool own_write = false;      // the transaction's own write (mod_revision 0)
};

struct TxnSnapshot {
  uint64_t id = 0;
  int64_t revision = 0;  // the snapshot it reads
};

struct TxnStats {
  uint64_t active = 0;
  // The oldest open transactions' snapshots, oldest first, at most
  // kListedSnapshots (what a dashboard draws; `active` counts them all).
  static constexpr size_t kListedSnapshots = 64;
  std::vector<TxnSnapshot> snapshots;
  std::optional<int64_t> min_active_snapshot;
  uint64_t oldest_txn_id = 0;
  std::chrono::milliseconds oldest_txn_age{0};
  uint64_t commits = 0;
  uint64_t conflicts = 0;
  uint64_t expired = 0;
};

// What both kinds of interactive transactions (this one node's, and
// ClusterTxns over a cluster) answer alike.
namespace txn_rules {
ServiceError NoSuchTxn(uint64_t id);
ServiceError ReadOnly();
ServiceError TooMany(const char* what, size_t limit);
ServiceError NotOwner(uint64_t id);
// Why a transaction may not begin at `read_revision` (0: the current one;
// > 0 a past one, read-only): FutureRev or Compacted, as etcd's Range. A
// follower read also may not with a read revision (InvalidArgument: it
// reads at what the replicas resolved), or with a min_read_revision below
// 0 (InvalidArgument) or ahead of the current revision (FutureRev).
std::optional<ServiceError> RefuseBegin(int64_t read_revision, const FollowerRead& follower,
                                        int64_t current, int64_t compacted);
// ResourceExhausted once `open` transactions reach the bound.
std::optional<ServiceError> RefuseAnotherTxn(size_t open, size_t max_open);
// A read of the transaction's own write (mod_revision 0; nullopt: deleted).
TxnRead OwnWrite(const std::string& key, const std::optional<std::string>& value);
// A Range's answer: `snapshot` (the span's keys at the snapshot, ascending)
// with the transaction's own `writes` laid over it, cut at `limit` (<= 0:
// none).
RangeResponse OverlayWrites(std::vector<KeyValue> snapshot, int64_t revision,
                            const std::map<std::string, std::optional<std::string>>& writes,
                            const KeySpan& span, int64_t limit);
// Stats of the open transactions (all but the counters of what finished).
struct OpenTxn {
  uint64_t id = 0;
  int64_t snapshot = 0;
  std::chrono::steady_clock::time_point begun;
};
TxnStats SummarizeOpen(const std::vector<OpenTxn>& open, std::chrono::steady_clock::time_point now);
}  // namespace txn_rules

class InteractiveTxns final {
 public:
  using Clock = std::chrono::steady_clock;
  struct Empty {};

  // `kv` must outlive it.
  explicit InteractiveTxns(KvService* kv, InteractiveTxnOptions options = {});

  // read_revision 0: the current revision, read-write; > 0: read-only at
  // that past revision (FutureRev / Compacted as etcd's Range).
  // `owner`: the user who begins it, when users are checked (CheckOwner).
  // A follower read is read-only at the current revision (one node is
  // every replica); refused with a read revision, or a min_read_revision
  // ahead of the current one (FutureRev).
  Reply<TxnBegun> Begin(TxnIsolation isolation, int64_t read_revision,
                        const std::string& owner = "", const FollowerRead& follower = {});
  // With authentication on, a transaction is its owner's alone: another
  // user's call on its id is refused (PermissionDenied) before it runs.
  Reply<Empty> CheckOwner(uint64_t id, const std::string& owner);
  Reply<TxnRead> Get(uint64_t id, const std::string& key);
  Reply<RangeResponse> Range(uint64_t id, const KeySpan& span, int64_t limit);
  Reply<Empty> Put(uint64_t id, const std::string& key, const std::string& value);
  Reply<Empty> Delete(uint64_t id, const std::string& key);
  // The commit's revision (the read revision if it wrote nothing), or
  // kAborted naming the key that conflicted; the transaction ends either way.
  void Commit(uint64_t id, std::function<void(Reply<int64_t>)> done);
  Reply<Empty> Abort(uint64_t id);

  TxnStats Stats();

 private:
  struct Txn;
  // A put (value) or a delete (nullopt), buffered until commit.
  Reply<Empty> Write(uint64_t id, const std::string& key, std::optional<std::string> value);
  // The transaction, unless unknown or expired (then the error to answer).
  Reply<std::shared_ptr<Txn>> Find(uint64_t id);
  void ExpireIdleLocked(Clock::time_point now) STRATA_REQUIRES(mu_);

  KvService* kv_;
  const InteractiveTxnOptions options_;

  Mutex mu_;
  std::map<uint64_t, std::shared_ptr<Txn>> active_ STRATA_GUARDED_BY(mu_);
  uint64_t next_id_ STRATA_GUARDED_BY(mu_) = 1;
  std::atomic<uint64_t> commits_{0}, conflicts_{0}, expired_{0};
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_INTERACTIVE_TXN_H_
