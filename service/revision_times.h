// RevisionTimes: roughly when each revision was committed, so a revision
// can be given an age ("the low-water mark is 40 minutes old").
//
// It keeps one sample a second at most (when the second's first commit came,
// and its newest revision), in a ring of kSamples (about an hour of steady
// writes; much longer where writes pause). An age is then at most a second
// too long; for revisions older than the oldest sample it is a lower bound
// (the oldest sample's age).
#ifndef STRATA_SERVICE_REVISION_TIMES_H_
#define STRATA_SERVICE_REVISION_TIMES_H_

#include <chrono>
#include <cstdint>
#include <deque>

#include "base/mutex.h"

namespace strata::service {

class RevisionTimes {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kSamples = 4096;

  explicit RevisionTimes(int64_t revision_at_start, Clock::time_point now = Clock::now());
  // `revision` was committed at `now` (called for every commit; cheap).
  void Note(int64_t revision, Clock::time_point now = Clock::now());
  // How long ago `revision` was committed (zero for revisions after the
  // last sample: less than a second ago).
  Clock::duration Age(int64_t revision, Clock::time_point now = Clock::now()) const;

 private:
  struct Sample {
    Clock::time_point at;
    int64_t revision;
  };
  mutable Mutex mu_;
  std::deque<Sample> samples_ STRATA_GUARDED_BY(mu_);  // ascending in time and revision
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_REVISION_TIMES_H_
