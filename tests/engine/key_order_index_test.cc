// KeyOrderIndex on its own: a cursor walks the run and the recent keys as
// one ordered sequence across re-layouts, a cursor opened before a
// re-layout walks on, and readers racing a writer that inserts (and so
// re-lays the run out again and again) see every key in order (TSan and
// ASan watch the old runs' and skip lists' reclamation).
#include "engine/key_order_index.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/epoch.h"
#include "engine/key_entry.h"
#include "even_key_walk_check.h"

namespace strata::engine {
namespace {

std::string KeyOf(int i) {
  char key[16];
  std::snprintf(key, sizeof(key), "k%06d", i);
  return key;
}

class KeyOrderIndexTest : public ::testing::Test {
 protected:
  ~KeyOrderIndexTest() override {
    for (KeyEntry* e : entries_) KeyEntry::Destroy(e);
  }
  void Insert(const std::string& key) {
    entries_.push_back(KeyEntry::Create(key, 0, index_.RandomHeight()));
    index_.Insert(entries_.back());
  }
  std::vector<std::string> WalkFrom(const std::string& from) const {
    std::vector<std::string> keys;
    for (KeyOrderIndex::Cursor c(index_, from); c.entry() != nullptr; c.Next()) {
      keys.emplace_back(c.entry()->key());
    }
    return keys;
  }

  EpochDomain epochs_;  // before the index: what it retires outlives it
  KeyOrderIndex index_{&epochs_};
  std::vector<KeyEntry*> entries_;
};

TEST_F(KeyOrderIndexTest, AnEmptyIndexHasNothingToWalk) {
  EXPECT_EQ(KeyOrderIndex::Cursor(index_, "").entry(), nullptr);
  EXPECT_EQ(KeyOrderIndex::Cursor(index_, "a").entry(), nullptr);
  index_.Relayout();
  EXPECT_EQ(KeyOrderIndex::Cursor(index_, "").entry(), nullptr);
}

TEST_F(KeyOrderIndexTest, RunAndRecentKeysAreWalkedAsOneOrderedSequence) {
  for (const char* k : {"b", "d", "f"}) Insert(k);
  index_.Relayout();
  for (const char* k : {"a", "c", "e", "g", ""}) Insert(k);
  EXPECT_EQ(index_.run_keys(), 3u);
  EXPECT_EQ(index_.recent_keys(), 5u);
  EXPECT_EQ(WalkFrom(""), (std::vector<std::string>{"", "a", "b", "c", "d", "e", "f", "g"}));
  EXPECT_EQ(WalkFrom("c"), (std::vector<std::string>{"c", "d", "e", "f", "g"}));
  EXPECT_EQ(WalkFrom("cc"), (std::vector<std::string>{"d", "e", "f", "g"}));
  EXPECT_EQ(WalkFrom("h"), std::vector<std::string>{});
}

TEST_F(KeyOrderIndexTest, RecentKeysOutsideTheRunsSharedPrefixComeBeforeOrAfterItsKeys) {
  for (const char* k : {"/r/a", "/r/b", "/r/c"}) Insert(k);
  index_.Relayout();
  for (const char* k : {"\xff", "/s", "/r/b0", "/r/", "/r", "/q", "/", ""}) Insert(k);
  const std::vector<std::string> all = {"",     "/",     "/q",   "/r", "/r/", "/r/a",
                                        "/r/b", "/r/b0", "/r/c", "/s", "\xff"};
  EXPECT_EQ(WalkFrom(""), all);
  EXPECT_EQ(WalkFrom("/r/"), std::vector<std::string>(all.begin() + 4, all.end()));
  EXPECT_EQ(WalkFrom("/r/b"), std::vector<std::string>(all.begin() + 6, all.end()));
}

TEST_F(KeyOrderIndexTest, InsertsReLayTheRunOutOnceTheRecentKeysAreMany) {
  const size_t threshold = KeyOrderIndex::kMinRelayoutKeys;
  for (size_t i = 0; i + 1 < threshold; ++i) Insert(KeyOf(static_cast<int>(i)));
  EXPECT_EQ(index_.run_keys(), 0u);
  EXPECT_EQ(index_.recent_keys(), threshold - 1);
  const size_t before = index_.memory_bytes();
  Insert(KeyOf(static_cast<int>(threshold)));
  EXPECT_EQ(index_.run_keys(), threshold);
  EXPECT_EQ(index_.recent_keys(), 0u);
  // 16 bytes a key in the run, and the shared prefix.
  EXPECT_GE(index_.memory_bytes(), before + 16 * threshold);
  EXPECT_LT(index_.memory_bytes(), before + 16 * threshold + 64);
}

// Random inserts against a set, through many re-layouts (the run grows, so
// the recent part's limit grows with it); every few steps a cursor from a
// random key is checked for the walk's first 50 keys.
TEST_F(KeyOrderIndexTest, AgreesWithASetThroughRandomInsertsAndReLayouts) {
  std::mt19937_64 random(23);
  std::set<std::string> model;
  int relayouts = 0;
  for (int step = 0; step < 60'000; ++step) {
    // Mostly under "/r/" (the run's shared prefix), some with ten more
    // bytes in common (their order bytes tie), a few outside it.
    const uint64_t pick = random() % 100;
    const std::string prefix = pick == 0   ? "/q/"
                               : pick == 1 ? "/s"
                               : pick < 40 ? "/r/0123456789"
                                           : "/r/";
    const std::string key = prefix + std::to_string(random() % 100'000);
    if (model.insert(key).second) {
      const size_t run_before = index_.run_keys();
      Insert(key);
      if (index_.run_keys() != run_before) ++relayouts;
    }
    if (step % 97 == 0) {
      const std::string probe = step % 5 == 0 ? "/q/" + std::to_string(random() % 100'000)
                                              : (step % 3 ? "/r/" : "/r/0123456789") +
                                                    std::to_string(random() % 110'000) +
                                                    (step % 2 ? "5" : "");
      std::vector<std::string> expected;
      for (auto it = model.lower_bound(probe); it != model.end() && expected.size() < 50; ++it) {
        expected.push_back(*it);
      }
      std::vector<std::string> got;
      for (KeyOrderIndex::Cursor c(index_, probe); c.entry() != nullptr && got.size() < 50;
           c.Next()) {
        got.emplace_back(c.entry()->key());
      }
      ASSERT_EQ(got, expected) << probe;
    }
  }
  EXPECT_GE(relayouts, 10);
  EXPECT_EQ(WalkFrom(""), std::vector<std::string>(model.begin(), model.end()));
  EXPECT_EQ(index_.run_keys() + index_.recent_keys(), model.size());
}

TEST_F(KeyOrderIndexTest, ACursorOpenedBeforeAReLayoutWalksOnOverWhatItSaw) {
  for (int i = 0; i < 100; i += 2) Insert(KeyOf(i));
  index_.Relayout();
  for (int i = 1; i < 100; i += 4) Insert(KeyOf(i));
  EpochDomain::ReadGuard guard(epochs_);
  KeyOrderIndex::Cursor cursor(index_, KeyOf(10));
  index_.Relayout();
  for (int i = 3; i < 100; i += 4) Insert(KeyOf(i));  // after the cursor's view
  std::vector<std::string> walked;
  for (; cursor.entry() != nullptr; cursor.Next()) walked.emplace_back(cursor.entry()->key());
  std::vector<std::string> expected;
  for (int i = 10; i < 100; ++i) {
    if (i % 2 == 0 || i % 4 == 1) expected.push_back(KeyOf(i));
  }
  EXPECT_EQ(walked, expected);
}

// Readers seek and walk while a writer inserts the odd keys between even
// keys that were there first: every reader sees strictly rising keys, none
// below its start, and every even key from its start on. The writer's
// inserts re-lay the run out many times while the readers walk old views.
// (This test found a skip-list seek that could return a key below its
// start: see KeySkipList::Seek.)
TEST(KeyOrderIndexConcurrencyTest, ReadersSeeEveryKeyInOrderWhileTheRunIsReLaidOut) {
  EpochDomain epochs;
  constexpr int kKeys = 40'000;
  std::vector<KeyEntry*> entries;
  {
    KeyOrderIndex index(&epochs);
    for (int i = 0; i < kKeys; i += 2) {
      entries.push_back(KeyEntry::Create(KeyOf(i), 0, index.RandomHeight()));
      index.Insert(entries.back());
    }
    WalkingReaders readers([&](std::mt19937_64& random) {
      const int from = static_cast<int>(random() % kKeys);
      const int length = 1 + static_cast<int>(random() % 3000);
      EpochDomain::ReadGuard guard(epochs);
      EvenKeyWalkCheck check(from, KeyOf(from));
      KeyOrderIndex::Cursor c(index, KeyOf(from));
      int n = 0;
      for (; c.entry() != nullptr && n < length; c.Next(), ++n) check.See(c.entry()->key());
      if (n < length) check.EndOfKeys(kKeys);
      return check.problems();
    });
    int relayouts = 0;
    for (int i = 1; i < kKeys; i += 2) {
      const size_t run_before = index.run_keys();
      entries.push_back(KeyEntry::Create(KeyOf(i), 0, index.RandomHeight()));
      index.Insert(entries.back());
      if (index.run_keys() != run_before) ++relayouts;
    }
    while (readers.walks() < 50) std::this_thread::yield();
    EXPECT_EQ(readers.Stop(), 0u);
    EXPECT_GE(relayouts, 5);
  }
  for (KeyEntry* e : entries) KeyEntry::Destroy(e);
}

}  // namespace
}  // namespace strata::engine
