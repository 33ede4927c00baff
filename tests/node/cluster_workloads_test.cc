// The Maelstrom workloads on a 3-node cluster: `txn` (r / w / append) on
// keys of different shards, and lin-kv read / write / cas on remote keys.
#include <gtest/gtest.h>

#include <string>

#include "cluster_test_support.h"

namespace strata::testing {
namespace {

class ClusterWorkloadTest : public ::testing::TestWithParam<Isolation> {
 protected:
  ClusterWorkloadTest() : c_(3, FastClusterOptions(), GetParam()) {}

  void ExpectTxn(size_t node, const std::string& ops, const std::string& completed) {
    JsonValue reply = c_.Expect(node, R"({"type":"txn","txn":)" + ops + "}", "txn_ok");
    EXPECT_TRUE(SameJson(reply["txn"], completed)) << "on n" << node + 1;
  }

  TestCluster c_;
};

INSTANTIATE_TEST_SUITE_P(BothLevels, ClusterWorkloadTest,
                         ::testing::Values(Isolation::kSnapshot, Isolation::kSerializable),
                         [](const auto& info) {
                           return info.param == Isolation::kSnapshot ? "snapshot" : "serializable";
                         });

TEST_P(ClusterWorkloadTest, TxnAppendsAndReadsAcrossShards) {
  const std::string k1 = c_.IntKeyOn(0), k2 = c_.IntKeyOn(1), k3 = c_.IntKeyOn(2);
  auto op = [](const char* f, const std::string& k, const std::string& v) {
    return "[\"" + std::string(f) + "\"," + k + "," + v + "]";
  };
  const std::string appends =
      "[" + op("append", k1, "1") + "," + op("append", k2, "2") + "," + op("append", k3, "3") + "]";
  ExpectTxn(0, appends, appends);
  ExpectTxn(1,
            "[" + op("r", k1, "null") + "," + op("r", k2, "null") + "," + op("r", k3, "null") +
                "," + op("append", k1, "4") + "," + op("r", k1, "null") + "]",
            "[" + op("r", k1, "[1]") + "," + op("r", k2, "[2]") + "," + op("r", k3, "[3]") + "," +
                op("append", k1, "4") + "," + op("r", k1, "[1,4]") + "]");
  ExpectTxn(2, "[" + op("append", k3, "5") + "," + op("append", k2, "6") + "]",
            "[" + op("append", k3, "5") + "," + op("append", k2, "6") + "]");
  for (size_t node = 0; node < 3; ++node) {
    ExpectTxn(node,
              "[" + op("r", k1, "null") + "," + op("r", k2, "null") + "," + op("r", k3, "null") +
                  "," + op("r", c_.IntKeyOn(0, 1), "null") + "]",
              "[" + op("r", k1, "[1,4]") + "," + op("r", k2, "[2,6]") + "," + op("r", k3, "[3,5]") +
                  "," + op("r", c_.IntKeyOn(0, 1), "null") + "]");
  }
  // Writes (w) across shards, read back elsewhere.
  ExpectTxn(1, "[" + op("w", k1, "10") + "," + op("w", k3, "30") + "]",
            "[" + op("w", k1, "10") + "," + op("w", k3, "30") + "]");
  ExpectTxn(2, "[" + op("r", k1, "null") + "," + op("r", k3, "null") + "]",
            "[" + op("r", k1, "10") + "," + op("r", k3, "30") + "]");
}

TEST_P(ClusterWorkloadTest, LinKvOnRemoteKeys) {
  const std::string k2 = c_.IntKeyOn(1), k3 = c_.IntKeyOn(2);
  c_.ExpectError(0, R"({"type":"read","key":)" + k2 + "}", 20);
  c_.Expect(0, R"({"type":"write","key":)" + k2 + R"(,"value":1})", "write_ok");
  JsonValue read = c_.Expect(2, R"({"type":"read","key":)" + k2 + "}", "read_ok");
  EXPECT_TRUE(SameJson(read["value"], "1"));
  // cas: mismatch 22, missing 20, match ok.
  c_.ExpectError(2, R"({"type":"cas","key":)" + k2 + R"(,"from":7,"to":8})", 22);
  c_.ExpectError(0, R"({"type":"cas","key":)" + k3 + R"(,"from":7,"to":8})", 20);
  c_.Expect(0, R"({"type":"cas","key":)" + k2 + R"(,"from":1,"to":2})", "cas_ok");
  read = c_.Expect(1, R"({"type":"read","key":)" + k2 + "}", "read_ok");
  EXPECT_TRUE(SameJson(read["value"], "2"));
  c_.Expect(1, R"({"type":"cas","key":)" + k3 + R"(,"from":0,"to":9,"create_if_not_exists":true})",
            "cas_ok");
  read = c_.Expect(0, R"({"type":"read","key":)" + k3 + "}", "read_ok");
  EXPECT_TRUE(SameJson(read["value"], "9"));
  // Stale cas after another node's write.
  c_.Expect(2, R"({"type":"write","key":)" + k2 + R"(,"value":"s"})", "write_ok");
  c_.ExpectError(0, R"({"type":"cas","key":)" + k2 + R"(,"from":2,"to":3})", 22);
  read = c_.Expect(0, R"({"type":"read","key":)" + k2 + "}", "read_ok");
  EXPECT_TRUE(SameJson(read["value"], R"("s")"));
}

// lin-kv writes read nothing: two overlapping writes of one key both
// succeed (the later commit wins), rather than one failing a write-write
// conflict it could not have caused.
TEST_P(ClusterWorkloadTest, OverlappingLinKvWritesBothSucceed) {
  const std::string k = c_.IntKeyOn(1);
  c_.filter = [](const Message& m) {
    return m.type == "shard_commit" && m.src == "n1" ? Fate::kHold : Fate::kDeliver;
  };
  const int64_t first = c_.Send(0, R"({"type":"write","key":)" + k + R"(,"value":"first"})");
  ASSERT_TRUE(c_.Until([&] { return c_.held() == 1; }));
  c_.Expect(2, R"({"type":"write","key":)" + k + R"(,"value":"second"})", "write_ok");
  c_.filter = nullptr;
  c_.ReleaseHeld();
  JsonValue reply = c_.Await(first);
  EXPECT_EQ(reply["type"].String(), "write_ok") << reply.Canonical();
  JsonValue read = c_.Expect(1, R"({"type":"read","key":)" + k + "}", "read_ok");
  EXPECT_TRUE(SameJson(read["value"], R"("first")")) << read.Canonical();
}

}  // namespace
}  // namespace strata::testing
