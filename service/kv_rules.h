// etcd's key-value rules, written once over an abstract view of the store.
//
// A write request (Put, DeleteRange, Txn) runs against a KvView, the store
// at the revision before it (its base), through a TxnOverlay that buffers
// its writes: reads later in a Txn see the writes before them, and the
// overlay hands back the engine bytes to store, the events and the lease
// moves. One node runs it over its engine under the writer lock
// (KvService); the cluster runs it over what it read from the shards at
// its snapshot and commits the writes by two-phase commit (ClusterKv). So
// every client-visible rule (compares, branches, prev_kv, ignore_value,
// create_revision and version, etcd's checks) exists once.
//
// The revision a write request's changes get is given to the overlay: on
// one node it is known in advance (base + 1); in a cluster it is the commit
// timestamp, known only once committed, so the cluster passes
// kPendingRevision and stamps the reply afterwards (StampRevision).
#ifndef STRATA_SERVICE_KV_RULES_H_
#define STRATA_SERVICE_KV_RULES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "service/kv_types.h"
#include "service/service_error.h"
#include "strata/mvcc_store.h"

namespace strata::service {

// The store as a write request sees it: the state at its base revision.
class KvView {
 public:
  virtual ~KvView() = default;
  // The key; nullopt if it does not exist.
  virtual Reply<std::optional<KeyValue>> Get(const std::string& key) const = 0;
  // Every existing key in `span`, ascending.
  virtual Reply<std::vector<KeyValue>> Scan(const KeySpan& span) const = 0;
  // A Range at `revision` (at most the base, at least the compaction),
  // answered with header.revision = `current`.
  virtual Reply<RangeResponse> RangeAt(const RangeRequest& request, int64_t revision,
                                       int64_t current) const = 0;
  virtual bool LeaseExists(int64_t lease) const = 0;
  // Reads below this revision are refused (-1: never compacted).
  virtual int64_t compact_revision() const = 0;
};

// The revision a cluster's overlay gives its writes until the commit
// timestamp is known (then StampRevision replaces it).
inline constexpr int64_t kPendingRevision = INT64_MAX;
// The base revision of a cluster's write whose reads are current up to its
// commit, whatever the commit's revision (then the one before it).
inline constexpr int64_t kPendingBaseRevision = INT64_MAX - 1;

// A write request in progress over a view: reads see the base plus its own
// writes; the writes are buffered until the caller applies them.
class TxnOverlay {
 public:
  TxnOverlay(const KvView& view, int64_t base, int64_t revision)
      : view_(view), base_(base), revision_(revision) {}

  const KvView& view() const { return view_; }
  int64_t base_revision() const { return base_; }
  int64_t revision() const { return revision_; }  // the revision its writes get
  bool changed() const { return !writes_.empty(); }
  // header.revision of what ran so far (etcd: the new revision once
  // anything changed).
  int64_t current() const { return changed() ? revision_ : base_; }

  // The key now, this request's writes included.
  Reply<std::optional<KeyValue>> Get(const std::string& key) const;
  // Every key in `span` now, ascending.
  Reply<std::vector<KeyValue>> Scan(const KeySpan& span) const;
  void Put(const std::string& key, std::string_view value, int64_t lease,
           const std::optional<KeyValue>& prev);
  void Delete(const KeyValue& prev);

  // Engine key -> stored bytes (nullopt: a delete), one per key written.
  std::vector<BatchWrite> TakeWrites();
  // (key, lease before, lease after) for every key whose lease changed.
  std::vector<std::tuple<std::string, int64_t, int64_t>> LeaseMoves() const;
  std::vector<Event> TakeEvents() { return std::move(events_); }
  // Keys that exist after this request less those that existed before.
  int64_t LiveKeyDelta() const;

 private:
  struct Buffered {
    std::optional<std::string> stored;  // engine bytes; nullopt: a delete
    std::optional<KeyValue> now;        // what a read in this request sees
    // The key before this request: an event's prev_kv is the key at the
    // revision before, as etcd's, even after an earlier write of the Txn.
    std::optional<KeyValue> before;
    int64_t lease_before = 0;
  };
  void Record(const std::string& key, std::optional<std::string> stored,
              std::optional<KeyValue> now, const std::optional<KeyValue>& prev);

  const KvView& view_;
  const int64_t base_;
  const int64_t revision_;
  std::map<std::string, Buffered> writes_;
  std::vector<Event> events_;
};

// The requests, run over an overlay (the caller checked them first:
// CheckPut, CheckTxnRequest, an empty DeleteRange key).
Reply<PutResponse> RunPut(const PutRequest& request, TxnOverlay& txn);
Reply<DeleteRangeResponse> RunDeleteRange(const DeleteRangeRequest& request, TxnOverlay& txn);
Reply<TxnResponse> RunTxn(const TxnRequest& request, TxnOverlay& txn);

// Filters, sorts, limits and trims `kvs` (every key of the range at one
// revision, ascending; `count` of them before filters) as `request` asks.
RangeResponse ShapeRange(const RangeRequest& request, std::vector<KeyValue> kvs, int64_t count,
                         int64_t current);
// Whether a Range must see every key of its span (filters or a sort), not
// only the first `limit`.
bool RangeNeedsAll(const RangeRequest& request);

// Replaces `pending` (kPendingRevision or kPendingBaseRevision) by
// `revision` everywhere in a reply.
void StampRevision(int64_t revision, PutResponse* r, int64_t pending = kPendingRevision);
void StampRevision(int64_t revision, DeleteRangeResponse* r, int64_t pending = kPendingRevision);
void StampRevision(int64_t revision, TxnResponse* r, int64_t pending = kPendingRevision);

// etcd's checks before a request runs.
std::optional<ServiceError> CheckPut(const PutRequest& request);
// Operation counts, empty keys, and no key written twice (a put twice, or
// a put inside a deleted range, across the branch and nested Txns).
std::optional<ServiceError> CheckTxnRequest(const TxnRequest& request, size_t max_txn_ops);
// What a Txn's puts would add at most (etcd charges the larger branch).
uint64_t TxnPutBytes(const TxnRequest& request);

// Every key and range a Txn may read or write, whichever branches it takes
// (what a cluster gathers from its shards before running it): point keys,
// spans, and Range ops at a revision of their own.
struct TxnFootprint {
  std::vector<std::string> keys;
  std::vector<KeySpan> spans;
  std::vector<RangeRequest> past_ranges;  // revision > 0
  std::vector<int64_t> leases;            // leases its puts name
};
TxnFootprint FootprintOf(const TxnRequest& request);

// Whether `key` is in `span` (etcd's range rules).
bool SpanContains(const KeySpan& span, std::string_view key);
// The engine range `span` covers; nullopt if none (an inverted range). A
// single key is [key, key + "\0").
std::optional<KeyRange> SpanToKeyRange(const KeySpan& span);
// A stored version as a client sees it; nullopt if it is not an etcd value.
std::optional<KeyValue> StoredToKeyValue(std::string_view key, Timestamp ts,
                                         std::string_view bytes);
// The refusal for a stored version that is not an etcd value.
ServiceError DamagedValue(std::string_view key);

}  // namespace strata::service

#endif  // STRATA_SERVICE_KV_RULES_H_
