// A shard group's report survives its encoding, and bytes that are not
// one (cut, another version, trailing bytes, a member named 0, too many
// members, group 0) are refused, not misread.
#include "cluster/shard_group_report.h"

#include <gtest/gtest.h>

#include <string>

namespace strata::cluster {
namespace {

TEST(ShardGroupReportTest, AReportRoundTripsAndDamageIsRefused) {
  const ShardGroupReport report{3, 1234, 7, 2, {1, 2, 4}, {5}, {4, 2, 1}};
  const std::string bytes = EncodeShardGroupReport(report);
  Result<ShardGroupReport> decoded = DecodeShardGroupReport(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, report);
  EXPECT_TRUE(decoded->Names(5));
  EXPECT_FALSE(decoded->Names(3));
  EXPECT_TRUE(decoded->Places(4));
  EXPECT_FALSE(decoded->Places(5));

  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(DecodeShardGroupReport(bytes.substr(0, cut)).ok()) << "cut at " << cut;
  }
  EXPECT_FALSE(DecodeShardGroupReport(bytes + "x").ok());
  std::string other_version = bytes;
  other_version[0] = '\x02';
  EXPECT_FALSE(DecodeShardGroupReport(other_version).ok());
  EXPECT_FALSE(DecodeShardGroupReport(EncodeShardGroupReport({0, 1, 1, 1, {1}, {}, {1}})).ok())
      << "group 0";
  EXPECT_FALSE(DecodeShardGroupReport(EncodeShardGroupReport({1, 1, 1, 1, {0, 1}, {}, {1}})).ok())
      << "a member named 0";
  ShardGroupReport crowded{1, 1, 1, 1, {}, {}, {1}};
  for (raft::NodeId node = 1; node <= kMaxReportedMembers + 1; ++node) crowded.voters.insert(node);
  EXPECT_FALSE(DecodeShardGroupReport(EncodeShardGroupReport(crowded)).ok()) << "too many";
}

}  // namespace
}  // namespace strata::cluster
