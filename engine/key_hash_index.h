// KeyHashIndex: key -> KeyEntry for point reads, lock-free for readers.
//
// Open addressing with linear probing over an array of atomic pointers. Only
// the writer inserts, erases (leaving a tombstone marker so probe chains stay
// intact) and resizes (building a new table, publishing it, retiring the old
// one through the epoch domain). Readers hold an EpochDomain::ReadGuard and
// probe whatever table they loaded. A point read costs one slot and one
// entry access, where an ordered index would cost a cache miss per level.
// Hand-written because no Debian library offers a single-writer hash map
// whose readers run without locks under our own reclamation scheme.
#ifndef STRATA_ENGINE_KEY_HASH_INDEX_H_
#define STRATA_ENGINE_KEY_HASH_INDEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/epoch.h"
#include "engine/key_entry.h"

namespace strata::engine {

class KeyHashIndex final {
 public:
  explicit KeyHashIndex(EpochDomain* epochs);
  ~KeyHashIndex();  // frees the table, not the entries
  KeyHashIndex(const KeyHashIndex&) = delete;
  KeyHashIndex& operator=(const KeyHashIndex&) = delete;

  static uint64_t Hash(std::string_view key);

  // REQUIRES: a ReadGuard on the epoch domain, or being the writer.
  KeyEntry* Find(std::string_view key, uint64_t hash) const;
  // For reads of many keys at once (MvccStore::MultiGetInto), each step
  // for every key before the next, so the keys' cache misses overlap:
  // starts fetching the slot `hash` probes first; then, that slot loaded,
  // the entry it holds (most often the key's).
  // REQUIRES: a ReadGuard on the epoch domain, or being the writer.
  void PrefetchSlot(uint64_t hash) const;
  void PrefetchEntry(uint64_t hash) const;

  // Writer only. REQUIRES: no entry with the same key is present.
  void Insert(KeyEntry* entry);
  // Writer only. REQUIRES: `entry` is present.
  void Erase(KeyEntry* entry);

  // Bytes of the current table. Safe from any thread.
  size_t memory_bytes() const { return table_bytes_.load(std::memory_order_relaxed); }

 private:
  struct Table;
  static Table* NewTable(size_t capacity);
  void GrowOrRehash();

  EpochDomain* epochs_;
  std::atomic<Table*> table_;
  std::atomic<size_t> table_bytes_{0};  // size of the current table, for stats
  size_t live_ = 0;                     // entries present (writer-only)
  size_t tombstones_ = 0;               // erased slots not yet reused (writer-only)
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_KEY_HASH_INDEX_H_
