#include "server/cluster_runtime.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "base/thread_name.h"

namespace strata::server {

using Clock = cluster::Member::Clock;

Result<std::unique_ptr<ClusterRuntime>> ClusterRuntime::Start(ClusterRuntimeOptions options,
                                                              MvccStore* store,
                                                              const Store* durable) {
  // Moved into the groups, not kept (options_ is const).
  std::map<cluster::ShardId, std::string> initial_states = std::move(options.shard_initial_states);
  std::unique_ptr<ClusterRuntime> runtime(new ClusterRuntime(std::move(options)));
  runtime->durable_ = durable;
  const ClusterRuntimeOptions& o = runtime->options_;
  // Timestamps continue above everything the store holds.
  const Timestamp issued = store->max_timestamp().value_or(Timestamp());
  cluster::MemberOptions member_options = o.member;
  if (member_options.replication_factor > 1) {
    if (Status s = runtime->StartReplicatedShards(&member_options, std::move(initial_states));
        !s.ok()) {
      return s;
    }
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
  runtime->loop_ = std::thread([raw = runtime.get()] {
    NameThisThread("strata-member");
    raw->Loop();
  });
  return runtime;
}

Status ClusterRuntime::StartReplicatedShards(
    cluster::MemberOptions* member, std::map<cluster::ShardId, std::string> initial_states) {
  const ClusterRuntimeOptions& o = options_;
  cluster::ShardGroupsOptions groups;
  groups.self = o.self;
  groups.node_ids = o.node_ids;
  groups.shard_count = member->shard_count;
  groups.replication_factor = member->replication_factor;
  groups.raft_dir = o.raft_dir;
  groups.initial_states = std::move(initial_states);
  groups.tick = o.raft_tick;
  groups.election_ticks = o.election_ticks;
  groups.snapshot_count = o.snapshot_count;
  groups.proposal_timeout = member->rpc_timeout;
  groups.shard_server = member->shard_server;
  groups.balance_interval = o.balance_interval;
  groups.log = o.log;
  groups.send_batch = [this](const std::string& to, std::string batch, uint64_t incarnation) {
    peerpb::Message message;
    message.set_raft_batch(std::move(batch));
    message.set_raft_incarnation(incarnation);
    // A drop is a lost message: Raft sends again.
    (void)network_.Send(to, std::move(message));
  };
  groups.send_refusal = [this](const std::string& to, const std::string& why) {
    peerpb::Message message;
    message.set_raft_refused(why);
    (void)network_.Send(to, std::move(message));
  };
  groups.send_report = [this](const std::string& to, std::string report) {
    peerpb::Message message;
    message.set_shard_group_report(std::move(report));
    (void)network_.Send(to, std::move(message));  // the next one a second later
  };
  // On the loop, as the groups are: the member serves what moved here.
  cluster::ServeMovedReplicasOn(&member_, &groups);
  Result<std::unique_ptr<cluster::ShardGroups>> opened =
      cluster::ShardGroups::Open(std::move(groups));
  if (!opened.ok()) return opened.status();
  shard_groups_ = std::move(*opened);
  member->shard_cores = shard_groups_->CoreFactory();
  member->replicas_here = shard_groups_->ShardsHere();
  return Status::Ok();
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
  // The links stop after the loop (nothing sends any more) and before the
  // members they call back (Post) are destroyed.
  network_.StopLinks();
}

void ClusterRuntime::SetRemovedHandler(std::function<void(const std::string& by)> on_removed) {
  network_.set_on_removed([this, on_removed = std::move(on_removed)](const std::string& by) {
    (void)Post([on_removed, by](cluster::Member&) { on_removed(by); });
  });
}

void ClusterRuntime::ConnectPeers(const std::map<std::string, std::string>& addresses) {
  for (const auto& [node, address] : addresses) {
    if (node != options_.self) network_.AddPeer(node, address);
  }
}

void ClusterRuntime::UpdateNodes(const std::vector<std::string>& by_number,
                                 const std::vector<std::string>& gone,
                                 const std::map<std::string, std::string>& addresses) {
  for (const std::string& node : gone) {
    if (node == options_.self || !member_->IsPeer(node)) continue;
    member_->LeaveNode(node);
    // Its link stays a while, and what it sends is heard: a member removed
    // while running learns it by reading the list through the others.
    departing_.insert(node);
    member_->timers().After(kGoneLinkGrace, [this, node] {
      departing_.erase(node);
      network_.RemovePeer(node);
    });
  }
  for (const auto& [node, address] : addresses) {
    if (node == options_.self || node.empty() ||
        std::find(gone.begin(), gone.end(), node) != gone.end()) {
      continue;
    }
    network_.AddPeer(node, address);  // a link there already: kept
    member_->JoinNode(node);
  }
  if (shard_groups_) shard_groups_->UpdateNodes(by_number, gone);
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
  // Not of this cluster (one removed is heard through its grace).
  if (!member.IsPeer(from) && departing_.count(from) == 0) return;
  if (message.body_case() == peerpb::Message::kRaftBatch) {
    // Not a member with replicated shards: dropped.
    if (shard_groups_)
      shard_groups_->Receive(from, message.raft_batch(), message.raft_incarnation());
    return;
  }
  if (message.body_case() == peerpb::Message::kRaftRefused) {
    // This node's disk was replaced: the others say so (once a second).
    if (shard_groups_) shard_groups_->Refused(message.raft_refused());
    return;
  }
  if (message.body_case() == peerpb::Message::kShardGroupReport) {
    if (shard_groups_) shard_groups_->ReceiveReport(from, message.shard_group_report());
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
      if (shard_groups_) until = std::min(until, next_tick);
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
    if (shard_groups_ && Clock::now() >= next_tick) {
      shard_groups_->Tick(Clock::now());
      next_tick = std::max(next_tick + options_.raft_tick, Clock::now());
    }
    if (shard_groups_) shard_groups_->Run();
    ReleaseDurable();
    last_timestamp_ = member_->LastTimestamp().value();
  }
}

}  // namespace strata::server
