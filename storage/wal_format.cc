#include "storage/wal_format.h"

#include <xxhash.h>

#include <cstdio>

#include "storage/coding.h"
#include "storage/file_util.h"

namespace strata::storage {

namespace {
constexpr std::string_view kSegmentPrefix = "wal-";
constexpr std::string_view kSegmentSuffix = ".log";
}  // namespace

std::string SegmentFileName(uint64_t first_lsn) {
  return NumberedFileName(kSegmentPrefix, first_lsn, kSegmentSuffix);
}

std::optional<uint64_t> ParseSegmentFileName(std::string_view name) {
  return ParseNumberedFileName(name, kSegmentPrefix, kSegmentSuffix);
}

uint64_t Checksum(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

void EncodeSegmentHeader(uint64_t first_lsn, std::string* out) {
  const size_t start = out->size();
  out->append(kWalMagic, sizeof(kWalMagic));
  PutFixed32(out, kWalFormatVersion);
  PutFixed32(out, kSegmentHeaderBytes);
  PutFixed64(out, first_lsn);
  PutFixed64(out, Checksum(std::string_view(*out).substr(start, 24)));
}

void EncodeRecord(RecordType type, uint64_t lsn, std::string_view payload, std::string* out) {
  const size_t start = out->size();
  out->append(8, '\0');  // checksum, filled in below
  PutFixed32(out, static_cast<uint32_t>(payload.size()));
  out->push_back(static_cast<char>(type));
  out->append(3, '\0');
  PutFixed64(out, lsn);
  out->append(payload);
  const uint64_t sum = Checksum(std::string_view(*out).substr(start + 8));
  EncodeFixed64(out->data() + start, sum);
  out->append(AlignedRecordSize(payload.size()) - (out->size() - start), '\0');
}

}  // namespace strata::storage
