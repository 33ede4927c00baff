// KeySkipList: the keys written since the ordered index's last re-layout
// (key_order_index.h), in byte order; lock-free for readers.
//
// A skip list in the style of LevelDB's memtable: one writer, any number of
// readers, next pointers published with release stores. Insert only: a
// list lives until the next re-layout, which moves its keys into a sorted
// run and retires the list whole through the epoch domain.
//
// Its nodes are its own, not the key entries: a node holds its tower and a
// copy of its key, so a seek compares keys without loading any entry, and
// an entry, once its key is in a run, carries no tower it no longer uses.
// Hand-written because the Debian candidates either synchronize invisibly
// to ThreadSanitizer (liburcu) or bring their own process-wide garbage
// collector (libcds); this one shares the store's.
#ifndef STRATA_ENGINE_KEY_SKIP_LIST_H_
#define STRATA_ENGINE_KEY_SKIP_LIST_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>

#include "engine/key_entry.h"

namespace strata::engine {

class KeySkipList final {
 public:
  static constexpr int kMaxHeight = 20;

  class Node final {
   public:
    KeyEntry* entry() const { return entry_; }
    std::string_view key() const { return {key_bytes(), key_size_}; }
    int height() const { return height_; }

   private:
    friend class KeySkipList;
    Node(KeyEntry* entry, uint32_t key_size, int height)
        : entry_(entry), key_size_(key_size), height_(static_cast<uint8_t>(height)) {}
    static size_t AllocationSize(size_t key_bytes, int height) {
      return sizeof(Node) + sizeof(std::atomic<Node*>) * height + key_bytes;
    }
    std::atomic<Node*>* tower() { return reinterpret_cast<std::atomic<Node*>*>(this + 1); }
    const std::atomic<Node*>* tower() const {
      return reinterpret_cast<const std::atomic<Node*>*>(this + 1);
    }
    char* key_bytes() { return reinterpret_cast<char*>(tower() + height_); }
    const char* key_bytes() const { return reinterpret_cast<const char*>(tower() + height_); }

    KeyEntry* entry_;
    uint32_t key_size_;
    uint8_t height_;
  };

  KeySkipList();
  ~KeySkipList();  // frees the nodes, never the entries
  KeySkipList(const KeySkipList&) = delete;
  KeySkipList& operator=(const KeySkipList&) = delete;

  // The first node whose key is >= `key` (nullptr: none).
  // REQUIRES: a ReadGuard on the epoch domain, or being the writer.
  const Node* Seek(std::string_view key) const;
  const Node* First() const { return head_[0].load(std::memory_order_acquire); }
  static const Node* Next(const Node* node) {
    return node->tower()[0].load(std::memory_order_acquire);
  }

  // Writer only. REQUIRES: no entry with the same key is present.
  void Insert(KeyEntry* entry);

  // Keys inserted, and the bytes of their nodes. Writer only.
  size_t size() const { return size_; }
  size_t memory_bytes() const { return node_bytes_; }

  // A height for a new node: geometric, 1 in 4 per level. Writer only;
  // public for the test of its distribution.
  int RandomHeight();

 private:
  using Predecessors = std::array<std::atomic<Node*>*, kMaxHeight>;
  // Finds, at every level, the link that points at the first node >= key.
  // Writer only.
  void FindPredecessors(std::string_view key, Predecessors* links);

  std::array<std::atomic<Node*>, kMaxHeight> head_{};
  std::atomic<int> height_{1};    // levels in use; read by readers
  std::minstd_rand rng_{0x5eed};  // writer only
  size_t size_ = 0;               // writer only
  size_t node_bytes_ = 0;         // writer only
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_KEY_SKIP_LIST_H_
