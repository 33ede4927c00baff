// SortedKeyRun: key entries laid out in key order in one immutable array,
// so that a scan finds its start with few cache misses and walks on without
// any miss that waits for the one before.
//
// A skip list costs a scan one dependent miss per key: the next entry's
// address is only known once the current entry has arrived. Here the
// addresses of the next keys sit side by side, so a walker can ask for many
// entries at once (prefetch) and their misses overlap. Each slot also holds
// 8 bytes of its key, taken after the prefix every key of the run shares, so
// a seek's binary search compares integers and reads a key only when two of
// them are equal.
//
// A run never changes once made: the ordered index makes a new one by
// merging the old with the keys written since, publishes it, and retires
// the old through the epoch domain.
#ifndef STRATA_ENGINE_SORTED_KEY_RUN_H_
#define STRATA_ENGINE_SORTED_KEY_RUN_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "engine/key_entry.h"

namespace strata::engine {

class SortedKeyRun final {
 public:
  // A run of `run`'s entries (nullptr: none) and `added`'s, which must be in
  // key order and hold no key `run` holds. Reads every key of `added` and,
  // when the shared prefix grows shorter, every key of `run`.
  static SortedKeyRun* Merge(const SortedKeyRun* run, std::span<KeyEntry* const> added);
  static void Destroy(void* run);

  size_t size() const { return size_; }
  KeyEntry* entry(size_t i) const { return slots()[i].entry; }
  // Starts loading entry `i`'s header and key (i < size()).
  void PrefetchEntry(size_t i) const {
    const KeyEntry* e = slots()[i].entry;
    __builtin_prefetch(e);
    __builtin_prefetch(reinterpret_cast<const char*>(e) + 63);  // a key past the first line
  }
  // Starts loading entry `i`'s version array, once the entry has had time
  // to arrive (i < size()): its first three lines, which hold four versions
  // (a prefetch past the array's end costs a line, never a fault).
  void PrefetchVersions(size_t i) const {
    const char* array =
        reinterpret_cast<const char*>(slots()[i].entry->versions.load(std::memory_order_relaxed));
    if (array == nullptr) return;  // an entry not yet given versions (tests)
    __builtin_prefetch(array);
    __builtin_prefetch(array + 64);
    __builtin_prefetch(array + 128);
  }
  // The index of the first entry whose key is >= `key` (size(): none).
  size_t LowerBound(std::string_view key) const;

  // An integer for any key, comparable with order_bytes(i) without reading
  // entry i: smaller or larger means the key sorts before or after entry
  // i's; equal says nothing. A key outside the shared prefix gets 0 or the
  // largest value.
  uint64_t OrderBytesFor(std::string_view key) const;
  uint64_t order_bytes(size_t i) const { return slots()[i].order_bytes; }
  // The bytes every key of the run begins with.
  std::string_view shared_prefix() const {
    return {reinterpret_cast<const char*>(slots() + size_), shared_size_};
  }
  size_t memory_bytes() const { return AllocationSize(size_, shared_size_); }

 private:
  struct Slot {
    uint64_t order_bytes;  // the key's 8 bytes after the shared prefix
    KeyEntry* entry;
  };

  SortedKeyRun(size_t size, uint32_t shared_size) : size_(size), shared_size_(shared_size) {}
  static size_t AllocationSize(size_t size, size_t shared_size) {
    return sizeof(SortedKeyRun) + size * sizeof(Slot) + shared_size;
  }
  static SortedKeyRun* Allocate(size_t size, std::string_view shared_prefix);
  // The 8 bytes of `key` after `shared` bytes, big-endian, zero-padded: an
  // integer order that never contradicts the keys' byte order (equal
  // integers say nothing).
  static uint64_t OrderBytes(std::string_view key, size_t shared);
  Slot* slots() { return reinterpret_cast<Slot*>(this + 1); }
  const Slot* slots() const { return reinterpret_cast<const Slot*>(this + 1); }

  size_t size_;
  uint32_t shared_size_;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_SORTED_KEY_RUN_H_
