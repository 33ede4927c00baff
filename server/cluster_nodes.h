// ClusterNodes: a sharded cluster's member list (cluster/node_list.h) as one
// member keeps it, and how it changes.
//
//  - The list of record is the cluster's: a record in its key space
//    (service/cluster_record.h, "\0nodes"), changed by compare-and-swap, so
//    two members adding at once cannot give one number twice. Until the
//    first change it is not saved: every first member makes it from its
//    flags alike (NodeList::First).
//  - Each member reads the record every `refresh` and takes a newer list
//    (`adopted`: it links to the members that came, and stops waiting for
//    the ones that left); the member that made a change takes it at once.
//  - Each member keeps a copy in its data directory, so that it restarts
//    with the numbers and peers it had even when no other member answers.
//
// A member that joins (started after `etcdctl member add`, with
// --initial-cluster-state existing) has no list at all: it asks a member
// named in its flags (JoinCluster) before it starts, naming itself.
//
// Thread-safety: Current() from any thread; the rest on the member's loop.
#ifndef STRATA_SERVER_CLUSTER_NODES_H_
#define STRATA_SERVER_CLUSTER_NODES_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "base/mutex.h"
#include "cluster/coordinator.h"
#include "cluster/node_list.h"
#include "cluster/timers.h"
#include "service/cluster_record.h"
#include "strata/status.h"

namespace strata::server {

// "http://host:port/" -> "host:port".
std::string HostPortOf(const std::string& peer_url);

// The copy of the list in `path`; nullopt if there is none, an error if it
// does not read or decode.
Result<std::optional<cluster::NodeList>> ReadNodeListCopy(const std::string& path);
// Where a member told by a peer that it was removed (ToldRemoved) keeps
// why, beside its copy of the list: that copy, older than its removal,
// still names it, so a restart would run until refused again. The start
// refuses instead (RefusedAsRemoved).
std::string RemovedMarkerPath(const std::string& copy_path);
// Ok, or why this member may not start: it was told it was removed.
Status RefusedAsRemoved(const std::string& copy_path);

// A joining member's first start: asks each of `peer_addresses` (host:port,
// in turn, for at most `patience` in all) to name `name` the member added
// at `peer_url`, and returns the list it answers. kNotFound and
// kPreconditionFailed as the member answered (not added, or the name is
// another's); kUnavailable if none answered.
Result<cluster::NodeList> JoinCluster(const std::vector<std::string>& peer_addresses,
                                      const std::string& name, const std::string& peer_url,
                                      std::shared_ptr<grpc::ChannelCredentials> credentials,
                                      std::chrono::milliseconds patience);

class ClusterNodes final {
 public:
  struct Options {
    std::string self;
    std::string copy_path;  // "" (in memory): no copy
    std::chrono::milliseconds refresh{1000};
    // On the loop, after a newer list was taken (and before it is answered
    // to whoever changed it).
    std::function<void(const cluster::NodeList&)> adopted;
    std::function<void(const std::string&)> log;  // may be null
    // On the loop, once, saying why, when this member must not go on: a
    // list taken says it is gone (it was removed while running), or the
    // record numbers the members otherwise than this member does (it was
    // started from flags that are not the first members', its copy lost).
    // Such a list is not taken. May be null.
    std::function<void(const std::string& why)> stop;
  };
  ClusterNodes(cluster::NodeList start, Options options);
  ~ClusterNodes() { *alive_ = false; }

  // The list as this member knows it (any thread).
  cluster::NodeList Current() const;

  // On the loop, once the member runs: the record read now and every
  // `refresh`.
  void Attach(cluster::Coordinator* coordinator, cluster::Timers* timers);

  // A change of the list (NodeList::Add, Name or Remove on it): made over
  // the record's newest (read first), saved, taken here; `done` gets the
  // list, or why not (the change's refusal, or the cluster's: kUnavailable).
  using Change = std::function<Status(cluster::NodeList*)>;
  void Make(Change change, std::function<void(Result<cluster::NodeList>)> done);

  // On the loop: member `by` refused this one as removed from the cluster
  // (PeerNetwork), which a member cut off while it was removed learns only
  // so: it stops (Options::stop).
  void ToldRemoved(const std::string& by);
  // Takes `list` if newer than the one known (on the loop).
  void Adopt(const cluster::NodeList& list);
  // Writes the copy of the list known (at start, when there was none: a
  // member that joined must not restart from its flags, which do not say
  // its number).
  Status KeepCopy();

 private:
  void Load();
  // Reads the record (taking a newer list), then Save.
  void Attempt(Change change, int attempts_left,
               std::function<void(Result<cluster::NodeList>)> done);
  // Makes `change` over the list known and saves it over its revision.
  void Save(Change change, int attempts_left, std::function<void(Result<cluster::NodeList>)> done);
  void WriteCopy(const cluster::NodeList& list);

  const Options options_;
  mutable Mutex mu_;
  cluster::NodeList current_ STRATA_GUARDED_BY(mu_);
  std::unique_ptr<service::ClusterRecord> record_;  // the loop's
  bool stopped_ = false;                            // the loop's: told once
  void Stop(const std::string& why);
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace strata::server

#endif  // STRATA_SERVER_CLUSTER_NODES_H_
