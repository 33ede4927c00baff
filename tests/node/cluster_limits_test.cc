// What one node-to-node message can carry: a transaction's writes travel in
// one prepare, a shard's scan answer in one reply, both bounded by the
// receiver's line limit. Past it the client gets error 12 or a shorter page
// with `more`, never a message its receiver would drop.
#include <gtest/gtest.h>

#include <string>

#include "cluster_test_support.h"
#include "protocol/limits.h"

namespace strata::testing {
namespace {

std::string BigString(size_t bytes, char fill) { return "\"" + std::string(bytes, fill) + "\""; }

TEST(ClusterLimitsTest, AScanOfLargeValuesIsPagedNotDropped) {
  TestCluster c(3);
  // Eight values of 900 KB on one shard: more than one node message holds.
  std::vector<std::string> keys;
  for (int i = 0; i < 8; ++i) keys.push_back(c.StringKeyOn(1, "big", i));
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    c.Expect(1,
             R"({"type":"mvcc_put","key":)" + key + R"(,"value":)" + BigString(900 * 1024, 'v') +
                 R"(,"timestamp":10})",
             "mvcc_put_ok");
  }
  JsonValue begin = c.Expect(0, R"({"type":"txn_begin"})", "txn_begin_ok");
  const std::string txn = std::to_string(begin["txn_id"].Int().value_or(0));
  size_t seen = 0;
  std::string start = R"("big")";
  for (int page = 0; page < 8 && seen < keys.size(); ++page) {
    JsonValue scan = c.Expect(
        0, R"({"type":"txn_scan","txn_id":)" + txn + R"(,"start":)" + start + R"(,"limit":100})",
        "txn_scan_ok");
    const size_t n = scan["items"].size();
    ASSERT_GT(n, 0u) << "page " << page;
    ASSERT_LT(n, keys.size()) << "one page cannot carry all eight";
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(scan["items"][i]["key"].Canonical(), keys[seen + i]);
    }
    seen += n;
    EXPECT_EQ(scan["more"].Bool(), seen < keys.size());
    // Next page: just past the last key (strings: append a NUL character).
    std::string last = scan["items"][n - 1]["key"].String().value_or("");
    start = "\"" + last + "\\u0000\"";
  }
  EXPECT_EQ(seen, keys.size());
}

TEST(ClusterLimitsTest, ATransactionWritingMoreThanOneMessageCarriesIsRefused) {
  TestCluster c(3);
  JsonValue begin = c.Expect(0, R"({"type":"txn_begin"})", "txn_begin_ok");
  const std::string txn = std::to_string(begin["txn_id"].Int().value_or(0));
  const size_t per_value = 900 * 1024;
  size_t written = 0;
  int i = 0;
  for (; written + per_value <= protocol::kMaxClusterTxnWriteBytes; ++i) {
    c.Expect(0,
             R"({"type":"txn_put","txn_id":)" + txn + R"(,"key":"w)" + std::to_string(i) +
                 R"(","value":)" + BigString(per_value, 'x') + "}",
             "txn_put_ok");
    written += per_value + 4;
  }
  c.ExpectError(0,
                R"({"type":"txn_put","txn_id":)" + txn + R"(,"key":"w)" + std::to_string(i) +
                    R"(","value":)" + BigString(per_value, 'x') + "}",
                12);
  // What fits still commits.
  c.Expect(0, R"({"type":"txn_commit","txn_id":)" + txn + "}", "txn_commit_ok");
}

}  // namespace
}  // namespace strata::testing
