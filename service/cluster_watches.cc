#include "service/cluster_watches.h"

#include <algorithm>
#include <future>
#include <string>
#include <utility>
#include <vector>

#include "cluster/hybrid_clock.h"
#include "service/cluster_kv.h"
#include "service/kv_rules.h"

namespace strata::service {
namespace {

// A change to an etcd key (engine key 0x01 + key) as a watch event; nullopt
// for a stored value that is not etcd's.
std::optional<Event> ToEvent(const Change& c) {
  const std::string_view key = std::string_view(c.key).substr(1);
  Event e;
  if (c.deleted) {
    e.type = Event::Type::kDelete;
    e.kv.key = std::string(key);
    e.kv.mod_revision = RevisionOf(c.timestamp);
    return e;
  }
  auto kv = StoredToKeyValue(key, c.timestamp, c.value);
  if (!kv) return std::nullopt;
  e.type = Event::Type::kPut;
  e.kv = std::move(*kv);
  return e;
}

}  // namespace

ClusterWatches::ClusterWatches(Post post, std::function<int64_t()> compact_revision,
                               ClusterWatchesOptions options)
    : post_(std::move(post)), compact_revision_(std::move(compact_revision)), options_(options) {}

ClusterWatches::~ClusterWatches() = default;

void ClusterWatches::StopFeeds() {
  shared_.reset();
  for (auto& [sink, stream] : streams_) {
    for (auto& [id, w] : stream.watchers) w->catch_up.reset();
  }
}

void ClusterWatches::Create(WatchSink* sink, const WatchCreateRequest& request) {
  post_([this, sink, request](cluster::Member& member) { CreateOnLoop(member, sink, request); });
}

void ClusterWatches::CreateOnLoop(cluster::Member& member, WatchSink* sink,
                                  const WatchCreateRequest& request) {
  Stream& stream = streams_[sink];
  int64_t id = request.watch_id;
  if (id == 0 || id == -1) {
    while (stream.watchers.count(stream.next_id) != 0) ++stream.next_id;
    id = stream.next_id++;
  }
  auto refuse = [&](int64_t watch_id, std::string why) {
    WatchResponse r;
    r.header.revision = RevisionOf(member.coordinator().ReadTimestamp());
    r.watch_id = watch_id;
    r.created = r.canceled = true;
    r.cancel_reason = std::move(why);
    sink->Offer(std::move(r), /*must=*/true);
  };
  if (auto refusal = RefuseWatch(request, id, stream.watchers.count(id) != 0,
                                 stream.watchers.size(), watcher_count_.load(),
                                 options_.max_watchers_per_stream, options_.max_watchers)) {
    return refuse(refusal->watch_id, std::move(refusal->reason));
  }
  std::optional<KeyRange> range = ClusterKv::EngineRange(request.span);
  auto w = std::make_unique<Watcher>();
  w->sink = sink;
  w->id = id;
  w->filter = request;
  w->range = range.value_or(KeyRange{std::string(1, '\x01'), std::string(1, '\x01')});
  w->progress_at = std::chrono::steady_clock::now();
  const Timestamp now = member.coordinator().ReadTimestamp();
  w->after = request.start_revision > 0 ? Timestamp(request.start_revision - 1) : now;
  if (!shared_) {
    shared_frontier_ = now;
    // Any watcher may want prev_kv: the shared feed reads previous versions.
    cluster::WatchFeedOptions shared_options = options_.feed;
    shared_options.with_previous = true;
    shared_ = member.Watch(
        *ClusterKv::EngineRange(KeySpan{"", std::string(1, '\0')}), now, shared_options,
        [this](std::vector<Change> changes, Previous previous, Timestamp frontier) {
          OnShared(std::move(changes), std::move(previous), frontier);
        },
        [this](Status error) {
          // The shared feed starts at "now": nothing it reads is compacted,
          // so an error ends every live watcher, which may watch again.
          std::vector<Watcher*> live;
          for (auto& [s, st] : streams_) {
            for (auto& [i, wp] : st.watchers) {
              if (!wp->catch_up) live.push_back(wp.get());
            }
          }
          for (Watcher* lw : live) CancelWatcher(lw, "strata: " + std::string(error.message()), 0);
          shared_.reset();
        });
  }
  Watcher* raw = w.get();
  stream.watchers.emplace(id, std::move(w));
  watcher_count_ = watcher_count_.load() + 1;
  WatchResponse created;
  created.header.revision = RevisionOf(std::max(raw->after, now));
  created.watch_id = id;
  created.created = true;
  sink->Offer(std::move(created), /*must=*/true);
  // History first: its own feed until it reaches the shared one.
  if (raw->after < shared_frontier_) StartCatchUp(member, raw);
}

void ClusterWatches::StartCatchUp(cluster::Member& member, Watcher* w) {
  cluster::WatchFeedOptions catch_up_options = options_.feed;
  catch_up_options.with_previous = w->filter.prev_kv;
  w->catch_up = member.Watch(
      w->range, w->after, catch_up_options,
      [this, w](std::vector<Change> changes, Previous previous, Timestamp frontier) {
        OnCatchUp(w, std::move(changes), std::move(previous), frontier);
      },
      [this, w](Status error) {
        // etcd 3.4 gives no reason for a compacted start: clients read
        // compact_revision.
        if (error.code() == StatusCode::kCompacted) {
          return CancelWatcher(w, "", compact_revision_());
        }
        CancelWatcher(w, "strata: " + std::string(error.message()), 0);
      });
}

void ClusterWatches::Nudge(WatchSink* sink) {
  post_([this, sink](cluster::Member& member) {
    auto stream = streams_.find(sink);
    if (stream == streams_.end()) return;
    for (auto& [id, w] : stream->second.watchers) {
      if (!w->paused) continue;
      w->paused = false;
      paused_count_ = paused_count_.load() - 1;
      // What the shared feed handed on meanwhile, from history; at the
      // shared frontier already, it simply rejoins.
      if (w->after < shared_frontier_) StartCatchUp(member, w.get());
    }
  });
}

WatchHub::LagHistogram ClusterWatches::LagsInMillis(const std::vector<int64_t>& bounds_ms,
                                                    int64_t wall_ms) const {
  WatchHub::LagHistogram h;
  h.counts.assign(bounds_ms.size() + 1, 0);
  for (const auto& [sink, stream] : streams_) {
    for (const auto& [id, w] : stream.watchers) {
      const int64_t handed_ms =
          static_cast<int64_t>(cluster::HybridLogicalClock::PhysicalMillis(w->after));
      const int64_t lag = std::max<int64_t>(0, wall_ms - handed_ms);
      h.counts[std::lower_bound(bounds_ms.begin(), bounds_ms.end(), lag) - bounds_ms.begin()] += 1;
      h.sum += lag;
    }
  }
  return h;
}

void ClusterWatches::OnShared(std::vector<Change> changes, Previous previous, Timestamp frontier) {
  shared_frontier_ = std::max(shared_frontier_, frontier);
  std::vector<Watcher*> live;
  for (auto& [sink, stream] : streams_) {
    for (auto& [id, w] : stream.watchers) {
      if (!w->catch_up && !w->paused) live.push_back(w.get());
    }
  }
  for (Watcher* w : live) Deliver(w, changes, previous, frontier);
}

void ClusterWatches::OnCatchUp(Watcher* w, std::vector<Change> changes, Previous previous,
                               Timestamp frontier) {
  if (!Deliver(w, changes, previous, frontier)) return;
  // Caught up with the shared feed: it goes on from there (what the shared
  // feed hands on at or below w->after is skipped).
  if (w->after >= shared_frontier_) w->catch_up.reset();
}

bool ClusterWatches::Deliver(Watcher* w, const std::vector<Change>& changes,
                             const Previous& previous, Timestamp frontier) {
  WatchResponse r;
  r.header.revision = RevisionOf(frontier);
  r.watch_id = w->id;
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    if (c.timestamp <= w->after || !w->range.Contains(c.key)) continue;
    if (!w->filter.Wants(c.deleted)) continue;
    auto e = ToEvent(c);
    if (!e) continue;
    if (w->filter.prev_kv && i < previous.size() && previous[i]) {
      if (auto before = ToEvent(*previous[i])) e->prev_kv = std::move(before->kv);
    }
    r.events.push_back(std::move(*e));
  }
  const Timestamp reached = std::max(w->after, frontier);
  const auto now = std::chrono::steady_clock::now();
  if (r.events.empty()) {
    if (!w->filter.progress_notify || now - w->progress_at < options_.progress_interval) {
      w->after = reached;
      return true;
    }
  }
  w->progress_at = now;
  if (OfferEvents(w->sink, std::move(r), w->filter.fragment, options_.fragment_bytes)) {
    w->after = reached;
    return true;
  }
  // Its stream is full: it pauses where it was (w->after) until the stream
  // drains (Nudge). Dropping its catch-up feed (from inside the feed's
  // callback) is safe: a feed checks it is alive after calling back.
  w->paused = true;
  paused_count_ = paused_count_.load() + 1;
  pauses_ = pauses_.load() + 1;
  w->catch_up.reset();
  return false;
}

void ClusterWatches::CancelWatcher(Watcher* w, std::string reason, int64_t compact_revision) {
  WatchResponse r;
  r.header.revision = RevisionOf(shared_frontier_);
  r.watch_id = w->id;
  r.canceled = true;
  r.cancel_reason = std::move(reason);
  r.compact_revision = compact_revision;
  w->sink->Offer(std::move(r), /*must=*/true);
  Remove(w);
}

void ClusterWatches::Remove(Watcher* w) {
  auto stream = streams_.find(w->sink);
  if (stream == streams_.end()) return;
  if (w->paused) paused_count_ = paused_count_.load() - 1;
  stream->second.watchers.erase(w->id);  // destroys w (and its catch-up feed)
  watcher_count_ = watcher_count_.load() - 1;
  StopSharedIfIdle();
}

void ClusterWatches::StopSharedIfIdle() {
  if (watcher_count_.load() == 0) shared_.reset();
}

void ClusterWatches::Cancel(WatchSink* sink, int64_t watch_id) {
  post_([this, sink, watch_id](cluster::Member&) {
    auto stream = streams_.find(sink);
    if (stream == streams_.end()) return;
    auto w = stream->second.watchers.find(watch_id);
    if (w == stream->second.watchers.end()) return;
    WatchResponse r;
    r.header.revision = RevisionOf(shared_frontier_);
    r.watch_id = watch_id;
    r.canceled = true;
    sink->Offer(std::move(r), /*must=*/true);
    Remove(w->second.get());
  });
}

void ClusterWatches::RequestProgress(WatchSink* sink) {
  post_([this, sink](cluster::Member& member) {
    // No event at or below the lowest point any of its watchers reached.
    Timestamp revision = member.coordinator().ReadTimestamp();
    auto stream = streams_.find(sink);
    if (stream != streams_.end()) {
      for (auto& [id, w] : stream->second.watchers) revision = std::min(revision, w->after);
    }
    WatchResponse r;
    r.header.revision = RevisionOf(revision);
    r.watch_id = -1;
    sink->Offer(std::move(r), /*must=*/true);
  });
}

void ClusterWatches::RemoveStream(WatchSink* sink) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> removed = done->get_future();
  const bool posted = post_([this, sink, done](cluster::Member&) {
    auto stream = streams_.find(sink);
    if (stream != streams_.end()) {
      watcher_count_ = watcher_count_.load() - stream->second.watchers.size();
      for (const auto& [id, w] : stream->second.watchers) {
        if (w->paused) paused_count_ = paused_count_.load() - 1;
      }
      streams_.erase(stream);
      StopSharedIfIdle();
    }
    done->set_value();
  });
  if (posted) removed.wait();
}

}  // namespace strata::service
