#include "engine/version_chain.h"

#include <cstring>
#include <new>

namespace strata::engine {

ValueBlob* ValueBlob::Create(std::string_view bytes) {
  void* memory = ::operator new(AllocationSize(bytes.size()));
  auto* blob = new (memory) ValueBlob(static_cast<uint32_t>(bytes.size()));
  if (!bytes.empty()) std::memcpy(blob + 1, bytes.data(), bytes.size());
  return blob;
}

void ValueBlob::Destroy(void* blob) { ::operator delete(blob); }

VersionRecord VersionRecord::Make(uint64_t timestamp, uint64_t version,
                                  const std::string_view* value) {
  VersionRecord r;
  r.timestamp = timestamp;
  r.version = version;
  r.inline_size_ = 0;
  std::memset(r.payload_, 0, sizeof(r.payload_));
  if (value == nullptr) {
    r.kind_ = Kind::kTombstone;
  } else if (value->size() <= kInlineBytes) {
    r.kind_ = Kind::kInline;
    r.inline_size_ = static_cast<uint8_t>(value->size());
    if (!value->empty()) std::memcpy(r.payload_, value->data(), value->size());
  } else {
    r.kind_ = Kind::kBlob;
    const ValueBlob* blob = ValueBlob::Create(*value);
    std::memcpy(r.payload_, &blob, sizeof(blob));
  }
  return r;
}

VersionArray* VersionArray::Create(uint32_t capacity) {
  void* memory = ::operator new(AllocationSize(capacity));
  return new (memory) VersionArray(capacity);
}

void VersionArray::Destroy(void* array) {
  static_cast<VersionArray*>(array)->~VersionArray();
  ::operator delete(array);
}

int64_t VersionArray::FindAtOrBelow(const VersionRecord* records, uint32_t size, uint64_t ts) {
  // Fast path: most reads ask for the newest version.
  if (size > 0 && records[size - 1].timestamp <= ts) return size - 1;
  // Upper bound: first record with timestamp > ts.
  uint32_t lo = 0, hi = size;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (records[mid].timestamp <= ts) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return static_cast<int64_t>(lo) - 1;
}

uint32_t VersionArray::LowerBound(const VersionRecord* records, uint32_t size, uint64_t ts) {
  uint32_t lo = 0, hi = size;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (records[mid].timestamp < ts) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

}  // namespace strata::engine
