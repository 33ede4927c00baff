#include "cluster/member.h"

#include <algorithm>

namespace strata::cluster {

namespace {

std::vector<std::string> Others(const std::vector<std::string>& nodes, const std::string& self) {
  std::vector<std::string> others;
  for (const std::string& node : nodes) {
    if (node != self && !node.empty()) others.push_back(node);
  }
  return others;
}

}  // namespace

Result<std::unique_ptr<Member>> Member::Create(std::string self, std::vector<std::string> node_ids,
                                               MemberOptions options, MvccStore* store,
                                               bool persist, Timestamp issued,
                                               PeerTransport* transport,
                                               ForwardHandler serve_forward, Compactor compact,
                                               Clock::time_point now) {
  if (options.replication_factor != 1 && !options.shard_cores) {
    return Status::InvalidArgument("replicated shards need a factory of their cores");
  }
  Result<ShardMap> map =
      ShardMap::OfFirstNodes(node_ids, options.shard_count, options.replication_factor);
  if (!map.ok()) return map.status();
  if (map->shards().size() < node_ids.size() && options.replication_factor == 1) {
    return Status::InvalidArgument("nodes past the first of each shard need replicated shards");
  }
  if (node_ids.size() > HybridLogicalClock::kMaxNodes) {
    return Status::InvalidArgument("a cluster has at most " +
                                   std::to_string(HybridLogicalClock::kMaxNodes) +
                                   " nodes; 'node_ids' names " + std::to_string(node_ids.size()));
  }
  const auto found = std::find(node_ids.begin(), node_ids.end(), self);
  if (self.empty() || found == node_ids.end()) {
    return Status::InvalidArgument("'node_ids' does not contain this node's id '" + self + "'");
  }
  // A first member's number is its shard's; a later one's is past them.
  const auto index = static_cast<uint32_t>(found - node_ids.begin());
  options.shard_server.rpc_timeout = options.rpc_timeout;
  std::unique_ptr<Member> member(new Member(std::move(self), std::move(node_ids), std::move(*map),
                                            index, options, transport, std::move(serve_forward),
                                            std::move(compact)));
  member->home_shard_ = index;
  member->timers_.SetNow(now);
  // After a restart, timestamps continue above everything stored.
  member->clock_.Observe(issued);
  if (auto max = store->max_timestamp()) member->clock_.Observe(*max);
  const auto shard_count = static_cast<uint32_t>(member->map_.shards().size());
  if (options.shard_cores) {
    // A server for every shard this node holds a replica of; replicas
    // move, so none is this node's for good, its own shard's included.
    const std::vector<ShardId> held =
        options.replicas_here.value_or(member->map_.ShardsReplicatedOn(member->self()));
    for (ShardId replica : held) {
      Result<std::unique_ptr<ShardCore>> core =
          options.shard_cores(replica, &member->clock_, &member->timers_);
      if (!core.ok()) return core.status();
      member->replica_servers_.emplace(
          replica,
          std::make_unique<ShardServer>(replica, shard_count, std::move(*core), &member->peers_,
                                        &member->timers_, options.shard_server));
    }
  } else {
    Result<std::unique_ptr<ShardServer>> server =
        ShardServer::Create(index, shard_count, store, &member->clock_, &member->peers_,
                            &member->timers_, persist, options.shard_server);
    if (!server.ok()) return server.status();
    member->shard_server_ = std::move(*server);
  }
  member->coordinator_ = std::make_unique<Coordinator>(
      index, index, store, &member->clock_, &member->peers_, &member->timers_, options.coordinator);
  member->resolved_frontier_ =
      std::make_unique<ResolvedFrontier>(&member->peers_, &member->timers_);
  return member;
}

Member::Member(std::string self, std::vector<std::string> node_ids, ShardMap map,
               uint32_t node_index, MemberOptions options, PeerTransport* transport,
               ForwardHandler serve_forward, Compactor compact)
    : options_(std::move(options)),
      map_(std::move(map)),
      serve_forward_(std::move(serve_forward)),
      compact_(std::move(compact)),
      clock_(HybridLogicalClock::SystemMillis, HybridClockOptions{.node_index = node_index}),
      peers_(self, node_ids, &map_, &clock_, transport, &timers_, options_.rpc_timeout),
      router_(&peers_),
      low_water_mark_(Others(node_ids, self)) {}

Member::~Member() = default;

void Member::JoinNode(const std::string& node) {
  if (node.empty() || node == self() || peers_.IsPeer(node)) return;
  peers_.AddNode(node);
  low_water_mark_.AddNode(node);
}

void Member::LeaveNode(std::string_view node) {
  if (node == self()) return;
  peers_.RemoveNode(node);
  low_water_mark_.RemoveNode(node);
}

void Member::OnRequest(std::string_view from, std::optional<Timestamp> sender_clock,
                       std::optional<ShardId> shard_id, PeerRequest request,
                       ShardServer::Respond respond) {
  peers_.Heard(from);
  if (sender_clock) {
    if (Status s = clock_.Update(*sender_clock); !s.ok()) return respond(PeerError{s});
  }
  if (auto* report = std::get_if<LowWaterMarkReport>(&request)) {
    return low_water_mark_.Report(from, report->oldest_snapshot);
  }
  auto* forward = std::get_if<Forward>(&request);
  if (forward != nullptr && !shard_id) {
    // For this node (no shard named): runs here.
    return forwarded_.Serve(
        from, forward->id, HybridLogicalClock::SystemMillis(), std::move(respond),
        [this, forward](ShardServer::Respond answer) { serve_forward_(forward->request, answer); });
  }
  ShardServer* target = shard_id ? FindShardServer(*shard_id) : shard_server_.get();
  if (target == nullptr) {
    // A sender whose map differs from ours (another generation, or a
    // replica moved): it asks again where the shard is now.
    return respond(PeerError{Status::Unavailable(
        "node " + self() + " holds no replica of " +
        (shard_id ? "shard " + std::to_string(*shard_id) : std::string("a shard of its own")))});
  }
  const Timestamp sent = sender_clock.value_or(clock_.Last());
  ShardServer& shard = *target;
  if (auto* read = std::get_if<ShardRead>(&request)) return shard.Read(std::move(*read), respond);
  if (auto* prepare = std::get_if<ShardPrepare>(&request)) {
    return shard.Prepare(std::move(*prepare), sent, respond);
  }
  if (auto* commit = std::get_if<ShardCommit>(&request))
    return shard.Commit(*commit, sent, respond);
  if (auto* resolve = std::get_if<ShardResolve>(&request)) return shard.Resolve(*resolve, respond);
  if (auto* call = std::get_if<RecordCall>(&request)) return shard.Record(*call, respond);
  if (auto* scan = std::get_if<RawScan>(&request)) return shard.Scan(*scan, respond);
  if (auto* changes = std::get_if<RawChanges>(&request)) return shard.Changes(*changes, respond);
  if (auto* watch = std::get_if<ShardWatch>(&request)) return shard.Watch(*watch, respond);
  if (auto* compact = std::get_if<RawCompact>(&request)) {
    // No shard collects above the cluster's low-water mark.
    const Timestamp mark = LowWaterMark().value_or(Timestamp(0));
    const Timestamp horizon = std::min(compact->horizon, mark);
    // Replicated shards: a command of the shard's group.
    if (options_.shard_cores) return shard.Compact(horizon, std::move(respond));
    if (target != shard_server_.get()) {
      return respond(PeerError{
          Status::Unavailable("node " + self() + " compacts only its own shard's store; shard " +
                              std::to_string(target->shard()) + " is compacted by its group")});
    }
    return respond(RawCompactReply{compact_(horizon)});
  }
  if (forward != nullptr) {
    // A forward for a replicated shard runs on its leader alone (the one
    // member that homes the shard's leases, say).
    if (!shard.Leads()) {
      if (shard.RedirectedToLeader(respond)) return;
      return respond(PeerError{Status::Unavailable("etcdserver: no leader")});
    }
    return forwarded_.Serve(
        from, forward->id, HybridLogicalClock::SystemMillis(), std::move(respond),
        [this, forward](ShardServer::Respond answer) { serve_forward_(forward->request, answer); });
  }
}

void Member::OnReply(std::optional<Timestamp> sender_clock, uint64_t in_reply_to,
                     const PeerReply& reply) {
  if (sender_clock) (void)clock_.Update(*sender_clock);
  peers_.OnReply(in_reply_to, reply);  // a late copy's reply is dropped
}

Timestamp Member::OldestSnapshot() const {
  // With nothing open, the next snapshot taken here will be above the clock.
  const Timestamp oldest = coordinator_->OldestSnapshot().value_or(clock_.Last());
  // A pending intent here may still commit at or just above its prepare
  // timestamp: no shard may collect past it, or the commit could never be
  // applied here (a write below the horizon is refused).
  Timestamp safe = shard_server_ ? shard_server_->SafeTime() : Timestamp::Max();
  for (const auto& [id, server] : replica_servers_) safe = std::min(safe, server->SafeTime());
  return std::min(oldest, safe);
}

Status Member::AddShardServer(std::unique_ptr<ShardServer> server) {
  const ShardId shard = server->shard();
  if (shard >= map_.shards().size()) {
    return Status::InvalidArgument("shard " + std::to_string(shard) + " is not in the map");
  }
  if (FindShardServer(shard) != nullptr) {
    return Status::InvalidArgument("shard " + std::to_string(shard) + " is served here already");
  }
  if (started_) server->Start();
  replica_servers_.emplace(shard, std::move(server));
  return Status::Ok();
}

void Member::RemoveShardServer(ShardId shard) {
  auto it = replica_servers_.find(shard);
  if (it == replica_servers_.end()) return;
  std::unique_ptr<ShardServer> server = std::move(it->second);
  replica_servers_.erase(it);
  server->AnswerWaitingAsMoved();
}

Status Member::AddReplica(ShardId shard) {
  if (!options_.shard_cores) {
    return Status::InvalidArgument("this member's shards have no replicas");
  }
  if (shard >= map_.shards().size()) {
    return Status::InvalidArgument("shard " + std::to_string(shard) + " is not in the map");
  }
  Result<std::unique_ptr<ShardCore>> core = options_.shard_cores(shard, &clock_, &timers_);
  if (!core.ok()) return core.status();
  return AddShardServer(
      std::make_unique<ShardServer>(shard, static_cast<uint32_t>(map_.shards().size()),
                                    std::move(*core), &peers_, &timers_, options_.shard_server));
}

void Member::SetShardReplicas(ShardId shard, std::vector<std::string> replicas) {
  if (map_.SetReplicas(shard, std::move(replicas))) peers_.ForgetLeader(shard);
}

std::vector<ShardId> Member::ShardsServed() const {
  std::vector<ShardId> shards;
  if (shard_server_) shards.push_back(shard_server_->shard());
  for (const auto& [id, server] : replica_servers_) shards.push_back(id);
  return shards;
}

const ShardServer* Member::FindShardServer(ShardId shard) const {
  if (shard_server_ && shard == shard_server_->shard()) return shard_server_.get();
  auto it = replica_servers_.find(shard);
  return it == replica_servers_.end() ? nullptr : it->second.get();
}

std::optional<Timestamp> Member::ResolvedHere() {
  std::optional<Timestamp> resolved;
  bool remote = false, unknown = false;
  const Timers::Clock::time_point fresh_since = timers_.now() - kRemoteFrontierMaxAge;
  for (const Shard& shard : map_.shards()) {
    if (shard.replicas.size() < 2) return std::nullopt;
    std::optional<Timestamp> frontier;
    if (const ShardServer* server = FindShardServer(shard.id)) {
      frontier = server->WatchFrontier();
    } else {
      remote = true;
      frontier = resolved_frontier_->LearnedFor(shard.id, fresh_since);
      unknown = unknown || !frontier;
    }
    if (frontier && (!resolved || *frontier < *resolved)) resolved = frontier;
  }
  // One round at a time, whatever the callers: the next call knows newer.
  if (remote) resolved_frontier_->Refresh();
  if (unknown) return std::nullopt;
  return resolved;
}

std::optional<Timestamp> Member::LowWaterMark() const {
  return low_water_mark_.Mark(OldestSnapshot());
}

std::optional<std::string> Member::LowWaterMarkHolder() const {
  const std::optional<Timestamp> mark = LowWaterMark();
  if (!mark) return std::nullopt;
  const bool self_holds = coordinator_->OldestSnapshot().has_value() && OldestSnapshot() == *mark;
  return low_water_mark_.Holder(*mark, self(), self_holds);
}

void Member::SendLowWaterMark() {
  // An idle node's clock only moves when it takes a timestamp: take one, so
  // the oldest snapshot it reports follows time and the mark can rise.
  (void)clock_.Next();
  peers_.Broadcast(LowWaterMarkReport{OldestSnapshot()});
}

Member::Clock::time_point Member::RunTimers(Clock::time_point now) {
  timers_.SetNow(now);
  if (!started_) {
    started_ = true;
    timers_.Every(options_.low_water_mark_interval, [this] { SendLowWaterMark(); });
    timers_.Every(std::chrono::milliseconds(100), [this] { coordinator_->ExpireIdle(); });
    if (shard_server_) shard_server_->Start();
    for (auto& [id, server] : replica_servers_) server->Start();
  }
  const Clock::time_point next = peers_.RunTimers(now);
  return std::min(next, timers_.RunDue(now));
}

std::unique_ptr<WatchFeed> Member::Watch(KeyRange range, Timestamp after, WatchFeedOptions options,
                                         WatchFeed::OnChanges on_changes,
                                         WatchFeed::OnError on_error) {
  auto feed =
      std::make_unique<WatchFeed>(&peers_, &timers_, coordinator_.get(), std::move(range), after,
                                  options, std::move(on_changes), std::move(on_error));
  feed->Start();
  return feed;
}

}  // namespace strata::cluster
