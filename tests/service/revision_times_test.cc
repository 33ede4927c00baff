// RevisionTimes: a revision's age from one sample a second, bounded memory.
#include "service/revision_times.h"

#include <gtest/gtest.h>

namespace strata::service {
namespace {

using namespace std::chrono_literals;
using Clock = RevisionTimes::Clock;

TEST(RevisionTimesTest, AgesWithinASecond) {
  const Clock::time_point t0{};
  RevisionTimes times(1, t0);
  times.Note(5, t0 + 10s);
  times.Note(6, t0 + 10s + 300ms);  // same second: timed at the second's start
  times.Note(9, t0 + 20s);
  const auto now = t0 + 30s;
  EXPECT_EQ(times.Age(1, now), 30s);  // at start
  EXPECT_EQ(times.Age(3, now), 20s);  // not noted: taken as the next sample's
  EXPECT_EQ(times.Age(6, now), 20s);
  EXPECT_EQ(times.Age(7, now), 10s);
  EXPECT_EQ(times.Age(9, now), 10s);
  EXPECT_EQ(times.Age(10, now), 0s);  // not committed yet as far as it knows
}

TEST(RevisionTimesTest, KeepsABoundedNumberOfSamples) {
  const Clock::time_point t0{};
  RevisionTimes times(0, t0);
  for (int i = 1; i <= 10000; ++i) times.Note(i, t0 + std::chrono::seconds(i));
  const auto now = t0 + 10000s;
  // The oldest kept sample is revision 10000 - 4095: older revisions get its age.
  EXPECT_EQ(times.Age(10000 - 4095, now), 4095s);
  EXPECT_EQ(times.Age(1, now), 4095s);
  EXPECT_EQ(times.Age(10000, now), 0s);
}

}  // namespace
}  // namespace strata::service
