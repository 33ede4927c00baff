// KeyOrderIndex (the skip list) on its own: order, seeks, removal, and a
// reader standing on a removed entry.
#include "engine/key_order_index.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/key_entry.h"

namespace strata::engine {
namespace {

class OrderIndexTest : public ::testing::Test {
 protected:
  ~OrderIndexTest() override {
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
    for (KeyEntry* e = index_.First(); e != nullptr; e = KeyOrderIndex::Next(e)) {
      keys.emplace_back(e->key());
    }
    return keys;
  }

  KeyOrderIndex index_;
  std::vector<KeyEntry*> all_;  // every entry made, removed or not
};

TEST_F(OrderIndexTest, AnEmptyIndexHasNothingToSeek) {
  EXPECT_EQ(index_.First(), nullptr);
  EXPECT_EQ(index_.Seek(""), nullptr);
  EXPECT_EQ(index_.Seek("a"), nullptr);
}

TEST_F(OrderIndexTest, KeysComeBackInByteOrderAndSeekFindsTheFirstAtOrAfter) {
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

TEST_F(OrderIndexTest, AgreesWithASetThroughRandomInsertsRemovesAndSeeks) {
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

TEST_F(OrderIndexTest, AReaderOnARemovedEntryStillWalksForward) {
  Insert("a");
  KeyEntry* b = Insert("b");
  Insert("c");
  Insert("d");
  KeyEntry* standing = index_.Seek("b");
  ASSERT_EQ(standing, b);
  index_.Remove(b);
  EXPECT_EQ(Walk(), (std::vector<std::string>{"a", "c", "d"}));
  // The reader got there before the removal and goes on from there.
  ASSERT_NE(KeyOrderIndex::Next(standing), nullptr);
  EXPECT_EQ(KeyOrderIndex::Next(standing)->key(), "c");
  EXPECT_EQ(index_.Seek("b")->key(), "c");
}

TEST_F(OrderIndexTest, HeightsAreGeometricWithAQuarterPerLevel) {
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
