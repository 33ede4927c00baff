// The raw MVCC API across a 3-node cluster: routing to the key's owner,
// fan-out and merge of scans, changes and compaction, the cluster
// low-water mark, and the cluster fields of mvcc_stats.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cluster_test_support.h"

namespace strata::testing {
namespace {

std::string Put(std::string_view key, std::string_view value, uint64_t ts) {
  return R"({"type":"mvcc_put","key":)" + std::string(key) + R"(,"value":)" + std::string(value) +
         R"(,"timestamp":)" + std::to_string(ts) + "}";
}

TEST(ClusterRawApiTest, PutGetHistoryAreForwardedOnceToTheOwner) {
  TestCluster c(3);
  const std::string key = c.StringKeyOn(1, "k");  // owned by n2
  c.ClearSent();
  JsonValue put = c.Expect(0, Put(key, R"("a")", 100), "mvcc_put_ok");
  EXPECT_EQ(put["version"].Int(), 1);
  EXPECT_EQ(put["timestamp"].Int(), 100);
  EXPECT_EQ(c.CountSent("forward"), 1u);
  EXPECT_EQ(c.CountSent("forward", "n1", "n2"), 1u);
  EXPECT_EQ(c.CountSent("forward_ok", "n2", "n1"), 1u);

  // The version lives on n2 only.
  EXPECT_EQ(c.Stats(1)["versions"].Int(), 1);
  EXPECT_EQ(c.Stats(0)["versions"].Int(), 0);
  EXPECT_EQ(c.Stats(2)["versions"].Int(), 0);

  // A second version through n3: the owner numbers it.
  c.ClearSent();
  JsonValue put2 = c.Expect(2, Put(key, R"({"b":[1,2]})", 200), "mvcc_put_ok");
  EXPECT_EQ(put2["version"].Int(), 2);
  EXPECT_EQ(c.CountSent("forward", "n3", "n2"), 1u);
  EXPECT_EQ(c.CountSent("forward"), 1u);

  c.ClearSent();
  JsonValue get = c.Expect(0, R"({"type":"mvcc_get","key":)" + key + "}", "mvcc_get_ok");
  EXPECT_TRUE(SameJson(get["value"], R"({"b":[1,2]})"));
  EXPECT_EQ(get["version"].Int(), 2);
  EXPECT_EQ(get["as_of_timestamp"].Int(), 200);
  EXPECT_EQ(c.CountSent("forward"), 1u);

  JsonValue old = c.Expect(2, R"({"type":"mvcc_get","key":)" + key + R"(,"read_timestamp":150})",
                           "mvcc_get_ok");
  EXPECT_TRUE(SameJson(old["value"], R"("a")"));
  EXPECT_EQ(old["version"].Int(), 1);

  c.ClearSent();
  JsonValue history =
      c.Expect(0, R"({"type":"mvcc_history","key":)" + key + "}", "mvcc_history_ok");
  EXPECT_EQ(c.CountSent("forward", "n1", "n2"), 1u);
  EXPECT_EQ(c.CountSent("forward"), 1u);
  ASSERT_EQ(history["versions"].size(), 2u) << history.Canonical();
  EXPECT_EQ(history["versions"][size_t{0}]["version"].Int(), 1);
  EXPECT_EQ(history["versions"][size_t{1}]["version"].Int(), 2);
  EXPECT_EQ(history["more"].Bool(), false);

  // Errors of the owner come back as they are: a second write at the same
  // timestamp is error 22.
  c.ExpectError(0, Put(key, R"("other")", 200), 22);
  // And a missing key is refused before anything is forwarded.
  c.ClearSent();
  c.ExpectError(0, R"({"type":"mvcc_get"})", 12);
  EXPECT_EQ(c.CountSent("forward"), 0u);
}

TEST(ClusterRawApiTest, KeysOfTheLocalShardAreNotSentToOtherNodes) {
  TestCluster c(3);
  const std::string key = c.StringKeyOn(0, "own");
  c.ClearSent();
  c.Expect(0, Put(key, "1", 10), "mvcc_put_ok");
  c.Expect(0, R"({"type":"mvcc_get","key":)" + key + "}", "mvcc_get_ok");
  EXPECT_EQ(c.CountSent("forward"), 0u);
  EXPECT_EQ(c.Stats(0)["versions"].Int(), 1);
}

// 30 keys "s<i>" (plus "t0") spread over the three shards, key i at
// timestamp 100 + (7 i mod 30): change order differs from key order.
class ClusterScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<int> per_shard(3);
    for (int i = 0; i < 30; ++i) {
      char name[8];
      std::snprintf(name, sizeof name, "s%02d", i);
      keys_.push_back(name);
      const std::string key = "\"" + keys_.back() + "\"";
      ++per_shard[c_.ShardOf(key)];
      c_.Expect(static_cast<size_t>(i % 3), Put(key, std::to_string(i), Ts(i)), "mvcc_put_ok");
    }
    c_.Expect(0, Put(R"("t0")", "99", 500), "mvcc_put_ok");
    for (int n : per_shard) ASSERT_GE(n, 5) << "keys should spread over every shard";
  }
  static uint64_t Ts(int i) { return 100 + static_cast<uint64_t>(7 * i % 30); }
  static std::vector<std::string> Keys(const JsonValue& list) {
    std::vector<std::string> keys;
    for (size_t i = 0; i < list.size(); ++i) keys.push_back(list[i]["key"].String().value_or("?"));
    return keys;
  }

  TestCluster c_{3};
  std::vector<std::string> keys_;
};

TEST_F(ClusterScanTest, ScanMergesInKeyOrderWithLimitAndMore) {
  JsonValue all = c_.Expect(1, R"({"type":"mvcc_scan"})", "mvcc_scan_ok");
  std::vector<std::string> expected = keys_;
  expected.push_back("t0");
  EXPECT_EQ(Keys(all["items"]), expected);
  EXPECT_EQ(all["more"].Bool(), false);
  EXPECT_TRUE(SameJson(all["items"][size_t{3}]["value"], "3"));
  EXPECT_EQ(all["items"][size_t{3}]["as_of_timestamp"].Int(), static_cast<int64_t>(Ts(3)));

  for (int limit : {1, 4, 10, 29}) {
    JsonValue page = c_.Expect(2, R"({"type":"mvcc_scan","limit":)" + std::to_string(limit) + "}",
                               "mvcc_scan_ok");
    EXPECT_EQ(Keys(page["items"]), std::vector<std::string>(keys_.begin(), keys_.begin() + limit))
        << "limit " << limit;
    EXPECT_EQ(page["more"].Bool(), true) << "limit " << limit;
  }
  // Paging with start resumes exactly where the last page ended.
  std::vector<std::string> paged;
  std::string start;
  for (int pages = 0; pages < 20; ++pages) {
    std::string req = R"({"type":"mvcc_scan","limit":7,"prefix":"s")";
    if (!start.empty()) req += R"(,"start":")" + start + "\"";
    JsonValue page = c_.Expect(0, req + "}", "mvcc_scan_ok");
    for (const std::string& k : Keys(page["items"])) {
      if (k != start) paged.push_back(k);
    }
    if (page["more"].Bool() != true) break;
    start = paged.back();
  }
  EXPECT_EQ(paged, keys_);

  JsonValue prefix = c_.Expect(0, R"({"type":"mvcc_scan","prefix":"s1"})", "mvcc_scan_ok");
  EXPECT_EQ(Keys(prefix["items"]),
            std::vector<std::string>(keys_.begin() + 10, keys_.begin() + 20));
  EXPECT_EQ(prefix["more"].Bool(), false);
  JsonValue prefix_limited =
      c_.Expect(0, R"({"type":"mvcc_scan","prefix":"s1","limit":10})", "mvcc_scan_ok");
  EXPECT_EQ(Keys(prefix_limited["items"]).size(), 10u);

  // At a read timestamp: only keys written at or below it.
  JsonValue past = c_.Expect(1, R"({"type":"mvcc_scan","read_timestamp":104})", "mvcc_scan_ok");
  std::vector<std::string> visible;
  for (int i = 0; i < 30; ++i) {
    if (Ts(i) <= 104) visible.push_back(keys_[i]);
  }
  EXPECT_EQ(Keys(past["items"]), visible);

  c_.ExpectError(0, R"({"type":"mvcc_scan","limit":0})", 12);
}

TEST_F(ClusterScanTest, ChangesMergeInTimestampKeyOrderWithLimitAndMore) {
  std::vector<std::pair<uint64_t, std::string>> order;
  for (int i = 0; i < 30; ++i) order.emplace_back(Ts(i), keys_[i]);
  order.emplace_back(500, "t0");
  std::sort(order.begin(), order.end());
  std::vector<std::string> expected;
  for (const auto& [ts, key] : order) expected.push_back(key);

  JsonValue all = c_.Expect(2, R"({"type":"mvcc_changes","since_timestamp":0})", "mvcc_changes_ok");
  EXPECT_EQ(Keys(all["changes"]), expected);
  EXPECT_EQ(all["more"].Bool(), false);
  int64_t last = 0;
  for (size_t i = 0; i < all["changes"].size(); ++i) {
    const int64_t ts = all["changes"][i]["timestamp"].Int().value_or(-1);
    EXPECT_GE(ts, last);
    last = ts;
  }

  for (int limit : {1, 5, 17}) {
    JsonValue page = c_.Expect(
        0, R"({"type":"mvcc_changes","since_timestamp":0,"limit":)" + std::to_string(limit) + "}",
        "mvcc_changes_ok");
    EXPECT_EQ(Keys(page["changes"]),
              std::vector<std::string>(expected.begin(), expected.begin() + limit))
        << "limit " << limit;
    EXPECT_EQ(page["more"].Bool(), true);
  }
  // Since is exclusive or inclusive as on one node; whichever, the merged
  // result equals the single-node answer: compare with a filter of `all`.
  JsonValue since =
      c_.Expect(1, R"({"type":"mvcc_changes","since_timestamp":120})", "mvcc_changes_ok");
  for (size_t i = 0; i < since["changes"].size(); ++i) {
    EXPECT_GE(since["changes"][i]["timestamp"].Int().value_or(0), 120);
  }
  EXPECT_GE(since["changes"].size(), 10u);
}

TEST(ClusterCompactTest, CompactionIsCappedByTheClusterLowWaterMark) {
  TestCluster c(3);
  c.AwaitLowWaterMarks();
  // An open transaction on n1 holds the low-water mark at its snapshot.
  JsonValue begin = c.Expect(0, R"({"type":"txn_begin"})", "txn_begin_ok");
  const int64_t txn = begin["txn_id"].Int().value_or(0);
  const int64_t snapshot = begin["start_timestamp"].Int().value_or(0);
  ASSERT_GT(snapshot, 0);
  // n2 and n3 move on (an idle node's clock stands still, and a mark equal
  // to its own clock names itself as the holder); then wait until they
  // have n1's report.
  c.TickClocks();
  for (size_t i : {1, 2}) {
    ASSERT_TRUE(c.Until([&] { return c.Stats(i)["cluster_low_water_mark"].Int() == snapshot; }))
        << c.Stats(i).Canonical();
    JsonValue stats = c.Stats(i);
    EXPECT_EQ(stats["low_water_mark_holder"].String(), "n1") << stats.Canonical();
  }
  // Versions on every shard below the snapshot, and newer ones above it.
  std::vector<std::string> keys;
  for (size_t shard = 0; shard < 3; ++shard) {
    keys.push_back(c.StringKeyOn(shard, "gc"));
    c.Expect(0, Put(keys.back(), R"("old")", snapshot - 2000), "mvcc_put_ok");
    c.Expect(0, Put(keys.back(), R"("mid")", snapshot - 1000), "mvcc_put_ok");
    c.Expect(0, Put(keys.back(), R"("new")", snapshot + 1000), "mvcc_put_ok");
  }
  JsonValue compact =
      c.Expect(2, R"({"type":"mvcc_compact","timestamp":)" + std::to_string(snapshot + 5000) + "}",
               "mvcc_compact_ok");
  EXPECT_LE(compact["horizon"].Int().value_or(INT64_MAX), snapshot) << compact.Canonical();
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_LE(c.Stats(i)["compaction_horizon"].Int().value_or(INT64_MAX), snapshot) << "n" << i + 1;
  }
  // The transaction still reads its snapshot on every shard.
  for (const std::string& key : keys) {
    JsonValue got = c.Expect(
        0, R"({"type":"txn_get","txn_id":)" + std::to_string(txn) + R"(,"key":)" + key + "}",
        "txn_get_ok");
    EXPECT_TRUE(SameJson(got["value"], R"("mid")")) << key;
  }

  // Stats of the cluster while the transaction is open.
  JsonValue stats = c.Stats(1);
  EXPECT_GT(stats["resolved_timestamp"].Int().value_or(0), 0) << stats.Canonical();
  EXPECT_EQ(stats["intents"].Int(), 0);
  EXPECT_TRUE(stats["intent_age_ms"].IsObject());
  EXPECT_EQ(stats["shards"].Int(), 3);
  EXPECT_EQ(stats["shard"].Int(), 1);
  EXPECT_EQ(c.Stats(0)["active_txns"].Int(), 1);

  // Once it ends, the mark moves on and compaction reaches the request.
  c.Expect(0, R"({"type":"txn_abort","txn_id":)" + std::to_string(txn) + "}", "txn_abort_ok");
  int64_t horizon = 0;
  EXPECT_TRUE(c.Until(
      [&] {
        c.TickClocks();
        horizon = c.Request(1, R"({"type":"mvcc_compact","timestamp":)" +
                                   std::to_string(snapshot + 5000) + "}")["horizon"]
                      .Int()
                      .value_or(0);
        return horizon == snapshot + 5000;
      },
      std::chrono::milliseconds(3000)))
      << "horizon stayed at " << horizon;
  for (const std::string& key : keys) {
    JsonValue got = c.Expect(1, R"({"type":"mvcc_get","key":)" + key + "}", "mvcc_get_ok");
    EXPECT_TRUE(SameJson(got["value"], R"("new")"));
  }
  // Below the new horizon, reads are refused (error 1000), cluster-wide.
  c.ExpectError(2,
                R"({"type":"mvcc_get","key":)" + keys[0] + R"(,"read_timestamp":)" +
                    std::to_string(snapshot - 1500) + "}",
                1000);
}

// A prepared transaction may still commit at (or just above) its prepare
// timestamp on its shards, also once its coordinator is gone (restarted:
// its snapshot is no longer held anywhere). The low-water mark stays below
// the intents, so no shard collects past them and the commit can still be
// applied. (Here "n1" sends n2 a prepare by hand and never reports it.)
TEST(ClusterCompactTest, PendingIntentsHoldTheLowWaterMark) {
  TestCluster c(3);
  c.AwaitLowWaterMarks();
  const std::string b = c.StringKeyOn(1, "b");
  // A clock reading (the transaction ends at once: it must hold nothing).
  JsonValue begin = c.Expect(1, R"({"type":"txn_begin"})", "txn_begin_ok");
  const std::string hlc = std::to_string(begin["start_timestamp"].Int().value_or(0));
  c.Expect(
      1,
      R"({"type":"txn_abort","txn_id":)" + std::to_string(begin["txn_id"].Int().value_or(0)) + "}",
      "txn_abort_ok");
  JsonValue prepared =
      c.FromPeerUnrouted(1, "n1",
                         R"({"type":"shard_prepare","msg_id":3,"txn":[)" + hlc + R"(,0],"start":)" +
                             hlc + R"(,"isolation":"snapshot","primary":0,"writes":[{"k":")" +
                             TestCluster::HexKey(b) + R"(","val":"v"}],"hlc":)" + hlc + "}");
  ASSERT_EQ(prepared["body"]["type"].String(), "shard_prepare_ok") << prepared.Canonical();
  const int64_t prepare_ts = prepared["body"]["prepare_ts"].Int().value_or(0);
  // Time moves on everywhere, the reports go round, and a compaction far
  // ahead stops below the intent on every shard.
  for (int round = 0; round < 5; ++round) {
    c.TickClocks();
    c.RunFor(std::chrono::milliseconds(20));
  }
  JsonValue compact = c.Expect(
      2, R"({"type":"mvcc_compact","timestamp":)" + std::to_string(uint64_t{1} << 62) + "}",
      "mvcc_compact_ok");
  EXPECT_LT(compact["horizon"].Int().value_or(INT64_MAX), prepare_ts) << compact.Canonical();
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_LT(c.Stats(i)["compaction_horizon"].Int().value_or(INT64_MAX), prepare_ts)
        << "n" << i + 1;
  }
  // The commit at the prepare timestamp is applied.
  JsonValue resolved =
      c.FromPeerUnrouted(1, "n1",
                         R"({"type":"shard_resolve","msg_id":4,"txn":[)" + hlc +
                             R"(,0],"status":"committed","commit_ts":)" +
                             std::to_string(prepare_ts) + R"(,"hlc":)" + hlc + "}");
  EXPECT_EQ(resolved["body"]["type"].String(), "shard_resolve_ok") << resolved.Canonical();
  JsonValue got = c.Expect(0, R"({"type":"mvcc_get","key":)" + b + "}", "mvcc_get_ok");
  EXPECT_TRUE(SameJson(got["value"], R"("v")")) << got.Canonical();
  EXPECT_EQ(got["as_of_timestamp"].Int(), prepare_ts);
  EXPECT_EQ(c.Stats(1)["intents"].Int(), 0);
}

}  // namespace
}  // namespace strata::testing
