// WatchHub: etcd's watch guarantees at the service layer (ordered, unique,
// atomic revisions, resumable from history, compaction cancels, progress),
// and that a stream which stops reading never holds a writer.
#include "service/watch_hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "support/recording_watch_sink.h"
#include "tests/service/service_test_support.h"

namespace strata::service {
namespace {

using testing::MemoryKv;

using RecordingSink = RecordingWatchSink;

// A MemoryKv whose events go to a WatchHub.
struct WatchedKv {
  WatchedKv()
      : hub(
            &kv.store, [this] { return kv.kv.compact_revision(); }, 1, Options()) {
    kv.pipeline.SetEventSink(
        [this](int64_t rev, std::vector<Event>&& e) { hub.Publish(rev, std::move(e)); });
  }
  static WatchHubOptions Options() {
    WatchHubOptions o;
    o.ring_events = 4;  // small, so history is read from the engine too
    o.catch_up_batch = 3;
    o.progress_interval = std::chrono::milliseconds(100);
    return o;
  }
  MemoryKv kv;
  WatchHub hub;
};

// Collects the events of `watch_id` until `count` arrived (or a timeout).
std::vector<WatchResponse> Collect(RecordingSink& sink, size_t events,
                                   std::vector<Event>* all = nullptr) {
  std::vector<WatchResponse> out;
  size_t seen = 0;
  for (int i = 0; i < 400 && seen < events; ++i) {
    for (auto& r : sink.Drain()) {
      seen += r.events.size();
      if (all) all->insert(all->end(), r.events.begin(), r.events.end());
      out.push_back(std::move(r));
    }
    if (seen < events) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return out;
}

WatchCreateRequest Watch(const std::string& key, const std::string& end, int64_t start) {
  WatchCreateRequest w;
  w.span = {key, end};
  w.start_revision = start;
  return w;
}

TEST(WatchHubTest, CreatedThenLiveEventsOneResponsePerRevision) {
  WatchedKv w;
  RecordingSink sink;
  w.hub.Create(&sink, Watch("a", "b", 0));
  auto created = sink.Drain();
  ASSERT_EQ(created.size(), 1u);
  EXPECT_TRUE(created[0].created);
  EXPECT_EQ(created[0].watch_id, 0);
  TxnRequest t;
  t.success = {testing::PutOp("a1", "x"), testing::PutOp("a2", "y"), testing::PutOp("z", "no")};
  ASSERT_TRUE(w.kv.Txn(t).ok());
  auto got = Collect(sink, 2);
  ASSERT_EQ(got.size(), 1u) << "one revision, one response";
  ASSERT_EQ(got[0].events.size(), 2u);
  EXPECT_EQ(got[0].header.revision, 2);
  EXPECT_EQ(got[0].events[0].kv.key, "a1");
  EXPECT_FALSE(got[0].events[0].prev_kv.has_value()) << "prev_kv only when asked";
}

TEST(WatchHubTest, ReplaysHistoryFromAStartRevisionInOrderWithoutGaps) {
  WatchedKv w;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(w.kv.Put("k", std::to_string(i)).ok());
  // Revisions 2..21; the ring holds only the newest 4, so most come from the
  // engine's history, in batches of 3.
  RecordingSink sink;
  auto req = Watch("k", "", 3);
  req.prev_kv = true;
  w.hub.Create(&sink, req);
  std::vector<Event> events;
  Collect(sink, 19, &events);
  ASSERT_EQ(events.size(), 19u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].kv.mod_revision, static_cast<int64_t>(i) + 3);
    EXPECT_EQ(events[i].kv.value, std::to_string(i + 1));
    ASSERT_TRUE(events[i].prev_kv.has_value());
    EXPECT_EQ(events[i].prev_kv->value, std::to_string(i));
  }
  // And it goes on live.
  ASSERT_TRUE(w.kv.Put("k", "live").ok());
  Collect(sink, 1, &events);
  ASSERT_EQ(events.size(), 20u);
  EXPECT_EQ(events.back().kv.value, "live");
}

TEST(WatchHubTest, HistoryNeverSplitsARevision) {
  WatchedKv w;
  TxnRequest t;
  for (int i = 0; i < 7; ++i) t.success.push_back(testing::PutOp("m" + std::to_string(i), "v"));
  ASSERT_TRUE(w.kv.Txn(t).ok());  // one revision, 7 events > batch 3
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(w.kv.Put("pad" + std::to_string(i), "v").ok());
  RecordingSink sink;
  w.hub.Create(&sink, Watch("m", "n", 1));
  std::vector<Event> events;
  auto responses = Collect(sink, 7, &events);
  ASSERT_EQ(events.size(), 7u);
  for (const auto& r : responses) {
    if (r.events.empty()) continue;
    EXPECT_EQ(r.events.size(), 7u) << "a revision's events came split";
  }
}

TEST(WatchHubTest, CompactedStartIsCancelledWithTheCompactRevision) {
  WatchedKv w;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(w.kv.Put("k", "v").ok());
  ASSERT_TRUE(w.kv.Compact(4).ok());
  RecordingSink sink;
  w.hub.Create(&sink, Watch("k", "", 2));
  auto got = sink.Drain();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].created);
  EXPECT_TRUE(got[1].canceled);
  EXPECT_EQ(got[1].compact_revision, 4);
  EXPECT_EQ(w.hub.watchers(), 0u);
  // At the compaction revision itself the watch works: it sees what was kept.
  RecordingSink at;
  w.hub.Create(&at, Watch("k", "", 4));
  std::vector<Event> events;
  Collect(at, 3, &events);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kv.mod_revision, 4);
}

TEST(WatchHubTest, AStreamThatStopsReadingDoesNotHoldWritersAndCatchesUpLater) {
  WatchedKv w;
  RecordingSink slow(2);
  w.hub.Create(&slow, Watch("k", "", 0));
  slow.Drain();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(w.kv.Put("k", std::to_string(i)).ok());
  // Writers went on; the sink holds at most its bound of event responses.
  std::vector<Event> events;
  const auto responses = Collect(slow, 50, &events);
  ASSERT_EQ(events.size(), 50u);
  EXPECT_LT(responses.size(), 50u) << "a watcher behind gets several revisions a response";
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].kv.value, std::to_string(i)) << "lost, duplicated or reordered";
  }
}

TEST(WatchHubTest, FiltersAndCancel) {
  WatchedKv w;
  RecordingSink sink;
  auto req = Watch("k", "", 0);
  req.no_put = true;
  w.hub.Create(&sink, req);
  sink.Drain();
  ASSERT_TRUE(w.kv.Put("k", "v").ok());
  ASSERT_TRUE(w.kv.Delete("k").ok());
  auto got = Collect(sink, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].events[0].type, Event::Type::kDelete);
  w.hub.Cancel(&sink, 0);
  got = sink.Drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].canceled);
  ASSERT_TRUE(w.kv.Put("k", "again").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(sink.Drain().empty());
}

TEST(WatchHubTest, ProgressRequestWaitsUntilEveryWatcherCaughtUp) {
  WatchedKv w;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(w.kv.Put("k", "v").ok());
  RecordingSink sink;
  w.hub.Create(&sink, Watch("k", "", 2));
  w.hub.RequestProgress(&sink);
  std::vector<WatchResponse> all;
  int64_t last_event_revision = 0;
  bool progress = false;
  for (int i = 0; i < 400 && !progress; ++i) {
    for (auto& r : sink.Drain()) {
      for (auto& e : r.events) last_event_revision = e.kv.mod_revision;
      if (r.watch_id == -1) {
        progress = true;
        EXPECT_EQ(r.header.revision, 11);
        EXPECT_EQ(last_event_revision, 11) << "progress ran ahead of the events";
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(progress);
}

TEST(WatchHubTest, ProgressNotifyOnAnIdleServer) {
  WatchedKv w;
  RecordingSink sink;
  auto req = Watch("k", "", 0);
  req.progress_notify = true;
  w.hub.Create(&sink, req);
  sink.Drain();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto got = sink.Drain();
  ASSERT_FALSE(got.empty());
  EXPECT_TRUE(got[0].events.empty());
  EXPECT_FALSE(got[0].created);
  EXPECT_EQ(got[0].header.revision, 1);
}

TEST(WatchHubTest, WatcherLimitsPerStream) {
  MemoryKv kv;
  WatchHubOptions o;
  o.max_watchers_per_stream = 2;
  WatchHub hub(
      &kv.store, [] { return int64_t{0}; }, 1, o);
  RecordingSink sink;
  for (int i = 0; i < 3; ++i) hub.Create(&sink, Watch("k", "", 0));
  auto got = sink.Drain();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_FALSE(got[1].canceled);
  EXPECT_TRUE(got[2].canceled);
  EXPECT_EQ(hub.watchers(), 2u);
  hub.RemoveStream(&sink);
  EXPECT_EQ(hub.watchers(), 0u);
}

}  // namespace
}  // namespace strata::service

namespace strata::service {
namespace {

// A KvService whose compaction asks the hub what watchers still need.
struct GuardedKv {
  static constexpr int64_t kMaxLag = 50;
  GuardedKv()
      : kv(Options(this)),
        hub(
            &kv.store, [this] { return kv.kv.compact_revision(); }, 1, WatchedKv::Options()) {
    kv.pipeline.SetEventSink(
        [this](int64_t rev, std::vector<Event>&& e) { hub.Publish(rev, std::move(e)); });
  }
  static KvServiceOptions Options(GuardedKv* self) {
    KvServiceOptions o;
    o.compaction_floor = [self] { return self->hub.ProtectedFloor(kMaxLag).revision; };
    return o;
  }
  testing::MemoryKv kv;
  WatchHub hub;
};

TEST(WatchHubTest, CompactionNeverBreaksAWatcherThatKeepsUp) {
  GuardedKv g;
  RecordingSink slow(1);  // reads one response, then stalls
  g.hub.Create(&slow, Watch("k", "", 0));
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(g.kv.Put("k", std::to_string(i)).ok());
  // The watcher stalled early; a compaction past it is answered as etcd's...
  ASSERT_TRUE(g.kv.Compact(25).ok());
  EXPECT_EQ(g.kv.kv.compact_revision(), 25);
  EXPECT_FALSE(g.kv.Get("k", "", 20).ok()) << "reads below the compaction are refused";
  // ...but the engine keeps what the watcher still needs.
  const auto floor = g.hub.ProtectedFloor(GuardedKv::kMaxLag);
  EXPECT_LT(floor.revision, 25);
  EXPECT_LT(static_cast<int64_t>(g.kv.store.compaction_horizon().value()), 25);
  std::vector<Event> events;
  Collect(slow, 30, &events);
  ASSERT_EQ(events.size(), 30u) << "the watcher was cancelled or lost events";
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].kv.value, std::to_string(i));
  // Caught up: the deferred part of the compaction goes through.
  g.kv.kv.ApplyDeferredCompaction();
  EXPECT_EQ(g.kv.store.compaction_horizon().value(), 25u);
}

TEST(WatchHubTest, AWatcherTooFarBehindIsNotWaitedFor) {
  GuardedKv g;
  RecordingSink slow(1);
  g.hub.Create(&slow, Watch("k", "", 0));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(g.kv.Put("k", std::to_string(i)).ok());
  // 100 revisions behind, more than the bound of 50: compaction goes on.
  ASSERT_TRUE(g.kv.Compact(90).ok());
  EXPECT_EQ(g.kv.store.compaction_horizon().value(), 90u);
  bool canceled = false;
  for (int i = 0; i < 400 && !canceled; ++i) {
    for (auto& r : slow.Drain()) {
      if (r.canceled) {
        canceled = true;
        EXPECT_EQ(r.compact_revision, 90);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(canceled);
}

}  // namespace
}  // namespace strata::service

namespace strata::service {
namespace {

TEST(WatchHubTest, LargeRevisionsAreFragmentedForWatchersThatAskAndWholeForOthers) {
  testing::MemoryKv kv;
  WatchHubOptions o;
  o.fragment_bytes = 4096;
  WatchHub hub(
      &kv.store, [&] { return kv.kv.compact_revision(); }, 1, o);
  kv.pipeline.SetEventSink(
      [&](int64_t rev, std::vector<Event>&& e) { hub.Publish(rev, std::move(e)); });
  RecordingSink fragmented, whole;
  auto req = Watch("big/", "big0", 0);
  req.fragment = true;
  hub.Create(&fragmented, req);
  hub.Create(&whole, Watch("big/", "big0", 0));
  fragmented.Drain();
  whole.Drain();
  TxnRequest t;
  for (int i = 0; i < 10; ++i) {
    t.success.push_back(testing::PutOp("big/" + std::to_string(i), std::string(1000, 'x')));
  }
  ASSERT_TRUE(kv.Txn(t).ok());  // one revision of ~10 KB
  auto parts = Collect(fragmented, 10);
  ASSERT_GT(parts.size(), 1u);
  size_t events = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].fragment, i + 1 < parts.size()) << "all but the last say fragment";
    events += parts[i].events.size();
  }
  EXPECT_EQ(events, 10u);
  auto one = Collect(whole, 10);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].events.size(), 10u);
  EXPECT_FALSE(one[0].fragment);
}

}  // namespace
}  // namespace strata::service

namespace strata::service {
namespace {

TEST(WatchHubTest, ProgressUnderNonStopWritesIsAnsweredAndNeverRunsAheadOfEvents) {
  WatchedKv w;
  RecordingSink sink;
  for (const char* key : {"a", "b", "c"}) w.hub.Create(&sink, Watch(key, "", 0));
  std::atomic<bool> stop{false};
  std::atomic<int64_t> acknowledged{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      auto r = w.kv.Put(std::string(1, "abc"[i % 3]), "v");
      ASSERT_TRUE(r.ok());
      acknowledged = r.value().header.revision;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // The answer covers at least every write acknowledged before the request.
  const int64_t asked_at = acknowledged;
  w.hub.RequestProgress(&sink);
  int64_t progress = -1;
  size_t after = 0;  // events that came after the answer
  auto check = [&](const std::vector<WatchResponse>& responses) {
    for (const auto& r : responses) {
      for (const auto& e : r.events) {
        if (progress < 0) continue;
        ++after;
        EXPECT_GT(e.kv.mod_revision, progress) << "an event at or below the progress came after it";
      }
      if (r.watch_id == -1) progress = r.header.revision;
    }
  };
  for (int i = 0; i < 400 && progress < 0; ++i) {
    check(sink.Drain());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  writer.join();
  // What was delivered after the answer: drain until nothing more comes.
  for (int quiet = 0, i = 0; quiet < 10 && i < 400; ++i) {
    auto more = sink.Drain();
    quiet = more.empty() ? quiet + 1 : 0;
    check(more);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(progress, asked_at) << "no progress answer while writers ran";
  EXPECT_GT(after, 0u) << "writers went on after the answer";
}

}  // namespace
}  // namespace strata::service
