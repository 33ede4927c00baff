// Helpers shared by the storage tests: temporary directories, opening a
// durable store with small test-friendly options, capturing everything a
// reader can observe of a store (to compare before and after a reopen),
// file surgery (flip, truncate, copy) and a reader of the write-ahead log's
// documented on-disk layout, so tests can aim damage at exact records.
//
// The WAL reader is written from the format description (storage/
// wal_format.h), not from the implementation: it is the tests' independent
// check that the files are laid out as documented.
#ifndef STRATA_TESTS_STORAGE_STORAGE_TEST_SUPPORT_H_
#define STRATA_TESTS_STORAGE_STORAGE_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/store.h"
#include "strata/timestamp.h"

namespace strata {

// Printers found by ADL, so gtest shows codes and messages instead of bytes.
void PrintTo(StatusCode code, std::ostream* os);
void PrintTo(const Status& status, std::ostream* os);
inline void PrintTo(Timestamp timestamp, std::ostream* os) { *os << "ts " << timestamp.value(); }
void PrintTo(SyncMode mode, std::ostream* os);

namespace storage_testing {

// ---------------------------------------------------------------------------
// Directories and options.

// A fresh directory under /tmp (mkdtemp), removed with everything in it when
// the object goes away.
class TempDir final {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path/name
  std::string File(std::string_view name) const;

 private:
  std::string path_;
};

const char* SyncModeName(SyncMode mode);
inline constexpr SyncMode kAllSyncModes[] = {SyncMode::kAlways, SyncMode::kBatch, SyncMode::kNone};

// Small segments so logs roll over every few records, no background
// checkpoints (tests call Checkpoint() themselves), and a short batch delay
// so each acknowledged write costs about one fsync and no more.
StoreOpenOptions SmallOptions(SyncMode mode = SyncMode::kNone);

// Store::Open, expected to succeed: on failure records a gtest failure (with
// the status) and returns nullptr.
std::unique_ptr<Store> OpenOrFail(const std::string& dir,
                                  const StoreOpenOptions& options = SmallOptions());

std::string StatusText(const Status& status);

// ---------------------------------------------------------------------------
// Observable state.

// Everything a read at or above the compaction horizon can see, plus the
// horizon and the highest timestamp written. Versions compaction made
// invisible are left out on purpose: recovery may drop them even where the
// engine had not swept them yet.
struct StoreState {
  Timestamp horizon;
  std::optional<Timestamp> max_timestamp;
  // One line per key: its version visible at the horizon (a tombstone there
  // counts as absent, since a sweep may forget it), then every version at or
  // above the horizon with version number, timestamp and value.
  std::map<std::string, std::string> keys;

  bool operator==(const StoreState&) const = default;
};

// Captures the state of `store` for the keys in `known_keys` plus every key
// the store itself shows (scan at the newest timestamp, changes since the
// horizon), so a key that appears from nowhere is noticed too.
StoreState CaptureState(const MvccStore& store, const std::vector<std::string>& known_keys = {});

// Empty if equal; otherwise a readable account of the first differences.
std::string DescribeDifference(const StoreState& expected, const StoreState& actual);

std::string ToString(const StoreState& state);

// Concatenates string-like pieces. Used instead of `"literal" + temporary`,
// which GCC 12 at -O3 misreports as an overlapping memcpy (-Wrestrict, GCC
// bug 105329).
template <typename... Pieces>
std::string StrCat(const Pieces&... pieces) {
  std::string out;
  (out.append(std::string_view(pieces)), ...);
  return out;
}

// Shows arbitrary bytes readably: printable ASCII as is, the rest as \xNN.
std::string EscapeBytes(std::string_view bytes);

// prefix + zero-padded decimal n ("key-000042"), so keys sort by n.
std::string NumberedKey(std::string_view prefix, uint64_t n, int width = 6);

// ---------------------------------------------------------------------------
// Files.

std::string ReadFileBytes(const std::string& path);
void WriteFileBytes(const std::string& path, std::string_view bytes);
uint64_t FileSize(const std::string& path);
void TruncateFile(const std::string& path, uint64_t size);
// XORs the byte at `offset` with `mask` (non-zero).
void FlipByte(const std::string& path, uint64_t offset, uint8_t mask = 0x5a);
// Overwrites bytes [offset, offset + bytes.size()).
void OverwriteBytes(const std::string& path, uint64_t offset, std::string_view bytes);
// Copies every regular file of `from` into the (existing, empty) dir `to`.
void CopyDirFiles(const std::string& from, const std::string& to);
// Names (not paths) of the files in `dir` that start with `prefix` and end
// with `suffix`, sorted.
std::vector<std::string> ListFiles(const std::string& dir, std::string_view prefix,
                                   std::string_view suffix);
std::vector<std::string> WalSegmentNames(const std::string& dir);  // wal-*.log
std::vector<std::string> CheckpointNames(const std::string& dir);  // checkpoint-*.ckpt

// "wal-<20 digits>.log", "checkpoint-<20 digits>.ckpt"
std::string WalSegmentName(uint64_t first_lsn);
std::string CheckpointName(uint64_t lsn);

// ---------------------------------------------------------------------------
// The documented WAL layout.

inline constexpr uint64_t kSegmentHeaderBytes = 32;
inline constexpr uint64_t kRecordHeaderBytes = 24;
inline constexpr std::string_view kSegmentMagic = "STRATAWL";

// XXH3-64, as the format uses for every checksum.
uint64_t Checksum(std::string_view bytes);

struct WalRecordInfo {
  uint64_t offset = 0;  // of the record header within the segment file
  uint32_t payload_bytes = 0;
  uint8_t type = 0;
  uint64_t lsn = 0;
  std::string payload;
  uint64_t payload_end() const { return offset + kRecordHeaderBytes + payload_bytes; }
  uint64_t padded_end() const { return (payload_end() + 7) / 8 * 8; }
  // Whether the payload holds `bytes` (how tests find the record of a write
  // without knowing the payload encoding).
  bool Mentions(std::string_view bytes) const;
};

struct WalSegmentInfo {
  std::string name;
  uint64_t file_bytes = 0;
  bool header_ok = false;  // magic, version 1, header size 32, header checksum
  uint64_t first_lsn = 0;
  std::vector<WalRecordInfo> records;  // the valid records, up to the end of data
  uint64_t data_end = 0;               // where the valid records end
  // Why reading stopped before EOF other than at an all-zero header, if so.
  std::optional<std::string> stopped_at_bad_record;
};

// Reads a segment by the documented layout. Stops at EOF, at an all-zero
// record header, or at the first record that is not valid (checksum, length,
// LSN out of sequence), which it describes in stopped_at_bad_record.
WalSegmentInfo ReadWalSegment(const std::string& dir, const std::string& name);
std::vector<WalSegmentInfo> ReadWal(const std::string& dir);

// Rewrites the checksum of the record at `offset` so that it matches the
// bytes now on disk (for damage that must be caught by something other than
// the checksum, such as an LSN out of sequence).
void ResealRecord(const std::string& path, uint64_t offset);

// ---------------------------------------------------------------------------
// Messages.

// Whether `message` contains `number` in decimal as a whole token (not part
// of a longer digit run) or as 0x-hexadecimal.
bool MentionsNumber(std::string_view message, uint64_t number);
// Every decimal number in `message` after `ignored` (e.g. a file name with
// digits in it) was removed.
std::vector<uint64_t> NumbersIn(std::string_view message, std::string_view ignored = {});
// `message` with every occurrence of `ignored` replaced by a space.
std::string Without(std::string_view message, std::string_view ignored);

// ---------------------------------------------------------------------------
// Time.

// How long each stress scenario runs: STRATA_STRESS_SECONDS, else
// `default_seconds`. Sanitizers lower the operation count, not the duration.
std::chrono::steady_clock::duration StressDuration(double default_seconds);

}  // namespace storage_testing
}  // namespace strata

#endif  // STRATA_TESTS_STORAGE_STORAGE_TEST_SUPPORT_H_
