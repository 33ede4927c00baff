// ClusterAuthJournal: where a cluster member's AuthStore keeps etcd's
// users, roles and permissions, so that every member enforces the same.
//
//  - The state of record is the cluster's (server/shared_auth_record.h): a
//    record in a sharded cluster's key space (service/cluster_record.h),
//    replicated state of a replicated one. A change is saved there only over
//    the revision it was made on; a member that had not heard of a newer
//    change gets it back, takes it and makes its change again over it.
//  - Once saved, the member tells every other member the new state and
//    waits (at most a second) until they have taken it, so in the usual
//    case a grant or revoke acknowledged by one member is in force on all.
//    A member that was down or cut off reads the record within a second of
//    being reachable again (ClusterFrontOptions::auth_refresh).
//  - Tokens Authenticate hands out are told to the other members the same
//    way, so a client may use its token on any member, as with etcd.
//  - Each member keeps a copy of the last state it knew in its own data
//    directory (data/auth), written by a thread of this journal's: a member
//    restarted while the record is out of reach enforces that copy rather
//    than nothing.
#ifndef STRATA_SERVER_CLUSTER_AUTH_H_
#define STRATA_SERVER_CLUSTER_AUTH_H_

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "base/mutex.h"
#include "server/shared_auth_record.h"
#include "service/auth_store.h"

namespace strata::server {

class ClusterAuthJournal final : public service::AuthJournal {
 public:
  // `copy` (null for an in-memory server) must outlive this.
  explicit ClusterAuthJournal(service::StoreAuthJournal* copy);
  ~ClusterAuthJournal() override;  // writes the copy still pending

  // The member, once started: saves before it fail with kUnavailable.
  void Attach(SharedAuthRecord* front) { front_.store(front, std::memory_order_release); }
  void Detach() { front_.store(nullptr, std::memory_order_release); }
  // A newer state another member made (from the member's loop): only the
  // copy needs writing.
  void KeepCopy(std::string encoded);

  Status Save(const std::string& encoded, uint64_t replaces, std::string* newer) override;
  std::optional<std::string> Load() override;  // the member's copy
  void TokenAssigned(const std::string& token, const std::string& user) override;

 private:
  void WriteCopies();

  service::StoreAuthJournal* const copy_;
  std::atomic<SharedAuthRecord*> front_{nullptr};
  Mutex mu_;
  CondVar cv_;
  std::optional<std::string> pending_ STRATA_GUARDED_BY(mu_);  // the newest copy not yet written
  bool stopping_ STRATA_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_CLUSTER_AUTH_H_
