// The version records and arrays on their own: values inline and out of
// line, and the two searches against a linear scan.
#include "engine/version_chain.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace strata::engine {
namespace {

TEST(VersionRecordTest, ShortValuesLiveInTheRecordLongerOnesInABlob) {
  for (size_t size : {size_t{0}, size_t{1}, VersionRecord::kInlineBytes,
                      VersionRecord::kInlineBytes + 1, size_t{1000}}) {
    const std::string value(size, 'v');
    const std::string_view view = value;
    VersionRecord r = VersionRecord::Make(10, 3, &view);
    EXPECT_FALSE(r.deleted());
    EXPECT_EQ(r.value(), value) << size;
    EXPECT_EQ(r.timestamp, 10u);
    EXPECT_EQ(r.version, 3u);
    const bool inline_value = size <= VersionRecord::kInlineBytes;
    EXPECT_EQ(r.blob() == nullptr, inline_value) << size;
    EXPECT_EQ(r.value_address(),
              inline_value ? static_cast<const void*>(&r) : static_cast<const void*>(r.blob()));
    if (r.blob() != nullptr) ValueBlob::Destroy(const_cast<ValueBlob*>(r.blob()));
  }
  VersionRecord tombstone = VersionRecord::Make(11, 4, nullptr);
  EXPECT_TRUE(tombstone.deleted());
  EXPECT_EQ(tombstone.blob(), nullptr);
}

TEST(VersionRecordTest, ValuesMayHoldAnyByte) {
  const std::string value("\0\xff\n\0", 4);
  const std::string_view view = value;
  EXPECT_EQ(VersionRecord::Make(1, 1, &view).value(), value);
}

// The index a linear scan gives: the newest at or below `ts`, or -1.
int64_t LinearAtOrBelow(const std::vector<VersionRecord>& records, uint64_t ts) {
  int64_t found = -1;
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].timestamp <= ts) found = static_cast<int64_t>(i);
  }
  return found;
}

uint32_t LinearLowerBound(const std::vector<VersionRecord>& records, uint64_t ts) {
  uint32_t i = 0;
  while (i < records.size() && records[i].timestamp < ts) ++i;
  return i;
}

TEST(VersionArrayTest, SearchesAgreeWithALinearScan) {
  std::mt19937_64 random(3);
  for (int round = 0; round < 2000; ++round) {
    std::vector<VersionRecord> records;
    uint64_t ts = random() % 5;
    const size_t count = random() % 40;
    for (size_t i = 0; i < count; ++i) {
      ts += 1 + random() % 4;  // rising, with gaps
      records.push_back(VersionRecord::Make(ts, i + 1, nullptr));
    }
    for (uint64_t probe = 0; probe <= ts + 2; ++probe) {
      ASSERT_EQ(VersionArray::FindAtOrBelow(records.data(), static_cast<uint32_t>(count), probe),
                LinearAtOrBelow(records, probe))
          << "round " << round << " probe " << probe;
      ASSERT_EQ(VersionArray::LowerBound(records.data(), static_cast<uint32_t>(count), probe),
                LinearLowerBound(records, probe))
          << "round " << round << " probe " << probe;
    }
  }
}

TEST(VersionArrayTest, ReadersSeeOnlyThePublishedPrefix) {
  VersionArray* array = VersionArray::Create(4);
  EXPECT_EQ(array->capacity(), 4u);
  EXPECT_EQ(array->published_size(), 0u);
  EXPECT_EQ(VersionArray::AllocationSize(4), sizeof(VersionArray) + 4 * sizeof(VersionRecord));
  const std::string_view value = "x";
  array->mutable_records()[0] = VersionRecord::Make(5, 1, &value);
  array->mutable_records()[1] = VersionRecord::Make(9, 2, &value);
  EXPECT_EQ(array->published_size(), 0u) << "written, not yet published";
  array->Publish(1);
  EXPECT_EQ(array->published_size(), 1u);
  EXPECT_EQ(VersionArray::FindAtOrBelow(array->records(), array->published_size(), 100), 0);
  array->Publish(2);
  EXPECT_EQ(VersionArray::FindAtOrBelow(array->records(), array->published_size(), 100), 1);
  EXPECT_EQ(VersionArray::FindAtOrBelow(array->records(), array->published_size(), 4), -1);
  VersionArray::Destroy(array);
}

}  // namespace
}  // namespace strata::engine
