// KeySkipList on its own: order, seeks, removal, and a
// reader standing on a removed entry.
#include "engine/key_skip_list.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/epoch.h"
#include "engine/key_entry.h"
#include "even_key_walk_check.h"

namespace strata::engine {
namespace {

class SkipListTest : public ::testing::Test {
 protected:
  ~SkipListTest() override {
    for (KeyEntry* e : all_) KeyEntry::Destroy(e);
  }
  KeyEntry* Insert(const std::string& key) {
    KeyEntry* e = KeyEntry::Create(key, 0, index_.RandomHeight());
    all_.push_back(e);
    index_.Insert(e);
    return e;
  }
  std::vector<std::string> Walk() const {
    std::vector<std::string> keys;
    for (KeyEntry* e = index_.First(); e != nullptr; e = KeySkipList::Next(e)) {
      keys.emplace_back(e->key());
    }
    return keys;
  }

  KeySkipList index_;
  std::vector<KeyEntry*> all_;  // every entry made, removed or not
};

TEST_F(SkipListTest, AnEmptyIndexHasNothingToSeek) {
  EXPECT_EQ(index_.First(), nullptr);
  EXPECT_EQ(index_.Seek(""), nullptr);
  EXPECT_EQ(index_.Seek("a"), nullptr);
}

TEST_F(SkipListTest, KeysComeBackInByteOrderAndSeekFindsTheFirstAtOrAfter) {
  for (const std::string& k :
       {std::string("m"), std::string("b"), std::string("z"), std::string(), std::string("ba"),
        std::string("\xff"), std::string("a"), std::string("a\0b", 3)}) {
    Insert(k);
  }
  EXPECT_EQ(Walk(), (std::vector<std::string>{"", "a", std::string("a\0b", 3), "b", "ba", "m", "z",
                                              "\xff"}));
  EXPECT_EQ(index_.Seek("")->key(), "");
  EXPECT_EQ(index_.Seek("b")->key(), "b");
  EXPECT_EQ(index_.Seek("bb")->key(), "m");
  EXPECT_EQ(index_.Seek(std::string("a\0", 2))->key(), std::string("a\0b", 3));
  EXPECT_EQ(index_.Seek("\xff\x01"), nullptr);
}

TEST_F(SkipListTest, AgreesWithASetThroughRandomInsertsRemovesAndSeeks) {
  std::mt19937_64 random(5);
  std::map<std::string, KeyEntry*> model;
  for (int step = 0; step < 40'000; ++step) {
    const std::string key = std::to_string(random() % 2000);
    auto it = model.find(key);
    if (it == model.end()) {
      model[key] = Insert(key);
    } else if (random() % 3 == 0) {
      index_.Remove(it->second);
      model.erase(it);
    }
    const std::string probe = std::to_string(random() % 2100) + (random() % 2 ? "5" : "");
    auto expected = model.lower_bound(probe);
    KeyEntry* found = index_.Seek(probe);
    ASSERT_EQ(found, expected == model.end() ? nullptr : expected->second) << probe;
  }
  std::vector<std::string> keys;
  for (const auto& [k, e] : model) keys.push_back(k);
  EXPECT_EQ(Walk(), keys);
}

TEST_F(SkipListTest, AReaderOnARemovedEntryStillWalksForward) {
  Insert("a");
  KeyEntry* b = Insert("b");
  Insert("c");
  Insert("d");
  KeyEntry* standing = index_.Seek("b");
  ASSERT_EQ(standing, b);
  index_.Remove(b);
  EXPECT_EQ(Walk(), (std::vector<std::string>{"a", "c", "d"}));
  // The reader got there before the removal and goes on from there.
  ASSERT_NE(KeySkipList::Next(standing), nullptr);
  EXPECT_EQ(KeySkipList::Next(standing)->key(), "c");
  EXPECT_EQ(index_.Seek("b")->key(), "c");
}

// Readers seek and walk while a writer inserts and removes keys between
// keys that stay: every reader sees its keys in strictly rising order and
// every key that stays (TSan and ASan watch the removed entries'
// reclamation).
TEST(SkipListConcurrencyTest, ReadersSeeEveryStayingKeyInOrderWhileKeysComeAndGo) {
  EpochDomain epochs;
  KeySkipList index;
  constexpr int kKeys = 4000;
  auto key_of = [](int i) {
    char key[16];
    std::snprintf(key, sizeof(key), "k%05d", i);
    return std::string(key);
  };
  std::vector<KeyEntry*> staying;
  for (int i = 0; i < kKeys; i += 2) {
    staying.push_back(KeyEntry::Create(key_of(i), 0, index.RandomHeight()));
    index.Insert(staying.back());
  }
  WalkingReaders readers([&](std::mt19937_64& random) {
    const int from = static_cast<int>(random() % kKeys);
    EpochDomain::ReadGuard guard(epochs);
    EvenKeyWalkCheck check(from, key_of(from));
    for (const KeyEntry* e = index.Seek(key_of(from)); e != nullptr; e = KeySkipList::Next(e)) {
      check.See(e->key());
    }
    check.EndOfKeys(kKeys);
    return check.problems();
  });
  std::mt19937_64 random(99);
  std::map<int, KeyEntry*> coming;  // odd keys in the index now
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (std::chrono::steady_clock::now() < until || readers.walks() < 20) {
    const int odd = 1 + 2 * static_cast<int>(random() % (kKeys / 2));
    auto it = coming.find(odd);
    if (it == coming.end()) {
      KeyEntry* e = KeyEntry::Create(key_of(odd), 0, index.RandomHeight());
      index.Insert(e);
      coming[odd] = e;
    } else {
      index.Remove(it->second);
      epochs.Retire(it->second, &KeyEntry::Destroy);
      coming.erase(it);
    }
  }
  EXPECT_EQ(readers.Stop(), 0u);
  EXPECT_GE(readers.walks(), 20u);
  for (auto& [number, e] : coming) {
    index.Remove(e);
    KeyEntry::Destroy(e);
  }
  for (KeyEntry* e : staying) KeyEntry::Destroy(e);
}

TEST_F(SkipListTest, HeightsAreGeometricWithAQuarterPerLevel) {
  std::vector<int> at_least(KeyEntry::kMaxHeight + 2, 0);
  constexpr int kDraws = 200'000;
  for (int i = 0; i < kDraws; ++i) {
    const int h = index_.RandomHeight();
    ASSERT_GE(h, 1);
    ASSERT_LE(h, KeyEntry::kMaxHeight);
    for (int level = 1; level <= h; ++level) ++at_least[level];
  }
  EXPECT_EQ(at_least[1], kDraws);
  // P(height >= 2) = 1/4, P(>= 3) = 1/16, within a few standard deviations.
  EXPECT_NEAR(at_least[2], kDraws / 4, 1000);
  EXPECT_NEAR(at_least[3], kDraws / 16, 500);
}

}  // namespace
}  // namespace strata::engine
