// ClusterWatches: etcd's watches over a cluster (service::Watches).
//
// One feed per node reads every shard's changes to etcd's keys
// (cluster::WatchFeed: ordered, unique, atomic per commit, complete up to
// the shards' lowest resolved timestamp) and hands them to every live
// watcher whose range and filters match, from the revision it started at.
// A watcher that starts in the past (start_revision below what the shared
// feed has reached) first reads its own range from that revision with a
// catch-up feed of its own, and joins the shared feed once it has caught
// up with it; so history costs only the watchers that ask for it, and live
// watching costs one feed however many watchers there are. The shared feed
// starts with the node's first watcher and stops with its last.
//
// A watcher whose stream's queue is full pauses, as on one node: it takes
// nothing more from the shared feed, and when the stream drains it reads
// what it missed with a catch-up feed of its own and joins the shared feed
// again; nothing is lost unless a compaction passes it meanwhile (a paused
// watcher holds no feed, so it does not hold compaction back), in which
// case it is cancelled with compact_revision, as etcd cancels a watcher
// behind a compaction. A watcher created with `fragment` gets large
// responses in fragments, as on one node (service::OfferEvents).
//
// Every call is posted to the member's loop thread, where all the state
// lives; RemoveStream waits for its task, so the sink is never used after
// it returns.
#ifndef STRATA_SERVICE_CLUSTER_WATCHES_H_
#define STRATA_SERVICE_CLUSTER_WATCHES_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "cluster/member.h"
#include "cluster/watch_feed.h"
#include "service/watch_hub.h"

namespace strata::service {

struct ClusterWatchesOptions {
  size_t max_watchers_per_stream = 10000;
  size_t max_watchers = 100000;
  std::chrono::milliseconds progress_interval{10 * 60 * 1000};
  // A watcher created with fragment gets responses larger than this split
  // into fragments (etcd: --max-request-bytes).
  size_t fragment_bytes = 1536 * 1024;
  cluster::WatchFeedOptions feed;
};

class ClusterWatches final : public Watches {
 public:
  // Runs a task on the member's loop thread; false (and it never runs) once
  // the loop is stopping.
  using Post = std::function<bool(std::function<void(cluster::Member&)>)>;

  // `compact_revision` names the compaction a cancelled watcher reports.
  ClusterWatches(Post post, std::function<int64_t()> compact_revision,
                 ClusterWatchesOptions options = {});
  // Destroy only once the loop has stopped (its feeds are the loop's), and
  // after StopFeeds if the member goes first.
  ~ClusterWatches() override;
  // On the loop thread, before the member is destroyed: ends every feed
  // (each holds the member's low-water mark); watchers get nothing more.
  void StopFeeds();

  void Create(WatchSink* sink, const WatchCreateRequest& request) override;
  void Cancel(WatchSink* sink, int64_t watch_id) override;
  void RequestProgress(WatchSink* sink) override;
  void RemoveStream(WatchSink* sink) override;
  void Nudge(WatchSink* sink) override;

  size_t watchers() const { return watcher_count_.load(); }
  // Watchers paused now, and every pause so far.
  size_t paused() const { return paused_count_.load(); }
  uint64_t pauses() const { return pauses_.load(); }
  // On the loop thread: watchers by how far behind `wall_ms` (the wall
  // clock) what they were handed is, in milliseconds (revisions here are
  // hybrid timestamps, whose differences count no writes): counts per
  // bucket of `bounds_ms` (ascending; one more for past the last), sum.
  WatchHub::LagHistogram LagsInMillis(const std::vector<int64_t>& bounds_ms, int64_t wall_ms) const;

 private:
  struct Watcher {
    WatchSink* sink = nullptr;
    int64_t id = 0;
    WatchCreateRequest filter;
    KeyRange range;                                // engine keys
    Timestamp after;                               // everything at or below has been handed on
    std::unique_ptr<cluster::WatchFeed> catch_up;  // null: on the shared feed
    bool paused = false;                           // its stream was full: on no feed
    std::chrono::steady_clock::time_point progress_at;
  };
  struct Stream {
    std::map<int64_t, std::unique_ptr<Watcher>> watchers;
    int64_t next_id = 0;
  };

  // On the loop thread.
  void CreateOnLoop(cluster::Member& member, WatchSink* sink, const WatchCreateRequest& request);
  // A feed's changes, with their previous versions (one per change; empty
  // from a feed that did not ask for them).
  using Previous = std::vector<std::optional<Change>>;
  void OnShared(std::vector<Change> changes, Previous previous, Timestamp frontier);
  void OnCatchUp(Watcher* w, std::vector<Change> changes, Previous previous, Timestamp frontier);
  // Reads what `w` has not had yet (above w->after) with a feed of its own,
  // which OnCatchUp drops once it reaches the shared feed's frontier.
  void StartCatchUp(cluster::Member& member, Watcher* w);
  // Hands `changes` (ordered) to `w`: those it matches above its `after`,
  // with prev_kv if it asked. False if its stream is full (it was paused,
  // its catch-up feed dropped).
  bool Deliver(Watcher* w, const std::vector<Change>& changes, const Previous& previous,
               Timestamp frontier);
  void CancelWatcher(Watcher* w, std::string reason, int64_t compact_revision);
  void Remove(Watcher* w);
  void StopSharedIfIdle();

  Post post_;
  std::function<int64_t()> compact_revision_;
  const ClusterWatchesOptions options_;
  std::atomic<size_t> watcher_count_{0};
  std::atomic<size_t> paused_count_{0};
  std::atomic<uint64_t> pauses_{0};

  // The loop thread's.
  std::map<WatchSink*, Stream> streams_;
  std::unique_ptr<cluster::WatchFeed> shared_;
  Timestamp shared_frontier_;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_CLUSTER_WATCHES_H_
