// EtcdServer::Impl: what the server's gRPC services share (the store, the
// service layer over it, the member's identity). Private to server/.
#ifndef STRATA_SERVER_SERVER_STATE_H_
#define STRATA_SERVER_SERVER_STATE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "base/mutex.h"
#include "ops/http_listener.h"
#include "rpc.pb.h"
#include "server/cluster_auth.h"
#include "server/cluster_front.h"
#include "server/etcd_server.h"
#include "server/grpc_metrics.h"
#include "server/proto_convert.h"
#include "server/replicated_front.h"
#include "server/request_auth.h"
#include "service/auth_store.h"
#include "service/auto_compactor.h"
#include "service/commit_pipeline.h"
#include "service/interactive_txn.h"
#include "service/kv_service.h"
#include "service/lease_journal.h"
#include "service/lease_table.h"
#include "service/revision_times.h"
#include "service/space_quota.h"
#include "service/watch_hub.h"
#include "strata/mvcc_store.h"
#include "strata/store.h"

namespace strata::server {

class EtcdServer::Impl {
 public:
  // The store's log thread may call on_durable until the store is gone.
  ~Impl() { cluster_wake = nullptr; }

  ServerOptions options;
  std::unique_ptr<Store> durable;        // with a data directory
  std::unique_ptr<MvccStore> ephemeral;  // --in-memory
  MvccStore* store = nullptr;
  // As one member of a cluster: the member, and etcd's KV, Watch and Lease
  // over the cluster (the gRPC services route to it). The one-node services
  // below then run over `unserved`, an empty store no client reaches (KV,
  // Watch and Lease go to the cluster; the others are not registered), so
  // that what reports on them keeps working; the store above holds this
  // node's shard.
  std::unique_ptr<ClusterFront> cluster;
  // Or as one member of a replicated key space (--cluster-mode
  // replicated): every member holds all of it.
  std::unique_ptr<ReplicatedFront> replicated;
  // Where KV calls go: the cluster, the replicated key space, or (null)
  // the one-node KvService.
  KvFront* kv_front = nullptr;
  // Where Lease calls go likewise (null: this node's LeaseTable).
  LeaseFront* lease_front = nullptr;
  std::atomic<ClusterFront*> cluster_wake{nullptr};
  std::unique_ptr<MvccStore> unserved;
  std::unique_ptr<grpc::CallbackGenericService> not_served;
  std::unique_ptr<service::StoreLeaseJournal> lease_journal;
  std::unique_ptr<service::CommitPipeline> pipeline;
  std::unique_ptr<service::LeaseTable> leases;
  std::unique_ptr<service::SpaceQuota> quota;
  std::unique_ptr<service::KvService> kv;
  std::unique_ptr<service::InteractiveTxns> txns;
  std::unique_ptr<service::WatchHub> hub;
  // What the Watch service serves from: the hub, or a cluster's watches,
  // or a replicated member's.
  service::Watches* watches = nullptr;
  // The hub whose figures /metrics and Status show: the one-node hub, or a
  // replicated member's (a cluster's watches have figures of their own).
  const service::WatchHub* serving_hub = nullptr;
  std::unique_ptr<service::AutoCompactor> compactor;
  // When revisions were committed: the low-water mark's age.
  std::unique_ptr<service::RevisionTimes> revision_times;
  // Users, roles and permissions (etcd's Auth); kept in data/auth.
  std::unique_ptr<service::StoreAuthJournal> auth_journal;
  // In a cluster: the state kept in the cluster (auth_journal holds the
  // member's copy).
  std::unique_ptr<ClusterAuthJournal> cluster_auth_journal;
  std::unique_ptr<service::AuthStore> auth;
  std::unique_ptr<RequestAuth> request_auth;
  std::atomic<service::CommitPipeline*> wake_target{nullptr};
  HeaderIdentity identity;
  std::vector<int> ports;

  std::unique_ptr<grpc::Service> kv_service, watch_service, lease_service, maintenance_service,
      cluster_service, auth_service, strata_service;
  std::unique_ptr<grpc::Server> grpc_server;

  // The operator's HTTP ports (--listen-metrics-urls) and what they report.
  std::unique_ptr<GrpcMetrics> grpc_metrics = std::make_unique<GrpcMetrics>();
  std::vector<std::unique_ptr<ops::HttpListener>> http;
  std::vector<int> metrics_ports;
  std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();
  mutable Mutex health_mu;
  uint64_t health_successes STRATA_GUARDED_BY(health_mu) = 0;
  uint64_t health_failures STRATA_GUARDED_BY(health_mu) = 0;
  std::string last_health_reason STRATA_GUARDED_BY(health_mu);  // logged once per change
  // The versions-per-key histogram walks every key: /metrics recomputes it
  // at most every 30 s.
  mutable Mutex versions_per_key_mu;
  mutable std::vector<uint64_t> versions_per_key STRATA_GUARDED_BY(versions_per_key_mu);
  mutable std::chrono::steady_clock::time_point versions_per_key_at
      STRATA_GUARDED_BY(versions_per_key_mu){};

  Mutex shutdown_mu;
  CondVar shutdown_cv;
  bool shutdown STRATA_GUARDED_BY(shutdown_mu) = false;

  // The engine /metrics' figures and the dashboard's key timeline read:
  // this node's store, or a replicated member's own copy (kept alive while
  // read: a restore replaces it).
  std::shared_ptr<const MvccStore> KeySpaceEngine() const {
    if (replicated) return replicated->Engine();
    return std::shared_ptr<const MvccStore>(std::shared_ptr<void>(), store);  // not owned
  }
  // What a header says outside a request: the newest revision, or in a
  // cluster this member's clock.
  int64_t CurrentRevision() const {
    return kv_front ? kv_front->current_revision() : kv->current_revision();
  }
  void Header(int64_t revision, etcdserverpb::ResponseHeader* h) const {
    ToProto(identity, service::ResponseHeader{revision}, h);
  }
  // Top-level replies carry the member's identity (nested ones do not).
  template <typename P>
  void FillIdentity(P* p) const {
    auto* h = p->mutable_header();
    h->set_cluster_id(identity.cluster_id);
    h->set_member_id(identity.member_id);
    h->set_raft_term(identity.raft_term);
  }
  // The reactor of a unary call of `method` ("/etcdserverpb.KV/Range"),
  // which counts the call.
  MeteredReactor* Reactor(const char* method) const {
    return new MeteredReactor(grpc_metrics->Find(method, GrpcMetrics::Type::kUnary));
  }
  // etcd's learner serves Status and serializable Ranges only, and no
  // stream: whether this member is a learner now.
  bool IsLearner() const { return replicated && replicated->learner(); }
  // Finishes `reactor` with etcd's refusal ("etcdserver: rpc not supported
  // for learner", Unavailable: etcd's clients try another member) if this
  // member is a learner; true then.
  bool RefuseOnLearner(grpc::ServerUnaryReactor* reactor) const {
    if (!IsLearner()) return false;
    reactor->Finish(ToGrpc(service::etcd_errors::NotSupportedForLearner()));
    return true;
  }
  // Runs `then` with the verdict on the keys attached to `check`'s leases
  // (RequestAuth::LeaseCheck): at once when there are none, else once
  // they are read (over a cluster, on the loop thread).
  void CheckLeaseKeys(RequestAuth::LeaseCheck check, std::function<void(RequestAuth::Denied)> then);
  bool TooLarge(const google::protobuf::Message& m) const {
    return m.ByteSizeLong() > options.max_request_bytes;
  }
};

}  // namespace strata::server

#endif  // STRATA_SERVER_SERVER_STATE_H_
