// WatchFeed: one watch over the whole key space of a cluster.
//
// It reads every shard's change feed (ShardWatch: the changes of the
// watched range above what it has, up to the shard's resolved timestamp)
// and merges them in a ChangeMerger, so what it hands on is ordered by
// (timestamp, key), unique, atomic per commit, and complete up to the
// frontier (the lowest resolved timestamp of the shards), which it hands
// on too (a progress notification can name it).
//
// Each shard has one long poll in flight (ShardWatch::park_ms): the shard
// holds it while it has nothing to say and answers as soon as a change in
// the range is resolved there, or after `park` with its resolved timestamp;
// the feed then asks again at once. A shard that hands on a change also has
// every shard still behind that change probed at once (a read that is not
// held), so the frontier passes the change a round trip later. A reply
// that does not start where the feed now is for that shard (the other read
// of it moved the feed on meanwhile) is dropped: the shard is read again
// from where the feed is, so nothing comes twice or is skipped. With park
// 0, shards are polled every poll_interval instead. A shard that does not answer
// (down, partitioned) is asked again after a pause; the frontier waits for
// it, as it must. Memory: a shard far ahead of the frontier is not read
// again while max_pending changes wait in the merger for the others.
//
// A shard that compacted past what the watch needs ends it (on_error with
// kCompacted), as etcd ends such a watch. Given a holder, the feed holds
// the cluster's low-water mark at what it has handed on, so a compaction
// never passes a live feed. Not thread-safe: the node's event
// loop owns it; destroying it stops it (replies still in flight are
// ignored).
#ifndef STRATA_CLUSTER_WATCH_FEED_H_
#define STRATA_CLUSTER_WATCH_FEED_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "cluster/change_merger.h"
#include "cluster/coordinator.h"
#include "cluster/peers.h"
#include "cluster/timers.h"
#include "strata/mvcc_store.h"
#include "strata/status.h"

namespace strata::cluster {

struct WatchFeedOptions {
  // How long a shard holds a read with nothing to say (below the RPC layer's
  // first resend, 100 ms); 0: poll instead.
  std::chrono::milliseconds park{50};
  std::chrono::milliseconds poll_interval{10};
  std::chrono::milliseconds retry_interval{200};  // after a failed read
  size_t page_limit = 1000;                       // changes per shard read
  size_t max_pending = 100000;
  // Also hand on each change's previous version (etcd's prev_kv).
  bool with_previous = false;
};

class WatchFeed final {
 public:
  // Changes released, in (timestamp, key) order, and the frontier after
  // them (everything at or below it has been handed on); with
  // with_previous, `previous` holds one entry per change (ShardWatchReply).
  using OnChanges =
      std::function<void(std::vector<Change> changes, std::vector<std::optional<Change>> previous,
                         Timestamp frontier)>;
  using OnError = std::function<void(Status error)>;

  // Hands on the changes in `range` above `after`. `holder` (may be null)
  // must outlive the feed.
  WatchFeed(Peers* peers, Timers* timers, Coordinator* holder, KeyRange range, Timestamp after,
            WatchFeedOptions options, OnChanges on_changes, OnError on_error);
  ~WatchFeed();

  void Start();
  Timestamp frontier() const { return merger_.frontier(); }

 private:
  struct ShardState {
    ShardId shard = 0;
    Timestamp after;
    uint64_t cursor = 0;
    bool in_flight = false;  // the shard's (long) poll
    bool probing = false;    // a read that is not held
    uint64_t reads = 0;      // a timer set before the latest poll is moot
  };
  // The shard's poll (held there when parking), and a read answered at once.
  void Read(size_t index);
  void Probe(size_t index);
  void Send(size_t index, bool poll);
  void ReadLater(size_t index, std::chrono::milliseconds delay);

  // Moves the feed's hold on the low-water mark up to what was handed on.
  void MoveHold();

  Peers* peers_;
  Timers* timers_;
  Coordinator* holder_;
  std::optional<Timestamp> held_;
  const KeyRange range_;
  const WatchFeedOptions options_;
  OnChanges on_changes_;
  OnError on_error_;
  std::vector<ShardState> shards_;
  ChangeMerger merger_;
  Timestamp handed_on_;  // the frontier last handed on
  bool failed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_WATCH_FEED_H_
