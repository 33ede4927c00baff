// KeepMemberNames: the list of the first start is kept, the same list is
// accepted later, another is refused naming both.
#include "replication/member_names.h"

#include <gtest/gtest.h>

#include "storage_test_support.h"

namespace strata::replication {
namespace {

TEST(MemberNamesTest, TheFirstListIsKeptAndAnotherRefused) {
  storage_testing::TempDir dir;
  ASSERT_TRUE(KeepMemberNames(dir.path(), {"m0", "m1", "m2"}).ok());
  EXPECT_TRUE(KeepMemberNames(dir.path(), {"m0", "m1", "m2"}).ok());
  const Status other = KeepMemberNames(dir.path(), {"m0", "m1", "m3"});
  EXPECT_EQ(other.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other.message().find("first started with the members m0,m1,m2"), std::string::npos)
      << other.message();
  EXPECT_NE(other.message().find("now with m0,m1,m3"), std::string::npos) << other.message();
  EXPECT_FALSE(KeepMemberNames(dir.path(), {"m0", "m1"}).ok());
}

}  // namespace
}  // namespace strata::replication
