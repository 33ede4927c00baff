// KeyCodec: the engine orders keys by bytes, so the encoding must turn the
// protocol's key order (integers numerically, then strings by UTF-8 bytes)
// into byte order, keep 1 and "1" apart, and decode back to the same key.
#include "protocol/key_codec.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "protocol/json_writer.h"

namespace strata::protocol {
namespace {

std::string Int(int64_t key) {
  std::string out;
  EncodeIntegerKey(key, &out);
  return out;
}

std::string Str(std::string_view key) {
  std::string out;
  EncodeStringKey(key, &out);
  return out;
}

// The JSON text WriteKey produces for an encoded key.
std::string Decode(std::string_view encoded) {
  std::string out;
  JsonWriter writer(&out);
  WriteKey(&writer, encoded);
  return out;
}

// std::string compares like memcmp (unsigned bytes), as the engine does.
void ExpectStrictlyAscending(const std::vector<std::string>& encoded) {
  for (size_t i = 1; i < encoded.size(); ++i) {
    EXPECT_LT(encoded[i - 1], encoded[i]) << "positions " << i - 1 << " and " << i;
  }
}

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(KeyCodecTest, IntegersSortNumericallyIncludingNegatives) {
  ExpectStrictlyAscending({Int(kMin), Int(kMin + 1), Int(-256), Int(-255), Int(-1), Int(0), Int(1),
                           Int(255), Int(256), Int(kMax - 1), Int(kMax)});
}

TEST(KeyCodecTest, EveryIntegerSortsBeforeEveryString) {
  ExpectStrictlyAscending({Int(kMax), Str(""), Str("0")});
}

TEST(KeyCodecTest, StringsSortByUtf8Bytes) {
  // U+FF61 < U+1F600 in UTF-8 bytes although UTF-16 orders them the other way.
  ExpectStrictlyAscending({Str(""), Str(std::string_view("\0", 1)), Str("B"), Str("a"),
                           Str(std::string_view("a\0", 2)), Str("ab"), Str("b"), Str("\x7f"),
                           Str("\xc3\xa9"), Str("\xef\xbd\xa1"), Str("\xf0\x9f\x98\x80")});
}

TEST(KeyCodecTest, IntegerAndStringOfSameDigitsDiffer) {
  EXPECT_NE(Int(1), Str("1"));
  EXPECT_EQ(Decode(Int(1)), "1");
  EXPECT_EQ(Decode(Str("1")), "\"1\"");
}

TEST(KeyCodecTest, ExtremeIntegersDecodeExactly) {
  EXPECT_EQ(Decode(Int(kMin)), "-9223372036854775808");
  EXPECT_EQ(Decode(Int(kMax)), "9223372036854775807");
  EXPECT_EQ(Decode(Int(0)), "0");
  EXPECT_EQ(Decode(Int(-1)), "-1");
}

TEST(KeyCodecTest, StringsDecodeWithEscapes) {
  EXPECT_EQ(Decode(Str("")), "\"\"");
  EXPECT_EQ(Decode(Str(std::string_view("a\"\\\n\0", 5))), R"("a\"\\\n\u0000")");
  EXPECT_EQ(Decode(Str("\xc3\xa9")), "\"\xc3\xa9\"");
}

TEST(KeyCodecTest, EncodeReplacesPreviousContents) {
  std::string out = "left over";
  EncodeIntegerKey(7, &out);
  EXPECT_EQ(out, Int(7));
  EncodeStringKey("k", &out);
  EXPECT_EQ(out, Str("k"));
}

RC_GTEST_PROP(KeyCodecProperty, IntegerOrderIsByteOrder, (int64_t a, int64_t b)) {
  RC_ASSERT((a < b) == (Int(a) < Int(b)));
  RC_ASSERT(Decode(Int(a)) == std::to_string(a));
}

RC_GTEST_PROP(KeyCodecProperty, StringOrderIsByteOrder, (std::string a, std::string b)) {
  // std::string's operator< is lexicographic on unsigned bytes, i.e. the
  // order PROTOCOL.md asks for on UTF-8 strings.
  RC_ASSERT((a < b) == (Str(a) < Str(b)));
  RC_ASSERT(Int(0) < Str(a));
}

}  // namespace
}  // namespace strata::protocol
