// Shards replicated on the three nodes (ClusterOptions::replication_factor
// 3, each shard a Raft group whose batches travel as raft_batch messages):
// the txn workload over every shard commits and reads back on every node,
// and goes on with a node dead; the raw API, which runs on a node's own
// store, is refused; damaged Raft messages and group reports from a peer
// (cut, of no shard, naming no node) are dropped without
// an answer and harm nothing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "cluster_test_support.h"

namespace strata::testing {
namespace {

std::string NewTempDir() {
  std::string dir = (std::filesystem::temp_directory_path() / "strata-replicated-XXXXXX").string();
  EXPECT_NE(::mkdtemp(dir.data()), nullptr);
  return dir;
}

std::string Op(const char* f, const std::string& key, const std::string& value) {
  return "[\"" + std::string(f) + "\"," + key + "," + value + "]";
}

class ReplicatedNodesTest : public ::testing::Test {
 protected:
  ReplicatedNodesTest()
      : dir_(NewTempDir()),
        c_(3, FastClusterOptions(), Isolation::kSerializable,
           [this](size_t i, node::NodeOptions* options) {
             options->cluster.replication_factor = 3;
             options->cluster.raft_dir = dir_ + "/n" + std::to_string(i + 1);
             options->cluster.raft_tick = std::chrono::milliseconds(5);
           }) {}
  ~ReplicatedNodesTest() override { std::filesystem::remove_all(dir_); }

  // The txn `ops` on node i, tried again while the groups elect leaders
  // (an error); its completed ops.
  JsonValue Txn(size_t i, const std::string& ops) {
    for (int attempt = 0;; ++attempt) {
      JsonValue reply = c_.Request(i, R"({"type":"txn","txn":)" + ops + "}");
      if (reply["type"].String() == "txn_ok" || attempt == 50) return reply["txn"];
      c_.RunFor(std::chrono::milliseconds(50));
    }
  }

  const std::string dir_;
  TestCluster c_;
};

TEST_F(ReplicatedNodesTest, TransactionsOverEveryShardCommitOnEveryNodeAndOutliveOne) {
  const std::string k1 = c_.IntKeyOn(0), k2 = c_.IntKeyOn(1), k3 = c_.IntKeyOn(2);
  const std::string appends =
      "[" + Op("append", k1, "1") + "," + Op("append", k2, "2") + "," + Op("append", k3, "3") + "]";
  EXPECT_TRUE(SameJson(Txn(0, appends), appends));
  const std::string reads =
      "[" + Op("r", k1, "null") + "," + Op("r", k2, "null") + "," + Op("r", k3, "null") + "]";
  for (size_t node = 0; node < 3; ++node) {
    EXPECT_TRUE(SameJson(Txn(node, reads), "[" + Op("r", k1, "[1]") + "," + Op("r", k2, "[2]") +
                                               "," + Op("r", k3, "[3]") + "]"))
        << "on n" << node + 1;
  }
  // n3 dies: its shard's group elects another leader and nothing is lost.
  c_.Kill(2);
  const std::string more =
      "[" + Op("append", k1, "4") + "," + Op("append", k2, "5") + "," + Op("append", k3, "6") + "]";
  EXPECT_TRUE(SameJson(Txn(1, more), more));
  EXPECT_TRUE(SameJson(Txn(0, reads), "[" + Op("r", k1, "[1,4]") + "," + Op("r", k2, "[2,5]") +
                                          "," + Op("r", k3, "[3,6]") + "]"));
}

TEST_F(ReplicatedNodesTest, TheRawApiIsRefused) {
  c_.ExpectError(0, R"({"type":"mvcc_put","key":"a","value":1,"ts":5})", 10);
  c_.ExpectError(1, R"({"type":"mvcc_scan","start":"a","ts":5})", 10);
  c_.Stats(2);  // stats are served
}

TEST_F(ReplicatedNodesTest, DamagedRaftMessagesAreDroppedUnanswered) {
  for (const char* body :
       {R"({"type":"raft_batch","msg_id":5,"batch":"zz","inc":1})",
        R"({"type":"raft_batch","msg_id":6,"batch":"00ff00ff","inc":1})",
        R"({"type":"raft_batch","msg_id":7,"batch":"0a"})",
        R"({"type":"raft_batch","msg_id":8,"batch":7,"inc":"x"})",
        R"({"type":"raft_refused","msg_id":9})", R"({"type":"raft_refused","msg_id":10,"why":[1]})",
        R"({"type":"shard_group_report","msg_id":11})",
        R"({"type":"shard_group_report","msg_id":12,"report":"zz"})",
        // A report of group 9 (no such shard) from n2,
        // and one naming member 40 of three nodes.
        R"({"type":"shard_group_report","msg_id":13,"report":"010901010301030000"})",
        R"({"type":"shard_group_report","msg_id":14,"report":"010101010301280000"})"}) {
    EXPECT_FALSE(c_.FromPeerUnrouted(0, "n2", body).valid()) << body;
  }
  const std::string k = c_.IntKeyOn(1);
  const std::string write = "[" + Op("append", k, "1") + "]";
  EXPECT_TRUE(SameJson(Txn(0, write), write));
}

}  // namespace
}  // namespace strata::testing
