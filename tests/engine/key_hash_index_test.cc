// KeyHashIndex on its own: probe chains through collisions and erased
// slots, growth, and churn that must not grow the table without bound.
#include "engine/key_hash_index.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/epoch.h"
#include "engine/key_entry.h"

namespace strata::engine {
namespace {

// The index does not own its entries: this does.
class Entries {
 public:
  ~Entries() {
    for (KeyEntry* e : all_) KeyEntry::Destroy(e);
  }
  KeyEntry* Make(const std::string& key, uint64_t hash) {
    all_.push_back(KeyEntry::Create(key, hash, 1));
    return all_.back();
  }
  KeyEntry* Make(const std::string& key) { return Make(key, KeyHashIndex::Hash(key)); }

 private:
  std::vector<KeyEntry*> all_;
};

TEST(KeyHashIndexTest, KeysThatShareAHashAreFoundAcrossErasedSlots) {
  EpochDomain epochs;
  KeyHashIndex index(&epochs);
  Entries entries;
  std::vector<KeyEntry*> chain;
  for (int i = 0; i < 20; ++i) {
    chain.push_back(entries.Make("k" + std::to_string(i), /*hash=*/7));
    index.Insert(chain.back());
  }
  for (int i = 0; i < 20; ++i) EXPECT_EQ(index.Find("k" + std::to_string(i), 7), chain[i]);
  EXPECT_EQ(index.Find("k20", 7), nullptr) << "the end of the chain";
  EXPECT_EQ(index.Find("k3", 8), nullptr) << "another hash";
  // Erasing from the middle leaves a marker the probes walk past.
  for (int i = 0; i < 20; i += 2) index.Erase(chain[i]);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(index.Find("k" + std::to_string(i), 7), i % 2 == 0 ? nullptr : chain[i]) << i;
  }
  // An insert reuses an erased slot and the rest stay findable.
  KeyEntry* again = entries.Make("k0", 7);
  index.Insert(again);
  EXPECT_EQ(index.Find("k0", 7), again);
  EXPECT_EQ(index.Find("k19", 7), chain[19]);
}

TEST(KeyHashIndexTest, GrowingKeepsEveryKeyAndRetiresTheOldTable) {
  EpochDomain epochs;
  KeyHashIndex index(&epochs);
  Entries entries;
  const size_t initial = index.memory_bytes();
  std::vector<KeyEntry*> all;
  for (int i = 0; i < 20'000; ++i) {
    all.push_back(entries.Make("key-" + std::to_string(i)));
    index.Insert(all.back());
  }
  EXPECT_GT(index.memory_bytes(), initial);
  // At most half full after a growth, at least a third empty before one.
  EXPECT_LE(index.memory_bytes(), 20'000 * 4 * sizeof(void*) + 64);
  EXPECT_GE(index.memory_bytes(), 20'000 * 3 / 2 * sizeof(void*));
  for (int i = 0; i < 20'000; ++i) {
    ASSERT_EQ(index.Find(all[i]->key(), all[i]->hash()), all[i]) << i;
  }
  EXPECT_EQ(index.Find("key-20000", KeyHashIndex::Hash("key-20000")), nullptr);
  // Each outgrown table went to the epoch domain (no reader: freed at its
  // next reclaim), not freed under a reader that might be probing it.
  EXPECT_GE(epochs.pending(), 5u);
}

TEST(KeyHashIndexTest, ChurnOfFewLiveKeysDoesNotGrowTheTable) {
  // Erased slots fill the table until a rehash drops them: without it,
  // inserts and erases of ever new keys would grow it for ever.
  EpochDomain epochs;
  KeyHashIndex index(&epochs);
  Entries entries;
  std::vector<KeyEntry*> live;
  size_t largest = 0;
  for (int i = 0; i < 50'000; ++i) {
    live.push_back(entries.Make("churn-" + std::to_string(i)));
    index.Insert(live.back());
    if (live.size() > 10) {
      index.Erase(live.front());
      live.erase(live.begin());
    }
    largest = std::max(largest, index.memory_bytes());
  }
  EXPECT_LE(largest, 1024 * sizeof(void*)) << "ten live keys";
  for (KeyEntry* e : live) EXPECT_EQ(index.Find(e->key(), e->hash()), e);
  // A probe for an absent key ends at an empty slot: with the erased
  // markers left to fill the table, it would never end (ctest's timeout).
  for (int i = 0; i < 1000; ++i) {
    const std::string absent = "absent-" + std::to_string(i);
    ASSERT_EQ(index.Find(absent, KeyHashIndex::Hash(absent)), nullptr);
  }
}

TEST(KeyHashIndexTest, AgreesWithAMapThroughRandomInsertsAndErases) {
  std::mt19937_64 random(11);
  EpochDomain epochs;
  KeyHashIndex index(&epochs);
  Entries entries;
  std::map<std::string, KeyEntry*> model;
  for (int step = 0; step < 100'000; ++step) {
    // Few hash values among many keys: long chains, many collisions.
    const std::string key = "r" + std::to_string(random() % 3000);
    const uint64_t hash = random() % 4 == 0 ? 42 : KeyHashIndex::Hash(key);
    auto it = model.find(key);
    if (it == model.end()) {
      KeyEntry* e = entries.Make(key, hash);
      index.Insert(e);
      model[key] = e;
    } else if (random() % 2 == 0) {
      index.Erase(it->second);
      model.erase(it);
    }
    if (step % 1000 == 0) {
      for (const auto& [k, e] : model) ASSERT_EQ(index.Find(k, e->hash()), e) << k;
    }
  }
  for (int i = 0; i < 3000; ++i) {
    const std::string key = "r" + std::to_string(i);
    auto it = model.find(key);
    const KeyEntry* found = it == model.end() ? nullptr : index.Find(key, it->second->hash());
    EXPECT_EQ(found, it == model.end() ? nullptr : it->second);
    if (it == model.end()) {
      EXPECT_EQ(index.Find(key, KeyHashIndex::Hash(key)), nullptr);
      EXPECT_EQ(index.Find(key, 42), nullptr);
    }
  }
}

}  // namespace
}  // namespace strata::engine
