// The failover benchmark (issue 13): a three-member cluster of strata-server
// (--cluster-mode replicated) and one of etcd, each under steady writes
// from four clients spread over the members; the leader is killed -9 again
// and again (started again, and caught up, between kills). For each kill:
// the seconds from the kill to the first write acknowledged among those
// sent after it, the time a client that retries on another member waits,
// and until every writer's key was written again (with replicated shards,
// the writers' keys cover every shard: every shard led again).
// Prints a JSON line per kill and, on stderr, the distribution of both
// side by side.
#ifndef STRATA_BENCH_FAILOVER_BENCH_H_
#define STRATA_BENCH_FAILOVER_BENCH_H_

#include <string>

namespace strata::bench {

struct FailoverBenchOptions {
  std::string strata_server;  // path of strata-server
  std::string etcd;           // path of etcd (empty: strata only)
  int kills = 20;             // of the leader, per server
  // Above 1: strata as a sharded cluster whose shards are Raft groups of
  // this many members (--replication-factor), the member leading the most
  // shards killed; else strata's --cluster-mode replicated.
  int shard_replicas = 1;
};

// Dies (Fatal) if a server does not start or elects no leader.
void RunFailoverBench(const FailoverBenchOptions& options);

}  // namespace strata::bench

#endif  // STRATA_BENCH_FAILOVER_BENCH_H_
