#include "server/cluster_runtime.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "cluster/replicated_shard_core.h"
#include "replication/incarnations.h"
#include "replication/raft_wire.h"
#include "server/replica_repair.h"

namespace strata::server {

using Clock = cluster::Member::Clock;

Result<std::unique_ptr<ClusterRuntime>> ClusterRuntime::Start(ClusterRuntimeOptions options,
                                                              MvccStore* store,
                                                              const Store* durable) {
  std::unique_ptr<ClusterRuntime> runtime(new ClusterRuntime(std::move(options)));
  runtime->durable_ = durable;
  const ClusterRuntimeOptions& o = runtime->options_;
  // Timestamps continue above everything the store holds.
  const Timestamp issued = store->max_timestamp().value_or(Timestamp());
  cluster::MemberOptions member_options = o.member;
  if (member_options.replication_factor > 1) {
    if (Status s = runtime->StartReplicatedShards(&member_options); !s.ok()) return s;
  }
  Result<std::unique_ptr<cluster::Member>> member = cluster::Member::Create(
      o.self, o.node_ids, member_options, store, /*persist=*/durable != nullptr, issued,
      runtime.get(),
      [raw = runtime.get()](const std::string& request, cluster::ShardServer::Respond respond) {
        if (!raw->forward_handler_) {
          return respond(
              cluster::PeerError{Status::InvalidArgument("this member serves no forwards")});
        }
        raw->forward_handler_(request, std::move(respond));
      },
      [store](Timestamp horizon) { return store->Compact(horizon); }, Clock::now());
  if (!member.ok()) return member.status();
  runtime->member_ = std::move(*member);
  runtime->loop_ = std::thread([raw = runtime.get()] { raw->Loop(); });
  return runtime;
}

namespace {

// Shard timestamps' residues (HybridClockOptions::node_index): above the
// nodes' own.
constexpr uint32_t kFirstShardResidue = 16;

raft::GroupId GroupOf(cluster::ShardId shard) { return shard + 1; }

}  // namespace

Status ClusterRuntime::StartReplicatedShards(cluster::MemberOptions* member) {
  const ClusterRuntimeOptions& o = options_;
  if (o.node_ids.size() > kFirstShardResidue) {
    return Status::InvalidArgument("a cluster with replicated shards has at most " +
                                   std::to_string(kFirstShardResidue) + " nodes");
  }
  if (o.raft_dir.empty()) return Status::InvalidArgument("replicated shards need a Raft directory");
  const auto self = std::find(o.node_ids.begin(), o.node_ids.end(), o.self);
  if (self == o.node_ids.end()) {
    return Status::InvalidArgument("'node_ids' does not contain this node's id '" + o.self + "'");
  }
  const auto raft_id = static_cast<raft::NodeId>(self - o.node_ids.begin() + 1);
  Result<cluster::ShardMap> map =
      cluster::ShardMap::Replicated(o.node_ids, member->replication_factor);
  if (!map.ok()) return map.status();

  replication::RaftHostOptions host;
  host.raft.election_ticks = o.election_ticks;
  host.timeout_ticks = static_cast<uint64_t>(member->rpc_timeout / o.raft_tick) + 1;
  const cluster::ShardServerOptions shard_options = member->shard_server;
  Result<std::unique_ptr<replication::RaftHost>> opened = replication::RaftHost::Open(
      raft_id, o.raft_dir, host,
      [this, shard_options](raft::GroupId group) -> std::unique_ptr<replication::ReplicatedState> {
        // The shard within its group's registry of members' incarnations.
        cluster::ReplicatedShardOptions options;
        options.shard = group - 1;
        options.residue = kFirstShardResidue + options.shard;
        options.outcome_retention = shard_options.outcome_retention;
        options.heartbeat_timeout = shard_options.heartbeat_timeout;
        options.describe_key = shard_options.describe_key;
        options.change_log_bytes = shard_options.change_log_bytes;
        auto state = std::make_unique<replication::RegisteredState>(
            std::make_unique<cluster::ReplicatedShard>(std::move(options)));
        // A member removed from a group here (its disk was replaced) is
        // registered nowhere again until its next batch is taken: the
        // incarnation heard before is its old one.
        state->set_observer([this](raft::NodeId node, const replication::MemberRecord* record) {
          if (record == nullptr) heard_incarnations_.erase(node);
        });
        return state;
      },
      [this](raft::NodeBatch batch) {
        if (batch.to == 0 || batch.to > options_.node_ids.size()) return;
        peerpb::Message message;
        message.set_raft_batch(replication::EncodeNodeBatch(batch));
        message.set_raft_incarnation(incarnation_);
        // A drop is a lost message: Raft sends again.
        (void)network_.Send(options_.node_ids[batch.to - 1], std::move(message));
      });
  if (!opened.ok()) return opened.status();
  host_ = std::move(*opened);
  Result<uint64_t> incarnation = replication::KeepIncarnation(o.raft_dir);
  if (!incarnation.ok()) return incarnation.status();
  incarnation_ = *incarnation;
  for (cluster::ShardId shard : map->ShardsReplicatedOn(o.self)) {
    const raft::GroupId group = GroupOf(shard);
    groups_.push_back(group);
    std::vector<raft::NodeId>& placement = placements_[group];
    for (const std::string& node : map->shards()[shard].replicas) {
      placement.push_back(static_cast<raft::NodeId>(
          std::find(o.node_ids.begin(), o.node_ids.end(), node) - o.node_ids.begin() + 1));
    }
    // The shard's first replica (shard i's is node i) is its home.
    homes_[group] = placement.front();
    if (host_->raft().group(group) != nullptr) continue;  // from the log
    if (Status s = host_->CreateGroup(group, placement); !s.ok()) return s;
  }
  replication::RaftHost* raw_host = host_.get();
  std::vector<std::string> names = o.node_ids;
  member->shard_cores =
      [raw_host, names, timeout = shard_options.heartbeat_timeout](
          cluster::ShardId shard, cluster::HybridLogicalClock* clock,
          cluster::Timers* timers) -> Result<std::unique_ptr<cluster::ShardCore>> {
    auto* registered = static_cast<replication::RegisteredState*>(raw_host->state(GroupOf(shard)));
    auto* state = registered == nullptr
                      ? nullptr
                      : static_cast<cluster::ReplicatedShard*>(&registered->inner());
    if (state == nullptr) {
      return Status::InvalidArgument("no replica of shard " + std::to_string(shard) + " here");
    }
    return std::unique_ptr<cluster::ShardCore>(std::make_unique<cluster::ReplicatedShardCore>(
        raw_host, GroupOf(shard), state, clock, timers, timeout,
        [names](raft::NodeId id) -> std::optional<std::string> {
          if (id == 0 || id > names.size()) return std::nullopt;
          return names[id - 1];
        }));
  };
  return Status::Ok();
}

void ClusterRuntime::RunRaft() {
  if (host_ && raft_health_.ok()) raft_health_ = host_->Run();
}

void ClusterRuntime::RegisterIncarnations() {
  RegisterWhereLeading(host_->raft().id(), incarnation_);
  for (const auto& [node, incarnation] : heard_incarnations_) {
    RegisterWhereLeading(node, incarnation);
  }
}

void ClusterRuntime::BalanceLeaders(std::chrono::steady_clock::time_point now) {
  if (now < next_balance_) return;
  next_balance_ = now + options_.balance_interval;
  for (raft::GroupId group : groups_) {
    raft::Raft* raft = host_->raft().group(group);
    if (raft == nullptr || raft->role() != raft::RaftRole::kLeader ||
        raft->transferring_to() != raft::kNobody) {
      continue;
    }
    const raft::NodeId home = homes_[group];
    // Its home answers and holds everything committed: the handover
    // costs a round, not a stalled election.
    if (home == raft->id() || raft->voters().count(home) == 0 || !raft->Active(home) ||
        raft->MatchOf(home) < raft->log().committed()) {
      continue;
    }
    if (raft->TransferLeadership(home)) ++leaders_handed_home_;
  }
}

bool ClusterRuntime::Admit(raft::NodeId from, uint64_t incarnation) {
  if (incarnation == 0) return false;  // every member's batches carry one
  carried_incarnations_[from] = incarnation;
  for (raft::GroupId group : groups_) {
    const auto* registry = static_cast<const replication::RegisteredState*>(host_->state(group));
    const std::optional<uint64_t> known = registry->incarnation(from);
    if (!known || *known == incarnation) continue;
    ++refused_replaced_;
    heard_incarnations_.erase(from);  // registered nowhere until taken again
    auto& told = told_replaced_[from];
    if (std::chrono::steady_clock::now() - told >= std::chrono::seconds(1)) {
      told = std::chrono::steady_clock::now();
      const std::string why =
          "member " + options_.node_ids[from - 1] +
          " started with a Raft log its shards' groups do not know (its data directory was "
          "replaced or wiped: they hold another incarnation of it), so the other members ignore "
          "its replicas until each shard's leader has removed it from the shard's group and "
          "added it back (docs/REPLICATION.md)";
      if (options_.log) options_.log(why);
      peerpb::Message message;
      message.set_raft_refused(why);
      (void)network_.Send(options_.node_ids[from - 1], std::move(message));
    }
    return false;
  }
  heard_incarnations_[from] = incarnation;  // registered on the next tick
  return true;
}

void ClusterRuntime::RegisterWhereLeading(raft::NodeId node, uint64_t incarnation) {
  for (raft::GroupId group : groups_) {
    const raft::Raft* raft = host_->raft().group(group);
    if (raft == nullptr || raft->role() != raft::RaftRole::kLeader ||
        (raft->voters().count(node) == 0 && raft->learners().count(node) == 0)) {
      continue;
    }
    const auto* registry = static_cast<const replication::RegisteredState*>(host_->state(group));
    if (registry->incarnation(node) || !registering_.insert({group, node}).second) continue;
    host_->Propose(group, replication::RegisteredState::RegisterCommand(node, incarnation),
                   [this, group, node](Result<std::string>) {
                     registering_.erase({group, node});
                   });
  }
}

void ClusterRuntime::RepairReplicas() {
  for (raft::GroupId group : groups_) {
    const raft::Raft* raft = host_->raft().group(group);
    if (raft == nullptr || raft->role() != raft::RaftRole::kLeader ||
        raft->transferring_to() != raft::kNobody || repairing_.count(group) != 0) {
      continue;
    }
    const auto* registry = static_cast<const replication::RegisteredState*>(host_->state(group));
    const std::optional<raft::ConfChange> change = NextReplicaRepair(
        *raft, placements_[group],
        [registry](raft::NodeId node) { return registry->incarnation(node); },
        carried_incarnations_);
    if (!change) continue;
    repairing_.insert(group);
    host_->ProposeConfChange(group, *change, [this, group, change = *change](Status done) {
      repairing_.erase(group);
      if (!done.ok()) return;  // planned again on a later tick
      using Kind = raft::ConfChange::Kind;
      const bool promoted = change.kind == Kind::kAddVoter;
      ++(change.kind == Kind::kRemove ? repairs_.removed
         : promoted                   ? repairs_.promoted
                                      : repairs_.learners);
      if (!options_.log) return;
      const std::string who = "member " + options_.node_ids[change.node - 1];
      const std::string shard = "shard " + std::to_string(group - 1) + "'s group";
      options_.log(change.kind == Kind::kRemove
                       ? who + " removed from " + shard +
                             " (its data directory was replaced); it is added back as a learner"
                   : promoted ? who + " promoted to a voter of " + shard + ", caught up"
                              : who + " added back to " + shard + " as a learner");
    });
  }
}

std::string ClusterRuntime::refused_by_others() const {
  if (std::chrono::steady_clock::now() - refused_at_ > kRefusalHeldFor) return "";
  return refused_by_others_;
}

ClusterRuntime::ClusterRuntime(ClusterRuntimeOptions options)
    : options_(std::move(options)),
      network_(options_.self, options_.network,
               [this](const std::string& from, peerpb::Message message) {
                 Receive(from, std::move(message));
               }) {}

ClusterRuntime::~ClusterRuntime() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.NotifyAll();
  if (loop_.joinable()) loop_.join();
  // network_ stops its links as it is destroyed, after the loop: nothing
  // sends any more.
}

void ClusterRuntime::ConnectPeers(const std::map<std::string, std::string>& addresses) {
  for (const auto& [node, address] : addresses) {
    if (node != options_.self) network_.AddPeer(node, address);
  }
}

bool ClusterRuntime::Post(Task task) {
  {
    MutexLock lock(mu_);
    if (stopping_) return false;
    tasks_.push_back(std::move(task));
  }
  wake_.NotifyOne();
  return true;
}

uint64_t ClusterRuntime::Send(std::string_view dest, std::optional<cluster::ShardId> shard,
                              const cluster::PeerRequest& request, Timestamp hlc) {
  const uint64_t msg_id = next_msg_id_++;
  if (dest == options_.self) {
    // To itself: typed, never encoded, and on a later turn (a caller
    // registers its call after Send returns).
    (void)Post([this, msg_id, hlc, shard, request](cluster::Member& member) mutable {
      member.OnRequest(
          options_.self, hlc, shard, std::move(request),
          [this, msg_id](cluster::PeerReply reply) { Reply(options_.self, msg_id, reply); });
    });
    return msg_id;
  }
  peerpb::Message message;
  message.set_msg_id(msg_id);
  message.set_hlc(hlc.value());
  if (shard) message.set_shard_plus_one(*shard + 1);
  RequestToProto(request, &message);
  Route(std::string(dest), std::move(message));
  return msg_id;
}

void ClusterRuntime::ConfigureServer(grpc::ServerBuilder* builder) {
  // The bound is on one batch: senders batch at most max_batch_bytes, or
  // one message when it alone is larger (at most kMaxPeerMessageBytes).
  builder->SetMaxReceiveMessageSize(static_cast<int>(
      std::max(options_.network.max_batch_bytes, cluster::kMaxPeerMessageBytes) + 64 * 1024));
  builder->RegisterService(network_.service());
}

uint64_t ClusterRuntime::dropped_from_peers() const {
  MutexLock lock(mu_);
  return dropped_from_peers_;
}

void ClusterRuntime::Receive(const std::string& from, peerpb::Message message) {
  {
    MutexLock lock(mu_);
    if (stopping_) return;
    if (tasks_.size() >= options_.max_queued_from_peers) {
      ++dropped_from_peers_;
      return;
    }
    tasks_.push_back([this, from, message = std::move(message)](cluster::Member& member) {
      Handle(member, from, message);
    });
  }
  wake_.NotifyOne();
}

void ClusterRuntime::Handle(cluster::Member& member, const std::string& from,
                            const peerpb::Message& message) {
  if (!member.IsPeer(from)) return;  // not of this cluster
  if (message.body_case() == peerpb::Message::kRaftBatch) {
    if (!host_) return;  // not a member with replicated shards
    raft::NodeBatch batch;
    if (!replication::DecodeNodeBatch(message.raft_batch(), host_->raft().id(), &batch).ok() ||
        batch.from == 0 || batch.from > options_.node_ids.size() ||
        options_.node_ids[batch.from - 1] != from) {
      return;  // damaged, or not from whom it says
    }
    if (Admit(batch.from, message.raft_incarnation())) host_->Receive(batch);
    return;
  }
  if (message.body_case() == peerpb::Message::kRaftRefused) {
    // This node's disk was replaced: the others say so (once a second).
    if (refused_by_others().empty() && options_.log) options_.log(message.raft_refused());
    refused_by_others_ = message.raft_refused();
    refused_at_ = std::chrono::steady_clock::now();
    return;
  }
  std::optional<Timestamp> hlc;
  if (message.hlc() != 0) hlc = Timestamp(message.hlc());
  if (IsReply(message)) {
    member.OnReply(hlc, message.in_reply_to(), ReplyFromProto(message));
    return;
  }
  cluster::PeerRequest request;
  const uint64_t msg_id = message.msg_id();
  if (Status s = RequestFromProto(message, &request); !s.ok()) {
    return Reply(from, msg_id, cluster::PeerError{s});
  }
  std::optional<cluster::ShardId> shard;
  if (message.shard_plus_one() != 0) shard = message.shard_plus_one() - 1;
  member.OnRequest(from, hlc, shard, std::move(request),
                   [this, from, msg_id](cluster::PeerReply reply) { Reply(from, msg_id, reply); });
}

void ClusterRuntime::Reply(const std::string& to, uint64_t in_reply_to,
                           const cluster::PeerReply& reply) {
  if (to == options_.self) {
    (void)Post([in_reply_to, reply, hlc = member_->LastTimestamp()](cluster::Member& member) {
      member.OnReply(hlc, in_reply_to, reply);
    });
    return;
  }
  peerpb::Message message;
  message.set_msg_id(next_msg_id_++);
  message.set_in_reply_to(in_reply_to);
  message.set_hlc(member_->LastTimestamp().value());
  ReplyToProto(reply, &message);
  Route(to, std::move(message));
}

void ClusterRuntime::Route(const std::string& to, peerpb::Message message) {
  WhenDurable([this, to, message = std::move(message)]() mutable {
    (void)network_.Send(to, std::move(message));  // a drop is a lost message
  });
}

void ClusterRuntime::WhenDurable(std::function<void()> fn, std::function<void()> failed) {
  if (durable_ != nullptr) {
    const uint64_t lsn = durable_->appended_lsn();
    if (lsn > durable_->durable_lsn() || !held_.empty()) {
      if (!log_health_.ok()) {
        if (failed) failed();
        return;
      }
      held_.push_back(Held{lsn, std::move(fn), std::move(failed)});
      held_count_ = held_.size();
      return;
    }
  }
  fn();
}

void ClusterRuntime::NotifyDurable() {
  {
    MutexLock lock(mu_);
    durable_moved_ = true;
  }
  wake_.NotifyOne();
}

void ClusterRuntime::ReleaseDurable() {
  if (held_.empty()) return;
  const uint64_t durable = durable_->durable_lsn();
  while (!held_.empty() && held_.front().lsn <= durable) {
    std::function<void()> fn = std::move(held_.front().fn);
    held_.pop_front();
    fn();
  }
  if (!held_.empty() && !log_health_.ok()) {
    // The rest will never be durable.
    std::deque<Held> lost;
    lost.swap(held_);
    for (Held& h : lost) {
      if (h.failed) h.failed();
    }
  }
  held_count_ = held_.size();
}

void ClusterRuntime::Loop() {
  Clock::time_point next = member_->RunTimers(Clock::now());
  Clock::time_point next_tick = Clock::now() + options_.raft_tick;
  for (;;) {
    std::deque<Task> batch;
    bool moved = false;
    {
      UniqueLock lock(mu_);
      // Capped: a far or absent deadline still wakes the loop now and then.
      Clock::time_point until = std::min(next, Clock::now() + std::chrono::seconds(1));
      if (host_) until = std::min(until, next_tick);
      wake_.WaitUntil(lock, until, [&]() STRATA_REQUIRES(mu_) {
        return stopping_ || !tasks_.empty() || durable_moved_;
      });
      if (stopping_) return;
      batch.swap(tasks_);
      moved = durable_moved_;
      durable_moved_ = false;
    }
    // A failed log stays failed; it says so when it fails.
    if (moved && durable_ != nullptr && log_health_.ok()) log_health_ = durable_->health();
    // The member's timers measure from now, not from the last turn: a
    // commit wait scheduled from a stale now would end early.
    member_->SetNow(Clock::now());
    for (Task& task : batch) task(*member_);
    next = member_->RunTimers(Clock::now());
    if (host_ && Clock::now() >= next_tick) {
      if (raft_health_.ok()) {
        host_->Tick();
        RegisterIncarnations();
        RepairReplicas();
        BalanceLeaders(Clock::now());
      }
      next_tick = std::max(next_tick + options_.raft_tick, Clock::now());
    }
    RunRaft();
    ReleaseDurable();
    last_timestamp_ = member_->LastTimestamp().value();
  }
}

}  // namespace strata::server
