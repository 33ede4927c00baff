// ShardMap: every key has exactly one shard, the ranges tile the hash space,
// placement is stable (it must agree across processes and restarts), and
// keys spread evenly.
#include "cluster/shard_map.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace strata::cluster {
namespace shard_map_test {

// prefix + number (appending, not operator+: GCC 12 warns falsely on the
// latter with -Wrestrict).
std::string Named(std::string_view prefix, size_t number) {
  std::string name(prefix);
  name += std::to_string(number);
  return name;
}

ShardMap MapOf(const std::vector<std::string>& nodes) {
  Result<ShardMap> map = ShardMap::OnePerNode(nodes);
  EXPECT_TRUE(map.ok()) << map.status().message();
  return *map;
}

TEST(ShardMapTest, OneNodeOwnsEverything) {
  ShardMap map = MapOf({"n1"});
  ASSERT_EQ(map.shards().size(), 1u);
  EXPECT_EQ(map.shards()[0].hash_begin, 0u);
  EXPECT_EQ(map.shards()[0].hash_end, UINT64_MAX);
  EXPECT_EQ(map.ShardFor("anything").leaseholder(), "n1");
  EXPECT_EQ(map.ShardServedBy("n1"), 0u);
}

TEST(ShardMapTest, RangesTileTheHashSpace) {
  for (size_t n : {2, 3, 5, 7, 64}) {
    std::vector<std::string> nodes;
    for (size_t i = 0; i < n; ++i) nodes.push_back(Named("n", i + 1));
    ShardMap map = MapOf(nodes);
    ASSERT_EQ(map.shards().size(), n);
    EXPECT_EQ(map.shards().front().hash_begin, 0u);
    EXPECT_EQ(map.shards().back().hash_end, UINT64_MAX);
    for (size_t i = 0; i + 1 < n; ++i) {
      EXPECT_EQ(map.shards()[i].hash_end + 1, map.shards()[i + 1].hash_begin) << n << " " << i;
      EXPECT_EQ(map.shards()[i].leaseholder(), nodes[i]);
    }
    // The boundaries themselves land in the shard that contains them.
    for (const Shard& shard : map.shards()) {
      EXPECT_EQ(map.ShardForHash(shard.hash_begin).id, shard.id);
      EXPECT_EQ(map.ShardForHash(shard.hash_end).id, shard.id);
    }
  }
}

TEST(ShardMapTest, PlacementIsStable) {
  // XXH3 of the engine bytes: the same on every node and across restarts.
  EXPECT_EQ(ShardMap::HashKey(""), 0x2d06800538d394c2u);
  EXPECT_EQ(ShardMap::HashKey("a"), ShardMap::HashKey(std::string("a")));
  ShardMap a = MapOf({"n1", "n2", "n3"}), b = MapOf({"n1", "n2", "n3"});
  for (int i = 0; i < 1000; ++i) {
    const std::string key = Named("key", i);
    EXPECT_EQ(a.ShardFor(key).id, b.ShardFor(key).id);
  }
}

TEST(ShardMapTest, KeysSpreadEvenly) {
  ShardMap map = MapOf({"n1", "n2", "n3", "n4", "n5"});
  std::map<ShardId, int> counts;
  constexpr int kKeys = 100000;
  for (int i = 0; i < kKeys; ++i) ++counts[map.ShardFor(std::to_string(i)).id];
  ASSERT_EQ(counts.size(), 5u);
  for (const auto& [shard, count] : counts) {
    EXPECT_NEAR(count, kKeys / 5, kKeys / 5 / 20) << "shard " << shard;  // within 5 %
  }
}

TEST(ShardMapTest, RefusesBadNodeLists) {
  EXPECT_EQ(ShardMap::OnePerNode({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ShardMap::OnePerNode({"n1", ""}).status().code(), StatusCode::kInvalidArgument);
  Result<ShardMap> repeated = ShardMap::OnePerNode({"n1", "n2", "n1"});
  EXPECT_EQ(repeated.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(repeated.status().message().find("'n1'"), std::string::npos);
  EXPECT_FALSE(MapOf({"n1", "n2"}).ShardServedBy("n9").has_value());
}

// Each shard's replicas: its own node first, then the next ones round the
// list; every node holds as many replicas; never more than the nodes.
TEST(ShardMapTest, ReplicasFollowTheirShardsNodeRoundTheList) {
  Result<ShardMap> map = ShardMap::Replicated({"n0", "n1", "n2", "n3"}, 3);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->shards()[0].replicas, (std::vector<std::string>{"n0", "n1", "n2"}));
  EXPECT_EQ(map->shards()[3].replicas, (std::vector<std::string>{"n3", "n0", "n1"}));
  for (const std::string node : {"n0", "n1", "n2", "n3"}) {
    EXPECT_EQ(map->ShardsReplicatedOn(node).size(), 3u) << node;
    EXPECT_EQ(map->shards()[*map->ShardServedBy(node)].leaseholder(), node);
  }
  EXPECT_EQ(map->ShardsReplicatedOn("n0"), (std::vector<ShardId>{0, 2, 3}));
  EXPECT_EQ(ShardMap::Replicated({"a", "b"}, 5)->shards()[1].replicas,
            (std::vector<std::string>{"b", "a"}));
  // The same ranges as one replica a shard.
  EXPECT_EQ(ShardMap::Replicated({"a", "b"}, 2)->shards()[1].hash_begin,
            ShardMap::OnePerNode({"a", "b"})->shards()[1].hash_begin);
}

}  // namespace shard_map_test
}  // namespace strata::cluster
