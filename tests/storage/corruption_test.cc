// Damage anywhere but the log's tail is corruption, not a crash: a bad
// record followed by any valid record later (in its segment or a later one)
// means acknowledged writes would be lost silently if recovery went on. Open
// must refuse with kInvalidArgument and a message naming the file and the
// offset, so an operator can look at the bytes.
//
// Each case damages one byte (or field) of a copy of a cleanly closed log
// spread over several segments, aimed with the tests' own reader of the
// documented format.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "storage_test_support.h"
#include "strata/store.h"

namespace strata::storage_testing {
namespace {

using ::testing::HasSubstr;

// A closed store with kWrites raw puts over at least 4 segments. Built once:
// every test damages its own copy.
class CorruptionTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kWrites = 150;

  static void SetUpTestSuite() {
    pristine_ = new TempDir();
    {
      std::unique_ptr<Store> store = OpenOrFail(pristine_->path());
      ASSERT_NE(store, nullptr);
      for (uint64_t i = 0; i < kWrites; ++i) {
        // 100-byte values: about 30 records per 4096-byte segment.
        ASSERT_TRUE(
            store->db()
                .RawPut(NumberedKey("key-", i), NumberedKey("value-", i, 100), Timestamp(i + 1))
                .ok());
      }
    }
    segments_ = new std::vector<WalSegmentInfo>(ReadWal(pristine_->path()));
  }

  static void TearDownTestSuite() {
    delete segments_;
    delete pristine_;
  }

  void SetUp() override {
    ASSERT_GE(segments().size(), 4u);
    for (const WalSegmentInfo& segment : segments()) {
      ASSERT_TRUE(segment.header_ok) << segment.name;
      ASSERT_FALSE(segment.stopped_at_bad_record.has_value()) << segment.name;
      ASSERT_GE(segment.records.size(), 5u) << segment.name;
    }
    CopyDirFiles(pristine_->path(), copy_.path());
  }

  static const std::vector<WalSegmentInfo>& segments() { return *segments_; }
  std::string PathOf(const WalSegmentInfo& segment) const { return copy_.File(segment.name); }

  // Open must fail with kInvalidArgument naming `file`, and (if any are
  // given) one of `offsets`: the damaged record's offset or the damaged
  // byte's, whichever the implementation reports.
  void ExpectOpenFailsNaming(const std::string& file, std::vector<uint64_t> offsets = {}) {
    Result<std::unique_ptr<Store>> store = Store::Open(copy_.path(), SmallOptions());
    ASSERT_FALSE(store.ok()) << "Open accepted a damaged log (" << file << ")";
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << StatusText(store.status());
    EXPECT_THAT(store.status().message(), HasSubstr(file));
    if (offsets.empty()) return;
    // The file name has digits of its own; look for the offset elsewhere.
    const std::string rest = Without(store.status().message(), file);
    bool named = false;
    for (uint64_t offset : offsets) named = named || MentionsNumber(rest, offset);
    EXPECT_TRUE(named) << "the message names none of the offsets "
                       << ::testing::PrintToString(offsets) << ": " << store.status().message();
  }

  TempDir copy_;

 private:
  static TempDir* pristine_;
  static std::vector<WalSegmentInfo>* segments_;
};

TempDir* CorruptionTest::pristine_ = nullptr;
std::vector<WalSegmentInfo>* CorruptionTest::segments_ = nullptr;

TEST_F(CorruptionTest, PayloadByteOfAnEarlyRecordInTheFirstSegment) {
  const WalSegmentInfo& segment = segments()[0];
  // A write's record (type 1): each flush group also starts with a small
  // durable mark, whose payload may be shorter than 4 bytes.
  size_t index = 2;
  while (segment.records[index].type != 1) ++index;
  const WalRecordInfo& record = segment.records[index];
  const uint64_t byte = record.offset + kRecordHeaderBytes + 3;
  FlipByte(PathOf(segment), byte);
  ExpectOpenFailsNaming(segment.name, {record.offset, byte});
}

TEST_F(CorruptionTest, ChecksumFieldOfARecordInAMiddleSegment) {
  const WalSegmentInfo& segment = segments()[1];
  const WalRecordInfo& record = segment.records[1];
  FlipByte(PathOf(segment), record.offset + 2);
  ExpectOpenFailsNaming(segment.name, {record.offset, record.offset + 2});
}

TEST_F(CorruptionTest, ImpossibleLengthField) {
  const WalSegmentInfo& segment = segments()[1];
  const WalRecordInfo& record = segment.records[3];
  // 0xfffffff0: far past the end of the segment and any payload limit.
  OverwriteBytes(PathOf(segment), record.offset + 8, std::string("\xf0\xff\xff\xff", 4));
  ExpectOpenFailsNaming(segment.name, {record.offset, record.offset + 8});
}

TEST_F(CorruptionTest, PlausibleButWrongLengthField) {
  const WalSegmentInfo& segment = segments()[2];
  const WalRecordInfo& record = segment.records[2];
  FlipByte(PathOf(segment), record.offset + 8, 0x08);  // 8 bytes more or less
  ExpectOpenFailsNaming(segment.name, {record.offset, record.offset + 8});
}

// A record whose checksum matches but whose LSN skips one: only the LSN
// sequence check can catch it.
TEST_F(CorruptionTest, LsnOutOfSequenceWithAValidChecksum) {
  const WalSegmentInfo& segment = segments()[2];
  const WalRecordInfo& record = segment.records[4];
  FlipByte(PathOf(segment), record.offset + 16, 0x01);
  ResealRecord(PathOf(segment), record.offset);
  ExpectOpenFailsNaming(segment.name, {record.offset, record.offset + 16});
}

// A record type this version does not know, checksum intact: the log was
// written by something else, so replaying past it would be a guess.
TEST_F(CorruptionTest, UnknownRecordTypeWithAValidChecksum) {
  const WalSegmentInfo& segment = segments()[1];
  const WalRecordInfo& record = segment.records[2];
  OverwriteBytes(PathOf(segment), record.offset + 12, std::string("\x63", 1));
  ResealRecord(PathOf(segment), record.offset);
  ExpectOpenFailsNaming(segment.name, {record.offset, record.offset + 12});
}

// In the last segment, with valid records after the damage in that same
// segment: still the middle, not the tail.
TEST_F(CorruptionTest, PayloadByteInTheLastSegmentWithValidRecordsAfter) {
  const WalSegmentInfo& segment = segments().back();
  ASSERT_GE(segment.records.size(), 3u);
  const WalRecordInfo& record = segment.records[1];
  const uint64_t byte = record.offset + kRecordHeaderBytes + 10;
  FlipByte(PathOf(segment), byte);
  ExpectOpenFailsNaming(segment.name, {record.offset, byte});
}

TEST_F(CorruptionTest, SegmentHeaderMagic) {
  const WalSegmentInfo& segment = segments()[1];
  FlipByte(PathOf(segment), 0);
  ExpectOpenFailsNaming(segment.name);
}

TEST_F(CorruptionTest, SegmentHeaderFirstLsn) {
  const WalSegmentInfo& segment = segments()[2];
  FlipByte(PathOf(segment), 16, 0x01);  // the header checksum no longer matches
  ExpectOpenFailsNaming(segment.name);
}

// A whole segment gone: the LSNs jump from one segment to the one after.
TEST_F(CorruptionTest, MissingMiddleSegment) {
  std::filesystem::remove(PathOf(segments()[2]));
  Result<std::unique_ptr<Store>> store = Store::Open(copy_.path(), SmallOptions());
  ASSERT_FALSE(store.ok()) << "Open accepted a log with a missing segment";
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << StatusText(store.status());
}

// A zeroed record header reads as "end of this segment's data"; in a
// segment that is not the last, the next segment's first LSN then leaves a
// gap, which must be caught.
TEST_F(CorruptionTest, ZeroedRecordHeaderInANonLastSegment) {
  const WalSegmentInfo& segment = segments()[1];
  const WalRecordInfo& record = segment.records[2];
  OverwriteBytes(PathOf(segment), record.offset, std::string(kRecordHeaderBytes, '\0'));
  Result<std::unique_ptr<Store>> store = Store::Open(copy_.path(), SmallOptions());
  ASSERT_FALSE(store.ok()) << "Open silently dropped records " << record.lsn << ".."
                           << segment.records.back().lsn;
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << StatusText(store.status());
}

// The same in the last segment, with valid records after the zeroed
// header: the recovery rules say a bad spot followed by a valid record is
// corruption. (A lost block write looks like this; silently ending the log
// at the hole would drop acknowledged writes.)
TEST_F(CorruptionTest, ZeroedRecordHeaderInTheLastSegmentWithValidRecordsAfter) {
  const WalSegmentInfo& segment = segments().back();
  ASSERT_GE(segment.records.size(), 3u);
  const WalRecordInfo& record = segment.records[1];
  OverwriteBytes(PathOf(segment), record.offset, std::string(kRecordHeaderBytes, '\0'));
  Result<std::unique_ptr<Store>> store = Store::Open(copy_.path(), SmallOptions());
  ASSERT_FALSE(store.ok()) << "Open silently dropped acknowledged records " << record.lsn << ".."
                           << segment.records.back().lsn << " after a zeroed record header";
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << StatusText(store.status());
}

// After a refused Open nothing was changed: the same damage is reported
// again (recovery must not "repair" by truncating what it refused).
TEST_F(CorruptionTest, RefusedOpenLeavesTheFilesAlone) {
  const WalSegmentInfo& segment = segments()[0];
  const WalRecordInfo& record = segment.records[3];
  FlipByte(PathOf(segment), record.offset + kRecordHeaderBytes);
  const std::string damaged = ReadFileBytes(PathOf(segment));
  const std::string last_before = ReadFileBytes(PathOf(segments().back()));
  ExpectOpenFailsNaming(segment.name);
  ExpectOpenFailsNaming(segment.name);
  EXPECT_EQ(ReadFileBytes(PathOf(segment)), damaged);
  EXPECT_EQ(ReadFileBytes(PathOf(segments().back())), last_before);
}

}  // namespace
}  // namespace strata::storage_testing
