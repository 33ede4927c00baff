#include "service/revision_times.h"

#include <algorithm>

namespace strata::service {

RevisionTimes::RevisionTimes(int64_t revision_at_start, Clock::time_point now) {
  samples_.push_back({now, revision_at_start});
}

void RevisionTimes::Note(int64_t revision, Clock::time_point now) {
  MutexLock lock(mu_);
  Sample& last = samples_.back();
  if (now - last.at < std::chrono::seconds(1)) {
    // Within the second: the sample stands for every revision of it, timed
    // at its start (so an age is at most a second too long, never short).
    last.revision = std::max(last.revision, revision);
    return;
  }
  samples_.push_back({now, std::max(last.revision, revision)});
  if (samples_.size() > kSamples) samples_.pop_front();
}

RevisionTimes::Clock::duration RevisionTimes::Age(int64_t revision, Clock::time_point now) const {
  MutexLock lock(mu_);
  // The first sample whose revision reaches `revision`: the second in which
  // it was committed (every commit is noted).
  auto it = std::lower_bound(samples_.begin(), samples_.end(), revision,
                             [](const Sample& s, int64_t r) { return s.revision < r; });
  if (it == samples_.end()) return Clock::duration::zero();
  return std::max(Clock::duration::zero(), now - it->at);
}

}  // namespace strata::service
