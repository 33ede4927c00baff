// strata-server: the strata store on the network, speaking etcd's v3 gRPC
// API (etcdctl and etcd's client libraries work unchanged). Flags use etcd's
// names where etcd has the same concept; `strata-server --help` lists them.
#include <absl/synchronization/mutex.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "ops/log.h"
#include "ops/systemd_notify.h"
#include "server/etcd_server.h"
#include "server/replicated_auth.h"
#include "server/shard_layout.h"
#include "service/cluster_kv.h"
#include "service/snapshot.h"
#include "storage/file_util.h"

namespace {

// The server's log, once --log-level/--log-format are read; text before.
strata::ops::Log* the_log = nullptr;

void Log(strata::ops::LogLevel level, std::string_view line) {
  static strata::ops::Log fallback;
  (the_log ? the_log : &fallback)->Write(level, "server", line);
}
void LogLine(std::string_view line) { Log(strata::ops::LogLevel::kInfo, line); }
void LogError(std::string_view line) { Log(strata::ops::LogLevel::kError, line); }

// etcd's URL flags are comma-separated lists of scheme://host:port; an
// https:// client URL is served with TLS (--cert-file, --key-file).
struct ParsedUrl {
  std::string url;
  std::string host_port;
  bool tls = false;
};

bool ParseUrls(const std::string& list, std::vector<ParsedUrl>* out, std::string* error) {
  out->clear();
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string url = list.substr(start, end - start);
    start = end + 1;
    if (url.empty()) continue;
    ParsedUrl parsed;
    size_t scheme = 0;
    if (url.rfind("http://", 0) == 0) {
      scheme = 7;
    } else if (url.rfind("https://", 0) == 0) {
      scheme = 8;
      parsed.tls = true;
    } else {
      *error = "'" + url + "': an http:// or https:// URL is needed";
      return false;
    }
    parsed.host_port = url.substr(scheme);
    while (!parsed.host_port.empty() && parsed.host_port.back() == '/') {
      parsed.host_port.pop_back();
    }
    if (parsed.host_port.find(':') == std::string::npos) {
      *error = "'" + url + "': a port is needed";
      return false;
    }
    parsed.url = url;
    out->push_back(std::move(parsed));
  }
  if (out->empty()) {
    *error = "no URL given";
    return false;
  }
  return true;
}

std::vector<std::string> UrlsOf(const std::vector<ParsedUrl>& parsed) {
  std::vector<std::string> urls;
  for (const auto& p : parsed) urls.push_back(p.url);
  return urls;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's
  // deadlock detection on: each lock gRPC takes or frees then updates one
  // process-wide graph of locks under a global spin lock (perf: about 2 %
  // of a replicated member's CPU under put load, most of it on the loop
  // thread as it finishes calls). Abseil's release builds have it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{
      "strata-server: an MVCC key-value store serving etcd's v3 gRPC API, alone or as one\n"
      "member of a sharded cluster (--initial-cluster naming several members).\n"
      "Durable by default: give --data-dir, or --in-memory for an ephemeral server."};
  app.set_version_flag("--version", std::string("strata-server ") + STRATA_VERSION);
  strata::server::ServerOptions o;
  app.add_option("--name", o.name, "this member's name (etcd's --name)")->capture_default_str();
  std::string data_dir;
  app.add_option("--data-dir", data_dir,
                 "directory of the store (created if missing, recovered at start); default: "
                 "<name>.etcd in the working directory, as etcd");
  app.add_flag("--in-memory", o.in_memory, "keep everything in memory: nothing survives a stop");
  std::string restore_file;
  int64_t restore_revision = 0;
  app.add_option("--restore", restore_file,
                 "restore this snapshot (strata-ctl or etcdctl snapshot save) into --data-dir "
                 "before starting (a sharded cluster's member with replicated shards: each of "
                 "its shards' groups starts from it); refused if the directory already holds a "
                 "store");
  app.add_option("--restore-revision", restore_revision,
                 "with --restore: the store as it was at this revision (at or above the "
                 "snapshot's compaction)");
  std::string listen_client = "http://127.0.0.1:2379";
  app.add_option("--listen-client-urls", listen_client,
                 "comma-separated URLs to serve clients on, http:// or https:// (TLS, with "
                 "--cert-file and --key-file); port 0: any free port")
      ->capture_default_str();
  app.add_option("--cert-file", o.client_tls.cert_file,
                 "the server's TLS certificate (PEM) for https:// client URLs");
  app.add_option("--key-file", o.client_tls.key_file, "the private key (PEM) of --cert-file");
  app.add_option("--trusted-ca-file", o.client_tls.trusted_ca_file,
                 "CA certificates (PEM) that sign the client certificates accepted");
  app.add_flag("--client-cert-auth", o.client_tls.client_cert_auth,
               "refuse https:// clients without a certificate signed by --trusted-ca-file");
  std::string listen_metrics;
  app.add_option("--listen-metrics-urls", listen_metrics,
                 "comma-separated http:// URLs serving /metrics (Prometheus), /health, /livez "
                 "and /readyz; default: none, as etcd");
  std::string advertise_client;
  app.add_option("--advertise-client-urls", advertise_client,
                 "client URLs this member reports in MemberList; default: the listen URLs");
  std::string listen_peer = "http://localhost:2380";
  app.add_option("--listen-peer-urls", listen_peer,
                 "where this member listens for the other members of its cluster (http:// only; "
                 "the first URL); unused by a single node")
      ->capture_default_str();
  std::string advertise_peer;
  app.add_option("--initial-advertise-peer-urls", advertise_peer,
                 "peer URLs this member reports in MemberList; default: --listen-peer-urls");
  std::string initial_cluster, initial_cluster_state;
  app.add_option("--initial-cluster", initial_cluster,
                 "name=peer-URL,...: every member of the cluster, one peer URL each, this one "
                 "(--name) included; with other members the server is one node of a sharded "
                 "strata cluster (docs/CLUSTER.md). Member ids are derived as etcd's");
  app.add_option("--initial-cluster-token", o.initial_cluster_token,
                 "the cluster's token, part of the member and cluster ids as in etcd")
      ->capture_default_str();
  app.add_option("--initial-cluster-state", initial_cluster_state,
                 "'new' (the default); 'existing': a replicated member added to a running "
                 "cluster (etcdctl member add), which learns the members from its leader")
      ->check(CLI::IsMember({"", "new", "existing"}));
  bool initial_corrupt_check = false;
  app.add_flag("--peer-auto-tls", o.peer_auto_tls,
               "peer TLS with a certificate made at start: encrypted, but no member's "
               "certificate is checked (as etcd's); --peer-cert-file and friends authenticate");
  app.add_option("--peer-cert-file", o.peer_tls.cert_file,
                 "this member's certificate (PEM) for its peer port and its links to the other "
                 "members (https:// peer URLs)");
  app.add_option("--peer-key-file", o.peer_tls.key_file, "the private key of --peer-cert-file");
  app.add_option("--peer-trusted-ca-file", o.peer_tls.trusted_ca_file,
                 "the CA the other members' certificates are checked with");
  app.add_flag("--peer-client-cert-auth", o.peer_tls.client_cert_auth,
               "refuse a member that connects without a certificate signed by "
               "--peer-trusted-ca-file");
  app.add_flag("--experimental-initial-corrupt-check", initial_corrupt_check,
               "accepted for etcd compatibility; strata always checks every record's checksum "
               "when it recovers");
  bool strict_reconfig_check = true;
  app.add_flag("--strict-reconfig-check", strict_reconfig_check,
               "accepted for etcd compatibility; a strata cluster takes no membership changes "
               "yet");
  app.add_option("--snapshot-count", o.snapshot_count,
                 "with replicated shards or --cluster-mode replicated: entries applied between "
                 "two snapshots of a replica's state at least (0: 100000, as etcd 3.4); "
                 "otherwise accepted for etcd compatibility (strata checkpoints by log size, "
                 "--checkpoint-log-mb)");
  app.add_option("--heartbeat-interval", o.heartbeat_interval_ms,
                 "with --cluster-mode replicated: ms between a leader's heartbeats, Raft's unit "
                 "of time (etcd's flag)")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  app.add_option("--election-timeout", o.election_timeout_ms,
                 "with --cluster-mode replicated: ms a follower waits to hear from its leader "
                 "before it campaigns (randomized up to twice that; etcd's flag); at least 5 "
                 "heartbeat intervals")
      ->check(CLI::Range(5, 600000))
      ->capture_default_str();
  std::string cluster_mode = "sharded";
  app.add_option("--cluster-mode", cluster_mode,
                 "with --initial-cluster: 'sharded' (each member owns a part of the keys, "
                 "docs/CLUSTER.md) or 'replicated' (every member holds all of them in one Raft "
                 "group, as etcd; KV only for now, docs/REPLICATION.md)")
      ->check(CLI::IsMember({"sharded", "replicated"}))
      ->capture_default_str();
  app.add_option("--replication-factor", o.shard_replicas,
                 "with --cluster-mode sharded: each shard a Raft group of this many members "
                 "(at most the members there are), so a member down takes no keys with it "
                 "(docs/REPLICATION.md); 1: each shard on its member alone. Default: 3; a "
                 "member restarted keeps the factor its data directory records")
      ->check(CLI::Range(1, 16));
  app.add_option("--max-request-bytes", o.max_request_bytes,
                 "largest request accepted (etcd's default 1.5 MiB); larger ones get "
                 "'etcdserver: request is too large'")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1024}, size_t{64} << 20));
  app.add_option("--max-txn-ops", o.max_txn_ops,
                 "most operations in one Txn branch ('etcdserver: too many operations in txn "
                 "request')")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  app.add_option("--quota-backend-bytes", o.quota_backend_bytes,
                 "raise the NOSPACE alarm and refuse writes that add data once the store's "
                 "memory reaches this many bytes (0: etcd's default, 2 GiB)")
      ->capture_default_str();
  std::string sync = "always";
  app.add_option("--sync", sync,
                 "when a write is durable before its reply: 'always' (fsync as soon as a write "
                 "waits; writes arriving during an fsync share the next one), 'batch' (also wait "
                 "up to --sync-delay-us for more), 'none' (OS only: survives a process crash, "
                 "not a power loss)")
      ->capture_default_str()
      ->check(CLI::IsMember({"always", "batch", "none"}));
  app.add_option("--sync-delay-us", o.sync_delay_us,
                 "with --sync batch: the longest a write waits for others to share its fsync")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1'000'000}));
  uint64_t checkpoint_log_mb = 256;
  app.add_option("--checkpoint-log-mb", checkpoint_log_mb,
                 "write a checkpoint in the background once the log grew this much (0: never)")
      ->capture_default_str();
  app.add_option("--experimental-watch-progress-notify-interval-ms",
                 o.watch_progress_notify_interval_ms,
                 "how often a watch with progress_notify hears from an idle server")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{10}, int64_t{86'400'000}));
  app.add_option("--auto-compaction-mode", o.auto_compaction_mode,
                 "'periodic' (keep --auto-compaction-retention of time) or 'revision' (keep "
                 "that many revisions)")
      ->capture_default_str()
      ->check(CLI::IsMember({"periodic", "revision"}));
  app.add_option("--auto-compaction-retention", o.auto_compaction_retention,
                 "periodic: a duration (1h, 30m, 90s; a plain number is hours); revision: a "
                 "number of revisions; 0: never compact on its own")
      ->capture_default_str();
  app.add_option("--watch-max-lag", o.watch_max_lag,
                 "a watcher at most this many revisions behind holds compaction back until it "
                 "has read what it needs (so compaction never breaks a watcher that keeps up)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  app.add_option("--txn-timeout-ms", o.txn_timeout_ms,
                 "strata.v1: an interactive transaction idle this long expires")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{86'400'000}));
  app.add_option("--etcd-version", o.etcd_version,
                 "the version Maintenance.Status reports (clients such as Kubernetes gate "
                 "features on it)")
      ->capture_default_str();
  std::string log_level = "info", log_format = "text";
  app.add_option("--log-level", log_level, "the least important lines written")
      ->capture_default_str()
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format,
                 "'text' (strata-server: ...) or 'json' (a JSON object a line: level, ts, "
                 "component, msg)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  CLI11_PARSE(app, argc, argv);

  strata::ops::LogOptions log_options;
  log_options.level = *strata::ops::ParseLogLevel(log_level);
  log_options.json = log_format == "json";
  static strata::ops::Log log(log_options);
  the_log = &log;
  o.log = &log;

  std::string error;
  std::vector<ParsedUrl> parsed;
  if (!ParseUrls(listen_client, &parsed, &error)) {
    LogLine("--listen-client-urls: " + error);
    return 2;
  }
  o.listen.clear();
  bool any_tls = false;
  for (const auto& p : parsed) {
    o.listen.push_back({p.host_port, p.tls});
    any_tls = any_tls || p.tls;
  }
  if (o.client_tls.configured() && !any_tls) {
    LogLine(
        "--cert-file/--key-file are given but no --listen-client-urls is https://: "
        "clients are served without TLS");
  }
  if (!listen_metrics.empty()) {
    if (!ParseUrls(listen_metrics, &parsed, &error)) {
      LogLine("--listen-metrics-urls: " + error);
      return 2;
    }
    for (const auto& p : parsed) {
      if (p.tls) {
        LogLine("--listen-metrics-urls: '" + p.url + "': only http:// is served there");
        return 2;
      }
      o.metrics_listen.push_back(p.host_port);
    }
  }
  if (advertise_client.empty()) advertise_client = listen_client;
  if (!ParseUrls(advertise_client, &parsed, &error)) {
    LogLine("--advertise-client-urls: " + error);
    return 2;
  }
  o.advertise_client_urls = UrlsOf(parsed);
  if (advertise_peer.empty()) advertise_peer = listen_peer;
  if (!ParseUrls(advertise_peer, &parsed, &error)) {
    LogLine("--initial-advertise-peer-urls: " + error);
    return 2;
  }
  o.peer_urls = UrlsOf(parsed);
  // The member's own entries of --initial-cluster are its peer URLs, as in
  // etcd (they decide its id); with other members, this is one node of a
  // cluster.
  std::vector<std::string> own_peers;
  std::vector<strata::server::ClusterMemberAddress> members;
  for (size_t start = 0; start < initial_cluster.size();) {
    size_t end = initial_cluster.find(',', start);
    if (end == std::string::npos) end = initial_cluster.size();
    const std::string entry = initial_cluster.substr(start, end - start);
    start = end + 1;
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      LogLine("--initial-cluster: '" + entry + "' is not name=peer-URL");
      return 2;
    }
    const std::string member = entry.substr(0, eq), url = entry.substr(eq + 1);
    if (member == o.name) own_peers.push_back(url);
    for (const auto& m : members) {
      if (m.name == member) {
        LogLine("--initial-cluster names member " + member +
                " twice: strata takes one peer URL per member");
        return 2;
      }
    }
    if (!ParseUrls(url, &parsed, &error) || parsed.size() != 1) {
      LogLine("--initial-cluster: member " + member + ": " +
              (error.empty() ? "one peer URL is needed" : error));
      return 2;
    }
    members.push_back({member, url, parsed[0].host_port});
  }
  if (members.size() > 1) {
    if (own_peers.empty()) {
      LogLine("--initial-cluster does not name this member (--name " + o.name + ")");
      return 2;
    }
    if (!ParseUrls(listen_peer, &parsed, &error) || parsed.empty()) {
      LogLine("--listen-peer-urls: " + (error.empty() ? "a URL is needed" : error));
      return 2;
    }
    if (o.peer_auto_tls && (o.peer_tls.configured() || o.peer_tls.client_cert_auth)) {
      LogLine(
          "--peer-auto-tls makes its own certificate and checks nobody's: give it, or "
          "--peer-cert-file and friends, not both");
      return 2;
    }
    // Peer TLS all or nothing: https:// peer URLs with the peer certificate.
    const bool tls = o.peer_tls.configured() || o.peer_auto_tls;
    for (const auto& m : members) {
      const bool https = m.peer_url.rfind("https://", 0) == 0;
      if (https != tls || parsed[0].tls != tls) {
        LogLine(tls ? "peer TLS is on (--peer-cert-file or --peer-auto-tls): every peer URL "
                      "(--initial-cluster, --listen-peer-urls) must be https://"
                    : "https:// peer URLs need --peer-cert-file, --peer-key-file and "
                      "--peer-trusted-ca-file (peer TLS), or --peer-auto-tls; or give http:// "
                      "peer URLs, on a network only the cluster's members reach");
        return 2;
      }
    }
    o.listen_peer = parsed[0].host_port;
    o.cluster_members = members;
    o.replicated = cluster_mode == "replicated";
    o.join_existing = initial_cluster_state == "existing";
    // Removed from a sharded cluster while running: stop, as etcd does
    // (the signal thread below takes it: every thread blocks SIGTERM).
    o.stop_member = [](const std::string& why) {
      LogError(why + ": stopping");
      ::kill(::getpid(), SIGTERM);
    };
    if (o.join_existing && !o.replicated && o.shard_replicas == 1) {
      LogLine(
          "--initial-cluster-state existing: a sharded cluster takes a new member only with "
          "replicated shards (--replication-factor 2 or more: one replica a shard cannot "
          "move), after etcdctl member add; a replicated one too (--cluster-mode replicated)");
      return 2;
    }
    if (o.election_timeout_ms < 5 * o.heartbeat_interval_ms) {
      LogLine("--election-timeout[" + std::to_string(o.election_timeout_ms) +
              "ms] should be at least as 5 times as --heartbeat-interval[" +
              std::to_string(o.heartbeat_interval_ms) + "ms]");
      return 2;
    }
    if (o.replicated && o.shard_replicas > 1) {
      LogLine(
          "--replication-factor is for --cluster-mode sharded (a replicated cluster's every "
          "member holds every key already)");
      return 2;
    }
    if (o.replicated && o.in_memory) {
      LogLine(
          "--cluster-mode replicated keeps each member's Raft log on disk: give a "
          "--data-dir, not --in-memory");
      return 2;
    }
  } else if (cluster_mode == "replicated") {
    LogLine("--cluster-mode replicated needs --initial-cluster naming every member");
    return 2;
  } else if (o.shard_replicas > 1) {
    LogLine(
        "--replication-factor is for the shards of a cluster: give --initial-cluster naming "
        "every member");
    return 2;
  }
  // A sharded cluster's member restored with replicated shards: its shards'
  // groups start from the snapshot (server/shard_restore.h); with one
  // replica a shard, the member's keys are restored into its store below.
  const bool restore_shards =
      !restore_file.empty() && !o.cluster_members.empty() && !o.replicated &&
      std::min<size_t>(
          o.shard_replicas == 0 ? strata::server::kDefaultReplicationFactor : o.shard_replicas,
          o.cluster_members.size()) > 1;
  // Tests only: faults on the peer links (server/peer_faults.h).
  if (const char* faults = std::getenv("STRATA_PEER_FAULTS"); faults != nullptr && *faults) {
    if (o.cluster_members.empty()) {
      LogLine("STRATA_PEER_FAULTS is set, but there are no peers (--initial-cluster)");
      return 2;
    }
    o.peer_faults = faults;
  }
  if (!own_peers.empty()) o.peer_urls = own_peers;
  o.sync = sync == "always" ? strata::SyncMode::kAlways
                            : (sync == "none" ? strata::SyncMode::kNone : strata::SyncMode::kBatch);
  o.checkpoint_log_bytes = checkpoint_log_mb << 20;
  if (!o.in_memory) o.data_dir = data_dir.empty() ? o.name + ".etcd" : data_dir;

  // Signals are taken by one thread with sigwait, so no handler runs inside
  // gRPC's or the store's threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (!restore_file.empty() && o.replicated) {
    // Every first member starts its group from the same snapshot.
    if (restore_revision != 0 || o.join_existing) {
      LogLine(restore_revision != 0
                  ? "--restore-revision does not restore a replicated member yet: restore the "
                    "snapshot into one node with it, and save that one's snapshot"
                  : "--restore starts a new replicated cluster: not with "
                    "--initial-cluster-state existing (a member added learns the state from "
                    "the leader)");
      return 2;
    }
    std::error_code ec;
    if (std::filesystem::exists(o.data_dir + "/raft", ec)) {
      LogLine("--restore: " + o.data_dir + " already holds a member's Raft log");
      return 2;
    }
    auto bytes = strata::storage::ReadWholeFile(restore_file);
    if (!bytes.ok()) {
      LogError("cannot restore: " + std::string(bytes.status().message()));
      return 1;
    }
    // Checked whole here, restored by the member's Raft group.
    auto report = strata::service::CheckNodeSnapshot(*bytes);
    if (!report.ok()) {
      LogError("cannot restore " + restore_file +
               " as a replicated member's state: " + std::string(report.status().message()));
      return 1;
    }
    LogLine("starting the replicated cluster from " + restore_file + ": revision " +
            std::to_string(report.value().revision) + ", " + std::to_string(report.value().keys) +
            " keys" + (report.value().auth_state.empty() ? "" : ", with its users and roles"));
    // The users and roles ride ahead of the key space, as the group's
    // snapshots carry them (server/replicated_auth.h).
    o.replicated_initial_state =
        report.value().auth_state.empty()
            ? std::move(*bytes)
            : strata::server::AuthRecordState::SnapshotWith(report.value().auth_state, *bytes);
  } else if (restore_shards) {
    if (o.in_memory || o.join_existing) {
      LogLine(o.in_memory ? "--restore needs a --data-dir (not --in-memory)"
                          : "--restore starts a new cluster: not with --initial-cluster-state "
                            "existing (a member added takes its replicas from the others)");
      return 2;
    }
    // (Its groups' log: a first start that failed before it, a damaged
    // file say, may be made again.)
    std::error_code ec;
    if (std::filesystem::exists(strata::server::ShardRaftDir(o.data_dir), ec)) {
      LogLine("--restore: " + o.data_dir +
              " already holds a member's data; restore into a new "
              "data directory");
      return 2;
    }
    LogLine("restoring " + restore_file + " into this member's replicated shards");
    o.shard_restore_file = restore_file;
    o.shard_restore_revision = restore_revision;
  } else if (!restore_file.empty()) {
    if (o.in_memory) {
      LogLine("--restore needs a --data-dir (not --in-memory)");
      return 2;
    }
    strata::service::RestoreOptions restore;
    restore.as_of_revision = restore_revision;
    if (!o.cluster_members.empty()) {
      // A member of a cluster restores the keys its shard owns.
      std::vector<std::string> names;
      for (const auto& m : o.cluster_members) names.push_back(m.name);
      strata::Status member = strata::service::ClusterKv::RestoreAsMember(names, o.name, &restore);
      if (!member.ok()) {
        LogLine(std::string(member.message()));
        return 2;
      }
    } else {
      strata::service::ClusterKv::RestoreAsNode(&restore);  // a cluster's snapshot too
    }
    int last_tenth = -1;
    restore.progress = [&](uint64_t done, uint64_t total) {
      const int tenth = total ? static_cast<int>(done * 10 / total) : 10;
      if (tenth == last_tenth) return;
      last_tenth = tenth;
      LogLine("restoring " + restore_file + ": " + std::to_string(tenth * 10) + "% (" +
              std::to_string(done >> 20) + " of " + std::to_string(total >> 20) + " MiB)");
    };
    auto report = strata::service::RestoreSnapshot(restore_file, o.data_dir, restore);
    if (!report.ok()) {
      LogError("cannot restore: " + std::string(report.status().message()));
      return 1;
    }
    const auto& r = report.value();
    LogLine("restored " + restore_file + " into " + o.data_dir + ": revision " +
            std::to_string(r.revision) + ", " + std::to_string(r.keys) + " keys, " +
            std::to_string(r.leases) + " leases, " + std::to_string(r.users) + " users");
  } else if (restore_revision != 0) {
    LogLine("--restore-revision needs --restore");
    return 2;
  }
  LogLine("starting member " + o.name + (o.in_memory ? " in memory" : " in " + o.data_dir));
  auto server = strata::server::EtcdServer::Start(o);
  std::string().swap(o.replicated_initial_state);  // in the member's Raft log now
  if (!server.ok()) {
    LogError("cannot start: " + std::string(server.status().message()));
    return 1;
  }
  auto& s = *server.value();
  char id[32];
  snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(s.member_id()));
  // The lines etcd prints at these points, which etcd's test tooling waits for.
  LogLine(std::string("enabled capabilities for version 3.4 (member ") + id + ")");
  LogLine("published {Name:" + o.name + " ClientURLs:[" + advertise_client +
          "]} to cluster; ready to serve client requests");
  for (size_t i = 0; i < o.listen.size(); ++i) {
    LogLine(std::string(o.listen[i].tls ? "serving TLS" : "serving") + " client requests on " +
            o.listen[i].host_port + " (port " + std::to_string(s.bound_ports()[i]) + ")");
  }
  for (size_t i = 0; i < o.metrics_listen.size(); ++i) {
    LogLine("serving /metrics, /health, /livez, /readyz and /dashboard on " + o.metrics_listen[i] +
            " (metrics port " + std::to_string(s.metrics_ports()[i]) + ")");
  }

  // Under systemd (Type=notify): started is now, not at exec.
  strata::ops::NotifySystemd("READY=1");

  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    LogLine(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
    strata::ops::NotifySystemd("STOPPING=1");
    s.Shutdown();
  });
  s.Wait();
  server.value().reset();
  LogLine("stopped");
  signal_thread.join();
  return 0;
}
