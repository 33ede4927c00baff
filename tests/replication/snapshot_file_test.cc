// A Raft group's snapshot file: what is written reads back, and a file
// that was damaged, cut short or holds another group's or index's
// snapshot is refused with a message naming it.
#include "replication/snapshot_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "storage/file_util.h"
#include "storage_test_support.h"

namespace strata::replication {
namespace {

using storage_testing::TempDir;
namespace fs = std::filesystem;

std::string Data() {
  std::string data;
  for (int i = 0; i < 100'000; ++i) data += static_cast<char>('a' + i % 26);
  return data;
}

TEST(SnapshotFileTest, WhatIsWrittenReadsBackAndNoTemporaryStays) {
  TempDir dir;
  const std::string name = SnapshotFileName(7);
  ASSERT_TRUE(WriteSnapshotFile(dir.path(), name, 3, 41, Data(), /*sync=*/true).ok());
  Result<std::string> read = ReadSnapshotFile(dir.path(), name, 3, 41);
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(*read, Data());
  EXPECT_EQ(storage_testing::FileSize(dir.File(name)), kSnapshotFileHeaderBytes + Data().size());
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename(), name);
  }
  // An empty state is a snapshot too.
  ASSERT_TRUE(WriteSnapshotFile(dir.path(), SnapshotFileName(8), 3, 42, "", false).ok());
  EXPECT_EQ(ReadSnapshotFile(dir.path(), SnapshotFileName(8), 3, 42).value(), "");
}

TEST(SnapshotFileTest, NamesParseBackAndTemporariesAreTold) {
  EXPECT_EQ(ParseSnapshotFileName(SnapshotFileName(12345)), std::optional<uint64_t>(12345));
  EXPECT_EQ(ParseSnapshotFileName("raft-00000000000000000001.log"), std::nullopt);
  EXPECT_EQ(ParseSnapshotFileName(SnapshotFileName(1) + std::string(storage::kReplacingSuffix)),
            std::nullopt);
  EXPECT_TRUE(
      IsSnapshotTemporaryFileName(SnapshotFileName(1) + std::string(storage::kReplacingSuffix)));
  EXPECT_FALSE(IsSnapshotTemporaryFileName(SnapshotFileName(1)));
}

TEST(SnapshotFileTest, DamageAndAnotherSnapshotAreRefused) {
  TempDir dir;
  const std::string name = SnapshotFileName(1);
  ASSERT_TRUE(WriteSnapshotFile(dir.path(), name, 2, 9, Data(), false).ok());
  const std::string path = dir.File(name);
  const std::string original = storage_testing::ReadFileBytes(path);
  const auto refused = [&](raft::GroupId group, raft::Index index, const std::string& says) {
    Result<std::string> read = ReadSnapshotFile(dir.path(), name, group, index);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.status().code(), StatusCode::kIoError);
    EXPECT_NE(read.status().message().find(path), std::string::npos) << read.status().message();
    EXPECT_NE(read.status().message().find(says), std::string::npos) << read.status().message();
  };
  refused(2, 10, "holds group 2's snapshot at index 9, not group 2's at 10");
  refused(4, 9, "not group 4's at 9");
  storage_testing::FlipByte(path, kSnapshotFileHeaderBytes + 5000);
  refused(2, 9, "checksum");
  storage_testing::WriteFileBytes(path, original);
  storage_testing::FlipByte(path, 20);  // in the header's group
  refused(2, 9, "no valid header");
  storage_testing::WriteFileBytes(path, original);
  storage_testing::TruncateFile(path, original.size() - 1);
  refused(2, 9, "where its header says");
  storage_testing::TruncateFile(path, 10);
  refused(2, 9, "no valid header");
  Result<std::string> missing = ReadSnapshotFile(dir.path(), SnapshotFileName(99), 2, 9);
  EXPECT_FALSE(missing.ok());
}

// Read in chunks (a leader sending it): the chunks make the data; the
// first checks the whole file, so a damaged one is not sent.
TEST(SnapshotFileTest, ChunksMakeTheDataAndADamagedFileIsNotSent) {
  TempDir dir;
  const std::string name = SnapshotFileName(3);
  const std::string data = Data() + Data() + Data();  // past one piece of the check
  ASSERT_TRUE(WriteSnapshotFile(dir.path(), name, 5, 70, data, false).ok());
  std::string joined;
  for (uint64_t offset = 0; offset < data.size(); offset += 65536) {
    Result<std::string> chunk = ReadSnapshotFileRange(dir.path(), name, 5, 70, offset, 65536);
    ASSERT_TRUE(chunk.ok()) << chunk.status().message();
    joined += *chunk;
  }
  EXPECT_EQ(joined, data);
  EXPECT_EQ(ReadSnapshotFileRange(dir.path(), name, 5, 70, data.size(), 10).value(), "");
  EXPECT_FALSE(ReadSnapshotFileRange(dir.path(), name, 5, 71, 0, 10).ok()) << "another index";
  storage_testing::FlipByte(dir.File(name), kSnapshotFileHeaderBytes + data.size() - 1);
  Result<std::string> first = ReadSnapshotFileRange(dir.path(), name, 5, 70, 0, 10);
  ASSERT_FALSE(first.ok());
  EXPECT_NE(first.status().message().find("checksum"), std::string::npos)
      << first.status().message();
}

TEST(SnapshotFileTest, AFailedWriteLeavesNoFile) {
  TempDir dir;
  const std::string gone = dir.File("gone");  // a directory that does not exist
  EXPECT_FALSE(WriteSnapshotFile(gone, SnapshotFileName(1), 1, 1, Data(), false).ok());
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

}  // namespace
}  // namespace strata::replication
