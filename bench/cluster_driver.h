// The cluster in one process: N members (server/cluster_runtime.h), each on
// its own loop thread, linked by real gRPC streams on loopback, driven by
// closed-loop clients posted straight to the coordinators. Unlike
// bench/cluster_bench.py it measures the members and their links, not a
// Python simulator routing every message.
//
// Workloads (each transaction writes small values, snapshot isolation):
//   single  2 keys on one shard: a one-phase commit, one round trip
//   multi   2-3 keys on distinct shards (as many as there are, up to 3):
//           two-phase commit through the record
// Reported per node count and workload: committed txn/s, aborts, p50/p99
// latency, peer messages per transaction and CPU microseconds per
// transaction (the whole process: every member, link and client).
#ifndef STRATA_BENCH_CLUSTER_DRIVER_H_
#define STRATA_BENCH_CLUSTER_DRIVER_H_

#include <string>
#include <vector>

namespace strata::bench {

struct ClusterBenchOptions {
  std::vector<int> nodes = {1, 3, 5};
  std::vector<std::string> workloads = {"single", "multi"};
  int clients = 32;  // transactions in flight, spread over the coordinators
  double seconds = 3;
  int runs = 3;  // per measurement; medians are reported
};

// Prints one JSON line per measurement on stdout and a table on stderr.
void RunClusterBench(const ClusterBenchOptions& options);

}  // namespace strata::bench

#endif  // STRATA_BENCH_CLUSTER_DRIVER_H_
