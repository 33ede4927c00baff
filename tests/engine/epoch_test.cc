// EpochDomain on its own: what it frees, when, and what it holds back for a
// pinned reader (the store's tests reach it only through MvccStore).
#include "engine/epoch.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace strata::engine {
namespace {

// Counts its own destruction, so a test sees exactly when it was freed.
struct Tracked {
  explicit Tracked(std::atomic<int>* freed_count) : freed(freed_count) {}
  ~Tracked() { freed->fetch_add(1); }
  std::atomic<int>* freed;
};

// Enough retires that the domain reclaims at least once more (its
// threshold is 64 and doubles with what readers hold back).
void RetireFillers(EpochDomain& epochs, std::atomic<int>* freed, int count = 256) {
  for (int i = 0; i < count; ++i) epochs.RetireObject(new Tracked(freed));
}

TEST(EpochDomainTest, WithNoReaderRetiredObjectsAreFreedInBatches) {
  std::atomic<int> freed{0};
  EpochDomain epochs;
  for (int i = 0; i < 63; ++i) epochs.RetireObject(new Tracked(&freed));
  EXPECT_EQ(freed.load(), 0) << "freed lazily, not on every retire";
  EXPECT_EQ(epochs.pending(), 63u);
  epochs.RetireObject(new Tracked(&freed));
  EXPECT_EQ(freed.load(), 64) << "the 64th retire reclaims everything no reader holds";
  EXPECT_EQ(epochs.pending(), 0u);
}

TEST(EpochDomainTest, APinnedReaderHoldsBackWhatWasRetiredWhileItWasPinned) {
  std::atomic<int> held_freed{0}, fillers_freed{0};
  EpochDomain epochs;
  {
    EpochDomain::ReadGuard reader(epochs);
    epochs.RetireObject(new Tracked(&held_freed));
    RetireFillers(epochs, &fillers_freed, 1000);
    EXPECT_EQ(held_freed.load(), 0) << "the reader might still be looking at it";
    EXPECT_EQ(fillers_freed.load(), 0) << "retired after the reader pinned: held too";
    EXPECT_GE(epochs.pending(), 1001u);
  }
  // The next reclaim comes after twice as many retires as were held back
  // (so a held-back list is not rescanned on every retire).
  int retired = 0;
  while (held_freed.load() == 0 && retired < 10'000) {
    RetireFillers(epochs, &fillers_freed, 1);
    ++retired;
  }
  EXPECT_EQ(held_freed.load(), 1) << "the reader left: freed at the next reclaim";
  EXPECT_LE(retired, 2100);
  EXPECT_EQ(epochs.pending(), 0u) << "nobody is pinned: everything went";
  EXPECT_EQ(fillers_freed.load(), 1000 + retired);
}

TEST(EpochDomainTest, AReaderPinnedLaterDoesNotHoldBackWhatWasRetiredBefore) {
  std::atomic<int> before_freed{0}, after_freed{0}, fillers_freed{0};
  EpochDomain epochs;
  auto first = std::make_unique<EpochDomain::ReadGuard>(epochs);
  epochs.RetireObject(new Tracked(&before_freed));
  RetireFillers(epochs, &fillers_freed, 100);  // a reclaim: the epoch moves on
  EXPECT_EQ(before_freed.load(), 0) << "the first reader holds it";
  EpochDomain::ReadGuard second(epochs);  // pinned at the newer epoch
  epochs.RetireObject(new Tracked(&after_freed));
  first.reset();
  RetireFillers(epochs, &fillers_freed, 1000);
  EXPECT_EQ(before_freed.load(), 1) << "the second reader cannot reach what went before it";
  EXPECT_EQ(after_freed.load(), 0) << "retired while the second reader is pinned";
}

TEST(EpochDomainTest, TheDomainFreesWhatIsStillPendingWhenItGoes) {
  std::atomic<int> freed{0};
  {
    EpochDomain epochs;
    for (int i = 0; i < 10; ++i) epochs.RetireObject(new Tracked(&freed));
    EXPECT_EQ(freed.load(), 0);
  }
  EXPECT_EQ(freed.load(), 10);
}

TEST(EpochDomainTest, AReaderPastEverySlotWaitsForOneToFree) {
  EpochDomain epochs;
  std::vector<std::unique_ptr<EpochDomain::ReadGuard>> guards;
  for (size_t i = 0; i < EpochDomain::kSlots; ++i) {
    guards.push_back(std::make_unique<EpochDomain::ReadGuard>(epochs));
  }
  std::atomic<bool> pinned{false};
  std::thread late([&] {
    EpochDomain::ReadGuard guard(epochs);
    pinned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(pinned.load()) << "every slot is taken";
  guards.pop_back();
  late.join();
  EXPECT_TRUE(pinned.load());
}

// Readers load a shared pointer and read through it while a writer replaces
// and retires it: no reader ever sees a freed object (ASan and TSan watch
// this test; the poison check catches a plain build's reuse).
TEST(EpochDomainTest, ReadersNeverSeeAnObjectFreedUnderThem) {
  constexpr uint64_t kAlive = 0xA11CE;
  struct Node {
    uint64_t magic = kAlive;
    uint64_t serial = 0;
    ~Node() { magic = 0; }
  };
  EpochDomain epochs;
  std::atomic<Node*> shared{new Node{}};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      uint64_t last = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        EpochDomain::ReadGuard guard(epochs);
        const Node* node = shared.load(std::memory_order_acquire);
        if (node->magic != kAlive || node->serial < last) bad.fetch_add(1);
        last = node->serial;
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  uint64_t serial = 0;
  while (std::chrono::steady_clock::now() < until || reads.load() < 1000) {
    Node* next = new Node{};
    next->serial = ++serial;
    Node* old = shared.exchange(next, std::memory_order_acq_rel);
    epochs.RetireObject(old);
  }
  stop = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(serial, 1000u);
  delete shared.load();
}

}  // namespace
}  // namespace strata::engine
