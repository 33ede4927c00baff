// WatchHub: etcd's watches over the key-value model's revisions.
//
// Every durable revision's events come in through Publish, in order. A
// watcher is either
//  - synced: it has seen everything published; Publish hands it the
//    matching events of each new revision at once, one response per
//    revision (a revision is never split across responses), or
//  - catching up: it starts in the past, or its stream fell behind. The
//    hub's own thread reads what it missed from a ring of recent revisions,
//    or from the engine's history for older ones, and moves it to synced
//    once it reaches the newest revision.
// Publish never waits for a watcher: when a stream's queue is over its
// bound the watcher drops to catching up and reads history later, so a slow
// client costs memory only up to the bound and never slows writers (the
// synced / unsynced split of etcd's watchable store).
//
// A watcher whose next revision was compacted away is cancelled with
// compact_revision, as in etcd.
#ifndef STRATA_SERVICE_WATCH_HUB_H_
#define STRATA_SERVICE_WATCH_HUB_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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

class WatchHub final {
 public:
  // `store` must outlive the hub; `current_revision` and `compact_revision`
  // read the key-value model's.
  WatchHub(const MvccStore* store, std::function<int64_t()> compact_revision,
           int64_t current_revision, WatchHubOptions options = {});
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // The pipeline's event sink: revision `revision` is durable.
  void Publish(int64_t revision, std::vector<Event>&& events);

  // Creates a watcher on `sink`'s stream and queues its "created" response
  // (or a cancelled one, naming why). Responses of one stream keep the order
  // of its requests.
  void Create(WatchSink* sink, const WatchCreateRequest& request);
  void Cancel(WatchSink* sink, int64_t watch_id);
  // A progress request: one response with watch_id -1 once every watcher of
  // the stream has caught up, promising no event at or below its revision.
  void RequestProgress(WatchSink* sink);
  // The stream ended: forget its watchers. After it returns, the hub never
  // touches `sink` again.
  void RemoveStream(WatchSink* sink);
  // The stream's queue drained: watchers held back may go on.
  void Nudge();

  size_t watchers() const;

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
    bool synced;
    std::chrono::steady_clock::time_point last_sent;
  };
  struct Stream {
    std::map<int64_t, std::shared_ptr<Watcher>> watchers;
    int64_t next_id = 0;
    bool progress_wanted = false;
  };
  struct Revision {
    int64_t revision;
    std::vector<Event> events;
  };

  void Run();
  bool Matches(const Watcher& w, const Event& e) const;
  std::vector<Event> Filter(const Watcher& w, const std::vector<Event>& events) const;
  // Reads what `w` missed, from `from` on, up to `until`, whole revisions.
  std::vector<Event> ReadHistory(const Watcher& w, int64_t from, int64_t until,
                                 int64_t* read_through, bool* compacted) const;
  void CatchUp();
  // Offers `events` to w's stream as one response, or as fragments if it
  // asked for them and they are large; false if the stream is full.
  bool OfferEvents(const Watcher& w, int64_t header_revision, std::vector<Event>&& events);
  void SendProgress();
  void MaybeAnswerProgress(WatchSink* sink, Stream& stream);  // mu_ held

  const MvccStore* store_;
  std::function<int64_t()> compact_revision_;
  const WatchHubOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t published_;          // guarded by mu_
  std::deque<Revision> ring_;  // guarded by mu_
  size_t ring_size_ = 0;       // guarded by mu_: events in ring_
  int64_t ring_from_ = 0;      // guarded by mu_: every event from this revision on is in ring_
  std::map<WatchSink*, Stream> streams_;  // guarded by mu_
  size_t watcher_count_ = 0;              // guarded by mu_
  bool stop_ = false;                     // guarded by mu_
  bool nudged_ = false;                   // guarded by mu_
  std::chrono::steady_clock::time_point last_progress_;
  std::thread thread_;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_WATCH_HUB_H_
