// The etcd-API benchmark: strata-server against Debian's etcd 3.4.23 on the
// same machine, under the same load generator (this process, a gRPC client
// with one channel per connection and N requests in flight per channel),
// 8-byte keys and 256-byte values. Per row and server: ops/s, latency
// p50/p99, server CPU seconds per 1,000 operations (from /proc, so the load
// generator's own CPU is not counted), the server's RSS and, for a strata
// cluster, the messages its members sent each other per operation (from
// their /metrics); medians of --runs runs. The load generator shares the
// machine's cores with the server, so at high rates it caps throughput:
// CPU per operation is the figure that compares the servers themselves.
#ifndef STRATA_BENCH_ETCD_BENCH_H_
#define STRATA_BENCH_ETCD_BENCH_H_

#include <string>

namespace strata::bench {

struct EtcdBenchOptions {
  std::string strata_server;  // path of strata-server
  std::string etcd;           // path of etcd (empty: strata only)
  double seconds = 3;         // measured per run, after a warm-up
  int runs = 3;
  std::string only;  // run only the rows whose name contains this
  // Members of each server's cluster (started with etcd's flags); the load
  // is spread over them.
  int nodes = 1;
  // strata's members replicate the whole key space (--cluster-mode
  // replicated) instead of sharding it; the rows it does not serve yet
  // (leases, watches) are left out.
  bool replicated = false;
  // A sharded strata cluster's --replication-factor: each shard a Raft
  // group of this many members. Its shards have leaders of their own, so
  // the rows aimed at "the" leader or its followers are left out.
  int shard_replicas = 1;
};

// Prints a JSON line per measurement on stdout and a markdown table on
// stderr. Dies (Fatal) if a server cannot be started or a request fails.
void RunEtcdBench(const EtcdBenchOptions& options);

}  // namespace strata::bench

#endif  // STRATA_BENCH_ETCD_BENCH_H_
