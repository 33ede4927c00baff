// The versions of one key: a timestamp-sorted array that readers binary
// search without locks while the (single) writer appends to it.
//
// Layout: a VersionArray is one allocation holding a published size, its
// capacity and the records. Records below `size` are immutable. The writer
// appends in place when the new version is the newest and there is room (it
// fills the slot, then publishes size+1 with release order); otherwise it
// builds a new array and publishes it through the key's atomic pointer, and
// the old array is retired through the epoch domain. A reader therefore
// always sees a consistent prefix of some array, and a point read is a binary
// search: O(log versions), never a walk over the whole history.
#ifndef STRATA_ENGINE_VERSION_CHAIN_H_
#define STRATA_ENGINE_VERSION_CHAIN_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace strata::engine {

// An immutable value, allocated once and shared by every array that holds
// its version.
class ValueBlob final {
 public:
  static ValueBlob* Create(std::string_view bytes);
  static void Destroy(void* blob);
  static size_t AllocationSize(size_t value_bytes) { return sizeof(ValueBlob) + value_bytes; }

  std::string_view bytes() const { return {reinterpret_cast<const char*>(this + 1), size_}; }

 private:
  explicit ValueBlob(uint32_t size) : size_(size) {}
  uint32_t size_;
};

// One version: 40 bytes. A value of up to kInlineBytes lives in the record
// itself (no allocation, and no extra cache miss on a read); a longer one in
// a ValueBlob the record points to; a delete (tombstone) has neither.
class VersionRecord final {
 public:
  static constexpr size_t kInlineBytes = 22;

  // A record for `value` (nullptr: a delete); allocates a ValueBlob when the
  // value does not fit inline. The caller owns that blob (see blob()).
  static VersionRecord Make(uint64_t timestamp, uint64_t version, const std::string_view* value);

  uint64_t timestamp;
  uint64_t version;  // the key's write count when this version arrived

  bool deleted() const { return kind_ == Kind::kTombstone; }
  // The value's bytes. REQUIRES: !deleted().
  std::string_view value() const {
    if (kind_ == Kind::kInline) return {payload_, inline_size_};
    return blob()->bytes();
  }
  // The out-of-line value, or nullptr (inline value or delete).
  const ValueBlob* blob() const {
    if (kind_ != Kind::kBlob) return nullptr;
    const ValueBlob* blob;
    std::memcpy(&blob, payload_, sizeof(blob));
    return blob;
  }
  // The address a reader will touch for the value (for prefetching).
  const void* value_address() const {
    return kind_ == Kind::kBlob ? static_cast<const void*>(blob()) : this;
  }

 private:
  enum class Kind : uint8_t { kTombstone, kInline, kBlob };
  char payload_[kInlineBytes];  // inline bytes, or a ValueBlob* (memcpy'd)
  uint8_t inline_size_;
  Kind kind_;
};
static_assert(sizeof(VersionRecord) == 40, "a version record is 40 bytes");

class VersionArray final {
 public:
  static VersionArray* Create(uint32_t capacity);
  static void Destroy(void* array);
  static size_t AllocationSize(uint32_t capacity) {
    return sizeof(VersionArray) + size_t{capacity} * sizeof(VersionRecord);
  }

  // Reader side: the published prefix. Load once and use the result.
  uint32_t published_size() const { return size_.load(std::memory_order_acquire); }
  uint32_t capacity() const { return capacity_; }
  const VersionRecord* records() const { return reinterpret_cast<const VersionRecord*>(this + 1); }

  // Index of the newest record with timestamp <= ts among the first `size`,
  // or -1 if there is none.
  static int64_t FindAtOrBelow(const VersionRecord* records, uint32_t size, uint64_t ts);
  // Index of the first record with timestamp >= ts (== size if none).
  static uint32_t LowerBound(const VersionRecord* records, uint32_t size, uint64_t ts);

  // Writer side. REQUIRES: the caller is the only writer of this key.
  VersionRecord* mutable_records() { return reinterpret_cast<VersionRecord*>(this + 1); }
  void Publish(uint32_t size) { size_.store(size, std::memory_order_release); }

 private:
  explicit VersionArray(uint32_t capacity) : capacity_(capacity) {}
  std::atomic<uint32_t> size_{0};
  uint32_t capacity_;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_VERSION_CHAIN_H_
