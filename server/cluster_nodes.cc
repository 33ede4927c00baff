#include "server/cluster_nodes.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "peer.grpc.pb.h"
#include "server/member_files.h"

namespace strata::server {

namespace {

namespace peerpb = ::strata::peer::v1;  // NOLINT: as server/peer_proto.h

// Saves lost to another member's change at once are made again over it.
constexpr int kSaveAttempts = 5;

}  // namespace

std::string HostPortOf(const std::string& peer_url) {
  std::string host_port = peer_url;
  if (const size_t scheme = host_port.find("://"); scheme != std::string::npos) {
    host_port = host_port.substr(scheme + 3);
  }
  while (!host_port.empty() && host_port.back() == '/') host_port.pop_back();
  return host_port;
}

Result<std::optional<cluster::NodeList>> ReadNodeListCopy(const std::string& path) {
  Result<std::optional<std::string>> bytes = ReadFileIfAny(path);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return std::optional<cluster::NodeList>();
  Result<cluster::NodeList> list = cluster::NodeList::Decode(**bytes);
  if (!list.ok()) {
    return Status::IoError(path + " does not hold a member list: " + list.status().message());
  }
  return std::optional<cluster::NodeList>(std::move(*list));
}

Result<cluster::NodeList> JoinCluster(const std::vector<std::string>& peer_addresses,
                                      const std::string& name, const std::string& peer_url,
                                      std::shared_ptr<grpc::ChannelCredentials> credentials,
                                      std::chrono::milliseconds patience) {
  if (peer_addresses.empty()) {
    return Status::InvalidArgument("--initial-cluster names no other member to join");
  }
  const auto give_up = std::chrono::steady_clock::now() + patience;
  std::string last_error = "no member answered";
  for (size_t i = 0;; ++i) {
    const std::string& address = peer_addresses[i % peer_addresses.size()];
    auto channel = grpc::CreateChannel(
        address, credentials ? credentials : grpc::InsecureChannelCredentials());
    auto stub = peerpb::Peer::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    peerpb::JoinRequest request;
    request.set_name(name);
    request.set_peer_url(peer_url);
    peerpb::JoinReply reply;
    const grpc::Status status = stub->Join(&context, request, &reply);
    if (status.ok()) {
      Result<cluster::NodeList> list = cluster::NodeList::Decode(reply.node_list());
      if (!list.ok())
        return Status::IoError("member at " + address + ": " + list.status().message());
      return list;
    }
    // A refusal is final; a member that is down or busy is not.
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
      return Status::NotFound(status.error_message());
    }
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      return Status::PreconditionFailed(status.error_message());
    }
    last_error = "member at " + address + ": " + status.error_message();
    if (std::chrono::steady_clock::now() >= give_up) break;
    if (i % peer_addresses.size() == peer_addresses.size() - 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  return Status::Unavailable("cannot join the cluster: " + last_error);
}

ClusterNodes::ClusterNodes(cluster::NodeList start, Options options)
    : options_(std::move(options)), current_(std::move(start)) {}

cluster::NodeList ClusterNodes::Current() const {
  MutexLock lock(mu_);
  return current_;
}

void ClusterNodes::Attach(cluster::Coordinator* coordinator, cluster::Timers* timers) {
  record_ = service::ClusterRecord::Nodes(coordinator);
  timers->Every(options_.refresh, [this] { Load(); });
  Load();
}

void ClusterNodes::Load() {
  record_->Load([this, alive = alive_](Status s, std::string encoded) {
    if (!*alive || !s.ok() || encoded.empty()) return;
    Result<cluster::NodeList> list = cluster::NodeList::Decode(encoded);
    if (list.ok()) Adopt(*list);
  });
}

void ClusterNodes::Adopt(const cluster::NodeList& list) {
  std::string conflict;
  {
    MutexLock lock(mu_);
    if (list.revision() <= current_.revision()) return;
    // A number keeps its node: a list that numbers one otherwise is
    // another view of the cluster than this member's, not a later one.
    const size_t common = std::min(list.nodes().size(), current_.nodes().size());
    for (size_t i = 0; i < common && conflict.empty(); ++i) {
      const std::string& known = current_.nodes()[i].name;
      if (!known.empty() && known != list.nodes()[i].name) {
        conflict = "the cluster's member list numbers member " + std::to_string(i) + " '" +
                   list.nodes()[i].name + "', this member '" + known +
                   "' (started from flags other than the first members', or its copy of the "
                   "list lost?)";
      }
    }
    if (conflict.empty()) current_ = list;
  }
  if (!conflict.empty()) return Stop(conflict);
  WriteCopy(list);
  if (options_.adopted) options_.adopted(list);
  const std::optional<size_t> self = list.NumberOf(options_.self);
  if (self && list.nodes()[*self].gone) Stop("this member was removed from the cluster");
}

std::string RemovedMarkerPath(const std::string& copy_path) { return copy_path + ".removed"; }

Status RefusedAsRemoved(const std::string& copy_path) {
  Result<std::optional<std::string>> why = ReadFileIfAny(RemovedMarkerPath(copy_path));
  if (!why.ok()) return why.status();
  if (!why->has_value()) return Status::Ok();
  std::string text = **why;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return Status::PreconditionFailed(
      text +
      "; a removed member does not come back: start it with a new data directory after "
      "etcdctl member add (" +
      RemovedMarkerPath(copy_path) + ")");
}

void ClusterNodes::ToldRemoved(const std::string& by) {
  const std::string why =
      "this member was removed from the cluster (member '" + by + "' refuses it)";
  if (!stopped_ && !options_.copy_path.empty()) {
    if (Status s = WriteFileDurably(RemovedMarkerPath(options_.copy_path), why + "\n");
        !s.ok() && options_.log) {
      options_.log("keeping that this member was removed: " + s.message());
    }
  }
  Stop(why);
}

void ClusterNodes::Stop(const std::string& why) {
  if (stopped_) return;
  stopped_ = true;
  if (options_.log) options_.log(why);
  if (options_.stop) options_.stop(why);
}

Status ClusterNodes::KeepCopy() {
  if (options_.copy_path.empty()) return Status::Ok();
  return WriteFileDurably(options_.copy_path, Current().Encode());
}

void ClusterNodes::WriteCopy(const cluster::NodeList& list) {
  if (options_.copy_path.empty()) return;
  // Small and rare (a change of members): written on the loop.
  if (Status s = WriteFileDurably(options_.copy_path, list.Encode()); !s.ok() && options_.log) {
    options_.log("the member list's copy: " + s.message());
  }
}

void ClusterNodes::Make(Change change, std::function<void(Result<cluster::NodeList>)> done) {
  if (!record_) return done(Status::Unavailable("the member is starting"));
  Attempt(std::move(change), kSaveAttempts, std::move(done));
}

void ClusterNodes::Attempt(Change change, int attempts_left,
                           std::function<void(Result<cluster::NodeList>)> done) {
  // Over the record's newest: a member added a moment ago on another
  // member may not be here yet (its Join would find no such member).
  record_->Load([this, alive = alive_, change = std::move(change), attempts_left,
                 done = std::move(done)](Status loaded, std::string encoded) mutable {
    if (!*alive) return;
    if (!loaded.ok()) return done(loaded);
    if (!encoded.empty()) {
      Result<cluster::NodeList> newer = cluster::NodeList::Decode(encoded);
      if (!newer.ok()) return done(Status::IoError("the cluster's member list cannot be decoded"));
      Adopt(*newer);
    }
    Save(std::move(change), attempts_left, std::move(done));
  });
}

void ClusterNodes::Save(Change change, int attempts_left,
                        std::function<void(Result<cluster::NodeList>)> done) {
  cluster::NodeList next = Current();
  const uint64_t replaces = next.revision();
  if (Status s = change(&next); !s.ok()) return done(s);
  if (next.revision() == replaces) return done(next);  // nothing to change
  record_->Save(next.Encode(), replaces,
                [this, alive = alive_, next, change = std::move(change), attempts_left,
                 done = std::move(done)](service::ClusterRecord::Saved saved) mutable {
                  if (!*alive) return;
                  if (saved.status.ok()) {
                    Adopt(next);
                    return done(next);
                  }
                  if (saved.status.code() != StatusCode::kConflict || attempts_left <= 1) {
                    return done(saved.status);
                  }
                  // Another member changed it first: over theirs.
                  Attempt(std::move(change), attempts_left - 1, std::move(done));
                });
}

}  // namespace strata::server
