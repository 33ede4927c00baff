// Automatic garbage collection (--gc-retention N, PROTOCOL.md section 3): the
// horizon follows the highest timestamp seen minus N, and what falls below
// it is removed without anyone calling mvcc_compact.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "node_test_fixture.h"

namespace strata::testing {
namespace {

class GcRetentionTest : public NodeTest {
 protected:
  std::vector<std::string> NodeArgs() const override { return {"--gc-retention", "100"}; }
};

TEST_F(GcRetentionTest, HorizonFollowsMaxTimestampAndOldVersionsGo) {
  const std::vector<std::string> keys = {R"("k0")", R"("k1")", "2"};
  for (int64_t ts = 100; ts <= 1000; ts += 100) {
    for (const std::string& key : keys) node().Put(key, std::to_string(ts), ts);
  }

  // The collector works in the background in small steps: poll until it has
  // caught up (horizon 1000 - 100, and per key only the versions at 900 and
  // 1000 left) or give up after a few seconds.
  JsonValue stats;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  do {
    stats = node().Stats();
    if (stats["compaction_horizon"].Int().value_or(0) >= 900 && stats["versions"].Int() == 6) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);

  EXPECT_EQ(stats["compaction_horizon"].Int(), 900) << stats.Canonical();
  EXPECT_EQ(stats["versions"].Int(), 6) << stats.Canonical();
  EXPECT_EQ(stats["keys"].Int(), 3) << stats.Canonical();
  EXPECT_EQ(stats["gc_versions_removed"].Int(), 24) << stats.Canonical();
  EXPECT_GT(stats["gc_bytes_reclaimed"].Int().value_or(0), 0) << stats.Canonical();
  EXPECT_GE(stats["gc_runs"].Int().value_or(0), 1) << stats.Canonical();

  std::string text =
      node().ExpectError(R"({"type":"mvcc_get","key":"k0","read_timestamp":899})", 1000);
  EXPECT_NE(text.find("900"), std::string::npos) << text;
  node().ExpectError(R"({"type":"mvcc_put","key":"k0","value":0,"timestamp":900})", 1000);
  node().ExpectReply(R"({"type":"mvcc_get","key":"k0","read_timestamp":900})",
                     R"({"type":"mvcc_get_ok","value":900,"version":9,"as_of_timestamp":900})");
  node().ExpectReply(R"({"type":"mvcc_history","key":2,"start_timestamp":900})",
                     R"({"type":"mvcc_history_ok","more":false,"versions":[
      {"version":9,"timestamp":900,"value":900},{"version":10,"timestamp":1000,"value":1000}]})");
}

}  // namespace
}  // namespace strata::testing
