// ForwardedCalls: one run per (sender, id), answers for late copies,
// refusal of copies older than the window, bounded memory.
#include "cluster/forwarded_calls.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata::cluster {
namespace forwarded_calls_test {

using std::chrono::milliseconds;

class ForwardedCallsTest : public ::testing::Test {
 protected:
  // The id of a forward first sent at `sent_ms`.
  static uint64_t Id(uint64_t sent_ms, uint64_t n = 0) { return (sent_ms << 20) + n; }
  // Serves one copy; the run answers `answer` at once unless it is empty.
  void Serve(const std::string& from, uint64_t id, uint64_t now_ms,
             const std::string& answer = "ok") {
    calls_.Serve(
        from, id, now_ms, [this](PeerReply r) { replies_.push_back(r); },
        [this, answer](ForwardedCalls::Respond respond) {
          ++runs_;
          if (answer.empty()) return held_.push_back(std::move(respond));
          respond(ForwardReply{answer});
        });
  }
  // The code of reply i's refusal (kOk: not a refusal).
  StatusCode Code(size_t i) const {
    const auto* e = std::get_if<PeerError>(&replies_.at(i));
    return e == nullptr ? StatusCode::kOk : e->status.code();
  }
  std::string Text(size_t i) const {
    if (const auto* f = std::get_if<ForwardReply>(&replies_.at(i))) return f->reply;
    return "error: " + std::get<PeerError>(replies_.at(i)).status.message();
  }

  ForwardedCallsOptions options_{milliseconds(15000), milliseconds(7000), 100};
  ForwardedCalls calls_{500, options_};
  std::vector<PeerReply> replies_;
  std::vector<ForwardedCalls::Respond> held_;
  int runs_ = 0;
};

TEST_F(ForwardedCallsTest, IdsRiseAndSayWhenTheyWereMade) {
  const uint64_t a = ForwardedCalls::IdAt(5000, 0);
  const uint64_t b = ForwardedCalls::IdAt(5000, a);
  const uint64_t c = ForwardedCalls::IdAt(4000, b);  // the wall clock went back
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(ForwardedCalls::FirstSentMillis(a), 5000u);
  EXPECT_EQ(ForwardedCalls::FirstSentMillis(c), 5000u);
}

TEST_F(ForwardedCallsTest, ACopyFirstSentBeforeThisMemberStartedIsNotRun) {
  Serve("a", Id(499), 600);  // this member started at 500: an earlier run may have run it
  EXPECT_EQ(runs_, 0);
  EXPECT_NE(Text(0).find("before this member restarted"), std::string::npos);
  // It may have run: not "try another replica" (kUnavailable).
  EXPECT_EQ(Code(0), StatusCode::kIoError);
  Serve("a", Id(500), 600);
  EXPECT_EQ(runs_, 1);
}

TEST_F(ForwardedCallsTest, IdZeroRunsEveryTime) {
  Serve("a", 0, 1000);
  Serve("a", 0, 1000);
  EXPECT_EQ(runs_, 2);
  EXPECT_EQ(calls_.remembered(), 0u);
}

TEST_F(ForwardedCallsTest, ALateCopyGetsTheFirstAnswerUntilCopiesAreTooOld) {
  Serve("a", Id(1000), 1000, "first");
  Serve("a", Id(1000), 7999, "second");
  EXPECT_EQ(runs_, 1);
  EXPECT_EQ(Text(1), "first");
  Serve("a", Id(1000), 8001);
  EXPECT_EQ(Text(2), "first");
  // A copy of a forward not seen yet is refused past 7 s from its first
  // send (its first copy may have come and been forgotten); at 15 s from
  // its first copy a call is forgotten.
  Serve("a", Id(1000, 1), 8001);
  EXPECT_NE(Text(3).find("arrived more than 7000 ms after it was first sent"), std::string::npos);
  EXPECT_EQ(Code(3), StatusCode::kUnavailable);  // not run anywhere: safe to send elsewhere
  Serve("b", Id(16001), 16001);                  // any call expires what is due
  EXPECT_EQ(calls_.remembered(), 1u);
  EXPECT_EQ(runs_, 2);  // a's once, b's once
}

TEST_F(ForwardedCallsTest, ACopyWhileTheFirstRunsWaitsForItsAnswer) {
  Serve("a", Id(1000), 1000, "");
  Serve("a", Id(1000), 1100, "");
  EXPECT_EQ(runs_, 1);
  EXPECT_TRUE(replies_.empty());
  // Still running past the retention: still remembered.
  Serve("b", Id(20000), 20000);
  EXPECT_EQ(calls_.remembered(), 2u);
  ASSERT_EQ(held_.size(), 1u);
  held_[0](ForwardReply{"late"});
  ASSERT_EQ(replies_.size(), 3u);  // b's, then a's two copies
  EXPECT_EQ(Text(1), "late");
  EXPECT_EQ(Text(2), "late");
  EXPECT_EQ(calls_.duplicates(), 1u);
}

TEST_F(ForwardedCallsTest, AnswersPastTheByteBoundAreDroppedNeverRunAgain) {
  Serve("a", Id(1000, 1), 1000, std::string(60, 'x'));
  Serve("a", Id(1000, 2), 1000, std::string(60, 'y'));  // 120 bytes > 100: the first goes
  EXPECT_EQ(calls_.kept_bytes(), 60u);
  Serve("a", Id(1000, 1), 1001);
  Serve("a", Id(1000, 2), 1001);
  EXPECT_EQ(runs_, 2);
  EXPECT_NE(Text(2).find("outcome is unknown"), std::string::npos);
  EXPECT_EQ(Code(2), StatusCode::kIoError);
  EXPECT_EQ(Text(3), std::string(60, 'y'));
  Serve("z", Id(17000), 17000);
  EXPECT_EQ(calls_.kept_bytes(), 2u);  // only z's "ok"
  EXPECT_EQ(calls_.remembered(), 1u);
}

}  // namespace forwarded_calls_test
}  // namespace strata::cluster
