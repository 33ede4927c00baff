// ChangeMerger against a model: commits land on random shards at rising
// timestamps; each shard reports its changes late, out of order and twice,
// and resolves only below what it has not reported. Whatever the
// interleaving, the releases are every change once, in (timestamp, key)
// order, never past the frontier, and each commit's changes in one release.
#include "cluster/change_merger.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace strata::cluster {
namespace change_merger_test {

Change At(uint64_t ts, std::string key) {
  return Change{std::move(key), Timestamp(ts), 1, false, "v"};
}

TEST(ChangeMergerTest, ReleasesOnlyUpToTheSlowestShard) {
  ChangeMerger merger(2, Timestamp(10));
  merger.Add({At(12, "b"), At(11, "a")});
  merger.Resolve(0, Timestamp(20));
  EXPECT_EQ(merger.frontier(), Timestamp(10));
  EXPECT_TRUE(merger.Release().empty()) << "shard 1 may still commit at 11";
  merger.Add({At(11, "c")});
  merger.Resolve(1, Timestamp(11));
  std::vector<Change> out = merger.Release();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].key, "a");
  EXPECT_EQ(out[1].key, "c");
  EXPECT_EQ(merger.pending(), 1u);
  merger.Resolve(1, Timestamp(5));  // never backwards
  EXPECT_EQ(merger.frontier(), Timestamp(11));
  merger.Add({At(11, "a"), At(9, "z")});  // a repeat, and one from before the start
  EXPECT_EQ(merger.late(), 2u);
  merger.Resolve(1, Timestamp(30));
  out = merger.Release();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key, "b");
}

TEST(ChangeMergerTest, PreviousVersionsAreReleasedBesideTheirChanges) {
  ChangeMerger merger(1, Timestamp(10));
  merger.Add({At(12, "b"), At(11, "a")}, {At(5, "b"), std::nullopt});
  merger.Add({At(13, "c")});  // none added
  merger.Resolve(0, Timestamp(20));
  std::vector<std::optional<Change>> previous;
  const std::vector<Change> out = merger.Release(&previous);
  ASSERT_EQ(out.size(), 3u);
  ASSERT_EQ(previous.size(), 3u);
  EXPECT_FALSE(previous[0]) << "a had none";
  ASSERT_TRUE(previous[1]);
  EXPECT_EQ(previous[1]->timestamp, Timestamp(5)) << "b's";
  EXPECT_FALSE(previous[2]);
}

RC_GTEST_PROP(ChangeMergerTest, EveryChangeOnceInOrderAtomicallyUpToTheFrontier, ()) {
  const size_t shards = *rc::gen::inRange<size_t>(1, 5);
  // Commits: a timestamp each (rising) and the shards and keys it wrote.
  const size_t commits = *rc::gen::inRange<size_t>(0, 40);
  struct Written {
    size_t shard;
    Change change;
  };
  std::vector<Written> all;
  for (size_t c = 0; c < commits; ++c) {
    const uint64_t ts = 100 + 2 * c;
    const size_t keys = *rc::gen::inRange<size_t>(1, 4);
    std::set<std::string> seen;
    for (size_t k = 0; k < keys; ++k) {
      const std::string key = *rc::gen::element<std::string>("a", "b", "c", "d", "e", "f");
      if (!seen.insert(key).second) continue;
      all.push_back({*rc::gen::inRange<size_t>(0, shards), At(ts, key)});
    }
  }
  ChangeMerger merger(shards, Timestamp(99));
  std::vector<std::vector<Written>> unreported(shards);
  for (const Written& w : all) unreported[w.shard].push_back(w);
  std::vector<Change> released;
  std::vector<std::vector<Change>> releases;
  // Steps: a shard reports some of its changes (any order, some twice),
  // then resolves just below the oldest it still holds back.
  for (int step = 0; step < 200; ++step) {
    const size_t shard = *rc::gen::inRange<size_t>(0, shards);
    std::vector<Written>& held = unreported[shard];
    const size_t n = held.empty() ? 0 : *rc::gen::inRange<size_t>(0, held.size() + 1);
    std::vector<Change> batch;
    for (size_t i = 0; i < n; ++i) {
      const size_t pick = *rc::gen::inRange<size_t>(0, held.size());
      batch.push_back(held[pick].change);
      if (*rc::gen::inRange(0, 4) == 0) batch.push_back(held[pick].change);  // a resend
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(pick));
    }
    merger.Add(batch);
    uint64_t resolved = 100 + 2 * commits;
    for (const Written& w : held) resolved = std::min(resolved, w.change.timestamp.value() - 1);
    merger.Resolve(shard, Timestamp(resolved));
    std::vector<Change> out = merger.Release();
    for (const Change& c : out) RC_ASSERT(c.timestamp <= merger.frontier());
    released.insert(released.end(), out.begin(), out.end());
    if (!out.empty()) releases.push_back(std::move(out));
  }
  for (size_t s = 0; s < shards; ++s) {
    std::vector<Change> rest;
    for (const Written& w : unreported[s]) rest.push_back(w.change);
    merger.Add(rest);
    merger.Resolve(s, Timestamp(100 + 2 * commits));
  }
  std::vector<Change> last = merger.Release();
  released.insert(released.end(), last.begin(), last.end());
  if (!last.empty()) releases.push_back(std::move(last));

  RC_ASSERT(merger.late() == 0u);
  RC_ASSERT(merger.pending() == 0u);
  // Every change once, in (timestamp, key) order.
  std::vector<std::pair<uint64_t, std::string>> expected, got;
  for (const Written& w : all) expected.emplace_back(w.change.timestamp.value(), w.change.key);
  std::sort(expected.begin(), expected.end());
  for (const Change& c : released) got.emplace_back(c.timestamp.value(), c.key);
  RC_ASSERT(got == expected);
  // A commit never straddles two releases.
  std::map<uint64_t, size_t> release_of;
  for (size_t r = 0; r < releases.size(); ++r) {
    for (const Change& c : releases[r]) {
      auto [it, fresh] = release_of.emplace(c.timestamp.value(), r);
      RC_ASSERT(it->second == r);
    }
  }
}

}  // namespace change_merger_test
}  // namespace strata::cluster
