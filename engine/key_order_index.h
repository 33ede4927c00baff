// KeyOrderIndex: every key in byte order, for scans; readers never lock.
//
// Two parts, published together as one view:
//   - a SortedKeyRun: the keys as of the last re-layout, in one array, where
//     a scan's cache misses overlap instead of following each other;
//   - a KeySkipList of the keys inserted since, at most a sixteenth of the
//     run (and kMinRelayoutKeys), so a scan merges in few of them.
// When the skip list grows past that, the writer merges both into a new run
// and starts an empty skip list: O(keys) work once per keys/16 inserts, a
// few slot copies per insert on average, done while the writer holds the
// store's write lock (a pause of milliseconds at a million keys). The old
// view, run and skip list are retired through the epoch domain, so a reader
// that loaded them finishes its walk on them; the entries themselves live on.
//
// Entries are never removed (the store keeps a key whose versions are all
// gone, see MvccStore::SweepKey), so a run never points at a freed entry.
#ifndef STRATA_ENGINE_KEY_ORDER_INDEX_H_
#define STRATA_ENGINE_KEY_ORDER_INDEX_H_

#include <atomic>
#include <cstddef>
#include <string_view>

#include "engine/epoch.h"
#include "engine/key_entry.h"
#include "engine/key_skip_list.h"
#include "engine/sorted_key_run.h"

namespace strata::engine {

class KeyOrderIndex final {
 public:
  // Fewest keys the skip list holds before a re-layout.
  static constexpr size_t kMinRelayoutKeys = 1024;

  explicit KeyOrderIndex(EpochDomain* epochs);
  ~KeyOrderIndex();  // frees the run and skip list, never the entries
  KeyOrderIndex(const KeyOrderIndex&) = delete;
  KeyOrderIndex& operator=(const KeyOrderIndex&) = delete;

  // A height for a new entry's skip-list tower. Writer only.
  int RandomHeight() { return view_.load(std::memory_order_relaxed)->recent->RandomHeight(); }

  // Writer only. REQUIRES: no entry with the same key is present.
  void Insert(KeyEntry* entry);
  // Merges the keys inserted since the last re-layout into a new run now.
  // Writer only (Insert calls it when they are many).
  void Relayout();

  // Bytes of the run and skip list (not the entries). Any thread.
  size_t memory_bytes() const { return memory_bytes_.load(std::memory_order_relaxed); }
  // Keys in the run and in the skip list. Writer only.
  size_t run_keys() const { return view_.load(std::memory_order_relaxed)->run->size(); }
  size_t recent_keys() const { return view_.load(std::memory_order_relaxed)->recent_count; }

  // Walks the keys at and after a start key in byte order. REQUIRES: a
  // ReadGuard on the epoch domain, or being the writer, for its lifetime.
  class Cursor final {
   public:
    Cursor(const KeyOrderIndex& index, std::string_view from);
    // The current entry (nullptr: past the last key).
    KeyEntry* entry() const { return current_; }
    void Next();

   private:
    // How far ahead of the walk the run's entries are prefetched (enough
    // misses in flight to cover one's latency, few enough to stay cached),
    // and their version arrays, once the entries have had time to arrive.
    static constexpr size_t kEntriesAhead = 12;
    static constexpr size_t kVersionsAhead = 6;
    void Settle();
    void LocateRecent();

    const SortedKeyRun* run_;
    size_t at_;         // the next run entry
    KeyEntry* recent_;  // the next skip-list entry (nullptr: none)
    // recent_'s order bytes in the run, so that choosing between the two
    // parts rarely reads a key of the run.
    uint64_t recent_order_bytes_ = 0;
    KeyEntry* current_ = nullptr;
    bool current_is_run_ = false;
  };

 private:
  struct View {
    SortedKeyRun* run;
    KeySkipList* recent;
    size_t recent_count;  // writer only
  };

  static size_t MemoryBytes(const View& view) {
    return sizeof(View) + sizeof(KeySkipList) + view.run->memory_bytes();
  }

  EpochDomain* const epochs_;
  std::atomic<View*> view_;
  std::atomic<size_t> memory_bytes_;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_KEY_ORDER_INDEX_H_
