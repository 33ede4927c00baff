// What the ordered indexes' race tests share: readers that walk in a loop
// while the test's thread writes (WalkingReaders), and what each walk must
// see (EvenKeyWalkCheck).
//
// EvenKeyWalkCheck: what is asked of one reader's walk. The keys are "k" and a number; every even
// key is there before the readers start and stays, odd keys come (and go) meanwhile. A walk from a
// start key must see strictly rising keys, none below the start, and every even key from the start
// on without a gap.
#ifndef STRATA_TESTS_ENGINE_EVEN_KEY_WALK_CHECK_H_
#define STRATA_TESTS_ENGINE_EVEN_KEY_WALK_CHECK_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace strata::engine {

class EvenKeyWalkCheck final {
 public:
  EvenKeyWalkCheck(int from, std::string from_key)
      : from_key_(std::move(from_key)), next_even_(from + from % 2) {}

  void See(std::string_view key) {
    if ((!last_.empty() && key <= last_) || key < from_key_) ++problems_;
    const int number = std::stoi(std::string(key.substr(1)));
    if (number % 2 == 0) {
      if (number != next_even_) ++problems_;  // an even key skipped
      next_even_ = number + 2;
    }
    last_.assign(key);
  }
  // The walk ended; it should have reached every even key below `keys`.
  void EndOfKeys(int keys) {
    if (next_even_ < keys) ++problems_;
  }
  uint64_t problems() const { return problems_; }

 private:
  const std::string from_key_;
  std::string last_;
  int next_even_;  // the even key the walk must see next
  uint64_t problems_ = 0;
};

// Two reader threads, each calling `walk` (with its own random source)
// until Stop(); `walk` returns the problems its walk found.
class WalkingReaders final {
 public:
  explicit WalkingReaders(std::function<uint64_t(std::mt19937_64&)> walk) : walk_(std::move(walk)) {
    for (int r = 0; r < 2; ++r) {
      threads_.emplace_back([this, r] {
        std::mt19937_64 random(r);
        while (!stop_.load(std::memory_order_relaxed)) {
          problems_.fetch_add(walk_(random));
          walks_.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
  }
  ~WalkingReaders() { Stop(); }

  uint64_t walks() const { return walks_.load(); }
  // Stops and joins the readers; returns the problems their walks found.
  uint64_t Stop() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    return problems_.load();
  }

 private:
  const std::function<uint64_t(std::mt19937_64&)> walk_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> walks_{0}, problems_{0};
  std::vector<std::thread> threads_;  // last: started once the fields above exist
};

}  // namespace strata::engine

#endif  // STRATA_TESTS_ENGINE_EVEN_KEY_WALK_CHECK_H_
