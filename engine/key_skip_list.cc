#include "engine/key_skip_list.h"

#include <cstring>
#include <new>

namespace strata::engine {

KeySkipList::KeySkipList() {
  for (auto& link : head_) link.store(nullptr, std::memory_order_relaxed);
}

KeySkipList::~KeySkipList() {
  const Node* node = First();
  while (node != nullptr) {
    const Node* next = Next(node);
    ::operator delete(const_cast<Node*>(node));
    node = next;
  }
}

int KeySkipList::RandomHeight() {
  int height = 1;
  while (height < kMaxHeight && rng_() % 4 == 0) ++height;
  return height;
}

const KeySkipList::Node* KeySkipList::Seek(std::string_view key) const {
  const std::atomic<Node*>* links = head_.data();  // the current node's tower
  const Node* next = nullptr;
  for (int level = height_.load(std::memory_order_acquire) - 1; level >= 0; --level) {
    for (;;) {
      next = links[level].load(std::memory_order_acquire);
      if (next == nullptr || next->key() >= key) break;
      links = next->tower();
    }
  }
  // The node compared at level 0, not the link loaded again: the writer
  // may have inserted a smaller key behind it since.
  return next;
}

void KeySkipList::FindPredecessors(std::string_view key, Predecessors* preds) {
  std::atomic<Node*>* links = head_.data();
  for (int level = kMaxHeight - 1; level >= 0; --level) {
    for (;;) {
      Node* next = links[level].load(std::memory_order_relaxed);
      if (next == nullptr || next->key() >= key) break;
      links = next->tower();
    }
    (*preds)[level] = &links[level];
  }
}

void KeySkipList::Insert(KeyEntry* entry) {
  const std::string_view key = entry->key();
  const int height = RandomHeight();
  const size_t bytes = Node::AllocationSize(key.size(), height);
  void* memory = ::operator new(bytes);
  Node* node = new (memory) Node(entry, static_cast<uint32_t>(key.size()), height);
  for (int i = 0; i < height; ++i) new (&node->tower()[i]) std::atomic<Node*>(nullptr);
  if (!key.empty()) std::memcpy(node->key_bytes(), key.data(), key.size());

  Predecessors preds;
  FindPredecessors(key, &preds);
  if (height > height_.load(std::memory_order_relaxed)) {
    // Readers that see the new height before the links find nullptr at the
    // new levels of head_ and simply descend.
    height_.store(height, std::memory_order_release);
  }
  // Bottom-up: once the node is reachable at level 0 it is in the list;
  // higher levels only make it faster to find.
  for (int level = 0; level < height; ++level) {
    node->tower()[level].store(preds[level]->load(std::memory_order_relaxed),
                               std::memory_order_relaxed);
    preds[level]->store(node, std::memory_order_release);
  }
  ++size_;
  node_bytes_ += bytes;
}

}  // namespace strata::engine
