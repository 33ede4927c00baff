// HistoryHasher (strata's HashKV): equal histories hash equal however the
// keys are batched; a version above the revision, at or below the
// compaction, or of a key outside the prefix changes nothing; anything
// else does.
#include "service/history_hash.h"

#include <gtest/gtest.h>

#include <string>

namespace strata::service {
namespace {

uint32_t Hash(const MvccStore& store, int64_t revision, int64_t compacted = 0,
              const std::string& prefix = "", size_t batch = 256) {
  HistoryHasher hasher(&store, revision, compacted, prefix);
  while (!hasher.Step(batch)) {
  }
  return hasher.Digest();
}

void Put(MvccStore& store, const std::string& key, const std::string& value, uint64_t at) {
  ASSERT_TRUE(store.Put(key, value, Timestamp(at)).ok());
}

TEST(HistoryHashTest, EqualHistoriesHashEqualInAnyBatches) {
  MvccStore a, b;
  for (int i = 0; i < 50; ++i) {
    Put(a, "k" + std::to_string(i), "v", 10 + i);
    Put(b, "k" + std::to_string(i), "v", 10 + i);
  }
  EXPECT_EQ(Hash(a, 100), Hash(b, 100, 0, "", 1));
  EXPECT_EQ(Hash(a, 100, 0, "", 7), Hash(b, 100, 0, "", 1000));
  Put(b, "k0", "w", 90);
  EXPECT_NE(Hash(a, 100), Hash(b, 100));
  EXPECT_EQ(Hash(a, 89), Hash(b, 89)) << "a version above the revision counts";
}

TEST(HistoryHashTest, ThePrefixAndTheCompactionBoundWhatCounts) {
  MvccStore a, b;
  Put(a, "\x01k", "v", 10);
  Put(b, "\x01k", "v", 10);
  Put(b, "\x02other", "x", 11);
  EXPECT_EQ(Hash(a, 20, 0, "\x01"), Hash(b, 20, 0, "\x01"));
  EXPECT_NE(Hash(a, 20), Hash(b, 20));
  Put(a, "\x01k", "old", 5);
  EXPECT_NE(Hash(a, 20, 0, "\x01"), Hash(b, 20, 0, "\x01"));
  EXPECT_EQ(Hash(a, 20, 5, "\x01"), Hash(b, 20, 5, "\x01"))
      << "a version at or below the compaction counts";
}

}  // namespace
}  // namespace strata::service
