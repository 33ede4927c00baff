#include "bench/failover_bench.h"

#include <grpcpp/grpcpp.h>

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
#include "rpc.grpc.pb.h"

namespace strata::bench {
namespace {

namespace pb = etcdserverpb;
using Clock = std::chrono::steady_clock;

constexpr int kWriters = 4;
// A write not answered by then is given up and sent to the next member.
constexpr auto kWriteDeadline = std::chrono::milliseconds(250);

// Clients putting one key each, member after member, as a client that
// retries on another member does.
class Writers {
 public:
  explicit Writers(const Server& s) {
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

  // From now on, the first write sent and acknowledged is noted.
  Clock::time_point Mark() {
    std::lock_guard lock(mu_);
    mark_ = Clock::now();
    first_.reset();
    return mark_;
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
    req.set_key("failover-" + std::to_string(t));
    for (uint64_t n = 0; !stop_; ++n) {
      auto& stub = stubs_[(static_cast<size_t>(t) + n) % stubs_.size()];
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + kWriteDeadline);
      req.set_value(std::to_string(n));
      pb::PutResponse resp;
      const auto sent = Clock::now();
      if (stub->Put(&ctx, req, &resp).ok()) {
        std::lock_guard lock(mu_);
        if (sent >= mark_ && !first_) first_ = Clock::now();
      } else {
        // A member that is down refuses at once: not a busy loop.
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  }

  std::vector<std::unique_ptr<pb::KV::Stub>> stubs_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  Clock::time_point mark_ = Clock::time_point::max();
  std::optional<Clock::time_point> first_;
};

std::vector<double> MeasureKills(const std::string& name, const std::string& binary, int kills) {
  Server s = StartServer(name, binary, 3, /*replicated=*/name == "strata");
  std::vector<double> seconds;
  {
    Writers writers(s);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    for (int k = 0; k < kills; ++k) {
      std::optional<size_t> leader;
      for (int i = 0; i < 200 && !(leader = LeaderOf(s)); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!leader) Fatal(name + ": no leader within 10 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      writers.Mark();
      KillMember(s, *leader);
      const std::optional<double> took = writers.SecondsToFirstWrite(std::chrono::seconds(30));
      if (!took) Fatal(name + ": no write acknowledged within 30 s of the leader's kill");
      seconds.push_back(*took);
      std::fprintf(stderr, "failover: %s kill %d of %d: %.3f s\n", name.c_str(), k + 1, kills,
                   *took);
      JsonLine line;
      line.Str("bench", "failover").Str("server", name).Int("kill", k + 1);
      line.Num("seconds_to_first_write", *took, 3).Print();
      RestartMember(s, *leader);
      // Caught up, and its links back, before the next kill.
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  }
  StopServer(s);
  std::sort(seconds.begin(), seconds.end());
  return seconds;
}

}  // namespace

void RunFailoverBench(const FailoverBenchOptions& options) {
  std::map<std::string, std::vector<double>> results;
  results["strata"] = MeasureKills("strata", options.strata_server, options.kills);
  if (!options.etcd.empty()) results["etcd"] = MeasureKills("etcd", options.etcd, options.kills);
  std::string table =
      "\nthe leader of 3 members killed -9 under 4 writers: seconds to the first write "
      "acknowledged "
      "after the kill\n| server | kills | p50 | p90 | max |\n|---|---|---|---|---|\n";
  char buf[256];
  for (const auto& [name, seconds] : results) {
    std::snprintf(buf, sizeof buf, "| %s | %zu | %.2f | %.2f | %.2f |\n", name.c_str(),
                  seconds.size(), Percentile(seconds, 0.5), Percentile(seconds, 0.9),
                  seconds.empty() ? 0.0 : seconds.back());
    table += buf;
  }
  if (results.count("etcd") != 0) {
    std::snprintf(buf, sizeof buf, "strata's median is ×%.2f of etcd's\n",
                  Percentile(results["strata"], 0.5) / Percentile(results["etcd"], 0.5));
    table += buf;
  }
  std::fputs(table.c_str(), stderr);
}

}  // namespace strata::bench
