#include "server/shard_layout.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "server/member_files.h"

namespace strata::server {
namespace {

class ShardLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("strata-shard-layout-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  ShardLayoutInputs In(uint32_t flag, size_t members = 3) const {
    ShardLayoutInputs in;
    in.data_dir = dir_.string();
    in.flag = flag;
    in.members = members;
    return in;
  }
  std::string Record() const {
    return ReadFileIfAny((dir_ / "replication-factor").string()).value().value_or("(none)");
  }
  // Starts as a member does: chooses, then records.
  Result<uint32_t> Start(const ShardLayoutInputs& in) {
    Result<ShardLayout> layout = ChooseShardLayout(in);
    if (!layout.ok()) return layout.status();
    if (Status s = RecordShardLayout(in.data_dir, layout->replication_factor); !s.ok()) return s;
    return layout->replication_factor;
  }

  std::filesystem::path dir_;
};

TEST_F(ShardLayoutTest, WithoutTheFlagThreeOrTheMembersThereAre) {
  EXPECT_EQ(Start(In(0)).value(), 3u);
  EXPECT_EQ(Record(), "3\n");
  std::filesystem::remove(dir_ / "replication-factor");
  EXPECT_EQ(Start(In(0, 2)).value(), 2u);
  std::filesystem::remove(dir_ / "replication-factor");
  EXPECT_EQ(Start(In(0, 7)).value(), 3u);
  // The flag, capped at the members.
  std::filesystem::remove(dir_ / "replication-factor");
  EXPECT_EQ(Start(In(5)).value(), 3u);
  EXPECT_EQ(Record(), "3\n");
  // In memory: the same (its Raft log in memory too), nothing recorded.
  ShardLayoutInputs memory = In(0);
  memory.data_dir.clear();
  Result<ShardLayout> layout = ChooseShardLayout(memory);
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->replication_factor, 3u);
  memory.flag = 1;
  EXPECT_EQ(ChooseShardLayout(memory).value().replication_factor, 1u);
}

TEST_F(ShardLayoutTest, ARestartKeepsTheRecordedFactorAndRefusesAnother) {
  EXPECT_EQ(Start(In(1)).value(), 1u);
  EXPECT_EQ(Record(), "1\n");
  // Without the flag: the record, not the default.
  Result<ShardLayout> again = ChooseShardLayout(In(0));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->replication_factor, 1u);
  EXPECT_NE(again->why.find("records"), std::string::npos) << again->why;
  // The same flag, or one capped to the same: taken.
  EXPECT_EQ(Start(In(1)).value(), 1u);
  // Another: refused, naming the record and what to give.
  Result<ShardLayout> other = ChooseShardLayout(In(3));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("cannot change yet"), std::string::npos)
      << other.status().message();
  EXPECT_NE(other.status().message().find("replication-factor"), std::string::npos);
  EXPECT_EQ(Record(), "1\n");

  std::filesystem::remove(dir_ / "replication-factor");
  EXPECT_EQ(Start(In(2, 2)).value(), 2u);
  EXPECT_EQ(Start(In(3, 2)).value(), 2u);  // 3 capped at 2 members: the same
  EXPECT_FALSE(ChooseShardLayout(In(3, 3)).ok());
}

TEST_F(ShardLayoutTest, ADirectoryFromBeforeTheRecordIsReadByWhatItHolds) {
  // A factor-1 member's keys: 1 without the flag, refused with 3.
  ShardLayoutInputs keys = In(0);
  keys.holds_own_keys = true;
  EXPECT_EQ(ChooseShardLayout(keys).value().replication_factor, 1u);
  keys.flag = 3;
  Result<ShardLayout> refused = ChooseShardLayout(keys);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(
      refused.status().message().find("holds keys of a cluster whose shards are not replicated"),
      std::string::npos)
      << refused.status().message();
  // Replicated shards' Raft logs: the default, refused with 1.
  std::filesystem::create_directories(dir_ / "shard-raft");
  EXPECT_EQ(ChooseShardLayout(In(0)).value().replication_factor, 3u);
  Result<ShardLayout> one = ChooseShardLayout(In(1));
  ASSERT_FALSE(one.ok());
  EXPECT_NE(one.status().message().find("holds replicated shards' Raft logs"), std::string::npos)
      << one.status().message();
}

TEST_F(ShardLayoutTest, ADamagedRecordStopsTheStartNamingTheFile) {
  for (const std::string bad : {"", "3", "0\n", "17\n", "3\n\n", "three\n", "-1\n"}) {
    ASSERT_TRUE(WriteFileDurably((dir_ / "replication-factor").string(), bad).ok());
    Result<ShardLayout> layout = ChooseShardLayout(In(0));
    ASSERT_FALSE(layout.ok()) << "'" << bad << "'";
    EXPECT_NE(layout.status().message().find("replication-factor does not hold"), std::string::npos)
        << layout.status().message();
    // Not written over.
    EXPECT_FALSE(ChooseShardLayout(In(3)).ok());
    EXPECT_FALSE(RecordShardLayout(dir_.string(), 3).ok());
    EXPECT_EQ(Record(), bad);
  }
}

}  // namespace
}  // namespace strata::server
