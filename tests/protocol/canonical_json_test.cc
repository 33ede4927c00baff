// Canonical JSON: one text per JSON value, and that text always parses back
// (with the parser the node itself uses) to the same value.
#include "protocol/canonical_json.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <string>

namespace strata::protocol {
namespace {

std::string Canonical(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  EXPECT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << json;
  std::string out;
  AppendCanonicalJson(root, &out);
  return out;
}

TEST(CanonicalJsonTest, ObjectMembersAreSortedAtEveryDepth) {
  EXPECT_EQ(Canonical(R"({"y":2,"x":{"b":1,"a":[{"d":0,"c":0}]}})"),
            R"({"x":{"a":[{"c":0,"d":0}],"b":1},"y":2})");
}

TEST(CanonicalJsonTest, OneSpellingPerNumber) {
  EXPECT_EQ(Canonical("1.0"), "1");
  EXPECT_EQ(Canonical("-0.0"), "0");
  EXPECT_EQ(Canonical("2.50"), "2.5");
  EXPECT_EQ(Canonical("1e2"), "100");
  EXPECT_EQ(Canonical("18446744073709551615"), "18446744073709551615");  // uint64 stays exact
}

// Found by the fuzzer: a large integral double was written as plain digits
// beyond 64 bits, which the node's own parser then refused.
TEST(CanonicalJsonTest, LargeIntegralDoublesKeepAnExponent) {
  const std::string text = Canonical("218446744073709551615.8");
  EXPECT_NE(text.find('e'), std::string::npos) << text;
  EXPECT_EQ(Canonical(text), text);  // stable, and parses back
}

RC_GTEST_PROP(CanonicalJsonProperty, EveryFiniteDoubleReadsBackAsTheSameNumber, (double v)) {
  RC_PRE(std::isfinite(v));
  std::string json;
  {
    char buf[64];
    auto end = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific).ptr;
    json.assign(buf, end);
  }
  const std::string text = Canonical(json);
  simdjson::dom::parser parser;
  simdjson::dom::element back;
  RC_ASSERT(parser.parse(text).get(back) == simdjson::SUCCESS);
  double reread = 0;
  if (back.is_int64()) {
    reread = static_cast<double>(int64_t(back));
  } else {
    RC_ASSERT(back.get_double().get(reread) == simdjson::SUCCESS);
  }
  RC_ASSERT(reread == v);
  RC_ASSERT(Canonical(text) == text);
}

}  // namespace
}  // namespace strata::protocol
