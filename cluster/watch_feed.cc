#include "cluster/watch_feed.h"

#include <utility>

namespace strata::cluster {

WatchFeed::WatchFeed(Peers* peers, Timers* timers, Coordinator* holder, KeyRange range,
                     Timestamp after, WatchFeedOptions options, OnChanges on_changes,
                     OnError on_error)
    : peers_(peers),
      timers_(timers),
      holder_(holder),
      range_(std::move(range)),
      options_(options),
      on_changes_(std::move(on_changes)),
      on_error_(std::move(on_error)),
      merger_(peers->map().shards().size(), after),
      handed_on_(after) {
  for (const Shard& shard : peers->map().shards()) {
    ShardState state;
    state.shard = shard.id;
    state.after = after;
    shards_.push_back(state);
  }
  MoveHold();
}

WatchFeed::~WatchFeed() {
  *alive_ = false;
  if (holder_ != nullptr && held_) holder_->ReleaseSnapshot(*held_);
}

void WatchFeed::MoveHold() {
  if (holder_ == nullptr || held_ == handed_on_) return;
  holder_->HoldSnapshotAt(handed_on_);
  if (held_) holder_->ReleaseSnapshot(*held_);
  held_ = handed_on_;
}

void WatchFeed::Start() {
  for (size_t i = 0; i < shards_.size(); ++i) Read(i);
}

void WatchFeed::ReadLater(size_t index, std::chrono::milliseconds delay) {
  timers_->After(delay, [this, index, reads = shards_[index].reads, alive = alive_] {
    if (*alive && shards_[index].reads == reads) Read(index);
  });
}

void WatchFeed::Read(size_t index) { Send(index, /*poll=*/true); }

void WatchFeed::Probe(size_t index) {
  // Without long polls, the poll itself is answered at once.
  Send(index, /*poll=*/options_.park.count() == 0);
}

void WatchFeed::Send(size_t index, bool poll) {
  if (failed_) return;
  ShardState& state = shards_[index];
  if (poll ? state.in_flight : state.probing) return;  // its answer decides the next read
  if (poll) ++state.reads;
  // A shard ahead of the frontier waits while the merger holds enough.
  if (merger_.pending() > options_.max_pending && state.after > merger_.frontier()) {
    if (poll) ReadLater(index, options_.poll_interval);
    return;
  }
  (poll ? state.in_flight : state.probing) = true;
  const bool held = poll && options_.park.count() > 0;
  const Timestamp from = state.after;
  const uint64_t cursor = state.cursor;
  ShardWatch watch{range_,
                   from,
                   cursor,
                   options_.page_limit,
                   options_.with_previous,
                   held ? static_cast<uint32_t>(options_.park.count()) : 0};
  peers_->Call(state.shard, std::move(watch),
               [this, index, poll, held, from, cursor, alive = alive_](const PeerReply* reply) {
                 if (!*alive || failed_) return;
                 ShardState& state = shards_[index];
                 (poll ? state.in_flight : state.probing) = false;
                 const auto* page = ReplyAs<ShardWatchReply>(reply);
                 if (page == nullptr) {
                   const Status error = CallFailure(reply, "the shard did not answer");
                   if (error.code() == StatusCode::kCompacted) {
                     failed_ = true;
                     // A copy: the consumer may destroy this feed in it.
                     const OnError on_error = on_error_;
                     return on_error(error);
                   }
                   if (poll) ReadLater(index, options_.retry_interval);
                   return;
                 }
                 if (state.after != from || state.cursor != cursor) {
                   // The other read of this shard moved the feed on since this one
                   // was sent: its answer overlaps what was taken. Read from here.
                   if (poll) Read(index);
                   return;
                 }
                 const bool news = !page->changes.empty();
                 const Timestamp newest = news ? page->changes.back().timestamp : Timestamp();
                 merger_.Add(page->changes, page->previous);
                 merger_.Resolve(index, page->resolved);
                 state.after = std::max(state.after, page->resolved);
                 state.cursor = page->cursor;
                 std::vector<std::optional<Change>> previous;
                 std::vector<Change> released =
                     merger_.Release(options_.with_previous ? &previous : nullptr);
                 const Timestamp frontier = merger_.frontier();
                 if (!released.empty() || frontier > handed_on_) {
                   handed_on_ = std::max(handed_on_, frontier);
                   MoveHold();
                   // A copy: the consumer may destroy this feed in it.
                   const OnChanges on_changes = on_changes_;
                   on_changes(std::move(released), std::move(previous), handed_on_);
                   if (!*alive) return;
                 }
                 if (held) {
                   Read(index);  // the next long poll: the shard paces it
                 } else if (poll) {
                   if (!news) return ReadLater(index, options_.poll_interval);
                   Read(index);
                 } else if (news) {
                   Probe(index);  // more may be waiting
                 }
                 if (!news) return;
                 // The shards still behind this change hold the frontier below it:
                 // ask them now rather than when their polls come back.
                 for (size_t other = 0; other < shards_.size() && *alive; ++other) {
                   if (other != index && shards_[other].after < newest) Probe(other);
                 }
               });
}

}  // namespace strata::cluster
