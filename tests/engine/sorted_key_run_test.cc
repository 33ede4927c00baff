// SortedKeyRun on its own: merges keep byte order, and LowerBound agrees
// with std::lower_bound whatever prefix the keys share (order bytes that
// tie, keys shorter than the shared prefix, zero bytes, empty keys).
#include "engine/sorted_key_run.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/key_entry.h"

namespace strata::engine {
namespace {

using namespace std::string_literals;

class SortedKeyRunTest : public ::testing::Test {
 protected:
  ~SortedKeyRunTest() override {
    for (SortedKeyRun* run : runs_) SortedKeyRun::Destroy(run);
    for (KeyEntry* e : entries_) KeyEntry::Destroy(e);
  }
  // Entries for `keys`, sorted.
  std::vector<KeyEntry*> Entries(std::set<std::string> keys) {
    std::vector<KeyEntry*> made;
    for (const std::string& k : keys) {
      made.push_back(KeyEntry::Create(k, 0, 1));
      entries_.push_back(made.back());
    }
    return made;
  }
  const SortedKeyRun* Merge(const SortedKeyRun* run, const std::vector<KeyEntry*>& added) {
    runs_.push_back(SortedKeyRun::Merge(run, added));
    return runs_.back();
  }
  static std::vector<std::string> Keys(const SortedKeyRun& run) {
    std::vector<std::string> keys;
    for (size_t i = 0; i < run.size(); ++i) keys.emplace_back(run.entry(i)->key());
    return keys;
  }
  // Every probe's LowerBound against std::lower_bound over `keys`.
  static void ExpectLowerBounds(const SortedKeyRun& run, const std::set<std::string>& keys,
                                const std::vector<std::string>& probes) {
    const std::vector<std::string> sorted(keys.begin(), keys.end());
    for (const std::string& probe : probes) {
      const size_t expected = static_cast<size_t>(
          std::lower_bound(sorted.begin(), sorted.end(), probe) - sorted.begin());
      ASSERT_EQ(run.LowerBound(probe), expected) << "probe '" << probe << "'";
    }
  }

  std::vector<SortedKeyRun*> runs_;
  std::vector<KeyEntry*> entries_;
};

TEST_F(SortedKeyRunTest, AnEmptyRunHasNothingAndEveryKeyBoundsAtZero) {
  const SortedKeyRun* run = Merge(nullptr, {});
  EXPECT_EQ(run->size(), 0u);
  EXPECT_EQ(run->LowerBound(""), 0u);
  EXPECT_EQ(run->LowerBound("z"), 0u);
  EXPECT_EQ(Merge(run, {})->size(), 0u);
}

TEST_F(SortedKeyRunTest, KeysThatShareAPrefixAreSearchedPastIt) {
  const std::set<std::string> keys = {"/registry/pods/a", "/registry/pods/b", "/registry/pods/b0",
                                      "/registry/pods/c"};
  const SortedKeyRun* run = Merge(nullptr, Entries(keys));
  EXPECT_EQ(run->shared_prefix(), "/registry/pods/");
  EXPECT_EQ(Keys(*run), std::vector<std::string>(keys.begin(), keys.end()));
  ExpectLowerBounds(
      *run, keys,
      {"", "/", "/registry", "/registry/pods/", "/registry/pods/a", "/registry/pods/a\x01",
       "/registry/pods/b", "/registry/pods/b\0"s, "/registry/pods/b0", "/registry/pods/b00",
       "/registry/pods/d", "/registry/pods0", "/registry/pod", "/registry/pods/\xff", "0", "\xff"});
}

TEST_F(SortedKeyRunTest, KeysEqualInTheirFirstEightBytesAfterThePrefixAreOrderedByTheRest) {
  // Past the shared "k", "aaaaaaaa" ties in every one of these.
  const std::set<std::string> keys = {"kaaaaaaaa",  "kaaaaaaaa\0"s, "kaaaaaaaa1",
                                      "kaaaaaaaa2", "kaaaaaaaa21",  "kz"};
  const SortedKeyRun* run = Merge(nullptr, Entries(keys));
  EXPECT_EQ(run->shared_prefix(), "k");
  EXPECT_EQ(Keys(*run), std::vector<std::string>(keys.begin(), keys.end()));
  ExpectLowerBounds(*run, keys,
                    {"kaaaaaaa", "kaaaaaaaa", "kaaaaaaaa\0"s, "kaaaaaaaa\0\0"s, "kaaaaaaaa0",
                     "kaaaaaaaa2", "kaaaaaaaa20", "kaaaaaaaa3", "kaaaaaaab", "kz", "kz\0"s});
}

TEST_F(SortedKeyRunTest, AMergeThatShortensTheSharedPrefixReordersNothing) {
  const std::set<std::string> first = {"ab1", "ab2", "ab3"};
  const SortedKeyRun* run = Merge(nullptr, Entries(first));
  EXPECT_EQ(run->shared_prefix(), "ab");
  const std::set<std::string> second = {"", "a", "ab25", "b"};
  const SortedKeyRun* merged = Merge(run, Entries(second));
  EXPECT_EQ(merged->shared_prefix(), "");
  std::set<std::string> all = first;
  all.insert(second.begin(), second.end());
  EXPECT_EQ(Keys(*merged), std::vector<std::string>(all.begin(), all.end()));
  ExpectLowerBounds(*merged, all, {"", "\0"s, "a", "a\0"s, "ab", "ab2", "ab20", "ab4", "b", "c"});
  // The first run is untouched (a reader may still be on it).
  EXPECT_EQ(Keys(*run), std::vector<std::string>(first.begin(), first.end()));
}

// Runs grown by merging random batches into each other, every run checked
// against a set: contents in order, and LowerBound for keys in and out.
TEST_F(SortedKeyRunTest, AgreesWithASetThroughRandomMerges) {
  std::mt19937_64 random(17);
  // Few distinct bytes, so prefixes are shared and order bytes often tie.
  auto random_key = [&] {
    std::string key(random() % 2 ? "/pfx/" : "");
    const size_t length = random() % 14;
    for (size_t i = 0; i < length; ++i) key.push_back("\0ab\xff"[random() % 4]);
    return key;
  };
  std::set<std::string> all;
  const SortedKeyRun* run = nullptr;
  for (int round = 0; round < 60; ++round) {
    std::set<std::string> batch;
    const int n = static_cast<int>(random() % 40);
    for (int i = 0; i < n; ++i) {
      std::string key = random_key();
      if (!all.contains(key)) batch.insert(key);
    }
    run = Merge(run, Entries(batch));
    all.insert(batch.begin(), batch.end());
    ASSERT_EQ(Keys(*run), std::vector<std::string>(all.begin(), all.end()));
    std::vector<std::string> probes(all.begin(), all.end());
    for (int i = 0; i < 50; ++i) probes.push_back(random_key());
    ExpectLowerBounds(*run, all, probes);
  }
}

}  // namespace
}  // namespace strata::engine
