#include "cluster/shard_groups.h"

#include <algorithm>
#include <optional>

#include "cluster/replica_changes.h"
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

void ServeMovedReplicasOn(const std::unique_ptr<Member>* member, ShardGroupsOptions* options) {
  options->replica_added = [member, log = options->log](ShardId shard) {
    if (!*member) return;
    if (Status added = (*member)->AddReplica(shard); !added.ok() && log) {
      log("shard " + std::to_string(shard) + "'s replica here is not served: " + added.message());
    }
  };
  options->replica_removed = [member](ShardId shard) {
    if (*member) (*member)->RemoveShardServer(shard);
  };
  options->replicas_moved = [member](ShardId shard, std::vector<std::string> replicas) {
    if (*member) (*member)->SetShardReplicas(shard, std::move(replicas));
  };
}

Result<std::unique_ptr<ShardGroups>> ShardGroups::Open(ShardGroupsOptions options) {
  // Handed to Start, not kept (options_ is const).
  std::map<ShardId, std::string> initial_states = std::move(options.initial_states);
  std::unique_ptr<ShardGroups> groups(new ShardGroups(std::move(options)));
  if (Status s = groups->Start(std::move(initial_states)); !s.ok()) return s;
  return groups;
}

const replication::RegisteredState* ShardGroups::Registry(raft::GroupId group) const {
  // Every group here was made by the factory in Start: a RegisteredState.
  return static_cast<const replication::RegisteredState*>(host_->state(group));
}

raft::NodeId ShardGroups::NumberOf(const std::string& node) const {
  const auto& ids = node_ids_;
  if (node.empty()) return raft::kNobody;
  const auto it = std::find(ids.begin(), ids.end(), node);
  return it == ids.end() ? raft::kNobody : static_cast<raft::NodeId>(it - ids.begin() + 1);
}

std::vector<raft::NodeId> ShardGroups::PlacementOf(raft::GroupId group) const {
  if (groups_.count(group) != 0 && !Registry(group)->placement().empty()) {
    return Registry(group)->placement();
  }
  return first_placements_[group - 1];
}

Status ShardGroups::Start(std::map<ShardId, std::string> initial_states) {
  const ShardGroupsOptions& o = options_;
  if (o.node_ids.size() > kFirstShardResidue) {
    return Status::InvalidArgument("a cluster with replicated shards has at most " +
                                   std::to_string(kFirstShardResidue) + " nodes");
  }
  if (NumberOf(o.self) == raft::kNobody) {
    return Status::InvalidArgument("'node_ids' does not contain this node's id '" + o.self + "'");
  }
  // Shards are first placed on the first nodes (the cluster's first
  // members) alone.
  Result<ShardMap> map = ShardMap::OfFirstNodes(o.node_ids, o.shard_count, o.replication_factor);
  if (!map.ok()) return map.status();

  replication::RaftHostOptions host;
  host.raft.election_ticks = o.election_ticks;
  host.timeout_ticks = static_cast<uint64_t>(o.proposal_timeout / o.tick) + 1;
  host.compact_after = o.snapshot_count;
  // A shard's snapshot is made on the loop (a consistent cut of its store
  // needs the applying thread), and written to its file and synced on the
  // host's saver thread, which the loop, keeping Raft's time, must not wait for.
  host.save_in_background = true;
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
        const std::string to = NameOf(batch.to);
        if (to.empty()) return;  // a number not named (started) yet
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
  for (const auto& [group, raft] : host_->raft().groups()) groups_.insert(group);
  for (const Shard& shard : map->shards()) {
    std::vector<raft::NodeId>& placement = first_placements_.emplace_back();
    for (const std::string& node : shard.replicas) placement.push_back(NumberOf(node));
  }
  // A directory with no incarnation yet is new (or its first start did
  // not finish): this node's first replicas are made, where
  // ShardMap::Replicated puts them. Later starts take the groups the log
  // holds, which moves changed since.
  if (!replication::HasIncarnation(o.raft_dir)) {
    for (ShardId shard : map->ShardsReplicatedOn(o.self)) {
      const raft::GroupId group = GroupOf(shard);
      groups_.insert(group);
      if (host_->raft().group(group) != nullptr) continue;  // from the log
      std::string initial;
      if (auto state = initial_states.find(shard); state != initial_states.end()) {
        initial = std::move(state->second);
      }
      if (Status s = host_->CreateGroup(group, first_placements_[shard], std::move(initial));
          !s.ok()) {
        return s;
      }
    }
  }
  Result<uint64_t> incarnation = replication::KeepIncarnation(o.raft_dir);
  if (!incarnation.ok()) return incarnation.status();
  incarnation_ = *incarnation;
  return Status::Ok();
}

ShardCoreFactory ShardGroups::CoreFactory() {
  replication::RaftHost* raw_host = host_.get();
  // The groups outlive the member and its cores (ClusterRuntime), and
  // names come as nodes join: the cores ask here.
  return [this, raw_host, timeout = options_.shard_server.heartbeat_timeout](
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
        [this](raft::NodeId id) -> std::optional<std::string> {
          std::string name = NameOf(id);
          if (name.empty()) return std::nullopt;
          return name;
        }));
  };
}

void ShardGroups::Receive(const std::string& from, std::string_view bytes, uint64_t incarnation) {
  raft::NodeBatch batch;
  if (!replication::DecodeNodeBatch(bytes, host_->raft().id(), &batch).ok() || batch.from == 0 ||
      NameOf(batch.from) != from) {
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
  ChangeReplicas();
  BalanceLeaders(now);
  SendReports(now);
}

void ShardGroups::Run() {
  if (!health_.ok()) return;
  health_ = host_->Run();
}

// --- where each group's members are ------------------------------------------

namespace {

// Whether `raft`'s members are its committed configuration: every change
// in its log applied (a member takes a change when appended, and one not
// committed may yet be undone by another leader).
bool MembersApplied(const raft::Raft& raft, raft::Index applied) {
  return raft.LastConfChange() <= applied;
}

}  // namespace

void ShardGroups::SendReports(std::chrono::steady_clock::time_point now) {
  if (now < next_report_) return;
  next_report_ = now + options_.report_interval;
  for (raft::GroupId group : groups_) SendReport(group);
}

void ShardGroups::SendReport(raft::GroupId group) {
  const raft::Raft* raft = host_->raft().group(group);
  if (raft == nullptr || raft->role() != raft::RaftRole::kLeader) return;
  const raft::Index applied = host_->applied(group);
  if (!MembersApplied(*raft, applied)) return;  // reported once applied
  ShardGroupReport report{group,          applied,          raft->term(),      raft->id(),
                          raft->voters(), raft->learners(), PlacementOf(group)};
  const std::string bytes = EncodeShardGroupReport(report);
  for (const std::string& node : node_ids_) {
    if (node.empty() || node == options_.self || gone_.count(node) != 0) continue;
    if (options_.send_report) options_.send_report(node, bytes);
  }
  auto known = reports_.find(group);
  if (known == reports_.end() || known->second.applied < applied ||
      known->second.term < report.term) {
    Learn(report);
  }
}

void ShardGroups::ReceiveReport(const std::string& from, std::string_view bytes) {
  if (!health_.ok()) return;
  Result<ShardGroupReport> report = DecodeShardGroupReport(bytes);
  const raft::NodeId sender = NumberOf(from);
  if (!report.ok() || sender == raft::kNobody || report->group > first_placements_.size() ||
      report->leader != sender) {
    return;  // damaged, or not from the leader it names
  }
  for (const std::set<raft::NodeId>* members : {&report->voters, &report->learners}) {
    if (!members->empty() && *members->rbegin() > node_ids_.size()) return;
  }
  for (raft::NodeId node : report->placement) {
    if (node > node_ids_.size()) return;
  }
  auto known = reports_.find(report->group);
  if (known != reports_.end() &&
      (report->applied < known->second.applied ||
       (report->applied == known->second.applied && report->term <= known->second.term))) {
    return;  // older than what this node knows
  }
  Learn(*report);
}

void ShardGroups::Learn(const ShardGroupReport& report) {
  const raft::GroupId group = report.group;
  const auto shard = static_cast<ShardId>(group - 1);
  ShardGroupReport& known = reports_[group];
  const bool moved = known.voters != report.voters || known.leader != report.leader;
  known = report;
  if (moved && !report.voters.empty() && options_.replicas_moved) {
    // The leader first: calls go there.
    std::vector<std::string> replicas;
    if (report.voters.count(report.leader) != 0) replicas.push_back(NameOf(report.leader));
    for (raft::NodeId voter : report.voters) {
      if (voter != report.leader) replicas.push_back(NameOf(voter));
    }
    std::erase(replicas, std::string());  // numbers not named here yet
    if (!replicas.empty()) options_.replicas_moved(shard, std::move(replicas));
  }
  const raft::NodeId self = host_->raft().id();
  if (groups_.count(group) == 0) {
    // A learner of a group this node has no replica of: one moves here.
    // (Only a learner: a member starts with no vote, and an empty replica
    // that the group counts as a voter could vote and acknowledge what it
    // never held.)
    if (report.learners.count(self) == 0) return;
    if (Status created = host_->CreateGroup(group, {}); !created.ok()) {
      health_ = created;
      return;
    }
    groups_.insert(group);
    ++changes_.started;
    if (options_.log) {
      options_.log("a replica of shard " + std::to_string(shard) + " moves here (its leader " +
                   NameOf(report.leader) + " added this node as a learner)");
    }
    if (options_.replica_added) options_.replica_added(shard);
    return;
  }
  // Removed: the group's members and placement, as of an index this
  // replica has not passed, leave this node out. (Not its own log: a
  // replica catching up passes through configurations that left it out
  // before it was added again, and a removed one may never receive the
  // entry that removes it.)
  if (!report.Names(self) && !report.Places(self) && report.applied >= host_->applied(group)) {
    DeleteReplica(group, "its group removed this node");
  }
}

void ShardGroups::DeleteReplica(raft::GroupId group, const std::string& why) {
  const auto shard = static_cast<ShardId>(group - 1);
  // Newer reports than this replica knew only: an older one that still
  // names this node a learner does not start it again.
  ShardGroupReport& known = reports_[group];
  known.group = group;
  known.applied = std::max(known.applied, host_->applied(group));
  if (options_.replica_removed) options_.replica_removed(shard);
  groups_.erase(group);
  changing_.erase(group);
  ++changes_.deleted;
  if (Status removed = host_->RemoveGroup(group); !removed.ok()) health_ = removed;
  if (options_.log) {
    options_.log("the replica of shard " + std::to_string(shard) + " here is deleted: " + why);
  }
}

void ShardGroups::Place(ShardId shard, const std::vector<std::string>& nodes,
                        std::function<void(Status)> done) {
  const raft::GroupId group = GroupOf(shard);
  if (shard >= first_placements_.size()) {
    return done(Status::InvalidArgument("no shard " + std::to_string(shard) + " (the cluster has " +
                                        std::to_string(first_placements_.size()) + ")"));
  }
  std::vector<raft::NodeId> placement;
  for (const std::string& node : nodes) {
    const raft::NodeId number = NumberOf(node);
    if (number == raft::kNobody || gone_.count(node) != 0) {
      return done(Status::InvalidArgument("no node '" + node + "' in the cluster"));
    }
    if (std::find(placement.begin(), placement.end(), number) != placement.end()) {
      return done(Status::InvalidArgument("node '" + node + "' is named twice"));
    }
    placement.push_back(number);
  }
  if (placement.size() < 2) {
    return done(Status::InvalidArgument(
        "a shard's group needs two replicas at least (Raft keeps two voters)"));
  }
  const raft::Raft* raft = groups_.count(group) != 0 ? host_->raft().group(group) : nullptr;
  if (raft == nullptr || raft->role() != raft::RaftRole::kLeader) {
    return done(Status::Unavailable("node " + options_.self + " does not lead shard " +
                                    std::to_string(shard) + "'s group"));
  }
  host_->Propose(group, replication::RegisteredState::PlacementCommand(placement),
                 [done = std::move(done)](Result<std::string> applied) {
                   done(applied.ok() ? Status::Ok() : applied.status());
                 });
}

void ShardGroups::UpdateNodes(const std::vector<std::string>& by_number,
                              const std::vector<std::string>& gone) {
  for (size_t i = 0; i < by_number.size(); ++i) {
    if (i == node_ids_.size()) node_ids_.emplace_back();
    if (node_ids_[i].empty() && NumberOf(by_number[i]) == raft::kNobody) {
      node_ids_[i] = by_number[i];
    }
  }
  gone_.clear();
  gone_.insert(gone.begin(), gone.end());
}

std::vector<ShardId> ShardGroups::ShardsHere() const {
  std::vector<ShardId> shards;
  for (raft::GroupId group : groups_) shards.push_back(static_cast<ShardId>(group - 1));
  return shards;
}

std::vector<ShardGroupView> ShardGroups::Groups() const {
  std::vector<ShardGroupView> views;
  auto names = [this](const std::set<raft::NodeId>& members) {
    std::vector<std::string> out;
    for (raft::NodeId node : members) out.push_back(NameOf(node));
    return out;
  };
  for (size_t i = 0; i < first_placements_.size(); ++i) {
    const raft::GroupId group = GroupOf(static_cast<ShardId>(i));
    ShardGroupView& view = views.emplace_back();
    view.shard = static_cast<ShardId>(i);
    // The newest report; before the first, this node's replica, or where
    // the group was first placed.
    auto known = reports_.find(group);
    const raft::Raft* raft = groups_.count(group) != 0 ? host_->raft().group(group) : nullptr;
    if (known != reports_.end() && !known->second.voters.empty()) {
      if (known->second.leader != raft::kNobody) view.leader = NameOf(known->second.leader);
      view.voters = names(known->second.voters);
      view.learners = names(known->second.learners);
    } else if (raft != nullptr && !raft->voters().empty()) {
      if (raft->leader() != raft::kNobody) view.leader = NameOf(raft->leader());
      view.voters = names(raft->voters());
      view.learners = names(raft->learners());
    } else {
      view.voters = names({first_placements_[i].begin(), first_placements_[i].end()});
    }
    if (groups_.count(group) != 0) {
      for (raft::NodeId node : PlacementOf(group)) view.placement.push_back(NameOf(node));
    }
  }
  return views;
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
          "member " + NameOf(from) +
          " started with a Raft log its shards' groups do not know (its data directory was "
          "replaced or wiped: they hold another incarnation of it), so the other members ignore "
          "its replicas until each shard's leader has removed it from the shard's group and "
          "added it back (docs/REPLICATION.md)";
      if (options_.log) options_.log(why);
      options_.send_refusal(NameOf(from), why);
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

void ShardGroups::ChangeReplicas() {
  for (raft::GroupId group : groups_) {
    raft::Raft* raft = host_->raft().group(group);
    if (raft == nullptr || raft->role() != raft::RaftRole::kLeader ||
        raft->transferring_to() != raft::kNobody || changing_.count(group) != 0 ||
        !MembersApplied(*raft, host_->applied(group))) {
      continue;
    }
    const replication::RegisteredState* registry = Registry(group);
    const std::optional<ReplicaStep> step = NextReplicaStep(
        *raft, PlacementOf(group),
        [registry](raft::NodeId node) { return registry->incarnation(node); },
        carried_incarnations_);
    if (!step) continue;
    if (!step->change) {
      if (raft->TransferLeadership(step->transfer_to)) {
        ++changes_.handed_over;
        if (options_.log) {
          options_.log("shard " + std::to_string(group - 1) +
                       "'s group is placed elsewhere: this node hands its leadership to " +
                       NameOf(step->transfer_to) + " before it leaves");
        }
      }
      continue;
    }
    changing_.insert(group);
    host_->ProposeConfChange(
        group, *step->change,
        [this, group, change = *step->change](Status done) { ChangeDone(group, change, done); });
  }
}

void ShardGroups::ChangeDone(raft::GroupId group, const raft::ConfChange& change,
                             const Status& done) {
  changing_.erase(group);
  if (!done.ok()) return;  // planned again on a later tick
  using Kind = raft::ConfChange::Kind;
  const bool promoted = change.kind == Kind::kAddVoter;
  ++(change.kind == Kind::kRemove ? changes_.removed
     : promoted                   ? changes_.promoted
                                  : changes_.learners);
  // Every node hears of it now, not at the next report: the new learner
  // starts its replica, the removed member deletes its own.
  if (groups_.count(group) != 0) SendReport(group);
  if (!options_.log) return;
  const std::string who = "member " + NameOf(change.node);
  const std::string shard = "shard " + std::to_string(group - 1) + "'s group";
  options_.log(change.kind == Kind::kRemove ? who + " removed from " + shard
               : promoted ? who + " promoted to a voter of " + shard + ", caught up"
                          : who + " added to " + shard + " as a learner");
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
    const raft::NodeId home = PlacementOf(group).front();
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
