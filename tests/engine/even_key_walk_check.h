// EvenKeyWalkCheck: what the ordered indexes' race tests ask of one
// reader's walk. The keys are "k" and a number; every even key is there
// before the readers start and stays, odd keys come (and go) meanwhile.
// A walk from a start key must see strictly rising keys, none below the
// start, and every even key from the start on without a gap.
#ifndef STRATA_TESTS_ENGINE_EVEN_KEY_WALK_CHECK_H_
#define STRATA_TESTS_ENGINE_EVEN_KEY_WALK_CHECK_H_

#include <cstdint>
#include <string>
#include <string_view>

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

}  // namespace strata::engine

#endif  // STRATA_TESTS_ENGINE_EVEN_KEY_WALK_CHECK_H_
