// RecordingWatchSink: a watch stream's queue in a test, which keeps every
// response a hub offers until the test drains them (a client reading), and
// refuses events past `bound` undrained responses (a full stream).
#ifndef STRATA_TESTS_SUPPORT_RECORDING_WATCH_SINK_H_
#define STRATA_TESTS_SUPPORT_RECORDING_WATCH_SINK_H_

#include <cstddef>
#include <mutex>
#include <utility>
#include <vector>

#include "service/watch_hub.h"

namespace strata::service {

class RecordingWatchSink final : public WatchSink {
 public:
  explicit RecordingWatchSink(size_t bound = 1'000'000) : bound_(bound) {}
  bool Offer(WatchResponse r, bool must) override {
    std::lock_guard lock(mu_);
    if (!must && pending_ >= bound_) return false;
    ++pending_;
    responses_.push_back(std::move(r));
    return true;
  }
  // Takes everything queued so far (a client reading).
  std::vector<WatchResponse> Drain() {
    std::lock_guard lock(mu_);
    pending_ = 0;
    return std::move(responses_);
  }

 private:
  std::mutex mu_;
  size_t bound_;
  size_t pending_ = 0;
  std::vector<WatchResponse> responses_;
};

}  // namespace strata::service

#endif  // STRATA_TESTS_SUPPORT_RECORDING_WATCH_SINK_H_
