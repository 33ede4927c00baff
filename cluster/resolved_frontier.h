// ResolvedFrontier: waits until every shard has resolved a timestamp T, so
// that nothing at or below T can still commit anywhere in the cluster.
//
// A Range answers header.revision = S, and a client (Kubernetes' list then
// watch) takes S as complete: a later watch from S + 1 must not miss a
// commit at or below S. Reading S only proves that for the keys read; a
// two-phase commit prepared at or below S on another shard could still
// commit there after the answer. Every shard's resolved timestamp
// (ShardServer::WatchFrontier: below its oldest pending prepare, and moving
// with the wall clock while none is pending) at or above S proves it for
// the whole key space: clocks are past S already, so no new prepare can be
// at or below it.
//
// Shards are asked (ShardWatch over an empty range: the resolved timestamp
// alone) in rounds, one round at a time whatever the number of waiters; a
// round names the highest timestamp waited for, which a replicated shard's
// leader closes its shard to before it answers (its clock moves only
// through its log: without it the wait would last until its next close for
// idle time, up to ShardServerOptions::close_interval); a
// round answers every wait at or below the lowest timestamp the shards
// reported. A shard's resolved timestamp only rises, so what a round
// learned stays true and a later wait at or below it is answered at once. A
// round that falls short (a prepare still pending) is followed by another
// after `pause`; a wait gives up after `timeout` (kUnavailable).
//
// A shard that did not answer a probe is unreachable until it answers one:
// rounds do not wait for it (it is still asked, one probe at a time), and
// waits are answered by the shards that are reachable. While a member is
// down, a revision is complete for what is reachable, not for the down
// shard's keys (which no read or watch reaches either until it is back).
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_CLUSTER_RESOLVED_FRONTIER_H_
#define STRATA_CLUSTER_RESOLVED_FRONTIER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "cluster/peers.h"
#include "cluster/timers.h"
#include "strata/status.h"

namespace strata::cluster {

struct ResolvedFrontierOptions {
  std::chrono::milliseconds pause{1};
  std::chrono::milliseconds timeout{5000};
};

struct ResolvedFrontierStats {
  uint64_t rounds = 0;
  uint64_t waits = 0;           // WaitFor calls
  uint64_t answered_known = 0;  // of them, answered from what an earlier round learned
  uint64_t timeouts = 0;
  uint64_t unreachable_shards = 0;  // now
};

class ResolvedFrontier final {
 public:
  ResolvedFrontier(Peers* peers, Timers* timers, ResolvedFrontierOptions options = {});
  ~ResolvedFrontier();

  // `done` runs once every shard has resolved `t` (Ok), or after the
  // timeout (kUnavailable).
  void WaitFor(Timestamp t, std::function<void(Status)> done);
  // The lowest resolved timestamp the reachable shards have reported.
  Timestamp known() const;
  // What `shard` last reported, if it answered the last probe and did so
  // at or after `since` (else nullopt: unknown, or too old to read at).
  std::optional<Timestamp> LearnedFor(ShardId shard, Timers::Clock::time_point since) const;
  // Starts a round unless one is under way, so the shards' frontiers as
  // known here follow theirs (follower reads of shards with no replica
  // here read at them).
  void Refresh();
  // The request a round sends each shard (for the codecs' tests), asking
  // it to close to `close_to` (none: Timestamp()).
  static ShardWatch Probe(Timestamp close_to = Timestamp());
  ResolvedFrontierStats stats() const;

 private:
  struct Waiter {
    std::function<void(Status)> done;
    Timers::Clock::time_point deadline;
  };
  void StartRound();
  void OnRoundDone();
  // Answers the waits the known frontier covers, and those past their
  // deadline.
  void AnswerDue();

  Peers* peers_;
  Timers* timers_;
  const ResolvedFrontierOptions options_;
  struct ShardState {
    Timestamp resolved;                      // the highest reported
    Timers::Clock::time_point learned_at{};  // when it last answered
    bool reachable = true;
    bool asked = false;  // a probe is in flight
  };
  std::vector<ShardState> shards_;
  std::multimap<Timestamp, Waiter> waiting_;
  bool round_in_flight_ = false;
  uint64_t round_ = 0;        // the round in flight (or last)
  size_t round_waiting_ = 0;  // answers that round still waits for
  ResolvedFrontierStats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_RESOLVED_FRONTIER_H_
