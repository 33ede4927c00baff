// ReplicatedFront: etcd's key space replicated on every member, the way
// etcd itself runs (strata-server --cluster-mode replicated; docs/
// REPLICATION.md). The members form one Raft group (replication/); each
// write is a command in its log, applied by every member to its own
// KvReplica, so every member holds the same revisions and answers as one
// node would. Any member takes any call: a write on a member that does
// not lead is forwarded to the leader over the peer link, a linearizable
// read waits for a read index (Raft's ReadIndex: no log write), a
// serializable read answers from this member's replica at once.
//
// One loop thread owns the Raft host: it runs what the network and the
// gRPC threads post to it, ticks every `tick`, and after each turn runs
// the host's rounds (one sync of the Raft log each). Raft batches and
// forwarded commands travel on the peer links (PeerNetwork,
// strata.peer.v1's raft_* messages).
//
// Answers: a write's reply is what the leader's apply produced. A write
// whose outcome is unknown (its leader lost its place, or no answer within
// request_timeout) gets "etcdserver: request timed out"; no leader known
// gets "etcdserver: no leader"; both are kUnavailable, which etcd's
// clients retry on another member.
//
// Watches are served by each member from its own replica (a WatchHub the
// replica publishes to as it applies), as etcd serves them: a watcher sees
// every revision once, in order, as this member applies it.
//
// Leases are replicated state (service/replica_leases.h): grants and
// revocations are commands in the log. Their deadlines are the leader's
// alone, in memory, as etcd's lessor keeps them: keep-alives and
// time-to-live questions go to the leader (answered once it has applied
// everything committed, so a lease granted under the last leader is
// known), and the leader proposes the revocation of a lease whose time is
// up. A new leader gives every lease its full TTL again, so a lease never
// ends early because its leader changed (it may outlive its TTL by up to
// one TTL).
//
// A member whose disk was replaced (started again with an empty data
// directory) is told from the member it was by its incarnation
// (replication/incarnations.h): its batches are refused, so it counts for
// nothing, and it is told so (it reports itself unhealthy, naming why).
//
// Members are numbered by their etcd member id (their peer URL and the
// cluster token), and change one at a time through Raft (etcd's
// MemberAdd, MemberRemove, MemberPromote; server/member_change.h): the
// change carries the added member's peer URL, every member learns it as
// it applies the change, and each member publishes its name and client
// URLs through the log once it knows a leader, so any member lists all.
// A member started with join_existing learns its group from the leader.
//
// Limits (docs/REPLICATION.md): Auth and strata.v1 answer Unimplemented;
// the replica's engine is in memory and rebuilt from the Raft log's
// snapshot and entries at start.
#ifndef STRATA_SERVER_REPLICATED_FRONT_H_
#define STRATA_SERVER_REPLICATED_FRONT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "replication/incarnations.h"
#include "replication/raft_host.h"
#include "server/etcd_server.h"
#include "server/kv_front.h"
#include "server/kv_write_codec.h"
#include "server/lease_front.h"
#include "server/member_change.h"
#include "server/peer_network.h"
#include "server/shared_auth_record.h"
#include "service/watch_hub.h"

namespace strata::server {

struct ReplicatedFrontOptions {
  std::string self;
  // The first members (--initial-cluster), this one included; a member
  // that joins later is given every member, itself included.
  std::vector<ClusterMemberAddress> members;
  std::string token = "etcd-cluster";  // --initial-cluster-token: members' ids derive from it
  // --initial-cluster-state existing: this member was added to a running
  // group (etcdctl member add) and learns its members from the leader.
  bool join_existing = false;
  std::vector<std::string> client_urls;  // this member's, published to the others
  // The state a new group starts from (a node snapshot: --restore), ""
  // for an empty key space; the same on every first member.
  std::string initial_state;
  std::string listen_peer;  // host:port of this member's peer port
  std::string raft_dir;     // the Raft log (created if missing)
  std::shared_ptr<grpc::ServerCredentials> peer_server_credentials;  // null: plain text
  std::shared_ptr<grpc::ChannelCredentials> peer_channel_credentials;
  std::shared_ptr<PeerFaults> peer_faults;  // tests only
  size_t max_txn_ops = 128;
  size_t max_request_bytes = size_t{3} << 19;
  // Raft's unit of time (etcd's --heartbeat-interval): a leader sends
  // heartbeats every one; a follower that hears nothing for election_ticks
  // to twice that campaigns (etcd's defaults: 1 to 2 s).
  std::chrono::milliseconds tick{100};
  int election_ticks = 10;
  // Where a leader change is told (null: nowhere).
  std::function<void(const std::string&)> log;
  // A write or linearizable read not answered by then fails (unknown
  // outcome for a write); 0: etcd's, 5 s and two election timeouts.
  std::chrono::milliseconds request_timeout{0};
  // Entries applied between two snapshots of the replica at least (etcd's
  // --snapshot-count; see RaftHostOptions::compact_after).
  uint64_t snapshot_count = 100000;
  bool sync = true;  // fdatasync the Raft log every round
  // Past this many tasks waiting for the loop, Raft batches from peers are
  // dropped (Raft resends).
  size_t max_queued = 100000;
  service::WatchHubOptions watches;
  service::LeaseLimits lease_limits;
  // Told, on the loop, of each users-and-roles state the group applied
  // (or a snapshot brought) and of each token (server/replicated_auth.h):
  // the member's AuthStore takes them. Null: dropped.
  std::function<void(const std::string& encoded)> auth_adopted;
  std::function<void(const std::string& token, const std::string& user)> token_adopted;
};

struct ReplicatedFrontStats {
  uint64_t leader = 0;  // the leader's member id; 0: none known
  uint64_t self = 0;
  bool learner = false;  // this member is a learner (receives the log, does not vote)
  uint64_t term = 0;
  uint64_t applied = 0;
  uint64_t forwarded = 0;         // writes handed to the leader
  uint64_t served_for_peers = 0;  // writes other members handed here
  uint64_t dropped_from_peers = 0;
  uint64_t malformed_from_peers = 0;
  uint64_t refused_from_replaced = 0;  // batches of members whose disk was replaced
  bool replaced = false;               // this member was told its disk was replaced
  replication::RaftHostStats host;
  PeerNetworkStats network;
};

class ReplicatedFront final : public KvFront, public LeaseFront, public SharedAuthRecord {
 public:
  using Clock = std::chrono::steady_clock;
  template <typename T>
  using Done = KvFront::Done<T>;
  // Opens the Raft log, binds the peer port and starts the loop;
  // kUnavailable if the port is taken, kInvalidArgument for a member list
  // that does not name `self`.
  static Result<std::unique_ptr<ReplicatedFront>> Start(ReplicatedFrontOptions options);
  // Stops the peer port, then the loop: calls in flight are not answered.
  ~ReplicatedFront() override;

  void Range(service::RangeRequest request, Done<service::RangeResponse> done) override;
  void Put(service::PutRequest request, Done<service::PutResponse> done) override;
  void DeleteRange(service::DeleteRangeRequest request,
                   Done<service::DeleteRangeResponse> done) override;
  void Txn(service::TxnRequest request, Done<service::TxnResponse> done) override;
  void Compact(service::CompactionRequest request, Done<service::CompactionResponse> done) override;
  int64_t current_revision() const override { return revision_.load(); }

  void LeaseGrant(int64_t id, int64_t ttl, Done<service::LeaseGrantResult> done) override;
  void LeaseRevoke(int64_t id, Done<int64_t> done) override;
  void LeaseKeepAlive(int64_t id, Done<int64_t> done) override;
  void LeaseTimeToLive(int64_t id, bool keys, Done<service::LeaseTimeToLiveResult> done) override;
  void LeaseLeases(Done<std::vector<int64_t>> done) override;

  // The watches this member serves, from its replica.
  service::Watches& watches() { return *hub_; }
  const service::WatchHub& hub() const { return *hub_; }

  // This member's id, and the leader's (0: none known): etcd member ids.
  uint64_t self_id() const { return self_id_; }
  uint64_t leader_id() const { return leader_.load(); }
  // etcd's MoveLeader: on the leader, hands leadership to the member
  // `target` and answers once it leads (nullopt), or with etcd's error:
  // "not leader" here, "bad leader transferee", or a timeout.
  void MoveLeader(uint64_t target, std::function<void(std::optional<service::ServiceError>)> done);

  // The group's members as this member knows them (its Raft log's newest
  // configuration).
  using MembersDone = std::function<void(service::Reply<std::vector<MemberInfo>>)>;
  void Members(MembersDone done);
  // etcd's MemberAdd, MemberRemove, MemberPromote: proposed by the leader
  // (a member that does not lead hands it over), answered once applied
  // there with the members the leader then knows; or etcd's error.
  void ChangeMembers(MemberChange change, MembersDone done);
  // What /metrics and Status show of the key space: this member's copy's.
  struct ReplicaFigures {
    StoreStats store;
    int64_t compact_revision = 0;
    int64_t horizon = 0;  // the physical compaction (behind it while a save holds the sweep)
    int64_t live_keys = 0;
    size_t live_leases = 0;
  };
  // The member's own copy's engine, kept alive for a reader that outlasts
  // a restore (/metrics, the dashboard's key timeline).
  std::shared_ptr<const MvccStore> Engine() const;
  ReplicaFigures Figures() const;
  // What etcd's Maintenance.Snapshot streams of this member's own copy,
  // taken on the loop: the engine (kept alive), the leases and the
  // revision; the stream reads the engine at that revision while the
  // replica applies on.
  struct SnapshotSource {
    std::shared_ptr<const MvccStore> store;
    std::vector<std::pair<int64_t, int64_t>> leases;
    int64_t revision = 0;
  };
  void Snapshot(std::function<void(service::Reply<SnapshotSource>)> done);
  // The compact revision of this member's copy (a snapshot's trailer).
  int64_t compact_revision() const { return compacted_.load(); }
  // The history's hash of this member's own copy at `revision` (0: the
  // newest) with the compact and newest revisions (etcd's HashKV).
  struct Hash {
    uint32_t hash = 0;
    int64_t revision = 0;
    int64_t compact_revision = 0;
  };
  service::Reply<Hash> HashKV(int64_t revision) const;

  // etcd's users and roles as the group's replicated state
  // (server/replicated_auth.h), through the log: each call waits for the
  // apply, from a worker thread. Every member applies a saved state by
  // itself, so there is nothing to tell (TellAuthState: 0).
  Status SaveAuth(const std::string& encoded, uint64_t replaces, std::string* newer,
                  std::chrono::milliseconds wait) override;
  size_t TellAuthState(const std::string&, std::chrono::milliseconds) override { return 0; }
  size_t TellAuthToken(const std::string& token, const std::string& user,
                       std::chrono::milliseconds wait) override;

  ReplicatedFrontStats Stats() const;
  // Whether this member is a learner now (it receives the log, does not vote).
  bool learner() const { return learner_.load(); }
  // Why this member cannot serve ("": it can): its Raft log failed, or it
  // knows no leader.
  std::string Unhealthy() const;
  int peer_port() const { return peer_port_; }

 private:
  class ReplicaState;
  using Applied = replication::RaftHost::Applied;
  struct Forwarded {
    Applied done;
    std::chrono::steady_clock::time_point deadline;
    raft::NodeId leader = raft::kNobody;  // who it was handed to
  };

  explicit ReplicatedFront(ReplicatedFrontOptions options);
  // Runs `task` on the loop thread; false (it never runs) once stopping.
  bool Post(std::function<void()> task, bool from_peer = false);
  void Loop();
  // On the loop: proposes `command` here if this member leads, else hands
  // it to the leader.
  void Propose(std::string command, Applied done);
  // On the loop: `command` goes through the log (a write), or, a leader
  // query (service::LeaseQuery), is answered by the leader without a log
  // entry. Here if this member leads, else handed to the leader.
  void Submit(std::string command, bool leader_query, Applied done);
  // Submit from any thread; `done` gets the apply's (or the leader's)
  // result or an error.
  void SubmitAnywhere(std::string command, bool leader_query, Applied done);
  // SubmitAnywhere from a thread that may wait: the apply's result, or
  // Unavailable after `wait`.
  Result<std::string> AwaitApplied(std::string command, std::chrono::milliseconds wait);
  // On the loop, on the leader: answers a leader query once it has applied
  // everything committed.
  void AnswerLeaderQuery(std::string query, Applied done);
  // On the loop, after each turn: what follows this member's leadership.
  // A new leader registers its own incarnation and gives every lease its
  // full TTL; the leader revokes the leases whose time is up; a member
  // that does not lead keeps no deadlines.
  void TendLeadership();
  // On the loop: takes the leader and term from Raft into what Stats and
  // health read, logging a change.
  void NoteLeader();
  // On the loop: whether a batch from `from` with `incarnation` may be
  // stepped (no if the group holds another incarnation for it); the leader
  // registers the first incarnation it hears from each member.
  bool Admit(raft::NodeId from, uint64_t incarnation);
  void Register(raft::NodeId node, uint64_t incarnation);
  void LeaseChanged(int64_t id, int64_t ttl);
  void SetLeaseDeadline(int64_t id, Clock::time_point deadline);
  void Receive(const std::string& from, peerpb::Message message);
  // On the loop, on the leader: checks and proposes a membership change.
  void ProposeMemberChange(const MemberChange& change, Applied done);
  // Whether `from` may speak to this member's Raft: a member of the group
  // as this member's log knows it (a member that joins, and knows no
  // configuration yet, hears anyone).
  bool IsMember(raft::NodeId from) const;
  // The registry's news of a member (on the loop): its address and names.
  void Learn(raft::NodeId id, const replication::MemberRecord* record);
  // On the loop: publishes this member's name and client URLs through the
  // log once a leader is known and the group's record of them differs.
  void Publish();
  // On the loop: runs the serializable reads waiting for a revision this
  // member has now applied, and (`expire`) fails those past their time.
  void ServeRevisionWaiters(bool expire);
  std::string NameOf(raft::NodeId id) const;
  // On the loop: the members as this member's Raft log says them.
  std::vector<MemberInfo> ListMembers() const;
  void ServeForwarded(const std::string& from, uint64_t msg_id, std::string command,
                      bool leader_query);
  void CompleteForwarded(uint64_t msg_id, Result<std::string> result);
  void ExpireForwarded();
  // A write through the log, answered with its reply of type T.
  template <typename T>
  void Write(service::KvWrite write, Done<T> done);

  ReplicatedFrontOptions options_;  // request_timeout settled at Start
  raft::NodeId self_id_ = raft::kNobody;
  // Every member this one knows of, by id: from the flags, then as the
  // registry says (the loop writes, any thread reads).
  struct Known {
    std::string name;
    std::string peer_url;
    std::vector<std::string> client_urls;
  };
  mutable Mutex book_mu_;
  std::map<raft::NodeId, Known> book_ STRATA_GUARDED_BY(book_mu_);
  bool publishing_ = false;  // the loop's
  Clock::time_point next_publish_;
  ProtoKvWriteCodec codec_;
  PeerNetwork network_;
  std::unique_ptr<grpc::Server> peer_server_;
  int peer_port_ = 0;

  // Fed by the replica (so destroyed after the host, which owns it).
  std::unique_ptr<service::WatchHub> hub_;
  std::atomic<int64_t> compacted_{0};  // the replica's compact revision, for hub_

  // The loop thread's.
  std::unique_ptr<replication::RaftHost> host_;
  std::map<uint64_t, Forwarded> forwarded_;
  uint64_t next_msg_id_ = 1;
  // The leases' deadlines while this member leads (empty otherwise), by
  // lease and in order; revocations proposed and not yet answered.
  bool leading_ = false;
  std::map<int64_t, Clock::time_point> lease_deadlines_;
  std::set<std::pair<Clock::time_point, int64_t>> lease_queue_;
  std::set<int64_t> revoking_;
  // A leadership handover under way: to whom, until when, who waits.
  struct Handover {
    raft::NodeId target = raft::kNobody;
    Clock::time_point deadline;
    std::function<void(std::optional<service::ServiceError>)> done;
  };
  std::optional<Handover> handover_;
  // Serializable reads waiting until this member applies a revision
  // (strata-min-revision), by it: each runs with true once it is applied,
  // or with false at its deadline.
  struct RevisionWaiter {
    Clock::time_point deadline;
    std::function<void(bool reached)> run;
  };
  std::multimap<int64_t, RevisionWaiter> revision_waiters_;
  std::mt19937_64 random_{std::random_device{}()};

  // The replica: applied and restored on the loop thread; read by gRPC
  // threads under a shared lock (a restore replaces its engine).
  ReplicaState* replica_ = nullptr;
  // Around it, the incarnations the group holds (the loop thread's), this
  // member's own, registrations proposed and not yet answered, and when
  // each replaced member was last told.
  replication::RegisteredState* registry_ = nullptr;
  uint64_t incarnation_ = 0;
  std::set<raft::NodeId> registering_;
  std::map<raft::NodeId, Clock::time_point> told_replaced_;
  mutable std::shared_mutex replica_mu_;

  std::atomic<bool> learner_{false}, removed_{false};  // this member's place in the group
  std::atomic<int64_t> revision_{1};
  std::atomic<uint64_t> leader_{0}, term_{0}, forwarded_count_{0}, served_count_{0}, malformed_{0},
      refused_replaced_{0};

  mutable Mutex mu_;
  CondVar wake_;
  std::deque<std::function<void()>> tasks_ STRATA_GUARDED_BY(mu_);
  uint64_t dropped_from_peers_ STRATA_GUARDED_BY(mu_) = 0;
  replication::RaftHostStats host_stats_ STRATA_GUARDED_BY(mu_);
  std::string host_failure_ STRATA_GUARDED_BY(mu_);       // the host's health, "" while ok
  std::string replaced_ STRATA_GUARDED_BY(mu_);           // why peers refuse this member, "" if not
  Clock::time_point replaced_at_ STRATA_GUARDED_BY(mu_);  // when they last said so
  bool stopping_ STRATA_GUARDED_BY(mu_) = false;
  std::thread loop_;
};

// What a replicated member does not serve yet answers Unimplemented,
// saying so.
std::unique_ptr<grpc::CallbackGenericService> MakeNotServedReplicatedService();

}  // namespace strata::server

#endif  // STRATA_SERVER_REPLICATED_FRONT_H_
