// The names of a replicated group's members, kept beside its Raft log.
//
// Members number themselves from their names (in name order, from 1), and
// Raft's votes and logs name those numbers. Started again with another
// list, a member would give a number another member had before: a vote
// it gave one member would count for another. So the list given at the
// first start is kept, and every later start must give the same one until
// membership changes are offered (docs/REPLICATION.md).
#ifndef STRATA_REPLICATION_MEMBER_NAMES_H_
#define STRATA_REPLICATION_MEMBER_NAMES_H_

#include <string>
#include <vector>

#include "strata/status.h"

namespace strata::replication {

// Keeps `names` (in name order) in `dir` if nothing is kept there yet;
// otherwise kInvalidArgument unless they are the names kept, naming both.
Status KeepMemberNames(const std::string& dir, const std::vector<std::string>& names);

}  // namespace strata::replication

#endif  // STRATA_REPLICATION_MEMBER_NAMES_H_
