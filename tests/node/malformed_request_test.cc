// Error 12 (malformed-request): missing or ill-typed fields and values out of
// range, for every raw-API message; and the boundary values that are valid.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "node_test_fixture.h"

namespace strata::testing {
namespace {

struct MalformedCase {
  std::string body;
  std::string field;  // the error text must name it (PROTOCOL.md section 1)
};

// One node answers all cases: a malformed request must not disturb the
// next one, which this also checks.
void ExpectAllMalformed(NodeSession& node, const std::vector<MalformedCase>& cases) {
  for (const MalformedCase& c : cases) {
    SCOPED_TRACE(c.body);
    std::string text = node.ExpectError(c.body, 12);
    EXPECT_NE(text.find(c.field), std::string::npos)
        << "error text does not name \"" << c.field << "\": " << text;
  }
}

TEST_F(NodeTest, MissingFieldsAreError12) {
  ExpectAllMalformed(node(), {
                                 {R"({})", "type"},
                                 {R"({"type":"mvcc_put","value":1,"timestamp":1})", "key"},
                                 {R"({"type":"mvcc_put","key":"k","timestamp":1})", "value"},
                                 {R"({"type":"mvcc_put","key":"k","value":1})", "timestamp"},
                                 {R"({"type":"mvcc_get"})", "key"},
                                 {R"({"type":"mvcc_delete","timestamp":1})", "key"},
                                 {R"({"type":"mvcc_delete","key":"k"})", "timestamp"},
                                 {R"({"type":"mvcc_history"})", "key"},
                                 {R"({"type":"mvcc_changes"})", "since_timestamp"},
                                 {R"({"type":"mvcc_compact"})", "timestamp"},
                             });
}

TEST_F(NodeTest, IllTypedFieldsAreError12) {
  ExpectAllMalformed(
      node(), {
                  {R"({"type":5})", "type"},
                  {R"({"type":"mvcc_get","key":true})", "key"},
                  {R"({"type":"mvcc_get","key":null})", "key"},
                  {R"({"type":"mvcc_get","key":1.5})", "key"},
                  {R"({"type":"mvcc_get","key":["k"]})", "key"},
                  {R"({"type":"mvcc_get","key":{"k":1}})", "key"},
                  {R"({"type":"mvcc_put","key":"k","value":1,"timestamp":"1"})", "timestamp"},
                  {R"({"type":"mvcc_put","key":"k","value":1,"timestamp":null})", "timestamp"},
                  {R"({"type":"mvcc_put","key":"k","value":1,"timestamp":true})", "timestamp"},
                  {R"({"type":"mvcc_get","key":"k","read_timestamp":"5"})", "read_timestamp"},
                  {R"({"type":"mvcc_scan","start":true})", "start"},
                  {R"({"type":"mvcc_scan","end":1.5})", "end"},
                  {R"({"type":"mvcc_scan","prefix":["a"]})", "prefix"},
                  {R"({"type":"mvcc_scan","limit":"10"})", "limit"},
                  {R"({"type":"mvcc_history","key":"k","end_timestamp":"x"})", "end_timestamp"},
                  {R"({"type":"mvcc_changes","since_timestamp":"0"})", "since_timestamp"},
              });
}

TEST_F(NodeTest, TimestampsOutsideZeroToInt64MaxAreError12) {
  ExpectAllMalformed(
      node(),
      {
          {R"({"type":"mvcc_put","key":"k","value":1,"timestamp":-1})", "timestamp"},
          {R"({"type":"mvcc_put","key":"k","value":1,"timestamp":1.5})", "timestamp"},
          {R"({"type":"mvcc_put","key":"k","value":1,"timestamp":1e30})", "timestamp"},
          // 2^63 and 2^64-1: valid JSON integers, one past and far past the range.
          {R"({"type":"mvcc_put","key":"k","value":1,"timestamp":9223372036854775808})",
           "timestamp"},
          {R"({"type":"mvcc_put","key":"k","value":1,"timestamp":18446744073709551615})",
           "timestamp"},
          {R"({"type":"mvcc_delete","key":"k","timestamp":-9223372036854775808})", "timestamp"},
          {R"({"type":"mvcc_get","key":"k","read_timestamp":-1})", "read_timestamp"},
          {R"({"type":"mvcc_get","key":"k","read_timestamp":2.5})", "read_timestamp"},
          {R"({"type":"mvcc_scan","read_timestamp":9223372036854775808})", "read_timestamp"},
          {R"({"type":"mvcc_history","key":"k","start_timestamp":-1})", "start_timestamp"},
          {R"({"type":"mvcc_history","key":"k","end_timestamp":0.5})", "end_timestamp"},
          {R"({"type":"mvcc_changes","since_timestamp":-1})", "since_timestamp"},
          {R"({"type":"mvcc_compact","timestamp":-5})", "timestamp"},
      });
}

TEST_F(NodeTest, LimitOutsideOneToTenThousandIsError12) {
  std::vector<MalformedCase> cases;
  for (std::string limit : {"0", "10001", "-1", "1.5", "18446744073709551615"}) {
    cases.push_back({R"({"type":"mvcc_scan","limit":)" + limit + "}", "limit"});
    cases.push_back({R"({"type":"mvcc_history","key":"k","limit":)" + limit + "}", "limit"});
    cases.push_back(
        {R"({"type":"mvcc_changes","since_timestamp":0,"limit":)" + limit + "}", "limit"});
  }
  ExpectAllMalformed(node(), cases);
}

TEST_F(NodeTest, PrefixMustBeAString) {
  ExpectAllMalformed(node(),
                     {
                         {R"({"type":"mvcc_scan","prefix":5})", "prefix"},
                         {R"({"type":"mvcc_changes","since_timestamp":0,"prefix":5})", "prefix"},
                     });
}

TEST_F(NodeTest, BoundaryValuesAreAccepted) {
  node().ExpectReply(R"({"type":"mvcc_put","key":"k","value":"zero","timestamp":0})",
                     R"({"type":"mvcc_put_ok","version":1,"timestamp":0})");
  node().ExpectReply(
      R"({"type":"mvcc_put","key":"k","value":"max","timestamp":9223372036854775807})",
      R"({"type":"mvcc_put_ok","version":2,"timestamp":9223372036854775807})");
  node().ExpectReply(
      R"({"type":"mvcc_get","key":"k","read_timestamp":9223372036854775807})",
      R"({"type":"mvcc_get_ok","value":"max","version":2,"as_of_timestamp":9223372036854775807})");
  node().ExpectReply(R"({"type":"mvcc_get","key":"k","read_timestamp":0})",
                     R"({"type":"mvcc_get_ok","value":"zero","version":1,"as_of_timestamp":0})");
  for (std::string_view limit : {"1", "10000"}) {
    std::string limit_member = std::string(R"("limit":)") + std::string(limit);
    EXPECT_EQ(node().Call(WithMembers(R"({"type":"mvcc_scan"})", limit_member))["type"].String(),
              "mvcc_scan_ok");
    EXPECT_EQ(node()
                  .Call(WithMembers(R"({"type":"mvcc_history","key":"k"})", limit_member))["type"]
                  .String(),
              "mvcc_history_ok");
    EXPECT_EQ(node()
                  .Call(WithMembers(R"({"type":"mvcc_changes","since_timestamp":0})",
                                    limit_member))["type"]
                  .String(),
              "mvcc_changes_ok");
  }
}

}  // namespace
}  // namespace strata::testing
