// The number a replicated group's member goes by, kept beside its Raft log.
//
// Raft's votes and logs name members by number. A member's number is its
// etcd member id, derived from its peer URL and the cluster token, so a
// member added later knows its own from its flags, and every member
// computes every other's. Started again with flags that give another
// number (another peer URL or token), the member would answer as a member
// the group does not know while its log says it voted as the old one: so
// the number of the first start is kept, and every later start must give
// the same one.
#ifndef STRATA_REPLICATION_MEMBER_ID_H_
#define STRATA_REPLICATION_MEMBER_ID_H_

#include <cstdint>
#include <string>

#include "strata/status.h"

namespace strata::replication {

// Keeps `id` in `dir` if nothing is kept there yet; otherwise
// kInvalidArgument unless it is the id kept, naming both. A directory of a
// strata that numbered members by name (before membership changes) is
// refused, saying so.
Status KeepMemberId(const std::string& dir, uint64_t id);

}  // namespace strata::replication

#endif  // STRATA_REPLICATION_MEMBER_ID_H_
