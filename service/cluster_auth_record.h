// ClusterAuthRecord: etcd's users, roles and permissions (an encoded
// AuthState) as one record in the cluster's own key space ("\0auth": tag
// 0x00, which no etcd key has), so every member reads and changes the same
// state. A change is a cluster transaction that reads the record and
// writes it only if it is still the revision the change was made over:
// two members changing it at once cannot both win.
//
// Not thread-safe: runs on the member's loop thread.
#ifndef STRATA_SERVICE_CLUSTER_AUTH_RECORD_H_
#define STRATA_SERVICE_CLUSTER_AUTH_RECORD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cluster/coordinator.h"
#include "strata/status.h"

namespace strata::service {

class ClusterAuthRecord final {
 public:
  // The record's key in the engine's key space.
  static const std::string& Key();

  explicit ClusterAuthRecord(cluster::Coordinator* coordinator) : coordinator_(coordinator) {}
  ~ClusterAuthRecord() { *alive_ = false; }

  // The record as of now: its bytes, empty if no change was ever saved (an
  // encoded state never is).
  void Load(std::function<void(Status, std::string)> done);

  struct Saved {
    Status status;      // kConflict: the record is not at `replaces`
    std::string newer;  // then, what it holds
  };
  // Writes `encoded` if the record holds revision `replaces` (1 when none
  // was ever saved, a fresh AuthState's).
  void Save(std::string encoded, uint64_t replaces, std::function<void(Saved)> done);

 private:
  cluster::Coordinator* coordinator_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_CLUSTER_AUTH_RECORD_H_
