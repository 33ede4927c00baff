// AuthRecordState around a stand-in key space: a change saves only over
// the revision it was made on, every other command and the inner state's
// snapshot pass through, snapshots carry the record (and one without the
// frame restores with none), and each state and token is told.
#include "server/replicated_auth.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "service/auth_store.h"

namespace strata::server {
namespace {

// The key space's stand-in: remembers its commands; its snapshot is them.
class Inner final : public replication::ReplicatedState {
 public:
  Status Restore(std::string_view snapshot) override {
    commands = snapshot.empty() ? "" : std::string(snapshot);
    return Status::Ok();
  }
  std::string Apply(raft::Index, std::string_view command) override {
    commands += command;
    return "inner:" + std::string(command);
  }
  std::string Save() const override { return commands; }
  std::string commands;
};

std::string StateAt(uint64_t revision, const std::string& role) {
  service::AuthState state;
  state.revision = revision;
  state.roles[role] = service::AuthRole{role, {}};
  return state.Encode();
}

struct Told {
  std::vector<std::string> states;
  std::vector<std::pair<std::string, std::string>> tokens;
};

std::unique_ptr<AuthRecordState> Make(Inner** inner, Told* told) {
  auto owned = std::make_unique<Inner>();
  *inner = owned.get();
  auto state = std::make_unique<AuthRecordState>(std::move(owned));
  state->set_observers(
      [told](const std::string& s) { told->states.push_back(s); },
      [told](const std::string& t, const std::string& u) { told->tokens.emplace_back(t, u); });
  return state;
}

TEST(AuthRecordStateTest, AChangeIsSavedOnlyOverTheRevisionItWasMadeOn) {
  Inner* inner = nullptr;
  Told told;
  auto state = Make(&inner, &told);
  std::string newer;
  // None saved yet: revision 1, a fresh AuthState's.
  EXPECT_EQ(state->record_revision(), 1u);
  const std::string two = StateAt(2, "a");
  EXPECT_TRUE(AuthRecordState::DecodeSaveReply(
                  state->Apply(1, AuthRecordState::SaveCommand(two, 1)), &newer)
                  .ok());
  EXPECT_EQ(state->record(), two);
  EXPECT_EQ(state->record_revision(), 2u);
  // Another change made over revision 1 lost the race: it gets the record.
  const Status lost = AuthRecordState::DecodeSaveReply(
      state->Apply(2, AuthRecordState::SaveCommand(StateAt(2, "b"), 1)), &newer);
  EXPECT_EQ(lost.code(), StatusCode::kConflict);
  EXPECT_EQ(newer, two);
  EXPECT_EQ(state->record(), two);
  // Made again over revision 2, it is saved.
  const std::string three = StateAt(3, "b");
  EXPECT_TRUE(AuthRecordState::DecodeSaveReply(
                  state->Apply(3, AuthRecordState::SaveCommand(three, 2)), &newer)
                  .ok());
  EXPECT_EQ(told.states, (std::vector<std::string>{two, three}));
  // Bytes that are no state, or no command, change nothing.
  for (std::string bad : {std::string(1, AuthRecordState::kSaveByte) + "3 not a state",
                          std::string(1, AuthRecordState::kSaveByte) + "x",
                          std::string(1, AuthRecordState::kTokenByte) + "no newline"}) {
    EXPECT_EQ(AuthRecordState::DecodeSaveReply(state->Apply(4, bad), &newer).code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(state->record(), three);
  EXPECT_EQ(told.states.size(), 2u);
  EXPECT_TRUE(inner->commands.empty());
}

TEST(AuthRecordStateTest, TokensAreToldAndOtherCommandsPassThrough) {
  Inner* inner = nullptr;
  Told told;
  auto state = Make(&inner, &told);
  EXPECT_EQ(state->Apply(1, AuthRecordState::TokenCommand("abc.1", "alice\nwith a newline")), "+");
  ASSERT_EQ(told.tokens.size(), 1u);
  EXPECT_EQ(told.tokens[0],
            (std::pair<std::string, std::string>{"abc.1", "alice\nwith a newline"}));
  EXPECT_EQ(state->Apply(2, "W-a-write"), "inner:W-a-write");
  EXPECT_EQ(state->Apply(3, ""), "inner:");
  EXPECT_EQ(inner->commands, "W-a-write");
}

TEST(AuthRecordStateTest, SnapshotsCarryTheRecordAndOldOnesRestoreWithout) {
  Inner* inner = nullptr;
  Told told;
  auto state = Make(&inner, &told);
  const std::string two = StateAt(2, "a");
  ASSERT_EQ(state->Apply(1, AuthRecordState::SaveCommand(two, 1)), "+");
  state->Apply(2, "W1");
  const std::string saved = state->Save();
  EXPECT_EQ(state->SaveLater()(), saved);

  Inner* other_inner = nullptr;
  Told other_told;
  auto other = Make(&other_inner, &other_told);
  ASSERT_TRUE(other->Restore(saved).ok());
  EXPECT_EQ(other->record(), two);
  EXPECT_EQ(other->record_revision(), 2u);
  EXPECT_EQ(other_inner->commands, "W1");
  EXPECT_EQ(other_told.states, (std::vector<std::string>{two}));  // its AuthStore takes it

  // A snapshot from before the frame (or one node's): all of it is the
  // inner state's, and there is no record.
  ASSERT_TRUE(other->Restore("W7").ok());
  EXPECT_EQ(other->record(), "");
  EXPECT_EQ(other->record_revision(), 1u);
  EXPECT_EQ(other_inner->commands, "W7");
  // A frame cut short, or a record that is no state, is refused.
  EXPECT_FALSE(other->Restore(saved.substr(0, saved.find(' ') + 3)).ok());
  std::string damaged = saved;
  damaged[saved.find(' ') + 1] ^= 0x55;
  EXPECT_FALSE(other->Restore(damaged).ok());
}

}  // namespace
}  // namespace strata::server
