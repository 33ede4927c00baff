// Timestamp: the position of a version on a key's timeline.
//
// A distinct type rather than a bare integer so that a timestamp cannot be
// confused with a version number or a count, and so that a later hybrid
// logical clock can change its representation behind the same interface.
// The valid range is [0, 2^63-1], as the wire protocol promises.
#ifndef STRATA_TIMESTAMP_H_
#define STRATA_TIMESTAMP_H_

#include <compare>
#include <cstdint>

namespace strata {

class Timestamp final {
 public:
  static constexpr uint64_t kMaxValue = (uint64_t{1} << 63) - 1;

  constexpr Timestamp() = default;
  constexpr explicit Timestamp(uint64_t value) : value_(value) {}

  static constexpr Timestamp Min() { return Timestamp(0); }
  static constexpr Timestamp Max() { return Timestamp(kMaxValue); }

  constexpr uint64_t value() const { return value_; }

  friend constexpr auto operator<=>(Timestamp, Timestamp) = default;

 private:
  uint64_t value_ = 0;
};

}  // namespace strata

#endif  // STRATA_TIMESTAMP_H_
