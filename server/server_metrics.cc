#include "server/server_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "ops/prometheus_text.h"
#include "server/grpc_metrics.h"
#include "server/server_state.h"

namespace strata::server {
namespace {

using ops::Labels;
using ops::PrometheusText;

void One(PrometheusText& out, const char* kind, const char* name, const char* help, double v,
         const Labels& labels = {}) {
  if (std::string_view(kind) == "counter") {
    out.Counter(name, help);
  } else {
    out.Gauge(name, help);
  }
  out.Sample(v, labels);
}

// The process figures every Prometheus client exports, from /proc.
void ProcessMetrics(PrometheusText& out, std::chrono::system_clock::time_point started) {
  double cpu_seconds = 0, virtual_bytes = 0, resident_bytes = 0;
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    // Fields after the command name (which may hold spaces), from ")".
    std::istringstream in(line.substr(line.rfind(')') + 2));
    std::string f;
    std::vector<std::string> fields;
    while (in >> f) fields.push_back(f);
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    if (fields.size() > 21) {
      cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;  // utime + stime
      virtual_bytes = std::stod(fields[20]);
      resident_bytes = std::stod(fields[21]) * static_cast<double>(sysconf(_SC_PAGESIZE));
    }
  }
  size_t fds = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++fds;
    closedir(d);
    fds = fds >= 3 ? fds - 3 : 0;  // ".", ".." and the directory's own descriptor
  }
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  One(out, "counter", "process_cpu_seconds_total",
      "Total user and system CPU time spent in seconds.", cpu_seconds);
  One(out, "gauge", "process_max_fds", "Maximum number of open file descriptors.",
      static_cast<double>(limit.rlim_cur));
  One(out, "gauge", "process_open_fds", "Number of open file descriptors.",
      static_cast<double>(fds));
  One(out, "gauge", "process_resident_memory_bytes", "Resident memory size in bytes.",
      resident_bytes);
  One(out, "gauge", "process_start_time_seconds",
      "Start time of the process since unix epoch in seconds.",
      std::chrono::duration<double>(started.time_since_epoch()).count());
  One(out, "gauge", "process_virtual_memory_bytes", "Virtual memory size in bytes.", virtual_bytes);
}

std::vector<double> SyncBounds() {
  std::vector<double> b;
  for (size_t i = 0; i < LogHistograms::kSyncBounds; ++i) b.push_back(LogHistograms::SyncBound(i));
  return b;
}

std::vector<double> GroupBounds() {
  std::vector<double> b;
  for (size_t i = 0; i < LogHistograms::kGroupBounds; ++i) {
    b.push_back(static_cast<double>(LogHistograms::GroupBound(i)));
  }
  return b;
}

template <size_t N>
std::vector<uint64_t> Counts(const std::array<uint64_t, N>& a) {
  return std::vector<uint64_t>(a.begin(), a.end());
}

// What a member of a cluster adds: its links, its shard, its transactions.
void RenderClusterMetrics(const std::optional<ClusterFrontStats>& stats, PrometheusText& out) {
  One(out, "gauge", "strata_cluster_member_loop_responsive",
      "Whether the member's loop answered within a second (0: stalled; the rest is missing).",
      stats ? 1 : 0);
  if (!stats) return;
  const auto& st = *stats;
  One(out, "gauge", "strata_cluster_members", "Members of the cluster.",
      static_cast<double>(st.members));
  One(out, "counter", "strata_cluster_peer_messages_sent_total", "Messages sent to other members.",
      static_cast<double>(st.network.sent));
  One(out, "counter", "strata_cluster_peer_messages_received_total",
      "Messages received from other members.", static_cast<double>(st.network.received));
  One(out, "counter", "strata_cluster_peer_messages_dropped_total",
      "Messages to other members dropped (a full link queue or no link).",
      static_cast<double>(st.network.dropped));
  One(out, "counter", "strata_cluster_peer_reconnects_total", "Links to other members reopened.",
      static_cast<double>(st.network.reconnects));
  One(out, "counter", "strata_cluster_messages_dropped_from_peers_total",
      "Messages from other members dropped because the member's loop was behind.",
      static_cast<double>(st.dropped_from_peers));
  One(out, "gauge", "strata_cluster_held_for_durability",
      "Answers and messages waiting for the log to be durable.",
      static_cast<double>(st.held_for_durability));
  // The shards served here together (each one's: RenderServedShards).
  uint64_t intents = 0, prepared = 0;
  double lag = 0;
  const double wall_ms = static_cast<double>(cluster::HybridLogicalClock::SystemMillis());
  for (const auto& served : st.served) {
    intents += served.intents.intents;
    prepared += served.intents.prepared_txns;
    const double resolved_ms =
        static_cast<double>(cluster::HybridLogicalClock::PhysicalMillis(served.resolved));
    lag = std::max(lag, (wall_ms - resolved_ms) / 1000.0);
  }
  const auto lag_seconds = [&](Timestamp t) {
    return std::max(
        0.0,
        (wall_ms - static_cast<double>(cluster::HybridLogicalClock::PhysicalMillis(t))) / 1000.0);
  };
  One(out, "gauge", "strata_cluster_shard_intents",
      "Write intents pending on the shards served here.", static_cast<double>(intents));
  One(out, "gauge", "strata_cluster_shard_prepared_transactions",
      "Transactions prepared on the shards served here, not yet resolved.",
      static_cast<double>(prepared));
  One(out, "gauge", "strata_cluster_shard_resolved_lag_seconds",
      "How far the resolved timestamp of the shard served here furthest behind is behind the "
      "wall clock (0: none served).",
      lag);
  if (!st.groups.empty()) {
    out.Gauge("strata_cluster_shard_member",
              "Where each shard's replicas are, as this member knows them (the groups' reports): "
              "one line a replica, its role leader, voter or learner.");
    for (const cluster::ShardGroupView& group : st.groups) {
      const std::string shard = std::to_string(group.shard);
      for (const std::string& voter : group.voters) {
        out.Sample(1, {{"shard", shard},
                       {"member", voter},
                       {"role", voter == group.leader ? "leader" : "voter"}});
      }
      for (const std::string& learner : group.learners) {
        out.Sample(1, {{"shard", shard}, {"member", learner}, {"role", "learner"}});
      }
    }
  }
  if (!st.replicas.empty()) {
    out.Gauge("strata_cluster_shard_replica_leader",
              "Replicas of shards' Raft groups on this member: 1 if it leads the group.");
    for (const auto& replica : st.replicas) {
      out.Sample(replica.leads ? 1 : 0, {{"shard", std::to_string(replica.shard)}});
    }
    One(out, "counter", "strata_cluster_raft_refused_from_replaced_members_total",
        "Raft batches refused from members started with a replaced data directory.",
        static_cast<double>(st.refused_from_replaced));
    One(out, "counter", "strata_cluster_raft_log_syncs_total",
        "fdatasyncs of the replicas' Raft log (one a round of every group's work).",
        static_cast<double>(st.raft.log.syncs));
    One(out, "counter", "strata_cluster_raft_snapshots_total",
        "Snapshots of replicas here (log compactions), each a file the log refers to.",
        static_cast<double>(st.raft.compactions));
    One(out, "counter", "strata_cluster_raft_snapshots_restored_total",
        "Snapshots received from a shard group's leader and restored.",
        static_cast<double>(st.raft.snapshots_restored));
    One(out, "counter", "strata_cluster_raft_snapshots_unwritten_total",
        "Snapshots not taken: their file could not be written (the log keeps its entries).",
        static_cast<double>(st.raft.snapshots_unwritten));
    One(out, "counter", "strata_cluster_raft_snapshot_reads_failed_total",
        "Chunks of a snapshot file to send to a replica that did not read back (not sent).",
        static_cast<double>(st.raft.log.snapshot_reads_failed));
    One(out, "gauge", "strata_cluster_raft_snapshot_files",
        "Snapshot files of the replicas here that the Raft log refers to (one a replica).",
        static_cast<double>(st.raft.log.snapshot_files));
    out.Counter("strata_cluster_shard_replica_changes_total",
                "Membership changes this member made as a shard group's leader (moving replicas "
                "to the group's placement, taking back a member whose data directory was "
                "replaced): removed, added as a learner, promoted once caught up, leadership "
                "handed over before leaving.");
    out.Sample(static_cast<double>(st.replica_changes.removed), {{"change", "removed"}});
    out.Sample(static_cast<double>(st.replica_changes.learners), {{"change", "learner_added"}});
    out.Sample(static_cast<double>(st.replica_changes.promoted), {{"change", "promoted"}});
    out.Sample(static_cast<double>(st.replica_changes.handed_over),
               {{"change", "leader_handed_over"}});
    out.Counter("strata_cluster_shard_replicas_moved_total",
                "Replicas of shards' groups this member started (a group added it as a "
                "learner) and deleted (a group removed it).");
    out.Sample(static_cast<double>(st.replica_changes.started), {{"way", "started"}});
    out.Sample(static_cast<double>(st.replica_changes.deleted), {{"way", "deleted"}});
    One(out, "counter", "strata_cluster_shard_leaders_handed_home_total",
        "Shards' groups this member led and handed to their home member (leaders spread).",
        static_cast<double>(st.leaders_handed_home));
    One(out, "counter", "strata_cluster_shard_call_retries_total",
        "Calls to a replicated shard passed to its next replica (no leader known there).",
        static_cast<double>(st.shard_call_retries));
    One(out, "counter", "strata_cluster_shard_call_redirects_total",
        "Calls to a replicated shard sent on to the leader a replica named.",
        static_cast<double>(st.shard_call_redirects));
    One(out, "counter", "strata_cluster_reads_here_total",
        "Shard reads this member's replicas served (serializable Ranges, follower reads, writes).",
        static_cast<double>(st.reads_here));
    One(out, "counter", "strata_cluster_reads_passed_to_leader_total",
        "Shard reads this member's replicas passed to the leader (behind what the read asked).",
        static_cast<double>(st.reads_passed_on));
    One(out, "counter", "strata_cluster_writes_read_afresh_total",
        "Writes read at their shards' clocks that ran again at a fresh snapshot (changed nothing).",
        static_cast<double>(st.writes_read_afresh));
  }
  One(out, "gauge", "strata_cluster_low_water_mark_lag_seconds",
      "How far the cluster's garbage-collection mark is behind the wall clock (0: not known).",
      st.low_water_mark ? lag_seconds(*st.low_water_mark) : 0);
  One(out, "counter", "strata_cluster_commits_one_phase_total",
      "Transactions this member coordinated that committed in one round.",
      static_cast<double>(st.coordinator.one_phase_commits));
  One(out, "counter", "strata_cluster_commits_two_phase_total",
      "Transactions this member coordinated that committed by two-phase commit.",
      static_cast<double>(st.coordinator.two_phase_commits));
  One(out, "counter", "strata_cluster_conflicts_total",
      "Transactions this member coordinated that lost a conflict.",
      static_cast<double>(st.coordinator.conflicts));
  One(out, "counter", "strata_cluster_unknown_outcomes_total",
      "Commits whose outcome was unknown (a shard did not answer).",
      static_cast<double>(st.coordinator.unknown_outcomes));
  One(out, "gauge", "strata_cluster_watchers", "Watchers on this member.",
      static_cast<double>(st.watchers));
  One(out, "gauge", "strata_cluster_watchers_paused",
      "Watchers paused because their stream's client reads more slowly than events come.",
      static_cast<double>(st.watchers_paused));
  One(out, "counter", "strata_cluster_watcher_pauses_total",
      "Times a watcher paused for a full stream (it catches up once the stream drains).",
      static_cast<double>(st.watcher_pauses));
  One(out, "counter", "strata_cluster_lanes_acquired_total",
      "Writes of keys several members own that waited their turn on every owner.",
      static_cast<double>(st.lanes.acquired));
  One(out, "counter", "strata_cluster_lanes_given_up_total",
      "Writes of keys several members own that ran without waiting their turn (an owner "
      "refused or was silent).",
      static_cast<double>(st.lanes.gave_up));
  One(out, "gauge", "strata_cluster_lanes_held_for_others",
      "Other members' writes waiting for, or holding, the lanes of this member's keys.",
      static_cast<double>(st.lanes.remote_held));
  One(out, "counter", "strata_cluster_lanes_expired_total",
      "Lanes another member held too long (5 s) and this member took back.",
      static_cast<double>(st.lanes.remote_expired));
}

// Why the server is not healthy, or empty.
// What a member of a replicated key space adds: its Raft group and log.
void RenderReplicatedMetrics(const ReplicatedFront& front, PrometheusText& out) {
  const ReplicatedFrontStats st = front.Stats();
  One(out, "gauge", "strata_raft_has_leader", "Whether this member knows a leader.",
      st.leader != 0 ? 1 : 0);
  One(out, "gauge", "strata_raft_is_learner",
      "Whether this member is a learner (receives the log, does not vote).", st.learner ? 1 : 0);
  One(out, "gauge", "strata_raft_is_leader", "Whether this member leads.",
      st.leader != 0 && st.leader == st.self ? 1 : 0);
  One(out, "gauge", "strata_raft_term", "The Raft term this member is in.",
      static_cast<double>(st.term));
  One(out, "counter", "strata_raft_applied_total", "Commands applied by this member.",
      static_cast<double>(st.host.applied));
  One(out, "counter", "strata_raft_rounds_total",
      "Rounds of Raft work, each with one sync of the Raft log.",
      static_cast<double>(st.host.rounds));
  One(out, "counter", "strata_raft_log_syncs_total", "fdatasyncs of the Raft log.",
      static_cast<double>(st.host.log.syncs));
  One(out, "counter", "strata_raft_proposals_failed_total",
      "Proposals refused, replaced by another leader's entries or timed out.",
      static_cast<double>(st.host.proposals_failed));
  One(out, "counter", "strata_raft_snapshots_total",
      "Snapshots of this member's state (log compactions).",
      static_cast<double>(st.host.compactions));
  One(out, "counter", "strata_raft_snapshots_too_large_total",
      "Snapshots not taken: in memory, the member's state was more than a Raft log record holds.",
      static_cast<double>(st.host.snapshots_too_large));
  One(out, "counter", "strata_raft_snapshots_unwritten_total",
      "Snapshots not taken: their file could not be written (the log keeps its entries).",
      static_cast<double>(st.host.snapshots_unwritten));
  One(out, "counter", "strata_raft_snapshot_reads_failed_total",
      "Chunks of a snapshot file to send to a member that did not read back (not sent).",
      static_cast<double>(st.host.log.snapshot_reads_failed));
  One(out, "counter", "strata_raft_log_rewrites_total",
      "Rewrites of the Raft log's live state into a new segment (the old ones deleted).",
      static_cast<double>(st.host.log.rewrites));
  One(out, "counter", "strata_raft_log_rewrites_skipped_total",
      "Rewrites postponed: a group's state was more than one record holds, or its Raft log "
      "did not hold the entries stored.",
      static_cast<double>(st.host.log.rewrites_skipped));
  One(out, "counter", "strata_raft_snapshot_saves_total",
      "Snapshots of this member's copy started off the loop (each ends in a log compaction).",
      static_cast<double>(st.host.saves_in_background));
  One(out, "counter", "strata_raft_snapshots_restored_total",
      "Snapshots received from a leader and restored.",
      static_cast<double>(st.host.snapshots_restored));
  One(out, "counter", "strata_raft_peer_messages_sent_total",
      "Messages sent to other members (Raft batches, forwarded writes and their answers).",
      static_cast<double>(st.network.sent));
  One(out, "counter", "strata_raft_forwarded_total", "Writes this member handed to the leader.",
      static_cast<double>(st.forwarded));
  One(out, "counter", "strata_raft_served_for_peers_total",
      "Writes other members handed to this one as leader.",
      static_cast<double>(st.served_for_peers));
  One(out, "counter", "strata_raft_messages_dropped_from_peers_total",
      "Raft batches dropped because the loop's queue was full.",
      static_cast<double>(st.dropped_from_peers));
  One(out, "counter", "strata_raft_malformed_from_peers_total",
      "Peer messages that were not a well-formed Raft batch or command for this member.",
      static_cast<double>(st.malformed_from_peers));
  One(out, "counter", "strata_raft_refused_from_replaced_members_total",
      "Raft batches refused from members whose data directory was replaced, or removed.",
      static_cast<double>(st.refused_from_replaced));
  One(out, "gauge", "strata_raft_member_replaced",
      "1 if the other members refuse this one: its data directory was replaced.",
      st.replaced ? 1.0 : 0.0);
}

std::string Unhealthy(EtcdServer::Impl& s) {
  if (s.durable) {
    const Status h = s.durable->health();
    if (!h.ok()) return "the write-ahead log failed: " + std::string(h.message());
  }
  // A member of a cluster is healthy when every shard answers a read.
  if (s.cluster) return s.cluster->Probe(std::chrono::milliseconds(3000));
  // A replicated member, when its Raft log works and it knows a leader.
  if (s.replicated) return s.replicated->Unhealthy();
  if (s.quota->alarmed()) return "the NOSPACE alarm is raised (etcdctl alarm list)";
  service::RangeRequest probe;
  probe.span = {"health", ""};
  probe.count_only = true;
  auto r = s.kv->Range(probe);
  if (!r.ok()) return "a read failed: " + r.error().message;
  return "";
}

void NoteHealth(EtcdServer::Impl& s, const std::string& reason) {
  MutexLock lock(s.health_mu);
  (reason.empty() ? s.health_successes : s.health_failures) += 1;
  if (reason == s.last_health_reason) return;
  s.last_health_reason = reason;
  if (s.options.log) {
    if (reason.empty()) {
      s.options.log->Write(ops::LogLevel::kInfo, "health", "health: healthy again");
    } else {
      s.options.log->Write(ops::LogLevel::kWarn, "health", "health: unhealthy, " + reason);
    }
  }
}

}  // namespace

// The figures of the shards a cluster member serves, summed (their keys,
// versions and bytes; the oldest horizon).
StoreStats ServedStores(const ClusterFrontStats& stats) {
  StoreStats sum;
  for (const ClusterFrontStats::Served& served : stats.served) {
    const StoreStats& one = served.store;
    sum.keys += one.keys;
    sum.versions += one.versions;
    sum.tombstones += one.tombstones;
    sum.bytes += one.bytes;
    sum.memory_bytes += one.memory_bytes;
    sum.gc_runs += one.gc_runs;
    sum.gc_versions_removed += one.gc_versions_removed;
    sum.gc_bytes_reclaimed += one.gc_bytes_reclaimed;
    sum.compaction_horizon = &served == &stats.served.front()
                                 ? one.compaction_horizon
                                 : std::min(sum.compaction_horizon, one.compaction_horizon);
  }
  return sum;
}

// A cluster member's shards (ClusterFrontStats::served): each one's
// resolved revision and how far behind the wall clock it is (revisions are
// hybrid-clock timestamps there: seconds say more than revisions), and
// their intents.
void RenderServedShards(const ClusterFrontStats& stats, PrometheusText& out) {
  const double wall_ms = static_cast<double>(cluster::HybridLogicalClock::SystemMillis());
  out.Gauge("strata_shard_resolved_revision",
            "Newest revision a read may see on each shard served here (nothing at or below it "
            "is still to come).");
  for (const auto& served : stats.served) {
    out.Sample(static_cast<double>(served.resolved.value()),
               {{"shard", std::to_string(served.shard)}});
  }
  out.Gauge("strata_shard_resolved_lag_seconds",
            "How far each shard served here is resolved behind the wall clock.");
  for (const auto& served : stats.served) {
    const double resolved_ms =
        static_cast<double>(cluster::HybridLogicalClock::PhysicalMillis(served.resolved));
    out.Sample(std::max(0.0, (wall_ms - resolved_ms) / 1000.0),
               {{"shard", std::to_string(served.shard)}});
  }
  One(out, "gauge", "strata_shards",
      "Shards this node serves (with replicated shards, the replicas it holds).",
      static_cast<double>(stats.served.size()));
  uint64_t intents = 0;
  std::vector<uint64_t> ages(cluster::kIntentAgeBoundsMs.size() + 1, 0);
  for (const auto& served : stats.served) {
    intents += served.intents.intents;
    for (size_t i = 0; i < ages.size(); ++i) ages[i] += served.intents.age_histogram[i];
  }
  One(out, "gauge", "strata_intents", "Write intents waiting to be resolved.",
      static_cast<double>(intents));
  out.Histogram("strata_intent_age_seconds", "Age of the write intents waiting to be resolved.");
  std::vector<double> bounds;
  for (uint64_t ms : cluster::kIntentAgeBoundsMs) bounds.push_back(static_cast<double>(ms) / 1000);
  out.HistogramSample(bounds, ages, 0);
}

std::string RenderMetrics(const EtcdServer::Impl& s) {
  PrometheusText out;
  // A cluster member's figures, asked once (its loop may not answer).
  std::optional<ClusterFrontStats> cluster;
  if (s.cluster) cluster = s.cluster->Stats(std::chrono::milliseconds(1000));
  // The key space's figures: this node's store, a replicated member's own
  // copy (its one-node store stays empty), or the shards a cluster member
  // serves (with replicated shards, each replica held here).
  StoreStats st;
  int64_t compacted = 0, horizon = 0, live_keys = 0;
  size_t leases = 0;
  const std::shared_ptr<const MvccStore> engine = s.KeySpaceEngine();
  if (cluster) {
    st = ServedStores(*cluster);
    compacted = cluster->compact_revision;
    horizon = static_cast<int64_t>(st.compaction_horizon.value());
    // An estimate (no shard counts its live keys): a key deleted twice is
    // taken off twice.
    live_keys = static_cast<int64_t>(st.keys - std::min(st.keys, st.tombstones));
    leases = cluster->leases_homed;
  } else if (s.replicated) {
    const auto figures = s.replicated->Figures();
    st = figures.store;
    compacted = figures.compact_revision;
    horizon = figures.horizon;
    live_keys = figures.live_keys;
    leases = figures.live_leases;
  } else {
    st = s.store->GetStats();
    compacted = s.kv->compact_revision();
    horizon = static_cast<int64_t>(s.store->compaction_horizon().value());
    live_keys = s.kv->live_keys();
    leases = s.leases->size();
  }
  const int64_t revision = s.CurrentRevision();
  // A replicated member knows whether there is a leader and whether it is
  // the one; one node and a sharded member are their own.
  bool has_leader = true, is_leader = true, is_learner = false;
  if (s.replicated) {
    const auto raft = s.replicated->Stats();
    has_leader = raft.leader != 0;
    is_leader = raft.leader == raft.self;
    is_learner = raft.learner;
  }
  char id[32];
  std::snprintf(id, sizeof id, "%llx", static_cast<unsigned long long>(s.identity.member_id));

  // etcd's names.
  One(out, "gauge", "etcd_server_has_leader",
      "Whether or not a leader exists. 1 is existence, 0 is not.", has_leader ? 1 : 0);
  One(out, "gauge", "etcd_server_is_leader", "Whether or not this member is a leader.",
      is_leader ? 1 : 0);
  One(out, "gauge", "etcd_server_is_learner", "Whether or not this member is a learner.",
      is_learner ? 1 : 0);
  One(out, "counter", "etcd_server_leader_changes_seen_total", "The number of leader changes seen.",
      1);
  One(out, "gauge", "etcd_server_id", "Server or member ID in hexadecimal format.", 1,
      {{"server_id", id}});
  One(out, "gauge", "etcd_server_version", "Which version is running.", 1,
      {{"server_version", s.options.etcd_version}});
  One(out, "gauge", "etcd_cluster_version", "Which version is running.", 1,
      {{"cluster_version", s.options.etcd_version.substr(0, s.options.etcd_version.rfind('.'))}});
  One(out, "gauge", "etcd_server_quota_backend_bytes",
      "Current backend storage quota size in bytes.", static_cast<double>(s.quota->quota_bytes()));
  // A proposal is a write that took a revision (strata has no Raft log yet).
  // Gauges in etcd too.
  One(out, "gauge", "etcd_server_proposals_committed_total",
      "The total number of consensus proposals committed.", static_cast<double>(revision - 1));
  One(out, "gauge", "etcd_server_proposals_applied_total",
      "The total number of consensus proposals applied.", static_cast<double>(revision - 1));
  One(out, "gauge", "etcd_server_proposals_pending",
      "The current number of pending proposals to commit.", 0);
  One(out, "counter", "etcd_server_proposals_failed_total",
      "The total number of failed proposals seen.", 0);
  {
    MutexLock lock(s.health_mu);
    One(out, "counter", "etcd_server_health_success",
        "The total number of successful health checks", static_cast<double>(s.health_successes));
    One(out, "counter", "etcd_server_health_failures", "The total number of failed health checks",
        static_cast<double>(s.health_failures));
  }
  One(out, "gauge", "etcd_mvcc_db_total_size_in_bytes",
      "Total size of the underlying database physically allocated in bytes.",
      static_cast<double>(st.memory_bytes));
  One(out, "gauge", "etcd_debugging_mvcc_db_total_size_in_bytes",
      "Total size of the underlying database physically allocated in bytes.",
      static_cast<double>(st.memory_bytes));
  One(out, "gauge", "etcd_mvcc_db_total_size_in_use_in_bytes",
      "Total size of the underlying database logically in use in bytes.",
      static_cast<double>(st.bytes));
  One(out, "gauge", "etcd_debugging_mvcc_keys_total", "Total number of keys.",
      static_cast<double>(live_keys));
  One(out, "gauge", "etcd_debugging_mvcc_current_revision", "The current revision of store.",
      static_cast<double>(revision));
  One(out, "gauge", "etcd_debugging_mvcc_compact_revision",
      "The revision of the last compaction in store.", static_cast<double>(compacted));
  One(out, "gauge", "etcd_debugging_mvcc_watcher_total", "Total number of watchers.",
      static_cast<double>(cluster ? cluster->watchers : s.serving_hub->watchers()));
  // Requests, counted where they are served.
  const auto& g = *s.grpc_metrics;
  One(out, "counter", "etcd_mvcc_range_total", "Total number of ranges seen by this member.",
      static_cast<double>(g.Handled("etcdserverpb.KV", "Range")));
  One(out, "counter", "etcd_mvcc_put_total", "Total number of puts seen by this member.",
      static_cast<double>(g.Handled("etcdserverpb.KV", "Put")));
  One(out, "counter", "etcd_mvcc_delete_total", "Total number of deletes seen by this member.",
      static_cast<double>(g.Handled("etcdserverpb.KV", "DeleteRange")));
  One(out, "counter", "etcd_mvcc_txn_total", "Total number of txns seen by this member.",
      static_cast<double>(g.Handled("etcdserverpb.KV", "Txn")));
  One(out, "counter", "etcd_debugging_lease_granted_total", "The total number of granted leases.",
      static_cast<double>(g.Handled("etcdserverpb.Lease", "LeaseGrant")));
  if (s.durable) {
    const auto d = s.durable->GetDurabilityStats();
    out.Histogram("etcd_disk_wal_fsync_duration_seconds",
                  "The latency distributions of fsync called by WAL.");
    out.HistogramSample(SyncBounds(), Counts(d.histograms.sync_counts),
                        d.histograms.sync_seconds_sum);
    // A gauge in etcd too.
    One(out, "gauge", "etcd_disk_wal_write_bytes_total", "Total number of bytes written in WAL.",
        static_cast<double>(d.log_bytes));
    // strata's own: how many records share an fsync.
    out.Histogram("strata_wal_group_commit_records",
                  "Records made durable by one group commit (one fsync).");
    out.HistogramSample(GroupBounds(), Counts(d.histograms.group_counts),
                        static_cast<double>(d.histograms.group_records_sum));
    One(out, "counter", "strata_wal_syncs_total", "Group commits (fsyncs) of the log.",
        static_cast<double>(d.syncs));
    One(out, "counter", "strata_checkpoints_total", "Checkpoints written since start.",
        static_cast<double>(d.checkpoints));
  }
  g.Render(out);
  ProcessMetrics(out, s.started_at);

  // strata's own: garbage collection and who holds it back.
  One(out, "gauge", "strata_gc_compact_revision",
      "Revision of the last compaction asked for (reads below it are refused).",
      static_cast<double>(compacted));
  One(out, "gauge", "strata_gc_low_water_mark_revision",
      "Revision below which versions have been removed (the compaction horizon).",
      static_cast<double>(horizon));
  One(out, "gauge", "strata_gc_low_water_mark_age_seconds",
      "How long ago the revision at the low-water mark was committed (to the second; at most "
      "about an hour of steady writes is remembered, so older marks read as that).",
      std::chrono::duration<double>(s.revision_times->Age(horizon)).count());
  out.Gauge("strata_gc_held_by_revision",
            "What holds garbage collection back, and the revision it holds: an open "
            "transaction's snapshot, or a watcher still reading (kind, id).");
  const auto txns = s.txns->Stats();
  if (txns.min_active_snapshot) {
    out.Sample(static_cast<double>(*txns.min_active_snapshot),
               {{"kind", "transaction"}, {"id", std::to_string(txns.oldest_txn_id)}});
  }
  // A sharded cluster's member serves its watchers from the cluster's feeds
  // (service/cluster_watches.h): its one-node hub holds none.
  auto floor = decltype(s.serving_hub->ProtectedFloor(0)){};  // none
  if (!s.cluster) floor = s.serving_hub->ProtectedFloor(s.options.watch_max_lag);
  if (floor.revision != INT64_MAX) {
    out.Sample(static_cast<double>(floor.revision),
               {{"kind", "watcher"}, {"id", std::to_string(floor.watch_id)}});
  }
  One(out, "gauge", "strata_gc_oldest_transaction_age_seconds",
      "Age of the oldest open interactive transaction (0: none).",
      static_cast<double>(txns.oldest_txn_age.count()) / 1000.0);
  One(out, "counter", "strata_gc_versions_reclaimed_total", "Versions removed by compaction.",
      static_cast<double>(st.gc_versions_removed));
  One(out, "counter", "strata_gc_bytes_reclaimed_total",
      "Key and value bytes removed by compaction.", static_cast<double>(st.gc_bytes_reclaimed));
  One(out, "gauge", "strata_mvcc_versions", "Stored versions, deletes included.",
      static_cast<double>(st.versions));
  One(out, "gauge", "strata_mvcc_tombstones", "Stored deletes.",
      static_cast<double>(st.tombstones));
  if (cluster) {
    RenderServedShards(*cluster, out);
  } else {
    // A single node is one shard whose resolved revision is the durable one.
    const int64_t visible = s.pipeline->visible_revision();
    One(out, "gauge", "strata_shard_resolved_revision",
        "Newest revision a read may see on each shard (nothing at or below it is still to come).",
        static_cast<double>(visible), {{"shard", "0"}});
    One(out, "gauge", "strata_shard_resolved_lag_revisions",
        "Revisions applied on each shard but not yet resolved (durable).",
        static_cast<double>(std::max<int64_t>(0, revision - visible)), {{"shard", "0"}});
    // Write intents: a single node writes in place and has none; the names
    // are here so dashboards and alerts are ready for a sharded store.
    One(out, "gauge", "strata_shards", "Shards this node serves.", 1);
    One(out, "gauge", "strata_intents", "Write intents waiting to be resolved.", 0);
    out.Histogram("strata_intent_age_seconds", "Age of the write intents waiting to be resolved.");
    out.HistogramSample({0.01, 0.1, 1, 10, 60}, {0, 0, 0, 0, 0, 0}, 0);
  }
  One(out, "gauge", "strata_txn_active", "Open interactive transactions (strata.v1).",
      static_cast<double>(txns.active));
  One(out, "counter", "strata_txn_commits_total", "Interactive transactions committed.",
      static_cast<double>(txns.commits));
  One(out, "counter", "strata_txn_conflicts_total",
      "Interactive transactions refused at commit for a conflict.",
      static_cast<double>(txns.conflicts));
  One(out, "counter", "strata_txn_expired_total", "Interactive transactions expired while idle.",
      static_cast<double>(txns.expired));
  One(out, "gauge", "strata_leases", "Live leases.", static_cast<double>(leases));
  {
    static const std::vector<uint64_t> kBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024};
    MutexLock lock(s.versions_per_key_mu);
    const auto now = std::chrono::steady_clock::now();
    if (s.versions_per_key.empty() || now - s.versions_per_key_at > std::chrono::seconds(30)) {
      if (cluster) {
        // A cluster member's: the shards it serves, as the figures above.
        s.versions_per_key.assign(kBounds.size() + 1, 0);
        for (const auto& served : cluster->served) {
          const std::vector<uint64_t> one = served.engine->VersionsPerKey(kBounds);
          for (size_t i = 0; i < one.size() && i < s.versions_per_key.size(); ++i) {
            s.versions_per_key[i] += one[i];
          }
        }
      } else {
        s.versions_per_key = engine->VersionsPerKey(kBounds);
      }
      s.versions_per_key_at = now;
    }
    out.Histogram("strata_mvcc_versions_per_key",
                  "Versions stored per key, deletes included (recounted at most every 30 s).");
    out.HistogramSample(std::vector<double>(kBounds.begin(), kBounds.end()), s.versions_per_key,
                        static_cast<double>(st.versions));
  }
  if (cluster) {
    // Revisions there are hybrid timestamps: how far behind is time.
    std::vector<double> bounds;
    for (int64_t ms : ClusterFrontStats::kWatchLagBoundsMs) {
      bounds.push_back(static_cast<double>(ms) / 1000.0);
    }
    out.Histogram("strata_watch_lag_seconds",
                  "Watchers by how far behind the wall clock what they were handed is.");
    out.HistogramSample(bounds, cluster->watch_lags_ms.counts,
                        static_cast<double>(cluster->watch_lags_ms.sum) / 1000.0);
  } else if (!s.cluster) {
    static const std::vector<int64_t> kLagBounds = {0, 1, 10, 100, 1000, 10000, 100000};
    const auto lags = s.serving_hub->Lags(kLagBounds);
    out.Histogram("strata_watch_lag_revisions",
                  "Watchers by how many revisions they are behind the newest.");
    out.HistogramSample(std::vector<double>(kLagBounds.begin(), kLagBounds.end()), lags.counts,
                        static_cast<double>(lags.sum));
  }
  if (!s.cluster) {
    One(out, "gauge", "strata_watch_held_lag_revisions",
        "How far behind the newest revision the watcher holding compaction back is (0: none).",
        static_cast<double>(floor.revision != INT64_MAX ? floor.lag : 0));
  }
  if (s.cluster) RenderClusterMetrics(cluster, out);
  if (s.replicated) RenderReplicatedMetrics(*s.replicated, out);
  return out.text();
}

ops::HttpResponse Health(EtcdServer::Impl& s) {
  const std::string reason = Unhealthy(s);
  NoteHealth(s, reason);
  ops::HttpResponse r;
  r.content_type = "text/plain; charset=utf-8";
  r.status = reason.empty() ? 200 : 503;
  r.body = reason.empty() ? R"({"health":"true"})" : R"({"health":"false"})";
  return r;
}

ops::HttpResponse Readyz(EtcdServer::Impl& s) {
  const std::string reason = Unhealthy(s);
  NoteHealth(s, reason);
  ops::HttpResponse r;
  r.status = reason.empty() ? 200 : 503;
  r.body = reason.empty() ? "ok\n" : "[-]" + reason + "\nreadyz check failed\n";
  return r;
}

ops::HttpResponse Livez() { return {200, "text/plain; charset=utf-8", "ok\n"}; }

}  // namespace strata::server
