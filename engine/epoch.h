// Epoch-based memory reclamation: how a writer frees memory that lock-free
// readers may still be looking at, without ever waiting for them.
//
// A reader pins the current epoch for the duration of one operation
// (ReadGuard). A writer that unlinks an object hands it to Retire(), which
// stamps it with the epoch at that moment; it is freed only once every pinned
// epoch is newer than that stamp, i.e. once every reader that could have
// reached the object before it was unlinked has finished. Reclamation is
// opportunistic: Retire() frees what has become safe and never blocks.
//
// Why not liburcu (the Debian package the design first reached for)? Its
// 0.13 release in Debian 12 synchronizes through membarrier()/inline fences
// that ThreadSanitizer cannot see, so our concurrency tests could not check
// the reclamation path; every synchronization here is a std::atomic
// operation TSan understands. The domain is an object, not a process-wide
// singleton, so two stores never share state.
#ifndef STRATA_ENGINE_EPOCH_H_
#define STRATA_ENGINE_EPOCH_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/mutex.h"

namespace strata::engine {

class EpochDomain final {
 public:
  // Readers pinned at once; more simply wait for a free slot (a reader only
  // ever waits for other readers, and only past this many at the same time).
  static constexpr size_t kSlots = 128;

  EpochDomain() = default;
  ~EpochDomain();  // frees everything still retired: no reader may be active
  EpochDomain(const EpochDomain&) = delete;
  EpochDomain& operator=(const EpochDomain&) = delete;

  // Pins the epoch for the guard's lifetime. Cheap: one uncontended
  // compare-exchange on a cache line of the reader's own.
  class ReadGuard final {
   public:
    explicit ReadGuard(const EpochDomain& domain);
    ~ReadGuard();
    ReadGuard(const ReadGuard&) = delete;
    ReadGuard& operator=(const ReadGuard&) = delete;

   private:
    std::atomic<uint64_t>* slot_;
  };

  // Frees `object` with `deleter` once no reader can reach it. REQUIRES: the
  // object is already unlinked from every shared structure.
  void Retire(void* object, void (*deleter)(void*));

  template <typename T>
  void RetireObject(T* object) {
    Retire(object, [](void* p) { delete static_cast<T*>(p); });
  }

  // Objects retired but not yet freed (for tests and stats).
  size_t pending() const;

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> pinned_epoch{0};  // 0: free
  };
  struct Retired {
    void* object;
    void (*deleter)(void*);
    uint64_t epoch;
  };

  // Advances the epoch and frees what every pinned reader is past.
  void ReclaimLocked() STRATA_REQUIRES(mutex_);

  mutable std::array<Slot, kSlots> slots_{};
  std::atomic<uint64_t> epoch_{1};

  mutable Mutex mutex_;  // writers only; readers never take it
  std::vector<Retired> retired_ STRATA_GUARDED_BY(mutex_);
  size_t reclaim_threshold_ STRATA_GUARDED_BY(mutex_) = 64;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_EPOCH_H_
