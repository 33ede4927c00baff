// Bad input from peers: a node message that is malformed, of an unknown
// type, asking too much, or answering nothing is refused (error 12 or 10)
// or ignored; the node never crashes and keeps serving.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cluster/hybrid_clock.h"
#include "cluster_test_support.h"

namespace strata::testing {
namespace {

class ClusterPeerInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A current clock reading from n1's point of view.
    JsonValue begin = c_.Expect(0, R"({"type":"txn_begin"})", "txn_begin_ok");
    hlc_ = std::to_string(begin["start_timestamp"].Int().value_or(1));
  }

  // Feeds n2 a message from n1 (`body` without msg_id) directly, and
  // returns the lines n2 wrote (not routed).
  std::vector<JsonValue> FromPeer(std::string_view body, int64_t msg_id = 7) {
    std::string line = R"({"src":"n1","dest":"n2","body":)" +
                       WithMembers(body, "\"msg_id\":" + std::to_string(msg_id)) + "}";
    std::string out, log;
    c_.node(1).HandleLine(line, &out, &log);
    std::vector<JsonValue> lines;
    size_t pos = 0;
    while (pos < out.size()) {
      size_t end = out.find('\n', pos);
      lines.push_back(JsonValue::Parse(out.substr(pos, end - pos)));
      pos = end + 1;
    }
    return lines;
  }
  // Expects exactly one reply: error `code` addressed to n1 in reply to 7.
  void ExpectPeerError(std::string_view body, int code) {
    std::vector<JsonValue> lines = FromPeer(body);
    ASSERT_EQ(lines.size(), 1u) << body;
    const JsonValue& reply = lines[0];
    EXPECT_EQ(reply["dest"].String(), "n1");
    EXPECT_EQ(reply["body"]["type"].String(), "error") << body << " -> " << reply.Canonical();
    EXPECT_EQ(reply["body"]["code"].Int(), code) << body << " -> " << reply.Canonical();
    EXPECT_EQ(reply["body"]["in_reply_to"].Int(), 7);
  }
  std::string Hlc() const { return R"("hlc":)" + hlc_; }

  // Afterwards: the cluster still serves raw requests and transactions.
  void ExpectStillServing() {
    const std::string b = c_.StringKeyOn(1, "ok"), k3 = c_.StringKeyOn(2, "ok");
    c_.Expect(0, R"({"type":"mvcc_put","key":)" + b + R"(,"value":1,"timestamp":5})",
              "mvcc_put_ok");
    c_.Expect(2, R"({"type":"mvcc_get","key":)" + b + "}", "mvcc_get_ok");
    const std::string txn = std::to_string(
        c_.Expect(0, R"({"type":"txn_begin"})", "txn_begin_ok")["txn_id"].Int().value_or(0));
    for (const std::string& key : {b, k3}) {
      c_.Expect(0, R"({"type":"txn_put","txn_id":)" + txn + R"(,"key":)" + key + R"(,"value":2})",
                "txn_put_ok");
    }
    c_.Expect(0, R"({"type":"txn_commit","txn_id":)" + txn + "}", "txn_commit_ok");
    JsonValue stats = c_.Stats(1);
    EXPECT_EQ(stats["intents"].Int(), 0) << stats.Canonical();
    EXPECT_EQ(stats["prepared_txns"].Int(), 0) << stats.Canonical();
  }

  TestCluster c_{3};
  std::string hlc_;
};

TEST_F(ClusterPeerInputTest, MalformedPreparesAreRefusedWithError12) {
  const std::string good_rest = R"("start":5,"isolation":"serializable","primary":1,)" + Hlc();
  // Missing fields.
  ExpectPeerError(R"({"type":"shard_prepare",)" + Hlc() + "}", 12);
  ExpectPeerError(R"({"type":"shard_prepare","txn":[5,0],)" + Hlc() + "}", 12);
  ExpectPeerError(R"({"type":"shard_prepare","txn":[5,0],"start":5,)" + Hlc() + "}", 12);
  ExpectPeerError(R"({"type":"shard_commit","txn":[5,0],"start":5,)" + Hlc() + "}", 12);
  // Bad transaction ids.
  for (std::string txn : {R"("5@0")", "[5]", "[5,0,1]", "[-1,0]", "[5,4294967296]", R"([5,"0"])",
                          "[1.5,0]", "null"}) {
    ExpectPeerError(R"({"type":"shard_prepare","txn":)" + txn + "," + good_rest + "}", 12);
  }
  // Bad hex in writes, read keys and ranges.
  for (std::string writes :
       {R"([{"k":"zz","val":1}])", R"([{"k":"abc","val":1}])", R"([{"k":"AB","val":1}])",
        R"([{"k":12,"val":1}])", R"([{"val":1}])", R"([5])", R"({"k":"00"})"}) {
    ExpectPeerError(
        R"({"type":"shard_prepare","txn":[5,0],"writes":)" + writes + "," + good_rest + "}", 12);
  }
  ExpectPeerError(R"({"type":"shard_prepare","txn":[5,0],"read_keys":["0g"],)" + good_rest + "}",
                  12);
  ExpectPeerError(
      R"({"type":"shard_prepare","txn":[5,0],"read_ranges":[{"start":"0"}],)" + good_rest + "}",
      12);
  ExpectPeerError(
      R"({"type":"shard_prepare","txn":[5,0],"read_ranges":[{"end":"00"}],)" + good_rest + "}", 12);
  // Primary out of range, isolation unknown.
  for (std::string primary : {"3", "4294967296", "-1", R"("1")"}) {
    ExpectPeerError(R"({"type":"shard_prepare","txn":[5,0],"start":5,"primary":)" + primary +
                        R"(,"writes":[{"k":"00","val":1}],)" + Hlc() + "}",
                    12);
  }
  ExpectPeerError(
      R"({"type":"shard_prepare","txn":[5,0],"start":5,"primary":1,"isolation":"weird",)" + Hlc() +
          "}",
      12);
  // `blind` is for one-phase commits only; the primary must list the shards.
  ExpectPeerError(
      R"({"type":"shard_prepare","txn":[5,0],"blind":true,"participants":[1],)" + good_rest + "}",
      12);
  ExpectPeerError(R"({"type":"shard_commit","txn":[5,0],"blind":1,)" + good_rest + "}", 12);
  ExpectPeerError(
      R"({"type":"shard_prepare","txn":[5,0],"writes":[{"k":"00","val":1}],)" + good_rest + "}",
      12);
  ExpectPeerError(
      R"({"type":"shard_prepare","txn":[5,0],"participants":[0,2],"writes":[{"k":"00","val":1}],)" +
          good_rest + "}",
      12);
  ExpectPeerError(R"({"type":"shard_prepare","txn":[5,0],"participants":[1,7],)" + good_rest + "}",
                  12);
  EXPECT_EQ(c_.Stats(1)["intents"].Int(), 0) << "a refused prepare must leave nothing";
  EXPECT_EQ(c_.Stats(1)["txn_records"].Int(), 0);
  ExpectStillServing();
}

TEST_F(ClusterPeerInputTest, OtherMalformedNodeRequests) {
  // Unknown types: error 10.
  ExpectPeerError(R"({"type":"shard_frobnicate",)" + Hlc() + "}", 10);
  ExpectPeerError(R"({"type":"record_frobnicate","txn":[5,0],)" + Hlc() + "}", 10);
  // A bad clock reading.
  ExpectPeerError(R"({"type":"shard_read","ts":5,"hlc":"soon"})", 12);
  ExpectPeerError(R"({"type":"shard_read","ts":5,"hlc":-3})", 12);
  // shard_read: limits out of range, bad ranges and keys, missing ts.
  for (std::string scan : {R"({"start":"","limit":1000000000000})", R"({"start":"","limit":0})",
                           R"({"start":"","limit":-1})", R"({"start":""})",
                           R"({"start":"xyz","limit":5})", R"("all")"}) {
    ExpectPeerError(R"({"type":"shard_read","ts":5,"scan":)" + scan + "," + Hlc() + "}", 12);
  }
  ExpectPeerError(R"({"type":"shard_read","keys":["00"],)" + Hlc() + "}", 12);
  ExpectPeerError(R"({"type":"shard_read","ts":5,"keys":"00",)" + Hlc() + "}", 12);
  ExpectPeerError(R"({"type":"shard_read","ts":5,"keys":[1],)" + Hlc() + "}", 12);
  // forward: no request, or not a request.
  ExpectPeerError(R"({"type":"forward",)" + Hlc() + "}", 12);
  ExpectPeerError(R"({"type":"forward","request":5,)" + Hlc() + "}", 12);
  ExpectPeerError(R"({"type":"forward","request":{"key":"x"},)" + Hlc() + "}", 12);
  // A forwarded request the owner refuses comes back inside forward_ok.
  {
    std::vector<JsonValue> lines =
        FromPeer(R"({"type":"forward","request":{"type":"mvcc_get"},)" + Hlc() + "}");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0]["body"]["type"].String(), "forward_ok");
    EXPECT_EQ(lines[0]["body"]["reply"]["type"].String(), "error");
    EXPECT_EQ(lines[0]["body"]["reply"]["code"].Int(), 12);
    lines = FromPeer(R"({"type":"forward","request":{"type":"nonsense"},)" + Hlc() + "}");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0]["body"]["reply"]["code"].Int(), 10);
  }
  // The raw API's fan-out parts: ranges, limits and timestamps checked.
  for (std::string body : {R"({"type":"raw_scan","at":5,"limit":5,)",
                           R"({"type":"raw_scan","range":{"start":"0g"},"at":5,"limit":5,)",
                           R"({"type":"raw_scan","range":{"start":""},"limit":5,)",
                           R"({"type":"raw_scan","range":{"start":""},"at":5,"limit":0,)",
                           R"({"type":"raw_scan","range":{"start":""},"at":5,"limit":10001,)",
                           R"({"type":"raw_changes","range":{"start":""},"since":"x","limit":5,)",
                           R"({"type":"raw_changes","range":5,"since":1,"limit":5,)",
                           R"({"type":"raw_compact","horizon":-1,)", R"({"type":"raw_compact",)"}) {
    ExpectPeerError(body + Hlc() + "}", 12);
  }
  ExpectPeerError(R"({"type":"raw_frobnicate",)" + Hlc() + "}", 10);
  {
    // A good one is answered, typed.
    std::vector<JsonValue> lines =
        FromPeer(R"({"type":"raw_scan","range":{"start":""},"at":5,"limit":3,)" + Hlc() + "}");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0]["body"]["type"].String(), "raw_scan_ok") << lines[0].Canonical();
    EXPECT_EQ(lines[0]["body"]["more"].Bool(), false);
  }
  // Resolutions and records.
  ExpectPeerError(
      R"({"type":"shard_resolve","txn":[5,0],"status":"maybe","commit_ts":9,)" + Hlc() + "}", 12);
  ExpectPeerError(R"({"type":"shard_resolve","txn":[5,0],"status":"committed",)" + Hlc() + "}", 12);
  ExpectPeerError(R"({"type":"record_commit","txn":[5,0],)" + Hlc() + "}", 12);
  ExpectPeerError(R"({"type":"record_push",)" + Hlc() + "}", 12);
  // A report is not a request: a bad one is dropped without an answer.
  EXPECT_TRUE(FromPeer(R"({"type":"lwm_report","oldest_snapshot":"x",)" + Hlc() + "}").empty());
  EXPECT_TRUE(FromPeer(R"({"type":"lwm_report",)" + Hlc() + "}").empty());
  ExpectStillServing();
}

TEST_F(ClusterPeerInputTest, RepliesThatAnswerNothingAreIgnored) {
  for (std::string body :
       {R"({"type":"shard_read_ok","in_reply_to":999999,"reads":[],)" + Hlc() + "}",
        R"({"type":"forward_ok","in_reply_to":123456,"reply":{"type":"mvcc_get_ok"},)" + Hlc() +
            "}",
        R"({"type":"error","in_reply_to":4242,"code":13,"text":"x",)" + Hlc() + "}",
        R"({"type":"shard_prepare_ok","in_reply_to":0,)" + Hlc() + "}",
        R"({"type":"record_commit_ok","in_reply_to":77,"status":"committed",)" + Hlc() + "}"}) {
    EXPECT_TRUE(FromPeer(body).empty()) << body;
  }
  ExpectStillServing();
}

TEST_F(ClusterPeerInputTest, ResolvingAnUnknownTransactionChangesNothing) {
  // An abort for a transaction nobody prepared is harmless; a commit of
  // one is either refused or a no-op, but must not invent data.
  std::vector<JsonValue> lines = FromPeer(
      R"({"type":"shard_resolve","txn":[5,0],"status":"aborted","commit_ts":0,)" + Hlc() + "}");
  ASSERT_EQ(lines.size(), 1u);
  lines = FromPeer(R"({"type":"shard_resolve","txn":[6,0],"status":"committed","commit_ts":9,)" +
                   Hlc() + "}");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(c_.Stats(1)["versions"].Int(), 0);
  // A push for a record this node never had answers without inventing one
  // that would block anybody.
  lines = FromPeer(R"({"type":"record_push","txn":[7,0],)" + Hlc() + "}");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0]["body"]["status"].String(), "pending") << lines[0].Canonical();
  ExpectStillServing();
}

// What a shard refused or finished before it restarted is not remembered,
// so a prepare sent before the shard started (a copy delayed in the
// network) is refused outright rather than judged anew.
TEST(ClusterRestartedShardTest, APrepareSentBeforeTheNodeStartedIsRefused) {
  const uint64_t before_start_ms = cluster::HybridLogicalClock::SystemMillis();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  TestCluster c(3);
  const std::string b = c.StringKeyOn(1, "b");
  auto prepare = [&](uint64_t sent_ms, uint64_t stamp) {
    const std::string hlc = std::to_string(cluster::HybridLogicalClock::Make(sent_ms, 0).value());
    return c.FromPeerUnrouted(1, "n1",
                              R"({"type":"shard_prepare","msg_id":3,"txn":[)" +
                                  std::to_string(stamp) + R"(,0],"start":)" + hlc +
                                  R"(,"isolation":"serializable","primary":0,"writes":[{"k":")" +
                                  TestCluster::HexKey(b) + R"(","val":1}],"hlc":)" + hlc + "}");
  };
  JsonValue old = prepare(before_start_ms, 11);
  EXPECT_EQ(old["body"]["type"].String(), "error") << old.Canonical();
  EXPECT_EQ(old["body"]["code"].Int(), 30) << old.Canonical();
  EXPECT_NE(old["body"]["text"].String().value_or("").find("before it restarted"),
            std::string::npos)
      << old.Canonical();
  EXPECT_EQ(c.Stats(1)["intents"].Int(), 0);
  // The same prepare sent now is placed.
  JsonValue fresh = prepare(cluster::HybridLogicalClock::SystemMillis(), 12);
  EXPECT_EQ(fresh["body"]["type"].String(), "shard_prepare_ok") << fresh.Canonical();
  EXPECT_EQ(c.Stats(1)["intents"].Int(), 1);
}

}  // namespace
}  // namespace strata::testing
