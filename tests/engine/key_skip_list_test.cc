// KeySkipList on its own: order, seeks, its nodes' copies of the keys,
// readers racing the writer, and the height distribution.
#include "engine/key_skip_list.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

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
    KeyEntry* e = KeyEntry::Create(key, 0);
    all_.push_back(e);
    list_.Insert(e);
    return e;
  }
  std::vector<std::string> Walk() const {
    std::vector<std::string> keys;
    for (const KeySkipList::Node* n = list_.First(); n != nullptr; n = KeySkipList::Next(n)) {
      EXPECT_EQ(n->key(), n->entry()->key());
      keys.emplace_back(n->key());
    }
    return keys;
  }

  KeySkipList list_;
  std::vector<KeyEntry*> all_;
};

TEST_F(SkipListTest, AnEmptyListHasNothingToSeek) {
  EXPECT_EQ(list_.First(), nullptr);
  EXPECT_EQ(list_.Seek(""), nullptr);
  EXPECT_EQ(list_.Seek("a"), nullptr);
  EXPECT_EQ(list_.size(), 0u);
  EXPECT_EQ(list_.memory_bytes(), 0u);
}

TEST_F(SkipListTest, KeysComeBackInByteOrderAndSeekFindsTheFirstAtOrAfter) {
  for (const std::string& k :
       {std::string("m"), std::string("b"), std::string("z"), std::string(), std::string("ba"),
        std::string("\xff"), std::string("a"), std::string("a\0b", 3)}) {
    Insert(k);
  }
  EXPECT_EQ(Walk(), (std::vector<std::string>{"", "a", std::string("a\0b", 3), "b", "ba", "m", "z",
                                              "\xff"}));
  EXPECT_EQ(list_.Seek("")->key(), "");
  EXPECT_EQ(list_.Seek("b")->key(), "b");
  EXPECT_EQ(list_.Seek("bb")->key(), "m");
  EXPECT_EQ(list_.Seek(std::string("a\0", 2))->key(), std::string("a\0b", 3));
  EXPECT_EQ(list_.Seek("\xff\x01"), nullptr);
  EXPECT_EQ(list_.size(), 8u);
  // Every node holds its tower and its key: more than the keys' bytes.
  EXPECT_GT(list_.memory_bytes(), 8 * (sizeof(KeyEntry*) + sizeof(void*)));
}

TEST_F(SkipListTest, AgreesWithASetThroughRandomInsertsAndSeeks) {
  std::mt19937_64 random(5);
  std::map<std::string, KeyEntry*> model;
  for (int step = 0; step < 20'000; ++step) {
    const std::string key = std::to_string(random() % 20'000);
    if (!model.contains(key)) model[key] = Insert(key);
    const std::string probe = std::to_string(random() % 21'000) + (random() % 2 ? "5" : "");
    auto expected = model.lower_bound(probe);
    const KeySkipList::Node* found = list_.Seek(probe);
    ASSERT_EQ(found == nullptr ? nullptr : found->entry(),
              expected == model.end() ? nullptr : expected->second)
        << probe;
  }
  std::vector<std::string> keys;
  for (const auto& [k, e] : model) keys.push_back(k);
  EXPECT_EQ(Walk(), keys);
  EXPECT_EQ(list_.size(), model.size());
}

// Readers seek and walk while the writer inserts the odd keys between even
// keys that were there first: every reader sees strictly rising keys, none
// below its start, and every even key.
TEST(SkipListConcurrencyTest, ReadersSeeEveryKeyInOrderWhileKeysAreInserted) {
  KeySkipList list;
  constexpr int kKeys = 20'000;
  auto key_of = [](int i) {
    char key[16];
    std::snprintf(key, sizeof(key), "k%05d", i);
    return std::string(key);
  };
  std::vector<KeyEntry*> entries;
  for (int i = 0; i < kKeys; i += 2) {
    entries.push_back(KeyEntry::Create(key_of(i), 0));
    list.Insert(entries.back());
  }
  {
    WalkingReaders readers([&](std::mt19937_64& random) {
      const int from = static_cast<int>(random() % kKeys);
      EvenKeyWalkCheck check(from, key_of(from));
      for (const KeySkipList::Node* n = list.Seek(key_of(from)); n != nullptr;
           n = KeySkipList::Next(n)) {
        check.See(n->key());
      }
      check.EndOfKeys(kKeys);
      return check.problems();
    });
    std::vector<int> odd;
    for (int i = 1; i < kKeys; i += 2) odd.push_back(i);
    std::shuffle(odd.begin(), odd.end(), std::mt19937_64(99));
    for (int i : odd) {
      entries.push_back(KeyEntry::Create(key_of(i), 0));
      list.Insert(entries.back());
    }
    while (readers.walks() < 20) std::this_thread::yield();
    EXPECT_EQ(readers.Stop(), 0u);
  }
  EXPECT_EQ(list.size(), static_cast<size_t>(kKeys));
  for (KeyEntry* e : entries) KeyEntry::Destroy(e);
}

TEST_F(SkipListTest, HeightsAreGeometricWithAQuarterPerLevel) {
  std::vector<int> at_least(KeySkipList::kMaxHeight + 2, 0);
  constexpr int kDraws = 200'000;
  for (int i = 0; i < kDraws; ++i) {
    const int h = list_.RandomHeight();
    ASSERT_GE(h, 1);
    ASSERT_LE(h, KeySkipList::kMaxHeight);
    for (int level = 1; level <= h; ++level) ++at_least[level];
  }
  EXPECT_EQ(at_least[1], kDraws);
  // P(height >= 2) = 1/4, P(>= 3) = 1/16, within a few standard deviations.
  EXPECT_NEAR(at_least[2], kDraws / 4, 1000);
  EXPECT_NEAR(at_least[3], kDraws / 16, 500);
}

}  // namespace
}  // namespace strata::engine
