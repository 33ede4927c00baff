// The group's registry of its members, kept as replicated state: who each
// member is (its incarnation) and where it is (its peer URL, its name and
// client URLs once it published them).
//
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
// Such a member cannot rejoin as it is; it must be removed (which forgets
// its incarnation) and added again, and then registers its new one
// (docs/REPLICATION.md: the operator does it with etcdctl member in a
// replicated cluster, each shard's leader by itself in a sharded one,
// cluster/replica_repair.h). Until the group has applied a member's first
// incarnation (its first moments in the group), a replacement of it goes
// unrecognised.
//
// Addresses: a membership change that adds a member carries its peer URL
// (the change's context), so every replica learns where it is in log
// order, a restarted one from its snapshot; each member then publishes
// its name and client URLs (AttributesCommand), as etcd's members do, so
// any member can list every other's.
//
// Placement: the members the group belongs on, first the one that should
// lead it (PlacementCommand), set by whoever moves replicas (a sharded
// cluster's `strata-ctl shard place`); its leader then changes the group's
// membership towards it one step at a time (cluster/replica_repair.h).
// Empty until set: the group belongs where it was created.
#ifndef STRATA_REPLICATION_INCARNATIONS_H_
#define STRATA_REPLICATION_INCARNATIONS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "raft/raft_types.h"
#include "replication/raft_host.h"
#include "strata/status.h"

namespace strata::replication {

// This member's incarnation: the one kept in `dir` (the Raft directory),
// or a new one (never 0) kept there durably if `dir` has none yet. An
// empty `dir` (a member in memory): a new one, kept nowhere.
Result<uint64_t> KeepIncarnation(const std::string& dir);
// Whether `dir` keeps an incarnation already (it is not a new directory);
// never for an empty `dir`.
bool HasIncarnation(const std::string& dir);

// What the group knows of a member beyond its number ("" or empty: not
// known; a member of the first list has no peer URL here, its flags give
// it).
struct MemberRecord {
  std::string peer_url;
  std::string name;
  std::vector<std::string> client_urls;

  bool operator==(const MemberRecord&) const = default;
};

// A group's replicated state with its registry of members, around the
// state the group exists for (`inner`). Commands that begin with
// kRegisterByte, kAttributesByte or kPlacementByte are the registry's; every other goes to
// `inner`, as do snapshots (within the registry's own framing).
class RegisteredState final : public ReplicatedState {
 public:
  static constexpr char kRegisterByte = '\x01';
  static constexpr char kAttributesByte = '\x02';
  // (3 and 4 are server/replicated_auth's, around which the replicated
  // mode wraps its registry.)
  static constexpr char kPlacementByte = '\x05';
  // Told of every change to a member's record (null: it has none now, as
  // when it was removed), as applied and after a restore, on the applying
  // thread.
  using Observer = std::function<void(raft::NodeId, const MemberRecord*)>;

  explicit RegisteredState(std::unique_ptr<ReplicatedState> inner);

  // Registers `incarnation` for `node`, unless the group holds one for it
  // already (the first registration stands).
  static std::string RegisterCommand(raft::NodeId node, uint64_t incarnation);
  // Records `node`'s name and client URLs (ignored for a removed member).
  static std::string AttributesCommand(raft::NodeId node, const std::string& name,
                                       const std::vector<std::string>& client_urls);

  // Sets the members the group belongs on (non-empty, no repeats; a
  // command that breaks this is ignored on every replica).
  static std::string PlacementCommand(const std::vector<raft::NodeId>& placement);

  // The incarnation the group holds for `node`, if any.
  std::optional<uint64_t> incarnation(raft::NodeId node) const;
  const std::map<raft::NodeId, MemberRecord>& members() const { return members_; }
  // Members removed (and not added again since): the group refuses them.
  bool removed(raft::NodeId node) const { return removed_.count(node) != 0; }
  // The placement last set; empty if never.
  const std::vector<raft::NodeId>& placement() const { return placement_; }
  void set_observer(Observer observer) { observer_ = std::move(observer); }
  ReplicatedState& inner() { return *inner_; }

  Status Restore(std::string_view snapshot) override;
  std::string Apply(raft::Index index, std::string_view command) override;
  // An added member's peer URL is the change's context; a removal forgets
  // the member's incarnation, so it may be added again with a new disk.
  void ApplyConfChange(raft::Index index, const raft::ConfChange& change) override;
  std::string Save() const override;
  std::function<std::string()> SaveLater() override;
  void SaveFinished() override { inner_->SaveFinished(); }

 private:
  // The registry's part of a snapshot.
  std::string SavedRegistry() const;
  void Tell(raft::NodeId node) const;

  std::unique_ptr<ReplicatedState> inner_;
  std::map<raft::NodeId, uint64_t> known_;
  std::map<raft::NodeId, MemberRecord> members_;
  std::set<raft::NodeId> removed_;
  std::vector<raft::NodeId> placement_;
  Observer observer_;
};

}  // namespace strata::replication

#endif  // STRATA_REPLICATION_INCARNATIONS_H_
