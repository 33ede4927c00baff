#include "bench/etcd_servers.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "bench/bench_util.h"
#include "bench/subprocess.h"
#include "rpc.grpc.pb.h"

namespace strata::bench {

namespace pb = etcdserverpb;

namespace {

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Starts one member; its log goes nowhere (the servers' logs are not the
// benchmark's business) unless STRATA_BENCH_SERVER_LOGS is set: then to
// this process's stderr.
pid_t Spawn(const std::vector<std::string>& argv) {
  const bool logs = std::getenv("STRATA_BENCH_SERVER_LOGS") != nullptr;
  const int saved = ::dup(STDERR_FILENO);
  const int null = ::open("/dev/null", O_WRONLY);
  if (!logs) ::dup2(null, STDERR_FILENO);
  const pid_t pid = SpawnChild(argv, /*pipe_stdin=*/false).pid;
  KillOnFatal(pid);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(null);
  return pid;
}

}  // namespace

void WaitServing(const std::string& name, const std::string& endpoint) {
  // Ready once a Range answers (an etcd member: once it has a leader).
  auto stub = pb::KV::NewStub(grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
  for (int i = 0; i < 300; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    pb::RangeRequest req;
    req.set_key("x");
    pb::RangeResponse resp;
    if (stub->Range(&ctx, req, &resp).ok()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Fatal(name + " did not start");
}

Server StartServer(const std::string& name, const std::string& binary, int nodes, bool replicated,
                   int shard_replicas) {
  Server s;
  s.name = name;
  s.dir = std::filesystem::temp_directory_path() /
          ("strata-etcd-bench-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(s.dir);
  std::vector<int> clients, peers;
  std::string initial_cluster;
  for (int i = 0; i < nodes; ++i) {
    clients.push_back(FreePort());
    peers.push_back(FreePort());
    if (i > 0) initial_cluster.push_back(',');
    initial_cluster.append("m").append(std::to_string(i));
    initial_cluster.append("=http://127.0.0.1:").append(std::to_string(peers.back()));
  }
  for (int i = 0; i < nodes; ++i) {
    // Appended piece by piece: GCC 12's -Wrestrict misreads some chains of +.
    std::string member("m"), endpoint("127.0.0.1:"), peer("http://127.0.0.1:");
    member.append(std::to_string(i));
    endpoint.append(std::to_string(clients[i]));
    peer.append(std::to_string(peers[i]));
    const std::string data = (std::filesystem::path(s.dir) / member).string();
    s.endpoints.push_back(endpoint);
    std::vector<std::string> argv = {binary,
                                     "--name",
                                     member,
                                     "--data-dir",
                                     data,
                                     "--listen-client-urls",
                                     "http://" + endpoint,
                                     "--advertise-client-urls",
                                     "http://" + endpoint,
                                     "--listen-peer-urls",
                                     peer,
                                     "--initial-advertise-peer-urls",
                                     peer,
                                     "--initial-cluster",
                                     initial_cluster};
    if (name == "etcd") {
      argv.push_back("--log-level");
      argv.push_back("error");
    } else if (nodes > 1) {
      // For the messages members send each other per operation.
      s.metrics_ports.push_back(FreePort());
      argv.push_back("--listen-metrics-urls");
      argv.push_back("http://127.0.0.1:" + std::to_string(s.metrics_ports.back()));
      if (replicated) {
        argv.push_back("--cluster-mode");
        argv.push_back("replicated");
      } else {
        // Always given: the server's default (3) is not the bench's (1).
        argv.push_back("--replication-factor");
        argv.push_back(std::to_string(shard_replicas));
      }
    }
    s.argvs.push_back(argv);
    s.pids.push_back(Spawn(argv));
  }
  for (const std::string& endpoint : s.endpoints) WaitServing(name, endpoint);
  return s;
}

void StopServer(Server& s) {
  for (pid_t pid : s.pids) ::kill(pid, SIGTERM);
  for (pid_t pid : s.pids) {
    WaitChild(pid);
    ForgetOnFatal(pid);
  }
  std::filesystem::remove_all(s.dir);
}

std::optional<size_t> LeaderOf(const Server& s) {
  for (size_t i = 0; i < s.endpoints.size(); ++i) {
    auto stub = pb::Maintenance::NewStub(
        grpc::CreateChannel(s.endpoints[i], grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
    pb::StatusResponse resp;
    if (stub->Status(&ctx, pb::StatusRequest(), &resp).ok() && resp.leader() != 0 &&
        resp.leader() == resp.header().member_id()) {
      return i;
    }
  }
  return std::nullopt;
}

void KillMember(Server& s, size_t member) {
  ::kill(s.pids[member], SIGKILL);
  WaitChild(s.pids[member]);
  ForgetOnFatal(s.pids[member]);
}

void RestartMember(Server& s, size_t member) {
  s.pids[member] = Spawn(s.argvs[member]);
  WaitServing(s.name, s.endpoints[member]);
}

}  // namespace strata::bench
