#include "bench/etcd_bench.h"

#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include <httplib.h>

#include "bench/bench_util.h"
#include "bench/etcd_servers.h"
#include "bench/json_line.h"
#include "bench/subprocess.h"
#include "rpc.grpc.pb.h"

namespace strata::bench {
namespace {

namespace pb = etcdserverpb;

constexpr int kKeySpace = 10000;
constexpr size_t kValueBytes = 256;
constexpr double kWarmupSeconds = 0.5;
constexpr size_t kMultiKeys = 4;

std::string Key(int i) {
  char b[9];
  std::snprintf(b, sizeof b, "%08d", i);  // 8-byte keys
  return b;
}

struct ProcSample {
  double cpu_seconds = 0;
  uint64_t rss_bytes = 0;
  double peer_messages = 0;  // sent between a strata cluster's members
};

ProcSample SampleOne(pid_t pid) {
  ProcSample out;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after ')'.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  out.cpu_seconds =
      static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) out.rss_bytes = std::stoull(line.substr(6)) * 1024;
  }
  return out;
}

// Messages a strata member has sent the others, from its /metrics.
double PeerMessagesSent(int metrics_port) {
  httplib::Client client("127.0.0.1", metrics_port);
  auto response = client.Get("/metrics");
  if (!response || response->status != 200) Fatal("a member's /metrics did not answer");
  // A sharded cluster's count, or a replicated one's.
  for (std::string_view name :
       {"strata_cluster_peer_messages_sent_total ", "strata_raft_peer_messages_sent_total "}) {
    std::string line_start("\n");  // appended: GCC 12's -Wrestrict misreads "\n" + name
    line_start.append(name);
    const size_t at = response->body.find(line_start);
    if (at != std::string::npos) {
      return std::strtod(response->body.c_str() + at + 1 + name.size(), nullptr);
    }
  }
  Fatal("no peer message count on a member's /metrics");
}

// Every member's CPU and RSS, summed, and a strata cluster's peer messages.
ProcSample Sample(const Server& s) {
  ProcSample total;
  for (pid_t pid : s.pids) {
    const ProcSample one = SampleOne(pid);
    total.cpu_seconds += one.cpu_seconds;
    total.rss_bytes += one.rss_bytes;
  }
  for (int port : s.metrics_ports) total.peer_messages += PeerMessagesSent(port);
  return total;
}

enum class Op {
  kPut,
  kRange,
  kRangeSerializable,
  kKubernetesUpdate,
  kMultiKeyPut,  // a Txn putting kMultiKeys random keys (on a cluster: over shards)
  kLeaseGrant,
  kLeaseKeepAlive,
  kWatchFanOut,  // one writer, `clients` watchers: events delivered, put -> event latency
};

// Which members of a cluster a row's load goes to.
enum class Target { kAll, kLeader, kFollowers };

struct Row {
  Row(std::string name_in, Op op_in, int connections_in, int clients_in,
      Target target_in = Target::kAll)
      : name(std::move(name_in)),
        op(op_in),
        connections(connections_in),
        clients(clients_in),
        target(target_in) {}

  std::string name;
  Op op;
  int connections;
  int clients;
  Target target;
};

// The members `target` names (the leader as it says it is now).
std::vector<std::string> EndpointsOf(const Server& s, Target target) {
  if (target == Target::kAll) return s.endpoints;
  const std::optional<size_t> leader = LeaderOf(s);
  if (!leader) Fatal(s.name + ": no member says it leads");
  std::vector<std::string> out;
  for (size_t i = 0; i < s.endpoints.size(); ++i) {
    if ((i == *leader) == (target == Target::kLeader)) out.push_back(s.endpoints[i]);
  }
  return out;
}

// `n` channels, each its own TCP connection (a local subchannel pool, and
// an argument that differs, keep gRPC from sharing one).
// Spread over a cluster's members, round robin.
std::vector<std::shared_ptr<grpc::Channel>> Connections(const std::vector<std::string>& endpoints,
                                                        int n) {
  std::vector<std::shared_ptr<grpc::Channel>> out;
  for (int c = 0; c < n; ++c) {
    const std::string& endpoint = endpoints[c % endpoints.size()];
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("strata.bench.connection", c);
    out.push_back(grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args));
  }
  return out;
}

// One client: one request in flight at a time, reissued from its own
// completion callback until the load stops.
struct Client {
  int id = 0;
  pb::KV::Stub* kv = nullptr;
  pb::Lease::Stub* lease = nullptr;
  std::unique_ptr<grpc::ClientContext> ctx;
  pb::PutRequest put;
  pb::PutResponse put_resp;
  pb::RangeRequest range;
  pb::RangeResponse range_resp;
  pb::TxnRequest txn;
  pb::TxnResponse txn_resp;
  pb::LeaseGrantRequest grant;
  pb::LeaseGrantResponse grant_resp;
  int64_t mod_revision = 0;  // the Kubernetes update shape's expected revision
  std::mt19937 rng;
  Clock::time_point started;
  std::vector<double> latencies_us;
};

class Load {
 public:
  Load(const Server& server, const Row& row) : row_(row) {
    for (const auto& channel : Connections(EndpointsOf(server, row.target), row.connections)) {
      kv_.push_back(pb::KV::NewStub(channel));
      lease_.push_back(pb::Lease::NewStub(channel));
    }
    const std::string value(kValueBytes, 'v');
    for (int i = 0; i < row.clients; ++i) {
      auto c = std::make_unique<Client>();
      c->id = i;
      c->kv = kv_[i % row.connections].get();
      c->lease = lease_[i % row.connections].get();
      c->rng.seed(static_cast<unsigned>(i * 7919 + 1));
      c->put.set_value(value);
      c->range.set_serializable(row.op == Op::kRangeSerializable);
      c->grant.set_ttl(60);
      clients_.push_back(std::move(c));
    }
  }

  // Runs for `seconds` after a warm-up; returns ops completed in the window.
  uint64_t Run(double seconds) {
    window_start_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(kWarmupSeconds));
    window_end_ = window_start_ + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
    outstanding_ = static_cast<int>(clients_.size());
    for (auto& c : clients_) Issue(c.get());
    std::this_thread::sleep_until(window_end_);
    stop_ = true;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return outstanding_ == 0; });
    if (failure_) Fatal("a request failed: " + *failure_);
    uint64_t ops = 0;
    for (auto& c : clients_) ops += c->latencies_us.size();
    return ops;
  }

  std::vector<double> Latencies() const {
    std::vector<double> all;
    for (const auto& c : clients_)
      all.insert(all.end(), c->latencies_us.begin(), c->latencies_us.end());
    std::sort(all.begin(), all.end());
    return all;
  }

  Clock::time_point window_start() const { return window_start_; }

 private:
  void Issue(Client* c) {
    c->ctx = std::make_unique<grpc::ClientContext>();
    c->started = Clock::now();
    auto done = [this, c](grpc::Status s) { Completed(c, std::move(s)); };
    switch (row_.op) {
      case Op::kPut:
        c->put.set_key(Key(static_cast<int>(c->rng() % kKeySpace)));
        c->kv->async()->Put(c->ctx.get(), &c->put, &c->put_resp, done);
        break;
      case Op::kRange:
      case Op::kRangeSerializable:
        c->range.set_key(Key(static_cast<int>(c->rng() % kKeySpace)));
        c->kv->async()->Range(c->ctx.get(), &c->range, &c->range_resp, done);
        break;
      case Op::kKubernetesUpdate: {
        // The apiserver's GuaranteedUpdate: put if mod_revision is still R,
        // else read the key (OptimisticPut with GetOnFailure).
        const std::string key = "/registry/pods/" + std::to_string(c->id);
        c->txn.Clear();
        auto* cmp = c->txn.add_compare();
        cmp->set_key(key);
        cmp->set_target(pb::Compare::MOD);
        cmp->set_result(pb::Compare::EQUAL);
        cmp->set_mod_revision(c->mod_revision);
        auto* put = c->txn.add_success()->mutable_request_put();
        put->set_key(key);
        put->set_value(c->put.value());
        c->txn.add_failure()->mutable_request_range()->set_key(key);
        c->kv->async()->Txn(c->ctx.get(), &c->txn, &c->txn_resp, done);
        break;
      }
      case Op::kMultiKeyPut: {
        // Distinct keys: etcd refuses a Txn that puts one key twice.
        c->txn.Clear();
        std::set<int> keys;
        while (keys.size() < kMultiKeys) keys.insert(static_cast<int>(c->rng() % kKeySpace));
        for (int k : keys) {
          auto* put = c->txn.add_success()->mutable_request_put();
          put->set_key(Key(k));
          put->set_value(c->put.value());
        }
        c->kv->async()->Txn(c->ctx.get(), &c->txn, &c->txn_resp, done);
        break;
      }
      case Op::kLeaseGrant:
        c->lease->async()->LeaseGrant(c->ctx.get(), &c->grant, &c->grant_resp, done);
        break;
      case Op::kLeaseKeepAlive:
      case Op::kWatchFanOut:
        Fatal("stream rows are measured by MeasureStreams");
    }
  }

  void Completed(Client* c, grpc::Status s) {
    const auto now = Clock::now();
    if (!s.ok()) {
      std::lock_guard lock(mu_);
      failure_ = s.error_message();
      stop_ = true;
    }
    if (row_.op == Op::kKubernetesUpdate && s.ok()) {
      if (c->txn_resp.succeeded()) {
        c->mod_revision = c->txn_resp.header().revision();
      } else if (c->txn_resp.responses_size() > 0 &&
                 c->txn_resp.responses(0).response_range().kvs_size() > 0) {
        c->mod_revision = c->txn_resp.responses(0).response_range().kvs(0).mod_revision();
      }
    }
    if (c->started >= window_start_ && now <= window_end_) {
      c->latencies_us.push_back(
          std::chrono::duration<double, std::micro>(now - c->started).count());
    }
    if (!stop_) return Issue(c);
    std::lock_guard lock(mu_);
    if (--outstanding_ == 0) cv_.notify_all();
  }

  const Row row_;
  std::vector<std::unique_ptr<pb::KV::Stub>> kv_;
  std::vector<std::unique_ptr<pb::Lease::Stub>> lease_;
  std::vector<std::unique_ptr<Client>> clients_;
  Clock::time_point window_start_, window_end_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int outstanding_ = 0;
  std::optional<std::string> failure_;
};

void Populate(const Server& s) {
  auto stub =
      pb::KV::NewStub(grpc::CreateChannel(s.endpoints[0], grpc::InsecureChannelCredentials()));
  const std::string value(kValueBytes, 'v');
  for (int i = 0; i < kKeySpace; i += 100) {
    pb::TxnRequest txn;
    for (int k = i; k < std::min(i + 100, kKeySpace); ++k) {
      auto* put = txn.add_success()->mutable_request_put();
      put->set_key(Key(k));
      put->set_value(value);
    }
    grpc::ClientContext ctx;
    pb::TxnResponse resp;
    grpc::Status st = stub->Txn(&ctx, txn, &resp);
    if (!st.ok()) Fatal("populating " + s.name + ": " + st.error_message());
  }
}

// A client stream the benchmark opens and later cancels, waiting until
// gRPC is done with it.
template <typename Request, typename Response>
class ClosableStream : public grpc::ClientBidiReactor<Request, Response> {
 public:
  void OnDone(const grpc::Status&) override {
    std::lock_guard lock(done_mu_);
    done_ = true;
    done_cv_.notify_all();
  }
  void Close() {
    ctx_.TryCancel();
    std::unique_lock lock(done_mu_);
    done_cv_.wait(lock, [&] { return done_; });
  }

 protected:
  grpc::ClientContext ctx_;

 private:
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  bool done_ = false;
};

// A watcher for the fan-out row: records, for every event, the time from
// its put (the value carries the writer's clock) to its arrival.
class FanOutWatcher : public ClosableStream<pb::WatchRequest, pb::WatchResponse> {
 public:
  FanOutWatcher(pb::Watch::Stub* stub, std::atomic<bool>* stop) : stop_(stop) {
    stub->async()->Watch(&ctx_, this);
    request_.mutable_create_request()->set_key("fanout");
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
  }
  void OnWriteDone(bool) override {}
  void OnReadDone(bool ok) override {
    if (!ok) return;
    const auto now = Clock::now().time_since_epoch().count();
    for (const auto& e : response_.events()) {
      if (e.kv().value().size() < sizeof(int64_t)) continue;
      int64_t sent = 0;
      std::memcpy(&sent, e.kv().value().data(), sizeof sent);
      if (sent >= window_start_ && sent <= window_end_) {
        latencies_us.push_back(static_cast<double>(now - sent) / 1000.0);
      }
    }
    if (!stop_->load()) StartRead(&response_);
  }
  void SetWindow(int64_t start, int64_t end) {
    window_start_ = start;
    window_end_ = end;
  }
  std::vector<double> latencies_us;

 private:
  pb::WatchRequest request_;
  pb::WatchResponse response_;
  std::atomic<bool>* stop_;
  int64_t window_start_ = 0, window_end_ = 0;
};

struct Measurement {
  double ops_per_second = 0;
  double p50_us = 0, p99_us = 0;
  double cpu_ms_per_1000 = 0;  // server CPU milliseconds per 1,000 operations
  double rss_mb = 0;
  double peer_messages_per_op = 0;  // a strata cluster's, between its members
};

// Keep-alives: each client renews its own lease over its own stream, one
// renewal in flight at a time.
class KeepAliveClient
    : public ClosableStream<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse> {
 public:
  KeepAliveClient(pb::Lease::Stub* stub, int64_t lease, std::atomic<bool>* stop) : stop_(stop) {
    request_.set_id(lease);
    stub->async()->LeaseKeepAlive(&ctx_, this);
    sent_ = Clock::now();
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
  }
  // The next renewal goes once both the answer arrived and the last write
  // completed (gRPC allows one write in flight per stream).
  void OnWriteDone(bool ok) override {
    if (ok) Step(/*wrote=*/true);
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    const auto now = Clock::now();
    if (sent_ >= window_start && now <= window_end) {
      latencies_us.push_back(std::chrono::duration<double, std::micro>(now - sent_).count());
    }
    Step(/*wrote=*/false);
  }
  void Step(bool wrote) {
    {
      std::lock_guard lock(mu_);
      (wrote ? write_done_ : read_done_) = true;
      if (!write_done_ || !read_done_ || stop_->load()) return;
      write_done_ = read_done_ = false;
    }
    sent_ = Clock::now();
    StartWrite(&request_);
    StartRead(&response_);
  }
  Clock::time_point window_start, window_end;
  std::vector<double> latencies_us;

 private:
  pb::LeaseKeepAliveRequest request_;
  pb::LeaseKeepAliveResponse response_;
  std::atomic<bool>* stop_;
  Clock::time_point sent_;
  std::mutex mu_;
  bool write_done_ = false, read_done_ = false;  // guarded by mu_
};

Measurement Summarize(std::vector<double> lat, uint64_t ops, double seconds, ProcSample before,
                      ProcSample after);

// The rows that need streams: watch fan-out and keep-alives.
Measurement MeasureStreams(const Server& s, const Row& row, double seconds) {
  const auto channels = Connections(s.endpoints, row.connections);
  std::atomic<bool> stop{false};
  const auto to_dur = [](double sec) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(sec));
  };
  std::vector<double> lat;
  uint64_t ops = 0;
  ProcSample before{}, after{};
  if (row.op == Op::kWatchFanOut) {
    std::vector<std::unique_ptr<pb::Watch::Stub>> stubs;
    for (auto& ch : channels) stubs.push_back(pb::Watch::NewStub(ch));
    std::vector<std::unique_ptr<FanOutWatcher>> watchers;
    for (int i = 0; i < row.clients; ++i) {
      watchers.push_back(std::make_unique<FanOutWatcher>(stubs[i % stubs.size()].get(), &stop));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // every watch created
    auto kv = pb::KV::NewStub(channels[0]);
    const auto start = Clock::now() + to_dur(kWarmupSeconds);
    const auto end = start + to_dur(seconds);
    for (auto& w : watchers) {
      w->SetWindow(start.time_since_epoch().count(), end.time_since_epoch().count());
    }
    std::string value(kValueBytes, 'v');
    bool sampled = false;
    while (Clock::now() < end) {
      if (!sampled && Clock::now() >= start) {
        before = Sample(s);
        sampled = true;
      }
      const int64_t now = Clock::now().time_since_epoch().count();
      std::memcpy(value.data(), &now, sizeof now);
      pb::PutRequest put;
      put.set_key("fanout");
      put.set_value(value);
      pb::PutResponse resp;
      grpc::ClientContext ctx;
      if (const grpc::Status st = kv->Put(&ctx, put, &resp); !st.ok()) {
        Fatal("fan-out put failed: " + st.error_message());
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the last deliveries
    after = Sample(s);
    stop = true;
    for (auto& w : watchers) {
      w->Close();
      lat.insert(lat.end(), w->latencies_us.begin(), w->latencies_us.end());
    }
    ops = lat.size();  // events delivered in the window
  } else {
    std::vector<std::unique_ptr<pb::Lease::Stub>> stubs;
    for (auto& ch : channels) stubs.push_back(pb::Lease::NewStub(ch));
    std::vector<std::unique_ptr<KeepAliveClient>> clients;
    const auto start = Clock::now() + to_dur(kWarmupSeconds + 0.5);
    const auto end = start + to_dur(seconds);
    for (int i = 0; i < row.clients; ++i) {
      pb::LeaseGrantRequest g;
      g.set_ttl(600);
      pb::LeaseGrantResponse gr;
      grpc::ClientContext ctx;
      auto* stub = stubs[i % stubs.size()].get();
      if (const grpc::Status st = stub->LeaseGrant(&ctx, g, &gr); !st.ok()) {
        Fatal("lease grant failed: " + st.error_message());
      }
      clients.push_back(std::make_unique<KeepAliveClient>(stub, gr.id(), &stop));
      clients.back()->window_start = start;
      clients.back()->window_end = end;
    }
    std::this_thread::sleep_until(start);
    before = Sample(s);
    std::this_thread::sleep_until(end);
    after = Sample(s);
    stop = true;
    for (auto& c : clients) {
      c->Close();
      lat.insert(lat.end(), c->latencies_us.begin(), c->latencies_us.end());
    }
    ops = lat.size();
  }
  std::sort(lat.begin(), lat.end());
  return Summarize(std::move(lat), ops, seconds, before, after);
}

Measurement Measure(const Server& s, const Row& row, double seconds) {
  if (row.op == Op::kWatchFanOut || row.op == Op::kLeaseKeepAlive) {
    return MeasureStreams(s, row, seconds);
  }
  Load load(s, row);
  ProcSample before{};
  // Sample the server's CPU exactly over the measured window.
  std::thread sampler([&] {
    std::this_thread::sleep_until(load.window_start());
    before = Sample(s);
  });
  const uint64_t ops = load.Run(seconds);
  sampler.join();
  const ProcSample after = Sample(s);
  return Summarize(load.Latencies(), ops, seconds, before, after);
}

Measurement Summarize(std::vector<double> lat, uint64_t ops, double seconds, ProcSample before,
                      ProcSample after) {
  Measurement m;
  m.ops_per_second = static_cast<double>(ops) / seconds;
  m.p50_us = Percentile(lat, 0.50);
  m.p99_us = Percentile(lat, 0.99);
  m.cpu_ms_per_1000 = ops == 0 ? 0 : (after.cpu_seconds - before.cpu_seconds) * 1e6 / ops;
  m.rss_mb = static_cast<double>(after.rss_bytes) / (1 << 20);
  m.peer_messages_per_op =
      ops == 0 ? 0 : (after.peer_messages - before.peer_messages) / static_cast<double>(ops);
  return m;
}

}  // namespace

void RunEtcdBench(const EtcdBenchOptions& options) {
  const std::vector<Row> rows = {
      {"put 1/1", Op::kPut, 1, 1},
      {"put 8/64", Op::kPut, 8, 64},
      {"put 100/1000", Op::kPut, 100, 1000},
      {"range 1/1", Op::kRange, 1, 1},
      {"range 8/64", Op::kRange, 8, 64},
      {"range 100/1000", Op::kRange, 100, 1000},
      {"serializable range 8/64", Op::kRangeSerializable, 8, 64},
      // A cluster's reads from its leader alone, and from its followers
      // alone (issue 13: follower reads).
      {"range 8/64 on the leader", Op::kRange, 8, 64, Target::kLeader},
      {"range 8/64 on followers", Op::kRange, 8, 64, Target::kFollowers},
      {"serializable range 8/64 on followers", Op::kRangeSerializable, 8, 64, Target::kFollowers},
      {"k8s update txn 8/64", Op::kKubernetesUpdate, 8, 64},
      {"txn of 4 puts 8/64", Op::kMultiKeyPut, 8, 64},
      // 1,000 writers of 4 random keys among 10,000: on a strata cluster
      // each waits its turn on the keys' members (service/shard_locks.h).
      {"txn of 4 puts 100/1000", Op::kMultiKeyPut, 100, 1000},
      {"lease grant 8/64", Op::kLeaseGrant, 8, 64},
      {"lease keep-alive 8/64", Op::kLeaseKeepAlive, 8, 64},
      {"watch fan-out 1/1", Op::kWatchFanOut, 1, 1},
      {"watch fan-out 1 writer/100 watchers", Op::kWatchFanOut, 8, 100},
      {"watch fan-out 100/1000", Op::kWatchFanOut, 100, 1000},
  };
  std::vector<std::pair<std::string, std::string>> servers = {{"strata", options.strata_server}};
  if (!options.etcd.empty()) servers.emplace_back("etcd", options.etcd);
  // results[row][server] = median measurement
  std::map<std::string, std::map<std::string, Measurement>> results;
  for (const auto& [name, binary] : servers) {
    Server s = StartServer(name, binary, options.nodes, options.replicated, options.shard_replicas);
    Populate(s);
    for (const Row& row : rows) {
      if (!options.only.empty() && row.name.find(options.only) == std::string::npos) continue;
      // No leader to tell (one node), or one per shard.
      if (row.target != Target::kAll && (options.nodes == 1 || options.shard_replicas > 1))
        continue;
      std::vector<Measurement> runs;
      for (int r = 0; r < options.runs; ++r) {
        std::fprintf(stderr, "etcd-api: %s x%d %s, run %d of %d\n", name.c_str(), options.nodes,
                     row.name.c_str(), r + 1, options.runs);
        runs.push_back(Measure(s, row, options.seconds));
      }
      auto median = [&](auto field) {
        std::vector<double> v;
        for (const auto& m : runs) v.push_back(m.*field);
        return Median(v);
      };
      Measurement m;
      m.ops_per_second = median(&Measurement::ops_per_second);
      m.p50_us = median(&Measurement::p50_us);
      m.p99_us = median(&Measurement::p99_us);
      m.cpu_ms_per_1000 = median(&Measurement::cpu_ms_per_1000);
      m.rss_mb = median(&Measurement::rss_mb);
      m.peer_messages_per_op = median(&Measurement::peer_messages_per_op);
      results[row.name][name] = m;
      JsonLine line;
      line.Str("bench", "etcd-api").Str("server", name).Num("nodes", options.nodes, 0);
      if (name == "strata") line.Num("replication_factor", options.shard_replicas, 0);
      line.Str("row", row.name);
      line.Num("ops_per_s", m.ops_per_second, 0).Num("p50_us", m.p50_us, 0);
      line.Num("p99_us", m.p99_us, 0).Num("server_cpu_ms_per_1000_ops", m.cpu_ms_per_1000, 1);
      line.Num("rss_mb", m.rss_mb, 0).Num("load_1m", LoadAverage1m(), 2);
      if (!s.metrics_ports.empty()) line.Num("peer_messages_per_op", m.peer_messages_per_op, 2);
      line.Print();
    }
    StopServer(s);
  }
  std::string table = "\n";
  table.append(std::to_string(options.nodes));
  table.append(options.nodes > 1 ? " members each (CPU and RSS summed over them)" : " server each");
  if (options.shard_replicas > 1) {
    table.append("; each strata shard a Raft group of ");
    table.append(std::to_string(options.shard_replicas));
    table.append(" members");
  }
  table.append("\n");
  const bool messages = options.nodes > 1;  // strata's peer messages per operation
  table +=
      "| row | strata ops/s | etcd ops/s | ratio | strata p50/p99 ms | etcd p50/p99 ms | "
      "strata CPU ms/1k ops | etcd CPU ms/1k ops | CPU ratio | RSS MB strata/etcd |";
  table += messages ? " strata peer msgs/op |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
                    : "\n|---|---|---|---|---|---|---|---|---|---|\n";
  char buf[512];
  for (const Row& row : rows) {
    auto it = results.find(row.name);
    if (it == results.end()) continue;
    const auto& st = it->second["strata"];
    const bool has_etcd = it->second.count("etcd") != 0;
    const auto& et = has_etcd ? it->second["etcd"] : Measurement{};
    std::snprintf(buf, sizeof buf,
                  "| %s | %.0f | %.0f | ×%.2f | %.2f / %.2f | %.2f / %.2f | %.1f | %.1f | ×%.2f | "
                  "%.0f / %.0f |",
                  row.name.c_str(), st.ops_per_second, et.ops_per_second,
                  has_etcd && et.ops_per_second > 0 ? st.ops_per_second / et.ops_per_second : 0,
                  st.p50_us / 1000, st.p99_us / 1000, et.p50_us / 1000, et.p99_us / 1000,
                  st.cpu_ms_per_1000, et.cpu_ms_per_1000,
                  has_etcd && st.cpu_ms_per_1000 > 0 ? et.cpu_ms_per_1000 / st.cpu_ms_per_1000 : 0,
                  st.rss_mb, et.rss_mb);
    table += buf;
    if (messages) {
      std::snprintf(buf, sizeof buf, " %.1f |", st.peer_messages_per_op);
      table += buf;
    }
    table += "\n";
  }
  std::fputs(table.c_str(), stderr);
}

}  // namespace strata::bench
