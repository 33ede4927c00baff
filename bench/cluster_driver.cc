#include "bench/cluster_driver.h"

#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "bench/bench_util.h"
#include "bench/json_line.h"
#include "server/cluster_runtime.h"

namespace strata::bench {
namespace {

using std::chrono::milliseconds;

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// N members linked on loopback, torn down servers first.
class InProcessCluster {
 public:
  explicit InProcessCluster(int n) {
    std::vector<std::string> names;
    // Built by append: GCC 12 reports a false -Wrestrict on "n" + std::string.
    for (int i = 0; i < n; ++i) names.push_back(std::string("n").append(std::to_string(i)));
    std::map<std::string, std::string> addresses;
    for (int i = 0; i < n; ++i) {
      stores_.push_back(std::make_unique<MvccStore>());
      server::ClusterRuntimeOptions options;
      options.self = names[i];
      options.node_ids = names;
      Result<std::unique_ptr<server::ClusterRuntime>> runtime =
          server::ClusterRuntime::Start(options, stores_.back().get());
      if (!runtime.ok()) Fatal("cluster: " + runtime.status().message());
      runtimes_.push_back(std::move(*runtime));
      grpc::ServerBuilder builder;
      int port = 0;
      builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
      runtimes_.back()->ConfigureServer(&builder);
      servers_.push_back(builder.BuildAndStart());
      if (!servers_.back() || port == 0) Fatal("cluster: cannot listen on loopback");
      addresses[names[i]] = "127.0.0.1:" + std::to_string(port);
    }
    for (auto& runtime : runtimes_) runtime->ConnectPeers(addresses);
    map_ = *cluster::ShardMap::OnePerNode(names);
  }
  ~InProcessCluster() {
    for (auto& server : servers_) server->Shutdown(std::chrono::system_clock::now());
    runtimes_.clear();
  }

  int size() const { return static_cast<int>(runtimes_.size()); }
  server::ClusterRuntime& runtime(int i) { return *runtimes_[i]; }
  const cluster::ShardMap& map() const { return map_; }
  uint64_t MessagesSent() const {
    uint64_t sent = 0;
    for (const auto& runtime : runtimes_) sent += runtime->NetworkStats().sent;
    return sent;
  }

 private:
  std::vector<std::unique_ptr<MvccStore>> stores_;
  std::vector<std::unique_ptr<server::ClusterRuntime>> runtimes_;
  std::vector<std::unique_ptr<grpc::Server>> servers_;
  cluster::ShardMap map_ = *cluster::ShardMap::OnePerNode({"n0"});
};

struct RunResult {
  double txn_per_s = 0, aborts = 0, p50_ms = 0, p99_ms = 0, msgs_per_txn = 0, cpu_us_per_txn = 0;
};

// Closed-loop clients: each runs one transaction at a time on its
// coordinator's loop thread, starting the next from the last's callback.
class Load {
 public:
  Load(InProcessCluster* cluster, bool multi) : cluster_(cluster), multi_(multi) {
    keys_by_shard_.resize(cluster->map().shards().size());
    for (int i = 0; i < 100000; ++i) {
      std::string key = std::string("k").append(std::to_string(i));
      keys_by_shard_[cluster->map().ShardFor(key).id].push_back(std::move(key));
    }
  }

  RunResult Run(int clients, double seconds) {
    const uint64_t messages_before = cluster_->MessagesSent();
    const double cpu_before = CpuSeconds();
    const auto start = Clock::now();
    in_flight_ = clients;
    for (int c = 0; c < clients; ++c) {
      cluster_->runtime(c % cluster_->size()).Post([this, c](cluster::Member& member) {
        Next(member, std::make_shared<std::mt19937_64>(c + 1));
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop_ = true;
    const double elapsed = SecondsSince(start);
    for (int i = 0; i < 1000 && in_flight_ > 0; ++i) std::this_thread::sleep_for(milliseconds(10));
    const double cpu = CpuSeconds() - cpu_before;
    const uint64_t messages = cluster_->MessagesSent() - messages_before;
    std::lock_guard<std::mutex> lock(mu_);
    RunResult result;
    const double commits = static_cast<double>(latencies_ms_.size());
    if (commits == 0) Fatal("cluster: no transaction committed");
    result.txn_per_s = commits / elapsed;
    result.aborts = static_cast<double>(aborts_);
    std::sort(latencies_ms_.begin(), latencies_ms_.end());
    result.p50_ms = latencies_ms_[latencies_ms_.size() / 2];
    result.p99_ms = latencies_ms_[latencies_ms_.size() * 99 / 100];
    result.msgs_per_txn = static_cast<double>(messages) / commits;
    result.cpu_us_per_txn = cpu * 1e6 / commits;
    return result;
  }

 private:
  std::vector<std::string> PickKeys(std::mt19937_64& rng) {
    const size_t shards = keys_by_shard_.size();
    std::vector<size_t> chosen;
    if (multi_ && shards > 1) {
      std::vector<size_t> all(shards);
      for (size_t i = 0; i < shards; ++i) all[i] = i;
      std::shuffle(all.begin(), all.end(), rng);
      chosen.assign(all.begin(), all.begin() + std::min<size_t>(3, shards));
    } else {
      const size_t shard = rng() % shards;
      chosen = {shard, shard};
    }
    std::vector<std::string> keys;
    for (size_t shard : chosen) {
      const auto& pool = keys_by_shard_[shard];
      keys.push_back(pool[rng() % pool.size()]);
    }
    return keys;
  }

  void Next(cluster::Member& member, std::shared_ptr<std::mt19937_64> rng) {
    if (stop_) {
      --in_flight_;
      return;
    }
    cluster::Coordinator& coordinator = member.coordinator();
    Result<cluster::Coordinator::Begun> begun =
        coordinator.Begin(Isolation::kSnapshot, false, std::nullopt);
    if (!begun.ok()) Fatal("cluster: begin: " + begun.status().message());
    for (const std::string& key : PickKeys(*rng)) {
      (void)coordinator.Write(begun->id, key, "1");  // a repeated key is one write
    }
    const auto start = Clock::now();
    coordinator.Commit(begun->id, [this, &member, rng, start](Result<Timestamp> committed) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (committed.ok()) {
          latencies_ms_.push_back(SecondsSince(start) * 1000);
        } else {
          ++aborts_;
        }
      }
      Next(member, rng);
    });
  }

  InProcessCluster* cluster_;
  const bool multi_;
  std::vector<std::vector<std::string>> keys_by_shard_;
  std::atomic<bool> stop_{false};
  std::atomic<int> in_flight_{0};
  std::mutex mu_;
  std::vector<double> latencies_ms_;
  uint64_t aborts_ = 0;
};

}  // namespace

void RunClusterBench(const ClusterBenchOptions& options) {
  std::string table = StrFormat("%-6s %-8s %10s %7s %8s %8s %9s %11s\n", "nodes", "workload",
                                "txn/s", "aborts", "p50 ms", "p99 ms", "msgs/txn", "cpu us/txn");
  for (int nodes : options.nodes) {
    for (const std::string& workload : options.workloads) {
      if (workload != "single" && workload != "multi") Fatal("cluster workload: single or multi");
      std::vector<double> tps, aborts, p50, p99, msgs, cpu;
      for (int run = 0; run < options.runs; ++run) {
        InProcessCluster cluster(nodes);
        Load load(&cluster, workload == "multi");
        const RunResult r = load.Run(options.clients, options.seconds);
        tps.push_back(r.txn_per_s), aborts.push_back(r.aborts), p50.push_back(r.p50_ms);
        p99.push_back(r.p99_ms), msgs.push_back(r.msgs_per_txn), cpu.push_back(r.cpu_us_per_txn);
        std::fprintf(stderr, "cluster %d nodes %s run %d: %.0f txn/s\n", nodes, workload.c_str(),
                     run + 1, r.txn_per_s);
      }
      JsonLine()
          .Str("bench", "cluster")
          .Int("nodes", nodes)
          .Str("workload", workload)
          .Int("clients", options.clients)
          .Num("txn_per_s", Median(tps), 0)
          .NumList("txn_per_s_runs", tps, 0)
          .Num("aborts", Median(aborts), 0)
          .Num("p50_ms", Median(p50), 2)
          .Num("p99_ms", Median(p99), 2)
          .Num("msgs_per_txn", Median(msgs), 2)
          .Num("cpu_us_per_txn", Median(cpu), 0)
          .Print();
      table += StrFormat("%-6d %-8s %10.0f %7.0f %8.2f %8.2f %9.2f %11.0f\n", nodes,
                         workload.c_str(), Median(tps), Median(aborts), Median(p50), Median(p99),
                         Median(msgs), Median(cpu));
    }
  }
  std::fputs(table.c_str(), stderr);
}

}  // namespace strata::bench
