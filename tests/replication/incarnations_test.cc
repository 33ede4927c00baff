// Incarnations: a member's own, kept beside its Raft log (made once,
// damage refused), and the group's registry of its members as replicated
// state around another (the first registration stands; every other command
// and the snapshots reach the inner state; older snapshots without a
// registry, or with incarnations only, still restore; addresses follow
// membership changes, names and client URLs the members' own commands; a
// removal forgets the member's incarnation; a placement set stands until
// set again, survives snapshots, and one that breaks its rules is ignored).
#include "replication/incarnations.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/coding.h"
#include "storage/file_util.h"
#include "storage_test_support.h"

namespace strata::replication {
namespace {

// An inner state that records what reaches it.
class Recorder final : public ReplicatedState {
 public:
  Status Restore(std::string_view snapshot) override {
    if (snapshot == "bad") return Status::InvalidArgument("bad snapshot");
    state = std::string(snapshot);
    return Status::Ok();
  }
  std::string Apply(raft::Index, std::string_view command) override {
    state += std::string(command);
    return "applied " + std::string(command);
  }
  std::string Save() const override { return state; }
  std::string state;
};

TEST(IncarnationsTest, AMembersIncarnationIsMadeOnceAndKept) {
  storage_testing::TempDir dir;
  Result<uint64_t> first = KeepIncarnation(dir.path());
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_NE(*first, 0u);
  Result<uint64_t> again = KeepIncarnation(dir.path());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  storage_testing::TempDir other;
  EXPECT_NE(*KeepIncarnation(other.path()), *first) << "another directory, another incarnation";
  ASSERT_TRUE(storage::ReplaceFileDurably(dir.path(), "incarnation", "\x80").ok());
  EXPECT_EQ(KeepIncarnation(dir.path()).status().code(), StatusCode::kInvalidArgument);
}

TEST(IncarnationsTest, TheFirstRegistrationStandsAndTheRestReachTheInnerState) {
  auto inner = std::make_unique<Recorder>();
  Recorder* recorder = inner.get();
  RegisteredState state(std::move(inner));
  EXPECT_EQ(state.Apply(1, RegisteredState::RegisterCommand(2, 77)), "");
  EXPECT_EQ(state.Apply(2, RegisteredState::RegisterCommand(2, 99)), "");
  EXPECT_EQ(state.Apply(3, "Wput"), "applied Wput");
  EXPECT_EQ(state.Apply(4, std::string(1, RegisteredState::kRegisterByte) + "\xff"), "")
      << "a registration that does not decode is ignored alike everywhere";
  EXPECT_EQ(state.incarnation(2), std::optional<uint64_t>(77));
  EXPECT_EQ(state.incarnation(3), std::nullopt);
  EXPECT_EQ(recorder->state, "Wput");

  // Snapshots carry the registry and the inner state.
  auto copy_inner = std::make_unique<Recorder>();
  Recorder* copy_recorder = copy_inner.get();
  RegisteredState copy(std::move(copy_inner));
  ASSERT_TRUE(copy.Restore(state.Save()).ok());
  EXPECT_EQ(copy.incarnation(2), std::optional<uint64_t>(77));
  EXPECT_EQ(copy_recorder->state, "Wput");
  // One written before the registry existed is the inner state's alone.
  ASSERT_TRUE(copy.Restore("old state").ok());
  EXPECT_EQ(copy.incarnation(2), std::nullopt);
  EXPECT_EQ(copy_recorder->state, "old state");
  // A registry cut short, or an inner state that refuses, is an error and
  // changes nothing.
  ASSERT_TRUE(copy.Restore(state.Save()).ok());
  const std::string saved = state.Save();
  const size_t magic = saved.find('\n') + 1;
  EXPECT_FALSE(copy.Restore(saved.substr(0, magic + 1)).ok());
  EXPECT_FALSE(copy.Restore(saved.substr(0, saved.size() - 4) + "bad").ok());
  EXPECT_EQ(copy.incarnation(2), std::optional<uint64_t>(77));
}

TEST(IncarnationsTest, MembersAreAddressedByChangesNamedByThemselvesAndForgottenWhenRemoved) {
  RegisteredState state(std::make_unique<Recorder>());
  std::vector<std::pair<raft::NodeId, std::optional<MemberRecord>>> told;
  state.set_observer([&](raft::NodeId id, const MemberRecord* record) {
    told.emplace_back(id, record ? std::optional<MemberRecord>(*record) : std::nullopt);
  });
  using Kind = raft::ConfChange::Kind;
  state.ApplyConfChange(5, {Kind::kAddLearner, 9, "http://10.0.0.9:2380"});
  EXPECT_EQ(state.members().at(9).peer_url, "http://10.0.0.9:2380");
  EXPECT_EQ(state.Apply(6, RegisteredState::AttributesCommand(9, "m9", {"http://10.0.0.9:2379"})),
            "");
  EXPECT_EQ(state.members().at(9),
            (MemberRecord{"http://10.0.0.9:2380", "m9", {"http://10.0.0.9:2379"}}));
  // A first member publishes too; its peer URL comes from the flags.
  state.Apply(7, RegisteredState::AttributesCommand(2, "m2", {}));
  EXPECT_EQ(state.members().at(2), (MemberRecord{"", "m2", {}}));
  state.Apply(8, std::string(1, RegisteredState::kAttributesByte) + "\x09\xff");
  EXPECT_EQ(state.members().at(9).name, "m9") << "one that does not decode is ignored";
  state.ApplyConfChange(9, {Kind::kAddVoter, 9});
  EXPECT_EQ(state.members().at(9).name, "m9") << "a promotion keeps the record";
  ASSERT_EQ(told.size(), 3u);
  EXPECT_EQ(told[0].first, 9u);
  EXPECT_EQ(told[0].second->peer_url, "http://10.0.0.9:2380");
  EXPECT_EQ(told[2].first, 2u);

  // Removed: its incarnation and record are forgotten, its news ignored.
  state.Apply(10, RegisteredState::RegisterCommand(9, 1234));
  state.ApplyConfChange(11, {Kind::kRemove, 9});
  EXPECT_TRUE(state.removed(9));
  EXPECT_EQ(state.incarnation(9), std::nullopt);
  EXPECT_EQ(state.members().count(9), 0u);
  EXPECT_EQ(told.back().first, 9u);
  EXPECT_FALSE(told.back().second.has_value());
  state.Apply(12, RegisteredState::AttributesCommand(9, "m9", {}));
  EXPECT_EQ(state.members().count(9), 0u);

  // Snapshots carry records and removals; a restore tells the observer.
  RegisteredState copy(std::make_unique<Recorder>());
  std::vector<raft::NodeId> copy_told;
  copy.set_observer([&](raft::NodeId id, const MemberRecord*) { copy_told.push_back(id); });
  ASSERT_TRUE(copy.Restore(state.Save()).ok());
  EXPECT_EQ(copy.members(), state.members());
  EXPECT_TRUE(copy.removed(9));
  EXPECT_EQ(copy_told, (std::vector<raft::NodeId>{2, 9}));
  // Added again (a new disk, say): no longer removed; it registers anew.
  copy.ApplyConfChange(13, {Kind::kAddVoter, 9, "http://10.0.0.9:2380"});
  EXPECT_FALSE(copy.removed(9));
  copy.Apply(14, RegisteredState::RegisterCommand(9, 5678));
  EXPECT_EQ(copy.incarnation(9), std::optional<uint64_t>(5678));

  // A snapshot of the first version (incarnations only) still restores.
  std::string first = "strata-incarnations-1\n";
  storage::PutVarint(&first, 1);
  storage::PutVarint(&first, 3);
  storage::PutVarint(&first, 42);
  ASSERT_TRUE(copy.Restore(first + "inner").ok());
  EXPECT_EQ(copy.incarnation(3), std::optional<uint64_t>(42));
  EXPECT_TRUE(copy.members().empty());
  EXPECT_FALSE(copy.removed(9));
}

TEST(IncarnationsTest, APlacementStandsUntilSetAgainAndTravelsInSnapshots) {
  auto inner = std::make_unique<Recorder>();
  Recorder* recorder = inner.get();
  RegisteredState state(std::move(inner));
  EXPECT_TRUE(state.placement().empty()) << "never set: the group belongs where it was made";
  EXPECT_EQ(state.Apply(1, RegisteredState::PlacementCommand({4, 2, 3})), "");
  EXPECT_EQ(state.placement(), (std::vector<raft::NodeId>{4, 2, 3}));
  // Empty, repeating a member, naming kNobody, or cut: ignored everywhere.
  for (const std::string& bad :
       {RegisteredState::PlacementCommand({}), RegisteredState::PlacementCommand({2, 2}),
        RegisteredState::PlacementCommand({0, 1}),
        RegisteredState::PlacementCommand({1, 2}).substr(0, 3),
        RegisteredState::PlacementCommand({1}) + "x"}) {
    state.Apply(2, bad);
    EXPECT_EQ(state.placement(), (std::vector<raft::NodeId>{4, 2, 3})) << "ignored";
  }
  EXPECT_TRUE(recorder->state.empty()) << "the registry's commands stay the registry's";

  RegisteredState copy(std::make_unique<Recorder>());
  ASSERT_TRUE(copy.Restore(state.Save()).ok());
  EXPECT_EQ(copy.placement(), (std::vector<raft::NodeId>{4, 2, 3}));
  // A snapshot of the second version (no placement) restores none.
  std::string second = "strata-incarnations-2\n";
  for (int none = 0; none < 3; ++none) storage::PutVarint(&second, 0);
  ASSERT_TRUE(copy.Restore(second + "inner").ok());
  EXPECT_TRUE(copy.placement().empty());
  // One whose placement is cut is refused.
  const std::string saved = state.Save();
  EXPECT_FALSE(copy.Restore(saved.substr(0, saved.size() - 1)).ok());
}

}  // namespace
}  // namespace strata::replication
