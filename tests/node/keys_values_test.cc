// Keys and values (PROTOCOL.md section 1): typed keys with their scan order,
// and values that come back as the same JSON value.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "json_value.h"
#include "node_test_fixture.h"

namespace strata::testing {
namespace {

TEST_F(NodeTest, IntegerAndStringKeysAreDifferentKeys) {
  node().ExpectReply(R"({"type":"mvcc_put","key":1,"value":"int","timestamp":10})",
                     R"({"type":"mvcc_put_ok","version":1,"timestamp":10})");
  // Same timestamp, no conflict: it is another key.
  node().ExpectReply(R"({"type":"mvcc_put","key":"1","value":"str","timestamp":10})",
                     R"({"type":"mvcc_put_ok","version":1,"timestamp":10})");
  node().ExpectReply(R"({"type":"mvcc_get","key":1})",
                     R"({"type":"mvcc_get_ok","value":"int","version":1,"as_of_timestamp":10})");
  node().ExpectReply(R"({"type":"mvcc_get","key":"1"})",
                     R"({"type":"mvcc_get_ok","value":"str","version":1,"as_of_timestamp":10})");
  node().ExpectReply(R"({"type":"mvcc_scan"})", R"({"type":"mvcc_scan_ok","more":false,"items":[
      {"key":1,"value":"int","version":1,"as_of_timestamp":10},
      {"key":"1","value":"str","version":1,"as_of_timestamp":10}]})");
  EXPECT_EQ(node().Stats()["keys"].Int(), 2);
}

// Keys in the order a scan must return them: integers numerically (negative
// ones too, down to int64 min), then strings by UTF-8 bytes. U+FF61 sorts
// before U+1F600 in UTF-8 but after it in UTF-16, and "a\u0000" sorts
// between "a" and "b": both catch codecs that compare anything but bytes.
const std::vector<std::string> kKeysInScanOrder = {
    "-9223372036854775808",
    "-256",
    "-5",
    "-1",
    "0",
    "2",
    "10",
    "255",
    "256",
    "9223372036854775807",
    R"("")",
    R"("B")",
    R"("a")",
    R"("a\u0000")",
    R"("a\u0000b")",
    R"("ab")",
    R"("b")",
    R"("\u00e9")",
    R"("\uff61")",
    R"("\ud83d\ude00")",
};

class KeyOrderTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    // Written in reverse so that arrival order cannot fake the scan order.
    for (auto key = kKeysInScanOrder.rbegin(); key != kKeysInScanOrder.rend(); ++key) {
      node().Put(*key, "0", 1);
    }
  }

  // The keys of a scan reply, canonicalized.
  static std::vector<std::string> KeysOf(const JsonValue& reply) {
    std::vector<std::string> keys;
    for (size_t i = 0; i < reply["items"].size(); ++i) {
      keys.push_back(reply["items"][i]["key"].Canonical());
    }
    return keys;
  }

  // kKeysInScanOrder[first, last), canonicalized.
  static std::vector<std::string> Expected(size_t first, size_t last) {
    std::vector<std::string> keys;
    for (size_t i = first; i < last; ++i) keys.push_back(CanonicalJson(kKeysInScanOrder[i]));
    return keys;
  }
};

TEST_F(KeyOrderTest, ScanOrdersIntegersNumericallyThenStringsByBytes) {
  EXPECT_EQ(KeysOf(node().Call(R"({"type":"mvcc_scan"})")), Expected(0, kKeysInScanOrder.size()));
}

TEST_F(KeyOrderTest, RangesWorkAcrossNegativeIntegersAndTypes) {
  EXPECT_EQ(KeysOf(node().Call(R"({"type":"mvcc_scan","start":-5,"end":10})")), Expected(2, 6));
  // A range from an integer to a string spans the type boundary.
  EXPECT_EQ(KeysOf(node().Call(R"({"type":"mvcc_scan","start":256,"end":"a"})")), Expected(8, 12));
  EXPECT_EQ(KeysOf(node().Call(R"({"type":"mvcc_scan","end":-256})")), Expected(0, 1));
  EXPECT_EQ(KeysOf(node().Call(R"({"type":"mvcc_scan","start":""})")),
            Expected(10, kKeysInScanOrder.size()));
}

TEST_F(KeyOrderTest, PrefixMatchesStringKeysOnly) {
  EXPECT_EQ(KeysOf(node().Call(R"({"type":"mvcc_scan","prefix":"a"})")), Expected(12, 16));
  EXPECT_EQ(KeysOf(node().Call(R"({"type":"mvcc_scan","prefix":"a\u0000"})")), Expected(13, 15));
  // Every string begins with "", no integer does.
  EXPECT_EQ(KeysOf(node().Call(R"({"type":"mvcc_scan","prefix":""})")),
            Expected(10, kKeysInScanOrder.size()));
}

TEST_F(NodeTest, StringKeysWithEscapesRoundTrip) {
  const std::string key = R"("quote\" backslash\\ newline\n tab\t \u0001 \u00e9\ud83d\ude00")";
  node().Put(key, "1", 1);
  JsonValue scan = node().Call(R"({"type":"mvcc_scan"})");
  EXPECT_TRUE(SameJson(scan["items"][0]["key"], key));
  EXPECT_EQ(node().Call(R"({"type":"mvcc_get","key":)" + key + "}")["version"].Int(), 1);
}

TEST_F(NodeTest, ValuesComeBackAsTheSameJsonValue) {
  const std::vector<std::string> values = {
      R"("plain")",
      R"("")",
      R"("escapes \" \\ \/ \b \f \n \r \t \u0000 \u0001 \u001f \u007f")",
      R"("unicode é € 😀 \u00e9 \u20ac \ud83d\ude00")",
      "0",
      "-1",
      "9223372036854775807",
      "-9223372036854775808",
      "18446744073709551615",
      "1.5",
      "-2.25e-10",
      "1e300",
      "true",
      "false",
      "null",
      "[]",
      "{}",
      R"([1,"two",[3,[4,{"five":5}]],null,true,false,0.5])",
      R"({"b":1,"a":{"nested":[{"deep":"x"}]},"":"empty key","u\u00e9":"\n"})",
      std::string(50, '[') + "7" + std::string(50, ']'),
  };
  for (size_t i = 0; i < values.size(); ++i) {
    SCOPED_TRACE(values[i]);
    std::string key = "\"v" + std::to_string(i) + '"';
    node().Put(key, values[i], 1);
    node().ExpectReply(
        R"({"type":"mvcc_get","key":)" + key + "}",
        R"({"type":"mvcc_get_ok","version":1,"as_of_timestamp":1,"value":)" + values[i] + "}");
  }
  // The other read paths echo values too.
  JsonValue scan = node().Call(R"({"type":"mvcc_scan","prefix":"v"})");
  JsonValue changes = node().Call(R"({"type":"mvcc_changes","since_timestamp":0})");
  ASSERT_EQ(scan["items"].size(), values.size());
  ASSERT_EQ(changes["changes"].size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    // Both are in key order: "v0" < "v1" < "v10" < ... (byte order).
    std::string key = scan["items"][i]["key"].String().value_or("");
    size_t index = std::stoul(key.substr(1));
    EXPECT_TRUE(SameJson(scan["items"][i]["value"], values[index])) << key;
    EXPECT_TRUE(SameJson(changes["changes"][i]["key"], scan["items"][i]["key"].Canonical()));
    EXPECT_TRUE(SameJson(changes["changes"][i]["value"], values[index])) << key;
  }
  JsonValue history = node().Call(R"({"type":"mvcc_history","key":"v17"})");
  EXPECT_TRUE(SameJson(history["versions"][0]["value"], values[17]));
}

}  // namespace
}  // namespace strata::testing
