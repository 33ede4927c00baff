// Unit tests for MvccStore: one test per rule of the spec, with exact
// expected values, so a failure names the rule that broke.
#include "strata/mvcc_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "test_support.h"

namespace strata {
namespace {

using ::strata::testing::FoundTombstone;
using ::strata::testing::FoundValue;
using ::strata::testing::IsOk;
using ::strata::testing::IsOkAndHolds;
using ::strata::testing::Item;
using ::strata::testing::NotFound;
using ::strata::testing::Retried;
using ::strata::testing::StatusIs;
using ::strata::testing::TombstoneEntry;
using ::strata::testing::Ts;
using ::strata::testing::ValueEntry;
using ::strata::testing::Written;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::Field;
using ::testing::IsEmpty;
using namespace std::string_literals;

// Runs CompactStep until the sweep finishes (bounded, so a sweep that never
// finishes fails instead of hanging) and returns the summed removals.
CompactStepResult FinishSweep(MvccStore& store, size_t max_keys) {
  CompactStepResult total;
  for (int i = 0; i < 1000 && !total.sweep_finished; ++i) {
    const CompactStepResult step = store.CompactStep(max_keys);
    EXPECT_LE(step.keys_visited, max_keys);
    total.keys_visited += step.keys_visited;
    total.versions_removed += step.versions_removed;
    total.bytes_reclaimed += step.bytes_reclaimed;
    total.sweep_finished = step.sweep_finished;
  }
  EXPECT_TRUE(total.sweep_finished);
  return total;
}

class MvccStoreTest : public ::testing::Test {
 protected:
  // Writes that set up a scenario must succeed; a failure there is reported
  // at the call site and the returned result is a harmless default.
  WriteResult PutOk(std::string_view key, std::string_view value, uint64_t ts) {
    Result<WriteResult> r = store_.Put(key, value, Ts(ts));
    EXPECT_THAT(r, IsOk()) << "Put(\"" << testing::EscapeBytes(key) << "\" @" << ts << ")";
    return r.ok() ? *r : WriteResult{};
  }
  WriteResult DeleteOk(std::string_view key, uint64_t ts) {
    Result<WriteResult> r = store_.Delete(key, Ts(ts));
    EXPECT_THAT(r, IsOk()) << "Delete(\"" << testing::EscapeBytes(key) << "\" @" << ts << ")";
    return r.ok() ? *r : WriteResult{};
  }
  // The keys a scan returns, in order: most scan tests are about which keys.
  std::vector<std::string> ScanKeys(const KeyRange& range, uint64_t read_ts = Timestamp::kMaxValue,
                                    size_t limit = 1000) {
    Result<ScanResult> r = store_.Scan(range, Ts(read_ts), limit);
    EXPECT_THAT(r, IsOk());
    std::vector<std::string> keys;
    if (r.ok()) {
      for (const ScanItem& item : r->items) keys.push_back(item.key);
    }
    return keys;
  }

  MvccStore store_;
};

// --- Reads pick the newest version at or below the read timestamp ----------

TEST_F(MvccStoreTest, ReadReturnsNewestVersionAtOrBelowReadTimestamp) {
  EXPECT_EQ(PutOk("x", "v1", 100), Written(1, 100));
  EXPECT_EQ(PutOk("x", "v2", 200), Written(2, 200));

  EXPECT_THAT(store_.Get("x", Ts(150)), IsOkAndHolds(FoundValue(1, 100, "v1")));
  EXPECT_THAT(store_.Get("x", Ts(250)), IsOkAndHolds(FoundValue(2, 200, "v2")));
  // Bounds are inclusive: a read exactly at a version's timestamp sees it.
  EXPECT_THAT(store_.Get("x", Ts(100)), IsOkAndHolds(FoundValue(1, 100, "v1")));
  EXPECT_THAT(store_.Get("x", Ts(200)), IsOkAndHolds(FoundValue(2, 200, "v2")));
}

// MultiGetInto reads each key as GetInto does: values inline and out of
// line, deletes, versions written out of timestamp order, keys never
// written, a key asked twice, lists of every length around its groups of
// 16; and refuses what GetInto refuses.
TEST_F(MvccStoreTest, MultiGetReadsEveryKeyAsGetDoes) {
  std::mt19937_64 random(4);
  for (int i = 0; i < 3000; ++i) {
    const std::string key = "k" + std::to_string(random() % 400);
    const Timestamp ts = Ts(1 + random() % 1000);
    if (random() % 5 == 0) {
      (void)store_.Delete(key, ts);  // some collide with a version there: fine
    } else {
      (void)store_.Put(key, std::string(random() % 60, static_cast<char>('a' + i % 26)), ts);
    }
  }
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> keys(static_cast<size_t>(round % 70));
    for (std::string& key : keys) key = "k" + std::to_string(random() % 450);
    if (keys.size() > 3) keys[3] = keys[1];
    const std::vector<std::string_view> views(keys.begin(), keys.end());
    const Timestamp at = Ts(random() % 1100);
    std::vector<ReadResult> out(keys.size());
    // Results already holding something are overwritten whole.
    for (ReadResult& r : out) r = ReadResult{true, true, 9, Ts(9), "stale", true};
    ASSERT_THAT(store_.MultiGetInto(views, at, out), IsOk());
    for (size_t i = 0; i < keys.size(); ++i) {
      ReadResult want;
      ASSERT_THAT(store_.GetInto(keys[i], at, &want), IsOk());
      EXPECT_EQ(out[i].found, want.found) << keys[i];
      EXPECT_EQ(out[i].deleted, want.deleted) << keys[i];
      EXPECT_EQ(out[i].version, want.version) << keys[i];
      EXPECT_EQ(out[i].timestamp, want.timestamp) << keys[i];
      EXPECT_EQ(out[i].value, want.value) << keys[i];
      EXPECT_FALSE(out[i].own_write);
    }
  }
  const std::vector<std::string_view> two = {"k1", "k2"};
  std::vector<ReadResult> one(1);
  EXPECT_THAT(store_.MultiGetInto(two, Ts(5), one), StatusIs(StatusCode::kInvalidArgument));
  store_.Compact(Ts(500));
  std::vector<ReadResult> out(2);
  EXPECT_THAT(store_.MultiGetInto(two, Ts(499), out), StatusIs(StatusCode::kCompacted));
  EXPECT_THAT(store_.MultiGetInto(two, Ts(500), out), IsOk());
}

TEST_F(MvccStoreTest, ReadBelowOldestVersionOrOfUnknownKeyIsNotFound) {
  PutOk("x", "v1", 100);

  EXPECT_THAT(store_.Get("x", Ts(99)), IsOkAndHolds(NotFound()));
  EXPECT_THAT(store_.Get("x", Ts(0)), IsOkAndHolds(NotFound()));
  EXPECT_THAT(store_.Get("y", Ts(1000)), IsOkAndHolds(NotFound()));
  EXPECT_THAT(store_.Get("y"), IsOkAndHolds(NotFound()));
}

TEST_F(MvccStoreTest, DefaultReadTimestampSeesNewestOfAll) {
  PutOk("x", "v2", 200);
  PutOk("x", "v1", 100);

  EXPECT_THAT(store_.Get("x"), IsOkAndHolds(FoundValue(1, 200, "v2")));
}

TEST_F(MvccStoreTest, VersionsAreNumberedByArrivalAndReadByTimestamp) {
  // Time travel: the write at 200 arrives first, so it is version 1.
  EXPECT_EQ(PutOk("x", "at200", 200), Written(1, 200));
  EXPECT_EQ(PutOk("x", "at100", 100), Written(2, 100));

  EXPECT_THAT(store_.Get("x", Ts(99)), IsOkAndHolds(NotFound()));
  EXPECT_THAT(store_.Get("x", Ts(150)), IsOkAndHolds(FoundValue(2, 100, "at100")));
  EXPECT_THAT(store_.Get("x", Ts(250)), IsOkAndHolds(FoundValue(1, 200, "at200")));
}

TEST_F(MvccStoreTest, VersionNumberCountsPutsAndDeletesPerKey) {
  EXPECT_EQ(PutOk("x", "a", 10), Written(1, 10));
  EXPECT_EQ(DeleteOk("x", 20), Written(2, 20));
  EXPECT_EQ(PutOk("y", "b", 15), Written(1, 15));  // counts are per key
  EXPECT_EQ(PutOk("x", "c", 30), Written(3, 30));
  EXPECT_EQ(DeleteOk("x", 5), Written(4, 5));

  EXPECT_THAT(store_.Get("x", Ts(7)), IsOkAndHolds(FoundTombstone(4, 5)));
  EXPECT_THAT(store_.Get("x", Ts(25)), IsOkAndHolds(FoundTombstone(2, 20)));
  EXPECT_THAT(store_.Get("x", Ts(30)), IsOkAndHolds(FoundValue(3, 30, "c")));
}

TEST_F(MvccStoreTest, ThousandVersionsOfOneKeyReadAtRandomTimestamps) {
  // Distinct timestamps 0, 10, ..., 9990 arriving in a shuffled order; the
  // expectation is a sorted map looked up with upper_bound.
  constexpr int kVersions = 1000;
  std::vector<uint64_t> timestamps(kVersions);
  for (int i = 0; i < kVersions; ++i) timestamps[i] = 10 * static_cast<uint64_t>(i);
  std::mt19937_64 rng(20240601);
  std::shuffle(timestamps.begin(), timestamps.end(), rng);

  std::map<uint64_t, ReadResult> expected_by_ts;
  for (int i = 0; i < kVersions; ++i) {
    const std::string value = "value-" + std::to_string(timestamps[i]);
    const uint64_t version = static_cast<uint64_t>(i) + 1;
    ASSERT_EQ(PutOk("k", value, timestamps[i]), Written(version, timestamps[i]));
    expected_by_ts[timestamps[i]] = FoundValue(version, timestamps[i], value);
  }

  std::uniform_int_distribution<uint64_t> read_ts_dist(0, 10 * kVersions + 20);
  for (int i = 0; i < 5000; ++i) {
    const uint64_t read_ts = read_ts_dist(rng);
    auto it = expected_by_ts.upper_bound(read_ts);
    ASSERT_NE(it, expected_by_ts.begin());  // timestamp 0 exists, so always found
    ASSERT_THAT(store_.Get("k", Ts(read_ts)), IsOkAndHolds(std::prev(it)->second))
        << "read at " << read_ts;
  }
}

TEST_F(MvccStoreTest, MaximumTimestampIsWritableAndReadable) {
  PutOk("x", "old", 1);
  EXPECT_EQ(PutOk("x", "last", Timestamp::kMaxValue), Written(2, Timestamp::kMaxValue));

  EXPECT_THAT(store_.Get("x"), IsOkAndHolds(FoundValue(2, Timestamp::kMaxValue, "last")));
  EXPECT_THAT(store_.Get("x", Ts(Timestamp::kMaxValue - 1)), IsOkAndHolds(FoundValue(1, 1, "old")));
  EXPECT_EQ(store_.max_timestamp(), Timestamp::Max());
}

TEST_F(MvccStoreTest, GetIntoMatchesGetAndOverwritesReusedBuffer) {
  PutOk("x", "a-long-enough-value-to-live-on-the-heap", 10);
  DeleteOk("x", 20);
  PutOk("x", "v3", 30);

  // One buffer reused across every kind of answer: nothing the contract pins
  // may leak from the previous answer into the next.
  ReadResult out;
  for (uint64_t read_ts : {10, 25, 30, 5, 10, 25}) {
    ASSERT_THAT(store_.GetInto("x", Ts(read_ts), &out), IsOk());
    Result<ReadResult> fresh = store_.Get("x", Ts(read_ts));
    ASSERT_THAT(fresh, IsOk());
    EXPECT_EQ(testing::WithoutStaleFields(out), *fresh) << "read at " << read_ts;
  }
}

// --- Retries and conflicting writes at one (key, timestamp) ---------------

TEST_F(MvccStoreTest, IdenticalPutIsRetryReturningExistingVersion) {
  PutOk("x", "v1", 100);
  PutOk("x", "v2", 200);
  const StoreStats before = store_.GetStats();

  // The retried write is version 1, not the key's latest.
  EXPECT_THAT(store_.Put("x", "v1", Ts(100)), IsOkAndHolds(Retried(1, 100)));
  EXPECT_EQ(store_.GetStats(), before);
  // Nothing was stored, so the next write is still only the third.
  EXPECT_EQ(PutOk("x", "v3", 300), Written(3, 300));
}

TEST_F(MvccStoreTest, IdenticalEmptyValuePutIsRetry) {
  PutOk("x", "", 100);
  EXPECT_THAT(store_.Put("x", "", Ts(100)), IsOkAndHolds(Retried(1, 100)));
}

TEST_F(MvccStoreTest, RepeatedDeleteIsRetry) {
  PutOk("x", "v1", 100);
  DeleteOk("x", 200);
  const StoreStats before = store_.GetStats();

  EXPECT_THAT(store_.Delete("x", Ts(200)), IsOkAndHolds(Retried(2, 200)));
  EXPECT_EQ(store_.GetStats(), before);
}

TEST_F(MvccStoreTest, PutOfAnotherValueAtSameTimestampFailsPrecondition) {
  PutOk("x", "v1", 100);
  const StoreStats before = store_.GetStats();

  EXPECT_THAT(store_.Put("x", "other", Ts(100)), StatusIs(StatusCode::kPreconditionFailed));
  EXPECT_THAT(store_.Put("x", "", Ts(100)), StatusIs(StatusCode::kPreconditionFailed));
  EXPECT_THAT(store_.Get("x", Ts(100)), IsOkAndHolds(FoundValue(1, 100, "v1")));
  EXPECT_EQ(store_.GetStats(), before);
}

TEST_F(MvccStoreTest, PutOverDeleteAtSameTimestampFailsPrecondition) {
  DeleteOk("x", 100);

  EXPECT_THAT(store_.Put("x", "v", Ts(100)), StatusIs(StatusCode::kPreconditionFailed));
  // An empty value is a value, so it conflicts with the delete too.
  EXPECT_THAT(store_.Put("x", "", Ts(100)), StatusIs(StatusCode::kPreconditionFailed));
  EXPECT_THAT(store_.Get("x", Ts(100)), IsOkAndHolds(FoundTombstone(1, 100)));
}

TEST_F(MvccStoreTest, DeleteOverPutAtSameTimestampFailsPrecondition) {
  PutOk("x", "v", 100);
  PutOk("y", "", 100);

  EXPECT_THAT(store_.Delete("x", Ts(100)), StatusIs(StatusCode::kPreconditionFailed));
  EXPECT_THAT(store_.Delete("y", Ts(100)), StatusIs(StatusCode::kPreconditionFailed));
  EXPECT_THAT(store_.Get("x", Ts(100)), IsOkAndHolds(FoundValue(1, 100, "v")));
  EXPECT_THAT(store_.Get("y", Ts(100)), IsOkAndHolds(FoundValue(1, 100, "")));
}

TEST_F(MvccStoreTest, FailedWriteDoesNotConsumeAVersionNumber) {
  PutOk("x", "v1", 100);
  ASSERT_THAT(store_.Put("x", "other", Ts(100)), StatusIs(StatusCode::kPreconditionFailed));
  ASSERT_THAT(store_.Delete("x", Ts(100)), StatusIs(StatusCode::kPreconditionFailed));

  EXPECT_EQ(PutOk("x", "v2", 200), Written(2, 200));
}

// --- Deletes --------------------------------------------------------------

TEST_F(MvccStoreTest, DeleteOfUnknownKeyRecordsTombstone) {
  EXPECT_EQ(DeleteOk("ghost", 50), Written(1, 50));

  EXPECT_THAT(store_.Get("ghost", Ts(49)), IsOkAndHolds(NotFound()));
  EXPECT_THAT(store_.Get("ghost", Ts(50)), IsOkAndHolds(FoundTombstone(1, 50)));
  EXPECT_THAT(store_.Get("ghost"), IsOkAndHolds(FoundTombstone(1, 50)));
  const StoreStats stats = store_.GetStats();
  EXPECT_EQ(stats.keys, 1u);
  EXPECT_EQ(stats.versions, 1u);
  EXPECT_EQ(stats.tombstones, 1u);
  EXPECT_EQ(stats.bytes, 5u);  // the key; a tombstone has no value bytes
}

TEST_F(MvccStoreTest, DeleteBelowTheOnlyVersionStillRecordsTombstone) {
  // At 100 the key has no visible version, yet the delete is stored.
  PutOk("x", "later", 200);
  EXPECT_EQ(DeleteOk("x", 100), Written(2, 100));

  EXPECT_THAT(store_.Get("x", Ts(150)), IsOkAndHolds(FoundTombstone(2, 100)));
  EXPECT_THAT(store_.Get("x", Ts(200)), IsOkAndHolds(FoundValue(1, 200, "later")));
  EXPECT_EQ(store_.GetStats().tombstones, 1u);
}

TEST_F(MvccStoreTest, DeleteHidesValueOnlyFromItsTimestampOn) {
  PutOk("x", "v1", 100);
  DeleteOk("x", 200);

  EXPECT_THAT(store_.Get("x", Ts(199)), IsOkAndHolds(FoundValue(1, 100, "v1")));
  EXPECT_THAT(store_.Get("x", Ts(200)), IsOkAndHolds(FoundTombstone(2, 200)));
  EXPECT_THAT(store_.Get("x"), IsOkAndHolds(FoundTombstone(2, 200)));
}

TEST_F(MvccStoreTest, EmptyValueIsAValueNotADelete) {
  EXPECT_EQ(PutOk("x", "", 100), Written(1, 100));

  EXPECT_THAT(store_.Get("x"), IsOkAndHolds(FoundValue(1, 100, "")));
  EXPECT_THAT(store_.Scan(KeyRange::All(), Timestamp::Max(), 10),
              IsOkAndHolds(Field(&ScanResult::items, ElementsAre(Item("x", "", 1, 100)))));
  EXPECT_EQ(store_.GetStats().tombstones, 0u);
}

// --- Keys are bytes --------------------------------------------------------

TEST_F(MvccStoreTest, KeysAreArbitraryBytesInMemcmpOrder) {
  // Inserted in a scrambled order; each must stay distinct (no truncation at
  // '\0', no signed-char ordering of 0x80 and above).
  const std::vector<std::string> sorted_keys = {
      ""s,         "\0"s,    "\0\0"s,   "\x01"s,     "a"s,           "a\0"s,
      "a\x7f"s,    "a\x80"s, "a\xff"s,  "b"s,        "\x7f"s,        "\x80"s,
      "\xfe\xff"s, "\xff"s,  "\xff\0"s, "\xff\xff"s, "\xff\xff\xff"s};
  std::vector<std::string> insertion_order = sorted_keys;
  std::mt19937 rng(7);
  std::shuffle(insertion_order.begin(), insertion_order.end(), rng);
  for (const std::string& key : insertion_order) PutOk(key, "value of " + key, 1);

  EXPECT_EQ(ScanKeys(KeyRange::All()), sorted_keys);
  for (const std::string& key : sorted_keys) {
    EXPECT_THAT(store_.Get(key), IsOkAndHolds(FoundValue(1, 1, "value of " + key)))
        << testing::EscapeBytes(key);
  }
  EXPECT_EQ(store_.GetStats().keys, sorted_keys.size());
}

TEST_F(MvccStoreTest, EmptyKeyIsAllowed) {
  EXPECT_EQ(PutOk("", "v", 1), Written(1, 1));
  EXPECT_EQ(DeleteOk("", 2), Written(2, 2));

  EXPECT_THAT(store_.Get("", Ts(1)), IsOkAndHolds(FoundValue(1, 1, "v")));
  EXPECT_THAT(store_.Get(""), IsOkAndHolds(FoundTombstone(2, 2)));
  EXPECT_EQ(store_.GetStats().keys, 1u);
}

// --- Limits ----------------------------------------------------------------

TEST(MvccStoreLimitsTest, OversizedKeyOrValueIsInvalidArgumentAndStoresNothing) {
  MvccStore store(StoreOptions{.max_key_bytes = 4, .max_value_bytes = 8});

  EXPECT_THAT(store.Put("kkkk", "vvvvvvvv", Ts(1)), IsOk());  // exactly at the limits
  EXPECT_THAT(store.Delete("dddd", Ts(1)), IsOk());
  EXPECT_THAT(store.Put("kkkkk", "v", Ts(2)), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store.Put("k", "vvvvvvvvv", Ts(2)), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store.Delete("ddddd", Ts(2)), StatusIs(StatusCode::kInvalidArgument));

  const StoreStats stats = store.GetStats();
  EXPECT_EQ(stats.keys, 2u);
  EXPECT_EQ(stats.versions, 2u);
  EXPECT_EQ(stats.max_timestamp, Ts(1));
  EXPECT_THAT(store.Get("k"), IsOkAndHolds(NotFound()));
}

// --- Scan ------------------------------------------------------------------

TEST_F(MvccStoreTest, ScanIsHalfOpenAndAscending) {
  for (const char* key : {"d", "a", "c", "b", "e"}) PutOk(key, key, 1);

  EXPECT_THAT(ScanKeys({.start = "b", .end = "d"}), ElementsAre("b", "c"));
  EXPECT_THAT(ScanKeys({.start = "b", .end = std::nullopt}), ElementsAre("b", "c", "d", "e"));
  EXPECT_THAT(ScanKeys({.start = "bb", .end = "dd"}), ElementsAre("c", "d"));
  EXPECT_THAT(ScanKeys({.start = "c", .end = "c"}), IsEmpty());
  EXPECT_THAT(ScanKeys(KeyRange::All()), ElementsAre("a", "b", "c", "d", "e"));
}

TEST_F(MvccStoreTest, ScanReturnsVersionVisibleAtReadTimestamp) {
  PutOk("a", "a1", 10);
  PutOk("a", "a2", 30);
  PutOk("b", "b1", 20);
  DeleteOk("b", 40);
  PutOk("c", "c1", 50);

  EXPECT_THAT(store_.Scan(KeyRange::All(), Ts(35), 10),
              IsOkAndHolds(ScanResult{.items = {Item("a", "a2", 2, 30), Item("b", "b1", 1, 20)},
                                      .more = false}));
  // b is tombstoned at 45 and c not yet written at 45: both are left out.
  EXPECT_THAT(store_.Scan(KeyRange::All(), Ts(45), 10),
              IsOkAndHolds(ScanResult{.items = {Item("a", "a2", 2, 30)}, .more = false}));
  EXPECT_THAT(store_.Scan(KeyRange::All(), Ts(5), 10), IsOkAndHolds(ScanResult{}));
}

TEST_F(MvccStoreTest, ScanMoreIsSetExactlyWhenLimitCutsTheResult) {
  for (const char* key : {"a", "b", "c", "d"}) PutOk(key, key, 1);
  DeleteOk("e", 1);  // after the last value: must not count as "more"

  auto scan = [&](size_t limit) { return store_.Scan(KeyRange::All(), Ts(1), limit); };
  EXPECT_THAT(scan(3), IsOkAndHolds(ScanResult{.items = {Item("a", "a", 1, 1), Item("b", "b", 1, 1),
                                                         Item("c", "c", 1, 1)},
                                               .more = true}));
  EXPECT_THAT(scan(4), IsOkAndHolds(Field(&ScanResult::more, false)));
  EXPECT_THAT(scan(5), IsOkAndHolds(Field(&ScanResult::more, false)));
  EXPECT_THAT(scan(1), IsOkAndHolds(ScanResult{.items = {Item("a", "a", 1, 1)}, .more = true}));
}

TEST_F(MvccStoreTest, ScanWithPrefixSelectsKeysStartingWithPrefix) {
  const std::vector<std::string> keys = {
      ""s,          "a"s,         "ab"s,    "abc"s,  "ac"s,       "b"s,        "a\xff"s,
      "a\xff\xff"s, "a\xff\x01"s, "b\0"s,   "\xff"s, "\xff\x01"s, "\xff\xff"s, "\xff\xff\xff"s,
      "\xfe\xff"s,  "a\0"s,       "\xff\0"s};
  for (const std::string& key : keys) PutOk(key, "v", 1);

  auto expected = [&](std::string_view prefix) {
    std::vector<std::string> matching;
    for (const std::string& key : keys) {
      if (key.starts_with(prefix)) matching.push_back(key);
    }
    std::sort(matching.begin(), matching.end());
    return matching;
  };
  // Prefixes ending in 0xff have no simple "increment the last byte" bound.
  for (const std::string& prefix :
       {""s, "a"s, "ab"s, "a\xff"s, "\xff"s, "\xff\xff"s, "\xff\xff\xff\xff"s, "a\0"s, "z"s}) {
    EXPECT_EQ(ScanKeys(KeyRange::WithPrefix(prefix)), expected(prefix))
        << "prefix \"" << testing::EscapeBytes(prefix) << "\"";
  }
}

TEST(KeyRangeTest, ContainsFollowsHalfOpenBytewiseBounds) {
  const KeyRange bounded{.start = "b", .end = "d"};
  EXPECT_FALSE(bounded.Contains("a"));
  EXPECT_TRUE(bounded.Contains("b"));
  EXPECT_TRUE(bounded.Contains("c\xff"));
  EXPECT_FALSE(bounded.Contains("d"));
  EXPECT_TRUE(KeyRange::All().Contains(""));
  EXPECT_TRUE(KeyRange::All().Contains("\xff\xff"));
  // 0x80 sorts after 'd' as an unsigned byte.
  EXPECT_FALSE(bounded.Contains("\x80"));
  EXPECT_TRUE((KeyRange{.start = "\x7f", .end = "\x81"}.Contains("\x80")));
}

TEST(KeyRangeTest, WithPrefixContainsExactlyTheKeysStartingWithIt) {
  struct Case {
    std::string prefix;
    std::vector<std::string> inside;
    std::vector<std::string> outside;
  };
  const std::vector<Case> cases = {
      {""s, {""s, "a"s, "\xff\xff"s}, {}},
      {"ab"s, {"ab"s, "ab\0"s, "abz"s, "ab\xff"s}, {"a"s, "aa\xff"s, "ac"s, "b"s, ""s}},
      {"a\xff"s, {"a\xff"s, "a\xff\xff"s, "a\xff\0"s}, {"a"s, "a\xfe\xff"s, "b"s, "b\0"s}},
      {"\xff"s, {"\xff"s, "\xff\xff"s, "\xff\0"s}, {""s, "\xfe"s, "\xfe\xff\xff"s}},
      {"\xff\xff"s, {"\xff\xff"s, "\xff\xff\xff"s}, {"\xff"s, "\xff\xfe"s, "\xff\0"s}},
      {"\0"s, {"\0"s, "\0a"s}, {""s, "\x01"s}},
  };
  for (const Case& c : cases) {
    const KeyRange range = KeyRange::WithPrefix(c.prefix);
    for (const std::string& key : c.inside) {
      EXPECT_TRUE(range.Contains(key)) << "prefix \"" << testing::EscapeBytes(c.prefix)
                                       << "\" key \"" << testing::EscapeBytes(key) << "\"";
    }
    for (const std::string& key : c.outside) {
      EXPECT_FALSE(range.Contains(key)) << "prefix \"" << testing::EscapeBytes(c.prefix)
                                        << "\" key \"" << testing::EscapeBytes(key) << "\"";
    }
  }
}

// --- History ----------------------------------------------------------------

TEST_F(MvccStoreTest, HistoryListsStoredVersionsInTimestampOrderWithinInclusiveBounds) {
  PutOk("x", "v30", 30);
  PutOk("x", "v10", 10);
  DeleteOk("x", 20);
  PutOk("x", "v40", 40);
  PutOk("other", "o", 25);

  const HistoryResult all{.versions = {ValueEntry(2, 10, "v10"), TombstoneEntry(3, 20),
                                       ValueEntry(1, 30, "v30"), ValueEntry(4, 40, "v40")},
                          .more = false};
  EXPECT_THAT(store_.History("x", std::nullopt, std::nullopt, 10), IsOkAndHolds(all));
  EXPECT_THAT(store_.History("x", Ts(20), Ts(30), 10),
              IsOkAndHolds(HistoryResult{
                  .versions = {TombstoneEntry(3, 20), ValueEntry(1, 30, "v30")}, .more = false}));
  EXPECT_THAT(
      store_.History("x", Ts(11), std::nullopt, 10),
      IsOkAndHolds(HistoryResult{
          .versions = {TombstoneEntry(3, 20), ValueEntry(1, 30, "v30"), ValueEntry(4, 40, "v40")},
          .more = false}));
  EXPECT_THAT(store_.History("x", std::nullopt, Ts(19), 10),
              IsOkAndHolds(HistoryResult{.versions = {ValueEntry(2, 10, "v10")}, .more = false}));
  EXPECT_THAT(store_.History("x", Ts(41), std::nullopt, 10), IsOkAndHolds(HistoryResult{}));
  EXPECT_THAT(store_.History("nobody", std::nullopt, std::nullopt, 10),
              IsOkAndHolds(HistoryResult{}));
}

TEST_F(MvccStoreTest, HistoryMoreIsSetExactlyWhenLimitCutsTheResult) {
  for (uint64_t ts : {3, 1, 2}) PutOk("x", testing::StrCat("v", std::to_string(ts)), ts);

  EXPECT_THAT(store_.History("x", std::nullopt, std::nullopt, 2),
              IsOkAndHolds(HistoryResult{
                  .versions = {ValueEntry(2, 1, "v1"), ValueEntry(3, 2, "v2")}, .more = true}));
  EXPECT_THAT(store_.History("x", std::nullopt, std::nullopt, 3),
              IsOkAndHolds(Field(&HistoryResult::more, false)));
  // The bound, not the limit, ends this one.
  EXPECT_THAT(store_.History("x", std::nullopt, Ts(2), 2),
              IsOkAndHolds(Field(&HistoryResult::more, false)));
}

// --- Changes ----------------------------------------------------------------

TEST_F(MvccStoreTest, ChangesListsVersionsAfterSinceByTimestampThenKey) {
  PutOk("b", "b20", 20);
  PutOk("a", "a20", 20);
  DeleteOk("a", 30);
  PutOk("c", "c10", 10);
  PutOk("b", "b15", 15);
  PutOk("zz", "z40", 40);

  auto change = [](std::string key, uint64_t ts, uint64_t version, std::optional<std::string> v) {
    return Change{.key = std::move(key),
                  .timestamp = Ts(ts),
                  .version = version,
                  .deleted = !v.has_value(),
                  .value = v.value_or("")};
  };
  EXPECT_THAT(store_.Changes(Ts(10), KeyRange::All(), 10),
              IsOkAndHolds(ChangesResult{
                  .changes = {change("b", 15, 2, "b15"), change("a", 20, 1, "a20"),
                              change("b", 20, 1, "b20"), change("a", 30, 2, std::nullopt),
                              change("zz", 40, 1, "z40")},
                  .more = false}));
  // `since` itself is excluded; the range filters keys.
  EXPECT_THAT(
      store_.Changes(Ts(15), KeyRange{.start = "a", .end = "c"}, 10),
      IsOkAndHolds(ChangesResult{.changes = {change("a", 20, 1, "a20"), change("b", 20, 1, "b20"),
                                             change("a", 30, 2, std::nullopt)},
                                 .more = false}));
  EXPECT_THAT(store_.Changes(Ts(0), KeyRange::WithPrefix("z"), 10),
              IsOkAndHolds(ChangesResult{.changes = {change("zz", 40, 1, "z40")}, .more = false}));
  EXPECT_THAT(store_.Changes(Ts(40), KeyRange::All(), 10), IsOkAndHolds(ChangesResult{}));
}

TEST_F(MvccStoreTest, ChangesMoreIsSetExactlyWhenLimitCutsTheResult) {
  PutOk("a", "1", 1);
  PutOk("b", "2", 2);
  PutOk("c", "3", 3);

  EXPECT_THAT(store_.Changes(Ts(0), KeyRange::All(), 2),
              IsOkAndHolds(Field(&ChangesResult::more, true)));
  EXPECT_THAT(store_.Changes(Ts(0), KeyRange::All(), 2),
              IsOkAndHolds(Field(&ChangesResult::changes,
                                 ElementsAre(Field(&Change::key, "a"), Field(&Change::key, "b")))));
  EXPECT_THAT(store_.Changes(Ts(0), KeyRange::All(), 3),
              IsOkAndHolds(Field(&ChangesResult::more, false)));
  EXPECT_THAT(store_.Changes(Ts(1), KeyRange::All(), 2),
              IsOkAndHolds(Field(&ChangesResult::more, false)));
}

// --- Stats ------------------------------------------------------------------

TEST_F(MvccStoreTest, StatsOfEmptyStore) {
  const StoreStats stats = store_.GetStats();
  EXPECT_EQ(stats, StoreStats{});
  EXPECT_EQ(stats.max_timestamp, std::nullopt);
  EXPECT_EQ(store_.max_timestamp(), std::nullopt);
  EXPECT_EQ(store_.compaction_horizon(), Ts(0));
}

TEST_F(MvccStoreTest, StatsCountKeysVersionsTombstonesAndBytesExactly) {
  PutOk("alpha", "12345", 10);  // key 5 + value 5
  PutOk("alpha", "123", 30);    // value 3
  DeleteOk("alpha", 20);        // tombstone, 0 bytes
  PutOk("b", "", 5);            // key 1 + empty value
  DeleteOk("cc", 50);           // key 2, tombstone

  StoreStats expected;
  expected.keys = 3;
  expected.versions = 5;
  expected.tombstones = 2;
  expected.bytes = 5 + 5 + 3 + 1 + 2;
  expected.max_timestamp = Ts(50);
  EXPECT_EQ(store_.GetStats(), expected);
  EXPECT_GE(store_.GetStats().memory_bytes, expected.bytes);  // overhead included
  EXPECT_EQ(store_.max_timestamp(), Ts(50));
}

TEST_F(MvccStoreTest, MaxTimestampIsHighestEverWrittenNotLatestArrival) {
  PutOk("x", "a", 70);
  PutOk("y", "b", 30);
  EXPECT_EQ(store_.max_timestamp(), Ts(70));
  // Failed writes do not count as written.
  ASSERT_THAT(store_.Put("x", "other", Ts(70)), StatusIs(StatusCode::kPreconditionFailed));
  EXPECT_EQ(store_.GetStats().max_timestamp, Ts(70));
}

// --- Compaction -------------------------------------------------------------

TEST_F(MvccStoreTest, CompactRemovesVersionsOlderThanNewestAtOrBelowHorizon) {
  PutOk("x", "v1", 100);
  PutOk("x", "v2", 200);
  PutOk("x", "v3", 300);

  EXPECT_EQ(store_.Compact(Ts(250)),
            (CompactResult{.horizon = Ts(250), .versions_removed = 1, .bytes_reclaimed = 2}));

  EXPECT_THAT(store_.Get("x", Ts(250)), IsOkAndHolds(FoundValue(2, 200, "v2")));
  EXPECT_THAT(store_.Get("x"), IsOkAndHolds(FoundValue(3, 300, "v3")));
  EXPECT_THAT(
      store_.History("x", std::nullopt, std::nullopt, 10),
      IsOkAndHolds(HistoryResult{.versions = {ValueEntry(2, 200, "v2"), ValueEntry(3, 300, "v3")},
                                 .more = false}));
  EXPECT_EQ(store_.compaction_horizon(), Ts(250));
}

TEST_F(MvccStoreTest, CompactKeepsVersionExactlyAtHorizon) {
  PutOk("x", "v1", 100);
  PutOk("x", "v2", 200);

  EXPECT_EQ(store_.Compact(Ts(200)),
            (CompactResult{.horizon = Ts(200), .versions_removed = 1, .bytes_reclaimed = 2}));
  EXPECT_THAT(store_.Get("x", Ts(200)), IsOkAndHolds(FoundValue(2, 200, "v2")));
}

TEST_F(MvccStoreTest, CompactRemovesTombstoneAtOrBelowHorizonAndKeyDisappears) {
  PutOk("key", "abcd", 10);
  DeleteOk("key", 20);
  PutOk("keep", "v", 10);

  // Removed: "abcd" (4 bytes) + the tombstone (0) + the key itself (3).
  EXPECT_EQ(store_.Compact(Ts(20)),
            (CompactResult{.horizon = Ts(20), .versions_removed = 2, .bytes_reclaimed = 7}));

  EXPECT_THAT(store_.Get("key"), IsOkAndHolds(NotFound()));
  EXPECT_THAT(store_.Get("key", Ts(20)), IsOkAndHolds(NotFound()));
  EXPECT_THAT(store_.History("key", std::nullopt, std::nullopt, 10), IsOkAndHolds(HistoryResult{}));
  EXPECT_THAT(ScanKeys(KeyRange::All()), ElementsAre("keep"));
  const StoreStats stats = store_.GetStats();
  EXPECT_EQ(stats.keys, 1u);
  EXPECT_EQ(stats.versions, 1u);
  EXPECT_EQ(stats.tombstones, 0u);
  EXPECT_EQ(stats.bytes, 4 + 1u);
}

TEST_F(MvccStoreTest, CompactRemovesTombstoneButKeepsNewerVersions) {
  PutOk("x", "old", 10);
  DeleteOk("x", 20);
  PutOk("x", "new", 40);

  EXPECT_EQ(store_.Compact(Ts(30)),
            (CompactResult{.horizon = Ts(30), .versions_removed = 2, .bytes_reclaimed = 3}));
  EXPECT_THAT(store_.Get("x", Ts(30)), IsOkAndHolds(NotFound()));
  EXPECT_THAT(store_.Get("x"), IsOkAndHolds(FoundValue(3, 40, "new")));
  const StoreStats stats = store_.GetStats();
  EXPECT_EQ(stats.keys, 1u);
  EXPECT_EQ(stats.versions, 1u);
  EXPECT_EQ(stats.tombstones, 0u);
}

TEST_F(MvccStoreTest, CompactKeepsTombstoneAboveHorizon) {
  PutOk("x", "v", 10);
  DeleteOk("x", 40);

  EXPECT_EQ(store_.Compact(Ts(30)),
            (CompactResult{.horizon = Ts(30), .versions_removed = 0, .bytes_reclaimed = 0}));
  EXPECT_THAT(store_.Get("x", Ts(30)), IsOkAndHolds(FoundValue(1, 10, "v")));
  EXPECT_THAT(store_.Get("x"), IsOkAndHolds(FoundTombstone(2, 40)));
}

TEST_F(MvccStoreTest, CompactUsesTimestampOrderNotArrivalOrder) {
  // Arrival order 300, 100, 200: "older" means older timestamp.
  PutOk("x", "c", 300);
  PutOk("x", "aaaa", 100);
  PutOk("x", "bb", 200);

  EXPECT_EQ(store_.Compact(Ts(250)),
            (CompactResult{.horizon = Ts(250), .versions_removed = 1, .bytes_reclaimed = 4}));
  EXPECT_THAT(store_.Get("x", Ts(250)), IsOkAndHolds(FoundValue(3, 200, "bb")));
}

TEST_F(MvccStoreTest, CompactionHorizonNeverMovesDown) {
  PutOk("x", "v1", 10);
  EXPECT_EQ(store_.Compact(Ts(100)).horizon, Ts(100));
  EXPECT_EQ(store_.Compact(Ts(50)).horizon, Ts(100));
  store_.RaiseHorizon(Ts(70));
  EXPECT_EQ(store_.compaction_horizon(), Ts(100));
  EXPECT_EQ(store_.GetStats().compaction_horizon, Ts(100));
}

TEST_F(MvccStoreTest, ReadsBelowHorizonAreCompacted) {
  PutOk("x", "v1", 10);
  PutOk("x", "v2", 20);
  store_.Compact(Ts(15));

  EXPECT_THAT(store_.Get("x", Ts(14)), StatusIs(StatusCode::kCompacted));
  ReadResult out;
  EXPECT_THAT(store_.GetInto("x", Ts(14), &out), StatusIs(StatusCode::kCompacted));
  EXPECT_THAT(store_.Scan(KeyRange::All(), Ts(14), 10), StatusIs(StatusCode::kCompacted));
  EXPECT_THAT(store_.History("x", Ts(14), std::nullopt, 10), StatusIs(StatusCode::kCompacted));
  EXPECT_THAT(store_.Changes(Ts(14), KeyRange::All(), 10), StatusIs(StatusCode::kCompacted));

  // At the horizon everything is still answerable.
  EXPECT_THAT(store_.Get("x", Ts(15)), IsOkAndHolds(FoundValue(1, 10, "v1")));
  EXPECT_THAT(store_.Scan(KeyRange::All(), Ts(15), 10),
              IsOkAndHolds(ScanResult{.items = {Item("x", "v1", 1, 10)}, .more = false}));
  EXPECT_THAT(store_.History("x", Ts(15), std::nullopt, 10),
              IsOkAndHolds(HistoryResult{.versions = {ValueEntry(2, 20, "v2")}, .more = false}));
  EXPECT_THAT(
      store_.Changes(Ts(15), KeyRange::All(), 10),
      IsOkAndHolds(Field(&ChangesResult::changes, ElementsAre(Field(&Change::version, 2u)))));
  // Without `from`, History returns the survivors, even those below the horizon.
  EXPECT_THAT(store_.History("x", std::nullopt, Ts(12), 10),
              IsOkAndHolds(HistoryResult{.versions = {ValueEntry(1, 10, "v1")}, .more = false}));
}

TEST_F(MvccStoreTest, WritesAtOrBelowHorizonAreCompacted) {
  PutOk("x", "v1", 10);
  store_.Compact(Ts(15));
  const StoreStats before = store_.GetStats();

  EXPECT_THAT(store_.Put("x", "v", Ts(15)), StatusIs(StatusCode::kCompacted));
  EXPECT_THAT(store_.Put("y", "v", Ts(0)), StatusIs(StatusCode::kCompacted));
  EXPECT_THAT(store_.Delete("x", Ts(15)), StatusIs(StatusCode::kCompacted));
  // Even an identical retry of a surviving version: its timestamp is closed.
  EXPECT_THAT(store_.Put("x", "v1", Ts(10)), StatusIs(StatusCode::kCompacted));
  EXPECT_EQ(store_.GetStats(), before);

  EXPECT_EQ(PutOk("x", "v2", 16), Written(2, 16));
}

TEST_F(MvccStoreTest, RaisedHorizonClosesWritesAndReadsBelowItBeforeAnySweep) {
  PutOk("x", "v1", 10);
  store_.RaiseHorizon(Ts(50));

  EXPECT_EQ(store_.compaction_horizon(), Ts(50));
  EXPECT_THAT(store_.Put("x", "v", Ts(50)), StatusIs(StatusCode::kCompacted));
  EXPECT_THAT(store_.Get("x", Ts(49)), StatusIs(StatusCode::kCompacted));
  EXPECT_THAT(store_.Get("x", Ts(50)), IsOkAndHolds(FoundValue(1, 10, "v1")));
}

TEST_F(MvccStoreTest, TimestampZeroIsWritableUntilHorizonRisesAboveZero) {
  EXPECT_EQ(PutOk("x", "v0", 0), Written(1, 0));
  // Horizon 0 means "nothing compacted": a sweep at 0 keeps the value at 0
  // and still accepts writes at 0.
  EXPECT_EQ(store_.Compact(Ts(0)),
            (CompactResult{.horizon = Ts(0), .versions_removed = 0, .bytes_reclaimed = 0}));
  EXPECT_EQ(PutOk("y", "w0", 0), Written(1, 0));
  EXPECT_THAT(store_.Get("x", Ts(0)), IsOkAndHolds(FoundValue(1, 0, "v0")));

  store_.Compact(Ts(1));
  EXPECT_THAT(store_.Put("z", "v", Ts(0)), StatusIs(StatusCode::kCompacted));
  EXPECT_THAT(store_.Put("z", "v", Ts(1)), StatusIs(StatusCode::kCompacted));
  EXPECT_THAT(store_.Put("z", "v", Ts(2)), IsOk());
}

TEST_F(MvccStoreTest, VersionCountContinuesForKeyThatSurvivesCompaction) {
  PutOk("x", "v1", 10);
  PutOk("x", "v2", 20);
  store_.Compact(Ts(25));  // removes v1; the key stays

  EXPECT_EQ(PutOk("x", "v3", 30), Written(3, 30));
}

TEST_F(MvccStoreTest, KeyCompactedAwayContinuesItsVersionCount) {
  // A key whose every version was compacted away no longer counts as a key
  // (its key bytes count as reclaimed), but its next write continues the
  // count: versions never depend on when compaction ran.
  PutOk("x", "v1", 10);
  DeleteOk("x", 20);
  ASSERT_EQ(store_.Compact(Ts(25)).versions_removed, 2u);
  ASSERT_EQ(store_.GetStats().keys, 0u);
  EXPECT_THAT(store_.Get("x"), IsOkAndHolds(NotFound()));

  EXPECT_EQ(PutOk("x", "again", 30), Written(3, 30));
  EXPECT_THAT(store_.Get("x"), IsOkAndHolds(FoundValue(3, 30, "again")));
  EXPECT_EQ(store_.GetStats().keys, 1u);
}

TEST_F(MvccStoreTest, StatsTrackGarbageCollection) {
  PutOk("key", "aaaa", 10);
  PutOk("key", "bb", 20);
  PutOk("gone", "ccc", 10);
  DeleteOk("gone", 15);

  // Removed: "aaaa" (4) from key; "ccc" (3) + tombstone + key "gone" (4).
  ASSERT_EQ(store_.Compact(Ts(20)),
            (CompactResult{.horizon = Ts(20), .versions_removed = 3, .bytes_reclaimed = 11}));
  StoreStats expected;
  expected.keys = 1;
  expected.versions = 1;
  expected.tombstones = 0;
  expected.bytes = 3 + 2;
  expected.max_timestamp = Ts(20);
  expected.compaction_horizon = Ts(20);
  expected.gc_runs = 1;
  expected.gc_versions_removed = 3;
  expected.gc_bytes_reclaimed = 11;
  EXPECT_EQ(store_.GetStats(), expected);

  // An incremental sweep adds to the same counters once it completes.
  PutOk("key", "dddddd", 30);
  store_.RaiseHorizon(Ts(30));
  FinishSweep(store_, 1);
  expected.versions = 1;
  expected.bytes = 3 + 6;
  expected.max_timestamp = Ts(30);
  expected.compaction_horizon = Ts(30);
  expected.gc_runs = 2;
  expected.gc_versions_removed = 4;
  expected.gc_bytes_reclaimed = 13;
  EXPECT_EQ(store_.GetStats(), expected);
}

TEST_F(MvccStoreTest, CompactStepOnEmptyStoreFinishesWithoutRemovingAnything) {
  const CompactStepResult sweep = FinishSweep(store_, 4);
  EXPECT_EQ(sweep.keys_visited, 0u);
  EXPECT_EQ(sweep.versions_removed, 0u);
  EXPECT_EQ(store_.compaction_horizon(), Ts(0));
}

TEST_F(MvccStoreTest, WritesInterleaveWithIncrementalSweep) {
  const std::vector<std::string> keys = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  for (const std::string& key : keys) {
    PutOk(key, "old", 10);
    PutOk(key, "new", 20);
  }
  store_.RaiseHorizon(Ts(25));
  CompactStepResult first = store_.CompactStep(3);
  ASSERT_FALSE(first.sweep_finished);

  // Above the horizon, so whether the sweep has passed these keys yet must
  // not matter: existing keys continue their count, new keys start at 1.
  EXPECT_EQ(PutOk("a", "later", 30), Written(3, 30));
  EXPECT_EQ(PutOk("j", "later", 30), Written(3, 30));
  EXPECT_EQ(PutOk("b2", "fresh", 30), Written(1, 30));
  const CompactStepResult rest = FinishSweep(store_, 3);

  // Exactly the "old" version of each original key went, 3 bytes each.
  EXPECT_EQ(first.versions_removed + rest.versions_removed, keys.size());
  EXPECT_EQ(first.bytes_reclaimed + rest.bytes_reclaimed, 3 * keys.size());
  EXPECT_THAT(
      store_.History("a", std::nullopt, std::nullopt, 10),
      IsOkAndHolds(HistoryResult{.versions = {ValueEntry(2, 20, "new"), ValueEntry(3, 30, "later")},
                                 .more = false}));
  EXPECT_THAT(store_.Get("b2"), IsOkAndHolds(FoundValue(1, 30, "fresh")));
  EXPECT_EQ(store_.GetStats().versions, keys.size() + 3);
}

// --- Compaction preserves every read at or above the horizon ---------------

// A deterministic store with values, tombstones, out-of-order arrivals and
// keys of every shape, for the compaction-equivalence tests.
void FillVariedStore(MvccStore& store) {
  std::mt19937 rng(99);
  const std::vector<std::string> keys = {""s, "a"s, "a\0"s, "b"s, "\xff"s, "\xff\xff"s};
  for (int i = 0; i < 300; ++i) {
    const std::string& key = keys[rng() % keys.size()];
    const Timestamp ts(1 + rng() % 60);
    // Conflicts and retries are expected here and irrelevant: only the
    // resulting store matters.
    if (rng() % 4 == 0) {
      (void)store.Delete(key, ts);
    } else {
      (void)store.Put(key, testing::StrCat("v", std::to_string(i)), ts);
    }
  }
}

// Everything a reader at `read_ts` can observe, for before/after comparison.
struct Observation {
  std::vector<ReadResult> gets;
  ScanResult scan;
  ChangesResult changes;
};

Observation Observe(const MvccStore& store, Timestamp read_ts) {
  Observation o;
  for (const std::string& key : {""s, "a"s, "a\0"s, "b"s, "\xff"s, "\xff\xff"s, "absent"s}) {
    Result<ReadResult> r = store.Get(key, read_ts);
    EXPECT_THAT(r, IsOk());
    o.gets.push_back(r.ok() ? *r : ReadResult{});
  }
  Result<ScanResult> scan = store.Scan(KeyRange::All(), read_ts, 1000);
  EXPECT_THAT(scan, IsOk());
  if (scan.ok()) o.scan = *scan;
  Result<ChangesResult> changes = store.Changes(read_ts, KeyRange::All(), 100000);
  EXPECT_THAT(changes, IsOk());
  if (changes.ok()) o.changes = *changes;
  return o;
}

enum class Tombstones { kMustMatch, kMayBeDropped };

// Compaction may turn a tombstone it removed into "not found" (kMayBeDropped);
// everything else a reader at or above the horizon sees must be identical.
void ExpectSameObservation(const Observation& before, const Observation& after, Timestamp read_ts,
                           Tombstones tombstones) {
  ASSERT_EQ(before.gets.size(), after.gets.size());
  for (size_t i = 0; i < before.gets.size(); ++i) {
    if (tombstones == Tombstones::kMayBeDropped && before.gets[i].deleted && !after.gets[i].found) {
      continue;
    }
    EXPECT_EQ(after.gets[i], before.gets[i]) << "get #" << i << " at " << read_ts.value();
  }
  EXPECT_EQ(after.scan, before.scan) << "scan at " << read_ts.value();
  EXPECT_EQ(after.changes, before.changes) << "changes since " << read_ts.value();
}

std::vector<Observation> ObserveFrom(const MvccStore& store, uint64_t first_ts) {
  std::vector<Observation> observations;
  for (uint64_t ts = first_ts; ts <= 62; ++ts) observations.push_back(Observe(store, Ts(ts)));
  return observations;
}

TEST(MvccStoreCompactionTest, ReadsAtOrAboveHorizonAreUnchangedByCompact) {
  for (uint64_t horizon : {1, 20, 35, 61}) {
    SCOPED_TRACE("horizon " + std::to_string(horizon));
    MvccStore store;
    FillVariedStore(store);
    const std::vector<Observation> before = ObserveFrom(store, horizon);

    const CompactResult result = store.Compact(Ts(horizon));

    EXPECT_GT(result.versions_removed, 0u);  // the scenario must actually compact
    const std::vector<Observation> after = ObserveFrom(store, horizon);
    for (size_t i = 0; i < before.size(); ++i) {
      ExpectSameObservation(before[i], after[i], Ts(horizon + i), Tombstones::kMayBeDropped);
    }
  }
}

TEST(MvccStoreCompactionTest, IncrementalStepsReachSameStateAsCompact) {
  for (size_t max_keys : {1, 2, 5, 1000}) {
    SCOPED_TRACE("max_keys " + std::to_string(max_keys));
    MvccStore whole;
    MvccStore stepped;
    FillVariedStore(whole);
    FillVariedStore(stepped);

    const CompactResult expected = whole.Compact(Ts(30));
    stepped.RaiseHorizon(Ts(30));
    const CompactStepResult sweep = FinishSweep(stepped, max_keys);

    EXPECT_EQ((CompactResult{.horizon = stepped.compaction_horizon(),
                             .versions_removed = sweep.versions_removed,
                             .bytes_reclaimed = sweep.bytes_reclaimed}),
              expected);
    EXPECT_EQ(stepped.GetStats(), whole.GetStats());
    // History without `from` shows exactly which versions survived.
    for (const std::string& key : {""s, "a"s, "a\0"s, "b"s, "\xff"s, "\xff\xff"s}) {
      EXPECT_EQ(stepped.History(key, std::nullopt, std::nullopt, 1000).value(),
                whole.History(key, std::nullopt, std::nullopt, 1000).value());
    }
    for (uint64_t ts = 30; ts <= 62; ++ts) {
      ExpectSameObservation(Observe(whole, Ts(ts)), Observe(stepped, Ts(ts)), Ts(ts),
                            Tombstones::kMustMatch);
    }
  }
}

// --- Versions per key (a metric's histogram) --------------------------------

TEST_F(MvccStoreTest, VersionsPerKeyCountsEveryKeyAcrossBatches) {
  // 10,000 keys (more than one batch of the walk): key i holds i % 5 + 1 versions.
  uint64_t ts = 1;
  for (int i = 0; i < 10000; ++i) {
    for (int v = 0; v <= i % 5; ++v) PutOk("k" + std::to_string(i), "v", ts++);
  }
  EXPECT_EQ(store_.VersionsPerKey({1, 2, 4}),
            (std::vector<uint64_t>{2000, 2000, 4000, 2000}));  // <=1, 2, 3..4, more
  // A delete is a version; a key compacted down to nothing is not counted.
  DeleteOk("k0", ts++);
  DeleteOk("k5", ts++);
  store_.Compact(Ts(ts));
  const auto after = store_.VersionsPerKey({1, 2, 4});
  EXPECT_EQ(std::accumulate(after.begin(), after.end(), uint64_t{0}), 9998u);
  EXPECT_EQ(after, (std::vector<uint64_t>{9998, 0, 0, 0}));  // compaction kept the newest only
  EXPECT_EQ(MvccStore().VersionsPerKey({1}), (std::vector<uint64_t>{0, 0}));
}

}  // namespace
}  // namespace strata
