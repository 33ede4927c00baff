// KeyEntry: everything the store keeps for one key, in one allocation.
//
//   [KeyEntry header][height x atomic<KeyEntry*> skip-list tower][key bytes]
//
// The entry is linked into both indexes (the hash index for point reads, the
// ordered skip list for scans); its version array hangs off `versions`.
// Entries are created and unlinked only by the writer and freed through the
// epoch domain.
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
  static constexpr int kMaxHeight = 20;

  static size_t AllocationSize(size_t key_bytes, int height) {
    return sizeof(KeyEntry) + sizeof(std::atomic<KeyEntry*>) * height + key_bytes;
  }

  static KeyEntry* Create(std::string_view key, uint64_t hash, int height) {
    void* memory = ::operator new(AllocationSize(key.size(), height));
    auto* entry = new (memory) KeyEntry(hash, static_cast<uint32_t>(key.size()), height);
    for (int i = 0; i < height; ++i) new (&entry->tower()[i]) std::atomic<KeyEntry*>(nullptr);
    if (!key.empty()) std::memcpy(entry->key_bytes(), key.data(), key.size());
    return entry;
  }

  // Frees the entry only (its version array and values are retired apart).
  static void Destroy(void* entry) { ::operator delete(entry); }

  std::string_view key() const { return {key_bytes(), key_size_}; }
  uint64_t hash() const { return hash_; }
  int height() const { return height_; }
  size_t allocation_size() const { return AllocationSize(key_size_, height_); }

  std::atomic<KeyEntry*>& next(int level) { return tower()[level]; }
  const std::atomic<KeyEntry*>& next(int level) const { return tower()[level]; }

  // Published version array (nullptr never happens once the entry is linked).
  std::atomic<VersionArray*> versions{nullptr};
  // Writes this key has received (puts and deletes). Writer-only.
  uint64_t write_count = 0;

 private:
  KeyEntry(uint64_t hash, uint32_t key_size, int height)
      : hash_(hash), key_size_(key_size), height_(static_cast<uint8_t>(height)) {}

  std::atomic<KeyEntry*>* tower() { return reinterpret_cast<std::atomic<KeyEntry*>*>(this + 1); }
  const std::atomic<KeyEntry*>* tower() const {
    return reinterpret_cast<const std::atomic<KeyEntry*>*>(this + 1);
  }
  char* key_bytes() { return reinterpret_cast<char*>(tower() + height_); }
  const char* key_bytes() const { return reinterpret_cast<const char*>(tower() + height_); }

  uint64_t hash_;
  uint32_t key_size_;
  uint8_t height_;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_KEY_ENTRY_H_
