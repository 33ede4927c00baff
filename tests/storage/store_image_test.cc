// Store images: a store's whole contents as bytes and back (what a
// replicated shard's snapshot holds). Every version, tombstone, write
// count, retired key, the horizon and the highest timestamp come back;
// damaged or cut images are refused.
#include "storage/store_image.h"

#include <gtest/gtest.h>

#include <string>

#include "strata/mvcc_store.h"

namespace strata::storage {
namespace {

std::string Everything(const MvccStore& store, Timestamp at) {
  std::string out;
  Result<ScanResult> scan = store.Scan(KeyRange::All(), at, 1000);
  EXPECT_TRUE(scan.ok());
  for (const auto& item : scan->items) {
    out += item.key + "=" + item.value + "@" + std::to_string(item.timestamp.value()) + "#" +
           std::to_string(item.version) + " ";
  }
  return out;
}

TEST(StoreImageTest, EveryVersionAndTheStoresMarksComeBack) {
  MvccStore one;
  for (uint64_t i = 1; i <= 60; ++i) {
    ASSERT_TRUE(one.Put("k" + std::to_string(i % 7), "v" + std::to_string(i), Timestamp(i)).ok());
  }
  ASSERT_TRUE(one.Delete("k3", Timestamp(61)).ok());
  ASSERT_TRUE(one.Put("retired", "x", Timestamp(62)).ok());
  ASSERT_TRUE(one.Delete("retired", Timestamp(63)).ok());
  ASSERT_TRUE(one.Put("k0", std::string(3000, 'b'), Timestamp(70)).ok());
  one.Compact(Timestamp(64));
  while (!one.CompactStep(1000).sweep_finished) {
  }

  const std::string image = SaveStoreImage(one);
  MvccStore two;
  ASSERT_TRUE(LoadStoreImage(image, &two).ok());
  EXPECT_EQ(two.compaction_horizon(), one.compaction_horizon());
  EXPECT_EQ(two.max_timestamp(), one.max_timestamp());
  for (uint64_t at : {64u, 65u, 70u, 100u}) {
    EXPECT_EQ(Everything(two, Timestamp(at)), Everything(one, Timestamp(at))) << at;
  }
  EXPECT_EQ(SaveStoreImage(two), image);
  // Write counts go on where they were, a retired key's too.
  Result<WriteResult> next = two.Put("retired", "again", Timestamp(80));
  Result<WriteResult> same = one.Put("retired", "again", Timestamp(80));
  ASSERT_TRUE(next.ok() && same.ok());
  EXPECT_EQ(next->version, same->version);
  EXPECT_EQ(next->version, 3u);
  // Reads below the horizon are refused on the copy too.
  EXPECT_EQ(two.Get("k1", Timestamp(10)).status().code(), StatusCode::kCompacted);
}

TEST(StoreImageTest, AnEmptyStoreIsAnImageToo) {
  MvccStore empty, copy;
  ASSERT_TRUE(LoadStoreImage(SaveStoreImage(empty), &copy).ok());
  EXPECT_FALSE(copy.max_timestamp().has_value());
  EXPECT_EQ(copy.GetStats().keys, 0u);
}

TEST(StoreImageTest, DamagedOrCutImagesAreRefused) {
  MvccStore one;
  ASSERT_TRUE(one.Put("a", "1", Timestamp(1)).ok());
  ASSERT_TRUE(one.Put("b", "2", Timestamp(2)).ok());
  const std::string image = SaveStoreImage(one);
  for (size_t cut = 0; cut < image.size(); ++cut) {
    MvccStore into;
    EXPECT_EQ(LoadStoreImage(image.substr(0, cut), &into).code(), StatusCode::kInvalidArgument)
        << "cut at " << cut;
  }
  MvccStore into;
  EXPECT_EQ(LoadStoreImage(image + "x", &into).code(), StatusCode::kInvalidArgument);
  std::string other = image;
  other[0] = 'X';
  EXPECT_EQ(LoadStoreImage(other, &into).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::storage
