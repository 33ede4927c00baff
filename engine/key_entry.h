// KeyEntry: everything the store keeps for one key, in one allocation.
//
//   [KeyEntry header: hash, key size, versions, write count][key bytes]
//
// The entry is linked into both indexes (the hash index for point reads, the
// ordered index for scans); its version array hangs off `versions`. Entries
// are created only by the writer and live as long as the store (a key whose
// versions are all compacted away keeps its entry, see MvccStore::SweepKey).
#ifndef STRATA_ENGINE_KEY_ENTRY_H_
#define STRATA_ENGINE_KEY_ENTRY_H_

#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

#include "engine/version_chain.h"

namespace strata::engine {

class KeyEntry final {
 public:
  static size_t AllocationSize(size_t key_bytes) { return sizeof(KeyEntry) + key_bytes; }

  static KeyEntry* Create(std::string_view key, uint64_t hash) {
    void* memory = ::operator new(AllocationSize(key.size()));
    auto* entry = new (memory) KeyEntry(hash, static_cast<uint32_t>(key.size()));
    if (!key.empty()) std::memcpy(entry->key_bytes(), key.data(), key.size());
    return entry;
  }

  // Frees the entry only (its version array and values are retired apart).
  static void Destroy(void* entry) { ::operator delete(entry); }

  std::string_view key() const { return {key_bytes(), key_size_}; }
  uint64_t hash() const { return hash_; }
  size_t allocation_size() const { return AllocationSize(key_size_); }

  // Published version array (nullptr never happens once the entry is linked).
  std::atomic<VersionArray*> versions{nullptr};
  // Writes this key has received (puts and deletes). Writer-only.
  uint64_t write_count = 0;

 private:
  KeyEntry(uint64_t hash, uint32_t key_size) : hash_(hash), key_size_(key_size) {}

  char* key_bytes() { return reinterpret_cast<char*>(this + 1); }
  const char* key_bytes() const { return reinterpret_cast<const char*>(this + 1); }

  uint64_t hash_;
  uint32_t key_size_;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_KEY_ENTRY_H_
