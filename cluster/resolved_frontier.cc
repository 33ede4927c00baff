#include "cluster/resolved_frontier.h"

#include <algorithm>
#include <utility>

namespace strata::cluster {

ResolvedFrontier::ResolvedFrontier(Peers* peers, Timers* timers, ResolvedFrontierOptions options)
    : peers_(peers), timers_(timers), options_(options), shards_(peers->map().shards().size()) {}

ResolvedFrontier::~ResolvedFrontier() { *alive_ = false; }

Timestamp ResolvedFrontier::known() const {
  Timestamp low = Timestamp::Max();
  for (const ShardState& s : shards_) {
    if (s.reachable) low = std::min(low, s.resolved);
  }
  return low;
}

std::optional<Timestamp> ResolvedFrontier::LearnedFor(ShardId shard,
                                                      Timers::Clock::time_point since) const {
  if (shard >= shards_.size()) return std::nullopt;
  const ShardState& s = shards_[shard];
  if (!s.reachable || s.learned_at == Timers::Clock::time_point() || s.learned_at < since) {
    return std::nullopt;
  }
  return s.resolved;
}

ShardWatch ResolvedFrontier::Probe(Timestamp close_to) {
  // An empty range asks for the resolved timestamp alone. The limit is
  // not used, but must be one the peer codecs take (1 or more): a probe
  // with limit 0 was refused on the wire, and every other member's shard
  // then counted as unreachable.
  return ShardWatch{KeyRange{"", std::string()}, Timestamp(), 0, 1, false, 0, close_to};
}

void ResolvedFrontier::Refresh() {
  if (!round_in_flight_) StartRound();
}

ResolvedFrontierStats ResolvedFrontier::stats() const {
  ResolvedFrontierStats out = stats_;
  for (const ShardState& s : shards_) out.unreachable_shards += s.reachable ? 0 : 1;
  return out;
}

void ResolvedFrontier::WaitFor(Timestamp t, std::function<void(Status)> done) {
  ++stats_.waits;
  if (t <= known()) {
    ++stats_.answered_known;
    return done(Status::Ok());
  }
  waiting_.emplace(t, Waiter{std::move(done), timers_->now() + options_.timeout});
  if (!round_in_flight_) StartRound();
}

void ResolvedFrontier::StartRound() {
  round_in_flight_ = true;
  const uint64_t round = ++round_;
  ++stats_.rounds;
  const auto& map = peers_->map().shards();
  // One more than the answers awaited until every probe is sent: an answer
  // that comes at once (this node's own shard) cannot end the round early.
  round_waiting_ = 1;
  // What the shards are asked to close to: every wait (none: a refresh).
  const Timestamp close_to = waiting_.empty() ? Timestamp() : waiting_.rbegin()->first;
  for (size_t i = 0; i < shards_.size(); ++i) {
    ShardState& shard = shards_[i];
    // A probe still unanswered since an earlier round (an unreachable
    // shard's, or a slow one) is not sent again.
    if (shard.asked) continue;
    const bool counted = shard.reachable;
    if (counted) ++round_waiting_;
    shard.asked = true;
    peers_->Call(map[i].id, Probe(close_to),
                 [this, i, round, counted, alive = alive_](const PeerReply* reply) {
                   if (!*alive) return;
                   ShardState& shard = shards_[i];
                   shard.asked = false;
                   if (const auto* page = ReplyAs<ShardWatchReply>(reply)) {
                     shard.resolved = std::max(shard.resolved, page->resolved);
                     shard.learned_at = timers_->now();
                     shard.reachable = true;
                   } else {
                     shard.reachable = false;
                   }
                   if (counted && round == round_ && --round_waiting_ == 0) OnRoundDone();
                 });
  }
  if (--round_waiting_ == 0) OnRoundDone();
}

void ResolvedFrontier::OnRoundDone() {
  round_in_flight_ = false;
  AnswerDue();
  if (waiting_.empty()) return;
  // Short of some wait: ask again soon (a prepare is still pending, or a
  // shard's wall clock had not reached the timestamp yet).
  round_in_flight_ = true;  // no other round starts meanwhile
  timers_->After(options_.pause, [this, alive = alive_] {
    if (!*alive) return;
    round_in_flight_ = false;
    AnswerDue();
    if (!waiting_.empty()) StartRound();
  });
}

void ResolvedFrontier::AnswerDue() {
  const Timestamp frontier = known();
  std::vector<std::function<void(Status)>> ok, late;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->first <= frontier) {
      ok.push_back(std::move(it->second.done));
      it = waiting_.erase(it);
    } else if (it->second.deadline <= timers_->now()) {
      late.push_back(std::move(it->second.done));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  stats_.timeouts += late.size();
  // Answered after the map is settled: an answer may wait again.
  for (auto& done : ok) done(Status::Ok());
  for (auto& done : late) {
    done(Status::Unavailable(
        "a shard did not resolve the read's revision in time (a two-phase commit left pending?)"));
  }
}

}  // namespace strata::cluster
