// Section 3 (raw MVCC API) and section 5 (mvcc_stats), one message type at a
// time, plus the write conflicts (error 22) and compaction (error 1000).
#include <gtest/gtest.h>

#include <string>

#include "node_test_fixture.h"

namespace strata::testing {
namespace {

// --- mvcc_put ---------------------------------------------------------------

TEST_F(NodeTest, PutCountsVersionsPerKeyInArrivalOrder) {
  node().ExpectReply(R"({"type":"mvcc_put","key":"x","value":"a","timestamp":100})",
                     R"({"type":"mvcc_put_ok","version":1,"timestamp":100})");
  // Arrival order, not timestamp order, numbers the versions.
  node().ExpectReply(R"({"type":"mvcc_put","key":"x","value":"b","timestamp":50})",
                     R"({"type":"mvcc_put_ok","version":2,"timestamp":50})");
  node().ExpectReply(R"({"type":"mvcc_put","key":"y","value":"c","timestamp":100})",
                     R"({"type":"mvcc_put_ok","version":1,"timestamp":100})");
}

TEST_F(NodeTest, PutRetryAnswersTheExistingVersion) {
  node().Put(R"("x")", R"({"v":[1,2]})", 100);
  node().Put(R"("x")", R"("later")", 200);
  node().ExpectReply(R"({"type":"mvcc_put","key":"x","value":{"v":[1,2]},"timestamp":100})",
                     R"({"type":"mvcc_put_ok","version":1,"timestamp":100})");
  EXPECT_EQ(node().Stats()["versions"].Int(), 2) << "a retry must not store anything";
}

TEST_F(NodeTest, PutRetryComparesJsonValuesNotText) {
  // Values are JSON values and member order is free (section 1), so this
  // is the same value again: a retry, not a conflict.
  node().Put(R"("x")", R"({"a":1,"b":[true,null]})", 100);
  node().ExpectReply(
      R"({"type":"mvcc_put","key":"x","value":{ "b" : [ true , null ] , "a" : 1 },"timestamp":100})",
      R"({"type":"mvcc_put_ok","version":1,"timestamp":100})");
}

TEST_F(NodeTest, SecondWriteAtSameKeyAndTimestampIsError22) {
  node().Put(R"("x")", R"("a")", 100);
  node().ExpectError(R"({"type":"mvcc_put","key":"x","value":"b","timestamp":100})", 22);
  node().ExpectError(R"({"type":"mvcc_delete","key":"x","timestamp":100})", 22);
  node().Delete(R"("y")", 100);
  node().ExpectError(R"({"type":"mvcc_put","key":"y","value":"a","timestamp":100})", 22);
  // The refused writes changed nothing.
  node().ExpectReply(R"({"type":"mvcc_get","key":"x"})",
                     R"({"type":"mvcc_get_ok","value":"a","version":1,"as_of_timestamp":100})");
  EXPECT_EQ(node().Stats()["versions"].Int(), 2);
}

// --- mvcc_get ---------------------------------------------------------------

TEST_F(NodeTest, GetReturnsNewestVersionAtOrBelowReadTimestamp) {
  node().Put(R"("x")", R"("t200")", 200);  // version 1
  node().Put(R"("x")", R"("t100")", 100);  // version 2
  node().Put(R"("x")", R"("t300")", 300);  // version 3
  node().ExpectReply(R"({"type":"mvcc_get","key":"x","read_timestamp":150})",
                     R"({"type":"mvcc_get_ok","value":"t100","version":2,"as_of_timestamp":100})");
  node().ExpectReply(R"({"type":"mvcc_get","key":"x","read_timestamp":100})",
                     R"({"type":"mvcc_get_ok","value":"t100","version":2,"as_of_timestamp":100})");
  node().ExpectReply(R"({"type":"mvcc_get","key":"x","read_timestamp":299})",
                     R"({"type":"mvcc_get_ok","value":"t200","version":1,"as_of_timestamp":200})");
  node().ExpectReply(R"({"type":"mvcc_get","key":"x"})",
                     R"({"type":"mvcc_get_ok","value":"t300","version":3,"as_of_timestamp":300})");
  node().ExpectReply(
      R"({"type":"mvcc_get","key":"x","read_timestamp":99})",
      R"({"type":"mvcc_get_ok","value":null,"version":null,"as_of_timestamp":null})");
}

TEST_F(NodeTest, GetOfMissingKeyReturnsNulls) {
  node().ExpectReply(
      R"({"type":"mvcc_get","key":"nothing"})",
      R"({"type":"mvcc_get_ok","value":null,"version":null,"as_of_timestamp":null})");
}

// --- mvcc_delete ------------------------------------------------------------

TEST_F(NodeTest, DeleteRecordsATombstoneVersion) {
  node().Put(R"("x")", R"("alive")", 100);
  node().ExpectReply(R"({"type":"mvcc_delete","key":"x","timestamp":200})",
                     R"({"type":"mvcc_delete_ok","version":2,"timestamp":200})");
  node().ExpectReply(
      R"({"type":"mvcc_get","key":"x"})",
      R"({"type":"mvcc_get_ok","value":null,"version":2,"as_of_timestamp":200,"deleted":true})");
  node().ExpectReply(R"({"type":"mvcc_get","key":"x","read_timestamp":199})",
                     R"({"type":"mvcc_get_ok","value":"alive","version":1,"as_of_timestamp":100})");
}

TEST_F(NodeTest, DeleteOfUnknownKeyStillRecordsATombstone) {
  node().ExpectReply(R"({"type":"mvcc_delete","key":"ghost","timestamp":10})",
                     R"({"type":"mvcc_delete_ok","version":1,"timestamp":10})");
  // Repeating it is a retry.
  node().ExpectReply(R"({"type":"mvcc_delete","key":"ghost","timestamp":10})",
                     R"({"type":"mvcc_delete_ok","version":1,"timestamp":10})");
  node().ExpectReply(
      R"({"type":"mvcc_get","key":"ghost"})",
      R"({"type":"mvcc_get_ok","value":null,"version":1,"as_of_timestamp":10,"deleted":true})");
  JsonValue stats = node().Stats();
  EXPECT_EQ(stats["versions"].Int(), 1);
  EXPECT_EQ(stats["tombstones"].Int(), 1);
}

// --- mvcc_scan --------------------------------------------------------------

// Keys a..e at 10, then c deleted at 20 and b rewritten at 30.
class ScanTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    for (std::string key : {"a", "b", "c", "d", "e"}) {
      node().Put('"' + key + '"', R"(")" + key + R"(1")", 10);
    }
    node().Delete(R"("c")", 20);
    node().Put(R"("b")", R"("b2")", 30);
  }
};

TEST_F(ScanTest, ScanAllLeavesDeletedKeysOut) {
  node().ExpectReply(R"({"type":"mvcc_scan"})", R"({"type":"mvcc_scan_ok","more":false,"items":[
      {"key":"a","value":"a1","version":1,"as_of_timestamp":10},
      {"key":"b","value":"b2","version":2,"as_of_timestamp":30},
      {"key":"d","value":"d1","version":1,"as_of_timestamp":10},
      {"key":"e","value":"e1","version":1,"as_of_timestamp":10}]})");
}

TEST_F(ScanTest, ScanAtReadTimestampSeesThePast) {
  node().ExpectReply(R"({"type":"mvcc_scan","read_timestamp":15})",
                     R"({"type":"mvcc_scan_ok","more":false,"items":[
      {"key":"a","value":"a1","version":1,"as_of_timestamp":10},
      {"key":"b","value":"b1","version":1,"as_of_timestamp":10},
      {"key":"c","value":"c1","version":1,"as_of_timestamp":10},
      {"key":"d","value":"d1","version":1,"as_of_timestamp":10},
      {"key":"e","value":"e1","version":1,"as_of_timestamp":10}]})");
  node().ExpectReply(R"({"type":"mvcc_scan","read_timestamp":5})",
                     R"({"type":"mvcc_scan_ok","more":false,"items":[]})");
}

TEST_F(ScanTest, ScanRangeIsHalfOpen) {
  node().ExpectReply(R"({"type":"mvcc_scan","start":"b","end":"d","read_timestamp":15})",
                     R"({"type":"mvcc_scan_ok","more":false,"items":[
      {"key":"b","value":"b1","version":1,"as_of_timestamp":10},
      {"key":"c","value":"c1","version":1,"as_of_timestamp":10}]})");
  node().ExpectReply(R"({"type":"mvcc_scan","start":"d"})", R"({"type":"mvcc_scan_ok","more":false,
      "items":[{"key":"d","value":"d1","version":1,"as_of_timestamp":10},
               {"key":"e","value":"e1","version":1,"as_of_timestamp":10}]})");
  node().ExpectReply(R"({"type":"mvcc_scan","end":"b"})", R"({"type":"mvcc_scan_ok","more":false,
      "items":[{"key":"a","value":"a1","version":1,"as_of_timestamp":10}]})");
  node().ExpectReply(R"({"type":"mvcc_scan","start":"bb","end":"bc"})",
                     R"({"type":"mvcc_scan_ok","more":false,"items":[]})");
}

TEST_F(ScanTest, ScanLimitCutsAndSaysMore) {
  node().ExpectReply(R"({"type":"mvcc_scan","limit":2})", R"({"type":"mvcc_scan_ok","more":true,
      "items":[{"key":"a","value":"a1","version":1,"as_of_timestamp":10},
               {"key":"b","value":"b2","version":2,"as_of_timestamp":30}]})");
  // Exactly as many items as the limit: nothing was cut.
  JsonValue exact = node().Call(R"({"type":"mvcc_scan","limit":4})");
  EXPECT_EQ(exact["items"].size(), 4u);
  EXPECT_EQ(exact["more"].Bool(), false);
  // A deleted key does not use up the limit.
  JsonValue past_deleted = node().Call(R"({"type":"mvcc_scan","start":"c","limit":1})");
  EXPECT_EQ(past_deleted["items"][0]["key"].String(), "d");
  EXPECT_EQ(past_deleted["more"].Bool(), true);
}

// 1001 keys (and so 1001 changes): one more than the default limit.
class DefaultLimitTest : public NodeTest {
 protected:
  static constexpr int kKeys = 1001;

  void SetUp() override {
    NodeTest::SetUp();
    // Pipelined: all requests first, then all replies, to keep this fast.
    for (int i = 0; i < kKeys; ++i) {
      node().Send(R"({"type":"mvcc_put","key":)" + std::to_string(i) + R"(,"value":")" +
                  std::string(100, 'v') + R"(","timestamp":)" + std::to_string(i + 1) + "}");
    }
    for (int i = 0; i < kKeys; ++i) node().NextReply();
  }
};

TEST_F(DefaultLimitTest, LimitDefaultsToOneThousand) {
  JsonValue scan = node().Call(R"({"type":"mvcc_scan"})");
  EXPECT_EQ(scan["items"].size(), 1000u);
  EXPECT_EQ(scan["more"].Bool(), true);
  EXPECT_EQ(scan["items"][999]["key"].Int(), 999);
  JsonValue changes = node().Call(R"({"type":"mvcc_changes","since_timestamp":0})");
  EXPECT_EQ(changes["changes"].size(), 1000u);
  EXPECT_EQ(changes["more"].Bool(), true);
}

TEST_F(DefaultLimitTest, LargeRepliesArriveWhole) {
  // About 150 kB on one line: more than a pipe holds at once.
  JsonValue scan = node().Call(R"({"type":"mvcc_scan","limit":10000})");
  EXPECT_EQ(scan["items"].size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(scan["more"].Bool(), false);
}

TEST_F(NodeTest, ScanWithPrefix) {
  for (std::string key : {"ap", "app", "apple", "apricot", "b", "banana"}) {
    node().Put('"' + key + '"', "1", 1);
  }
  node().Put("7", "1", 1);
  node().ExpectReply(R"({"type":"mvcc_scan","prefix":"app"})", R"({"type":"mvcc_scan_ok",
      "more":false,"items":[{"key":"app","value":1,"version":1,"as_of_timestamp":1},
                            {"key":"apple","value":1,"version":1,"as_of_timestamp":1}]})");
  JsonValue ap = node().Call(R"({"type":"mvcc_scan","prefix":"ap","limit":3})");
  EXPECT_EQ(ap["items"].size(), 3u);
  EXPECT_EQ(ap["more"].Bool(), true);
  node().ExpectReply(R"({"type":"mvcc_scan","prefix":"c"})",
                     R"({"type":"mvcc_scan_ok","more":false,"items":[]})");
}

// --- mvcc_history -----------------------------------------------------------

// x: put 10 (v1), put 30 (v2), delete 40 (v3), put 20 (v4).
class HistoryTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    node().Put(R"("x")", R"("a")", 10);
    node().Put(R"("x")", R"("c")", 30);
    node().Delete(R"("x")", 40);
    node().Put(R"("x")", R"("b")", 20);
  }
};

TEST_F(HistoryTest, HistoryListsVersionsInTimestampOrder) {
  node().ExpectReply(R"({"type":"mvcc_history","key":"x"})", R"({"type":"mvcc_history_ok",
      "more":false,"versions":[{"version":1,"timestamp":10,"value":"a"},
                               {"version":4,"timestamp":20,"value":"b"},
                               {"version":2,"timestamp":30,"value":"c"},
                               {"version":3,"timestamp":40,"deleted":true}]})");
}

TEST_F(HistoryTest, HistoryRangeIsInclusive) {
  node().ExpectReply(R"({"type":"mvcc_history","key":"x","start_timestamp":20,"end_timestamp":30})",
                     R"({"type":"mvcc_history_ok","more":false,"versions":[
      {"version":4,"timestamp":20,"value":"b"},{"version":2,"timestamp":30,"value":"c"}]})");
  node().ExpectReply(R"({"type":"mvcc_history","key":"x","start_timestamp":31})",
                     R"({"type":"mvcc_history_ok","more":false,"versions":[
      {"version":3,"timestamp":40,"deleted":true}]})");
  node().ExpectReply(R"({"type":"mvcc_history","key":"x","end_timestamp":15})",
                     R"({"type":"mvcc_history_ok","more":false,"versions":[
      {"version":1,"timestamp":10,"value":"a"}]})");
}

TEST_F(HistoryTest, HistoryLimitCutsAndSaysMore) {
  node().ExpectReply(R"({"type":"mvcc_history","key":"x","limit":2})",
                     R"({"type":"mvcc_history_ok","more":true,"versions":[
      {"version":1,"timestamp":10,"value":"a"},{"version":4,"timestamp":20,"value":"b"}]})");
  JsonValue exact = node().Call(R"({"type":"mvcc_history","key":"x","limit":4})");
  EXPECT_EQ(exact["versions"].size(), 4u);
  EXPECT_EQ(exact["more"].Bool(), false);
}

TEST_F(HistoryTest, HistoryOfUnknownKeyIsEmpty) {
  node().ExpectReply(R"({"type":"mvcc_history","key":"y"})",
                     R"({"type":"mvcc_history_ok","more":false,"versions":[]})");
}

// --- mvcc_changes -----------------------------------------------------------

// c@5, a@10, b@20, integer 1@20, a deleted @30.
class ChangesTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    node().Put(R"("a")", R"("a1")", 10);
    node().Put(R"("b")", R"("b1")", 20);
    node().Put("1", R"("one")", 20);
    node().Delete(R"("a")", 30);
    node().Put(R"("c")", R"("c1")", 5);
  }
};

TEST_F(ChangesTest, ChangesAreOrderedByTimestampThenKey) {
  node().ExpectReply(R"({"type":"mvcc_changes","since_timestamp":0})",
                     R"({"type":"mvcc_changes_ok","more":false,"changes":[
      {"key":"c","timestamp":5,"version":1,"value":"c1"},
      {"key":"a","timestamp":10,"version":1,"value":"a1"},
      {"key":1,"timestamp":20,"version":1,"value":"one"},
      {"key":"b","timestamp":20,"version":1,"value":"b1"},
      {"key":"a","timestamp":30,"version":2,"deleted":true}]})");
}

TEST_F(ChangesTest, ChangesSinceExcludesThatTimestamp) {
  node().ExpectReply(R"({"type":"mvcc_changes","since_timestamp":20})",
                     R"({"type":"mvcc_changes_ok","more":false,"changes":[
      {"key":"a","timestamp":30,"version":2,"deleted":true}]})");
  node().ExpectReply(R"({"type":"mvcc_changes","since_timestamp":30})",
                     R"({"type":"mvcc_changes_ok","more":false,"changes":[]})");
}

TEST_F(ChangesTest, ChangesWithPrefixAndLimit) {
  node().ExpectReply(R"({"type":"mvcc_changes","since_timestamp":0,"prefix":"a"})",
                     R"({"type":"mvcc_changes_ok","more":false,"changes":[
      {"key":"a","timestamp":10,"version":1,"value":"a1"},
      {"key":"a","timestamp":30,"version":2,"deleted":true}]})");
  node().ExpectReply(R"({"type":"mvcc_changes","since_timestamp":0,"limit":2})",
                     R"({"type":"mvcc_changes_ok","more":true,"changes":[
      {"key":"c","timestamp":5,"version":1,"value":"c1"},
      {"key":"a","timestamp":10,"version":1,"value":"a1"}]})");
}

// --- mvcc_compact and error 1000 ---------------------------------------------

// a: 10, 20, 30; b: put 10, delete 20; c: 50.
class CompactTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    node().Put(R"("a")", R"("a1")", 10);
    node().Put(R"("a")", R"("a2")", 20);
    node().Put(R"("a")", R"("a3")", 30);
    node().Put(R"("b")", R"("b1")", 10);
    node().Delete(R"("b")", 20);
    node().Put(R"("c")", R"("c1")", 50);
  }
};

TEST_F(CompactTest, CompactRemovesWhatNoReadAtOrAboveTheHorizonSees) {
  std::optional<int64_t> bytes_before = node().Stats()["bytes"].Int();
  JsonValue compact = node().Call(R"({"type":"mvcc_compact","timestamp":25})");
  EXPECT_EQ(compact["type"].String(), "mvcc_compact_ok");
  EXPECT_EQ(compact["horizon"].Int(), 25);
  // a@10 (shadowed by a@20), and b's put@10 and delete@20 (the newest at or
  // below the horizon is a delete, so it goes too).
  EXPECT_EQ(compact["versions_removed"].Int(), 3);
  JsonValue stats = node().Stats();
  ASSERT_TRUE(bytes_before && stats["bytes"].Int() && compact["bytes_reclaimed"].Int());
  EXPECT_GT(*compact["bytes_reclaimed"].Int(), 0);
  EXPECT_EQ(*bytes_before - *stats["bytes"].Int(), *compact["bytes_reclaimed"].Int());
  EXPECT_EQ(stats["versions"].Int(), 3);
  EXPECT_EQ(stats["keys"].Int(), 2);
  EXPECT_EQ(stats["tombstones"].Int(), 0);
  EXPECT_EQ(stats["compaction_horizon"].Int(), 25);

  // Reads at or above the horizon see exactly what they saw before.
  node().ExpectReply(R"({"type":"mvcc_get","key":"a","read_timestamp":25})",
                     R"({"type":"mvcc_get_ok","value":"a2","version":2,"as_of_timestamp":20})");
  node().ExpectReply(
      R"({"type":"mvcc_get","key":"b","read_timestamp":25})",
      R"({"type":"mvcc_get_ok","value":null,"version":null,"as_of_timestamp":null})");
  node().ExpectReply(R"({"type":"mvcc_history","key":"a","start_timestamp":25})",
                     R"({"type":"mvcc_history_ok","more":false,"versions":[
      {"version":3,"timestamp":30,"value":"a3"}]})");
}

TEST_F(CompactTest, CompactNeverLowersTheHorizon) {
  node().Call(R"({"type":"mvcc_compact","timestamp":25})");
  node().ExpectReply(R"({"type":"mvcc_compact","timestamp":25})",
                     R"({"type":"mvcc_compact_ok","horizon":25,"versions_removed":0,
                         "bytes_reclaimed":0})");
  node().ExpectReply(R"({"type":"mvcc_compact","timestamp":5})",
                     R"({"type":"mvcc_compact_ok","horizon":25,"versions_removed":0,
                         "bytes_reclaimed":0})");
  EXPECT_EQ(node().Stats()["compaction_horizon"].Int(), 25);
}

TEST_F(CompactTest, AccessBelowTheHorizonIsError1000NamingIt) {
  node().Call(R"({"type":"mvcc_compact","timestamp":25})");
  for (std::string body : {
           R"({"type":"mvcc_get","key":"a","read_timestamp":24})",
           R"({"type":"mvcc_scan","read_timestamp":0})",
           R"({"type":"mvcc_history","key":"a","start_timestamp":24})",
           R"({"type":"mvcc_changes","since_timestamp":24})",
           // Writes at or below the horizon, not only below it.
           R"({"type":"mvcc_put","key":"a","value":"late","timestamp":25})",
           R"({"type":"mvcc_put","key":"new","value":"late","timestamp":1})",
           R"({"type":"mvcc_delete","key":"a","timestamp":25})",
       }) {
    std::string text = node().ExpectError(body, 1000);
    EXPECT_NE(text.find("25"), std::string::npos) << "text does not name the horizon: " << text;
  }
  // Exactly at the horizon, reads are fine; writes just above it too.
  EXPECT_EQ(node().Call(R"({"type":"mvcc_scan","read_timestamp":25})")["type"].String(),
            "mvcc_scan_ok");
  EXPECT_EQ(node().Call(R"({"type":"mvcc_changes","since_timestamp":25})")["type"].String(),
            "mvcc_changes_ok");
  EXPECT_EQ(
      node().Call(R"({"type":"mvcc_history","key":"a","start_timestamp":25})")["type"].String(),
      "mvcc_history_ok");
  node().Put(R"("a")", R"("a4")", 26);
}

// --- mvcc_stats -------------------------------------------------------------

TEST_F(NodeTest, StatsReportEveryRawApiField) {
  JsonValue empty = node().Stats();
  for (const std::string& field : RawStatsFields()) {
    EXPECT_TRUE(empty[field].valid()) << "mvcc_stats lacks " << field << ": " << empty.Canonical();
  }
  EXPECT_EQ(empty["keys"].Int(), 0);
  EXPECT_EQ(empty["versions"].Int(), 0);
  EXPECT_EQ(empty["tombstones"].Int(), 0);
  EXPECT_EQ(empty["bytes"].Int(), 0);
  EXPECT_EQ(empty["compaction_horizon"].Int(), 0);
  EXPECT_TRUE(empty["min_active_snapshot"].IsNull()) << empty.Canonical();
  EXPECT_EQ(empty["active_txns"].Int(), 0);
  EXPECT_EQ(empty["gc_runs"].Int(), 0) << "no --gc-retention, no automatic collection";
  EXPECT_EQ(empty["gc_versions_removed"].Int(), 0);
  EXPECT_EQ(empty["gc_bytes_reclaimed"].Int(), 0);
  EXPECT_EQ(empty["commits"].Int(), 0);
  EXPECT_EQ(empty["conflicts"].Int(), 0);
  // No transaction is open, so there is no age beyond 0 to report.
  JsonValue age = empty["oldest_txn_age_ms"];
  EXPECT_TRUE(age.IsNull() || age.Int() == 0) << age.Canonical();

  node().Put(R"("a")", R"("x")", 10);
  node().Put(R"("a")", R"("y")", 20);
  node().Put(R"("b")", R"("z")", 5);
  node().Delete(R"("b")", 30);
  JsonValue stats = node().Stats();
  EXPECT_EQ(stats["keys"].Int(), 2);
  EXPECT_EQ(stats["versions"].Int(), 4);
  EXPECT_EQ(stats["tombstones"].Int(), 1);
  EXPECT_EQ(stats["max_timestamp"].Int(), 30);
  ASSERT_TRUE(stats["bytes"].Int());
  EXPECT_GT(*stats["bytes"].Int(), 0);

  // bytes counts value bytes per version.
  node().Put(R"("c")", '"' + std::string(1000, 'v') + '"', 40);
  std::optional<int64_t> grown = node().Stats()["bytes"].Int();
  ASSERT_TRUE(grown);
  EXPECT_GE(*grown - *stats["bytes"].Int(), 1000);
}

}  // namespace
}  // namespace strata::testing
