// Router: the whole key space as one node's clients see it.
//
// A request about one key goes to the shard that owns it (Forward, carried
// unread in the front end's encoding). Scans, changes and compaction fan
// out to every shard and merge the typed answers: scans in key order,
// changes in (timestamp, key) order, compactions by the lowest horizon and
// summed counts. A shard whose answer was cut short (`more`) stops the
// merge at its last item, since past it that shard may hold items the
// merge has not seen; the merged answer then says `more` too, and paging
// from its last item continues exactly. Settled changes stop where every
// shard has resolved, so a page never misses a commit still under way.
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_CLUSTER_ROUTER_H_
#define STRATA_CLUSTER_ROUTER_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/peer_messages.h"
#include "cluster/peers.h"
#include "strata/mvcc_store.h"
#include "strata/status.h"

namespace strata::cluster {

class Router final {
 public:
  template <typename T>
  using Done = std::function<void(Result<T>)>;

  explicit Router(Peers* peers) : peers_(peers) {}

  ShardId OwnerOf(std::string_view engine_key) const {
    return peers_->map().ShardFor(engine_key).id;
  }
  // When the member owning `shard` last sent this one anything (Peers).
  std::optional<Timers::Clock::time_point> LastHeardFrom(ShardId shard) const {
    return peers_->LastHeardFrom(shard);
  }

  // Runs `request` on the shard owning `engine_key`, once however often
  // the call is resent; `done` gets its reply.
  void Forward(std::string_view engine_key, std::string request, Done<std::string> done);
  // Runs `request` on the node serving `shard` (a replicated shard's
  // leader), once however often resent.
  void ForwardToShard(ShardId shard, std::string request, Done<std::string> done);
  // Runs `request` on node `node` itself (what it knows of itself, not of
  // a shard: its client URLs, news for it), once however often resent.
  void ForwardTo(const std::string& node, std::string request, Done<std::string> done);
  void Scan(KeyRange range, Timestamp at, size_t limit, Done<ScanResult> done);
  void Changes(Timestamp since, KeyRange range, size_t limit, Done<ChangesResult> done);
  // The changes in `range` above `since` that no shard can still add to:
  // each shard's change feed (ShardWatch) read once, merged in (timestamp,
  // key) order up to the lowest frontier the shards answered, and cut at
  // `limit` between two timestamps (a commit's changes stay together; one
  // commit larger than the limit comes whole). `more`: the limit cut it, so
  // paging from the last timestamp continues at once.
  void SettledChanges(Timestamp since, KeyRange range, size_t limit, Done<ChangesResult> done);
  // Each shard collects up to `horizon`, or its view of the low-water mark.
  void Compact(Timestamp horizon, Done<CompactResult> done);

  // The merges, on their own (each shard's answer, in any order).
  static ScanResult MergeScans(std::vector<ScanResult> parts, size_t limit);
  static ChangesResult MergeChanges(std::vector<ChangesResult> parts, size_t limit);
  static CompactResult MergeCompactions(const std::vector<CompactResult>& parts);
  static ChangesResult MergeSettled(std::vector<ShardWatchReply> parts, size_t limit);

 private:
  // Sends `request` to every shard; `done` gets every T answer, or the
  // first failure.
  template <typename T>
  void FanOut(PeerRequest request, std::function<void(Result<std::vector<T>>)> done);

  Peers* peers_;
  uint64_t last_forward_id_ = 0;  // ForwardedCalls::IdAt
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_ROUTER_H_
