// SharedAuthRecord: where the members of a cluster keep the one copy of
// etcd's users, roles and permissions that they all enforce, and how they
// learn of each other's tokens. A sharded cluster keeps it as a record in
// its key space (ClusterFront), a replicated one as replicated state of its
// Raft group (ReplicatedFront); ClusterAuthJournal saves through either.
//
// Every call may wait for the cluster: from a worker thread, never from a
// member's loop nor a gRPC reaction.
#ifndef STRATA_SERVER_SHARED_AUTH_RECORD_H_
#define STRATA_SERVER_SHARED_AUTH_RECORD_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "strata/status.h"

namespace strata::server {

// What a save or token that got no answer within `wait` returns: it may
// still be made.
inline Status NoAnswerWithin(std::chrono::milliseconds wait) {
  return Status::Unavailable("the cluster did not answer in " + std::to_string(wait.count()) +
                             " ms; the change may still be made");
}

class SharedAuthRecord {
 public:
  virtual ~SharedAuthRecord() = default;
  // Saves `encoded` (an AuthState) in place of revision `replaces` (1 when
  // none was ever saved), durable when Ok; kConflict with the record's
  // state in *newer; kUnavailable after `wait` (the save may then still
  // be made).
  virtual Status SaveAuth(const std::string& encoded, uint64_t replaces, std::string* newer,
                          std::chrono::milliseconds wait) = 0;
  // Tells every other member of a new state or of a token, waiting at most
  // `wait`; how many took it. A record every member applies by itself
  // needs no telling of states (0).
  virtual size_t TellAuthState(const std::string& encoded, std::chrono::milliseconds wait) = 0;
  virtual size_t TellAuthToken(const std::string& token, const std::string& user,
                               std::chrono::milliseconds wait) = 0;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_SHARED_AUTH_RECORD_H_
