#include "service/shard_locks.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>

namespace strata::service {

namespace {

// Requests: kTag, then "enter HOLDER\n" and each key as "LENGTH\nBYTES", or
// "leave HOLDER\n". Answers: kGranted, kGivenBack, or "refused: why".
constexpr std::string_view kEnter = "enter ";
constexpr std::string_view kLeave = "leave ";
constexpr std::string_view kGranted = "granted";
constexpr std::string_view kGivenBack = "given back";

std::string EncodeEnter(const std::string& holder, const std::vector<std::string>& keys) {
  std::string out = std::string(ShardLocks::kTag) + std::string(kEnter) + holder + "\n";
  for (const std::string& key : keys) out += std::to_string(key.size()) + "\n" + key;
  return out;
}

std::string EncodeLeave(const std::string& holder) {
  return std::string(ShardLocks::kTag) + std::string(kLeave) + holder + "\n";
}

// The keys after an enter's holder line; nullopt if malformed.
std::optional<std::vector<std::string>> DecodeKeys(std::string_view in) {
  std::vector<std::string> keys;
  while (!in.empty()) {
    const size_t newline = in.find('\n');
    if (newline == std::string_view::npos) return std::nullopt;
    size_t length = 0;
    auto [end, error] = std::from_chars(in.data(), in.data() + newline, length);
    if (error != std::errc() || end != in.data() + newline) return std::nullopt;
    in.remove_prefix(newline + 1);
    if (length > in.size()) return std::nullopt;
    keys.emplace_back(in.substr(0, length));
    in.remove_prefix(length);
  }
  if (keys.empty()) return std::nullopt;
  return keys;
}

}  // namespace

struct ShardLocks::Acquisition {
  std::string holder;
  std::map<cluster::ShardId, OwnedKeys> shards;
  std::map<cluster::ShardId, OwnedKeys>::iterator next;
  std::function<void(Release, bool)> start;
  std::vector<std::string> local_keys;  // held in this member's lanes
  bool local_held = false;
  // An engine key of each other owner asked (where its give-back goes).
  std::vector<std::string> asked;
  // The owner waited for, and since when (a timers time).
  std::optional<cluster::ShardId> waiting_for;
  cluster::Timers::Clock::time_point sent_at;
  const OwnedKeys* asking = nullptr;  // in `shards`: the keys asked for
  bool gave_up = false;
};

struct ShardLocks::Remote {
  enum class State { kWaiting, kHeld, kGivenBack };
  State state = State::kWaiting;
  std::vector<std::string> keys;
  uint64_t generation = 0;
  std::function<void(std::string)> respond;  // while waiting: the latest call's
};

ShardLocks::ShardLocks(KeyLanes* lanes, cluster::ShardId local, Send send, LastHeard last_heard,
                       cluster::Timers* timers, ShardLocksOptions options)
    : lanes_(lanes),
      local_(local),
      send_(std::move(send)),
      last_heard_(std::move(last_heard)),
      timers_(timers),
      options_(options) {}

ShardLocks::~ShardLocks() { *alive_ = false; }

void ShardLocks::Acquire(uint64_t id, std::map<cluster::ShardId, OwnedKeys> keys_by_shard,
                         std::function<void(Release, bool)> start) {
  auto acquisition = std::make_shared<Acquisition>();
  acquisition->holder = std::to_string(local_) + ":" + std::to_string(id);
  acquisition->shards = std::move(keys_by_shard);
  acquisition->next = acquisition->shards.begin();
  acquisition->start = std::move(start);
  AcquireNext(std::move(acquisition));
}

void ShardLocks::AcquireNext(std::shared_ptr<Acquisition> acquisition) {
  Acquisition& a = *acquisition;
  if (a.next == a.shards.end()) {
    ++acquired_;
    std::function<void(Release, bool)> start = std::move(a.start);
    return start(
        [this, acquisition, alive = alive_] {
          if (*alive) GiveBack(acquisition);
        },
        true);
  }
  const auto& [shard, owned] = *a.next++;
  if (shard == local_) {
    a.local_keys = owned.keys;
    return lanes_->Enter(owned.keys, [this, acquisition, alive = alive_] {
      if (!*alive) return;
      if (acquisition->gave_up) return lanes_->Leave(acquisition->local_keys);
      acquisition->local_held = true;
      AcquireNext(acquisition);
    });
  }
  if (timers_ != nullptr) {
    auto deaf = deaf_until_.find(shard);
    if (deaf != deaf_until_.end() && deaf->second > timers_->now()) {
      ++passed_over_;
      return AcquireNext(std::move(acquisition));
    }
  }
  a.asked.push_back(owned.engine_key);
  a.waiting_for = shard;
  if (timers_ != nullptr) {
    a.sent_at = timers_->now();
    timers_->After(options_.patience, [this, weak = std::weak_ptr<Acquisition>(acquisition),
                                       shard = shard, alive = alive_] {
      if (*alive) CheckWait(weak, shard);
    });
  }
  a.asking = &owned;
  Ask(std::move(acquisition), shard);
}

void ShardLocks::Ask(std::shared_ptr<Acquisition> acquisition, cluster::ShardId shard) {
  const OwnedKeys& owned = *acquisition->asking;
  send_(owned.engine_key, EncodeEnter(acquisition->holder, owned.keys),
        [this, acquisition, shard, alive = alive_](Result<std::string> answer) {
          if (!*alive) return;
          if (acquisition->gave_up) return;  // its give-back is on its way
          if (!answer.ok() && timers_ != nullptr &&
              timers_->now() - acquisition->sent_at >= options_.patience) {
            // The call timed out in a long queue (an owner that went
            // silent is given up on by CheckWait first): ask again, to
            // keep its place; the owner answers the latest call.
            acquisition->sent_at = timers_->now();
            return Ask(acquisition, shard);
          }
          acquisition->waiting_for.reset();
          if (answer.ok() && *answer == kGranted) return AcquireNext(acquisition);
          GiveUp(acquisition);
        });
}

void ShardLocks::CheckWait(std::weak_ptr<Acquisition> weak, cluster::ShardId shard) {
  std::shared_ptr<Acquisition> acquisition = weak.lock();
  if (!acquisition || acquisition->gave_up || acquisition->waiting_for != shard) return;
  cluster::Timers::Clock::time_point last = acquisition->sent_at;
  if (last_heard_) {
    if (std::optional<cluster::Timers::Clock::time_point> heard = last_heard_(shard)) {
      last = std::max(last, *heard);
    }
  }
  const cluster::Timers::Clock::time_point now = timers_->now();
  if (now - last < options_.patience) {
    // The owner is up: its queue is long, not it gone.
    timers_->After(options_.patience - (now - last), [this, weak, shard, alive = alive_] {
      if (*alive) CheckWait(weak, shard);
    });
    return;
  }
  deaf_until_[shard] = now + options_.deaf_for;
  GiveUp(acquisition);
}

void ShardLocks::GiveUp(const std::shared_ptr<Acquisition>& acquisition) {
  // Not granted (in time): the write runs without lanes rather than
  // waiting on, and holds none meanwhile.
  ++gave_up_;
  acquisition->gave_up = true;
  acquisition->waiting_for.reset();
  GiveBack(acquisition);
  std::function<void(Release, bool)> start = std::move(acquisition->start);
  start([] {}, false);
}

void ShardLocks::GiveBack(const std::shared_ptr<Acquisition>& acquisition) {
  Acquisition& a = *acquisition;
  if (a.local_held) {
    a.local_held = false;
    lanes_->Leave(a.local_keys);
  }
  for (const std::string& engine_key : a.asked) {
    send_(engine_key, EncodeLeave(a.holder), [](Result<std::string>) {});
  }
  a.asked.clear();
}

void ShardLocks::Serve(std::string_view request, std::function<void(std::string)> respond) {
  if (request.starts_with(kTag)) request.remove_prefix(kTag.size());
  const bool enter = request.starts_with(kEnter);
  if (!enter && !request.starts_with(kLeave)) return respond("refused: an unknown lanes request");
  request.remove_prefix(kEnter.size());  // kLeave is as long
  const size_t newline = request.find('\n');
  if (newline == 0 || newline == std::string_view::npos) {
    return respond("refused: a lanes request without its holder");
  }
  std::string holder(request.substr(0, newline));
  if (!enter) {
    ServeLeave(holder);
    return respond(std::string(kGivenBack));
  }
  std::optional<std::vector<std::string>> keys = DecodeKeys(request.substr(newline + 1));
  if (!keys) return respond("refused: a lanes request whose keys do not decode");
  ServeEnter(holder, std::move(*keys), std::move(respond));
}

void ShardLocks::ServeEnter(const std::string& holder, std::vector<std::string> keys,
                            std::function<void(std::string)> respond) {
  if (auto it = remote_.find(holder); it != remote_.end()) {
    switch (it->second.state) {
      case Remote::State::kWaiting:
        // Asked again (the first call timed out in a long queue): this
        // call gets the grant.
        it->second.respond = std::move(respond);
        return;
      case Remote::State::kHeld:
        return respond(std::string(kGranted));
      case Remote::State::kGivenBack:
        return respond("refused: the lanes were given back before they were asked for");
    }
  }
  if (remote_.size() >= options_.max_remote) {
    return respond("refused: this member already holds " + std::to_string(options_.max_remote) +
                   " other members' requests for lanes");
  }
  Remote& remote = remote_[holder];
  remote.keys = keys;
  remote.generation = ++next_generation_;
  remote.respond = std::move(respond);
  lanes_->Enter(std::move(keys), [this, holder, alive = alive_] {
    if (!*alive) return;
    auto it = remote_.find(holder);
    if (it == remote_.end()) return;  // cannot happen: entries leave through here
    std::function<void(std::string)> respond = std::move(it->second.respond);
    if (it->second.state == Remote::State::kGivenBack) {
      EraseRemote(it, /*leave=*/true);
      return respond("refused: the lanes were given back before they were granted");
    }
    it->second.state = Remote::State::kHeld;
    ForgetLater(holder, it->second.generation);
    respond(std::string(kGranted));
  });
}

void ShardLocks::ServeLeave(const std::string& holder) {
  auto it = remote_.find(holder);
  if (it == remote_.end()) {
    if (remote_.size() >= options_.max_remote) return;  // its enter will be refused too
    Remote& early = remote_[holder];
    early.state = Remote::State::kGivenBack;
    early.generation = ++next_generation_;
    return ForgetLater(holder, early.generation);
  }
  switch (it->second.state) {
    case Remote::State::kWaiting:
      it->second.state = Remote::State::kGivenBack;  // left when granted
      return;
    case Remote::State::kHeld:
      return EraseRemote(it, /*leave=*/true);
    case Remote::State::kGivenBack:
      return;
  }
}

void ShardLocks::ForgetLater(const std::string& holder, uint64_t generation) {
  if (timers_ == nullptr) return;
  timers_->After(options_.max_hold, [this, holder, generation, alive = alive_] {
    if (!*alive) return;
    auto it = remote_.find(holder);
    if (it == remote_.end() || it->second.generation != generation) return;
    if (it->second.state == Remote::State::kWaiting) return;  // granted later: armed then
    const bool held = it->second.state == Remote::State::kHeld;
    if (held) ++remote_expired_;
    EraseRemote(it, held);
  });
}

void ShardLocks::EraseRemote(std::map<std::string, Remote>::iterator it, bool leave) {
  // Erased before leaving: Leave may grant other requests at once.
  const std::vector<std::string> keys = std::move(it->second.keys);
  remote_.erase(it);
  if (leave) lanes_->Leave(keys);
}

void ShardLocks::MarkHot(const std::vector<std::string>& keys) {
  if (timers_ == nullptr) return;
  const cluster::Timers::Clock::time_point now = timers_->now();
  while (!hot_by_time_.empty() &&
         (hot_by_time_.begin()->first <= now || hot_by_time_.size() >= options_.max_hot_keys)) {
    auto oldest = hot_by_time_.begin();
    auto it = hot_until_.find(oldest->second);
    if (it != hot_until_.end() && it->second == oldest->first) hot_until_.erase(it);
    hot_by_time_.erase(oldest);
  }
  const cluster::Timers::Clock::time_point until = now + options_.hot_for;
  for (const std::string& key : keys) {
    hot_until_[key] = until;
    hot_by_time_.emplace(until, key);
  }
}

bool ShardLocks::AnyHot(const std::vector<std::string>& keys) const {
  if (timers_ == nullptr) return true;
  const cluster::Timers::Clock::time_point now = timers_->now();
  for (const std::string& key : keys) {
    auto it = hot_until_.find(key);
    if (it != hot_until_.end() && it->second > now) return true;
  }
  return false;
}

ShardLocksStats ShardLocks::Stats() const {
  ShardLocksStats stats;
  stats.acquired = acquired_;
  stats.gave_up = gave_up_;
  stats.passed_over = passed_over_;
  stats.remote_held = remote_.size();
  stats.remote_expired = remote_expired_;
  return stats;
}

}  // namespace strata::service
