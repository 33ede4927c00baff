// ClusterAuthJournal without a cluster: what it loads is the member's copy;
// a save before the member runs is refused, not lost quietly; copies kept
// from many threads at once leave the newest on disk once it is gone.
#include "server/cluster_auth.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>
#include <vector>

namespace strata::server {
namespace {

std::string StateAt(uint64_t revision) {
  service::AuthState state;
  state.revision = revision;
  state.roles["r" + std::to_string(revision)] =
      service::AuthRole{"r" + std::to_string(revision), {}};
  return state.Encode();
}

TEST(ClusterAuthJournalTest, KeepsTheNewestCopyAndRefusesSavesBeforeTheMemberRuns) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("strata-cluster-auth-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    auto copy = std::move(service::StoreAuthJournal::Open(dir.string(), {}).value());
    ClusterAuthJournal journal(copy.get());
    EXPECT_FALSE(journal.Load().has_value());
    std::string newer;
    EXPECT_EQ(journal.Save(StateAt(2), 1, &newer).code(), StatusCode::kUnavailable);
    journal.TokenAssigned("token.1", "alice");  // no member: told to no one
    // Copies kept from several threads; the last one kept is what stays.
    std::vector<std::thread> keepers;
    for (int t = 0; t < 4; ++t) {
      keepers.emplace_back([&journal, t] {
        for (int i = 0; i < 50; ++i) journal.KeepCopy(StateAt(100 + t * 50 + i));
      });
    }
    for (auto& k : keepers) k.join();
    journal.KeepCopy(StateAt(1000));
  }  // the journal writes what is pending before it goes
  auto copy = std::move(service::StoreAuthJournal::Open(dir.string(), {}).value());
  auto loaded = copy->Load();
  ASSERT_TRUE(loaded.has_value());
  auto state = service::AuthState::Decode(*loaded);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->revision, 1000u);
  EXPECT_EQ(ClusterAuthJournal(copy.get()).Load(), loaded);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace strata::server
