// NodeList: a sharded cluster's members by number. The first members are
// numbered in name order, one shard each; added ones come unnamed, take
// the next number and name themselves once; a number is never given
// twice, nor a name; the encoding round-trips and refuses damage.
#include "cluster/node_list.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata::cluster {
namespace node_list_test {

NodeList Three() {
  Result<NodeList> list = NodeList::First(
      {{"m2", "http://c:3", false}, {"m0", "http://a:1", false}, {"m1", "http://b:2", false}});
  EXPECT_TRUE(list.ok());
  return *list;
}

TEST(NodeListTest, TheFirstMembersAreNumberedInNameOrderAShardEach) {
  const NodeList list = Three();
  EXPECT_EQ(list.Names(), (std::vector<std::string>{"m0", "m1", "m2"}));
  EXPECT_EQ(list.shard_count(), 3u);
  EXPECT_EQ(list.revision(), 1u);
  EXPECT_EQ(list.NumberOf("m2"), 2u);
  EXPECT_EQ(list.NumberOfUrl("http://b:2"), 1u);
  EXPECT_FALSE(list.NumberOf(""));
  EXPECT_EQ(NodeList::First({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeList::First({{"a", "u", false}, {"a", "v", false}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeList::First({{"", "u", false}}).status().code(), StatusCode::kInvalidArgument);
  std::vector<ListedNode> many;
  for (int i = 0; i < 17; ++i) many.push_back({"n" + std::to_string(i), "u", false});
  EXPECT_EQ(NodeList::First(many).status().code(), StatusCode::kInvalidArgument);
}

TEST(NodeListTest, AnAddedNodeTakesTheNextNumberAndNamesItselfOnce) {
  NodeList list = Three();
  ASSERT_TRUE(list.Add("http://d:4").ok());
  EXPECT_EQ(list.revision(), 2u);
  EXPECT_EQ(list.NumberOfUrl("http://d:4"), 3u);
  EXPECT_EQ(list.Names().back(), "");
  EXPECT_EQ(list.Present(), (std::vector<std::string>{"m0", "m1", "m2"})) << "unnamed yet";
  EXPECT_EQ(list.shard_count(), 3u) << "the shards stay the first members'";
  EXPECT_EQ(list.Add("http://d:4").code(), StatusCode::kPreconditionFailed);
  EXPECT_EQ(list.Add("").code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(list.Name("http://x:9", "m3").code(), StatusCode::kNotFound) << "never added";
  EXPECT_EQ(list.Name("http://d:4", "m1").code(), StatusCode::kPreconditionFailed) << "m1's";
  EXPECT_EQ(list.Name("http://d:4", "").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(list.Name("http://d:4", "m3").ok());
  EXPECT_EQ(list.revision(), 3u);
  EXPECT_EQ(list.NumberOf("m3"), 3u);
  ASSERT_TRUE(list.Name("http://d:4", "m3").ok()) << "a restart names itself again";
  EXPECT_EQ(list.revision(), 3u) << "nothing changed";
  EXPECT_EQ(list.Name("http://d:4", "m4").code(), StatusCode::kPreconditionFailed);
}

TEST(NodeListTest, ANumberAndANameAreNeverUsedAgain) {
  NodeList list = Three();
  ASSERT_TRUE(list.Add("http://d:4").ok());
  ASSERT_TRUE(list.Name("http://d:4", "m3").ok());
  ASSERT_TRUE(list.Remove(3).ok());
  EXPECT_TRUE(list.nodes()[3].gone);
  EXPECT_EQ(list.Present(), (std::vector<std::string>{"m0", "m1", "m2"}));
  EXPECT_EQ(list.Remove(3).code(), StatusCode::kNotFound) << "gone already";
  EXPECT_EQ(list.Remove(9).code(), StatusCode::kNotFound);
  // Its URL may come back, as a new node with a new number; its name not.
  ASSERT_TRUE(list.Add("http://d:4").ok());
  EXPECT_EQ(list.NumberOfUrl("http://d:4"), 4u);
  EXPECT_EQ(list.Name("http://d:4", "m3").code(), StatusCode::kPreconditionFailed);
  // A first member may leave too (its shard lives in its group), but not
  // the last one.
  ASSERT_TRUE(list.Remove(0).ok());
  ASSERT_TRUE(list.Remove(1).ok());
  ASSERT_TRUE(list.Remove(2).ok());
  EXPECT_EQ(list.Remove(4).code(), StatusCode::kPreconditionFailed);
  // Numbers run out at kMaxNumbers, gone ones counted.
  NodeList full = Three();
  for (size_t i = 3; i < NodeList::kMaxNumbers; ++i) {
    ASSERT_TRUE(full.Add("http://n:" + std::to_string(i)).ok());
  }
  EXPECT_EQ(full.Add("http://n:99").code(), StatusCode::kPreconditionFailed);
}

TEST(NodeListTest, TheEncodingRoundTripsAndRefusesDamage) {
  NodeList list = Three();
  ASSERT_TRUE(list.Add("http://d:4").ok());
  ASSERT_TRUE(list.Name("http://d:4", "m3").ok());
  ASSERT_TRUE(list.Add("http://e:5").ok());
  ASSERT_TRUE(list.Remove(1).ok());
  const std::string bytes = list.Encode();
  Result<NodeList> back = NodeList::Decode(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->revision(), list.revision());
  EXPECT_EQ(back->shard_count(), 3u);
  EXPECT_EQ(back->nodes(), list.nodes());
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(NodeList::Decode(bytes.substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(NodeList::Decode(bytes + "x").ok());
  std::string other_version = bytes;
  other_version[0] = 9;
  EXPECT_FALSE(NodeList::Decode(other_version).ok());
}

}  // namespace node_list_test
}  // namespace strata::cluster
