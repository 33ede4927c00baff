#include "service/watch_hub.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "base/thread_name.h"
#include "service/kv_service.h"

namespace strata::service {

WatchHub::WatchHub(const MvccStore* store, std::function<int64_t()> compact_revision,
                   int64_t current_revision, WatchHubOptions options)
    // Not owned: an alias of no owner.
    : WatchHub(std::shared_ptr<const MvccStore>(std::shared_ptr<const MvccStore>(), store),
               std::move(compact_revision), current_revision, options) {}

WatchHub::WatchHub(std::shared_ptr<const MvccStore> store,
                   std::function<int64_t()> compact_revision, int64_t current_revision,
                   WatchHubOptions options)
    : compact_revision_(std::move(compact_revision)),
      options_(options),
      store_(std::move(store)),
      published_(current_revision),
      last_progress_(std::chrono::steady_clock::now()) {
  ring_from_ = current_revision + 1;
  thread_ = std::thread([this] {
    NameThisThread("strata-watches");
    Run();
  });
}

WatchHub::~WatchHub() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  thread_.join();
}

bool WatchHub::Matches(const Watcher& w, const Event& e) const {
  return w.filter.Wants(e.type == Event::Type::kDelete) && SpanContains(w.filter.span, e.kv.key);
}

void WatchHub::Publish(int64_t revision, std::vector<Event>&& events) {
  {
    MutexLock lock(mu_);
    published_ = revision;
    const size_t n = events.size();
    if (n > 0) {
      ring_.push_back({revision, std::move(events)});
      ring_size_ += n;
    }
    while (ring_size_ > options_.ring_events && !ring_.empty()) {
      ring_size_ -= ring_.front().events.size();
      ring_from_ = ring_.front().revision + 1;
      ring_.pop_front();
    }
    if (ring_.empty()) ring_from_ = std::min(ring_from_, revision + 1);
    // Wake the hub's thread only if someone watches and it is not already
    // due to run: a wake-up per revision costs a context switch per write.
    if (watcher_count_ == 0 || nudged_) return;
    nudged_ = true;
  }
  cv_.NotifyOne();
}

void WatchHub::Rebase(std::shared_ptr<const MvccStore> store, int64_t revision) {
  {
    MutexLock lock(mu_);
    store_ = std::move(store);
    // The ring holds revisions up to the old newest one; those after it
    // are in `store` only. Watchers read them from there, so the ring
    // starts again empty.
    published_ = std::max(published_, revision);
    ring_.clear();
    ring_size_ = 0;
    ring_from_ = published_ + 1;
    if (watcher_count_ == 0 || nudged_) return;
    nudged_ = true;
  }
  cv_.NotifyOne();
}

std::optional<WatchRefusal> RefuseWatch(const WatchCreateRequest& request, int64_t id,
                                        bool id_taken, size_t stream_watchers, size_t all_watchers,
                                        size_t max_per_stream, size_t max_watchers) {
  if (!request.span.range_end.empty() && request.span.range_end != std::string_view("\0", 1) &&
      request.span.key >= request.span.range_end) {
    return WatchRefusal{-1, "mvcc: watcher range is empty"};  // etcd's answer
  }
  if (id_taken) return WatchRefusal{id, "etcdserver: mvcc: duplicate watch ID provided"};
  if (stream_watchers >= max_per_stream) {
    return WatchRefusal{id, "strata: too many watchers on this stream"};
  }
  if (all_watchers >= max_watchers) return WatchRefusal{id, "strata: too many watchers"};
  return std::nullopt;
}

void WatchHub::Create(WatchSink* sink, const WatchCreateRequest& request) {
  MutexLock lock(mu_);
  auto& stream = streams_[sink];
  WatchResponse created;
  created.header.revision = published_;
  created.created = true;
  int64_t id = request.watch_id;
  if (id == 0 || id == -1) {
    while (stream.watchers.count(stream.next_id)) ++stream.next_id;
    id = stream.next_id++;
  }
  created.watch_id = id;
  auto refuse = [&](std::string why) {
    created.canceled = true;
    created.cancel_reason = std::move(why);
    sink->Offer(std::move(created), true);
  };
  if (auto refusal =
          RefuseWatch(request, id, stream.watchers.count(id) != 0, stream.watchers.size(),
                      watcher_count_, options_.max_watchers_per_stream, options_.max_watchers)) {
    created.watch_id = refusal->watch_id;
    return refuse(std::move(refusal->reason));
  }
  const int64_t compacted = compact_revision_();
  if (request.start_revision > 0 && request.start_revision < compacted) {
    sink->Offer(std::move(created), true);
    WatchResponse canceled;
    canceled.header.revision = published_;
    canceled.watch_id = id;
    canceled.canceled = true;
    canceled.compact_revision = compacted;
    // etcd 3.4 gives no reason: clients read compact_revision.
    sink->Offer(std::move(canceled), true);
    return;
  }
  auto w = std::make_shared<Watcher>();
  w->sink = sink;
  w->id = id;
  w->filter = request;
  w->next_revision = request.start_revision > 0 ? request.start_revision : published_ + 1;
  stream.watchers[id] = w;
  ++watcher_count_;
  sink->Offer(std::move(created), true);
  // Behind: to be read. The first watcher: the hub's thread sleeps without
  // a deadline while there is none, and now has progress to keep.
  if (w->next_revision <= published_ || watcher_count_ == 1) {
    nudged_ = true;
    cv_.NotifyOne();
  }
}

void WatchHub::Cancel(WatchSink* sink, int64_t watch_id) {
  MutexLock lock(mu_);
  auto it = streams_.find(sink);
  if (it == streams_.end() || it->second.watchers.erase(watch_id) == 0) return;
  --watcher_count_;
  WatchResponse r;
  r.header.revision = published_;
  r.watch_id = watch_id;
  r.canceled = true;
  sink->Offer(std::move(r), true);
  MaybeAnswerProgress(sink, it->second);
}

void WatchHub::RequestProgress(WatchSink* sink) {
  MutexLock lock(mu_);
  auto& stream = streams_[sink];
  if (!stream.progress_wanted) {
    stream.progress_wanted = true;
    stream.progress_at = published_;
  }
  MaybeAnswerProgress(sink, stream);
}

void WatchHub::MaybeAnswerProgress(WatchSink* sink, Stream& stream) {
  if (!stream.progress_wanted) return;
  // The promise: no event at or below the answer's revision is still to
  // come. That holds up to what the furthest-behind watcher has been sent,
  // which must reach what was published when the client asked. Answering
  // with that, rather than waiting until every watcher is level with the
  // newest revision at one instant, means writers cannot starve the answer.
  int64_t sent_through = published_;
  for (const auto& [id, w] : stream.watchers) {
    sent_through = std::min(sent_through, w->next_revision - 1);
  }
  if (sent_through < stream.progress_at) return;  // answered once they caught up
  WatchResponse r;
  r.header.revision = sent_through;
  r.watch_id = -1;
  sink->Offer(std::move(r), true);
  stream.progress_wanted = false;
}

void WatchHub::RemoveStream(WatchSink* sink) {
  MutexLock lock(mu_);
  auto it = streams_.find(sink);
  if (it == streams_.end()) return;
  watcher_count_ -= it->second.watchers.size();
  streams_.erase(it);
}

void WatchHub::Nudge(WatchSink*) {
  // The hub's loop looks at every held-back watcher.
  {
    MutexLock lock(mu_);
    nudged_ = true;
  }
  cv_.NotifyOne();
}

bool WatchHub::OfferEvents(const Watcher& w, int64_t header_revision, std::vector<Event>&& events) {
  WatchResponse r;
  r.header.revision = header_revision;
  r.watch_id = w.id;
  r.events = std::move(events);
  return service::OfferEvents(w.sink, std::move(r), w.filter.fragment, options_.fragment_bytes);
}

bool OfferEvents(WatchSink* sink, WatchResponse response, bool fragment, size_t fragment_bytes) {
  auto size_of = [](const Event& e) {
    size_t n = e.kv.key.size() + e.kv.value.size() + 64;
    if (e.prev_kv) n += e.prev_kv->key.size() + e.prev_kv->value.size() + 64;
    return n;
  };
  size_t total = 0;
  for (const auto& e : response.events) total += size_of(e);
  if (!fragment || total <= fragment_bytes || response.events.size() <= 1) {
    return sink->Offer(std::move(response), false);
  }
  std::vector<std::vector<Event>> parts(1);
  size_t bytes = 0;
  for (auto& e : response.events) {
    const size_t n = size_of(e);
    if (!parts.back().empty() && bytes + n > fragment_bytes) {
      parts.emplace_back();
      bytes = 0;
    }
    bytes += n;
    parts.back().push_back(std::move(e));
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    WatchResponse part;
    part.header = response.header;
    part.watch_id = response.watch_id;
    part.fragment = i + 1 < parts.size();
    part.events = std::move(parts[i]);
    if (!sink->Offer(std::move(part), /*must=*/i > 0) && i == 0) return false;
  }
  return true;
}

WatchHub::Floor WatchHub::ProtectedFloor(int64_t max_lag) const {
  MutexLock lock(mu_);
  Floor floor;
  for (const auto& [sink, stream] : streams_) {
    for (const auto& [id, w] : stream.watchers) {
      const int64_t lag = published_ - (w->next_revision - 1);
      if (lag <= 0 || lag > max_lag) continue;  // caught up, or too far behind to wait for
      if (w->next_revision - 1 < floor.revision) {
        floor.revision = w->next_revision - 1;
        floor.watch_id = id;
        floor.lag = lag;
      }
    }
  }
  return floor;
}

WatchHub::LagHistogram WatchHub::Lags(const std::vector<int64_t>& bounds) const {
  LagHistogram h;
  h.counts.assign(bounds.size() + 1, 0);
  MutexLock lock(mu_);
  for (const auto& [sink, stream] : streams_) {
    for (const auto& [id, w] : stream.watchers) {
      const int64_t lag = std::max<int64_t>(0, published_ - (w->next_revision - 1));
      h.counts[std::lower_bound(bounds.begin(), bounds.end(), lag) - bounds.begin()] += 1;
      h.sum += lag;
    }
  }
  return h;
}

size_t WatchHub::watchers() const {
  MutexLock lock(mu_);
  return watcher_count_;
}

void WatchHub::Run() {
  UniqueLock lock(mu_);
  while (!stop_) {
    const auto woken = [&]() STRATA_REQUIRES(mu_) { return stop_ || nudged_; };
    if (watcher_count_ == 0) {
      // Nothing to deliver or to tell until a watcher comes (which wakes
      // this): no wake-up every interval on a server nobody watches (a
      // cluster member's hub, whose clients watch the cluster, is one).
      cv_.Wait(lock, woken);
    } else {
      cv_.WaitFor(lock, options_.catch_up_interval, woken);
    }
    if (stop_) break;
    nudged_ = false;
    lock.unlock();
    Deliver();
    SendProgress();
    lock.lock();
  }
}

std::vector<Event> WatchHub::ReadHistory(const MvccStore& store, const Watcher& w, int64_t from,
                                         int64_t until, int64_t* read_through,
                                         bool* compacted) const {
  std::vector<Event> out;
  *read_through = until;
  auto range = SpanToKeyRange(w.filter.span);
  if (!range || from > until) return out;
  const int64_t horizon = static_cast<int64_t>(store.compaction_horizon().value());
  if (from < horizon) {
    *compacted = true;
    return out;
  }
  auto add = [&](std::string_view key, Timestamp ts, bool deleted, std::string_view bytes) {
    Event e;
    if (deleted) {
      e.type = Event::Type::kDelete;
      e.kv.key = std::string(key);
      e.kv.mod_revision = static_cast<int64_t>(ts.value());
    } else {
      auto kv = StoredToKeyValue(key, ts, bytes);
      if (!kv) return;
      e.type = Event::Type::kPut;
      e.kv = std::move(*kv);
    }
    if (!Matches(w, e)) return;
    const bool creates = e.type == Event::Type::kPut && e.kv.version == 1;  // no prev_kv (etcd)
    if (w.filter.prev_kv && !creates && ts.value() > 0) {
      auto prev = store.Get(key, Timestamp(ts.value() - 1));
      if (prev.ok() && prev.value().found && !prev.value().deleted) {
        e.prev_kv = StoredToKeyValue(key, prev.value().timestamp, prev.value().value);
      }
    }
    out.push_back(std::move(e));
  };
  int64_t since = from - 1;
  if (from == horizon && horizon > 0) {
    // The engine's history starts above the horizon; what it kept at the
    // horizon itself is each key's newest version there.
    auto r = store.ScanVisit(*range, Timestamp(static_cast<uint64_t>(horizon)),
                             std::numeric_limits<size_t>::max(), [&](const ScanItemView& item) {
                               if (static_cast<int64_t>(item.timestamp.value()) == horizon) {
                                 add(item.key, item.timestamp, false, item.value);
                               }
                             });
    if (!r.ok()) {
      *compacted = true;
      return {};
    }
    since = horizon;
  }
  size_t limit = options_.catch_up_batch;
  for (;;) {
    auto changes = store.Changes(Timestamp(static_cast<uint64_t>(since)), *range, limit);
    if (!changes.ok()) {
      *compacted = true;
      return {};
    }
    auto& list = changes.value().changes;
    // Only durable revisions, and never part of one.
    while (!list.empty() && static_cast<int64_t>(list.back().timestamp.value()) > until) {
      list.pop_back();
    }
    bool cut = changes.value().more && list.size() == changes.value().changes.size();
    if (cut && !list.empty()) {
      const uint64_t last = list.back().timestamp.value();
      const bool single = list.front().timestamp.value() == last;
      if (single) {  // one revision bigger than the batch: read it whole
        limit = std::numeric_limits<size_t>::max();
        continue;
      }
      while (!list.empty() && list.back().timestamp.value() == last) list.pop_back();
      *read_through = static_cast<int64_t>(last) - 1;
    }
    for (const auto& c : list) add(c.key, c.timestamp, c.deleted, c.value);
    return out;
  }
}

bool WatchHub::IsLive(const std::shared_ptr<Watcher>& w) const {
  auto sit = streams_.find(w->sink);
  if (sit == streams_.end()) return false;
  auto wit = sit->second.watchers.find(w->id);
  return wit != sit->second.watchers.end() && wit->second == w;
}

std::vector<Event> WatchHub::ReadRing(const Watcher& w, int64_t* read_through) const {
  std::vector<Event> events;
  *read_through = published_;
  auto it = std::lower_bound(ring_.begin(), ring_.end(), w.next_revision,
                             [](const Revision& r, int64_t rev) { return r.revision < rev; });
  for (; it != ring_.end(); ++it) {
    if (!events.empty() && events.size() + it->events.size() > options_.catch_up_batch) {
      *read_through = it->revision - 1;  // whole revisions only
      break;
    }
    for (const auto& e : it->events) {
      if (!Matches(w, e)) continue;
      events.push_back(e);
      if (!w.filter.prev_kv) events.back().prev_kv.reset();
    }
  }
  return events;
}

void WatchHub::Advance(Watcher& w, std::vector<Event>&& events, int64_t read_through) {
  if (!events.empty() && !OfferEvents(w, published_, std::move(events))) {
    return;  // the stream is full: again once it drains
  }
  w.next_revision = read_through + 1;
  if (w.next_revision <= published_) nudged_ = true;  // more to read
  auto sit = streams_.find(w.sink);
  MaybeAnswerProgress(sit->first, sit->second);
}

void WatchHub::Deliver() {
  std::vector<std::shared_ptr<Watcher>> behind;
  {
    MutexLock lock(mu_);
    for (auto& [sink, stream] : streams_) {
      for (auto& [id, w] : stream.watchers) {
        if (w->next_revision <= published_) behind.push_back(w);
      }
    }
  }
  for (auto& w : behind) {
    UniqueLock lock(mu_);
    if (!IsLive(w) || w->next_revision > published_) continue;
    int64_t read_through = 0;
    if (w->next_revision >= ring_from_) {
      // Read and offered under one hold of mu_: nothing is published in
      // between, so next_revision moves exactly past what was read.
      auto events = ReadRing(*w, &read_through);
      Advance(*w, std::move(events), read_through);
      continue;
    }
    const int64_t from = w->next_revision;
    const int64_t until = published_;
    const std::shared_ptr<const MvccStore> store = store_;  // alive through the read
    lock.unlock();
    bool compacted = false;
    auto events = ReadHistory(*store, *w, from, until, &read_through, &compacted);
    lock.lock();
    if (!IsLive(w) || w->next_revision != from) continue;
    if (!compacted) {
      Advance(*w, std::move(events), read_through);
      continue;
    }
    WatchResponse r;
    r.header.revision = published_;
    r.watch_id = w->id;
    r.canceled = true;
    // The store's horizon too: a rebased hub may learn the compaction
    // from the store before compact_revision_ says it.
    r.compact_revision =
        std::max(compact_revision_(), static_cast<int64_t>(store->compaction_horizon().value()));
    // No cancel_reason, as etcd 3.4: clients read compact_revision.
    auto sit = streams_.find(w->sink);
    sit->second.watchers.erase(w->id);
    --watcher_count_;
    w->sink->Offer(std::move(r), true);
    MaybeAnswerProgress(sit->first, sit->second);
  }
}

void WatchHub::SendProgress() {
  const auto now = std::chrono::steady_clock::now();
  MutexLock lock(mu_);
  if (now - last_progress_ < options_.progress_interval) return;
  last_progress_ = now;
  for (auto& [sink, stream] : streams_) {
    for (auto& [id, w] : stream.watchers) {
      // Only to watchers level with the newest revision, as etcd's synced.
      if (w->next_revision <= published_ || !w->filter.progress_notify) continue;
      WatchResponse r;
      r.header.revision = published_;
      r.watch_id = id;
      sink->Offer(std::move(r), true);
    }
  }
}

}  // namespace strata::service
