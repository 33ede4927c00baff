// WatchFeed over three in-process members: what a watch over the whole key
// space hands on is ordered by (timestamp, key), unique, atomic per commit
// (one commit's changes on every shard come in one batch), complete up to
// the frontier; history comes from the shards' change logs or, once they
// no longer hold it, from their stores; an unreachable shard holds the
// frontier back until it is reached again; a compacted start ends the feed.
// And, message by message through a capturing transport: a shard that hands
// on a change has the shards still behind it read at once.
#include "cluster/watch_feed.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/cluster/capturing_transport.h"
#include "tests/cluster/local_cluster.h"

namespace strata::cluster {
namespace watch_feed_test {

MemberOptions Options(size_t change_log_bytes = size_t{16} << 20) {
  MemberOptions options;
  options.rpc_timeout = std::chrono::milliseconds(300);
  options.shard_server.change_log_bytes = change_log_bytes;
  return options;
}

// Commits `writes` through node `node`'s coordinator; its timestamp.
Timestamp Commit(LocalCluster& c, int node, Coordinator::Writes writes) {
  std::optional<Result<Timestamp>> out;
  c.SetNow();
  Coordinator& coordinator = c.member(node).coordinator();
  coordinator.CommitWrites(coordinator.FreshTimestamp(), Isolation::kSnapshot, std::move(writes),
                           {}, {}, false, [&](Result<Timestamp> r) { out.emplace(r); });
  EXPECT_TRUE(c.RunUntil([&] { return out.has_value(); }));
  EXPECT_TRUE(out && out->ok());
  return out && out->ok() ? **out : Timestamp();
}

// What a feed handed on, batch by batch.
struct Collected {
  std::vector<std::vector<Change>> batches;
  std::vector<std::optional<Change>> previous;  // of every change, in order
  Timestamp frontier;
  std::optional<Status> error;
  std::vector<Change> All() const {
    std::vector<Change> out;
    for (const auto& b : batches) out.insert(out.end(), b.begin(), b.end());
    return out;
  }
};

std::unique_ptr<WatchFeed> Feed(LocalCluster& c, Timestamp after, Collected* out,
                                KeyRange range = KeyRange::All(), bool with_previous = false) {
  WatchFeedOptions options;
  options.with_previous = with_previous;
  return c.member(0).Watch(
      std::move(range), after, options,
      [out, with_previous](std::vector<Change> changes, std::vector<std::optional<Change>> previous,
                           Timestamp frontier) {
        EXPECT_GE(frontier, out->frontier) << "the frontier never moves back";
        EXPECT_EQ(previous.size(), with_previous ? changes.size() : 0u);
        out->frontier = frontier;
        out->batches.push_back(std::move(changes));
        for (auto& p : previous) out->previous.push_back(std::move(p));
      },
      [out](Status error) { out->error = error; });
}

TEST(WatchFeedTest, HandsOnEveryCommitInOrderOnceAndWhole) {
  LocalCluster c(3, Options());
  const auto keys = KeysOnEveryShard(c.member(0).map());
  Collected got;
  c.SetNow();
  auto feed = Feed(c, c.member(0).coordinator().FreshTimestamp(), &got);
  std::vector<Timestamp> commits;
  for (int i = 0; i < 6; ++i) {
    Coordinator::Writes writes;
    for (const auto& k : keys) writes[k] = "\"v" + std::to_string(i) + "\"";
    if (i == 3) writes[keys[1]] = std::nullopt;  // a delete among them
    commits.push_back(Commit(c, i % 3, writes));
  }
  ASSERT_TRUE(c.RunUntil([&] { return got.frontier >= commits.back(); }));
  const std::vector<Change> all = got.All();
  ASSERT_EQ(all.size(), 6 * keys.size()) << "each change once";
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_TRUE(all[i - 1].timestamp < all[i].timestamp ||
                (all[i - 1].timestamp == all[i].timestamp && all[i - 1].key < all[i].key))
        << "ordered by (timestamp, key)";
  }
  // Atomic: every batch holds whole commits.
  for (const auto& batch : got.batches) {
    std::map<uint64_t, size_t> per_commit;
    for (const Change& ch : batch) ++per_commit[ch.timestamp.value()];
    for (auto& [ts, n] : per_commit) EXPECT_EQ(n, keys.size()) << "commit " << ts << " split";
  }
  for (size_t i = 0; i < commits.size(); ++i) EXPECT_EQ(all[i * keys.size()].timestamp, commits[i]);
  EXPECT_TRUE(all[3 * keys.size() + 0].deleted || all[3 * keys.size() + 1].deleted ||
              all[3 * keys.size() + 2].deleted);
}

TEST(WatchFeedTest, EachChangeComesWithItsPreviousVersionIfAsked) {
  LocalCluster c(3, Options());
  const auto keys = KeysOnEveryShard(c.member(0).map());
  Collected got;
  c.SetNow();
  auto feed = Feed(c, c.member(0).coordinator().FreshTimestamp(), &got, KeyRange::All(), true);
  Timestamp last;
  for (int i = 0; i < 4; ++i) {
    Coordinator::Writes writes;
    for (const auto& k : keys) writes[k] = "\"v" + std::to_string(i) + "\"";
    if (i == 2) writes[keys[0]] = std::nullopt;
    last = Commit(c, i % 3, writes);
  }
  ASSERT_TRUE(c.RunUntil([&] { return got.frontier >= last; }));
  const std::vector<Change> all = got.All();
  ASSERT_EQ(all.size(), 4 * keys.size());
  ASSERT_EQ(got.previous.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const size_t round = i / keys.size();
    const bool first_key = all[i].key == keys[0];
    // No previous for a first write, nor after a delete (a tombstone).
    if (round == 0 || (round == 3 && first_key)) {
      EXPECT_FALSE(got.previous[i]) << i;
      continue;
    }
    ASSERT_TRUE(got.previous[i]) << i;
    EXPECT_EQ(got.previous[i]->key, all[i].key);
    EXPECT_EQ(got.previous[i]->value, "\"v" + std::to_string(round - 1) + "\"");
    EXPECT_LT(got.previous[i]->timestamp, all[i].timestamp);
  }
}

TEST(WatchFeedTest, ReadsHistoryFromTheLogOrTheStoreAndARangeOnly) {
  for (size_t log_bytes : {size_t{16} << 20, size_t{300}}) {
    LocalCluster c(3, Options(log_bytes));
    c.SetNow();
    const Timestamp start = c.member(0).coordinator().FreshTimestamp();
    std::vector<Timestamp> commits;
    for (int i = 0; i < 20; ++i) {
      commits.push_back(Commit(c, i % 3, {{"a" + std::to_string(i), "1"}, {"b", "2"}}));
    }
    Collected got;
    auto feed = Feed(c, start, &got, KeyRange{"a", "b"});
    ASSERT_TRUE(c.RunUntil([&] { return got.frontier >= commits.back(); }));
    const std::vector<Change> all = got.All();
    ASSERT_EQ(all.size(), 20u) << "log bytes " << log_bytes;
    for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].timestamp, commits[i]);
  }
}

TEST(WatchFeedTest, AnUnreachableShardHoldsTheFrontierUntilItIsBack) {
  LocalCluster c(3, Options());
  const auto keys = KeysOnEveryShard(c.member(0).map());
  Collected got;
  c.SetNow();
  auto feed = Feed(c, c.member(0).coordinator().FreshTimestamp(), &got);
  const Timestamp first = Commit(c, 0, {{keys[0], "1"}});
  ASSERT_TRUE(c.RunUntil([&] { return got.frontier >= first; }));
  c.Isolate(2, true);
  const Timestamp second = Commit(c, 0, {{keys[0], "2"}});
  c.RunUntil([] { return false; }, std::chrono::milliseconds(200));
  EXPECT_LT(got.frontier, second) << "shard 2 cannot vouch for it";
  EXPECT_EQ(got.All().size(), 1u);
  c.Isolate(2, false);
  ASSERT_TRUE(c.RunUntil([&] { return got.frontier >= second; }));
  EXPECT_EQ(got.All().size(), 2u);
}

TEST(WatchFeedTest, ACompactedStartEndsTheFeed) {
  LocalCluster c(3, Options());
  const Timestamp first = Commit(c, 0, {{"x", "1"}});
  Commit(c, 0, {{"x", "2"}});
  for (int i = 0; i < 3; ++i) (void)c.store(i).Compact(Timestamp(first.value() + 1));
  Collected got;
  auto feed = Feed(c, Timestamp(first.value() - 1), &got);
  ASSERT_TRUE(c.RunUntil([&] { return got.error.has_value(); }));
  EXPECT_EQ(got.error->code(), StatusCode::kCompacted);
}

// One feed over three shards whose reads the test answers by hand.
// A feed over three shards whose reads a test answers by hand.
class WatchFeedNudgeTest : public ::testing::Test {
 protected:
  WatchFeedNudgeTest()
      : map_(*ShardMap::OnePerNode({"n0", "n1", "n2"})),
        peers_("n0", {"n0", "n1", "n2"}, &map_, &clock_, &transport_, &timers_,
               std::chrono::milliseconds(1000)) {
    timers_.SetNow(t0_);
  }

  void Start(WatchFeedOptions options) {
    feed_ = std::make_unique<WatchFeed>(
        &peers_, &timers_, nullptr, KeyRange::All(), Timestamp(10), options,
        [this](std::vector<Change> changes, std::vector<std::optional<Change>>, Timestamp) {
          handed_on_.insert(handed_on_.end(), changes.begin(), changes.end());
        },
        [](Status) { FAIL() << "the feed failed"; });
    feed_->Start();
  }

  struct Read {
    uint64_t id = 0;
    ShardWatch watch;
  };
  // The reads sent since the last call, by destination.
  std::map<std::string, Read> Reads() {
    std::map<std::string, Read> by_dest;
    for (const auto& sent : transport_.sent) {
      if (const auto* w = std::get_if<ShardWatch>(&sent.request)) {
        by_dest.insert_or_assign(sent.dest, Read{sent.msg_id, *w});
      }
    }
    transport_.sent.clear();
    return by_dest;
  }
  void Answer(const Read& read, std::vector<Change> changes, uint64_t resolved) {
    EXPECT_TRUE(
        peers_.OnReply(read.id, ShardWatchReply{std::move(changes), Timestamp(resolved), 0, {}}));
  }
  void RunUntil(std::chrono::milliseconds since_t0) { timers_.RunDue(t0_ + since_t0); }

  const Timers::Clock::time_point t0_ = Timers::Clock::time_point() + std::chrono::hours(1);
  ShardMap map_;
  HybridLogicalClock clock_;
  Timers timers_;
  CapturingTransport transport_;
  Peers peers_;
  std::unique_ptr<WatchFeed> feed_;
  std::vector<Change> handed_on_;
};

TEST_F(WatchFeedNudgeTest, AChangeHasTheShardsBehindItReadAtOnce) {
  using std::chrono::milliseconds;
  WatchFeedOptions options;
  options.park = milliseconds(0);  // polls (the long polls are tested below)
  options.poll_interval = milliseconds(100);
  Start(options);
  auto first = Reads();
  ASSERT_EQ(first.size(), 3u);
  // n1 answers at t0, the others 50 ms later: their next polls fall apart.
  Answer(first["n1"], {}, 40);
  RunUntil(milliseconds(50));
  Answer(first["n0"], {}, 40);
  Answer(first["n2"], {}, 40);
  EXPECT_TRUE(Reads().empty());
  // n1's poll comes first and finds a change at 50.
  RunUntil(milliseconds(100));
  auto second = Reads();
  ASSERT_EQ(second.size(), 1u);
  Answer(second["n1"], {Change{"k", Timestamp(50), 1, false, "v"}}, 50);
  // n0 and n2 are read at once, 50 ms before their polls were due.
  auto nudged = Reads();
  EXPECT_EQ(nudged.count("n0"), 1u);
  EXPECT_EQ(nudged.count("n2"), 1u);
  EXPECT_TRUE(handed_on_.empty()) << "handed on before every shard was past it";
  Answer(nudged["n0"], {}, 60);
  Answer(nudged["n2"], {}, 60);
  ASSERT_EQ(handed_on_.size(), 1u);
  EXPECT_EQ(handed_on_[0].key, "k");
  // n0's and n2's old poll timers (due at 150 ms) are moot, and n1's read
  // after its news is still on its way: nothing more goes out.
  RunUntil(milliseconds(150));
  EXPECT_TRUE(Reads().empty());
  // Their polls resume from the nudged reads' answers.
  RunUntil(milliseconds(200));
  auto polls = Reads();
  EXPECT_EQ(polls.count("n0"), 1u);
  EXPECT_EQ(polls.count("n2"), 1u);
}

TEST_F(WatchFeedNudgeTest, LongPollsAreHeldProbesAreNotAndAStaleAnswerIsDropped) {
  WatchFeedOptions options;
  options.park = std::chrono::milliseconds(50);
  Start(options);
  auto polls = Reads();
  ASSERT_EQ(polls.size(), 3u);
  for (const auto& [dest, r] : polls) EXPECT_EQ(r.watch.park_ms, 50u) << dest << " is held";
  // n1's long poll comes back with a change: n1 is polled again, and the
  // others are probed at once (not held), their polls still out.
  Answer(polls["n1"], {Change{"k", Timestamp(50), 1, false, "v"}}, 50);
  auto after_change = Reads();
  ASSERT_EQ(after_change.size(), 3u);
  EXPECT_EQ(after_change["n1"].watch.park_ms, 50u);
  EXPECT_EQ(after_change["n1"].watch.after, Timestamp(50));
  EXPECT_EQ(after_change["n0"].watch.park_ms, 0u);
  EXPECT_EQ(after_change["n2"].watch.park_ms, 0u);
  Answer(after_change["n0"], {}, 60);
  EXPECT_TRUE(handed_on_.empty()) << "n2 has not passed it yet";
  Answer(after_change["n2"], {}, 60);
  ASSERT_EQ(handed_on_.size(), 1u);
  EXPECT_TRUE(Reads().empty()) << "a probe with nothing new is not followed";
  // n0's first poll comes back now, from where the feed no longer is: it
  // is dropped and n0 polled again from 60.
  Answer(polls["n0"], {}, 70);
  EXPECT_EQ(feed_->frontier(), Timestamp(50));
  auto again = Reads();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again["n0"].watch.after, Timestamp(60));
  EXPECT_EQ(again["n0"].watch.park_ms, 50u);
  EXPECT_EQ(handed_on_.size(), 1u);
}

}  // namespace watch_feed_test
}  // namespace strata::cluster
