// Incarnations: a member's own, kept beside its Raft log (made once,
// damage refused), and the group's registry of them as replicated state
// around another (the first registration stands; every other command and
// the snapshots reach the inner state; older snapshots without a registry
// still restore).
#include "replication/incarnations.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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

}  // namespace
}  // namespace strata::replication
