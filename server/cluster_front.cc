#include "server/cluster_front.h"

#include <xxhash.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <map>
#include <set>
#include <utility>

#include "cluster/durable_state.h"
#include "server/etcd_ids.h"
#include "server/not_served.h"
#include "server/strata_service.h"
#include "service/history_hash.h"

namespace strata::server {

namespace {

// Forward requests that begin with this tag are strata.v1 History reads
// (ClusterFront::History); ClusterKv's writes have a tag of their own.
constexpr std::string_view kHistoryTag = "history\n";
// And a member's advertised client URLs (one a line in the answer).
constexpr std::string_view kClientUrlsTag = "client-urls\n";
// And a shard's hash of its history (HashKV): the revision; the answer is
// the hash and the shard's compaction horizon, a line each.
constexpr std::string_view kHashKvTag = "hashkv\n";
// A strata.v1 PlaceShardRequest, encoded, for the shard's leader.
constexpr std::string_view kPlaceShardTag = "place-shard\n";
// And news of etcd's auth: a new state (encoded), or a token and its user
// (a line each).
constexpr std::string_view kAuthStateTag = "auth-state\n";
constexpr std::string_view kAuthTokenTag = "auth-token\n";
// How long a HashKV waits for a shard to resolve the revision asked.
constexpr int kHashResolveTries = 50;
constexpr std::chrono::milliseconds kHashResolvePause{20};
// Keys hashed per turn of the loop.
constexpr size_t kHashKeysPerTurn = 256;

// The member list this member starts with (server/cluster_nodes.h): its
// copy; else a member's answer, if it joins; else its flags'.
Result<cluster::NodeList> StartingNodes(const ClusterFrontOptions& o) {
  const bool replicated = o.member.replication_factor > 1;
  if (replicated && !o.node_list_copy.empty()) {
    if (Status removed = RefusedAsRemoved(o.node_list_copy); !removed.ok()) return removed;
    Result<std::optional<cluster::NodeList>> copy = ReadNodeListCopy(o.node_list_copy);
    if (!copy.ok()) return copy.status();
    if (copy->has_value()) return std::move(**copy);
  }
  if (replicated && o.join_existing) {
    std::vector<std::string> others;
    std::string own_url;
    for (const ClusterMemberAddress& m : o.members) {
      if (m.name == o.self) {
        own_url = m.peer_url;
      } else {
        others.push_back(m.host_port);
      }
    }
    return JoinCluster(others, o.self, own_url, o.peer_channel_credentials, o.join_patience);
  }
  std::vector<cluster::ListedNode> first;
  for (const ClusterMemberAddress& m : o.members) first.push_back({m.name, m.peer_url, false});
  return cluster::NodeList::First(std::move(first));
}

}  // namespace

Result<std::unique_ptr<ClusterFront>> ClusterFront::Start(ClusterFrontOptions options,
                                                          MvccStore* store, const Store* durable) {
  // Moved into the runtime, not kept (options_ is const).
  std::map<cluster::ShardId, std::string> initial_states = std::move(options.shard_initial_states);
  std::unique_ptr<ClusterFront> front(new ClusterFront(std::move(options)));
  const ClusterFrontOptions& o = front->options_;
  ClusterRuntimeOptions runtime;
  runtime.self = o.self;
  // Shards are assigned to the first members in name order, so members
  // given the same list in any order agree on the map (NodeList::First).
  Result<cluster::NodeList> nodes = StartingNodes(o);
  if (!nodes.ok()) return nodes.status();
  const std::optional<size_t> number = nodes->NumberOf(o.self);
  if (!number || nodes->nodes()[*number].gone) {
    return Status::InvalidArgument(
        "the cluster's member list " +
        std::string(number ? "says member '" + o.self + "' was removed"
                           : "does not name '" + o.self + "'") +
        " (a member added later starts with --initial-cluster-state existing, after etcdctl "
        "member add; a removed one's name and number are never used again)");
  }
  runtime.node_ids = nodes->Names();
  runtime.member = o.member;
  runtime.member.shard_count = nodes->shard_count();
  runtime.raft_dir = o.raft_dir;
  runtime.shard_initial_states = std::move(initial_states);
  runtime.raft_tick = o.raft_tick;
  runtime.election_ticks = o.election_ticks;
  runtime.snapshot_count = o.snapshot_count;
  runtime.log = o.log;
  runtime.network.credentials = o.peer_channel_credentials;
  runtime.network.faults = o.peer_faults;
  runtime.network.replication_factor = o.member.replication_factor;
  runtime.network.log = o.log;
  auto started = ClusterRuntime::Start(std::move(runtime), store, durable);
  if (!started.ok()) return started.status();
  front->runtime_ = std::move(*started);
  ClusterFront* raw = front.get();
  ClusterNodes::Options nodes_options;
  nodes_options.self = o.self;
  nodes_options.copy_path = o.member.replication_factor > 1 ? o.node_list_copy : "";
  nodes_options.refresh = o.nodes_refresh;
  nodes_options.adopted = [raw](const cluster::NodeList& list) { raw->NodesChanged(list); };
  nodes_options.log = o.log;
  nodes_options.stop = o.stop;
  front->nodes_ = std::make_unique<ClusterNodes>(*nodes, std::move(nodes_options));
  // Restarts start from the copy (StartingNodes), never from the flags again.
  if (Status s = front->nodes_->KeepCopy(); !s.ok()) return s;
  if (o.member.replication_factor > 1) {
    front->runtime_->SetJoinHandler(
        [raw](const peerpb::JoinRequest& request, peerpb::JoinReply* reply) {
          return raw->ServeJoin(request, reply);
        });
    front->runtime_->SetRemovedHandler([raw](const std::string& by) {
      if (raw->nodes_) raw->nodes_->ToldRemoved(by);
    });
  }

  grpc::ServerBuilder builder;
  builder.AddListeningPort(
      o.listen_peer,
      o.peer_server_credentials ? o.peer_server_credentials : grpc::InsecureServerCredentials(),
      &front->peer_port_);
  front->runtime_->ConfigureServer(&builder);
  front->peer_server_ = builder.BuildAndStart();
  if (!front->peer_server_ || front->peer_port_ == 0) {
    return Status::Unavailable("cannot listen on the peer URL " + o.listen_peer +
                               " (is the port in use?)");
  }
  // The key-value API lives on the loop thread, beside the coordinator.
  std::promise<void> made;
  (void)front->runtime_->Post([raw, &made](cluster::Member& member) {
    service::ClusterKvOptions kv = raw->options_.kv;
    // A write whose keys one other member owns runs there, where its reads
    // and commit are local. Not over replicated shards: a forward resent
    // to another replica (its leader gone) could run the write twice, and
    // a coordinator's own commit is safe to resend (each group remembers
    // the outcome of a transaction it saw). There the member called runs
    // every write.
    const bool replicated = raw->options_.member.replication_factor > 1;
    kv.forward_codec = replicated ? nullptr : &raw->codec_;
    kv.timers = &member.timers();
    kv.frontier = &member.resolved_frontier();
    // Serializable Ranges read this member's own replicas (each shard's,
    // with --replication-factor as large as the cluster).
    if (replicated) kv.resolved_here = [&member] { return member.ResolvedHere(); };
    // A write's reads at a replica's closed time (usually this member's
    // own), not closed through the shards' logs first (unreplicated shards
    // close by their clock alone).
    kv.writes_at_shard_clocks = replicated;
    raw->kv_ = std::make_unique<service::ClusterKv>(&member.coordinator(), &member.router(), kv);
    // A key of the cluster's own (tag 0x00: no etcd key has it) on each
    // shard, for Probe.
    const cluster::ShardMap& map = member.map();
    std::map<cluster::ShardId, std::string> by_shard;
    for (int i = 0; by_shard.size() < map.shards().size(); ++i) {
      std::string key = std::string(1, '\0') + "health/" + std::to_string(i);
      by_shard.emplace(map.ShardFor(key).id, std::move(key));
    }
    for (auto& [shard, key] : by_shard) raw->probe_keys_.push_back(std::move(key));
    raw->leases_ = std::make_unique<service::ClusterLeases>(&member);
    raw->txns_ = std::make_unique<service::ClusterTxns>(&member.coordinator(), raw->kv_.get());
    raw->member_ = &member;
    // Links to every member present, and none to those gone; with
    // replicated shards, later lists as the record changes.
    raw->NodesChanged(raw->nodes_->Current());
    if (raw->options_.member.replication_factor > 1) {
      raw->nodes_->Attach(&member.coordinator(), &member.timers());
    }
    // Other members forward writes to the keys this shard owns, and the
    // lease calls for leases homed here.
    raw->runtime_->SetForwardHandler(
        [raw](const std::string& request, cluster::ShardServer::Respond respond) {
          if (request.starts_with(service::ClusterKv::kForwardTag)) {
            return raw->kv_->ServeForward(request, std::move(respond));
          }
          if (request.starts_with(service::ShardLocks::kTag)) {
            return raw->kv_->ServeLanes(request, std::move(respond));
          }
          if (request.starts_with(kClientUrlsTag)) {
            std::string urls;
            for (const std::string& url : raw->options_.client_urls) urls += url + "\n";
            return respond(cluster::ForwardReply{std::move(urls)});
          }
          if (request.starts_with(kHashKvTag)) {
            return raw->ServeHashKV(std::string_view(request).substr(kHashKvTag.size()),
                                    std::move(respond));
          }
          if (request.starts_with(kHistoryTag)) {
            return respond(raw->ServeHistory(std::string_view(request).substr(kHistoryTag.size())));
          }
          if (request.starts_with(kPlaceShardTag)) {
            return raw->ServePlaceShard(std::string_view(request).substr(kPlaceShardTag.size()),
                                        std::move(respond));
          }
          if (request.starts_with(kAuthStateTag) || request.starts_with(kAuthTokenTag)) {
            return respond(raw->ServeAuthNews(request));
          }
          raw->leases_->ServeForward(request, std::move(respond));
        });
    // Other members' client URLs for `member list`: asked for until known,
    // and again now and then (a member may restart with others).
    member.timers().Every(std::chrono::milliseconds(500),
                          [raw] { raw->AskClientUrls(++raw->url_rounds_ % 20 == 0); });
    raw->AskClientUrls(true);
    // etcd's users and roles: the cluster's record, looked at now and then
    // (news from the member that changed it comes at once; this catches
    // what a member missed while down or cut off).
    raw->auth_record_ = service::ClusterRecord::Auth(&member.coordinator());
    if (raw->options_.auth) {
      auto refresh = [raw] {
        raw->auth_record_->Load([raw](Status s, std::string encoded) {
          if (s.ok() && !encoded.empty()) raw->AdoptAuth(encoded);
        });
      };
      member.timers().Every(raw->options_.auth_refresh, refresh);
      refresh();
    }
    made.set_value();
  });
  made.get_future().wait();
  ClusterRuntime* loop = front->runtime_.get();
  front->watches_ = std::make_unique<service::ClusterWatches>(
      [loop](std::function<void(cluster::Member&)> task) { return loop->Post(std::move(task)); },
      // On the loop thread: the compaction this member ran, or its shard's.
      [raw] {
        const cluster::ShardServer* own = raw->member_->shard_server();
        const int64_t horizon =
            own ? static_cast<int64_t>(own->store().compaction_horizon().value()) : 0;
        return std::max(raw->kv_->compact_revision(), horizon);
      },
      raw->options_.watches);
  return front;
}

ClusterFront::~ClusterFront() {
  if (peer_server_) {
    peer_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    peer_server_->Wait();
  }
  // The watch feeds hold the member's low-water mark: they end before it.
  // (A start that failed may have made neither.)
  std::promise<void> stopped;
  if (runtime_ && watches_ && runtime_->Post([this, &stopped](cluster::Member&) {
        watches_->StopFeeds();
        stopped.set_value();
      })) {
    stopped.get_future().wait();
  }
  runtime_.reset();  // joins the loop: nothing uses kv_, leases_ or watches_ after this
  auth_record_.reset();
  nodes_.reset();
  txns_.reset();
  watches_.reset();
  leases_.reset();
  kv_.reset();
}

int64_t ClusterFront::current_revision() const {
  return static_cast<int64_t>(runtime_->LastTimestamp().value());
}

std::string ClusterFront::Probe(std::chrono::milliseconds wait) {
  auto answer = std::make_shared<std::promise<std::string>>();
  std::future<std::string> result = answer->get_future();
  const bool posted = runtime_->Post([this, answer](cluster::Member& member) {
    // Its replicas refused by the others (its disk was replaced): it may
    // still coordinate, but it holds no shard's copy for anyone.
    if (const cluster::ShardGroups* groups = runtime_->shard_groups()) {
      if (std::string refused = groups->refused_by_others(); !refused.empty()) {
        return answer->set_value(std::move(refused));
      }
    }
    cluster::Coordinator& coordinator = member.coordinator();
    const Timestamp snapshot = coordinator.HoldSnapshot();
    coordinator.ReadKeys(probe_keys_, snapshot,
                         [&coordinator, snapshot, answer](Result<std::vector<ReadResult>> r) {
                           coordinator.ReleaseSnapshot(snapshot);
                           answer->set_value(r.ok() ? std::string()
                                                    : "a read of every shard failed: " +
                                                          std::string(r.status().message()));
                         });
  });
  if (!posted) return "the cluster member is stopping";
  if (result.wait_for(wait) != std::future_status::ready) {
    return "a read of every shard did not answer in " + std::to_string(wait.count()) +
           " ms (a member down or partitioned away?)";
  }
  return result.get();
}

std::optional<ClusterFrontStats> ClusterFront::Stats(std::chrono::milliseconds wait) {
  auto answer = std::make_shared<std::promise<ClusterFrontStats>>();
  std::future<ClusterFrontStats> result = answer->get_future();
  const bool posted = runtime_->Post([this, answer](cluster::Member& member) {
    ClusterFrontStats stats;
    stats.members = nodes_->Current().Present().size();
    for (cluster::ShardId shard : member.ShardsServed()) {
      const cluster::ShardServer* server = member.FindShardServer(shard);
      const cluster::ShardServerStats figures = server->Stats();
      stats.served.push_back({shard, server->shared_store(), server->store().GetStats(),
                              figures.resolved_timestamp, figures.intents});
    }
    stats.compact_revision = kv_->compact_revision();
    stats.coordinator = member.coordinator().Stats();
    stats.low_water_mark = member.LowWaterMark();
    stats.lanes = kv_->lanes_stats();
    if (options_.member.replication_factor > 1) {
      for (cluster::ShardId shard : member.ShardsServed()) {
        stats.replicas.push_back({shard, member.FindShardServer(shard)->Leads()});
      }
    }
    if (const cluster::ShardGroups* groups = runtime_->shard_groups()) {
      stats.refused_from_replaced = groups->refused_from_replaced();
      stats.raft = groups->host_stats();
      stats.leaders_handed_home = groups->leaders_handed_home();
      stats.replica_changes = groups->changes();
      stats.groups = groups->Groups();
    }
    stats.shard_call_retries = member.peers().retries();
    stats.shard_call_redirects = member.peers().redirects();
    stats.reads_here = member.peers().reads_here();
    stats.reads_passed_on = member.peers().reads_passed_on();
    stats.writes_read_afresh = kv_->writes_read_afresh();
    stats.watch_lags_ms =
        watches_->LagsInMillis(ClusterFrontStats::kWatchLagBoundsMs,
                               static_cast<int64_t>(cluster::HybridLogicalClock::SystemMillis()));
    stats.leases_homed = leases_->homed();
    answer->set_value(std::move(stats));
  });
  if (!posted || result.wait_for(wait) != std::future_status::ready) return std::nullopt;
  ClusterFrontStats stats = result.get();
  stats.network = runtime_->NetworkStats();
  stats.dropped_from_peers = runtime_->dropped_from_peers();
  stats.held_for_durability = runtime_->HeldForDurability();
  stats.watchers = watches_->watchers();
  stats.watchers_paused = watches_->paused();
  stats.watcher_pauses = watches_->pauses();
  return stats;
}

template <typename T>
void ClusterFront::Run(std::function<void(Done<T>)> call, Done<T> done) {
  ClusterRuntime* runtime = runtime_.get();
  auto answer = std::make_shared<Done<T>>(std::move(done));
  const bool posted =
      runtime_->Post([runtime, call = std::move(call), answer](cluster::Member&) mutable {
        // A member whose log failed cannot make anything it says durable,
        // nor tell its peers anything: it answers at once.
        if (const Status& log = runtime->LogHealth(); !log.ok()) {
          return (*answer)(service::etcd_errors::StorageFailed(std::string(log.message())));
        }
        call([runtime, answer](service::Reply<T> reply) {
          auto shared = std::make_shared<service::Reply<T>>(std::move(reply));
          runtime->WhenDurable([answer, shared] { (*answer)(std::move(*shared)); },
                               [answer] {
                                 (*answer)(service::etcd_errors::StorageFailed(
                                     "the answer may show writes that will not survive a "
                                     "restart"));
                               });
        });
      });
  if (!posted) (*answer)(service::etcd_errors::Stopped());
}

void ClusterFront::Range(service::RangeRequest request, Done<service::RangeResponse> done) {
  Run<service::RangeResponse>(
      [this, request = std::move(request)](auto d) { kv_->Range(request, d); }, std::move(done));
}

void ClusterFront::Put(service::PutRequest request, Done<service::PutResponse> done) {
  Run<service::PutResponse>([this, request = std::move(request)](auto d) { kv_->Put(request, d); },
                            std::move(done));
}

void ClusterFront::DeleteRange(service::DeleteRangeRequest request,
                               Done<service::DeleteRangeResponse> done) {
  Run<service::DeleteRangeResponse>(
      [this, request = std::move(request)](auto d) { kv_->DeleteRange(request, d); },
      std::move(done));
}

void ClusterFront::Txn(service::TxnRequest request, Done<service::TxnResponse> done) {
  Run<service::TxnResponse>([this, request = std::move(request)](auto d) { kv_->Txn(request, d); },
                            std::move(done));
}

void ClusterFront::Compact(service::CompactionRequest request,
                           Done<service::CompactionResponse> done) {
  Run<service::CompactionResponse>([this, request](auto d) { kv_->Compact(request, d); },
                                   std::move(done));
}

void ClusterFront::LeaseGrant(int64_t id, int64_t ttl, Done<service::LeaseGrantResult> done) {
  Run<service::LeaseGrantResult>([this, id, ttl](auto d) { leases_->Grant(id, ttl, d); },
                                 std::move(done));
}

void ClusterFront::LeaseRevoke(int64_t id, Done<int64_t> done) {
  Run<int64_t>([this, id](auto d) { leases_->Revoke(id, d); }, std::move(done));
}

void ClusterFront::LeaseKeepAlive(int64_t id, Done<int64_t> done) {
  Run<int64_t>([this, id](auto d) { leases_->KeepAlive(id, d); }, std::move(done));
}

void ClusterFront::LeaseTimeToLive(int64_t id, bool keys,
                                   Done<service::LeaseTimeToLiveResult> done) {
  Run<service::LeaseTimeToLiveResult>(
      [this, id, keys](auto d) { leases_->TimeToLive(id, keys, d); }, std::move(done));
}

void ClusterFront::LeaseLeases(Done<std::vector<int64_t>> done) {
  Run<std::vector<int64_t>>([this](auto d) { leases_->Leases(d); }, std::move(done));
}

void ClusterFront::TxnBegin(service::TxnIsolation isolation, int64_t read_revision,
                            service::FollowerRead follower, Done<service::TxnBegun> done) {
  Run<service::TxnBegun>([this, isolation, read_revision, follower](
                             auto d) { d(txns_->Begin(isolation, read_revision, "", follower)); },
                         std::move(done));
}

void ClusterFront::TxnGet(uint64_t id, std::string key, Done<service::TxnRead> done) {
  Run<service::TxnRead>([this, id, key = std::move(key)](auto d) { txns_->Get(id, key, d); },
                        std::move(done));
}

void ClusterFront::TxnRange(uint64_t id, service::KeySpan span, int64_t limit,
                            Done<service::RangeResponse> done) {
  Run<service::RangeResponse>(
      [this, id, span = std::move(span), limit](auto d) { txns_->Range(id, span, limit, d); },
      std::move(done));
}

void ClusterFront::TxnWrite(uint64_t id, std::string key, std::optional<std::string> value,
                            Done<service::ClusterTxns::Empty> done) {
  Run<service::ClusterTxns::Empty>(
      [this, id, key = std::move(key), value = std::move(value)](auto d) {
        d(value ? txns_->Put(id, key, *value) : txns_->Delete(id, key));
      },
      std::move(done));
}

void ClusterFront::TxnCommit(uint64_t id, Done<int64_t> done) {
  Run<int64_t>([this, id](auto d) { txns_->Commit(id, d); }, std::move(done));
}

void ClusterFront::TxnAbort(uint64_t id, Done<service::ClusterTxns::Empty> done) {
  Run<service::ClusterTxns::Empty>([this, id](auto d) { d(txns_->Abort(id)); }, std::move(done));
}

void ClusterFront::History(std::string request, Done<std::string> done) {
  Run<std::string>(
      [this, request = std::move(request)](Done<std::string> d) {
        v1::HistoryRequest parsed;
        if (!parsed.ParseFromString(request)) {
          return d(service::ServiceError{service::ErrorCode::kInvalidArgument,
                                         "strata: a history request that does not decode"});
        }
        member_->router().Forward(service::ClusterKv::EngineKey(parsed.key()),
                                  std::string(kHistoryTag) + request, [d](Result<std::string> r) {
                                    if (!r.ok()) return d(service::ClusterError(r.status()));
                                    d(std::move(*r));
                                  });
      },
      std::move(done));
}

cluster::PeerReply ClusterFront::ServeHistory(std::string_view request) {
  v1::HistoryRequest parsed;
  if (!parsed.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
    return cluster::PeerError{Status::InvalidArgument("a history request that does not decode")};
  }
  // Up to the shard's resolved timestamp: no version at or below it can
  // still appear here (a pending two-phase commit is above it).
  v1::HistoryResponse resp;
  const std::string key = service::ClusterKv::EngineKey(parsed.key());
  // The shard's store as this member holds it (its own, or its replica).
  const cluster::ShardServer* shard = member_->FindShardServer(member_->map().ShardFor(key).id);
  if (shard == nullptr) {
    return cluster::PeerError{
        Status::Unavailable("this member holds no replica of the key's shard")};
  }
  const int64_t resolved = service::RevisionOf(shard->SafeTime());
  const MvccStore& store = shard->store();
  if (auto e = ReadHistory(store, key, parsed, resolved, &resp)) {
    return cluster::PeerError{e->code == service::ErrorCode::kOutOfRange
                                  ? Status::Compacted(e->message)
                                  : Status(StatusCode::kPreconditionFailed, e->message)};
  }
  resp.set_compact_revision(
      std::max<int64_t>(std::max<int64_t>(0, kv_->compact_revision()),
                        static_cast<int64_t>(store.compaction_horizon().value())));
  return cluster::ForwardReply{resp.SerializeAsString()};
}

void ClusterFront::Changes(int64_t since, service::KeySpan span, size_t limit,
                           Done<ChangesResult> done) {
  Run<ChangesResult>(
      [this, since, span = std::move(span), limit](Done<ChangesResult> d) {
        const int64_t newest = service::RevisionOf(member_->coordinator().ReadTimestamp());
        if (since > newest) return d(service::etcd_errors::FutureRev());
        // No key: every etcd key ("\0" to the end, as etcd's --prefix of "").
        const service::KeySpan asked =
            span.key.empty() ? service::KeySpan{std::string(1, '\0'), std::string(1, '\0')} : span;
        std::optional<KeyRange> range = service::ClusterKv::EngineRange(asked);
        if (!range) return d(ChangesResult{});  // an inverted range holds nothing
        member_->router().SettledChanges(service::AtRevision(std::max<int64_t>(0, since)),
                                         std::move(*range), limit, [d](Result<ChangesResult> r) {
                                           if (!r.ok()) {
                                             if (r.status().code() == StatusCode::kCompacted) {
                                               return d(service::etcd_errors::Compacted());
                                             }
                                             return d(service::ClusterError(r.status()));
                                           }
                                           for (Change& change : r->changes)
                                             change.key.erase(0, 1);  // the etcd key's tag
                                           d(std::move(*r));
                                         });
      },
      std::move(done));
}

struct ClusterFront::HashJob {
  std::shared_ptr<const MvccStore> store;  // what the hasher reads
  std::unique_ptr<service::HistoryHasher> hasher;
  int64_t horizon = 0;
  cluster::ShardServer::Respond respond;
};

struct ClusterFront::HashGather {
  int64_t revision = 0;
  std::vector<uint32_t> hashes;
  int64_t compact_revision = 0;
  size_t left = 0;
  bool failed = false;
  Done<HashResult> done;
};

void ClusterFront::HashKV(int64_t revision, Done<HashResult> done) {
  Run<HashResult>(
      [this, revision](Done<HashResult> d) {
        const int64_t newest = service::RevisionOf(member_->coordinator().ReadTimestamp());
        if (revision > newest) return d(service::etcd_errors::FutureRev());
        // Below a compaction this member ran, as its Range refuses (the
        // shards' own horizons may still lag it: they never pass the
        // cluster's low-water mark).
        if (revision > 0 && revision < kv_->compact_revision()) {
          return d(service::etcd_errors::Compacted());
        }
        auto gather = std::make_shared<HashGather>();
        gather->revision = revision > 0 ? revision : newest;
        gather->hashes.resize(probe_keys_.size());
        gather->left = probe_keys_.size();
        gather->done = std::move(d);
        for (size_t i = 0; i < probe_keys_.size(); ++i) AskShardHash(gather, i, 0);
      },
      std::move(done));
}

void ClusterFront::AskShardHash(std::shared_ptr<HashGather> gather, size_t index, int tries) {
  const cluster::ShardId shard = member_->map().ShardFor(probe_keys_[index]).id;
  member_->router().Forward(
      probe_keys_[index],
      std::string(kHashKvTag) + std::to_string(shard) + " " + std::to_string(gather->revision),
      [this, gather, index, tries](Result<std::string> r) {
        if (gather->failed) return;
        if (!r.ok()) {
          // Not resolved that far yet: ask again, a while. (An unreachable
          // shard fails the call as it would any other.)
          if (r.status().code() == StatusCode::kPreconditionFailed && tries < kHashResolveTries) {
            member_->timers().After(kHashResolvePause, [this, gather, index, tries] {
              AskShardHash(gather, index, tries + 1);
            });
            return;
          }
          gather->failed = true;
          return gather->done(service::ClusterError(r.status()));
        }
        const size_t newline = r->find('\n');
        gather->hashes[index] = static_cast<uint32_t>(std::strtoul(r->c_str(), nullptr, 10));
        if (newline != std::string::npos) {
          gather->compact_revision = std::max<int64_t>(
              gather->compact_revision, std::strtoll(r->c_str() + newline + 1, nullptr, 10));
        }
        if (--gather->left > 0) return;
        // The shards' hashes in shard order: the same from every member.
        const uint64_t h =
            XXH3_64bits(gather->hashes.data(), gather->hashes.size() * sizeof(uint32_t));
        gather->done(HashResult{static_cast<uint32_t>(h ^ (h >> 32)), gather->revision,
                                gather->compact_revision});
      });
}

void ClusterFront::ServeHashKV(std::string_view request, cluster::ShardServer::Respond respond) {
  // "SHARD REVISION"
  const std::string text(request);
  char* rest = nullptr;
  const auto shard_id = static_cast<cluster::ShardId>(std::strtoull(text.c_str(), &rest, 10));
  const int64_t revision = std::strtoll(rest, nullptr, 10);
  const cluster::ShardServer* shard = member_->FindShardServer(shard_id);
  if (shard == nullptr) {
    return respond(cluster::PeerError{
        Status::Unavailable("this member holds no replica of shard " + std::to_string(shard_id))});
  }
  // Nothing can still commit at or below the shard's resolved timestamp,
  // so the history hashed there is final.
  const int64_t resolved = service::RevisionOf(shard->SafeTime());
  if (revision <= 0) {
    return respond(cluster::PeerError{Status::InvalidArgument("no revision to hash up to")});
  }
  if (revision > resolved) {
    return respond(cluster::PeerError{Status::PreconditionFailed(
        "the shard has not resolved revision " + std::to_string(revision) + " yet")});
  }
  // The shard's store as this member holds it, kept for the turns the
  // hash takes (a replica that restores a snapshot meanwhile replaces its
  // store; this one still holds the history up to the revision).
  std::shared_ptr<const MvccStore> store = shard->shared_store();
  const auto horizon = static_cast<int64_t>(store->compaction_horizon().value());
  if (revision <= horizon) {
    return respond(cluster::PeerError{
        Status::Compacted("revision " + std::to_string(revision) + " is compacted on this shard")});
  }
  auto job = std::make_shared<HashJob>();
  job->hasher = std::make_unique<service::HistoryHasher>(store.get(), revision, horizon,
                                                         service::ClusterKv::EngineKey(""));
  job->store = std::move(store);
  job->horizon = horizon;
  job->respond = std::move(respond);
  ContinueHash(std::move(job));
}

void ClusterFront::ContinueHash(std::shared_ptr<HashJob> job) {
  if (!job->hasher->Step(kHashKeysPerTurn)) {
    // The rest on a later turn: the loop serves others meanwhile.
    (void)runtime_->Post([this, job](cluster::Member&) { ContinueHash(job); });
    return;
  }
  job->respond(cluster::ForwardReply{std::to_string(job->hasher->Digest()) + "\n" +
                                     std::to_string(job->horizon)});
}

void ClusterFront::AskClientUrls(bool all) {
  for (const std::string& name : others_) {
    {
      MutexLock lock(urls_mu_);
      if (!all && client_urls_.contains(name)) continue;
    }
    member_->router().ForwardTo(
        name, std::string(kClientUrlsTag), [this, name](Result<std::string> r) {
          if (!r.ok()) return;  // asked again later
          std::vector<std::string> urls;
          size_t start = 0;
          for (size_t end; (end = r->find('\n', start)) != std::string::npos; start = end + 1) {
            if (end > start) urls.push_back(r->substr(start, end - start));
          }
          MutexLock lock(urls_mu_);
          client_urls_[name] = std::move(urls);
        });
  }
}

cluster::PeerReply ClusterFront::ServeAuthNews(std::string_view request) {
  if (!options_.auth) {
    return cluster::PeerError{Status::Unavailable("this member serves no auth over the cluster")};
  }
  if (request.starts_with(kAuthStateTag)) {
    request.remove_prefix(kAuthStateTag.size());
    if (!AdoptAuth(request)) {
      return cluster::PeerError{Status::InvalidArgument("an auth state that does not decode")};
    }
    return cluster::ForwardReply{};
  }
  request.remove_prefix(kAuthTokenTag.size());
  const size_t newline = request.find('\n');
  if (newline == std::string_view::npos || newline == 0) {
    return cluster::PeerError{Status::InvalidArgument("an auth token without its user")};
  }
  options_.auth->AdoptToken(std::string(request.substr(0, newline)),
                            std::string(request.substr(newline + 1)));
  return cluster::ForwardReply{};
}

bool ClusterFront::AdoptAuth(std::string_view encoded) {
  const uint64_t before = options_.auth->revision();
  if (!options_.auth->Adopt(encoded)) return false;
  if (options_.auth->revision() > before && options_.auth_adopted) {
    options_.auth_adopted(std::string(encoded));
  }
  return true;
}

Status ClusterFront::SaveAuth(const std::string& encoded, uint64_t replaces, std::string* newer,
                              std::chrono::milliseconds wait) {
  using Saved = service::ClusterRecord::Saved;
  auto answer = std::make_shared<std::promise<Saved>>();
  std::future<Saved> result = answer->get_future();
  Run<Saved>(
      [this, encoded, replaces](Done<Saved> d) {
        auth_record_->Save(encoded, replaces, [d](Saved saved) { d(std::move(saved)); });
      },
      [answer](service::Reply<Saved> r) {
        if (r.ok()) return answer->set_value(std::move(r.value()));
        answer->set_value(Saved{Status::Unavailable(r.error().message), {}});
      });
  if (result.wait_for(wait) != std::future_status::ready) {
    return NoAnswerWithin(wait);
  }
  Saved saved = result.get();
  if (saved.status.code() == StatusCode::kConflict) *newer = std::move(saved.newer);
  return saved.status;
}

size_t ClusterFront::TellAuthState(const std::string& encoded, std::chrono::milliseconds wait) {
  return TellOthers(std::string(kAuthStateTag) + encoded, wait);
}

size_t ClusterFront::TellAuthToken(const std::string& token, const std::string& user,
                                   std::chrono::milliseconds wait) {
  return TellOthers(std::string(kAuthTokenTag) + token + "\n" + user, wait);
}

size_t ClusterFront::TellOthers(std::string news, std::chrono::milliseconds wait) {
  // A member that did not answer the last news is told but not waited
  // for, until it answers again or kDeafFor has passed: a partition then
  // costs each auth change or Authenticate nothing, not `wait`.
  static constexpr std::chrono::seconds kDeafFor{10};
  struct Telling {
    Mutex mu;
    CondVar cv;
    std::set<std::string> awaited STRATA_GUARDED_BY(mu);
    size_t told STRATA_GUARDED_BY(mu) = 0;
  };
  auto telling = std::make_shared<Telling>();
  const auto now = std::chrono::steady_clock::now();
  {
    MutexLock deaf(deaf_mu_);
    MutexLock lock(telling->mu);
    for (const std::string& name : others_) {
      auto it = deaf_until_.find(name);
      if (it == deaf_until_.end() || it->second <= now) telling->awaited.insert(name);
    }
  }
  const bool posted = runtime_->Post([this, telling, news = std::move(news)](cluster::Member&) {
    for (const std::string& name : others_) {
      member_->router().ForwardTo(name, news, [this, telling, name](Result<std::string> r) {
        {
          MutexLock deaf(deaf_mu_);
          if (r.ok()) {
            deaf_until_.erase(name);
          } else {
            deaf_until_[name] = std::chrono::steady_clock::now() + kDeafFor;
          }
        }
        {
          MutexLock lock(telling->mu);
          telling->awaited.erase(name);
          if (r.ok()) ++telling->told;
        }
        telling->cv.NotifyAll();
      });
    }
  });
  if (!posted) return 0;
  UniqueLock lock(telling->mu);
  telling->cv.WaitFor(lock, wait,
                      [&]() STRATA_REQUIRES(telling->mu) { return telling->awaited.empty(); });
  const size_t told = telling->told;
  std::vector<std::string> silent(telling->awaited.begin(), telling->awaited.end());
  lock.unlock();
  if (!silent.empty()) {
    MutexLock deaf(deaf_mu_);
    for (const std::string& name : silent) {
      deaf_until_[name] = std::chrono::steady_clock::now() + kDeafFor;
    }
  }
  return told;
}

std::vector<std::string> ClusterFront::ClientUrlsOf(const std::string& name) const {
  MutexLock lock(urls_mu_);
  auto it = client_urls_.find(name);
  return it == client_urls_.end() ? std::vector<std::string>{} : it->second;
}

void ClusterFront::HoldSnapshot(Done<int64_t> done) {
  Run<int64_t>([this](auto d) { d(service::RevisionOf(member_->coordinator().HoldSnapshot())); },
               std::move(done));
}

void ClusterFront::ReleaseSnapshot(int64_t revision) {
  (void)runtime_->Post([revision](cluster::Member& member) {
    member.coordinator().ReleaseSnapshot(service::AtRevision(revision));
  });
}

void ClusterFront::SnapshotPage(int64_t revision, std::string after, size_t limit,
                                Done<ScanResult> done) {
  Run<ScanResult>(
      [this, revision, after = std::move(after), limit](Done<ScanResult> d) {
        cluster::Coordinator& coordinator = member_->coordinator();
        auto begun = coordinator.Begin(Isolation::kSnapshot, /*read_only=*/true,
                                       service::AtRevision(revision));
        if (!begun.ok()) return d(service::ClusterError(begun.status()));
        // Past the last key seen; up to the members' own keys (tag 0x02).
        KeyRange range{after.empty() ? after : after + '\0',
                       std::string(1, cluster::kInternalKeyTag)};
        const uint64_t txn = begun->id;
        coordinator.Scan(txn, std::move(range), limit, [this, txn, d](Result<ScanResult> page) {
          (void)member_->coordinator().Abort(txn);
          if (!page.ok()) return d(service::ClusterError(page.status()));
          d(std::move(*page));
        });
      },
      std::move(done));
}

void ClusterFront::Figures(Done<TxnFigures> done) {
  Run<TxnFigures>(
      [this](auto d) {
        d(TxnFigures{txns_->Stats(), std::max<int64_t>(0, kv_->compact_revision()),
                     watches_->watchers()});
      },
      std::move(done));
}

void ClusterFront::Shards(Done<std::vector<cluster::ShardGroupView>> done) {
  Run<std::vector<cluster::ShardGroupView>>(
      [this](auto d) {
        if (const cluster::ShardGroups* groups = runtime_->shard_groups()) {
          return d(groups->Groups());
        }
        // One replica a shard, where the map puts it.
        std::vector<cluster::ShardGroupView> views;
        for (const cluster::Shard& shard : member_->map().shards()) {
          views.push_back({shard.id, shard.leaseholder(), shard.replicas, {}, shard.replicas});
        }
        d(std::move(views));
      },
      std::move(done));
}

void ClusterFront::PlaceShard(cluster::ShardId shard, std::vector<std::string> members,
                              Done<service::ClusterTxns::Empty> done) {
  if (runtime_->shard_groups() == nullptr) {
    return done(service::ServiceError{
        service::ErrorCode::kFailedPrecondition,
        "strata: this cluster's shards are not replicated (--replication-factor 1): each "
        "lives on its own member"});
  }
  if (members.size() > cluster::kMaxPlacedNodes) {
    return done(service::ServiceError{service::ErrorCode::kInvalidArgument,
                                      "strata: a placement names at most " +
                                          std::to_string(cluster::kMaxPlacedNodes) +
                                          " members (a cluster has no more)"});
  }
  v1::PlaceShardRequest request;
  request.set_shard(shard);
  for (std::string& member : members) request.add_members(std::move(member));
  Run<service::ClusterTxns::Empty>(
      [this, shard,
       encoded = std::string(kPlaceShardTag) + request.SerializeAsString()](auto d) mutable {
        if (shard >= member_->map().shards().size()) {
          return d(service::ServiceError{service::ErrorCode::kInvalidArgument,
                                         "strata: no shard " + std::to_string(shard) +
                                             " (the cluster has " +
                                             std::to_string(member_->map().shards().size()) + ")"});
        }
        member_->router().ForwardToShard(shard, std::move(encoded), [d](Result<std::string> r) {
          if (!r.ok()) return d(service::ClusterError(r.status()));
          d(service::ClusterTxns::Empty{});
        });
      },
      std::move(done));
}

void ClusterFront::ServePlaceShard(std::string_view request,
                                   cluster::ShardServer::Respond respond) {
  v1::PlaceShardRequest parsed;
  if (!parsed.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
    return respond(
        cluster::PeerError{Status::InvalidArgument("a placement request that does not decode")});
  }
  if (runtime_->shard_groups() == nullptr) {  // a member whose shards are not replicated
    return respond(
        cluster::PeerError{Status::PreconditionFailed("this member's shards are not replicated")});
  }
  runtime_->shard_groups()->Place(parsed.shard(),
                                  {parsed.members().begin(), parsed.members().end()},
                                  [respond = std::move(respond)](Status placed) {
                                    if (!placed.ok()) return respond(cluster::PeerError{placed});
                                    respond(cluster::ForwardReply{""});
                                  });
}

void ClusterFront::NodesChanged(const cluster::NodeList& list) {
  std::vector<std::string> gone;
  std::map<std::string, std::string> addresses;
  others_.clear();
  for (const cluster::ListedNode& node : list.nodes()) {
    if (node.name.empty()) continue;  // added, not started yet
    if (node.gone) {
      gone.push_back(node.name);
      continue;
    }
    addresses[node.name] = HostPortOf(node.peer_url);
    if (node.name != options_.self) others_.push_back(node.name);
  }
  runtime_->UpdateNodes(list.Names(), gone, addresses);
  if (member_ != nullptr) AskClientUrls(false);
}

grpc::Status ClusterFront::ServeJoin(const peerpb::JoinRequest& request, peerpb::JoinReply* reply) {
  auto answer = std::make_shared<std::promise<Result<cluster::NodeList>>>();
  std::future<Result<cluster::NodeList>> result = answer->get_future();
  const bool posted = runtime_->Post([this, answer, request](cluster::Member&) {
    nodes_->Make(
        [request](cluster::NodeList* list) {
          return list->Name(request.peer_url(), request.name());
        },
        [answer](Result<cluster::NodeList> r) { answer->set_value(std::move(r)); });
  });
  if (!posted) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the member is stopping");
  if (result.wait_for(options_.member.rpc_timeout) != std::future_status::ready) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the cluster did not answer in time");
  }
  Result<cluster::NodeList> list = result.get();
  if (!list.ok()) {
    const StatusCode code = list.status().code();
    return grpc::Status(
        code == StatusCode::kNotFound ? grpc::StatusCode::NOT_FOUND
        : code == StatusCode::kPreconditionFailed || code == StatusCode::kInvalidArgument
            ? grpc::StatusCode::FAILED_PRECONDITION
            : grpc::StatusCode::UNAVAILABLE,
        std::string(list.status().message()));
  }
  if (options_.log) {
    options_.log("member " + request.name() + " at " + request.peer_url() + " joins the cluster");
  }
  reply->set_node_list(list->Encode());
  return grpc::Status::OK;
}

std::vector<MemberInfo> ClusterFront::MembersOf(const cluster::NodeList& list) const {
  std::vector<MemberInfo> members;
  for (const cluster::ListedNode& node : list.nodes()) {
    if (node.gone) continue;
    MemberInfo info;
    info.id = EtcdMemberId({node.peer_url}, options_.cluster_token);
    info.name = node.name;
    info.peer_url = node.peer_url;
    if (node.name == options_.self) {
      info.client_urls = options_.client_urls;
      members.insert(members.begin(), std::move(info));
      continue;
    }
    if (!node.name.empty()) info.client_urls = ClientUrlsOf(node.name);
    members.push_back(std::move(info));
  }
  return members;
}

std::vector<MemberInfo> ClusterFront::Members() const { return MembersOf(nodes_->Current()); }

uint64_t ClusterFront::ClusterId() const {
  const cluster::NodeList list = nodes_->Current();
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < list.shard_count(); ++i) {
    ids.push_back(EtcdMemberId({list.nodes()[i].peer_url}, options_.cluster_token));
  }
  return EtcdClusterId(std::move(ids));
}

namespace {

service::ServiceError MemberChangeError(const Status& s) {
  using service::ErrorCode;
  switch (s.code()) {
    case StatusCode::kNotFound:
      return {ErrorCode::kNotFound, "etcdserver: member not found"};
    case StatusCode::kPreconditionFailed:
      return {ErrorCode::kFailedPrecondition, "strata: " + std::string(s.message())};
    case StatusCode::kInvalidArgument:
      return {ErrorCode::kInvalidArgument, "etcdserver: given member URLs are invalid"};
    default:
      return {ErrorCode::kUnavailable,
              "strata: the member list was not changed: " + std::string(s.message())};
  }
}

}  // namespace

void ClusterFront::AddMember(std::string peer_url, bool learner, MembersDone done) {
  if (options_.member.replication_factor <= 1) {
    return done(
        service::ServiceError{service::ErrorCode::kUnimplemented,
                              "strata: members join a sharded cluster only with replicated shards "
                              "(--replication-factor 2 or more): one replica a shard cannot move"});
  }
  if (learner) {
    return done(service::ServiceError{
        service::ErrorCode::kInvalidArgument,
        "strata: a sharded cluster's member added holds no replica until one moves onto it "
        "(strata-ctl shard balance): add it without --learner"});
  }
  const bool posted = runtime_->Post([this, peer_url, done](cluster::Member&) {
    auto taken = std::make_shared<bool>(false);  // the URL is a member's already
    nodes_->Make(
        [peer_url, taken](cluster::NodeList* list) {
          *taken = list->NumberOfUrl(peer_url).has_value();
          return list->Add(peer_url);
        },
        [this, done, taken](Result<cluster::NodeList> r) {
          if (!r.ok() && *taken) {
            return done(service::ServiceError{service::ErrorCode::kFailedPrecondition,
                                              "etcdserver: Peer URLs already exists"});
          }
          if (!r.ok()) return done(MemberChangeError(r.status()));
          done(MembersOf(*r));
        });
  });
  if (!posted) done(service::ServiceError{service::ErrorCode::kUnavailable, "strata: stopping"});
}

void ClusterFront::RemoveMember(uint64_t id, MembersDone done) {
  if (options_.member.replication_factor <= 1) {
    return done(
        service::ServiceError{service::ErrorCode::kUnimplemented,
                              "strata: members leave a sharded cluster only with replicated shards "
                              "(--replication-factor 2 or more): one replica a shard cannot move"});
  }
  const bool posted = runtime_->Post([this, id, done](cluster::Member&) {
    const cluster::NodeList list = nodes_->Current();
    std::optional<size_t> number;
    for (size_t i = 0; i < list.nodes().size(); ++i) {
      const cluster::ListedNode& node = list.nodes()[i];
      if (!node.gone && EtcdMemberId({node.peer_url}, options_.cluster_token) == id) number = i;
    }
    if (!number) return done(MemberChangeError(Status::NotFound("")));
    const std::string name = list.nodes()[*number].name;
    // It leaves once no shard's group has it, or places it (as this
    // member knows the groups: their leaders' reports, a second old).
    std::string held;
    for (const cluster::ShardGroupView& group : runtime_->shard_groups()->Groups()) {
      for (const auto* nodes : {&group.voters, &group.learners, &group.placement}) {
        if (!name.empty() && std::find(nodes->begin(), nodes->end(), name) != nodes->end()) {
          held += (held.empty() ? "" : ", ") + std::to_string(group.shard);
          break;
        }
      }
    }
    if (!held.empty()) {
      return done(service::ServiceError{service::ErrorCode::kFailedPrecondition,
                                        "strata: member " + name +
                                            " still holds replicas of shards " + held +
                                            " (strata-ctl shard drain " + name + " first)"});
    }
    nodes_->Make([number](cluster::NodeList* l) { return l->Remove(*number); },
                 [this, done](Result<cluster::NodeList> r) {
                   if (!r.ok()) return done(MemberChangeError(r.status()));
                   done(MembersOf(*r));
                 });
  });
  if (!posted) done(service::ServiceError{service::ErrorCode::kUnavailable, "strata: stopping"});
}

std::unique_ptr<grpc::CallbackGenericService> MakeNotServedOverClusterService() {
  return MakeNotServedService(
      "a strata cluster (over a cluster, strata serves KV, Watch, Lease, Auth, Cluster, "
      "Maintenance and strata.v1; see docs/CLUSTER.md)");
}

}  // namespace strata::server
