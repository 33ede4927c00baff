#include "bench/failover_bench.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/etcd_servers.h"
#include "bench/json_line.h"
#include "cluster/shard_map.h"
#include "rpc.grpc.pb.h"

namespace strata::bench {
namespace {

namespace pb = etcdserverpb;
using Clock = std::chrono::steady_clock;

constexpr int kWriters = 4;
// A write not answered by then is given up and sent to the next member.
constexpr auto kWriteDeadline = std::chrono::milliseconds(250);

// The writers' keys: with replicated shards, at least one on each shard
// (of a three-member cluster's map), so "every key written again" means
// every shard led again.
std::vector<std::string> WriterKeys(int shard_replicas) {
  std::vector<std::string> keys;
  if (shard_replicas > 1) {
    const auto map =
        cluster::ShardMap::Replicated({"m0", "m1", "m2"}, static_cast<uint32_t>(shard_replicas));
    if (!map.ok()) Fatal("no shard map for the failover writers");
    std::map<cluster::ShardId, std::string> one_each;
    for (int i = 0; one_each.size() < map->shards().size(); ++i) {
      std::string key = "failover-" + std::to_string(i);
      // The engine key of an etcd key: its tag 0x01, then the key
      // (service::ClusterKv::EngineKey, a layer the benchmark does not see).
      one_each.emplace(map->ShardFor("\x01" + key).id, key);
    }
    for (auto& [shard, key] : one_each) keys.push_back(std::move(key));
  }
  for (int i = 0; keys.size() < static_cast<size_t>(kWriters); ++i) {
    keys.push_back("failover-extra-" + std::to_string(i));
  }
  return keys;
}

// The shards a strata member leads, from its /metrics.
size_t ShardsLed(int metrics_port) {
  httplib::Client client("127.0.0.1", metrics_port);
  auto response = client.Get("/metrics");
  if (!response || response->status != 200) return 0;
  size_t led = 0;
  const std::string_view body = response->body;
  for (size_t at = 0;
       (at = body.find("\nstrata_cluster_shard_replica_leader{", at)) != std::string_view::npos;) {
    at = body.find("} ", at);
    if (at != std::string_view::npos && body.substr(at + 2, 1) == "1") ++led;
  }
  return led;
}

// The member to kill: the one leading the most shards (replicated shards),
// or the leader.
std::optional<size_t> Victim(const Server& s, bool sharded) {
  if (!sharded) return LeaderOf(s);
  size_t best = 0, most = 0;
  for (size_t i = 0; i < s.metrics_ports.size(); ++i) {
    const size_t led = ShardsLed(s.metrics_ports[i]);
    if (led > most) best = i, most = led;
  }
  if (most == 0) return std::nullopt;
  return best;
}

// Clients putting one key each, member after member, as a client that
// retries on another member does.
class Writers {
 public:
  Writers(const Server& s, std::vector<std::string> keys) : keys_(std::move(keys)) {
    for (const std::string& endpoint : s.endpoints) {
      stubs_.push_back(
          pb::KV::NewStub(grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials())));
    }
    for (int t = 0; t < kWriters; ++t) threads_.emplace_back([this, t] { Run(t); });
  }
  ~Writers() {
    stop_ = true;
    for (auto& thread : threads_) thread.join();
  }

  // From now on, each writer's first write sent and acknowledged is noted.
  Clock::time_point Mark() {
    std::lock_guard lock(mu_);
    mark_ = Clock::now();
    first_.reset();
    every_.assign(kWriters, std::nullopt);
    return mark_;
  }
  // Seconds from the mark until every writer's key was written again;
  // nullopt if not within `timeout`.
  std::optional<double> SecondsToEveryKey(std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(mu_);
        if (std::all_of(every_.begin(), every_.end(), [](const auto& t) { return t; })) {
          Clock::time_point last = mark_;
          for (const auto& t : every_) last = std::max(last, *t);
          return std::chrono::duration<double>(last - mark_).count();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return std::nullopt;
  }
  // Seconds from the mark to that write's acknowledgement; nullopt if none
  // within `timeout`.
  std::optional<double> SecondsToFirstWrite(std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(mu_);
        if (first_) return std::chrono::duration<double>(*first_ - mark_).count();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return std::nullopt;
  }

 private:
  void Run(int t) {
    pb::PutRequest req;
    req.set_key(keys_[static_cast<size_t>(t)]);
    for (uint64_t n = 0; !stop_; ++n) {
      auto& stub = stubs_[(static_cast<size_t>(t) + n) % stubs_.size()];
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + kWriteDeadline);
      req.set_value(std::to_string(n));
      pb::PutResponse resp;
      const auto sent = Clock::now();
      if (stub->Put(&ctx, req, &resp).ok()) {
        std::lock_guard lock(mu_);
        if (sent >= mark_) {
          if (!first_) first_ = Clock::now();
          if (!every_[static_cast<size_t>(t)]) every_[static_cast<size_t>(t)] = Clock::now();
        }
      } else {
        // A member that is down refuses at once: not a busy loop.
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  }

  const std::vector<std::string> keys_;
  std::vector<std::unique_ptr<pb::KV::Stub>> stubs_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  Clock::time_point mark_ = Clock::time_point::max();
  std::optional<Clock::time_point> first_;
  std::vector<std::optional<Clock::time_point>> every_ =
      std::vector<std::optional<Clock::time_point>>(kWriters);
};

struct Kill {
  double first_write = 0;  // seconds to the first write acknowledged
  double every_key = 0;    // seconds until every writer's key was written
};

std::vector<Kill> MeasureKills(const std::string& name, const std::string& binary, int kills,
                               int shard_replicas) {
  // strata: one Raft group (--cluster-mode replicated), or its shards'
  // groups (--replication-factor).
  const bool sharded = name == "strata" && shard_replicas > 1;
  Server s = StartServer(name, binary, 3, /*replicated=*/name == "strata" && !sharded,
                         sharded ? shard_replicas : 1);
  std::vector<Kill> results;
  {
    Writers writers(s, WriterKeys(sharded ? shard_replicas : 1));
    std::this_thread::sleep_for(std::chrono::seconds(2));
    for (int k = 0; k < kills; ++k) {
      std::optional<size_t> leader;
      for (int i = 0; i < 200 && !(leader = Victim(s, sharded)); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!leader) Fatal(name + ": no leader within 10 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      writers.Mark();
      KillMember(s, *leader);
      const std::optional<double> took = writers.SecondsToFirstWrite(std::chrono::seconds(30));
      if (!took) Fatal(name + ": no write acknowledged within 30 s of the leader's kill");
      const std::optional<double> every = writers.SecondsToEveryKey(std::chrono::seconds(30));
      if (!every) Fatal(name + ": a key not written again within 30 s of the leader's kill");
      results.push_back({*took, *every});
      std::fprintf(stderr, "failover: %s kill %d of %d: %.3f s, every key %.3f s\n", name.c_str(),
                   k + 1, kills, *took, *every);
      JsonLine line;
      line.Str("bench", "failover").Str("server", name).Int("kill", k + 1);
      if (name == "strata") line.Num("replication_factor", sharded ? shard_replicas : 0, 0);
      line.Num("seconds_to_first_write", *took, 3).Num("seconds_to_every_key", *every, 3).Print();
      RestartMember(s, *leader);
      // Caught up, and its links back, before the next kill.
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  }
  StopServer(s);
  return results;
}

std::vector<double> Sorted(const std::vector<Kill>& kills, double Kill::*field) {
  std::vector<double> v;
  for (const Kill& k : kills) v.push_back(k.*field);
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

void RunFailoverBench(const FailoverBenchOptions& options) {
  std::map<std::string, std::vector<Kill>> results;
  results["strata"] =
      MeasureKills("strata", options.strata_server, options.kills, options.shard_replicas);
  if (!options.etcd.empty()) {
    results["etcd"] = MeasureKills("etcd", options.etcd, options.kills, 1);
  }
  std::string table =
      "\nthe leader of 3 members (strata with replicated shards: the member leading the most "
      "shards) killed -9 under 4 writers: seconds from the kill to the first write "
      "acknowledged after it, and until every writer's key was written again\n"
      "| server | kills | first write p50 | p90 | max | every key p50 | p90 | max |\n"
      "|---|---|---|---|---|---|---|---|\n";
  char buf[256];
  for (const auto& [name, kills] : results) {
    const std::vector<double> first = Sorted(kills, &Kill::first_write);
    const std::vector<double> every = Sorted(kills, &Kill::every_key);
    std::snprintf(buf, sizeof buf, "| %s | %zu | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
                  name.c_str(), kills.size(), Percentile(first, 0.5), Percentile(first, 0.9),
                  first.empty() ? 0.0 : first.back(), Percentile(every, 0.5),
                  Percentile(every, 0.9), every.empty() ? 0.0 : every.back());
    table += buf;
  }
  if (results.count("etcd") != 0) {
    std::snprintf(buf, sizeof buf, "strata's median (every key) is ×%.2f of etcd's\n",
                  Percentile(Sorted(results["strata"], &Kill::every_key), 0.5) /
                      Percentile(Sorted(results["etcd"], &Kill::every_key), 0.5));
    table += buf;
  }
  std::fputs(table.c_str(), stderr);
}

}  // namespace strata::bench
