// Incarnations: telling a member that lost its disk from the member it was.
//
// A member started again with an empty Raft log has forgotten its votes and
// the entries it acknowledged. Back under its old number it could vote
// twice in one term (two leaders) or count towards a majority for entries
// it no longer holds. So:
//  - each member's Raft directory holds an incarnation, a random number
//    made when the directory is created (KeepIncarnation); the member's
//    Raft batches carry it;
//  - the group keeps, as replicated state, the incarnation it first heard
//    from each member (RegisteredState: the leader proposes it);
//  - a batch whose incarnation is not the one the group holds for its
//    sender comes from a member whose disk was replaced: it is dropped, so
//    that member's votes and acknowledgements count for nothing.
// Such a member cannot rejoin under its old number; it must be removed and
// added again as a new member (docs/REPLICATION.md). Until the group has
// applied a member's first incarnation (its first moments in the group),
// a replacement of it goes unrecognised.
#ifndef STRATA_REPLICATION_INCARNATIONS_H_
#define STRATA_REPLICATION_INCARNATIONS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "raft/raft_types.h"
#include "replication/raft_host.h"
#include "strata/status.h"

namespace strata::replication {

// This member's incarnation: the one kept in `dir` (the Raft directory),
// or a new one (never 0) kept there durably if `dir` has none yet.
Result<uint64_t> KeepIncarnation(const std::string& dir);

// A group's replicated state with the incarnation it holds for each
// member, around the state the group exists for (`inner`). Commands that
// begin with kRegisterByte are the registry's; every other goes to
// `inner`, as do snapshots (within the registry's own framing).
class RegisteredState final : public ReplicatedState {
 public:
  static constexpr char kRegisterByte = '\x01';

  explicit RegisteredState(std::unique_ptr<ReplicatedState> inner);

  // Registers `incarnation` for `node`, unless the group holds one for it
  // already (the first registration stands).
  static std::string RegisterCommand(raft::NodeId node, uint64_t incarnation);

  // The incarnation the group holds for `node`, if any.
  std::optional<uint64_t> incarnation(raft::NodeId node) const;
  ReplicatedState& inner() { return *inner_; }

  Status Restore(std::string_view snapshot) override;
  std::string Apply(raft::Index index, std::string_view command) override;
  std::string Save() const override;
  std::function<std::string()> SaveLater() override;
  void SaveFinished() override { inner_->SaveFinished(); }

 private:
  // The registry's part of a snapshot.
  std::string SavedRegistry() const;

  std::unique_ptr<ReplicatedState> inner_;
  std::map<raft::NodeId, uint64_t> known_;
};

}  // namespace strata::replication

#endif  // STRATA_REPLICATION_INCARNATIONS_H_
