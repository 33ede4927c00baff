// The transaction API's typed requests (protocol/txn_messages.h), parsed once
// for one node and a cluster.
#include "protocol/txn_messages.h"

#include <gtest/gtest.h>

#include "tests/protocol/parsed_body.h"

namespace strata::protocol {
namespace {

TEST(TxnMessagesTest, BeginTakesTheNodesIsolationUnlessNamed) {
  ParsedBody body;
  TxnBeginRequest begin;
  ASSERT_FALSE(ParseRequest(body.Parse("{}"), Isolation::kSnapshot, &begin));
  EXPECT_EQ(begin.isolation, Isolation::kSnapshot);
  EXPECT_FALSE(begin.read_only);
  EXPECT_FALSE(begin.read_timestamp.has_value());
  ASSERT_FALSE(ParseRequest(
      body.Parse(R"({"isolation":"serializable","read_only":true,"read_timestamp":9})"),
      Isolation::kSnapshot, &begin));
  EXPECT_EQ(begin.isolation, Isolation::kSerializable);
  EXPECT_TRUE(begin.read_only);
  EXPECT_EQ(begin.read_timestamp, Timestamp(9));
  EXPECT_TRUE(
      ParseRequest(body.Parse(R"({"isolation":"x"})"), Isolation::kSnapshot, &begin).has_value());
}

TEST(TxnMessagesTest, APutNeedsAValueAndADeleteHasNone) {
  ParsedBody body;
  TxnWriteRequest put;
  ASSERT_FALSE(ParseRequest(body.Parse(R"({"key":"k","value":{"b":1,"a":2}})"), false, &put));
  EXPECT_EQ(put.value, R"({"a":2,"b":1})");
  MaybeError no_value = ParseRequest(body.Parse(R"({"key":"k"})"), false, &put);
  ASSERT_TRUE(no_value.has_value());
  EXPECT_EQ(no_value->code, ErrorCode::kMalformedRequest);
  TxnWriteRequest del;
  ASSERT_FALSE(ParseRequest(body.Parse(R"({"key":3})"), true, &del));
  EXPECT_FALSE(del.value.has_value());
  uint64_t id = 0;
  EXPECT_TRUE(ParseTxnId(body.Parse(R"({"txn_id":-1})"), &id).has_value());
}

TEST(TxnMessagesTest, AScanInATransactionMayNotNameATimestamp) {
  ParsedBody body;
  MvccScanRequest scan;
  ASSERT_FALSE(ParseTxnScan(body.Parse(R"({"prefix":"a","limit":5})"), &scan));
  EXPECT_EQ(scan.limit, 5u);
  MaybeError err = ParseTxnScan(body.Parse(R"({"read_timestamp":4})"), &scan);
  ASSERT_TRUE(err.has_value());
  EXPECT_NE(err->text.find("not allowed in txn_scan"), std::string::npos);
}

}  // namespace
}  // namespace strata::protocol
