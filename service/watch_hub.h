// WatchHub: etcd's watches over the key-value model's revisions.
//
// Every durable revision's events come in through Publish, in order, and
// go into a ring of recent revisions. Publish only records and wakes the
// hub's own thread, so a write is never delayed by its watchers. That thread
// gives each watcher everything between its next revision and the newest
// published one in one response: whole revisions, from the ring, or from
// the engine's history for a watcher whose revisions left the ring. A
// watcher that keeps up gets one revision a response; one that falls behind
// (a slow stream, or writers faster than delivery) gets several revisions
// in one, as etcd sends to its unsynced watchers, so delivery costs less the
// more it lags. A revision is never split across responses (except into
// fragments, for a watcher that asked for them).
//
// Publish never waits for a watcher: when a stream's queue is over its
// bound, its watchers stay where they are and read on once it drains, so a
// slow client costs memory only up to the bound and never slows writers
// (the synced / unsynced split of etcd's watchable store).
//
// A watcher whose next revision was compacted away is cancelled with
// compact_revision, as in etcd.
#ifndef STRATA_SERVICE_WATCH_HUB_H_
#define STRATA_SERVICE_WATCH_HUB_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "service/kv_types.h"
#include "strata/mvcc_store.h"

namespace strata::service {

struct WatchCreateRequest {
  KeySpan span;
  int64_t start_revision = 0;  // <= 0: from the next revision
  bool progress_notify = false;
  bool no_put = false;
  bool no_delete = false;
  bool prev_kv = false;
  bool fragment = false;
  int64_t watch_id = 0;  // 0: the server picks

  // etcd's filters: NOPUT and NODELETE.
  bool Wants(bool is_delete) const { return is_delete ? !no_delete : !no_put; }
};

struct WatchResponse {
  ResponseHeader header;
  int64_t watch_id = 0;
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;
  std::string cancel_reason;
  bool fragment = false;
  std::vector<Event> events;
};

// One client stream's outgoing queue (the front end implements it).
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  // Queues `response`. Returns false, queuing nothing, if the queue is over
  // its bound, unless `must` (small control responses: created, canceled,
  // progress), which are always queued.
  virtual bool Offer(WatchResponse response, bool must) = 0;
};

// Offers `response` (events, not a control response) to `sink`: whole, or,
// for a watcher created with `fragment` whose events come to more than
// `fragment_bytes` (etcd: --max-request-bytes), as etcd's fragments: every
// part but the last says fragment, and once the first is queued the rest
// are too (a client reassembles them, so none may be missing). False if
// nothing was queued (the stream is full). On one node and over a cluster.
bool OfferEvents(WatchSink* sink, WatchResponse response, bool fragment, size_t fragment_bytes);

// etcd's refusals of a watch creation, the same on one node and over a
// cluster: an inverted range (watch_id -1), an id the stream already uses,
// and the bounds on watchers. nullopt: the watch may be created.
struct WatchRefusal {
  int64_t watch_id = 0;
  std::string reason;
};
std::optional<WatchRefusal> RefuseWatch(const WatchCreateRequest& request, int64_t id,
                                        bool id_taken, size_t stream_watchers, size_t all_watchers,
                                        size_t max_per_stream, size_t max_watchers);

// What a front end's watch stream asks for (WatchHub on one node,
// ClusterWatches over a cluster). Responses of one stream keep the order of
// its requests.
class Watches {
 public:
  virtual ~Watches() = default;
  // Creates a watcher on `sink`'s stream and queues its "created" response
  // (or a cancelled one, naming why).
  virtual void Create(WatchSink* sink, const WatchCreateRequest& request) = 0;
  virtual void Cancel(WatchSink* sink, int64_t watch_id) = 0;
  // A progress request: one response with watch_id -1 promising no event
  // at or below its revision to any watcher of the stream.
  virtual void RequestProgress(WatchSink* sink) = 0;
  // The stream ended: forget its watchers. After it returns, `sink` is
  // never touched again.
  virtual void RemoveStream(WatchSink* sink) = 0;
  // `sink`'s queue drained: watchers held back (its own, or any) may go on.
  virtual void Nudge(WatchSink* sink) = 0;
};

struct WatchHubOptions {
  size_t max_watchers_per_stream = 10000;
  size_t max_watchers = 100000;
  // Recent revisions kept in memory for watchers catching up.
  size_t ring_events = 100000;
  // Events read from history per catch-up step of one watcher.
  size_t catch_up_batch = 1000;
  // How often a watcher with progress_notify gets an empty response.
  std::chrono::milliseconds progress_interval{10 * 60 * 1000};
  std::chrono::milliseconds catch_up_interval{5};
  // A watcher created with fragment gets responses larger than this split
  // into fragments (etcd: --max-request-bytes).
  size_t fragment_bytes = 1536 * 1024;
};

class WatchHub final : public Watches {
 public:
  // `store` must outlive the hub; `current_revision` and `compact_revision`
  // read the key-value model's.
  WatchHub(const MvccStore* store, std::function<int64_t()> compact_revision,
           int64_t current_revision, WatchHubOptions options = {});
  // Over a store the hub shares (a replica's, which Rebase replaces).
  WatchHub(std::shared_ptr<const MvccStore> store, std::function<int64_t()> compact_revision,
           int64_t current_revision, WatchHubOptions options = {});
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // The pipeline's event sink: revision `revision` is durable.
  void Publish(int64_t revision, std::vector<Event>&& events);

  // The key space was replaced by a later state of the same history (a
  // replica restored from a snapshot, service/kv_replica.h): from now on
  // history is read from `store`, whose newest revision is `revision`.
  // Every watcher stays; one that is behind catches up from `store`, or is
  // cancelled with compact_revision if what it needs was compacted there.
  // What the hub's thread reads from the old store meanwhile stays valid:
  // it is the same history, and the hub keeps the old store alive until
  // that read ends.
  void Rebase(std::shared_ptr<const MvccStore> store, int64_t revision);

  // Watches; a progress response waits until every watcher of the stream
  // has caught up.
  void Create(WatchSink* sink, const WatchCreateRequest& request) override;
  void Cancel(WatchSink* sink, int64_t watch_id) override;
  void RequestProgress(WatchSink* sink) override;
  void RemoveStream(WatchSink* sink) override;
  void Nudge(WatchSink* sink) override;

  size_t watchers() const;
  // How many watchers are how far behind the newest revision: counts[i]
  // lag more than bounds[i-1] and at most bounds[i] revisions; the last
  // count, more than every bound (a metric's histogram); sum, their lags.
  struct LagHistogram {
    std::vector<uint64_t> counts;
    int64_t sum = 0;
  };
  LagHistogram Lags(const std::vector<int64_t>& bounds) const;

  // What watchers that keep up still need: the highest revision compaction
  // may remove physically without cancelling any watcher lagging at most
  // `max_lag` revisions behind the newest, so a compaction never breaks a
  // watcher that keeps up. One further behind is not waited for: once what
  // it needs is gone it is cancelled with compact_revision, as in etcd.
  struct Floor {
    int64_t revision = INT64_MAX;  // INT64_MAX: no watcher holds anything
    int64_t watch_id = 0;          // the watcher that holds it
    int64_t lag = 0;               // its distance behind the newest revision
  };
  Floor ProtectedFloor(int64_t max_lag) const;

 private:
  struct Watcher {
    WatchSink* sink;
    int64_t id;
    WatchCreateRequest filter;
    int64_t next_revision;  // the first revision it has not been sent
  };
  struct Stream {
    std::map<int64_t, std::shared_ptr<Watcher>> watchers;
    int64_t next_id = 0;
    bool progress_wanted = false;
    int64_t progress_at = 0;  // published_ when the progress was requested
  };
  struct Revision {
    int64_t revision;
    std::vector<Event> events;
  };

  void Run();
  bool Matches(const Watcher& w, const Event& e) const;
  // `w` is still a watcher of a live stream.
  bool IsLive(const std::shared_ptr<Watcher>& w) const STRATA_REQUIRES(mu_);
  // w's events from the ring, from w.next_revision up to the
  // newest (or fewer whole revisions, at most a catch-up batch).
  std::vector<Event> ReadRing(const Watcher& w, int64_t* read_through) const STRATA_REQUIRES(mu_);
  // Reads what `w` missed from `store`, from `from` on, up to `until`,
  // whole revisions.
  std::vector<Event> ReadHistory(const MvccStore& store, const Watcher& w, int64_t from,
                                 int64_t until, int64_t* read_through, bool* compacted) const;
  // Gives every watcher that is behind what it has not been sent.
  void Deliver();
  // Offers `events` and moves w past `read_through`, or leaves it
  // where it is if its stream is full.
  void Advance(Watcher& w, std::vector<Event>&& events, int64_t read_through) STRATA_REQUIRES(mu_);
  // Offers `events` to w's stream (service::OfferEvents); false if the
  // stream is full.
  bool OfferEvents(const Watcher& w, int64_t header_revision, std::vector<Event>&& events);
  void SendProgress();
  void MaybeAnswerProgress(WatchSink* sink, Stream& stream) STRATA_REQUIRES(mu_);

  std::function<int64_t()> compact_revision_;
  const WatchHubOptions options_;

  // mu_ also guards each Watcher's next_revision and each Stream (clang's
  // analysis cannot name another object's mutex in a nested struct).
  mutable Mutex mu_;
  CondVar cv_;
  // Owned only once Rebase gave one (the constructor's is the caller's).
  std::shared_ptr<const MvccStore> store_ STRATA_GUARDED_BY(mu_);
  int64_t published_ STRATA_GUARDED_BY(mu_);
  std::deque<Revision> ring_ STRATA_GUARDED_BY(mu_);
  size_t ring_size_ STRATA_GUARDED_BY(mu_) = 0;   // events in ring_
  int64_t ring_from_ STRATA_GUARDED_BY(mu_) = 0;  // every event from this revision on is in ring_
  std::map<WatchSink*, Stream> streams_ STRATA_GUARDED_BY(mu_);
  size_t watcher_count_ STRATA_GUARDED_BY(mu_) = 0;
  bool stop_ STRATA_GUARDED_BY(mu_) = false;
  bool nudged_ STRATA_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point last_progress_;
  std::thread thread_;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_WATCH_HUB_H_
