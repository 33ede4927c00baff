// The write-ahead log's on-disk format.
//
// The log is a sequence of segment files named wal-<first LSN, 20 digits>.log.
// Each starts with a 32-byte header:
//   magic "STRATAWL" | u32 format version (1) | u32 header size (32) |
//   u64 first LSN | u64 XXH3-64 of the previous 24 bytes
// followed by records, each 8-byte aligned:
//   u64 XXH3-64 of everything after this field up to the end of the payload |
//   u32 payload length | u8 type | 3 zero bytes | u64 LSN | payload | zero padding
// All integers are little-endian. LSNs are consecutive, across segments too.
// Segments are preallocated with zeros, so a segment's data ends at the first
// all-zero record header (or at the end of the file).
//
// Payloads (varints are LEB128; "bytes" is a varint length then the bytes):
//   kWrites:  varint timestamp | varint count | count x
//             (u8 kind 0 = delete / 1 = value | bytes key | varint version | [bytes value])
//   kHorizon: varint horizon           the compaction horizon rose to it
//   kReserve: varint through           the oracle may hand out timestamps up to it
//   kDurableMark: varint lsn           the first record of each flush group:
//                                      every record up to lsn was durable
//                                      when the group began
#ifndef STRATA_STORAGE_WAL_FORMAT_H_
#define STRATA_STORAGE_WAL_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::storage {

inline constexpr char kWalMagic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'W', 'L'};
inline constexpr uint32_t kWalFormatVersion = 1;
inline constexpr size_t kSegmentHeaderBytes = 32;
inline constexpr size_t kRecordHeaderBytes = 24;
inline constexpr size_t kRecordAlignment = 8;
// A record's payload is at most this big: far above the largest batch the
// store accepts, small enough that a damaged length is recognized as one.
inline constexpr uint32_t kMaxRecordPayload = 1u << 30;

enum class RecordType : uint8_t { kWrites = 1, kHorizon = 2, kReserve = 3, kDurableMark = 4 };

inline size_t AlignedRecordSize(size_t payload) {
  return (kRecordHeaderBytes + payload + kRecordAlignment - 1) & ~(kRecordAlignment - 1);
}

std::string SegmentFileName(uint64_t first_lsn);
// The first LSN in a segment's file name, or nullopt if it is not one.
std::optional<uint64_t> ParseSegmentFileName(std::string_view name);

// Appends a segment header / a whole record (header, payload, padding).
void EncodeSegmentHeader(uint64_t first_lsn, std::string* out);
void EncodeRecord(RecordType type, uint64_t lsn, std::string_view payload, std::string* out);

uint64_t Checksum(std::string_view bytes);

}  // namespace strata::storage

#endif  // STRATA_STORAGE_WAL_FORMAT_H_
