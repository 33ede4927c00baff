// strata-ctl: what etcdctl does not do for a strata server. Plain key-value
// work stays etcdctl's job; `strata-ctl --help` lists the commands.
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "protocol/json_writer.h"
#include "rpc.grpc.pb.h"
#include "server/shard_layout.h"
#include "service/cluster_kv.h"
#include "service/snapshot.h"
#include "strata.grpc.pb.h"
#include "strata/mvcc_store.h"

namespace {

namespace pb = etcdserverpb;

// Where the server is and how to reach it: etcdctl's flags. TLS when the
// endpoint is https:// or a certificate is given.
struct Endpoint {
  std::string address = "127.0.0.1:2379";  // host:port, http://host:port or https://host:port
  std::string cacert, cert, key;           // PEM files
  std::string user;                        // "name:password", or "name" to be asked
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "Error: cannot read " << path << "\n";
    std::exit(1);
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Sends the token Authenticate gave with every call of the channel, as
// etcd's clients do (gRPC's call credentials would need TLS).
class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(std::string token) : token_(std::move(token)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      m->GetSendInitialMetadata()->insert({"token", token_});
    }
    m->Proceed();
  }

 private:
  std::string token_;
};

class TokenInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::string token) : token_(std::move(token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(token_);
  }

 private:
  std::string token_;
};

// The password of --user NAME (no ":"), read from the terminal without echo.
std::string AskPassword() {
  if (!isatty(STDIN_FILENO)) {
    std::cerr << "Error: --user needs NAME:PASSWORD when stdin is not a terminal\n";
    std::exit(1);
  }
  std::cerr << "Password: ";
  termios old{};
  tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::string password;
  std::getline(std::cin, password);
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  std::cerr << "\n";
  return password;
}

// A client of the etcd API does not need the server's receive limits: a
// snapshot chunk or a large Range comes in whole. With --user, the channel
// authenticates first and carries the token on every call.
std::shared_ptr<grpc::Channel> Connect(const Endpoint& endpoint) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  std::string target = endpoint.address;
  bool tls = !endpoint.cacert.empty() || !endpoint.cert.empty();
  if (target.rfind("https://", 0) == 0) {
    target.erase(0, 8);
    tls = true;
  } else if (target.rfind("http://", 0) == 0) {
    target.erase(0, 7);
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!endpoint.cacert.empty()) ssl.pem_root_certs = ReadFile(endpoint.cacert);
    if (!endpoint.cert.empty()) ssl.pem_cert_chain = ReadFile(endpoint.cert);
    if (!endpoint.key.empty()) ssl.pem_private_key = ReadFile(endpoint.key);
    creds = grpc::SslCredentials(ssl);
  }
  auto channel = grpc::CreateCustomChannel(target, creds, args);
  if (endpoint.user.empty()) return channel;

  const size_t colon = endpoint.user.find(':');
  etcdserverpb::AuthenticateRequest req;
  req.set_name(endpoint.user.substr(0, colon));
  req.set_password(colon == std::string::npos ? AskPassword() : endpoint.user.substr(colon + 1));
  etcdserverpb::AuthenticateResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (auto st = etcdserverpb::Auth::NewStub(channel)->Authenticate(&ctx, req, &resp); !st.ok()) {
    std::cerr << "Error: " << st.error_message() << "\n";
    std::exit(1);
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> token;
  token.push_back(std::make_unique<TokenInterceptorFactory>(resp.token()));
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, creds, args,
                                                                 std::move(token));
}

namespace v1 = ::strata::v1;

// -w simple|json|table, as etcdctl. JSON carries keys and values in base64,
// as etcdctl's does (they are bytes).
enum class Format { kSimple, kJson, kTable };

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(n >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    const uint32_t n = uint8_t(in[i]) << 16;
    out += {kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63], '='};
  }
  return out;
}

std::string Error(const grpc::Status& s) { return "Error: " + s.error_message(); }

// One stored version, in each format.
std::string VersionJson(const v1::Version& v) {
  std::ostringstream o;
  o << "{\"key\":\"" << Base64(v.key()) << "\",\"revision\":" << v.revision();
  if (v.deleted()) {
    o << ",\"deleted\":true}";
  } else {
    o << ",\"create_revision\":" << v.create_revision() << ",\"version\":" << v.version()
      << ",\"lease\":" << v.lease() << ",\"value\":\"" << Base64(v.value()) << "\"}";
  }
  return o.str();
}

void PrintVersions(const google::protobuf::RepeatedPtrField<v1::Version>& versions, bool more,
                   Format format, bool with_key) {
  if (format == Format::kJson) {
    std::cout << "{\"versions\":[";
    for (int i = 0; i < versions.size(); ++i) {
      std::cout << (i ? "," : "") << VersionJson(versions[i]);
    }
    std::cout << "],\"more\":" << (more ? "true" : "false") << "}\n";
    return;
  }
  if (format == Format::kTable) {
    std::cout << "| REVISION | " << (with_key ? "KEY | " : "")
              << "OP     | VERSION | CREATE | VALUE |\n";
    for (const auto& v : versions) {
      std::cout << "| " << v.revision() << " | " << (with_key ? v.key() + " | " : "")
                << (v.deleted() ? "DELETE | " : "PUT    | ") << v.version() << " | "
                << v.create_revision() << " | " << v.value() << " |\n";
    }
  } else {
    for (const auto& v : versions) {
      std::cout << v.revision() << "\t" << (with_key ? v.key() + "\t" : "")
                << (v.deleted() ? "DELETE" : "PUT\t" + v.value()) << "\n";
    }
  }
  if (more) std::cout << "(more: ask again from the last revision)\n";
}

int History(const Endpoint& endpoint, const std::string& key, int64_t from, int64_t to,
            int64_t limit, Format format) {
  auto stub = v1::Strata::NewStub(Connect(endpoint));
  grpc::ClientContext ctx;
  v1::HistoryRequest req;
  req.set_key(key);
  req.set_from_revision(from);
  req.set_to_revision(to);
  req.set_limit(limit);
  v1::HistoryResponse resp;
  if (auto s = stub->History(&ctx, req, &resp); !s.ok()) {
    std::cerr << Error(s) << "\n";
    return 1;
  }
  PrintVersions(resp.versions(), resp.more(), format, /*with_key=*/false);
  return 0;
}

int Changes(const Endpoint& endpoint, int64_t since, const std::string& prefix, int64_t limit,
            Format format) {
  auto stub = v1::Strata::NewStub(Connect(endpoint));
  grpc::ClientContext ctx;
  v1::ChangesRequest req;
  req.set_since_revision(since);
  if (!prefix.empty()) {
    const auto range = strata::KeyRange::WithPrefix(prefix);
    req.set_key(range.start);
    // No end (an all-0xff prefix): etcd's "\0", to the end of the keyspace.
    req.set_range_end(range.end.value_or(std::string(1, '\0')));
  }
  req.set_limit(limit);
  v1::ChangesResponse resp;
  if (auto s = stub->Changes(&ctx, req, &resp); !s.ok()) {
    std::cerr << Error(s) << "\n";
    return 1;
  }
  PrintVersions(resp.changes(), resp.more(), format, /*with_key=*/true);
  return 0;
}

int Get(const Endpoint& endpoint, const std::string& key, int64_t rev, Format format) {
  auto stub = etcdserverpb::KV::NewStub(Connect(endpoint));
  grpc::ClientContext ctx;
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  req.set_revision(rev);
  etcdserverpb::RangeResponse resp;
  if (auto s = stub->Range(&ctx, req, &resp); !s.ok()) {
    std::cerr << Error(s) << "\n";
    return 1;
  }
  for (const auto& kv : resp.kvs()) {
    if (format == Format::kJson) {
      std::cout << "{\"key\":\"" << Base64(kv.key())
                << "\",\"create_revision\":" << kv.create_revision()
                << ",\"mod_revision\":" << kv.mod_revision() << ",\"version\":" << kv.version()
                << ",\"value\":\"" << Base64(kv.value()) << "\"}\n";
    } else {
      std::cout << kv.key() << "\n" << kv.value() << "\n";
    }
  }
  return 0;
}

int Stats(const Endpoint& endpoint, Format format) {
  auto stub = v1::Strata::NewStub(Connect(endpoint));
  grpc::ClientContext ctx;
  v1::StatsResponse r;
  if (auto s = stub->Stats(&ctx, v1::StatsRequest(), &r); !s.ok()) {
    std::cerr << Error(s) << "\n";
    return 1;
  }
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"revision", std::to_string(r.revision())},
      {"compact_revision", std::to_string(r.compact_revision())},
      {"keys", std::to_string(r.keys())},
      {"versions", std::to_string(r.versions())},
      {"tombstones", std::to_string(r.tombstones())},
      {"bytes", std::to_string(r.bytes())},
      {"memory_bytes", std::to_string(r.memory_bytes())},
      {"gc_versions_removed", std::to_string(r.gc_versions_removed())},
      {"gc_bytes_reclaimed", std::to_string(r.gc_bytes_reclaimed())},
      {"active_txns", std::to_string(r.active_txns())},
      {"min_active_snapshot", std::to_string(r.min_active_snapshot())},
      {"oldest_txn_id", std::to_string(r.oldest_txn_id())},
      {"oldest_txn_age_ms", std::to_string(r.oldest_txn_age_ms())},
      {"txn_commits", std::to_string(r.txn_commits())},
      {"txn_conflicts", std::to_string(r.txn_conflicts())},
      {"txn_expired", std::to_string(r.txn_expired())},
      {"watchers", std::to_string(r.watchers())},
      {"leases", std::to_string(r.leases())},
      {"wal_durable_lsn", std::to_string(r.wal_durable_lsn())},
      {"wal_syncs", std::to_string(r.wal_syncs())},
      {"checkpoints", std::to_string(r.checkpoints())},
      {"compaction_horizon", std::to_string(r.compaction_horizon())},
      {"gc_held_by_watch_id", std::to_string(r.gc_held_by_watch_id())},
      {"gc_held_by_watcher_lag", std::to_string(r.gc_held_by_watcher_lag())},
  };
  if (format == Format::kJson) {
    std::cout << "{";
    for (size_t i = 0; i < rows.size(); ++i) {
      std::cout << (i ? "," : "") << "\"" << rows[i].first << "\":" << rows[i].second;
    }
    std::cout << "}\n";
  } else if (format == Format::kTable) {
    std::cout << "| STAT | VALUE |\n";
    for (const auto& [k, v] : rows) std::cout << "| " << k << " | " << v << " |\n";
  } else {
    for (const auto& [k, v] : rows) std::cout << k << ": " << v << "\n";
  }
  return 0;
}

// Where each shard of a cluster is (strata.v1 Shards).
strata::Result<v1::ShardsResponse> AskShards(const Endpoint& endpoint) {
  grpc::ClientContext ctx;
  v1::ShardsResponse r;
  if (auto s = v1::Strata::NewStub(Connect(endpoint))->Shards(&ctx, v1::ShardsRequest(), &r);
      !s.ok()) {
    return strata::Status::Unavailable(Error(s));
  }
  return r;
}

std::string Joined(const google::protobuf::RepeatedPtrField<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ",") + name;
  return out;
}

int ShardList(const Endpoint& endpoint, Format format) {
  strata::Result<v1::ShardsResponse> r = AskShards(endpoint);
  if (!r.ok()) {
    std::cerr << r.status().message() << "\n";
    return 1;
  }
  if (format == Format::kJson) {
    std::string out;
    strata::protocol::JsonWriter w(&out);
    w.BeginObject().Key("shards").BeginArray();
    for (const v1::ShardsResponse::Shard& shard : r->shards()) {
      w.BeginObject().FieldUint("id", shard.id()).Field("leader", shard.leader());
      for (const auto& [key, names] :
           {std::pair{"voters", &shard.voters()}, std::pair{"learners", &shard.learners()},
            std::pair{"placement", &shard.placement()}}) {
        w.Key(key).BeginArray();
        for (const std::string& name : *names) w.String(name);
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndArray().EndObject();
    std::cout << out << "\n";
    return 0;
  }
  if (format == Format::kTable) std::cout << "| SHARD | LEADER | VOTERS | LEARNERS | PLACEMENT |\n";
  for (const v1::ShardsResponse::Shard& shard : r->shards()) {
    const std::string leader = shard.leader().empty() ? "-" : shard.leader();
    if (format == Format::kTable) {
      std::cout << "| " << shard.id() << " | " << leader << " | " << Joined(shard.voters()) << " | "
                << Joined(shard.learners()) << " | " << Joined(shard.placement()) << " |\n";
    } else {
      std::cout << "shard " << shard.id() << ": leader " << leader << ", voters "
                << Joined(shard.voters());
      if (!shard.learners().empty()) std::cout << ", learners " << Joined(shard.learners());
      if (!shard.placement().empty()) std::cout << ", placed on " << Joined(shard.placement());
      std::cout << "\n";
    }
  }
  return 0;
}

// Places `shard` on `members` (strata.v1 PlaceShard); with `wait`, prints
// the group's members as they change until they are the placement (or
// the time is up: exit 1).
int ShardPlace(const Endpoint& endpoint, uint32_t shard, const std::vector<std::string>& members,
               std::chrono::seconds wait) {
  {
    grpc::ClientContext ctx;
    v1::PlaceShardRequest req;
    req.set_shard(shard);
    for (const std::string& member : members) req.add_members(member);
    v1::PlaceShardResponse resp;
    if (auto s = v1::Strata::NewStub(Connect(endpoint))->PlaceShard(&ctx, req, &resp); !s.ok()) {
      std::cerr << Error(s) << "\n";
      return 1;
    }
  }
  std::cout << "shard " << shard << " placed on " << Joined({members.begin(), members.end()})
            << "\n";
  if (wait.count() == 0) return 0;
  const std::set<std::string> wanted(members.begin(), members.end());
  const auto deadline = std::chrono::steady_clock::now() + wait;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    strata::Result<v1::ShardsResponse> r = AskShards(endpoint);
    if (r.ok() && shard < static_cast<uint32_t>(r->shards_size())) {
      const v1::ShardsResponse::Shard& now = r->shards(static_cast<int>(shard));
      std::string line = "voters " + Joined(now.voters());
      if (!now.learners().empty()) line += ", learners " + Joined(now.learners());
      if (line != last) std::cout << "  " << line << "\n" << std::flush;
      last = line;
      if (now.learners().empty() &&
          std::set<std::string>(now.voters().begin(), now.voters().end()) == wanted) {
        std::cout << "shard " << shard << "'s replicas are where they were placed\n";
        return 0;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::cerr << "Error: shard " << shard << "'s replicas did not reach their placement within "
            << wait.count() << " s (they go on moving; `strata-ctl shard list` follows them)\n";
  return 1;
}

// The cluster's members' names (etcd's MemberList), in the order listed.
strata::Result<std::vector<std::string>> MemberNames(const Endpoint& endpoint) {
  grpc::ClientContext ctx;
  pb::MemberListResponse r;
  if (auto s =
          pb::Cluster::NewStub(Connect(endpoint))->MemberList(&ctx, pb::MemberListRequest(), &r);
      !s.ok()) {
    return strata::Status::Unavailable(Error(s));
  }
  std::vector<std::string> names;
  for (const auto& member : r.members()) names.push_back(member.name());
  return names;
}

// The shards as `endpoint` knows them, and how many each member has of what
// `counted` names of a shard (its voters, its leader); nullopt, said on
// stderr, if the endpoint does not answer.
using ShardCounts = std::pair<v1::ShardsResponse, std::map<std::string, int>>;
std::optional<ShardCounts> CountShards(
    const Endpoint& endpoint, const std::vector<std::string>& members,
    const std::function<std::vector<std::string>(const v1::ShardsResponse::Shard&)>& counted) {
  strata::Result<v1::ShardsResponse> r = AskShards(endpoint);
  if (!r.ok()) {
    std::cerr << r.status().message() << "\n";
    return std::nullopt;
  }
  std::map<std::string, int> counts;
  for (const std::string& member : members) counts[member] = 0;
  for (const auto& shard : r->shards()) {
    for (const std::string& member : counted(shard)) ++counts[member];
  }
  return ShardCounts{std::move(*r), std::move(counts)};
}

// Hands shards' leadership from the member leading most to the one leading
// fewest (placing the shard with that member first: its leader hands over
// to it), one shard at a time, until no two differ by more than one.
int SpreadLeaders(const Endpoint& endpoint, const std::vector<std::string>& members,
                  std::chrono::seconds wait) {
  int handed = 0;
  for (;;) {
    std::optional<ShardCounts> counted =
        CountShards(endpoint, members, [](const v1::ShardsResponse::Shard& shard) {
          return shard.leader().empty() ? std::vector<std::string>{}
                                        : std::vector<std::string>{shard.leader()};
        });
    if (!counted) return 1;
    const v1::ShardsResponse* r = &counted->first;
    std::map<std::string, int>& led = counted->second;
    // A shard led by the member leading most, of which one leading fewer
    // by two or more is a voter; that one leads it next.
    const v1::ShardsResponse::Shard* chosen = nullptr;
    std::string to;
    for (const auto& shard : r->shards()) {
      if (shard.leader().empty()) continue;
      for (const std::string& voter : shard.voters()) {
        if (led[shard.leader()] - led[voter] > 1 &&
            (chosen == nullptr ||
             led[shard.leader()] - led[voter] > led[chosen->leader()] - led[to])) {
          chosen = &shard, to = voter;
        }
      }
    }
    if (chosen == nullptr) break;
    std::vector<std::string> placement{to};
    for (const std::string& voter : chosen->voters()) {
      if (voter != to) placement.push_back(voter);
    }
    std::cout << "handing shard " << chosen->id() << "'s leadership from " << chosen->leader()
              << " to " << to << "\n";
    const uint32_t shard = chosen->id();
    if (int failed = ShardPlace(endpoint, shard, placement, std::chrono::seconds(0)); failed != 0) {
      return failed;
    }
    // Its leader hands over within a couple of seconds (it waits for the
    // new one to hold every committed entry).
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      strata::Result<v1::ShardsResponse> now = AskShards(endpoint);
      if (now.ok() && shard < static_cast<uint32_t>(now->shards_size()) &&
          now->shards(static_cast<int>(shard)).leader() == to) {
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        std::cerr << "Error: shard " << shard << "'s leadership did not move to " << to
                  << " within " << wait.count() << " s\n";
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (++handed > static_cast<int>(r->shards_size() * members.size())) {
      std::cerr << "Error: the leaders do not settle (the cluster changes meanwhile?)\n";
      return 1;
    }
  }
  std::cout << (handed == 0 ? "leaders already spread"
                            : std::to_string(handed) + " leaderships handed over")
            << "\n";
  return 0;
}

// Moves replicas, one shard at a time, each move followed to its end:
// `drain` off that member (each shard's replica there goes to the member
// that holds fewest), or with `drain` empty, from the member holding most
// to the one holding fewest until no two differ by more than one.
int ShardMoves(const Endpoint& endpoint, const std::string& drain, std::chrono::seconds wait) {
  strata::Result<std::vector<std::string>> members = MemberNames(endpoint);
  if (!members.ok()) {
    std::cerr << members.status().message() << "\n";
    return 1;
  }
  if (!drain.empty() && std::find(members->begin(), members->end(), drain) == members->end()) {
    std::cerr << "Error: no member '" << drain << "' in the cluster\n";
    return 1;
  }
  int moves = 0;
  for (;;) {
    std::optional<ShardCounts> counted =
        CountShards(endpoint, *members, [](const v1::ShardsResponse::Shard& shard) {
          return std::vector<std::string>(shard.voters().begin(), shard.voters().end());
        });
    if (!counted) return 1;
    const v1::ShardsResponse* r = &counted->first;
    std::map<std::string, int>& load = counted->second;
    // The next move: a shard, the member it leaves and the one it goes to.
    const v1::ShardsResponse::Shard* chosen = nullptr;
    std::string from, to;
    auto fewest_outside = [&](const v1::ShardsResponse::Shard& shard) {
      std::string best;
      for (const std::string& member : *members) {
        const bool in =
            std::find(shard.voters().begin(), shard.voters().end(), member) != shard.voters().end();
        if (in || member == drain) continue;
        if (best.empty() || load[member] < load[best]) best = member;
      }
      return best;
    };
    for (const auto& shard : r->shards()) {
      const auto& v = shard.voters();
      if (!drain.empty()) {
        if (std::find(v.begin(), v.end(), drain) == v.end()) continue;
        chosen = &shard, from = drain, to = fewest_outside(shard);
        break;
      }
      // The most loaded voter of this shard, and the least loaded outside.
      std::string most;
      for (const std::string& voter : v) {
        if (most.empty() || load[voter] > load[most]) most = voter;
      }
      const std::string least = fewest_outside(shard);
      if (!most.empty() && !least.empty() && load[most] - load[least] > 1 &&
          (chosen == nullptr || load[most] - load[least] > load[from] - load[to])) {
        chosen = &shard, from = most, to = least;
      }
    }
    if (chosen == nullptr) break;
    if (to.empty()) {
      std::cerr << "Error: shard " << chosen->id() << " has no member to move to from " << from
                << " (every other member holds it already)\n";
      return 1;
    }
    std::vector<std::string> placement;
    for (const std::string& voter : chosen->voters())
      placement.push_back(voter == from ? to : voter);
    // Its leader stays first, unless it is the one leaving.
    auto leader = std::find(placement.begin(), placement.end(), chosen->leader());
    if (leader != placement.end()) std::rotate(placement.begin(), leader, leader + 1);
    std::cout << "moving shard " << chosen->id() << "'s replica from " << from << " to " << to
              << "\n";
    if (int failed = ShardPlace(endpoint, chosen->id(), placement, wait); failed != 0) {
      return failed;
    }
    if (++moves > 4 * static_cast<int>(r->shards_size() * members->size())) {
      std::cerr << "Error: the moves do not settle (the cluster changes meanwhile?)\n";
      return 1;
    }
  }
  std::cout << (moves == 0 ? "nothing to move" : std::to_string(moves) + " replicas moved")
            << (drain.empty() ? "" : ": " + drain + " holds no replica") << "\n";
  return drain.empty() ? SpreadLeaders(endpoint, *members, wait) : 0;
}

// An interactive transaction: commands on stdin, one a line, answers on
// stdout. Ends at `commit` or `abort`; end of input without either aborts.
// `follower`: a follower read, at least at `min_rev` (BeginRequest).
int TxnShell(const Endpoint& endpoint, const std::string& isolation, int64_t rev, bool follower,
             int64_t min_rev) {
  auto stub = v1::Strata::NewStub(Connect(endpoint));
  uint64_t id = 0;
  {
    grpc::ClientContext ctx;
    v1::BeginRequest req;
    req.set_isolation(isolation == "snapshot" ? v1::SNAPSHOT : v1::SERIALIZABLE);
    req.set_read_revision(rev);
    req.set_follower_read(follower);
    req.set_min_read_revision(min_rev);
    v1::BeginResponse resp;
    if (auto s = stub->Begin(&ctx, req, &resp); !s.ok()) {
      std::cerr << Error(s) << "\n";
      return 1;
    }
    id = resp.txn_id();
    std::cout << "begun " << id << " (" << isolation << ", reads revision " << resp.read_revision()
              << ")\n"
              << std::flush;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string cmd, a, b;
    words >> cmd >> a;
    std::getline(words >> std::ws, b);  // a value may hold spaces
    grpc::ClientContext ctx;
    grpc::Status s;
    if (cmd.empty()) continue;
    if (cmd == "get") {
      v1::TxnGetRequest req;
      req.set_txn_id(id);
      req.set_key(a);
      v1::TxnGetResponse resp;
      s = stub->Get(&ctx, req, &resp);
      if (s.ok()) {
        if (resp.found()) {
          std::cout << a << "\n" << resp.kv().value() << "\n";
        } else {
          std::cout << "(not found)\n";
        }
      }
    } else if (cmd == "range") {
      v1::TxnRangeRequest req;
      req.set_txn_id(id);
      req.set_key(a);
      req.set_range_end(b);
      v1::TxnRangeResponse resp;
      s = stub->Range(&ctx, req, &resp);
      if (s.ok()) {
        for (const auto& kv : resp.kvs()) std::cout << kv.key() << "\n" << kv.value() << "\n";
      }
    } else if (cmd == "put") {
      v1::TxnPutRequest req;
      req.set_txn_id(id);
      req.set_key(a);
      req.set_value(b);
      v1::TxnPutResponse resp;
      s = stub->Put(&ctx, req, &resp);
      if (s.ok()) std::cout << "OK\n";
    } else if (cmd == "del") {
      v1::TxnDeleteRequest req;
      req.set_txn_id(id);
      req.set_key(a);
      v1::TxnDeleteResponse resp;
      s = stub->Delete(&ctx, req, &resp);
      if (s.ok()) std::cout << "OK\n";
    } else if (cmd == "commit") {
      v1::CommitRequest req;
      req.set_txn_id(id);
      v1::CommitResponse resp;
      s = stub->Commit(&ctx, req, &resp);
      if (!s.ok()) {
        std::cout << Error(s) << "\n";
        return 1;
      }
      std::cout << "committed at revision " << resp.revision() << "\n";
      return 0;
    } else if (cmd == "abort") {
      v1::AbortRequest req;
      req.set_txn_id(id);
      v1::AbortResponse resp;
      s = stub->Abort(&ctx, req, &resp);
      std::cout << (s.ok() ? "aborted\n" : Error(s) + "\n");
      return s.ok() ? 0 : 1;
    } else {
      std::cout << "commands: get K | range K [END] | put K V | del K | commit | abort\n";
      continue;
    }
    if (!s.ok()) std::cout << Error(s) << "\n";
    std::cout << std::flush;
  }
  grpc::ClientContext ctx;
  v1::AbortRequest req;
  req.set_txn_id(id);
  v1::AbortResponse resp;
  (void)stub->Abort(&ctx, req, &resp);
  std::cout << "aborted (end of input)\n";
  return 1;
}

// --endpoints may list several servers, comma-separated (as etcdctl's).
std::vector<Endpoint> EachEndpoint(const Endpoint& endpoints) {
  std::vector<Endpoint> out;
  std::stringstream list(endpoints.address);
  for (std::string address; std::getline(list, address, ',');) {
    if (address.empty()) continue;
    Endpoint one = endpoints;
    one.address = address;
    out.push_back(one);
  }
  return out;
}

void WithDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

std::string JsonString(std::string_view s) {
  std::string out;
  strata::protocol::AppendJsonString(&out, s);
  return out;
}

// endpoint health, as etcdctl's: a linearizable read answers and no alarm
// is raised. Exit status 1 if any endpoint is unhealthy.
int EndpointHealth(const Endpoint& endpoints, Format format) {
  struct Row {
    std::string endpoint;
    bool healthy;
    double took_ms;
    std::string error;
  };
  std::vector<Row> rows;
  for (const Endpoint& e : EachEndpoint(endpoints)) {
    auto channel = Connect(e);
    const auto start = std::chrono::steady_clock::now();
    grpc::ClientContext ctx;
    WithDeadline(&ctx);
    pb::RangeRequest read;
    read.set_key("health");
    read.set_count_only(true);
    pb::RangeResponse got;
    grpc::Status s = pb::KV::NewStub(channel)->Range(&ctx, read, &got);
    const double took =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::string error;
    if (!s.ok()) {
      error = "a read failed: " + s.error_message();
    } else {
      grpc::ClientContext actx;
      WithDeadline(&actx);
      pb::AlarmRequest list;
      list.set_action(pb::AlarmRequest::GET);
      pb::AlarmResponse alarms;
      grpc::Status a = pb::Maintenance::NewStub(channel)->Alarm(&actx, list, &alarms);
      if (!a.ok()) {
        error = "listing alarms failed: " + a.error_message();
      } else if (alarms.alarms_size() > 0) {
        error = "active alarm(s):";
        for (const auto& alarm : alarms.alarms()) {
          error += " " + pb::AlarmType_Name(alarm.alarm());
        }
      }
    }
    rows.push_back({e.address, error.empty(), took, error});
  }
  bool all = true;
  for (const auto& r : rows) all = all && r.healthy;
  char took[32];
  if (format == Format::kJson) {
    std::cout << "[";
    for (size_t i = 0; i < rows.size(); ++i) {
      std::snprintf(took, sizeof took, "%.3fms", rows[i].took_ms);
      std::cout << (i ? "," : "") << "{\"endpoint\":" << JsonString(rows[i].endpoint)
                << ",\"health\":" << (rows[i].healthy ? "true" : "false") << ",\"took\":\"" << took
                << "\"";
      if (!rows[i].healthy) std::cout << ",\"error\":" << JsonString(rows[i].error);
      std::cout << "}";
    }
    std::cout << "]\n";
  } else if (format == Format::kTable) {
    std::cout << "| ENDPOINT | HEALTH | TOOK | ERROR |\n";
    for (const auto& r : rows) {
      std::snprintf(took, sizeof took, "%.3fms", r.took_ms);
      std::cout << "| " << r.endpoint << " | " << (r.healthy ? "true" : "false") << " | " << took
                << " | " << r.error << " |\n";
    }
  } else {
    for (const auto& r : rows) {
      std::snprintf(took, sizeof took, "%.3fms", r.took_ms);
      if (r.healthy) {
        std::cout << r.endpoint << " is healthy: a linearizable read took " << took << "\n";
      } else {
        std::cerr << r.endpoint << " is unhealthy: " << r.error << "\n";
      }
    }
  }
  return all ? 0 : 1;
}

// endpoint status: etcd's Status and what holds strata's GC back.
int EndpointStatus(const Endpoint& endpoints, Format format) {
  int status = 0;
  std::vector<std::vector<std::pair<std::string, std::string>>> rows;
  for (const Endpoint& e : EachEndpoint(endpoints)) {
    auto channel = Connect(e);
    grpc::ClientContext ctx;
    WithDeadline(&ctx);
    pb::StatusResponse st;
    grpc::Status s = pb::Maintenance::NewStub(channel)->Status(&ctx, pb::StatusRequest(), &st);
    grpc::ClientContext sctx;
    WithDeadline(&sctx);
    v1::StatsResponse stats;
    if (s.ok()) s = v1::Strata::NewStub(channel)->Stats(&sctx, v1::StatsRequest(), &stats);
    if (!s.ok()) {
      std::cerr << e.address << ": " << Error(s) << "\n";
      status = 1;
      continue;
    }
    char id[32];
    std::snprintf(id, sizeof id, "%llx", static_cast<unsigned long long>(st.header().member_id()));
    std::string held = "nothing";
    if (stats.oldest_txn_id() != 0) {
      held = "transaction " + std::to_string(stats.oldest_txn_id()) + " at revision " +
             std::to_string(stats.min_active_snapshot());
    } else if (stats.gc_held_by_watcher_lag() != 0) {
      held = "watch " + std::to_string(stats.gc_held_by_watch_id()) + ", " +
             std::to_string(stats.gc_held_by_watcher_lag()) + " revisions behind";
    }
    rows.push_back({{"endpoint", e.address},
                    {"id", id},
                    {"version", st.version()},
                    {"db_size", std::to_string(st.dbsize())},
                    {"revision", std::to_string(st.header().revision())},
                    {"compact_revision", std::to_string(stats.compact_revision())},
                    {"low_water_mark", std::to_string(stats.compaction_horizon())},
                    {"gc_held_by", held},
                    {"keys", std::to_string(stats.keys())},
                    {"versions", std::to_string(stats.versions())}});
  }
  auto numeric = [](const std::string& k) {
    return k == "db_size" || k == "revision" || k == "compact_revision" || k == "low_water_mark" ||
           k == "keys" || k == "versions";
  };
  if (format == Format::kJson) {
    std::cout << "[";
    for (size_t i = 0; i < rows.size(); ++i) {
      std::cout << (i ? "," : "") << "{";
      for (size_t j = 0; j < rows[i].size(); ++j) {
        const auto& [k, v] = rows[i][j];
        std::cout << (j ? "," : "") << "\"" << k << "\":" << (numeric(k) ? v : JsonString(v));
      }
      std::cout << "}";
    }
    std::cout << "]\n";
  } else if (format == Format::kTable) {
    if (!rows.empty()) {
      std::cout << "|";
      for (const auto& [k, v] : rows[0]) std::cout << " " << k << " |";
      std::cout << "\n";
    }
    for (const auto& r : rows) {
      std::cout << "|";
      for (const auto& [k, v] : r) std::cout << " " << v << " |";
      std::cout << "\n";
    }
  } else {
    for (const auto& r : rows) {
      for (size_t j = 0; j < r.size(); ++j) std::cout << (j ? ", " : "") << r[j].second;
      std::cout << "\n";
    }
  }
  return status;
}

// Long work's progress on stderr: a bar redrawn in place on a terminal,
// plain lines (every tenth) otherwise, so a log or a pipe gets a few lines
// rather than a stream of carriage returns.
class Progress {
 public:
  explicit Progress(std::string what) : what_(std::move(what)), tty_(isatty(STDERR_FILENO)) {}
  // `total` 0: unknown (the bar then shows bytes only).
  void Update(uint64_t done, uint64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (tty_) {
      if (now - last_ < std::chrono::milliseconds(100) && done < total) return;
      last_ = now;
      std::string bar;
      if (total > 0) {
        const uint64_t filled = std::min<uint64_t>(30, done * 30 / total);
        bar = "[" + std::string(filled, '#') + std::string(30 - filled, ' ') + "] " +
              std::to_string(std::min<uint64_t>(100, done * 100 / total)) + "% ";
      }
      std::cerr << "\r" << what_ << " " << bar << Mib(done)
                << (total > 0 ? " of " + Mib(total) : std::string()) << "   " << std::flush;
      drawn_ = true;
      return;
    }
    const int step = total > 0 ? static_cast<int>(std::min<uint64_t>(10, done * 10 / total))
                               : static_cast<int>(done >> 26);  // every 64 MiB
    if (step == last_step_) return;
    last_step_ = step;
    std::cerr << what_ << ": " << (total > 0 ? std::to_string(step * 10) + "%, " : std::string())
              << Mib(done) << (total > 0 ? " of " + Mib(total) : std::string()) << "\n";
  }
  void Done() {
    if (drawn_) std::cerr << "\n";
  }

 private:
  static std::string Mib(uint64_t bytes) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    return b;
  }
  std::string what_;
  bool tty_;
  bool drawn_ = false;
  int last_step_ = -1;
  std::chrono::steady_clock::time_point last_{};
};

int SnapshotSave(const Endpoint& endpoint, const std::string& path) {
  auto stub = pb::Maintenance::NewStub(Connect(endpoint));
  grpc::ClientContext ctx;
  auto reader = stub->Snapshot(&ctx, pb::SnapshotRequest());
  const std::string part = path + ".part";
  std::ofstream out(part, std::ios::binary | std::ios::trunc);
  if (!out) {
    std::cerr << "Error: cannot write " << part << "\n";
    return 1;
  }
  pb::SnapshotResponse chunk;
  uint64_t bytes = 0;
  int64_t revision = 0;
  Progress progress("saving " + path);
  while (reader->Read(&chunk)) {
    out.write(chunk.blob().data(), static_cast<std::streamsize>(chunk.blob().size()));
    bytes += chunk.blob().size();
    revision = chunk.header().revision();
    // remaining_bytes is the server's estimate; the total is a hint too.
    progress.Update(bytes, bytes + chunk.remaining_bytes());
  }
  grpc::Status status = reader->Finish();
  out.close();
  progress.Update(bytes, bytes);
  progress.Done();
  if (!status.ok() || !out) {
    std::filesystem::remove(part);
    std::cerr << "Error: " << (status.ok() ? "writing " + part + " failed" : status.error_message())
              << "\n";
    return 1;
  }
  std::filesystem::rename(part, path);
  std::cout << "Snapshot saved at " << path << " (revision " << revision << ", " << bytes
            << " bytes)\n";
  return 0;
}

int SnapshotRestore(const std::string& path, const std::string& data_dir, int64_t revision,
                    const std::string& name, const std::string& initial_cluster) {
  strata::service::RestoreOptions options;
  if (!initial_cluster.empty() || !name.empty()) {
    // A member of a cluster: the names --initial-cluster gives (name=URL,
    // comma-separated; a name may come more than once, with another URL).
    std::set<std::string> names;
    for (size_t start = 0; start <= initial_cluster.size();) {
      size_t end = initial_cluster.find(',', start);
      if (end == std::string::npos) end = initial_cluster.size();
      const std::string entry = initial_cluster.substr(start, end - start);
      const size_t eq = entry.find('=');
      if (eq == 0 || eq == std::string::npos || eq + 1 == entry.size()) {
        std::cerr << "Error: --initial-cluster: '" << entry << "' is not name=peer-URL\n";
        return 1;
      }
      names.insert(entry.substr(0, eq));
      start = end + 1;
    }
    if (name.empty()) {
      std::cerr << "Error: --initial-cluster needs the member's --name\n";
      return 1;
    }
    strata::Status member =
        strata::service::ClusterKv::RestoreAsMember({names.begin(), names.end()}, name, &options);
    if (!member.ok()) {
      std::cerr << "Error: " << member.message() << "\n";
      return 1;
    }
  } else {
    strata::service::ClusterKv::RestoreAsNode(&options);  // a cluster's snapshot too
  }
  Progress progress("restoring " + path);
  options.as_of_revision = revision;
  options.progress = [&](uint64_t done, uint64_t total) { progress.Update(done, total); };
  auto report = strata::service::RestoreSnapshot(path, data_dir, options);
  progress.Done();
  if (!report.ok()) {
    std::cerr << "Error: " << report.status().message() << "\n";
    return 1;
  }
  if (!name.empty()) {
    // A member's keys are in its own store: its shard has one replica,
    // which the server is to keep whatever its default.
    if (strata::Status s = strata::server::RecordShardLayout(data_dir, 1); !s.ok()) {
      std::cerr << "Error: " << s.message() << "\n";
      return 1;
    }
  }
  const auto& r = report.value();
  std::cout << "Restored " << path << " into " << data_dir << ": revision " << r.revision
            << ", compacted at " << r.compact_revision << ", " << r.keys << " keys, " << r.versions
            << " versions, " << r.leases << " leases, " << r.users << " users\n";
  if (r.leases_regranted > 0) {
    std::cout << r.leases_regranted << " leases ended after revision " << r.revision
              << " were granted again for " << strata::service::kRegrantedLeaseTtl
              << " s, so their keys expire unless kept alive\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strata-ctl: strata's own commands, beside etcdctl"};
  app.set_version_flag("--version", std::string("strata-ctl ") + STRATA_VERSION);
  app.fallthrough();  // --endpoints and -w after the command too
  app.require_subcommand(1);
  Endpoint endpoint;
  app.add_option("--endpoints", endpoint.address,
                 "the server: host:port, or https://host:port for TLS (endpoint health and "
                 "status take several, comma-separated)")
      ->capture_default_str();
  app.add_option("--cacert", endpoint.cacert, "verify the server's certificate with this CA");
  app.add_option("--cert", endpoint.cert, "this client's certificate (for --client-cert-auth)");
  app.add_option("--key", endpoint.key, "the private key of --cert");
  app.add_option("--user", endpoint.user,
                 "NAME:PASSWORD, or NAME to be asked the password (with auth enabled)");

  std::string write_out = "simple";
  app.add_option("-w,--write-out", write_out, "output format")
      ->check(CLI::IsMember({"simple", "json", "table"}))
      ->capture_default_str();

  std::string key, prefix, isolation = "serializable";
  int64_t from = 0, to = 0, limit = 0, rev = 0, since = 0, min_rev = 0;
  bool follower_read = false;
  auto* history = app.add_subcommand("history", "every stored version of KEY (deletes too)");
  history->add_option("key", key)->required();
  history->add_option("--from", from, "from this revision (default: the oldest kept)");
  history->add_option("--to", to, "to this revision (default: the newest)");
  history->add_option("--limit", limit, "at most this many (default 1000, at most 10000)");
  auto* get = app.add_subcommand("get", "KEY as it was at revision --rev (etcd's Range)");
  get->add_option("key", key)->required();
  get->add_option("--rev", rev, "the revision (default: the current one)");
  auto* changes = app.add_subcommand("changes", "every version written after --since");
  changes->add_option("--since", since, "the revision after which to list")->required();
  changes->add_option("--prefix", prefix, "only keys starting with this");
  changes->add_option("--limit", limit, "at most this many (default 1000, at most 10000)");
  auto* txn = app.add_subcommand(
      "txn", "an interactive transaction: get/range/put/del/commit/abort on stdin, a line each");
  txn->add_option("--isolation", isolation)
      ->check(CLI::IsMember({"serializable", "snapshot"}))
      ->capture_default_str();
  txn->add_option("--rev", rev, "read this past revision (read-only)");
  auto* follower_flag = txn->add_flag(
      "--follower-read", follower_read,
      "read-only, from the member's own replicas of every shard, at what they resolved");
  txn->add_option("--min-rev", min_rev,
                  "with --follower-read: at least this revision (the newest one you saw)")
      ->needs(follower_flag);
  follower_flag->excludes("--rev");
  auto* stats =
      app.add_subcommand("stats", "the store, the log, and what holds garbage collection back");

  auto* shard_cmd = app.add_subcommand(
      "shard", "a cluster's shards: where each one's replicas are, and moving them");
  shard_cmd->require_subcommand(1);
  auto* shard_list = shard_cmd->add_subcommand(
      "list", "each shard's leader, voters, learners and placement, as the member asked knows");
  uint32_t place_shard = 0;
  std::string place_members;
  int place_wait_s = 60;
  auto* shard_place = shard_cmd->add_subcommand(
      "place",
      "move SHARD's replicas onto MEMBERS (names, comma-separated, the first to lead "
      "it): new ones join and catch up before others leave");
  shard_place->add_option("shard", place_shard, "the shard's number (see shard list)")->required();
  shard_place->add_option("members", place_members, "member names, comma-separated")->required();
  shard_place
      ->add_option("--wait", place_wait_s,
                   "seconds to follow the move until done (0: return at once)")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600));

  std::string drain_member;
  auto* shard_drain = shard_cmd->add_subcommand(
      "drain",
      "move every replica off MEMBER, one shard at a time (before it is stopped for good)");
  shard_drain->add_option("member", drain_member, "the member's name")->required();
  auto* shard_balance = shard_cmd->add_subcommand(
      "balance",
      "move replicas from the members holding most to those holding fewest, one "
      "shard at a time, until no two members differ by more than one");
  for (CLI::App* moves : {shard_drain, shard_balance}) {
    moves->add_option("--wait", place_wait_s, "seconds each move may take")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
  }

  auto* endpoint_cmd = app.add_subcommand("endpoint", "the health and status of the servers");
  endpoint_cmd->require_subcommand(1);
  auto* health = endpoint_cmd->add_subcommand(
      "health", "healthy: a linearizable read answers and no alarm is raised (exit 1 if not)");
  auto* status = endpoint_cmd->add_subcommand(
      "status", "member id, version, size, revision, compaction and what holds GC back");

  auto* snapshot = app.add_subcommand("snapshot", "save a server's snapshot, or restore one");
  snapshot->require_subcommand(1);
  std::string save_path;
  auto* save = snapshot->add_subcommand("save", "stream the server's snapshot into FILE");
  save->add_option("file", save_path, "where to write it")->required();
  std::string restore_path, data_dir;
  auto* restore = snapshot->add_subcommand(
      "restore", "make a new data directory from FILE (then start strata-server on it)");
  restore->add_option("file", restore_path, "a snapshot written by `snapshot save`")->required();
  restore->add_option("--data-dir", data_dir, "the new data directory (must not hold a store)")
      ->required();
  int64_t restore_revision = 0;
  restore->add_option("--revision", restore_revision,
                      "point in time: the store as it was at this revision (at or above the "
                      "snapshot's compaction; default: the snapshot's revision)");
  std::string restore_name, restore_cluster;
  restore->add_option("--name", restore_name,
                      "a cluster's snapshot: the member restored (its strata-server --name)");
  restore->add_option("--initial-cluster", restore_cluster,
                      "a cluster's snapshot: the members of the cluster restored into, "
                      "name=peer-URL,... (as strata-server's; of any size)");
  CLI11_PARSE(app, argc, argv);

  const Format format = write_out == "json"    ? Format::kJson
                        : write_out == "table" ? Format::kTable
                                               : Format::kSimple;
  if (history->parsed()) return History(endpoint, key, from, to, limit, format);
  if (get->parsed()) return Get(endpoint, key, rev, format);
  if (changes->parsed()) return Changes(endpoint, since, prefix, limit, format);
  if (txn->parsed()) return TxnShell(endpoint, isolation, rev, follower_read, min_rev);
  if (stats->parsed()) return Stats(endpoint, format);
  if (shard_list->parsed()) return ShardList(endpoint, format);
  if (shard_place->parsed()) {
    std::vector<std::string> members;
    std::stringstream names(place_members);
    for (std::string name; std::getline(names, name, ',');) members.push_back(name);
    return ShardPlace(endpoint, place_shard, members, std::chrono::seconds(place_wait_s));
  }
  if (shard_drain->parsed()) {
    return ShardMoves(endpoint, drain_member, std::chrono::seconds(place_wait_s));
  }
  if (shard_balance->parsed()) return ShardMoves(endpoint, "", std::chrono::seconds(place_wait_s));
  if (health->parsed()) return EndpointHealth(endpoint, format);
  if (status->parsed()) return EndpointStatus(endpoint, format);
  if (save->parsed()) return SnapshotSave(endpoint, save_path);
  if (restore->parsed()) {
    return SnapshotRestore(restore_path, data_dir, restore_revision, restore_name, restore_cluster);
  }
  return 2;
}
