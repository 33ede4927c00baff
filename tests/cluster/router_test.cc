// Router's merges against a simple model (sort everything, take the first
// `limit`) when no shard was cut short, and the cut rule when one was; its
// fan-out through a fake transport; and the low-water mark's rules.
#include "cluster/router.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "cluster/low_water_mark.h"

#include "tests/cluster/capturing_transport.h"

namespace strata::cluster {
namespace router_test {

std::vector<std::string> Keys(const ScanResult& scan) {
  std::vector<std::string> keys;
  for (const ScanItem& item : scan.items) keys.push_back(item.key);
  return keys;
}

ScanResult Part(std::vector<std::string> keys, bool more) {
  ScanResult scan;
  std::sort(keys.begin(), keys.end());
  for (std::string& key : keys)
    scan.items.push_back(ScanItem{std::move(key), "1", 1, Timestamp(1)});
  scan.more = more;
  return scan;
}

RC_GTEST_PROP(RouterMergeTest, UncutScansMergeLikeOneSortedList, ()) {
  const auto keys = *rc::gen::container<std::set<std::string>>(
      rc::gen::container<std::string>(rc::gen::inRange('a', 'f')));
  const size_t shards = *rc::gen::inRange<size_t>(1, 5);
  const size_t limit = *rc::gen::inRange<size_t>(1, 20);
  std::vector<std::vector<std::string>> split(shards);
  for (const std::string& key : keys) {
    split[*rc::gen::inRange<size_t>(0, shards)].push_back(key);
  }
  std::vector<ScanResult> parts;
  for (auto& part : split) parts.push_back(Part(part, false));
  const ScanResult merged = Router::MergeScans(parts, limit);
  const std::vector<std::string> all(keys.begin(), keys.end());
  const size_t n = std::min(limit, all.size());
  RC_ASSERT(Keys(merged) == std::vector<std::string>(all.begin(), all.begin() + n));
  RC_ASSERT(merged.more == (all.size() > limit));
}

TEST(RouterMergeTest, ACutShardStopsTheMergeAtItsLastItem) {
  // Shard 1 was cut after "c": it may hold "d", so nothing past "c" is sure.
  const ScanResult merged = Router::MergeScans(
      {Part({"a", "e", "f"}, false), Part({"b", "c"}, true), Part({"d"}, false)}, 10);
  EXPECT_EQ(Keys(merged), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(merged.more);
  // Cut with nothing returned: nothing at all is certain.
  const ScanResult empty = Router::MergeScans({Part({"a"}, false), Part({}, true)}, 10);
  EXPECT_TRUE(empty.items.empty());
  EXPECT_TRUE(empty.more);
}

TEST(RouterMergeTest, ChangesMergeByTimestampThenKey) {
  auto change = [](std::string key, uint64_t ts) {
    return Change{std::move(key), Timestamp(ts), 1, false, "1"};
  };
  ChangesResult a{{change("z", 1), change("a", 5)}, false};
  ChangesResult b{{change("m", 1), change("b", 3)}, true};
  const ChangesResult merged = Router::MergeChanges({a, b}, 10);
  std::vector<std::pair<uint64_t, std::string>> order;
  for (const Change& c : merged.changes) order.emplace_back(c.timestamp.value(), c.key);
  EXPECT_EQ(order, (std::vector<std::pair<uint64_t, std::string>>{{1, "m"}, {1, "z"}, {3, "b"}}));
  EXPECT_TRUE(merged.more) << "(5, a) lies past the cut shard's last change";
}

TEST(RouterMergeTest, SettledChangesStopAtTheLowestFrontierAndKeepCommitsWhole) {
  auto change = [](std::string key, uint64_t ts) {
    return Change{std::move(key), Timestamp(ts), 1, false, "1"};
  };
  auto order = [](const ChangesResult& r) {
    std::vector<std::pair<uint64_t, std::string>> out;
    for (const Change& c : r.changes) out.emplace_back(c.timestamp.value(), c.key);
    return out;
  };
  using Order = std::vector<std::pair<uint64_t, std::string>>;
  // Shard b has resolved only to 4: (5, a) may still be joined by another
  // commit below it there, so it waits.
  const ShardWatchReply a{{change("z", 2), change("a", 5)}, Timestamp(9), 0, {}};
  const ShardWatchReply b{{change("m", 2), change("b", 3)}, Timestamp(4), 0, {}};
  ChangesResult merged = Router::MergeSettled({a, b}, 10);
  EXPECT_EQ(order(merged), (Order{{2, "m"}, {2, "z"}, {3, "b"}}));
  EXPECT_FALSE(merged.more);
  // A limit inside timestamp 2 ends the page before it... unless timestamp
  // 2 comes first: then the whole commit comes.
  merged = Router::MergeSettled({a, b}, 1);
  EXPECT_EQ(order(merged), (Order{{2, "m"}, {2, "z"}}));
  EXPECT_TRUE(merged.more);
  const ShardWatchReply c{{change("k", 1)}, Timestamp(9), 0, {}};
  merged = Router::MergeSettled({a, b, c}, 2);
  EXPECT_EQ(order(merged), (Order{{1, "k"}}));
  EXPECT_TRUE(merged.more);
}

TEST(RouterMergeTest, CompactionsTakeTheLowestHorizonAndSumTheRest) {
  const CompactResult merged = Router::MergeCompactions(
      {CompactResult{Timestamp(9), 2, 20, 0}, CompactResult{Timestamp(7), 3, 30, 0}});
  EXPECT_EQ(merged.horizon, Timestamp(7));
  EXPECT_EQ(merged.versions_removed, 5u);
  EXPECT_EQ(merged.bytes_reclaimed, 50u);
}

// Node n0 of three, its calls captured.
class RouterTest : public ::testing::Test {
 protected:
  const ShardMap map = *ShardMap::OnePerNode({"n0", "n1", "n2"});
  HybridLogicalClock clock;
  Timers timers;
  CapturingTransport transport;
  Peers peers{
      "n0", {"n0", "n1", "n2"}, &map, &clock, &transport, &timers, std::chrono::milliseconds(1000)};
  Router router{&peers};
};

TEST_F(RouterTest, FansOutToEveryShardAndReportsTheFirstFailure) {
  std::optional<Result<ScanResult>> got;
  router.Scan(KeyRange::All(), Timestamp::Max(), 5, [&](Result<ScanResult> r) { got = r; });
  ASSERT_EQ(transport.sent.size(), 3u);
  std::set<std::string> dests;
  for (const auto& sent : transport.sent) {
    dests.insert(sent.dest);
    EXPECT_EQ(std::get<RawScan>(sent.request).limit, 5u);
  }
  EXPECT_EQ(dests, (std::set<std::string>{"n0", "n1", "n2"}));
  peers.OnReply(transport.sent[0].msg_id, RawScanReply{Part({"x"}, false)});
  peers.OnReply(transport.sent[1].msg_id, PeerError{Status::Compacted("below the horizon")});
  EXPECT_FALSE(got);
  peers.OnReply(transport.sent[2].msg_id, RawScanReply{Part({"y"}, false)});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status().code(), StatusCode::kCompacted);

  // Forward goes to the owner only.
  transport.sent.clear();
  std::optional<Result<std::string>> forwarded;
  router.Forward("some key", "{\"type\":\"mvcc_get\"}",
                 [&](Result<std::string> r) { forwarded = r; });
  ASSERT_EQ(transport.sent.size(), 1u);
  EXPECT_EQ(transport.sent[0].dest, map.ShardFor("some key").leaseholder());
  peers.OnReply(transport.sent[0].msg_id, ForwardReply{"{\"type\":\"mvcc_get_ok\"}"});
  ASSERT_TRUE(forwarded && forwarded->ok());
  EXPECT_EQ(**forwarded, "{\"type\":\"mvcc_get_ok\"}");
}

TEST_F(RouterTest, AShardsMemberIsHeardFromWhenItAnswersAnyCallOrSendsAnything) {
  const ShardId one = *map.ShardServedBy("n1"), two = *map.ShardServedBy("n2");
  EXPECT_FALSE(router.LastHeardFrom(one));
  const auto at = [](int ms) {
    return Timers::Clock::time_point{} + std::chrono::milliseconds(ms);
  };
  timers.SetNow(at(10));
  router.Scan(KeyRange::All(), Timestamp::Max(), 5, [](Result<ScanResult>) {});
  timers.SetNow(at(20));
  for (const auto& sent : transport.sent) {
    if (sent.dest == "n1") peers.OnReply(sent.msg_id, RawScanReply{Part({}, false)});
  }
  EXPECT_EQ(router.LastHeardFrom(one), at(20));  // an answer to any call
  EXPECT_FALSE(router.LastHeardFrom(two));       // asked, silent
  timers.SetNow(at(30));
  peers.Heard("n2");  // a request it sent
  EXPECT_EQ(router.LastHeardFrom(two), at(30));
  peers.Heard("stranger");  // not a member: not remembered
  EXPECT_EQ(router.LastHeardFrom(one), at(20));
}

TEST(LowWaterMarkTest, UnknownUntilEveryNodeReportedThenTheMinimum) {
  LowWaterMark mark({"n1", "n2"});
  EXPECT_FALSE(mark.Mark(Timestamp(50)));
  mark.Report("n1", Timestamp(40));
  EXPECT_FALSE(mark.Mark(Timestamp(50))) << "n2 has not reported";
  mark.Report("stranger", Timestamp(1));
  mark.Report("n2", Timestamp(60));
  EXPECT_EQ(mark.Mark(Timestamp(50)), Timestamp(40));
  EXPECT_EQ(mark.Holder(Timestamp(40), "n0", false), "n1");
  EXPECT_EQ(mark.Mark(Timestamp(30)), Timestamp(30));
  EXPECT_EQ(mark.Holder(Timestamp(30), "n0", true), "n0");
  mark.Report("n2", Timestamp(40));
  EXPECT_EQ(mark.Holder(Timestamp(40), "n0", false), "n1") << "ties go to the first id";
}

}  // namespace router_test
}  // namespace strata::cluster
