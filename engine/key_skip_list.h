// KeySkipList: keys in byte order, lock-free for readers. The ordered
// index (key_order_index.h) keeps the keys written since its last re-layout
// in one; the rest are in a SortedKeyRun.
//
// A skip list in the style of LevelDB's memtable (one writer, any number of
// readers, next pointers published with release stores), extended with
// removal: the writer unlinks an entry top level first, leaving the entry's
// own next pointers intact so a reader standing on it still walks forward
// correctly, and the entry is freed through the epoch domain once no reader
// can be standing on it. Hand-written because the Debian candidates either
// synchronize invisibly to ThreadSanitizer (liburcu) or bring their own
// process-wide garbage collector (libcds); this one shares the store's.
#ifndef STRATA_ENGINE_KEY_SKIP_LIST_H_
#define STRATA_ENGINE_KEY_SKIP_LIST_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <random>
#include <string_view>

#include "engine/key_entry.h"

namespace strata::engine {

class KeySkipList final {
 public:
  KeySkipList();
  KeySkipList(const KeySkipList&) = delete;
  KeySkipList& operator=(const KeySkipList&) = delete;

  // A height for a new entry (geometric, 1 in 4 per level). Writer only.
  int RandomHeight();

  // The first entry whose key is >= `key` (nullptr: none).
  // REQUIRES: a ReadGuard on the epoch domain, or being the writer.
  KeyEntry* Seek(std::string_view key) const;
  KeyEntry* First() const { return head_[0].load(std::memory_order_acquire); }
  static KeyEntry* Next(const KeyEntry* entry) {
    return entry->next(0).load(std::memory_order_acquire);
  }

  // Writer only. REQUIRES: no entry with the same key is present.
  void Insert(KeyEntry* entry);
  // Writer only. REQUIRES: `entry` is present. The caller retires it.
  void Remove(KeyEntry* entry);

 private:
  using Predecessors = std::array<std::atomic<KeyEntry*>*, KeyEntry::kMaxHeight>;
  // Finds, at every level, the link that points at the first entry >= key.
  // Writer only.
  void FindPredecessors(std::string_view key, Predecessors* links);

  std::array<std::atomic<KeyEntry*>, KeyEntry::kMaxHeight> head_{};
  std::atomic<int> height_{1};    // levels in use; read by readers
  std::minstd_rand rng_{0x5eed};  // writer only
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_KEY_SKIP_LIST_H_
