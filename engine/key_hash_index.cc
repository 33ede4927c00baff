#include "engine/key_hash_index.h"

#include <xxhash.h>

#include <new>

namespace strata::engine {
namespace {

// Marks an erased slot: probing continues past it, inserting may reuse it.
KeyEntry* const kErased = reinterpret_cast<KeyEntry*>(uintptr_t{1});

constexpr size_t kInitialCapacity = 64;

}  // namespace

struct KeyHashIndex::Table {
  size_t mask;  // capacity - 1; capacity is a power of two
  std::atomic<KeyEntry*>* slots() { return reinterpret_cast<std::atomic<KeyEntry*>*>(this + 1); }
  const std::atomic<KeyEntry*>* slots() const {
    return reinterpret_cast<const std::atomic<KeyEntry*>*>(this + 1);
  }
  size_t capacity() const { return mask + 1; }
  static size_t AllocationSize(size_t capacity) {
    return sizeof(Table) + capacity * sizeof(std::atomic<KeyEntry*>);
  }
  static void Destroy(void* table) { ::operator delete(table); }
};

KeyHashIndex::Table* KeyHashIndex::NewTable(size_t capacity) {
  void* memory = ::operator new(Table::AllocationSize(capacity));
  auto* table = new (memory) Table{capacity - 1};
  for (size_t i = 0; i < capacity; ++i) new (&table->slots()[i]) std::atomic<KeyEntry*>(nullptr);
  return table;
}

KeyHashIndex::KeyHashIndex(EpochDomain* epochs)
    : epochs_(epochs),
      table_(NewTable(kInitialCapacity)),
      table_bytes_(Table::AllocationSize(kInitialCapacity)) {}

KeyHashIndex::~KeyHashIndex() { Table::Destroy(table_.load(std::memory_order_relaxed)); }

uint64_t KeyHashIndex::Hash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

KeyEntry* KeyHashIndex::Find(std::string_view key, uint64_t hash) const {
  const Table* table = table_.load(std::memory_order_acquire);
  for (size_t i = hash & table->mask;; i = (i + 1) & table->mask) {
    KeyEntry* entry = table->slots()[i].load(std::memory_order_acquire);
    if (entry == nullptr) return nullptr;
    if (entry != kErased && entry->hash() == hash && entry->key() == key) return entry;
  }
}

void KeyHashIndex::PrefetchSlot(uint64_t hash) const {
  const Table* table = table_.load(std::memory_order_acquire);
  __builtin_prefetch(&table->slots()[hash & table->mask]);
}

void KeyHashIndex::PrefetchEntry(uint64_t hash) const {
  const Table* table = table_.load(std::memory_order_acquire);
  const KeyEntry* entry = table->slots()[hash & table->mask].load(std::memory_order_acquire);
  if (entry != nullptr && entry != kErased) __builtin_prefetch(entry);
}

void KeyHashIndex::Insert(KeyEntry* entry) {
  Table* table = table_.load(std::memory_order_relaxed);
  // Keep at least a third of the slots empty so probe chains stay short and
  // every probe loop terminates.
  if ((live_ + tombstones_ + 1) * 3 > table->capacity() * 2) {
    GrowOrRehash();
    table = table_.load(std::memory_order_relaxed);
  }
  for (size_t i = entry->hash() & table->mask;; i = (i + 1) & table->mask) {
    KeyEntry* slot = table->slots()[i].load(std::memory_order_relaxed);
    if (slot == nullptr || slot == kErased) {
      if (slot == kErased) --tombstones_;
      table->slots()[i].store(entry, std::memory_order_release);
      ++live_;
      return;
    }
  }
}

void KeyHashIndex::Erase(KeyEntry* entry) {
  Table* table = table_.load(std::memory_order_relaxed);
  for (size_t i = entry->hash() & table->mask;; i = (i + 1) & table->mask) {
    if (table->slots()[i].load(std::memory_order_relaxed) == entry) {
      table->slots()[i].store(kErased, std::memory_order_release);
      --live_;
      ++tombstones_;
      return;
    }
  }
}

void KeyHashIndex::GrowOrRehash() {
  Table* old_table = table_.load(std::memory_order_relaxed);
  // Size for twice the live entries at most half full; shrinking happens
  // naturally when most of the slots were tombstones.
  size_t capacity = kInitialCapacity;
  while (capacity < (live_ + 1) * 4) capacity *= 2;
  Table* table = NewTable(capacity);
  for (size_t i = 0; i < old_table->capacity(); ++i) {
    KeyEntry* entry = old_table->slots()[i].load(std::memory_order_relaxed);
    if (entry == nullptr || entry == kErased) continue;
    size_t j = entry->hash() & table->mask;
    while (table->slots()[j].load(std::memory_order_relaxed) != nullptr) j = (j + 1) & table->mask;
    table->slots()[j].store(entry, std::memory_order_relaxed);
  }
  tombstones_ = 0;
  table_.store(table, std::memory_order_release);
  table_bytes_.store(Table::AllocationSize(capacity), std::memory_order_relaxed);
  epochs_->Retire(old_table, &Table::Destroy);
}

}  // namespace strata::engine
