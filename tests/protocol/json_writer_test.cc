// JsonWriter: whatever it writes must parse back (with simdjson, as the node
// reads it) to exactly the values it was given, strings above all: any byte
// sequence a client can send as a valid UTF-8 string has to round-trip.
#include "protocol/json_writer.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace strata::protocol {
namespace {

// Parses `json`, which must be a single JSON string, and returns its value.
std::string ParseString(const std::string& json) {
  simdjson::dom::parser parser;
  std::string_view value;
  simdjson::error_code error = parser.parse(json).get_string().get(value);
  EXPECT_EQ(error, simdjson::SUCCESS) << json;
  return std::string(value);
}

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

TEST(JsonStringTest, EveryControlCharacterIsEscapedAndRoundTrips) {
  for (int c = 0; c < 0x20; ++c) {
    const std::string s = {'a', static_cast<char>(c), 'z'};
    std::string json = Quoted(s);
    for (char byte : json) EXPECT_GE(static_cast<unsigned char>(byte), 0x20) << "char " << c;
    EXPECT_EQ(ParseString(json), s) << "char " << c;
  }
}

TEST(JsonStringTest, QuotesBackslashesAndUnicodeRoundTrip) {
  for (std::string s :
       {std::string(""), std::string("\"\\/"), std::string("\\u0041"), std::string("\x7f"),
        std::string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), std::string("\"\"\\\\\"")}) {
    EXPECT_EQ(ParseString(Quoted(s)), s) << s;
  }
}

TEST(JsonStringTest, UsesTheShortEscapes) {
  EXPECT_EQ(Quoted("\n\r\t\b\f\"\\"), R"("\n\r\t\b\f\"\\")");
  EXPECT_EQ(Quoted(std::string_view("\0\x1f", 2)), R"("\u0000\u001f")");
  EXPECT_EQ(Quoted("plain"), R"("plain")");
}

TEST(JsonWriterTest, WritesNestedContainersWithCommas) {
  std::string out;
  JsonWriter writer(&out);
  writer.BeginObject()
      .Field("s", "x")
      .FieldUint("u", std::numeric_limits<uint64_t>::max())
      .Key("i")
      .Int(std::numeric_limits<int64_t>::min())
      .Key("a")
      .BeginArray()
      .Bool(true)
      .Bool(false)
      .Null()
      .BeginObject()
      .EndObject()
      .BeginArray()
      .EndArray()
      .Raw(R"({"k":[1,2]})")
      .EndArray()
      .Key("e")
      .BeginObject()
      .Key("n")
      .Null()
      .EndObject()
      .EndObject();
  EXPECT_EQ(out, R"({"s":"x","u":18446744073709551615,"i":-9223372036854775808,)"
                 R"("a":[true,false,null,{},[],{"k":[1,2]}],"e":{"n":null}})");
}

TEST(JsonWriterTest, ContinuingObjectAddsMembersAfterExistingOnes) {
  std::string out = R"({"type":"x")";
  JsonWriter::ContinuingObject(&out).FieldUint("version", 3).Key("deleted").Bool(true).EndObject();
  EXPECT_EQ(out, R"({"type":"x","version":3,"deleted":true})");
}

// Encodes code points as UTF-8.
std::string Utf8(const std::vector<uint32_t>& code_points) {
  std::string out;
  for (uint32_t cp : code_points) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  return out;
}

// Any Unicode scalar value (no surrogates), weighted towards the ASCII
// characters that need escaping.
rc::Gen<uint32_t> CodePoint() {
  return rc::gen::weightedOneOf<uint32_t>({
      {4, rc::gen::inRange<uint32_t>(0, 0x80)},
      {1, rc::gen::inRange<uint32_t>(0x80, 0xd800)},
      {1, rc::gen::inRange<uint32_t>(0xe000, 0x110000)},
  });
}

RC_GTEST_PROP(JsonStringProperty, AnyUtf8StringRoundTrips, ()) {
  std::string s = Utf8(*rc::gen::container<std::vector<uint32_t>>(CodePoint()));
  std::string json = Quoted(s);
  simdjson::dom::parser parser;
  std::string_view parsed;
  RC_ASSERT(parser.parse(json).get_string().get(parsed) == simdjson::SUCCESS);
  RC_ASSERT(std::string(parsed) == s);
}

}  // namespace
}  // namespace strata::protocol
