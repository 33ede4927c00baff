// CommitPipeline with a log: nothing becomes visible or acknowledged before
// the log says it is durable, in order, and a failed log fails the waiters.
#include "service/commit_pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace strata::service {
namespace {

struct FakeLog {
  std::atomic<uint64_t> durable{0};
  std::atomic<bool> failed{false};
  DurabilitySource source() {
    return {[this] { return durable.load(); },
            [this]() -> std::optional<std::string> {
              if (failed) return std::string("disk on fire");
              return std::nullopt;
            }};
  }
};

template <typename Pred>
bool Eventually(Pred p) {
  for (int i = 0; i < 500; ++i) {
    if (p()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return p();
}

TEST(CommitPipelineTest, VisibleAndAcknowledgedOnlyOnceDurableInOrder) {
  FakeLog log;
  CommitPipeline p(log.source(), 1);
  std::vector<int64_t> published;
  std::mutex mu;
  p.SetEventSink([&](int64_t rev, std::vector<Event>&&) {
    std::lock_guard lock(mu);
    published.push_back(rev);
  });
  std::atomic<int> acked{0};
  p.Applied(2, 10, {});
  p.WhenDurable([&](bool ok) { acked += ok ? 1 : 100; });
  p.Applied(3, 11, {});
  p.WhenDurable([&](bool ok) { acked += ok ? 1 : 100; });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(p.visible_revision(), 1);
  EXPECT_EQ(acked.load(), 0);
  log.durable = 10;
  p.Wake();
  ASSERT_TRUE(Eventually([&] { return acked.load() == 1; }));
  EXPECT_EQ(p.visible_revision(), 2);
  log.durable = 11;
  p.Wake();
  ASSERT_TRUE(Eventually([&] { return acked.load() == 2; }));
  EXPECT_EQ(p.visible_revision(), 3);
  std::lock_guard lock(mu);
  EXPECT_EQ(published, (std::vector<int64_t>{2, 3}));
}

TEST(CommitPipelineTest, AFailedLogFailsWhatWaits) {
  FakeLog log;
  CommitPipeline p(log.source(), 1);
  std::atomic<int> failed{0};
  p.Applied(2, 5, {});
  p.WhenDurable([&](bool ok) { failed += ok ? 0 : 1; });
  log.failed = true;
  p.Wake();
  ASSERT_TRUE(Eventually([&] { return failed.load() == 1; }));
  EXPECT_EQ(p.visible_revision(), 1) << "what never became durable never became visible";
}

TEST(CommitPipelineTest, StoppingFailsWhatStillWaits) {
  FakeLog log;
  std::atomic<int> failed{0};
  {
    CommitPipeline p(log.source(), 1);
    p.Applied(2, 5, {});
    p.WhenDurable([&](bool ok) { failed += ok ? 0 : 1; });
  }
  EXPECT_EQ(failed.load(), 1);
}

}  // namespace
}  // namespace strata::service
