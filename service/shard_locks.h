// ShardLocks: a write whose keys several members own waits for the earlier
// writes of those keys on each owner, taking the owners in shard order.
//
// A member runs the writes of the keys its shard owns one after another
// (KeyLanes). A write whose keys live on several shards runs on the member
// it reached, and used to read its keys and commit with no regard for the
// lanes: two of them, or one and a one-shard write, that read a key at
// once both tried to commit over it, the later lost, and under enough of
// them (1,000 Txns of 4 random keys among 10,000) most attempts lost and
// some ran out of retries ("too many requests"), though etcd would simply
// have applied them in turn.
//
// So before it reads, such a write enters the lanes of its keys on every
// owner: its own member's lanes directly, another member's through a
// forwarded call that is answered once the write is first in the queues of
// its keys there. It takes the shards one at a time in ascending order.
// Each KeyLanes joins all of a write's queues at once, so a write first in
// its queues on shard s waits only for writes holding lanes on shards
// above s: no cycle of waits, no deadlock. When it has answered, it leaves
// them all.
//
// The lanes are advisory: the commit is still validated, so a write that
// runs without them is correct, only more likely to lose a conflict. That
// is what makes failures cheap to handle:
//  - an owner that refuses (it holds too many requests), or that does not
//    grant and has sent this member nothing at all for `patience` (1 s;
//    while the write waits for it, it holds the lanes of the shards before
//    it, and so holds up their writes): the write gives back what it holds
//    and runs without lanes, taking them again if it loses a conflict. An
//    owner silent for that long is passed over by the writes after it for
//    `deaf_for` (it is likely down: its keys' writes fail anyway, and the
//    other members' keys go on). A live owner sends something every few
//    milliseconds (answers to this member's reads, prepares and lane
//    requests, its own calls), so a long queue there is waited for however
//    long it takes (a call that times out in it is made again, and the
//    owner answers the latest). Only its answers to lane requests used to
//    count: a slow member (ASan at -O0) granted none for 1 s while it
//    served a queue of 100 writes, and 180 of 400 writes gave up, then ran
//    out of attempts;
//  - a member that dies holding lanes on another member: the owner gives
//    them back after `max_hold` (so those keys' writes wait at most that);
//  - a give-back that overtakes its request: the owner remembers it for
//    `max_hold` and gives the lanes back as soon as they are granted.
//
// Cost: one round trip per other member owning some of the keys, one after
// another, and a message to each when done (a Txn of 4 random keys on 3
// members: 2 round trips and 4 messages more than its two-phase commit).
// So a write takes lanes only when it may need them: when one of its keys
// is hot here (a write of it lost a conflict in the last second), or, for
// its second attempt, when it lost one itself.
//
// Not thread-safe: runs on the member's loop thread.
#ifndef STRATA_SERVICE_SHARD_LOCKS_H_
#define STRATA_SERVICE_SHARD_LOCKS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/shard_map.h"
#include "cluster/timers.h"
#include "service/key_lanes.h"
#include "strata/status.h"

namespace strata::service {

struct ShardLocksOptions {
  // How long an owner lets another member hold lanes before it gives them
  // back itself, and remembers a give-back whose request has not come.
  std::chrono::milliseconds max_hold{5000};
  // The most other members' requests an owner keeps (waiting, held, given
  // back early); past it, it refuses (and the write runs without lanes).
  size_t max_remote = 100000;
  // How long a key stays hot after a write of it lost a conflict, and the
  // most hot keys remembered (past it, the oldest are forgotten).
  std::chrono::milliseconds hot_for{1000};
  size_t max_hot_keys = 100000;
  // How long a write waits for an owner that answers nothing at all, and
  // how long such an owner is then passed over.
  std::chrono::milliseconds patience{1000};
  std::chrono::milliseconds deaf_for{2000};
};

struct ShardLocksStats {
  uint64_t acquired = 0;        // writes that took the lanes of several shards
  uint64_t gave_up = 0;         // writes that ran without them (refused, silence)
  uint64_t passed_over = 0;     // owners passed over, as silent of late
  uint64_t remote_held = 0;     // other members' requests held here now
  uint64_t remote_expired = 0;  // given back here after max_hold
};

class ShardLocks final {
 public:
  // Sends `request` to the member owning `engine_key`, run there once
  // (cluster::Router::Forward); `done` gets its answer or why none came.
  using Send = std::function<void(const std::string& engine_key, std::string request,
                                  std::function<void(Result<std::string>)> done)>;
  // Gives the lanes a write took back; call exactly once.
  using Release = std::function<void()>;
  // When the member owning `shard` last sent this one anything (a request,
  // an answer to any call, lane answers included: cluster::Peers); nullopt
  // if never. May be null: then an owner that has not granted within the
  // patience is given up on.
  using LastHeard =
      std::function<std::optional<cluster::Timers::Clock::time_point>(cluster::ShardId shard)>;

  // `lanes` are this member's, for the keys `local` owns. `timers` (may be
  // null: then nothing is given back by time) and `lanes` must outlive it.
  ShardLocks(KeyLanes* lanes, cluster::ShardId local, Send send, LastHeard last_heard,
             cluster::Timers* timers, ShardLocksOptions options = {});
  ~ShardLocks();
  ShardLocks(const ShardLocks&) = delete;
  ShardLocks& operator=(const ShardLocks&) = delete;

  // Takes the lanes of `keys` (etcd keys, each with its engine key's owner)
  // on their owners in ascending shard order, then runs `start` with what
  // gives them back and whether it holds them (false: it gave up and holds
  // none; true: it holds all but those of owners it passed over). `id` must be unique to this
  // member across restarts (a fresh timestamp).
  struct OwnedKeys {
    std::string engine_key;  // of any one of `keys`: where the request goes
    std::vector<std::string> keys;
  };
  void Acquire(uint64_t id, std::map<cluster::ShardId, OwnedKeys> keys_by_shard,
               std::function<void(Release, bool held)> start);

  // Keys some write of which lost a conflict here lately: a write of
  // them takes the lanes before its first attempt; others try once
  // without (lanes cost a round trip per owner, and most writes of cold
  // keys meet no other). Without timers every key is hot.
  void MarkHot(const std::vector<std::string>& keys);
  bool AnyHot(const std::vector<std::string>& keys) const;

  // Forwarded requests that begin with this tag are for Serve.
  static constexpr std::string_view kTag = "lanes\n";
  // Another member's request (kTag onwards); `respond` gets the answer, at
  // once or when the lanes are granted.
  void Serve(std::string_view request, std::function<void(std::string)> respond);

  ShardLocksStats Stats() const;

 private:
  struct Acquisition;
  struct Remote;
  void AcquireNext(std::shared_ptr<Acquisition> acquisition);
  // Asks `shard`'s owner for the lanes of the keys the acquisition is at
  // (again, if a call timed out while the owner still answered).
  void Ask(std::shared_ptr<Acquisition> acquisition, cluster::ShardId shard);
  // Gives up on `acquisition` (runs its write without lanes) if it still
  // waits for `shard` and that owner has been silent for the patience.
  void CheckWait(std::weak_ptr<Acquisition> acquisition, cluster::ShardId shard);
  void GiveUp(const std::shared_ptr<Acquisition>& acquisition);
  void GiveBack(const std::shared_ptr<Acquisition>& acquisition);
  void Grant(const std::string& holder);
  void ServeEnter(const std::string& holder, std::vector<std::string> keys,
                  std::function<void(std::string)> respond);
  void ServeLeave(const std::string& holder);
  void ForgetLater(const std::string& holder, uint64_t generation);
  // Forgets another member's request, leaving its lanes if `leave`.
  void EraseRemote(std::map<std::string, Remote>::iterator it, bool leave);

  KeyLanes* lanes_;
  const cluster::ShardId local_;
  const Send send_;
  const LastHeard last_heard_;
  cluster::Timers* timers_;
  const ShardLocksOptions options_;
  // Hot keys and until when, and the same by time (for forgetting).
  std::unordered_map<std::string, cluster::Timers::Clock::time_point> hot_until_;
  std::multimap<cluster::Timers::Clock::time_point, std::string> hot_by_time_;
  // Other members' requests by holder ("shard:id").
  std::map<std::string, Remote> remote_;
  uint64_t next_generation_ = 0;
  // Per other owner: until when it is passed over.
  std::map<cluster::ShardId, cluster::Timers::Clock::time_point> deaf_until_;
  uint64_t acquired_ = 0, gave_up_ = 0, passed_over_ = 0, remote_expired_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_SHARD_LOCKS_H_
