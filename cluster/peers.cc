#include "cluster/peers.h"

#include <algorithm>

namespace strata::cluster {

Peers::Peers(std::string self, std::vector<std::string> node_ids, const ShardMap* map,
             HybridLogicalClock* clock, PeerTransport* transport, Timers* timers,
             std::chrono::milliseconds rpc_timeout)
    : self_(std::move(self)),
      node_ids_(std::move(node_ids)),
      map_(map),
      clock_(clock),
      transport_(transport),
      timers_(timers),
      rpc_timeout_(rpc_timeout),
      rpc_(transport) {
  std::erase(node_ids_, std::string());  // numbers not named yet
}

void Peers::AddNode(const std::string& node) {
  if (!node.empty() && !IsPeer(node)) node_ids_.push_back(node);
}

void Peers::RemoveNode(std::string_view node) {
  std::erase_if(node_ids_, [node](const std::string& n) { return n == node; });
}

bool Peers::IsPeer(std::string_view node) const {
  return std::find(node_ids_.begin(), node_ids_.end(), node) != node_ids_.end();
}

const std::string& Peers::NodeServing(ShardId shard) const {
  auto it = leaders_.find(shard);
  return it != leaders_.end() ? it->second : map_->shards()[shard].leaseholder();
}

void Peers::Call(ShardId shard, PeerRequest request, PeerRpc::Callback done) {
  CallAt(NodeServing(shard), shard, std::move(request), timers_->now() + rpc_timeout_,
         kMaxRedirects, std::move(done));
}

bool Peers::HoldsReplica(ShardId shard) const {
  if (shard >= map_->shards().size()) return false;
  const std::vector<std::string>& replicas = map_->shards()[shard].replicas;
  return replicas.size() > 1 &&
         std::find(replicas.begin(), replicas.end(), self_) != replicas.end();
}

void Peers::CallHereFirst(ShardId shard, PeerRequest request, PeerRpc::Callback done) {
  if (!HoldsReplica(shard)) return Call(shard, std::move(request), std::move(done));
  const Timers::Clock::time_point now = timers_->now();
  const Timers::Clock::time_point deadline = now + rpc_timeout_;
  PeerRpc::CallOptions options;
  options.give_up_after = rpc_timeout_;
  // Sent here alone (no also_to): its answer says nothing of who leads the
  // shard, so OnReply does not take this node for the leader.
  PeerRequest again = request;
  rpc_.Call(self_, shard, std::move(request), clock_->Last(), options, now,
            [this, shard, deadline, again = std::move(again),
             done = std::move(done)](const PeerReply* reply) mutable {
              const auto* error = ReplyAs<PeerError>(reply);
              // Answered here, or refused for what the read asks (compacted
              // away, too large), which the leader would refuse alike.
              if (reply != nullptr &&
                  (error == nullptr || error->status.code() != StatusCode::kUnavailable)) {
                ++reads_here_;
                return done(reply);
              }
              // Refused for now (above what this replica closed: it names
              // the leader, who closes more) or not answered: the leader's way.
              ++reads_passed_on_;
              if (timers_->now() >= deadline) return done(reply);
              std::string node = error != nullptr && error->leader && IsPeer(*error->leader)
                                     ? *error->leader
                                     : NodeServing(shard);
              CallAt(std::move(node), shard, std::move(again), deadline, kMaxRedirects,
                     std::move(done));
            });
}

void Peers::CallNode(const std::string& node, PeerRequest request, PeerRpc::Callback done) {
  PeerRpc::CallOptions options;
  options.give_up_after = rpc_timeout_;
  rpc_.Call(node, std::nullopt, std::move(request), clock_->Last(), options, timers_->now(),
            std::move(done));
}

void Peers::CallAt(std::string node, ShardId shard, PeerRequest request,
                   Timers::Clock::time_point deadline, int redirects_left, PeerRpc::Callback done) {
  const Timers::Clock::time_point now = timers_->now();
  const std::vector<std::string>& replicas = map_->shards()[shard].replicas;
  PeerRpc::CallOptions options;
  options.give_up_after =
      std::max(std::chrono::milliseconds(1),
               std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
  // A shard with several replicas: resends try them in turn (one that does
  // not lead names the leader), so a dead node does not take the call with
  // it.
  if (replicas.size() > 1) options.also_to = replicas;
  // A copy for a redirect or a retry (PeerRpc keeps its own to resend);
  // only a replicated shard's replicas redirect.
  std::optional<PeerRequest> again;
  if (replicas.size() > 1) again = request;
  // Everything this node did so far is at or below Last(): the receiver
  // moves its clock past it.
  rpc_.Call(
      node, shard, std::move(request), clock_->Last(), options, now,
      [this, node, shard, deadline, redirects_left, again = std::move(again),
       done = std::move(done)](const PeerReply* reply) mutable {
        const auto* error = ReplyAs<PeerError>(reply);
        if (error == nullptr || !again) return done(reply);
        const Timers::Clock::time_point now = timers_->now();
        if (error->leader && *error->leader != node && IsPeer(*error->leader) &&
            redirects_left > 0 && now < deadline) {
          ++redirects_;
          leaders_[shard] = *error->leader;
          return CallAt(*error->leader, shard, std::move(*again), deadline, redirects_left - 1,
                        std::move(done));
        }
        // Not served there for now (kUnavailable: no leader known while
        // the group elects one, too busy, no replica): the next replica,
        // after a pause, while the call has time. A shard's calls may be
        // made again (its group remembers what it did), as PeerRpc's
        // resends already assume; a forward refused so never ran (one that
        // may have is refused with kIoError, ForwardedCalls).
        if (error->status.code() == StatusCode::kUnavailable && now + kRetryPause < deadline) {
          ++retries_;
          return timers_->After(
              kRetryPause, [this, node, shard, deadline, redirects_left, again = std::move(*again),
                            done = std::move(done)]() mutable {
                CallAt(NextReplica(shard, node), shard, std::move(again), deadline, redirects_left,
                       std::move(done));
              });
        }
        done(reply);
      });
}

const std::string& Peers::NextReplica(ShardId shard, const std::string& after) const {
  const std::vector<std::string>& replicas = map_->shards()[shard].replicas;
  auto it = std::find(replicas.begin(), replicas.end(), after);
  if (it == replicas.end() || ++it == replicas.end()) return replicas.front();
  return *it;
}

bool Peers::OnReply(uint64_t in_reply_to, const PeerReply& reply) {
  if (const std::optional<PeerRpc::Copy> copy = rpc_.CopyOf(in_reply_to)) {
    Heard(*copy->dest);
    // A replicated shard's call that another replica served (a resend, its
    // first target silent): the shard's next calls go there first, not to
    // a node that may be gone (one that does not lead names the leader).
    const std::optional<ShardId> shard = copy->shard;
    if (shard && copy->to_several && !std::holds_alternative<PeerError>(reply) &&
        map_->shards()[*shard].replicas.size() > 1 && NodeServing(*shard) != *copy->dest) {
      leaders_[*shard] = *copy->dest;
    }
  }
  return rpc_.OnReply(in_reply_to, reply);
}

void Peers::Heard(std::string_view node) {
  if (auto it = heard_.find(node); it != heard_.end()) {
    it->second = timers_->now();
  } else if (IsPeer(node)) {
    heard_.emplace(std::string(node), timers_->now());
  }
}

std::optional<Timers::Clock::time_point> Peers::LastHeardFrom(ShardId shard) const {
  if (shard >= map_->shards().size()) return std::nullopt;
  auto it = heard_.find(NodeServing(shard));
  if (it == heard_.end()) return std::nullopt;
  return it->second;
}

void Peers::Broadcast(const PeerRequest& message) {
  for (const std::string& node : node_ids_) {
    if (node != self_) transport_->Send(node, std::nullopt, message, clock_->Last());
  }
}

Status CallFailure(const PeerReply* reply, std::string gave_up) {
  if (reply == nullptr) return Status::Unavailable(std::move(gave_up));
  if (const auto* error = std::get_if<PeerError>(reply)) return error->status;
  return Status::IoError("a shard answered with a reply of the wrong kind");
}

}  // namespace strata::cluster
