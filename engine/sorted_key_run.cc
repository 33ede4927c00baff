#include "engine/sorted_key_run.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

namespace strata::engine {

namespace {

size_t CommonPrefixSize(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  return static_cast<size_t>(std::mismatch(a.begin(), a.begin() + n, b.begin()).first - a.begin());
}

}  // namespace

SortedKeyRun* SortedKeyRun::Allocate(size_t size, std::string_view shared_prefix) {
  void* memory = ::operator new(AllocationSize(size, shared_prefix.size()));
  auto* run = new (memory) SortedKeyRun(size, static_cast<uint32_t>(shared_prefix.size()));
  if (!shared_prefix.empty()) {
    std::memcpy(reinterpret_cast<char*>(run->slots() + size), shared_prefix.data(),
                shared_prefix.size());
  }
  return run;
}

void SortedKeyRun::Destroy(void* run) { ::operator delete(run); }

uint64_t SortedKeyRun::OrderBytes(std::string_view key, size_t shared) {
  uint64_t bytes = 0;
  for (size_t i = 0; i < 8; ++i) {
    const size_t at = shared + i;
    bytes = (bytes << 8) | (at < key.size() ? static_cast<unsigned char>(key[at]) : 0u);
  }
  return bytes;
}

SortedKeyRun* SortedKeyRun::Merge(const SortedKeyRun* run, std::span<KeyEntry* const> added) {
  const size_t old_size = run == nullptr ? 0 : run->size();
  if (old_size + added.size() == 0) return Allocate(0, {});
  // Every key lies between the smallest and the largest, so the prefix
  // those two share is the prefix all share.
  std::string_view smallest, largest;
  if (old_size == 0) {
    smallest = added.front()->key();
    largest = added.back()->key();
  } else if (added.empty()) {
    smallest = run->entry(0)->key();
    largest = run->entry(old_size - 1)->key();
  } else {
    smallest = std::min(run->entry(0)->key(), added.front()->key());
    largest = std::max(run->entry(old_size - 1)->key(), added.back()->key());
  }
  // Bounded so the size fits its field; keys are far shorter in practice.
  const size_t shared =
      std::min<size_t>(CommonPrefixSize(smallest, largest), std::numeric_limits<uint32_t>::max());
  SortedKeyRun* merged = Allocate(old_size + added.size(), smallest.substr(0, shared));
  // A shorter shared prefix moves every key's order bytes.
  const bool same_prefix = run != nullptr && run->shared_size_ == shared;
  Slot* out = merged->slots();
  size_t i = 0, j = 0;
  Slot from_run{}, from_added{};
  auto load_run = [&] {
    if (i == old_size) return;
    from_run = run->slots()[i];
    if (!same_prefix) from_run.order_bytes = OrderBytes(from_run.entry->key(), shared);
  };
  auto load_added = [&] {
    if (j == added.size()) return;
    from_added = {OrderBytes(added[j]->key(), shared), added[j]};
  };
  load_run();
  load_added();
  while (i < old_size && j < added.size()) {
    const bool run_first = from_run.order_bytes != from_added.order_bytes
                               ? from_run.order_bytes < from_added.order_bytes
                               : from_run.entry->key() < from_added.entry->key();
    if (run_first) {
      *out++ = from_run;
      ++i;
      load_run();
    } else {
      *out++ = from_added;
      ++j;
      load_added();
    }
  }
  // The rest of whichever part is left, its next slot already loaded.
  for (; i < old_size; ++i, load_run()) *out++ = from_run;
  for (; j < added.size(); ++j, load_added()) *out++ = from_added;
  return merged;
}

uint64_t SortedKeyRun::OrderBytesFor(std::string_view key) const {
  const std::string_view shared = shared_prefix();
  const size_t n = std::min(key.size(), shared.size());
  if (const int c = key.substr(0, n).compare(shared.substr(0, n)); c != 0) {
    return c < 0 ? 0 : std::numeric_limits<uint64_t>::max();
  }
  if (key.size() < shared.size()) return 0;  // a prefix of every key
  return OrderBytes(key, shared.size());
}

size_t SortedKeyRun::LowerBound(std::string_view key) const {
  const uint64_t order = OrderBytesFor(key);
  const Slot* begin = slots();
  const Slot* found = std::partition_point(begin, begin + size_, [&](const Slot& slot) {
    if (slot.order_bytes != order) return slot.order_bytes < order;
    return slot.entry->key() < key;
  });
  return static_cast<size_t>(found - begin);
}

}  // namespace strata::engine
