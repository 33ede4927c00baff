#include "engine/key_skip_list.h"

namespace strata::engine {

KeySkipList::KeySkipList() {
  for (auto& link : head_) link.store(nullptr, std::memory_order_relaxed);
}

int KeySkipList::RandomHeight() {
  int height = 1;
  while (height < KeyEntry::kMaxHeight && rng_() % 4 == 0) ++height;
  return height;
}

KeyEntry* KeySkipList::Seek(std::string_view key) const {
  const std::atomic<KeyEntry*>* links = head_.data();  // the current node's tower
  KeyEntry* next = nullptr;
  for (int level = height_.load(std::memory_order_acquire) - 1; level >= 0; --level) {
    for (;;) {
      next = links[level].load(std::memory_order_acquire);
      if (next == nullptr || next->key() >= key) break;
      links = &next->next(0);  // descend from `next`: its tower starts at next(0)
    }
  }
  // The entry compared at level 0, not the link loaded again: the writer
  // may have inserted a smaller key behind it since.
  return next;
}

void KeySkipList::FindPredecessors(std::string_view key, Predecessors* preds) {
  std::atomic<KeyEntry*>* links = head_.data();
  for (int level = KeyEntry::kMaxHeight - 1; level >= 0; --level) {
    for (;;) {
      KeyEntry* next = links[level].load(std::memory_order_relaxed);
      if (next == nullptr || next->key() >= key) break;
      links = &next->next(0);
    }
    (*preds)[level] = &links[level];
  }
}

void KeySkipList::Insert(KeyEntry* entry) {
  Predecessors preds;
  FindPredecessors(entry->key(), &preds);
  int height = entry->height();
  if (height > height_.load(std::memory_order_relaxed)) {
    // Readers that see the new height before the links find nullptr at the
    // new levels of head_ and simply descend.
    height_.store(height, std::memory_order_release);
  }
  // Bottom-up: once the entry is reachable at level 0 it is in the index;
  // higher levels only make it faster to find.
  for (int level = 0; level < height; ++level) {
    entry->next(level).store(preds[level]->load(std::memory_order_relaxed),
                             std::memory_order_relaxed);
    preds[level]->store(entry, std::memory_order_release);
  }
}

void KeySkipList::Remove(KeyEntry* entry) {
  Predecessors preds;
  FindPredecessors(entry->key(), &preds);
  // Top-down, so the entry stays reachable at level 0 until last; the
  // entry's own next pointers are left as they are for readers on it.
  for (int level = entry->height() - 1; level >= 0; --level) {
    if (preds[level]->load(std::memory_order_relaxed) == entry) {
      preds[level]->store(entry->next(level).load(std::memory_order_relaxed),
                          std::memory_order_release);
    }
  }
}

}  // namespace strata::engine
