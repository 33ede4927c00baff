#include "server/replicated_front.h"

#include <algorithm>
#include <future>
#include <mutex>
#include <utility>

#include "base/thread_name.h"
#include "replication/member_id.h"
#include "replication/raft_wire.h"
#include "server/etcd_ids.h"
#include "server/not_served.h"
#include "server/replicated_auth.h"
#include "service/kv_replica.h"
#include "service/lease_rules.h"
#include "service/replica_leases.h"

namespace strata::server {

using replication::RaftHost;
using service::ErrorCode;
using service::KvReplica;
using service::Reply;
using service::ServiceError;

namespace {

// The one Raft group every member belongs to.
constexpr raft::GroupId kGroup = 1;

ServiceError UnreadAnswer() {
  return {ErrorCode::kInternal, "strata: an answer of the leader this member cannot read"};
}

ServiceError NoLeader() { return {ErrorCode::kUnavailable, "etcdserver: no leader"}; }
ServiceError TimedOut() { return {ErrorCode::kUnavailable, "etcdserver: request timed out"}; }

// What a proposal's error means to an etcd client.
ServiceError ToServiceError(const Status& status) {
  const std::string& m = status.message();
  if (status.code() == StatusCode::kIoError) {
    return service::etcd_errors::StorageFailed(m);
  }
  if (m.find("not the leader") != std::string::npos) return NoLeader();
  if (m.find("replaced the proposal") != std::string::npos ||
      m.find("leader changed") != std::string::npos) {
    return {ErrorCode::kUnavailable, "etcdserver: leader changed"};
  }
  if (m.find("too many requests") != std::string::npos) {
    return {ErrorCode::kResourceExhausted, "etcdserver: too many requests"};
  }
  if (m.find("cannot change its members now") != std::string::npos) {
    return {ErrorCode::kUnavailable,
            "strata: the members cannot change now (a change is under way, the leader is new, or "
            "it would leave one voter); try again"};
  }
  if (status.code() == StatusCode::kInvalidArgument) return {ErrorCode::kInvalidArgument, m};
  return TimedOut();
}

raft::NodeId MemberIdOf(const std::string& peer_url, const std::string& token) {
  return EtcdMemberId({peer_url}, token);
}

// This member's id: from its own entry of the member list (0: none).
raft::NodeId SelfIdOf(const ReplicatedFrontOptions& o) {
  for (const auto& m : o.members) {
    if (m.name == o.self) return MemberIdOf(m.peer_url, o.token);
  }
  return raft::kNobody;
}

// Serializable reads a member keeps waiting for a revision, at most.
constexpr size_t kMaxRevisionWaiters = 10'000;

// How long after the last refusal a member reports itself refused: the
// others tell it at most once a second while it keeps trying.
constexpr auto kRefusalShown = std::chrono::seconds(5);

}  // namespace

// The replica as the Raft host applies it; reads from other threads hold
// the front's shared lock, a restore the exclusive one.
class ReplicatedFront::ReplicaState final : public replication::ReplicatedState {
 public:
  ReplicaState(const service::KvWriteCodec* codec, size_t max_txn_ops, service::WatchHub* hub,
               std::shared_mutex* mu, std::atomic<int64_t>* revision,
               std::atomic<int64_t>* compacted)
      : replica(codec, max_txn_ops, hub), mu_(mu), revision_(revision), compacted_(compacted) {
    Published();
  }

  Status Restore(std::string_view snapshot) override {
    std::unique_lock lock(*mu_);
    Status restored = replica.Restore(snapshot);
    Published();
    return restored;
  }
  std::string Apply(raft::Index, std::string_view command) override {
    std::string result = replica.Apply(command);
    Published();
    return result;
  }
  std::string Save() const override { return replica.Save(); }
  std::function<std::string()> SaveLater() override { return replica.SaveLater(); }
  void SaveFinished() override { replica.SaveFinished(); }

  KvReplica replica;
  std::atomic<size_t> live_leases{0};  // as last applied, for other threads

 private:
  // What other threads read of the replica without its lock.
  void Published() {
    revision_->store(replica.revision());
    compacted_->store(replica.kv().compact_revision());
    live_leases.store(replica.leases().size());
  }

  std::shared_mutex* mu_;
  std::atomic<int64_t>* revision_;
  std::atomic<int64_t>* compacted_;
};

ReplicatedFront::ReplicatedFront(ReplicatedFrontOptions options)
    : options_(std::move(options)),
      self_id_(SelfIdOf(options_)),
      network_(
          EtcdIdText(self_id_),
          [this] {
            PeerNetworkOptions links;  // the defaults, but for TLS and faults
            links.credentials = options_.peer_channel_credentials;
            links.faults = options_.peer_faults;
            return links;
          }(),
          [this](const std::string& from, peerpb::Message message) {
            Receive(from, std::move(message));
          }) {}

Result<std::unique_ptr<ReplicatedFront>> ReplicatedFront::Start(ReplicatedFrontOptions options) {
  std::unique_ptr<ReplicatedFront> front(new ReplicatedFront(std::move(options)));
  const ReplicatedFrontOptions& o = front->options_;
  // Members are numbered by their etcd member ids, which every member
  // (and one added later) derives alike from the peer URLs.
  std::vector<raft::NodeId> voters;
  {
    MutexLock lock(front->book_mu_);
    for (const auto& m : o.members) {
      const raft::NodeId id = MemberIdOf(m.peer_url, o.token);
      for (const auto& [other, known] : front->book_) {
        if (known.name == m.name) {
          return Status::InvalidArgument("--initial-cluster names member " + m.name + " twice");
        }
        if (other == id) {
          return Status::InvalidArgument("--initial-cluster gives members " + known.name + " and " +
                                         m.name + " one peer URL");
        }
      }
      front->book_[id] = Known{m.name, m.peer_url, {}};
      voters.push_back(id);
    }
  }
  if (front->self_id_ == raft::kNobody) {
    return Status::InvalidArgument("--initial-cluster does not name this member (--name " + o.self +
                                   ")");
  }
  replication::RaftHostOptions host;
  host.raft.election_ticks = o.election_ticks;
  host.raft.random_seed = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  host.log.sync = o.sync;
  host.compact_after = o.snapshot_count;
  // A large key space takes seconds to save: off the loop, which must keep
  // Raft's time.
  host.save_in_background = true;
  host.max_command_bytes = o.max_request_bytes + 1024;
  if (o.request_timeout.count() == 0) {
    front->options_.request_timeout =
        std::chrono::milliseconds(5000) + 2 * o.election_ticks * o.tick;
  }
  host.timeout_ticks = static_cast<uint64_t>(o.request_timeout / o.tick) + 1;
  ReplicatedFront* raw = front.get();
  // Over an empty engine until the replica rebases it on its own.
  front->hub_ = std::make_unique<service::WatchHub>(
      std::make_shared<const MvccStore>(), [raw] { return raw->compacted_.load(); },
      service::KvService::kFirstRevision, o.watches);
  auto opened = RaftHost::Open(
      front->self_id_, o.raft_dir, host,
      [raw](raft::GroupId) {
        auto state =
            std::make_unique<ReplicaState>(&raw->codec_, raw->options_.max_txn_ops, raw->hub_.get(),
                                           &raw->replica_mu_, &raw->revision_, &raw->compacted_);
        state->replica.set_lease_observer(
            [raw](int64_t id, int64_t ttl) { raw->LeaseChanged(id, ttl); });
        raw->replica_ = state.get();
        // Users and roles around the key space, the registry of members
        // around both.
        auto authed = std::make_unique<AuthRecordState>(std::move(state));
        authed->set_observers(
            [raw](const std::string& encoded) {
              if (raw->options_.auth_adopted) raw->options_.auth_adopted(encoded);
            },
            [raw](const std::string& token, const std::string& user) {
              if (raw->options_.token_adopted) raw->options_.token_adopted(token, user);
            });
        // The registry reads its commands by their first byte, the auth
        // record its own; neither may take the other's.
        using Registry = replication::RegisteredState;
        static_assert(AuthRecordState::kSaveByte != Registry::kRegisterByte &&
                      AuthRecordState::kSaveByte != Registry::kAttributesByte &&
                      AuthRecordState::kSaveByte != Registry::kPlacementByte &&
                      AuthRecordState::kTokenByte != Registry::kRegisterByte &&
                      AuthRecordState::kTokenByte != Registry::kAttributesByte &&
                      AuthRecordState::kTokenByte != Registry::kPlacementByte);
        auto registered = std::make_unique<Registry>(std::move(authed));
        registered->set_observer([raw](raft::NodeId id, const replication::MemberRecord* record) {
          raw->Learn(id, record);
        });
        raw->registry_ = registered.get();
        return registered;
      },
      [raw](raft::NodeBatch batch) {
        peerpb::Message message;
        message.set_raft_batch(replication::EncodeNodeBatch(batch));
        message.set_raft_incarnation(raw->incarnation_);
        // To a member whose address is not known yet, dropped (Raft resends).
        raw->network_.Send(EtcdIdText(batch.to), std::move(message));
      });
  if (!opened.ok()) return opened.status();
  front->host_ = std::move(*opened);
  if (Status kept = replication::KeepMemberId(o.raft_dir, front->self_id_); !kept.ok()) {
    return kept;
  }
  Result<uint64_t> incarnation = replication::KeepIncarnation(o.raft_dir);
  if (!incarnation.ok()) return incarnation.status();
  front->incarnation_ = *incarnation;
  if (front->host_->raft().group(kGroup) == nullptr) {
    // A member added to a running group starts knowing no members: the
    // leader's appends (or snapshot) bring them.
    if (o.join_existing) {
      voters.clear();
      if (o.log) {
        o.log("joining a running cluster as member " + EtcdIdText(front->self_id_) +
              ": waiting for its leader (the member must have been added first: etcdctl member "
              "add " +
              o.self + " --peer-urls=<this member's peer URL>)");
      }
    }
    if (Status created = front->host_->CreateGroup(
            kGroup, voters, o.join_existing ? std::string() : o.initial_state);
        !created.ok()) {
      return created;
    }
  }
  std::string().swap(front->options_.initial_state);  // in the Raft log now

  // A leader's stream into this member ends when its process dies: its
  // followers campaign without waiting out its lease (Raft's
  // LeaderUnreachable; a leader still alive is heard again and stays).
  front->network_.set_on_stream_end([raw](const std::string& from) {
    const raft::NodeId id = ParseEtcdId(from);
    raw->Post(
        [raw, id] {
          raft::Raft& raft = *raw->host_->raft().group(kGroup);
          if (id == raft::kNobody || raft.leader() != id ||
              raft.role() != raft::RaftRole::kFollower) {
            return;
          }
          raft.LeaderUnreachable(id);
          if (raw->options_.log) {
            raw->options_.log("the leader " + raw->NameOf(id) +
                              "'s link to this member broke: campaigning unless it is heard from "
                              "again");
          }
        },
        /*from_peer=*/true);
  });
  grpc::ServerBuilder builder;
  builder.AddListeningPort(
      o.listen_peer,
      o.peer_server_credentials ? o.peer_server_credentials : grpc::InsecureServerCredentials(),
      &front->peer_port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>((8 << 20) + o.max_request_bytes));
  builder.RegisterService(front->network_.service());
  front->peer_server_ = builder.BuildAndStart();
  if (!front->peer_server_ || front->peer_port_ == 0) {
    return Status::Unavailable("cannot listen on the peer URL " + o.listen_peer +
                               " (is the port in use?)");
  }
  for (const auto& m : o.members) {
    if (m.name != o.self)
      front->network_.AddPeer(EtcdIdText(MemberIdOf(m.peer_url, o.token)), m.host_port);
  }
  front->loop_ = std::thread([raw] {
    NameThisThread("strata-member");
    raw->Loop();
  });
  return front;
}

ReplicatedFront::~ReplicatedFront() {
  // Peers' streams never end on their own: they are cut after a second.
  if (peer_server_) {
    peer_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    peer_server_->Wait();
  }
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.NotifyAll();
  if (loop_.joinable()) loop_.join();
}

bool ReplicatedFront::Post(std::function<void()> task, bool from_peer) {
  {
    MutexLock lock(mu_);
    if (stopping_) return false;
    if (from_peer && tasks_.size() >= options_.max_queued) {
      ++dropped_from_peers_;
      return false;
    }
    tasks_.push_back(std::move(task));
  }
  wake_.NotifyOne();
  return true;
}

void ReplicatedFront::Loop() {
  Clock::time_point next_tick = Clock::now() + options_.tick;
  for (;;) {
    std::deque<std::function<void()>> batch;
    {
      UniqueLock lock(mu_);
      wake_.WaitUntil(lock, next_tick,
                      [&]() STRATA_REQUIRES(mu_) { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      batch.swap(tasks_);
    }
    for (auto& task : batch) task();
    const bool tick = Clock::now() >= next_tick;
    if (tick) {
      host_->Tick();
      ExpireForwarded();
      next_tick = std::max(next_tick + options_.tick, Clock::now());
    }
    // Before the round sends anything: a member that just won its
    // election says it leads before its first append tells the others (so
    // the old leader's answer to MoveLeader never precedes it).
    NoteLeader();
    // A failed log stops the host for good; its health answers every
    // later call.
    const Status ran = host_->Run();
    NoteLeader();
    TendLeadership();
    Publish();
    ServeRevisionWaiters(/*expire=*/tick);
    MutexLock lock(mu_);
    host_stats_ = host_->stats();
    if (!ran.ok()) host_failure_ = "the Raft log failed: " + ran.message();
  }
}

void ReplicatedFront::NoteLeader() {
  const raft::Raft& raft = *host_->raft().group(kGroup);
  if (raft.leader() != leader_.load() && options_.log) {
    options_.log(raft.leader() == raft::kNobody
                     ? "no leader known (term " + std::to_string(raft.term()) + ")"
                     : "the leader is " + NameOf(raft.leader()) + " (term " +
                           std::to_string(raft.term()) + ")");
  }
  // Writes forwarded to a leader that is no longer one hear so now, not
  // at the next tick: after a failover their clients retry at once.
  const bool new_leader = raft.leader() != leader_.load() && raft.leader() != raft::kNobody;
  leader_ = raft.leader();
  term_ = raft.term();
  if (new_leader) ExpireForwarded();
  learner_ = raft.learners().count(self_id_) != 0;
}

void ReplicatedFront::SubmitAnywhere(std::string command, bool leader_query, Applied done) {
  auto shared = std::make_shared<Applied>(std::move(done));
  if (!Post([this, command = std::move(command), leader_query, shared]() mutable {
        Submit(std::move(command), leader_query, std::move(*shared));
      })) {
    (*shared)(Status::Unavailable("the server is stopping"));
  }
}

void ReplicatedFront::Propose(std::string command, Applied done) {
  Submit(std::move(command), /*leader_query=*/false, std::move(done));
}

void ReplicatedFront::Submit(std::string command, bool leader_query, Applied done) {
  const raft::Raft& raft = *host_->raft().group(kGroup);
  if (raft.role() == raft::RaftRole::kLeader || raft.leader() == raft::kNobody ||
      raft.leader() == self_id_) {
    // Not leading and no leader known: refused at once.
    if (leader_query) return AnswerLeaderQuery(std::move(command), std::move(done));
    host_->Propose(kGroup, std::move(command), std::move(done));
    return;
  }
  const uint64_t id = next_msg_id_++;
  peerpb::Message message;
  message.set_msg_id(id);
  message.mutable_raft_propose()->set_group(kGroup);
  message.mutable_raft_propose()->set_command(std::move(command));
  message.mutable_raft_propose()->set_leader_query(leader_query);
  if (!network_.Send(EtcdIdText(raft.leader()), std::move(message))) {
    done(Status::Unavailable("not the leader; the link to the leader is full"));
    return;
  }
  ++forwarded_count_;
  forwarded_[id] =
      Forwarded{std::move(done), Clock::now() + options_.request_timeout, raft.leader()};
}

void ReplicatedFront::Receive(const std::string& from, peerpb::Message message) {
  switch (message.body_case()) {
    case peerpb::Message::kRaftBatch: {
      raft::NodeBatch batch;
      if (!replication::DecodeNodeBatch(message.raft_batch(), self_id_, &batch).ok() ||
          EtcdIdText(batch.from) != from) {
        ++malformed_;
        return;
      }
      auto shared = std::make_shared<raft::NodeBatch>(std::move(batch));
      const uint64_t incarnation = message.raft_incarnation();
      Post(
          [this, shared, incarnation] {
            if (Admit(shared->from, incarnation)) host_->Receive(*shared);
          },
          /*from_peer=*/true);
      return;
    }
    case peerpb::Message::kRaftPropose: {
      const uint64_t id = message.msg_id();
      const bool query = message.raft_propose().leader_query();
      auto command = std::make_shared<std::string>(
          std::move(*message.mutable_raft_propose()->mutable_command()));
      Post([this, from, id, command,
            query] { ServeForwarded(from, id, std::move(*command), query); },
           /*from_peer=*/true);
      return;
    }
    case peerpb::Message::kRaftProposeReply: {
      const uint64_t id = message.in_reply_to();
      const peerpb::RaftProposeReply& reply = message.raft_propose_reply();
      Result<std::string> result =
          reply.code() == 0 ? Result<std::string>(reply.result())
                            : Result<std::string>(Status(
                                  static_cast<StatusCode>(std::min<uint32_t>(
                                      reply.code(), static_cast<uint32_t>(StatusCode::kIoError))),
                                  reply.message()));
      auto shared = std::make_shared<Result<std::string>>(std::move(result));
      Post([this, id, shared] { CompleteForwarded(id, std::move(*shared)); });
      return;
    }
    case peerpb::Message::kRaftRefused: {
      MutexLock lock(mu_);
      const auto now = Clock::now();
      if ((replaced_.empty() || now - replaced_at_ >= kRefusalShown) && options_.log) {
        options_.log(message.raft_refused());
      }
      replaced_ = message.raft_refused();
      replaced_at_ = now;
      return;
    }
    default:
      ++malformed_;  // a sharded cluster's message: not a member of this one
  }
}

void ReplicatedFront::ServeForwarded(const std::string& from, uint64_t msg_id, std::string command,
                                     bool leader_query) {
  ++served_count_;
  Applied reply_to = [this, from, msg_id](Result<std::string> result) {
    peerpb::Message reply;
    reply.set_in_reply_to(msg_id);
    peerpb::RaftProposeReply* body = reply.mutable_raft_propose_reply();
    if (result.ok()) {
      body->set_result(std::move(*result));
    } else {
      body->set_code(static_cast<uint32_t>(result.status().code()));
      body->set_message(result.status().message());
    }
    network_.Send(from, std::move(reply));
  };
  if (leader_query) return AnswerLeaderQuery(std::move(command), std::move(reply_to));
  host_->Propose(kGroup, std::move(command), std::move(reply_to));
}

void ReplicatedFront::AnswerLeaderQuery(std::string bytes, Applied done) {
  if (!bytes.empty() && bytes.front() == kMemberChangeByte) {
    const std::optional<MemberChange> change = DecodeMemberChange(bytes);
    if (!change) {
      return done(Status::InvalidArgument("strata: a membership change this member cannot read"));
    }
    return ProposeMemberChange(*change, std::move(done));
  }
  const std::optional<service::LeaseQuery> query = service::DecodeLeaseQuery(bytes);
  if (!query) {
    return done(Status::InvalidArgument("strata: a leader query this member cannot read"));
  }
  // Once everything committed is applied here: a lease granted under the
  // last leader is known, one revoked is gone. The read index also
  // confirms this member still leads.
  host_->Read(kGroup, [this, q = *query, done = std::move(done)](Status status) {
    if (!status.ok()) return done(status);
    if (!leading_) return done(Status::Unavailable("not the leader"));
    const service::ReplicaLeases& leases = replica_->replica.leases();
    service::LeaseTimeToLiveResult answer;
    answer.id = q.id;
    const std::optional<int64_t> ttl = leases.GrantedTtl(q.id);
    if (ttl) {
      answer.granted_ttl = *ttl;
      if (q.kind == service::LeaseQuery::Kind::kRenewal) {
        SetLeaseDeadline(q.id, Clock::now() + std::chrono::seconds(*ttl));
        answer.ttl = *ttl;
      } else {
        auto it = lease_deadlines_.find(q.id);
        answer.ttl =
            it == lease_deadlines_.end()
                ? 0  // its revocation is under way
                : std::max<int64_t>(
                      0, std::chrono::duration_cast<std::chrono::seconds>(it->second - Clock::now())
                             .count());
        if (q.keys) answer.keys = leases.Keys(q.id);
      }
    }
    done(service::EncodeLeaseAnswer(answer));
  });
}

void ReplicatedFront::SetLeaseDeadline(int64_t id, Clock::time_point deadline) {
  auto it = lease_deadlines_.find(id);
  if (it != lease_deadlines_.end()) {
    lease_queue_.erase({it->second, id});
    it->second = deadline;
  } else {
    lease_deadlines_.emplace(id, deadline);
  }
  lease_queue_.insert({deadline, id});
}

void ReplicatedFront::LeaseChanged(int64_t id, int64_t ttl) {
  if (!leading_) return;  // deadlines are the leader's alone
  if (ttl > 0) return SetLeaseDeadline(id, Clock::now() + std::chrono::seconds(ttl));
  auto it = lease_deadlines_.find(id);
  if (it == lease_deadlines_.end()) return;
  lease_queue_.erase({it->second, id});
  lease_deadlines_.erase(it);
}

bool ReplicatedFront::Admit(raft::NodeId from, uint64_t incarnation) {
  if (incarnation == 0) {
    ++malformed_;  // every member's batches carry one (from a strata without them?)
    return false;
  }
  const std::optional<uint64_t> known = registry_->incarnation(from);
  const bool removed = !IsMember(from);
  if (removed || (known && *known != incarnation)) {
    // A member not in the group that was never in it is a process started
    // before its MemberAdd: it is let be until it is added.
    if (removed && !registry_->removed(from)) return false;
    ++refused_replaced_;
    auto& told = told_replaced_[from];
    if (Clock::now() - told >= std::chrono::seconds(1)) {
      told = Clock::now();
      const std::string why =
          removed ? "member " + NameOf(from) +
                        " was removed from the cluster (etcdctl member remove), so the other "
                        "members ignore it; to come back it must be added again (etcdctl member "
                        "add) and started with an empty data directory and "
                        "--initial-cluster-state existing (docs/REPLICATION.md)"
                  : "member " + NameOf(from) +
                        " started with a Raft log the cluster does not know (its data directory "
                        "was replaced or wiped: the cluster holds another incarnation of it), so "
                        "the other members ignore it; a member that lost its disk must be removed "
                        "and added again as a new member (docs/REPLICATION.md)";
      if (options_.log) options_.log(why);
      peerpb::Message message;
      message.set_raft_refused(why);
      network_.Send(EtcdIdText(from), std::move(message));
    }
    return false;
  }
  if (!known) Register(from, incarnation);
  return true;
}

bool ReplicatedFront::IsMember(raft::NodeId from) const {
  const raft::Raft& raft = *host_->raft().group(kGroup);
  const auto in = [&](raft::NodeId id) {
    return raft.voters().count(id) != 0 || raft.learners().count(id) != 0;
  };
  return !in(self_id_) || in(from);
}

void ReplicatedFront::Learn(raft::NodeId id, const replication::MemberRecord* record) {
  if (id == self_id_) {
    const bool removed = registry_->removed(id);
    if (removed && !removed_.load() && options_.log) {
      options_.log(
          "this member was removed from the cluster (etcdctl member remove): it serves "
          "no more; to come back it must be added again and started with an empty data "
          "directory and --initial-cluster-state existing");
    }
    removed_ = removed;
  }
  if (record == nullptr) return;  // the address stays: a removed member is told so over it
  std::optional<std::string> host_port;
  {
    MutexLock lock(book_mu_);
    Known& known = book_[id];
    if (!record->peer_url.empty()) known.peer_url = record->peer_url;
    if (!record->name.empty()) {
      known.name = record->name;
      known.client_urls = record->client_urls;
    }
    host_port = PeerHostPort(known.peer_url);
  }
  if (id != self_id_ && host_port) network_.AddPeer(EtcdIdText(id), *host_port);
}

std::string ReplicatedFront::NameOf(raft::NodeId id) const {
  MutexLock lock(book_mu_);
  auto it = book_.find(id);
  return it != book_.end() && !it->second.name.empty() ? it->second.name : EtcdIdText(id);
}

void ReplicatedFront::Publish() {
  if (publishing_ || leader_.load() == raft::kNobody || Clock::now() < next_publish_) return;
  const auto& records = registry_->members();
  auto it = records.find(self_id_);
  if (it != records.end() && it->second.name == options_.self &&
      it->second.client_urls == options_.client_urls) {
    return;
  }
  if (registry_->removed(self_id_)) return;
  publishing_ = true;
  next_publish_ = Clock::now() + std::chrono::seconds(1);
  Submit(replication::RegisteredState::AttributesCommand(self_id_, options_.self,
                                                         options_.client_urls),
         /*leader_query=*/false, [this](Result<std::string>) { publishing_ = false; });
}

void ReplicatedFront::ProposeMemberChange(const MemberChange& change, Applied done) {
  const raft::Raft& raft = *host_->raft().group(kGroup);
  if (raft.role() != raft::RaftRole::kLeader) return done(Status::Unavailable("not the leader"));
  Reply<raft::ConfChange> planned = PlanMemberChange(change, raft);
  if (!planned.ok()) return done(EncodeMemberChangeError(planned.error()));
  if (!change.peer_url.empty()) {
    // The leader sends to the new member as soon as the change is in its
    // log, before it applies it: its address is needed now.
    replication::MemberRecord address;
    address.peer_url = change.peer_url;
    Learn(change.id, &address);
  }
  // Answered with the members once applied here; should this member have
  // removed itself, it still answers then (it steps down after).
  host_->ProposeConfChange(kGroup, planned.value(), [this, done = std::move(done)](Status status) {
    if (!status.ok()) return done(status);
    done(EncodeMemberChangeDone(ListMembers()));
  });
}

std::vector<MemberInfo> ReplicatedFront::ListMembers() const {
  const raft::Raft& raft = *host_->raft().group(kGroup);
  std::vector<MemberInfo> members;
  MutexLock lock(book_mu_);
  for (const auto* ids : {&raft.voters(), &raft.learners()}) {
    for (raft::NodeId id : *ids) {
      MemberInfo info;
      info.id = id;
      info.learner = ids == &raft.learners();
      if (auto it = book_.find(id); it != book_.end()) {
        info.name = it->second.name;
        info.peer_url = it->second.peer_url;
        info.client_urls = it->second.client_urls;
      }
      if (id == self_id_) info.client_urls = options_.client_urls;
      members.push_back(std::move(info));
    }
  }
  return members;
}

void ReplicatedFront::Members(MembersDone done) {
  auto shared = std::make_shared<MembersDone>(std::move(done));
  if (!Post([this, shared] { (*shared)(ListMembers()); })) {
    (*shared)(ServiceError{ErrorCode::kUnavailable, "the server is stopping"});
  }
}

void ReplicatedFront::ChangeMembers(MemberChange change, MembersDone done) {
  if (change.kind == MemberChange::Kind::kAdd || change.kind == MemberChange::Kind::kAddLearner) {
    if (!PeerHostPort(change.peer_url)) {
      return done(
          ServiceError{ErrorCode::kInvalidArgument, "etcdserver: given member URLs are invalid"});
    }
    change.id = MemberIdOf(change.peer_url, options_.token);
  } else if (change.id == 0) {
    return done(ServiceError{ErrorCode::kNotFound, "etcdserver: member not found"});
  }
  SubmitAnywhere(EncodeMemberChange(change), /*leader_query=*/true,
                 [done = std::move(done)](Result<std::string> answer) {
                   if (!answer.ok()) return done(ToServiceError(answer.status()));
                   done(DecodeMemberChangeAnswer(*answer));
                 });
}

void ReplicatedFront::Register(raft::NodeId node, uint64_t incarnation) {
  if (!leading_ || !registering_.insert(node).second) return;
  host_->Propose(kGroup, replication::RegisteredState::RegisterCommand(node, incarnation),
                 [this, node](Result<std::string>) { registering_.erase(node); });
}

void ReplicatedFront::MoveLeader(uint64_t target,
                                 std::function<void(std::optional<ServiceError>)> done) {
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  if (!Post([this, target, shared] {
        raft::Raft& raft = *host_->raft().group(kGroup);
        if (raft.role() != raft::RaftRole::kLeader) {
          return (*shared)(ServiceError{ErrorCode::kFailedPrecondition, "etcdserver: not leader"});
        }
        if (target == self_id_) return (*shared)(std::nullopt);
        if (handover_ || !raft.TransferLeadership(target)) {
          return (*shared)(
              ServiceError{ErrorCode::kFailedPrecondition, "etcdserver: bad leader transferee"});
        }
        // Raft gives up after an election timeout; the answer waits a
        // little longer for the new leader to be known here.
        handover_ = Handover{target, Clock::now() + 2 * options_.election_ticks * options_.tick,
                             std::move(*shared)};
      })) {
    (*shared)(ServiceError{ErrorCode::kUnavailable, "the server is stopping"});
  }
}

void ReplicatedFront::TendLeadership() {
  if (handover_ && (leader_.load() == handover_->target || Clock::now() >= handover_->deadline)) {
    const bool moved = leader_.load() == handover_->target;
    auto done = std::move(handover_->done);
    handover_.reset();
    if (moved) {
      done(std::nullopt);
    } else {
      done(ServiceError{ErrorCode::kUnavailable,
                        "etcdserver: request timed out, leader transfer took too long"});
    }
  }
  const bool leading = host_->raft().group(kGroup)->role() == raft::RaftRole::kLeader;
  if (!leading) {
    leading_ = false;
    lease_deadlines_.clear();
    lease_queue_.clear();
    revoking_.clear();
    return;
  }
  const auto now = Clock::now();
  if (!leading_) {
    // Promoted: every lease gets its full TTL again (etcd's lessor does
    // the same), since the last leader's deadlines went with its place.
    leading_ = true;
    if (!registry_->incarnation(self_id_)) Register(self_id_, incarnation_);
    for (const auto& [id, ttl] : replica_->replica.leases().Granted()) {
      SetLeaseDeadline(id, now + std::chrono::seconds(ttl));
    }
  }
  while (!lease_queue_.empty() && lease_queue_.begin()->first <= now) {
    const int64_t id = lease_queue_.begin()->second;
    lease_queue_.erase(lease_queue_.begin());
    lease_deadlines_.erase(id);
    if (!revoking_.insert(id).second) continue;
    // Applying the revocation ends the lease (LeaseChanged). If it fails
    // (this member lost its place, or the log refused it), the lease is
    // looked at again a second later, if this member still leads.
    host_->Propose(kGroup, KvReplica::RevokeCommand(id), [this, id](Result<std::string> result) {
      revoking_.erase(id);
      if (result.ok() || !leading_ || !replica_->replica.leases().Exists(id)) return;
      SetLeaseDeadline(id, Clock::now() + std::chrono::seconds(1));
    });
  }
}

Status ReplicatedFront::SaveAuth(const std::string& encoded, uint64_t replaces, std::string* newer,
                                 std::chrono::milliseconds wait) {
  Result<std::string> applied = AwaitApplied(AuthRecordState::SaveCommand(encoded, replaces), wait);
  if (!applied.ok()) {
    // In etcd's words ("etcdserver: no leader", ...), as a write's.
    const service::ServiceError e = ToServiceError(applied.status());
    return e.code == ErrorCode::kUnavailable ? Status::Unavailable(e.message)
                                             : Status(applied.status().code(), e.message);
  }
  return AuthRecordState::DecodeSaveReply(*applied, newer);
}

size_t ReplicatedFront::TellAuthToken(const std::string& token, const std::string& user,
                                      std::chrono::milliseconds wait) {
  // Applied means every member that applies it knows the token; a member
  // behind learns it when it catches up.
  return AwaitApplied(AuthRecordState::TokenCommand(token, user), wait).ok() ? 1 : 0;
}

Result<std::string> ReplicatedFront::AwaitApplied(std::string command,
                                                  std::chrono::milliseconds wait) {
  auto answer = std::make_shared<std::promise<Result<std::string>>>();
  std::future<Result<std::string>> result = answer->get_future();
  SubmitAnywhere(std::move(command), /*leader_query=*/false,
                 [answer](Result<std::string> r) { answer->set_value(std::move(r)); });
  if (result.wait_for(wait) != std::future_status::ready) return NoAnswerWithin(wait);
  return result.get();
}

void ReplicatedFront::CompleteForwarded(uint64_t msg_id, Result<std::string> result) {
  auto it = forwarded_.find(msg_id);
  if (it == forwarded_.end()) return;  // timed out already
  Applied done = std::move(it->second.done);
  forwarded_.erase(it);
  done(std::move(result));
}

void ReplicatedFront::ExpireForwarded() {
  const auto now = Clock::now();
  const raft::NodeId leader = host_->raft().group(kGroup)->leader();
  for (auto it = forwarded_.begin(); it != forwarded_.end();) {
    // Handed to a leader that is no longer one: it may have died with it,
    // so the client hears now rather than at the deadline.
    const bool deposed = leader != raft::kNobody && leader != it->second.leader;
    if (it->second.deadline > now && !deposed) {
      ++it;
      continue;
    }
    Applied done = std::move(it->second.done);
    it = forwarded_.erase(it);
    done(Status::Unavailable(deposed ? "the leader changed; the proposal may still be applied"
                                     : "no answer from the leader; the proposal may still be "
                                       "applied"));
  }
}

template <typename T>
void ReplicatedFront::Write(service::KvWrite write, Done<T> done) {
  SubmitAnywhere(
      KvReplica::WriteCommand(codec_, write), /*leader_query=*/false,
      [this, done = std::move(done)](Result<std::string> result) {
        if (!result.ok()) return done(ToServiceError(result.status()));
        Reply<service::KvWriteReply> reply = codec_.DecodeReply(*result);
        if (!reply.ok()) return done(reply.error());
        if (!std::holds_alternative<T>(reply.value())) {
          return done(ServiceError{ErrorCode::kInternal, "strata: a reply of another kind"});
        }
        done(std::get<T>(std::move(reply.value())));
      });
}

void ReplicatedFront::Put(service::PutRequest request, Done<service::PutResponse> done) {
  Write<service::PutResponse>(std::move(request), std::move(done));
}

void ReplicatedFront::DeleteRange(service::DeleteRangeRequest request,
                                  Done<service::DeleteRangeResponse> done) {
  Write<service::DeleteRangeResponse>(std::move(request), std::move(done));
}

void ReplicatedFront::Txn(service::TxnRequest request, Done<service::TxnResponse> done) {
  Write<service::TxnResponse>(std::move(request), std::move(done));
}

void ReplicatedFront::Compact(service::CompactionRequest request,
                              Done<service::CompactionResponse> done) {
  SubmitAnywhere(KvReplica::CompactCommand(request.revision), /*leader_query=*/false,
                 [done = std::move(done)](Result<std::string> result) {
                   if (!result.ok()) return done(ToServiceError(result.status()));
                   done(KvReplica::DecodeCompactReply(*result));
                 });
}

void ReplicatedFront::Range(service::RangeRequest request, Done<service::RangeResponse> done) {
  const auto read = [this, request, done]() {
    std::shared_lock lock(replica_mu_);
    done(replica_->replica.kv().Range(request));
  };
  if (request.serializable) {
    if (request.min_revision <= revision_.load()) return read();
    // Not applied here yet: once it is (or a timeout, which etcd's clients
    // take as a cue to try another member).
    auto shared = std::make_shared<std::function<void()>>(read);
    const int64_t wanted = request.min_revision;
    if (!Post([this, shared, done, wanted] {
          if (revision_waiters_.size() >= kMaxRevisionWaiters) {
            return done(
                ServiceError{ErrorCode::kResourceExhausted, "etcdserver: too many requests"});
          }
          revision_waiters_.emplace(
              wanted,
              RevisionWaiter{Clock::now() + options_.request_timeout,
                             [shared, done, wanted](bool reached) {
                               if (reached) return (*shared)();
                               done(ServiceError{ErrorCode::kUnavailable,
                                                 "strata: this member has not applied revision " +
                                                     std::to_string(wanted) +
                                                     " (strata-min-revision) in time: it is behind "
                                                     "or cut off; read from another member"});
                             }});
          ServeRevisionWaiters(/*expire=*/false);
        })) {
      done(ServiceError{ErrorCode::kUnavailable, "the server is stopping"});
    }
    return;
  }
  // Linearizable: once this replica has applied a read index (newer than
  // any strata-min-revision a client saw).
  auto shared = std::make_shared<std::function<void()>>(read);
  if (!Post([this, shared, done] {
        host_->Read(kGroup, [shared, done](Status status) {
          if (!status.ok()) return done(ToServiceError(status));
          (*shared)();
        });
      })) {
    done(ServiceError{ErrorCode::kUnavailable, "the server is stopping"});
  }
}

void ReplicatedFront::ServeRevisionWaiters(bool expire) {
  const int64_t applied = revision_.load();
  while (!revision_waiters_.empty() && revision_waiters_.begin()->first <= applied) {
    auto run = std::move(revision_waiters_.begin()->second.run);
    revision_waiters_.erase(revision_waiters_.begin());
    run(true);
  }
  if (!expire) return;
  const auto now = Clock::now();
  for (auto it = revision_waiters_.begin(); it != revision_waiters_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    auto run = std::move(it->second.run);
    it = revision_waiters_.erase(it);
    run(false);
  }
}

void ReplicatedFront::LeaseGrant(int64_t id, int64_t ttl, Done<service::LeaseGrantResult> done) {
  Reply<int64_t> granted = service::GrantedTtl(ttl, options_.lease_limits);
  if (!granted.ok()) return done(granted.error());
  auto shared = std::make_shared<Done<service::LeaseGrantResult>>(std::move(done));
  if (!Post([this, id, ttl = granted.value(), shared]() mutable {
        const service::ReplicaLeases& leases = replica_->replica.leases();
        if (auto full = service::RoomForGrant(leases.size(), options_.lease_limits)) {
          return (*shared)(*full);
        }
        // The id is chosen here; should another grant take it first, the
        // apply refuses this one with "lease already exists".
        if (id == 0) {
          id = service::ChooseLeaseId(&random_, [&](int64_t n) { return leases.Exists(n); });
        }
        Propose(KvReplica::GrantCommand(id, ttl), [shared](Result<std::string> result) {
          if (!result.ok()) return (*shared)(ToServiceError(result.status()));
          (*shared)(KvReplica::DecodeGrantReply(*result));
        });
      })) {
    (*shared)(ServiceError{ErrorCode::kUnavailable, "the server is stopping"});
  }
}

void ReplicatedFront::LeaseRevoke(int64_t id, Done<int64_t> done) {
  SubmitAnywhere(KvReplica::RevokeCommand(id), /*leader_query=*/false,
                 [done = std::move(done)](Result<std::string> result) {
                   if (!result.ok()) return done(ToServiceError(result.status()));
                   done(KvReplica::DecodeRevokeReply(*result));
                 });
}

void ReplicatedFront::LeaseKeepAlive(int64_t id, Done<int64_t> done) {
  SubmitAnywhere(service::EncodeLeaseQuery({service::LeaseQuery::Kind::kRenewal, id, false}),
                 /*leader_query=*/true, [id, done = std::move(done)](Result<std::string> result) {
                   if (!result.ok()) return done(ToServiceError(result.status()));
                   auto answer = service::DecodeLeaseAnswer(*result, id);
                   if (!answer) return done(UnreadAnswer());
                   done(std::max<int64_t>(0, answer->ttl));  // 0: no such lease, as etcd
                 });
}

void ReplicatedFront::LeaseTimeToLive(int64_t id, bool keys,
                                      Done<service::LeaseTimeToLiveResult> done) {
  SubmitAnywhere(service::EncodeLeaseQuery({service::LeaseQuery::Kind::kTimeToLive, id, keys}),
                 /*leader_query=*/true, [id, done = std::move(done)](Result<std::string> result) {
                   if (!result.ok()) return done(ToServiceError(result.status()));
                   auto answer = service::DecodeLeaseAnswer(*result, id);
                   if (!answer) return done(UnreadAnswer());
                   done(std::move(*answer));
                 });
}

void ReplicatedFront::LeaseLeases(Done<std::vector<int64_t>> done) {
  auto shared = std::make_shared<Done<std::vector<int64_t>>>(std::move(done));
  if (!Post([this, shared] { (*shared)(replica_->replica.leases().Ids()); })) {
    (*shared)(ServiceError{ErrorCode::kUnavailable, "the server is stopping"});
  }
}

std::shared_ptr<const MvccStore> ReplicatedFront::Engine() const {
  std::shared_lock lock(replica_mu_);
  return replica_->replica.shared_store();
}

ReplicatedFront::ReplicaFigures ReplicatedFront::Figures() const {
  std::shared_lock lock(replica_mu_);
  const service::KvReplica& replica = replica_->replica;
  ReplicaFigures figures;
  figures.store = replica.store().GetStats();
  figures.compact_revision = replica.kv().compact_revision();
  figures.horizon = static_cast<int64_t>(replica.store().compaction_horizon().value());
  figures.live_keys = replica.kv().live_keys();
  figures.live_leases = replica_->live_leases.load();
  return figures;
}

void ReplicatedFront::Snapshot(std::function<void(Reply<SnapshotSource>)> done) {
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  if (!Post([this, shared] {
        const KvReplica& replica = replica_->replica;
        (*shared)(
            SnapshotSource{replica.shared_store(), replica.leases().Granted(), replica.revision()});
      })) {
    (*shared)(ServiceError{ErrorCode::kUnavailable, "the server is stopping"});
  }
}

Reply<ReplicatedFront::Hash> ReplicatedFront::HashKV(int64_t revision) const {
  std::shared_lock lock(replica_mu_);
  const service::KvService& kv = replica_->replica.kv();
  auto hash = kv.HashKV(revision);
  if (!hash.ok()) return hash.error();
  return Hash{hash.value(), kv.current_revision(), std::max<int64_t>(0, kv.compact_revision())};
}

std::string ReplicatedFront::Unhealthy() const {
  {
    MutexLock lock(mu_);
    if (!host_failure_.empty()) return host_failure_;
    if (!replaced_.empty() && Clock::now() - replaced_at_ < kRefusalShown) return replaced_;
  }
  if (removed_.load()) return "this member was removed from the cluster (etcdctl member remove)";
  if (leader_.load() == raft::kNobody) return "no Raft leader is known";
  return "";
}

ReplicatedFrontStats ReplicatedFront::Stats() const {
  ReplicatedFrontStats stats;
  stats.leader = leader_.load();
  stats.self = self_id_;
  stats.term = term_.load();
  stats.forwarded = forwarded_count_.load();
  stats.served_for_peers = served_count_.load();
  stats.malformed_from_peers = malformed_.load();
  stats.refused_from_replaced = refused_replaced_.load();
  stats.network = network_.Stats();
  MutexLock lock(mu_);
  stats.dropped_from_peers = dropped_from_peers_;
  stats.replaced = !replaced_.empty() && Clock::now() - replaced_at_ < kRefusalShown;
  stats.learner = learner_.load();
  stats.host = host_stats_;
  stats.applied = host_stats_.applied;
  return stats;
}

std::unique_ptr<grpc::CallbackGenericService> MakeNotServedReplicatedService() {
  return MakeNotServedService(
      "a replicated strata cluster yet (it serves KV, Watch, Lease, Maintenance, Cluster and "
      "Auth; see docs/REPLICATION.md)");
}

}  // namespace strata::server
