// WorkerFailures: collects invariant violations from worker threads.
//
// GoogleTest assertions are thread-safe, but a broken invariant in a hot
// loop would print millions of times; this keeps the first few messages and
// a count, and reports them from the test's own thread.
#ifndef STRATA_TESTS_SUPPORT_WORKER_FAILURES_H_
#define STRATA_TESTS_SUPPORT_WORKER_FAILURES_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace strata::testing {

class WorkerFailures final {
 public:
  void Add(std::string message) {
    std::lock_guard lock(mutex_);
    if (messages_.size() < kKept) messages_.push_back(std::move(message));
    ++count_;
  }

  // Call from the test thread once the workers have joined.
  void Report() const {
    std::lock_guard lock(mutex_);
    for (const std::string& m : messages_) ADD_FAILURE() << m;
    EXPECT_EQ(count_, 0u) << "failures in worker threads (first " << messages_.size()
                          << " shown above)";
  }

  bool any() const {
    std::lock_guard lock(mutex_);
    return count_ > 0;
  }

 private:
  static constexpr size_t kKept = 10;
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
  uint64_t count_ = 0;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_SUPPORT_WORKER_FAILURES_H_
