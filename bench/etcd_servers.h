// The servers the etcd-API benchmarks run: strata-server or etcd, one
// process or the members of a cluster started with etcd's flags (each its
// own process, data directory and ports), started, killed, restarted and
// stopped.
#ifndef STRATA_BENCH_ETCD_SERVERS_H_
#define STRATA_BENCH_ETCD_SERVERS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace strata::bench {

struct Server {
  std::string name;
  std::vector<pid_t> pids;
  std::vector<std::vector<std::string>> argvs;  // each member's command line
  std::vector<std::string> endpoints;           // each member's client address
  std::vector<int> metrics_ports;               // a strata cluster's members' /metrics
  std::string dir;
};

// `nodes` members of `binary` ("etcd" or a strata-server, by `name`), in
// a temporary directory; `replicated`: strata's --cluster-mode replicated;
// `shard_replicas`: a sharded strata cluster's --replication-factor.
// Returns once every member answers a Range; dies (Fatal) otherwise.
Server StartServer(const std::string& name, const std::string& binary, int nodes, bool replicated,
                   int shard_replicas = 1);
// Stops every member (SIGTERM) and removes the directory.
void StopServer(Server& s);
// kill -9 of one member, and its start again with the same flags (once it
// answers a Range).
void KillMember(Server& s, size_t member);
void RestartMember(Server& s, size_t member);
// The member that says it leads (Maintenance.Status names itself as the
// leader), or nullopt.
std::optional<size_t> LeaderOf(const Server& s);
// Waits until `endpoint` answers a Range (an etcd member: once it has a
// leader); dies (Fatal) after 15 s.
void WaitServing(const std::string& name, const std::string& endpoint);

}  // namespace strata::bench

#endif  // STRATA_BENCH_ETCD_SERVERS_H_
