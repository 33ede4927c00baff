#include "engine/key_order_index.h"

#include <algorithm>
#include <vector>

namespace strata::engine {

KeyOrderIndex::KeyOrderIndex(EpochDomain* epochs)
    : epochs_(epochs),
      view_(new View{SortedKeyRun::Merge(nullptr, {}), new KeySkipList(), 0}),
      memory_bytes_(MemoryBytes(*view_.load(std::memory_order_relaxed))) {}

KeyOrderIndex::~KeyOrderIndex() {
  View* view = view_.load(std::memory_order_relaxed);
  SortedKeyRun::Destroy(view->run);
  delete view->recent;
  delete view;
}

void KeyOrderIndex::Insert(KeyEntry* entry) {
  View* view = view_.load(std::memory_order_relaxed);
  view->recent->Insert(entry);
  ++view->recent_count;
  if (view->recent_count >= std::max(kMinRelayoutKeys, view->run->size() / 16)) Relayout();
}

void KeyOrderIndex::Relayout() {
  View* old = view_.load(std::memory_order_relaxed);
  std::vector<KeyEntry*> recent;
  recent.reserve(old->recent_count);
  for (KeyEntry* e = old->recent->First(); e != nullptr; e = KeySkipList::Next(e)) {
    recent.push_back(e);
  }
  // The new view is complete before it is published; a reader sees either
  // view whole. The entries' towers in the old skip list are never written
  // again (new keys go to the new one), so a reader still on it walks on.
  View* view = new View{SortedKeyRun::Merge(old->run, recent), new KeySkipList(), 0};
  view_.store(view, std::memory_order_release);
  memory_bytes_.store(MemoryBytes(*view), std::memory_order_relaxed);
  epochs_->Retire(old->run, &SortedKeyRun::Destroy);
  epochs_->RetireObject(old->recent);
  epochs_->RetireObject(old);
}

KeyOrderIndex::Cursor::Cursor(const KeyOrderIndex& index, std::string_view from) {
  const View* view = index.view_.load(std::memory_order_acquire);
  run_ = view->run;
  at_ = run_->LowerBound(from);
  const size_t ahead = std::min(at_ + kEntriesAhead, run_->size());
  for (size_t i = at_; i < ahead; ++i) run_->PrefetchEntry(i);
  recent_ = view->recent->Seek(from);
  LocateRecent();
  Settle();
}

void KeyOrderIndex::Cursor::Next() {
  if (current_ == nullptr) return;
  if (current_is_run_) {
    if (at_ + kEntriesAhead < run_->size()) run_->PrefetchEntry(at_ + kEntriesAhead);
    if (at_ + kVersionsAhead < run_->size()) run_->PrefetchVersions(at_ + kVersionsAhead);
    ++at_;
  } else {
    recent_ = KeySkipList::Next(recent_);
    LocateRecent();
  }
  Settle();
}

void KeyOrderIndex::Cursor::LocateRecent() {
  if (recent_ != nullptr) recent_order_bytes_ = run_->OrderBytesFor(recent_->key());
}

void KeyOrderIndex::Cursor::Settle() {
  if (at_ == run_->size()) {
    current_is_run_ = false;
  } else if (recent_ == nullptr) {
    current_is_run_ = true;
  } else if (const uint64_t order = run_->order_bytes(at_); order != recent_order_bytes_) {
    current_is_run_ = order < recent_order_bytes_;
  } else {
    // No key is in both parts, so the smaller is strictly smaller.
    current_is_run_ = run_->entry(at_)->key() < recent_->key();
  }
  current_ = current_is_run_ ? run_->entry(at_) : recent_;
}

}  // namespace strata::engine
