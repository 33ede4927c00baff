#include "cluster/replicated_shard_core.h"

#include <algorithm>
#include <utility>

namespace strata::cluster {

ReplicatedShardCore::ReplicatedShardCore(replication::RaftHost* host, raft::GroupId group,
                                         ReplicatedShard* shard, HybridLogicalClock* node_clock,
                                         Timers* timers,
                                         std::chrono::milliseconds heartbeat_timeout,
                                         NodeName node_name)
    : host_(host),
      group_(group),
      shard_(shard),
      node_clock_(node_clock),
      timers_(timers),
      heartbeat_timeout_(heartbeat_timeout),
      node_name_(std::move(node_name)) {}

std::optional<std::string> ReplicatedShardCore::LeaderElsewhere() const {
  const raft::Raft* raft = host_->raft().group(group_);
  if (raft == nullptr || raft->role() == raft::RaftRole::kLeader || raft->leader() == 0) {
    return std::nullopt;
  }
  return node_name_ ? node_name_(raft->leader()) : std::nullopt;
}

bool ReplicatedShardCore::Leads() const {
  const raft::Raft* raft = host_->raft().group(group_);
  return raft != nullptr && raft->role() == raft::RaftRole::kLeader;
}

ReplicatedShardCore::~ReplicatedShardCore() = default;

uint64_t ReplicatedShardCore::WallMs() const {
  return std::max(HybridLogicalClock::PhysicalMillis(node_clock_->Last()),
                  HybridLogicalClock::SystemMillis());
}

void ReplicatedShardCore::Propose(std::string command, Respond done) {
  host_->Propose(
      group_, std::move(command),
      [alive = std::weak_ptr<bool>(alive_), done = std::move(done)](Result<std::string> applied) {
        if (alive.expired()) return;
        if (!applied.ok()) return done(PeerError{applied.status()});
        done(ReplicatedShard::DecodeReply(*applied));
      });
}

void ReplicatedShardCore::Prepare(ShardPrepare prepare, Timestamp sender_clock, Respond done) {
  Propose(ReplicatedShard::PrepareCommand(prepare, HybridLogicalClock::PhysicalMillis(sender_clock),
                                          WallMs()),
          std::move(done));
}

void ReplicatedShardCore::CommitOnePhase(const PrepareRequest& request, Timestamp sender_clock,
                                         Respond done) {
  Propose(ReplicatedShard::CommitCommand(
              ShardCommit{request}, HybridLogicalClock::PhysicalMillis(sender_clock), WallMs()),
          std::move(done));
}

void ReplicatedShardCore::Resolve(TxnId txn, TxnStatus outcome, Timestamp commit_timestamp,
                                  Done done) {
  Propose(ReplicatedShard::ResolveCommand(ShardResolve{txn, outcome, commit_timestamp}, WallMs()),
          [done = std::move(done)](const PeerReply& reply) {
            if (const auto* error = std::get_if<PeerError>(&reply)) return done(error->status);
            done(Status::Ok());
          });
}

bool ReplicatedShardCore::HeartbeatStale(TxnId txn) {
  const Clock::time_point now = timers_->now();
  auto [it, first_look] = heartbeats_.try_emplace(txn, now);
  return !first_look && now - it->second >= heartbeat_timeout_;
}

void ReplicatedShardCore::Record(const RecordCall& call, Respond done) {
  const std::optional<TxnRecord> record = shard_->records().Find(call.txn);
  auto as_it_is = [&call, &record] { return RecordReplyOf(call.op, record); };
  switch (call.op) {
    case RecordOp::kHeartbeat:
      if (record && record->status == TxnStatus::kPending) {
        heartbeats_[call.txn] = timers_->now();
      }
      return done(as_it_is());
    case RecordOp::kPush: {
      const bool abandoned =
          !record || (record->status == TxnStatus::kPending && HeartbeatStale(call.txn));
      if (!abandoned) return done(as_it_is());
      ++stats_.pushes_aborted;
      // The leader's judgement, then the abort for every replica. The
      // reply names the push (its caller matches replies by op).
      return Propose(
          ReplicatedShard::RecordCommand(RecordCall{RecordOp::kAbort, call.txn, {}}, WallMs()),
          [done = std::move(done)](PeerReply reply) {
            if (auto* r = std::get_if<RecordReply>(&reply)) r->op = RecordOp::kPush;
            done(std::move(reply));
          });
    }
    case RecordOp::kCommit:
    case RecordOp::kAbort:
    case RecordOp::kForget:
      return Propose(ReplicatedShard::RecordCommand(call, WallMs()), std::move(done));
  }
}

void ReplicatedShardCore::Close(Timestamp snapshot, Done done) {
  // The node's receive rule first: a snapshot too far ahead of this
  // node's wall clock would drag the shard's clock into the future.
  if (Status s = node_clock_->Update(snapshot); !s.ok()) return done(s);
  if (shard_->closed() >= snapshot) return done(Status::Ok());
  if (closing_.size() >= kMaxClosing) {
    return done(Status::Unavailable("shard " + std::to_string(group_ - 1) + " already holds " +
                                    std::to_string(kMaxClosing) +
                                    " reads waiting for its clock; try again"));
  }
  closing_.emplace(snapshot, std::move(done));
  if (!close_in_flight_) ProposeClose();
}

void ReplicatedShardCore::ProposeClose() {
  // One close at a time, at this node's clock: it covers every read
  // waiting (the receive rule put the clock past their snapshots), and
  // the reads that come while it is in flight wait for the next.
  close_in_flight_ = true;
  ++stats_.closes_proposed;
  Propose(ReplicatedShard::CloseCommand(node_clock_->Last(), WallMs()), [this](PeerReply reply) {
    close_in_flight_ = false;
    const auto* error = std::get_if<PeerError>(&reply);
    const Status failed = error ? error->status : Status::Ok();
    // Taken out first: an answer may ask for another close.
    std::vector<Done> served, refused;
    for (auto it = closing_.begin(); it != closing_.end();) {
      if (it->first <= shard_->closed()) {
        served.push_back(std::move(it->second));
      } else if (error) {
        refused.push_back(std::move(it->second));
      } else {
        ++it;
        continue;
      }
      it = closing_.erase(it);
    }
    for (Done& d : served) d(Status::Ok());
    for (Done& d : refused) d(failed);
    if (!closing_.empty() && !close_in_flight_) ProposeClose();
  });
}

void ReplicatedShardCore::Compact(Timestamp horizon, Respond done) {
  Propose(ReplicatedShard::CompactCommand(horizon, WallMs()), std::move(done));
}

void ReplicatedShardCore::KeepTimeMoving() {
  if (!Leads() || close_in_flight_) return;
  const Result<Timestamp> now = node_clock_->Next();
  if (!now.ok()) return;
  // Moved within the last few milliseconds by writes or reads: a close
  // would add nothing a reader could tell.
  constexpr uint64_t kFreshMs = 10;
  if (HybridLogicalClock::PhysicalMillis(shard_->closed()) + kFreshMs >=
      HybridLogicalClock::PhysicalMillis(*now)) {
    return;
  }
  ++stats_.idle_closes;
  ProposeClose();
}

void ReplicatedShardCore::ForgetOldState(uint64_t /*now_ms*/) {
  std::erase_if(heartbeats_, [this](const auto& entry) {
    const std::optional<TxnRecord> record = shard_->records().Find(entry.first);
    return !record || record->status != TxnStatus::kPending;
  });
}

}  // namespace strata::cluster
