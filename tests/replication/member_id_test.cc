// KeepMemberId: the number of the first start is kept, the same number is
// accepted later, another is refused naming both, and a directory laid out
// by a strata that numbered members by name is refused.
#include "replication/member_id.h"

#include <gtest/gtest.h>

#include <fstream>

#include "storage_test_support.h"

namespace strata::replication {
namespace {

TEST(MemberIdTest, TheFirstNumberIsKeptAndAnotherRefused) {
  storage_testing::TempDir dir;
  ASSERT_TRUE(KeepMemberId(dir.path(), 0xabc).ok());
  EXPECT_TRUE(KeepMemberId(dir.path(), 0xabc).ok());
  const Status other = KeepMemberId(dir.path(), 0xdef);
  EXPECT_EQ(other.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other.message().find("first started as member abc"), std::string::npos)
      << other.message();
  EXPECT_NE(other.message().find("make it member def"), std::string::npos) << other.message();
}

TEST(MemberIdTest, ADirectoryNumberedByNamesIsRefused) {
  storage_testing::TempDir dir;
  std::ofstream(dir.path() + "/members") << "m0\nm1\nm2\n";
  const Status refused = KeepMemberId(dir.path(), 0xabc);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("numbered a replicated cluster's members by name"),
            std::string::npos)
      << refused.message();
}

}  // namespace
}  // namespace strata::replication
