// The cluster codec (protocol/cluster_codec.h): hex keys, transaction ids,
// writes, key lists, ranges and read results, each written then read back,
// and what a reader refuses.
#include "protocol/cluster_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata::protocol {
namespace cluster_codec_test {

using namespace std::string_literals;

// A parsed body object (the parser owns the storage the Body points into).
class ParsedBody {
 public:
  explicit ParsedBody(std::string json) : json_(std::move(json)) {
    simdjson::dom::object object;
    auto error = parser_.parse(json_).get_object().get(object);
    EXPECT_FALSE(error) << json_;
    if (!error) {
      EXPECT_FALSE(body_.Load(object)) << json_;
    }
  }
  const Body& body() const { return body_; }
  simdjson::dom::element Get(std::string_view name) const { return *body_.Find(name); }

 private:
  std::string json_;
  simdjson::dom::parser parser_;
  Body body_;
};

// `write(w)` as the members of an object.
template <typename F>
std::string Object(F write) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  write(&w);
  w.EndObject();
  return out;
}

std::string HexOf(std::string_view key) {
  std::string out;
  JsonWriter w(&out);
  WriteHexKey(&w, key);
  return out;
}

TEST(ClusterCodecTest, HexKeysRoundTripEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  for (const std::string& key : {""s, "\x00"s, "\xff"s, "\x00\xff\x00"s, "abc"s, all}) {
    const std::string json = HexOf(key);
    ASSERT_EQ(json.size(), key.size() * 2 + 2);
    std::string back = "junk";
    EXPECT_TRUE(ParseHexKey(json.substr(1, json.size() - 2), &back));
    EXPECT_EQ(back, key);
  }
  EXPECT_EQ(HexOf("\x00\xff\x10"s), "\"00ff10\"");
}

TEST(ClusterCodecTest, BadHexIsRefused) {
  std::string out;
  for (std::string_view bad :
       {"0", "abc", "0g", "g0", "AB", "0A", "zz", " 00", "00 ", "-1", "0x", "\xff\xff", "0\x00"}) {
    EXPECT_FALSE(ParseHexKey(bad, &out)) << bad;
  }
  EXPECT_TRUE(ParseHexKey("", &out));
  EXPECT_EQ(out, "");
}

TEST(ClusterCodecTest, TxnIdsRoundTripAndEdgeCasesAreRefused) {
  for (cluster::TxnId id : {cluster::TxnId{0, 0}, cluster::TxnId{UINT64_MAX, UINT32_MAX},
                            cluster::TxnId{123456789, 7}}) {
    ParsedBody parsed("{\"x\":1" + TxnIdFields(id) + "}");
    cluster::TxnId back;
    EXPECT_FALSE(ReadTxnId(parsed.body(), "txn", &back));
    EXPECT_EQ(back, id);
  }
  for (std::string bad :
       {"[]", "[1]", "[1,2,3]", "[-1,0]", "[1,-1]", "[1,4294967296]", "[1.0,0]", "[1,0.5]",
        R"(["1",0])", R"([1,"0"])", "{}", "null", "7", R"("1@0")", "[[1],0]", "[1e3,0]"}) {
    ParsedBody parsed(R"({"txn":)" + bad + "}");
    cluster::TxnId out{9, 9};
    auto err = ReadTxnId(parsed.body(), "txn", &out);
    ASSERT_TRUE(err) << bad;
    EXPECT_EQ(err->code, ErrorCode::kMalformedRequest) << bad;
  }
  ParsedBody missing(R"({"other":[1,2]})");
  cluster::TxnId out;
  EXPECT_TRUE(ReadTxnId(missing.body(), "txn", &out));
}

TEST(ClusterCodecTest, WritesRoundTrip) {
  std::vector<BatchWrite> writes;
  writes.push_back(BatchWrite{"\x00k"s, std::string(R"({"a":[1,null,"x"]})")});
  writes.push_back(BatchWrite{"\xff"s, std::nullopt});
  writes.push_back(BatchWrite{"", std::string("\"\"")});
  ParsedBody parsed(Object([&](JsonWriter* w) { WriteWrites(w, "writes", writes); }));
  std::vector<BatchWrite> back;
  ASSERT_FALSE(ReadWrites(parsed.body(), "writes", &back));
  ASSERT_EQ(back.size(), writes.size());
  for (size_t i = 0; i < writes.size(); ++i) {
    EXPECT_EQ(back[i].key, writes[i].key);
    EXPECT_EQ(back[i].value, writes[i].value);
  }
  // Missing is empty; ill-formed is refused.
  ParsedBody none(R"({"x":1})");
  back.assign(3, BatchWrite{});
  EXPECT_FALSE(ReadWrites(none.body(), "writes", &back));
  EXPECT_TRUE(back.empty());
  for (std::string bad : {R"(5)", R"([5])", R"([{"val":1}])", R"([{"k":"0","val":1}])",
                          R"([{"k":"zz"}])", R"([{"k":7,"val":1}])", R"({"k":"00"})"}) {
    ParsedBody parsed_bad(R"({"writes":)" + bad + "}");
    auto err = ReadWrites(parsed_bad.body(), "writes", &back);
    ASSERT_TRUE(err) << bad;
    EXPECT_EQ(err->code, ErrorCode::kMalformedRequest);
  }
}

TEST(ClusterCodecTest, ShardIdListsRoundTripAndStayBelowTheShardCount) {
  const std::vector<uint32_t> shards = {2, 0, 4};
  ParsedBody parsed(Object([&](JsonWriter* w) { WriteShardIds(w, "participants", shards); }));
  std::vector<uint32_t> back;
  ASSERT_FALSE(ReadShardIds(parsed.body(), "participants", 5, &back));
  EXPECT_EQ(back, shards);
  ParsedBody none(R"({"x":1})");
  EXPECT_FALSE(ReadShardIds(none.body(), "participants", 5, &back));
  EXPECT_TRUE(back.empty());
  for (std::string bad :
       {R"(7)", R"([5])", R"([-1])", R"([1,1])", R"(["1"])", R"([0.5])", R"([0,1,2,3,4,0])"}) {
    ParsedBody parsed_bad(R"({"participants":)" + bad + "}");
    auto err = ReadShardIds(parsed_bad.body(), "participants", 5, &back);
    ASSERT_TRUE(err) << bad;
    EXPECT_EQ(err->code, ErrorCode::kMalformedRequest) << bad;
  }
}

TEST(ClusterCodecTest, HexKeyListsRoundTrip) {
  std::vector<std::string> keys = {""s, "\x00"s, "\xff\xfe"s, "plain"s};
  ParsedBody parsed(Object([&](JsonWriter* w) { WriteHexKeys(w, "keys", keys); }));
  std::vector<std::string> back;
  ASSERT_FALSE(ReadHexKeys(parsed.body(), "keys", &back));
  EXPECT_EQ(back, keys);
  for (std::string bad : {R"("00")", R"([0])", R"(["0"])", R"(["00", null])"}) {
    ParsedBody parsed_bad(R"({"keys":)" + bad + "}");
    EXPECT_TRUE(ReadHexKeys(parsed_bad.body(), "keys", &back)) << bad;
  }
}

TEST(ClusterCodecTest, RangesRoundTrip) {
  std::vector<KeyRange> ranges;
  ranges.push_back(KeyRange{"\x00"s, std::string("\xff\xff")});
  ranges.push_back(KeyRange{"a", std::nullopt});
  ranges.push_back(KeyRange{"", std::string("")});
  ParsedBody parsed(Object([&](JsonWriter* w) { WriteRanges(w, "ranges", ranges); }));
  std::vector<KeyRange> back;
  ASSERT_FALSE(ReadRanges(parsed.body(), "ranges", &back));
  ASSERT_EQ(back.size(), ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    EXPECT_EQ(back[i].start, ranges[i].start);
    EXPECT_EQ(back[i].end, ranges[i].end);
  }
  // A single range, and a reused output whose end must be cleared.
  KeyRange one{"stale", std::string("stale")};
  ParsedBody single(R"({"r":{"start":"00"}})");
  ASSERT_FALSE(ReadRange(single.Get("r"), &one));
  EXPECT_EQ(one.start, "\x00"s);
  EXPECT_FALSE(one.end.has_value());
  for (std::string bad : {R"({"end":"00"})", R"({"start":"0"})", R"({"start":"00","end":"x"})",
                          R"({"start":1})", R"("00")", R"([])"}) {
    ParsedBody parsed_bad(R"({"r":)" + bad + "}");
    EXPECT_TRUE(ReadRange(parsed_bad.Get("r"), &one)) << bad;
  }
  ParsedBody not_list(R"({"ranges":{"start":"00"}})");
  EXPECT_TRUE(ReadRanges(not_list.body(), "ranges", &back));
}

TEST(ClusterCodecTest, ReadResultsRoundTrip) {
  ReadResult found;
  found.found = true;
  found.version = 3;
  found.timestamp = Timestamp(UINT64_MAX - 1);
  found.value = R"({"nested":[1,2,{"x":null}]})";
  ReadResult deleted;
  deleted.found = deleted.deleted = true;
  deleted.version = 1;
  deleted.timestamp = Timestamp(0);
  ReadResult missing;
  for (const ReadResult& r : {found, deleted, missing}) {
    std::string json = Object([&](JsonWriter* w) {
      w->Key("r");
      WriteReadResult(w, r);
    });
    ParsedBody parsed(json);
    ReadResult back;
    back.value = "junk";
    back.found = true;
    ASSERT_FALSE(ReadReadResult(parsed.Get("r"), &back)) << json;
    EXPECT_EQ(back.found, r.found) << json;
    if (!r.found) continue;
    EXPECT_EQ(back.deleted, r.deleted) << json;
    EXPECT_EQ(back.version, r.version);
    EXPECT_EQ(back.timestamp, r.timestamp);
    EXPECT_EQ(back.value, r.value);
  }
  for (std::string bad : {R"({"v":1})", R"({"v":1,"t":"x"})", R"(5)", R"([])"}) {
    ParsedBody parsed(R"({"r":)" + bad + "}");
    ReadResult back;
    EXPECT_TRUE(ReadReadResult(parsed.Get("r"), &back)) << bad;
  }
}

}  // namespace cluster_codec_test
}  // namespace strata::protocol
