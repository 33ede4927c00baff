#include "protocol/envelope_peek.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace strata::protocol {
namespace {

TEST(EnvelopePeekTest, FindsSrcAndMsgIdWhateverFollows) {
  auto p = PeekEnvelope(R"({"src":"c1","dest":"n1","body":{"type":"x","msg_id":42,"value":)" +
                        std::string(100000, '['));
  EXPECT_EQ(p.src, "c1");
  EXPECT_EQ(p.msg_id_json, "42");
  EXPECT_FALSE(p.out_of_range_field.has_value());
}

TEST(EnvelopePeekTest, OrderOfFieldsDoesNotMatter) {
  auto p = PeekEnvelope(R"({"body":{"msg_id":7,"type":"x"},"dest":"n1","src":"c\"2"})");
  EXPECT_EQ(p.src, "c\"2");
  EXPECT_EQ(p.msg_id_json, "7");
}

TEST(EnvelopePeekTest, NamesTheFirstIntegerBeyondSixtyFourBits) {
  auto p = PeekEnvelope(R"({"src":"c","body":{"msg_id":1,"a":18446744073709551615,"b":1.5e99,)"
                        R"("timestamp":18446744073709551616,"c":-9223372036854775809}})");
  EXPECT_EQ(p.out_of_range_field, "timestamp");
  EXPECT_EQ(PeekEnvelope(R"({"src":"c","body":{"t":-9223372036854775808}})").out_of_range_field,
            std::nullopt);
  EXPECT_EQ(PeekEnvelope(R"({"src":"c","body":{"t":-9223372036854775809}})").out_of_range_field,
            "t");
}

TEST(EnvelopePeekTest, IgnoresLookalikesOutsideTheEnvelopeAndBody) {
  auto p = PeekEnvelope(R"({"x":{"src":"fake","body":{"msg_id":9}},"body":{"v":{"msg_id":8}}})");
  EXPECT_FALSE(p.src.has_value());
  EXPECT_FALSE(p.msg_id_json.has_value());
  auto q = PeekEnvelope(R"({"src":"c","body":{"s":"\"msg_id\":5","msg_id":6}})");
  EXPECT_EQ(q.msg_id_json, "6");
}

TEST(EnvelopePeekTest, CutOffInputFindsWhatCameBeforeTheCut) {
  EXPECT_FALSE(PeekEnvelope(R"({"src":"c)").src.has_value());
  auto p = PeekEnvelope(R"({"src":"c","body":{"msg_id":3,"value":"aaaa)");
  EXPECT_EQ(p.src, "c");
  EXPECT_EQ(p.msg_id_json, "3");
}

TEST(EnvelopePeekTest, AMsgIdThatIsNotAJsonIntegerIsNotRecovered) {
  // It would be copied into in_reply_to and make the reply invalid JSON
  // (the node-line fuzzer found "06").
  for (const char* id : {"06", "1-2", "-", "1e3", "-01", "2.5"}) {
    EXPECT_FALSE(PeekEnvelope(std::string(R"({"src":"c","body":{"msg_id":)") + id + ",\"v\":1}}")
                     .msg_id_json.has_value())
        << id;
  }
  EXPECT_EQ(PeekEnvelope(R"({"src":"c","body":{"msg_id":-0,"v":1}})").msg_id_json, "-0");
  EXPECT_EQ(PeekEnvelope(R"({"src":"c","body":{"msg_id":0}})").msg_id_json, "0");
}

RC_GTEST_PROP(EnvelopePeekTest, NeverFailsOnAnyBytes, (std::string bytes)) {
  PeekEnvelope(bytes);
  auto p = PeekEnvelope(R"({"src":"c","body":{"msg_id":)" + bytes);
  if (p.msg_id_json) {
    // Whatever is recovered is an integer as JSON writes it.
    const std::string& id = *p.msg_id_json;
    const size_t digits = id.find_first_not_of('-') == 0 ? 0 : 1;
    RC_ASSERT(id.size() > digits);
    RC_ASSERT(id.find_first_not_of("0123456789", digits) == std::string::npos);
    RC_ASSERT(id[digits] != '0' || id.size() == digits + 1);
  }
}

}  // namespace
}  // namespace strata::protocol
