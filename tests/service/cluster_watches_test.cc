// ClusterWatches: etcd's watches over three in-process members. Live
// watchers share one feed and see every write in revision order; a watcher
// from a past revision reads history and then joins the live feed with no
// gap and no repeat while writes go on; filters, cancel, progress, and the
// refusals (prev_kv, a compacted start) answer as etcd's do.
#include "service/cluster_watches.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "service/cluster_kv.h"
#include "tests/cluster/local_cluster.h"

namespace strata::service {
namespace cluster_watches_test {

class Sink final : public WatchSink {
 public:
  // While `full`, refuses what it may (as a stream over its bound does).
  bool Offer(WatchResponse r, bool must) override {
    if (full && !must) return false;
    responses.push_back(std::move(r));
    return true;
  }
  // Events of watcher `id`, as "PUT key=value@revision" / "DELETE key@revision".
  std::vector<std::string> Events(int64_t id) const {
    std::vector<std::string> out;
    for (const auto& r : responses) {
      if (r.watch_id != id) continue;
      for (const auto& e : r.events) {
        out.push_back(e.type == Event::Type::kPut
                          ? "PUT " + e.kv.key + "=" + e.kv.value + "@" +
                                std::to_string(e.kv.mod_revision)
                          : "DELETE " + e.kv.key + "@" + std::to_string(e.kv.mod_revision));
      }
    }
    return out;
  }
  std::vector<WatchResponse> responses;
  bool full = false;
};

class ClusterWatchesTest : public ::testing::Test {
 protected:
  ClusterWatchesTest() : cluster_(3) {
    for (int i = 0; i < 3; ++i) {
      kv_.push_back(std::make_unique<ClusterKv>(&cluster_.member(i).coordinator(),
                                                &cluster_.member(i).router(), ClusterKvOptions{}));
    }
    watches_ = std::make_unique<ClusterWatches>(
        [this](std::function<void(cluster::Member&)> task) {
          cluster_.SetNow();
          task(cluster_.member(0));
          return true;
        },
        [] { return int64_t{42}; });
  }

  int64_t Put(int node, const std::string& key, const std::string& value) {
    PutRequest r;
    r.key = key;
    r.value = value;
    std::optional<Reply<PutResponse>> out;
    cluster_.SetNow();
    kv_[node]->Put(r, [&](Reply<PutResponse> p) { out.emplace(std::move(p)); });
    EXPECT_TRUE(cluster_.RunUntil([&] { return out.has_value(); }));
    EXPECT_TRUE(out && out->ok());
    return out && out->ok() ? out->value().header.revision : 0;
  }
  int64_t Delete(int node, const std::string& key) {
    DeleteRangeRequest r;
    r.span = {key, ""};
    std::optional<Reply<DeleteRangeResponse>> out;
    cluster_.SetNow();
    kv_[node]->DeleteRange(r, [&](Reply<DeleteRangeResponse> d) { out.emplace(std::move(d)); });
    EXPECT_TRUE(cluster_.RunUntil([&] { return out.has_value(); }));
    return out && out->ok() ? out->value().header.revision : 0;
  }
  WatchCreateRequest Watch(const std::string& key, const std::string& end, int64_t start = 0) {
    WatchCreateRequest r;
    r.span = {key, end};
    r.start_revision = start;
    return r;
  }
  // Pumps until `sink` has `n` events for watcher `id`.
  bool WaitEvents(const Sink& sink, int64_t id, size_t n) {
    return cluster_.RunUntil([&] { return sink.Events(id).size() >= n; });
  }

  cluster::LocalCluster cluster_;
  std::vector<std::unique_ptr<ClusterKv>> kv_;
  std::unique_ptr<ClusterWatches> watches_;
};

TEST_F(ClusterWatchesTest, LiveWatchersSeeEveryWriteInOrder) {
  Sink a, b;
  watches_->Create(&a, Watch("k", "l"));
  watches_->Create(&b, Watch("k2", ""));
  ASSERT_EQ(a.responses.size(), 1u);
  EXPECT_TRUE(a.responses[0].created);
  EXPECT_EQ(watches_->watchers(), 2u);
  std::vector<std::string> want;
  for (int i = 0; i < 6; ++i) {
    const std::string key = "k" + std::to_string(i % 3);
    const int64_t rev = Put(i % 3, key, "v" + std::to_string(i));
    want.push_back("PUT " + key + "=v" + std::to_string(i) + "@" + std::to_string(rev));
  }
  want.push_back("DELETE k1@" + std::to_string(Delete(2, "k1")));
  Put(0, "other", "x");  // outside both ranges
  ASSERT_TRUE(WaitEvents(a, 0, want.size()));
  cluster_.RunUntil([] { return false; }, std::chrono::milliseconds(50));
  EXPECT_EQ(a.Events(0), want);
  ASSERT_EQ(b.Events(0).size(), 2u);
  EXPECT_EQ(b.Events(0)[0], want[2]);
  EXPECT_EQ(b.Events(0)[1], want[5]);
}

TEST_F(ClusterWatchesTest, AWatcherFromThePastCatchesUpAndJoinsWithoutGapOrRepeat) {
  Sink live, past;
  watches_->Create(&live, Watch("k", "l"));
  const int64_t first = Put(0, "k0", "a");
  std::vector<std::string> all = {"PUT k0=a@" + std::to_string(first)};
  for (int i = 1; i < 5; ++i) {
    all.push_back("PUT k" + std::to_string(i) + "=a@" +
                  std::to_string(Put(i % 3, "k" + std::to_string(i), "a")));
  }
  ASSERT_TRUE(WaitEvents(live, 0, all.size()));
  watches_->Create(&past, Watch("k", "l", first));
  // Writes go on while it catches up.
  for (int i = 5; i < 10; ++i) {
    all.push_back("PUT k" + std::to_string(i) + "=b@" +
                  std::to_string(Put(i % 3, "k" + std::to_string(i), "b")));
  }
  ASSERT_TRUE(WaitEvents(past, 0, all.size()));
  cluster_.RunUntil([] { return false; }, std::chrono::milliseconds(50));
  EXPECT_EQ(past.Events(0), all);
  EXPECT_EQ(live.Events(0), all);
}

TEST_F(ClusterWatchesTest, FiltersCancelProgressAndRefusals) {
  Sink s;
  WatchCreateRequest no_put = Watch("a", "b");
  no_put.no_put = true;
  watches_->Create(&s, no_put);  // id 0
  Put(0, "a1", "x");
  const int64_t deleted = Delete(1, "a1");
  ASSERT_TRUE(WaitEvents(s, 0, 1));
  EXPECT_EQ(s.Events(0), std::vector<std::string>{"DELETE a1@" + std::to_string(deleted)});

  watches_->RequestProgress(&s);
  EXPECT_EQ(s.responses.back().watch_id, -1);
  EXPECT_GE(s.responses.back().header.revision, deleted);

  watches_->Cancel(&s, 0);
  EXPECT_TRUE(s.responses.back().canceled);
  EXPECT_EQ(watches_->watchers(), 0u);

  // prev_kv: each event carries the key's version before it, if any.
  WatchCreateRequest prev = Watch("a", "b");
  prev.prev_kv = true;
  watches_->Create(&s, prev);
  ASSERT_FALSE(s.responses.back().canceled);
  const int64_t prev_id = s.responses.back().watch_id;
  Put(0, "a1", "x");
  Put(1, "a1", "y");
  ASSERT_TRUE(WaitEvents(s, prev_id, 2));
  std::vector<Event> events;
  for (const auto& r : s.responses) {
    if (r.watch_id == prev_id) events.insert(events.end(), r.events.begin(), r.events.end());
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_FALSE(events[0].prev_kv) << "a first write has none";
  ASSERT_TRUE(events[1].prev_kv);
  EXPECT_EQ(events[1].prev_kv->value, "x");
  EXPECT_EQ(events[1].prev_kv->mod_revision, events[0].kv.mod_revision);
  watches_->Cancel(&s, prev_id);
  // An inverted range and an id the stream uses: etcd's refusals.
  watches_->Create(&s, Watch("b", "a"));
  EXPECT_EQ(s.responses.back().watch_id, -1);
  EXPECT_EQ(s.responses.back().cancel_reason, "mvcc: watcher range is empty");
  WatchCreateRequest with_id = Watch("a", "b");
  with_id.watch_id = 7;
  watches_->Create(&s, with_id);
  EXPECT_FALSE(s.responses.back().canceled);
  watches_->Create(&s, with_id);
  EXPECT_EQ(s.responses.back().watch_id, 7);
  EXPECT_EQ(s.responses.back().cancel_reason, "etcdserver: mvcc: duplicate watch ID provided");
  watches_->Cancel(&s, 7);

  // A start below the shards' compaction: cancelled with the compaction.
  const int64_t r1 = Put(0, "c", "1");
  Put(0, "c", "2");
  for (int i = 0; i < 3; ++i) (void)cluster_.store(i).Compact(Timestamp(r1 + 1));
  watches_->Create(&s, Watch("c", "", r1 - 1));
  const int64_t id = s.responses.back().watch_id;
  ASSERT_TRUE(cluster_.RunUntil([&] { return s.responses.back().canceled; }));
  EXPECT_EQ(s.responses.back().watch_id, id);
  EXPECT_EQ(s.responses.back().compact_revision, 42);
  EXPECT_EQ(s.responses.back().cancel_reason, "") << "etcd 3.4 names no reason";
  watches_->RemoveStream(&s);
  EXPECT_EQ(watches_->watchers(), 0u);
}

TEST_F(ClusterWatchesTest, ALiveWatchHoldsCompactionBehindWhatItHandedOn) {
  Sink s;
  watches_->Create(&s, Watch("k", "l"));
  const int64_t id = s.responses.back().watch_id;
  // Let every member report its oldest snapshot (the watch's hold) first.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  cluster_.RunUntil([&] { return std::chrono::steady_clock::now() > until; });
  for (int round = 0; round < 5; ++round) {
    const int64_t last = Put(round % 3, "k" + std::to_string(round), "v");
    // A compaction at the newest revision, at once: the shared feed is a
    // poll behind it, so each shard compacts no further than the feed.
    std::optional<Reply<CompactionResponse>> compacted;
    kv_[round % 3]->Compact({last, true}, [&](Reply<CompactionResponse> r) { compacted = r; });
    ASSERT_TRUE(cluster_.RunUntil([&] { return compacted.has_value(); }));
  }
  ASSERT_TRUE(WaitEvents(s, id, 5));
  for (const auto& r : s.responses) EXPECT_FALSE(r.canceled) << r.cancel_reason;
  EXPECT_EQ(s.Events(id).size(), 5u);
}

TEST_F(ClusterWatchesTest, AWatcherThatAsksForFragmentsGetsALargeCommitInParts) {
  ClusterWatchesOptions options;
  options.fragment_bytes = 350;  // each event counts 2 + 100 + 64 bytes
  watches_ = std::make_unique<ClusterWatches>(
      [this](std::function<void(cluster::Member&)> task) {
        cluster_.SetNow();
        task(cluster_.member(0));
        return true;
      },
      [] { return int64_t{42}; }, options);
  Sink whole, parts;
  watches_->Create(&whole, Watch("f", "g"));
  WatchCreateRequest fragmented = Watch("f", "g");
  fragmented.fragment = true;
  watches_->Create(&parts, fragmented);
  TxnRequest txn;  // one commit of five keys over the shards
  for (int i = 0; i < 5; ++i) {
    PutRequest& put = txn.success.emplace_back().op.emplace<PutRequest>();
    put.key = "f" + std::to_string(i);
    put.value = std::string(100, 'v');
  }
  std::optional<Reply<TxnResponse>> out;
  cluster_.SetNow();
  kv_[1]->Txn(txn, [&](Reply<TxnResponse> r) { out.emplace(std::move(r)); });
  ASSERT_TRUE(cluster_.RunUntil([&] { return out.has_value(); }));
  ASSERT_TRUE(out->ok());
  ASSERT_TRUE(WaitEvents(whole, 0, 5));
  ASSERT_TRUE(WaitEvents(parts, 0, 5));
  std::vector<bool> fragment_flags;
  for (const auto& r : parts.responses) {
    if (!r.events.empty()) fragment_flags.push_back(r.fragment);
  }
  EXPECT_EQ(fragment_flags, (std::vector<bool>{true, true, false}))
      << "two events a part, every part but the last marked";
  EXPECT_EQ(parts.Events(0), whole.Events(0));
  size_t with_events = 0;
  for (const auto& r : whole.responses) {
    if (r.events.empty()) continue;
    ++with_events;
    EXPECT_FALSE(r.fragment);
  }
  EXPECT_EQ(with_events, 1u) << "without fragment, one commit is one response";
  watches_->RemoveStream(&whole);
  watches_->RemoveStream(&parts);
}

TEST_F(ClusterWatchesTest, AFullStreamPausesItsWatcherWhichCatchesUpOnceItDrains) {
  Sink slow, other;
  watches_->Create(&slow, Watch("k", "l"));
  watches_->Create(&other, Watch("k", "l"));
  std::vector<std::string> want;
  auto put = [&](int node, const std::string& key, const std::string& value) {
    want.push_back("PUT " + key + "=" + value + "@" + std::to_string(Put(node, key, value)));
  };
  put(0, "k1", "a");
  ASSERT_TRUE(WaitEvents(slow, 0, 1));
  slow.full = true;
  put(1, "k2", "b");
  ASSERT_TRUE(cluster_.RunUntil([&] { return watches_->paused() == 1; }));
  put(2, "k3", "c");  // while paused: the shared feed goes on without it
  put(0, "k1", "d");
  ASSERT_TRUE(WaitEvents(other, 0, want.size()));
  EXPECT_EQ(other.Events(0), want) << "another stream's watcher is not held back";
  EXPECT_EQ(slow.Events(0).size(), 1u);

  // Drained: it reads what it missed from history, then the live feed.
  slow.full = false;
  watches_->Nudge(&slow);
  ASSERT_TRUE(WaitEvents(slow, 0, want.size()));
  put(1, "k2", "e");
  ASSERT_TRUE(WaitEvents(slow, 0, want.size()));
  cluster_.RunUntil([] { return false; }, std::chrono::milliseconds(50));
  EXPECT_EQ(slow.Events(0), want) << "every event once, in order";
  for (const auto& r : slow.responses) EXPECT_FALSE(r.canceled) << r.cancel_reason;
  EXPECT_EQ(watches_->paused(), 0u);
  EXPECT_EQ(watches_->pauses(), 1u);
  EXPECT_EQ(watches_->watchers(), 2u);

  // Paused past a compaction: cancelled with it when it resumes, as etcd
  // cancels a watcher behind a compaction.
  slow.full = true;
  put(2, "k3", "f");
  ASSERT_TRUE(cluster_.RunUntil([&] { return watches_->paused() == 1; }));
  put(0, "k9", "g");
  ASSERT_TRUE(WaitEvents(other, 0, want.size()));  // the shared feed is past it
  const int64_t last = std::stoll(want.back().substr(want.back().find('@') + 1));
  for (int i = 0; i < 3; ++i) (void)cluster_.store(i).Compact(Timestamp(last));
  slow.full = false;
  watches_->Nudge(&slow);
  ASSERT_TRUE(cluster_.RunUntil([&] { return slow.responses.back().canceled; }));
  EXPECT_EQ(slow.responses.back().compact_revision, 42);
  EXPECT_EQ(watches_->watchers(), 1u);
  EXPECT_EQ(watches_->paused(), 0u);
  watches_->RemoveStream(&slow);
  watches_->RemoveStream(&other);
}

}  // namespace cluster_watches_test
}  // namespace strata::service
