// ClusterRecord: one record of the cluster's own in its key space (tag
// 0x00, which no etcd key has), which every member reads and changes: etcd's
// users, roles and permissions (an encoded AuthState, "\0auth"), and the
// cluster's member list (cluster/node_list.h, "\0nodes"). A change is a
// cluster transaction that reads the record and writes it only if it still
// holds the revision the change was made over: two members changing it at
// once cannot both win.
//
// Not thread-safe: runs on the member's loop thread.
#ifndef STRATA_SERVICE_CLUSTER_RECORD_H_
#define STRATA_SERVICE_CLUSTER_RECORD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cluster/coordinator.h"
#include "strata/status.h"

namespace strata::service {

class ClusterRecord final {
 public:
  // The revision a record's bytes hold (nullopt: not of this record: it is
  // damaged); called with nullopt for a record never saved.
  using RevisionOf = std::function<std::optional<uint64_t>(const std::optional<std::string>&)>;

  // The auth record and the member list.
  static const std::string& AuthKey();
  static const std::string& NodesKey();
  static std::unique_ptr<ClusterRecord> Auth(cluster::Coordinator* coordinator);
  static std::unique_ptr<ClusterRecord> Nodes(cluster::Coordinator* coordinator);

  // `what` names the record in errors ("auth", "member list").
  ClusterRecord(cluster::Coordinator* coordinator, std::string key, std::string what,
                RevisionOf revision_of)
      : coordinator_(coordinator),
        key_(std::move(key)),
        what_(std::move(what)),
        revision_of_(std::move(revision_of)) {}
  ~ClusterRecord() { *alive_ = false; }

  // The record as of now: its bytes, empty if no change was ever saved.
  void Load(std::function<void(Status, std::string)> done);

  struct Saved {
    Status status;      // kConflict: the record is not at `replaces`
    std::string newer;  // then, what it holds
  };
  // Writes `encoded` if the record holds revision `replaces` (what
  // revision_of says of a record never saved, when none was).
  void Save(std::string encoded, uint64_t replaces, std::function<void(Saved)> done);

 private:
  cluster::Coordinator* coordinator_;
  const std::string key_;
  const std::string what_;
  const RevisionOf revision_of_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_CLUSTER_RECORD_H_
