// EtcdServer: strata on the network, speaking etcd's v3 gRPC API.
//
// It owns the store (durable in a directory, or in memory), the service
// layer over it (KvService, LeaseTable, WatchHub, CommitPipeline) and the
// gRPC server whose services translate protobuf to the service's typed
// requests. gRPC's callback threads never wait on a disk: writes are
// acknowledged from the pipeline's thread once group commit made them
// durable; lease journal writes run on the lease table's worker.
#ifndef STRATA_SERVER_ETCD_SERVER_H_
#define STRATA_SERVER_ETCD_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ops/log.h"
#include "server/client_tls.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::server {

// One client port: host:port (the tool parses etcd's URL flags into them),
// served with TLS for an https:// URL.
struct ListenAddress {
  std::string host_port;
  bool tls = false;
};

// One member as etcd's --initial-cluster names it.
struct ClusterMemberAddress {
  std::string name;
  std::string peer_url;   // as given (http://host:port)
  std::string host_port;  // where its peer port listens
};

struct ServerOptions {
  std::string name = "default";
  // Where the store lives; empty with in_memory = true for an ephemeral one.
  std::string data_dir;
  bool in_memory = false;
  std::vector<ListenAddress> listen = {{"127.0.0.1:2379", false}};
  // The TLS of the ports with tls set (etcd's --cert-file and friends).
  ClientTlsOptions client_tls;
  // host:port pairs of the operator's HTTP ports (etcd's
  // --listen-metrics-urls): /metrics, /health, /livez, /readyz.
  std::vector<std::string> metrics_listen;
  // Where the server's own lines go (recovery progress, health changes,
  // refused requests worth an operator's attention); null: nowhere. It
  // must outlive the server.
  ops::Log* log = nullptr;
  std::vector<std::string> advertise_client_urls = {"http://127.0.0.1:2379"};
  std::vector<std::string> peer_urls = {"http://localhost:2380"};
  // etcd's --initial-cluster when it names other members: every member,
  // this one (`name`) included. Empty: a single node. With members, the
  // server is one node of a strata cluster (server/cluster_front.h): it
  // listens for its peers on listen_peer and serves the key-value API over
  // the whole cluster.
  std::vector<ClusterMemberAddress> cluster_members;
  std::string listen_peer = "127.0.0.1:2380";
  // With cluster_members: the members replicate the whole key space (one
  // Raft group, as etcd; server/replicated_front.h) instead of sharding it.
  bool replicated = false;
  // Without `replicated` (a sharded cluster): each shard a Raft group of
  // this many members (capped at the members there are), so a member down
  // takes no keys with it; 1: each shard on its member alone; 0: not given,
  // which server/shard_layout.h decides (3, what the data directory
  // records, 1 in memory). Raft's timing is heartbeat_interval_ms and
  // election_timeout_ms below; its log lives under data_dir.
  uint32_t shard_replicas = 0;
  // With a factor above 1, a first start from a backup (--restore): the
  // snapshot every first replica of a shard starts from, and the revision
  // (0: the snapshot's). server/shard_restore.h.
  std::string shard_restore_file;
  int64_t shard_restore_revision = 0;
  // etcd's --initial-cluster-state existing: a replicated member added to
  // a running cluster (etcdctl member add), which learns its members from
  // the leader.
  bool join_existing = false;
  // A replicated cluster started from a backup (--restore): a node
  // snapshot's bytes, the state every first member's group starts from.
  std::string replicated_initial_state;
  // etcd's --snapshot-count: entries applied between two snapshots of a
  // replicated member's state (0: the default, 10,000).
  uint64_t snapshot_count = 0;
  // etcd's --heartbeat-interval and --election-timeout, for the replicated
  // mode: Raft ticks every heartbeat interval; a follower campaigns after
  // election_timeout_ms / heartbeat_interval_ms ticks of silence (up to
  // twice that, randomized).
  int64_t heartbeat_interval_ms = 100;
  int64_t election_timeout_ms = 1000;
  // Peer TLS (etcd's --peer-cert-file and friends): the peer port serves it
  // and the links present it; unconfigured: plain text.
  ClientTlsOptions peer_tls = {.cert_file = {},
                               .key_file = {},
                               .trusted_ca_file = {},
                               .client_cert_auth = false,
                               .flag_prefix = "peer-"};
  // etcd's --peer-auto-tls: peer TLS with a certificate made at start,
  // nobody's checked (MakePeerAutoTlsCredentials).
  bool peer_auto_tls = false;
  // Faults on the links to the other members, for tests: the rules of
  // PeerFaults (server/peer_faults.h), from STRATA_PEER_FAULTS. Empty: none.
  std::string peer_faults;
  // A sharded cluster's member that must not go on: removed from it
  // (etcdctl member remove) while running, or numbered otherwise by the
  // cluster than by itself. Called once, saying why (from the member's
  // loop: it must not block), so that the process stops, as a removed etcd
  // member does. Null: it logs why and goes on.
  std::function<void(const std::string& why)> stop_member;
  // Member and cluster ids are derived from the peer URLs and this token
  // exactly as etcd derives them (so tools that pin them agree).
  std::string initial_cluster_token = "etcd-cluster";
  // etcd's limits and their defaults.
  size_t max_request_bytes = 1536 * 1024;
  size_t max_txn_ops = 128;
  // etcd's --quota-backend-bytes (0: 2 GiB): past it the NOSPACE alarm is
  // raised and writes that add data are refused (service/space_quota.h).
  uint64_t quota_backend_bytes = 0;
  // Durability of the store (see strata/store.h).
  // kAlways: the log syncs as soon as a record waits, and the writes that
  // arrive during one fsync share the next: group commit without a delay,
  // which a server with many clients fills on its own.
  SyncMode sync = SyncMode::kAlways;
  int64_t sync_delay_us = 1000;
  uint64_t checkpoint_log_bytes = uint64_t{256} << 20;
  // etcd's --auto-compaction-mode / --auto-compaction-retention (parsed by
  // service::ParseAutoCompaction); off by default, as etcd's.
  std::string auto_compaction_mode = "periodic";
  std::string auto_compaction_retention = "0";
  // A watcher at most this many revisions behind holds compaction back
  // (physically) until it has read what it needs.
  int64_t watch_max_lag = 100000;
  // strata.v1: an interactive transaction idle this long expires.
  int64_t txn_timeout_ms = 10000;
  // How often a watch created with progress_notify hears from an idle server.
  int64_t watch_progress_notify_interval_ms = 10 * 60 * 1000;
  // The version Maintenance.Status reports (clients gate features on it).
  std::string etcd_version = "3.4.23";
};

class EtcdServer final {
 public:
  // Opens (recovering) the store and starts listening; the ports are bound
  // when it returns. kUnavailable if a port or the directory is taken.
  static Result<std::unique_ptr<EtcdServer>> Start(const ServerOptions& options);
  ~EtcdServer();  // stops serving, then closes the store

  // The ports actually bound (a listen address with port 0 picks one).
  const std::vector<int>& bound_ports() const;
  const std::vector<int>& metrics_ports() const;
  uint64_t member_id() const;
  uint64_t cluster_id() const;
  // Blocks until Shutdown() (from another thread or a signal handler's
  // helper thread).
  void Wait();
  void Shutdown();

  class Impl;

 private:
  explicit EtcdServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_ETCD_SERVER_H_
