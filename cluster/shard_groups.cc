#include "cluster/shard_groups.h"

#include <algorithm>
#include <optional>

#include "cluster/replica_repair.h"
#include "cluster/replicated_shard.h"
#include "cluster/replicated_shard_core.h"
#include "cluster/shard_map.h"
#include "replication/incarnations.h"
#include "replication/raft_wire.h"

namespace strata::cluster {

namespace {

// Shard timestamps' residues (HybridClockOptions::node_index): above the
// nodes' own.
constexpr uint32_t kFirstShardResidue = 16;

raft::GroupId GroupOf(ShardId shard) { return shard + 1; }

}  // namespace

Result<std::unique_ptr<ShardGroups>> ShardGroups::Open(ShardGroupsOptions options) {
  std::unique_ptr<ShardGroups> groups(new ShardGroups(std::move(options)));
  if (Status s = groups->Start(); !s.ok()) return s;
  return groups;
}

const replication::RegisteredState* ShardGroups::Registry(raft::GroupId group) const {
  // Every group here was made by the factory in Start: a RegisteredState.
  return static_cast<const replication::RegisteredState*>(host_->state(group));
}

raft::NodeId ShardGroups::NumberOf(const std::string& node) const {
  const auto& ids = options_.node_ids;
  return static_cast<raft::NodeId>(std::find(ids.begin(), ids.end(), node) - ids.begin() + 1);
}

Status ShardGroups::Start() {
  const ShardGroupsOptions& o = options_;
  if (o.node_ids.size() > kFirstShardResidue) {
    return Status::InvalidArgument("a cluster with replicated shards has at most " +
                                   std::to_string(kFirstShardResidue) + " nodes");
  }
  if (o.raft_dir.empty()) return Status::InvalidArgument("replicated shards need a Raft directory");
  if (std::find(o.node_ids.begin(), o.node_ids.end(), o.self) == o.node_ids.end()) {
    return Status::InvalidArgument("'node_ids' does not contain this node's id '" + o.self + "'");
  }
  Result<ShardMap> map = ShardMap::Replicated(o.node_ids, o.replication_factor);
  if (!map.ok()) return map.status();

  replication::RaftHostOptions host;
  host.raft.election_ticks = o.election_ticks;
  host.timeout_ticks = static_cast<uint64_t>(o.proposal_timeout / o.tick) + 1;
  const ShardServerOptions shard_options = o.shard_server;
  Result<std::unique_ptr<replication::RaftHost>> opened = replication::RaftHost::Open(
      NumberOf(o.self), o.raft_dir, host,
      [this, shard_options](raft::GroupId group) -> std::unique_ptr<replication::ReplicatedState> {
        // The shard within its group's registry of members' incarnations.
        ReplicatedShardOptions options;
        options.shard = group - 1;
        options.residue = kFirstShardResidue + options.shard;
        options.outcome_retention = shard_options.outcome_retention;
        options.heartbeat_timeout = shard_options.heartbeat_timeout;
        options.describe_key = shard_options.describe_key;
        options.change_log_bytes = shard_options.change_log_bytes;
        auto state = std::make_unique<replication::RegisteredState>(
            std::make_unique<ReplicatedShard>(std::move(options)));
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
        const std::string& to = options_.node_ids[batch.to - 1];
        if (options_.max_batch_bytes == 0) {
          return options_.send_batch(to, replication::EncodeNodeBatch(batch), incarnation_);
        }
        for (std::string& part :
             replication::EncodeNodeBatchWithin(batch, options_.max_batch_bytes)) {
          options_.send_batch(to, std::move(part), incarnation_);
        }
      });
  if (!opened.ok()) return opened.status();
  host_ = std::move(*opened);
  Result<uint64_t> incarnation = replication::KeepIncarnation(o.raft_dir);
  if (!incarnation.ok()) return incarnation.status();
  incarnation_ = *incarnation;
  for (ShardId shard : map->ShardsReplicatedOn(o.self)) {
    const raft::GroupId group = GroupOf(shard);
    groups_.push_back(group);
    // The shard's first replica (shard i's is node i) is its home.
    std::vector<raft::NodeId>& placement = placements_[group];
    for (const std::string& node : map->shards()[shard].replicas) {
      placement.push_back(NumberOf(node));
    }
    if (host_->raft().group(group) != nullptr) continue;  // from the log
    if (Status s = host_->CreateGroup(group, placement); !s.ok()) return s;
  }
  return Status::Ok();
}

ShardCoreFactory ShardGroups::CoreFactory() {
  replication::RaftHost* raw_host = host_.get();
  return [raw_host, names = options_.node_ids, timeout = options_.shard_server.heartbeat_timeout](
             ShardId shard, HybridLogicalClock* clock,
             Timers* timers) -> Result<std::unique_ptr<ShardCore>> {
    auto* registered = static_cast<replication::RegisteredState*>(raw_host->state(GroupOf(shard)));
    auto* state =
        registered == nullptr ? nullptr : static_cast<ReplicatedShard*>(&registered->inner());
    if (state == nullptr) {
      return Status::InvalidArgument("no replica of shard " + std::to_string(shard) + " here");
    }
    return std::unique_ptr<ShardCore>(std::make_unique<ReplicatedShardCore>(
        raw_host, GroupOf(shard), state, clock, timers, timeout,
        [names](raft::NodeId id) -> std::optional<std::string> {
          if (id == 0 || id > names.size()) return std::nullopt;
          return names[id - 1];
        }));
  };
}

void ShardGroups::Receive(const std::string& from, std::string_view bytes, uint64_t incarnation) {
  raft::NodeBatch batch;
  if (!replication::DecodeNodeBatch(bytes, host_->raft().id(), &batch).ok() || batch.from == 0 ||
      batch.from > options_.node_ids.size() || options_.node_ids[batch.from - 1] != from) {
    return;  // damaged, or not from whom it says
  }
  if (Admit(batch.from, incarnation)) host_->Receive(batch);
}

void ShardGroups::Refused(const std::string& why) {
  if (refused_by_others().empty() && options_.log) options_.log(why);
  refused_by_others_ = why;
  refused_at_ = std::chrono::steady_clock::now();
}

std::string ShardGroups::refused_by_others() const {
  if (std::chrono::steady_clock::now() - refused_at_ > kRefusalHeldFor) return "";
  return refused_by_others_;
}

void ShardGroups::Tick(std::chrono::steady_clock::time_point now) {
  if (!health_.ok()) return;
  host_->Tick();
  RegisterIncarnations();
  RepairReplicas();
  BalanceLeaders(now);
}

void ShardGroups::Run() {
  if (health_.ok()) health_ = host_->Run();
}

bool ShardGroups::Admit(raft::NodeId from, uint64_t incarnation) {
  if (incarnation == 0) return false;  // every member's batches carry one
  carried_incarnations_[from] = incarnation;
  for (raft::GroupId group : groups_) {
    const replication::RegisteredState* registry = Registry(group);
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
      options_.send_refusal(options_.node_ids[from - 1], why);
    }
    return false;
  }
  heard_incarnations_[from] = incarnation;  // registered on the next tick
  return true;
}

void ShardGroups::RegisterIncarnations() {
  RegisterWhereLeading(host_->raft().id(), incarnation_);
  for (const auto& [node, incarnation] : heard_incarnations_) {
    RegisterWhereLeading(node, incarnation);
  }
}

void ShardGroups::RegisterWhereLeading(raft::NodeId node, uint64_t incarnation) {
  for (raft::GroupId group : groups_) {
    const raft::Raft* raft = host_->raft().group(group);
    if (raft == nullptr || raft->role() != raft::RaftRole::kLeader ||
        (raft->voters().count(node) == 0 && raft->learners().count(node) == 0)) {
      continue;
    }
    const replication::RegisteredState* registry = Registry(group);
    if (registry->incarnation(node) || !registering_.insert({group, node}).second) continue;
    host_->Propose(group, replication::RegisteredState::RegisterCommand(node, incarnation),
                   [this, group, node](Result<std::string>) {
                     registering_.erase({group, node});
                   });
  }
}

void ShardGroups::RepairReplicas() {
  for (raft::GroupId group : groups_) {
    const raft::Raft* raft = host_->raft().group(group);
    if (raft == nullptr || raft->role() != raft::RaftRole::kLeader ||
        raft->transferring_to() != raft::kNobody || repairing_.count(group) != 0) {
      continue;
    }
    const replication::RegisteredState* registry = Registry(group);
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

void ShardGroups::BalanceLeaders(std::chrono::steady_clock::time_point now) {
  if (now < next_balance_) return;
  next_balance_ = now + options_.balance_interval;
  for (raft::GroupId group : groups_) {
    raft::Raft* raft = host_->raft().group(group);
    if (raft == nullptr || raft->role() != raft::RaftRole::kLeader ||
        raft->transferring_to() != raft::kNobody) {
      continue;
    }
    const raft::NodeId home = placements_[group].front();
    // Its home answers and holds everything committed: the handover
    // costs a round, not a stalled election.
    if (home == raft->id() || raft->voters().count(home) == 0 || !raft->Active(home) ||
        raft->MatchOf(home) < raft->log().committed()) {
      continue;
    }
    if (raft->TransferLeadership(home)) ++leaders_handed_home_;
  }
}

}  // namespace strata::cluster
