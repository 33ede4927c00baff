// ProtoKvWriteCodec (server/kv_write_codec.h): every kind of forwarded
// write and answer through etcd's protobuf bytes and back, field by field,
// and what it makes of bytes that are not its own.
#include "server/kv_write_codec.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace strata::server {
namespace kv_write_codec_test {

using namespace service;

KeyValue Kv(const std::string& key, int64_t rev) { return KeyValue{key, rev, rev + 1, 2, "v", 7}; }

void ExpectSameKv(const KeyValue& a, const KeyValue& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.create_revision, b.create_revision);
  EXPECT_EQ(a.mod_revision, b.mod_revision);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.value, b.value);
  EXPECT_EQ(a.lease, b.lease);
}

TEST(KvWriteCodecTest, APutAndADeleteTravelWhole) {
  ProtoKvWriteCodec codec;
  PutRequest put{"k", std::string("v\0w", 3), 42, true, false, true};
  auto back = codec.DecodeWrite(codec.EncodeWrite(put));
  ASSERT_TRUE(back);
  const auto& p = std::get<PutRequest>(*back);
  EXPECT_EQ(p.key, "k");
  EXPECT_EQ(p.value, std::string("v\0w", 3));
  EXPECT_EQ(p.lease, 42);
  EXPECT_TRUE(p.prev_kv);
  EXPECT_FALSE(p.ignore_value);
  EXPECT_TRUE(p.ignore_lease);

  DeleteRangeRequest del{{"a", "z"}, true};
  back = codec.DecodeWrite(codec.EncodeWrite(del));
  ASSERT_TRUE(back);
  const auto& d = std::get<DeleteRangeRequest>(*back);
  EXPECT_EQ(d.span.key, "a");
  EXPECT_EQ(d.span.range_end, "z");
  EXPECT_TRUE(d.prev_kv);
}

TEST(KvWriteCodecTest, ATxnTravelsWithEveryCompareAndNestedOp) {
  ProtoKvWriteCodec codec;
  TxnRequest txn;
  for (CompareTarget target : {CompareTarget::kVersion, CompareTarget::kCreate, CompareTarget::kMod,
                               CompareTarget::kValue, CompareTarget::kLease}) {
    Compare c;
    c.result = CompareResult::kNotEqual;
    c.target = target;
    c.span = {"c", ""};
    c.number = target == CompareTarget::kValue ? 0 : 9;
    c.value = target == CompareTarget::kValue ? "x" : "";
    txn.compare.push_back(c);
  }
  RangeRequest range;
  range.span = {"r", "s"};
  range.limit = 3;
  range.revision = 5;
  range.sort_order = SortOrder::kDescend;
  range.sort_target = SortTarget::kMod;
  range.keys_only = true;
  range.min_create_revision = 2;
  txn.success.push_back({range});
  auto inner = std::make_shared<TxnRequest>();
  inner->success.push_back({PutRequest{"n", "m"}});
  txn.success.push_back({inner});
  txn.failure.push_back({DeleteRangeRequest{{"d", ""}, false}});

  auto back = codec.DecodeWrite(codec.EncodeWrite(txn));
  ASSERT_TRUE(back);
  const auto& t = std::get<TxnRequest>(*back);
  ASSERT_EQ(t.compare.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(t.compare[i].target, txn.compare[i].target);
    EXPECT_EQ(t.compare[i].result, CompareResult::kNotEqual);
    EXPECT_EQ(t.compare[i].number, txn.compare[i].number);
    EXPECT_EQ(t.compare[i].value, txn.compare[i].value);
  }
  ASSERT_EQ(t.success.size(), 2u);
  const auto& r = std::get<RangeRequest>(t.success[0].op);
  EXPECT_EQ(r.span.range_end, "s");
  EXPECT_EQ(r.limit, 3);
  EXPECT_EQ(r.revision, 5);
  EXPECT_EQ(r.sort_order, SortOrder::kDescend);
  EXPECT_EQ(r.sort_target, SortTarget::kMod);
  EXPECT_TRUE(r.keys_only);
  EXPECT_EQ(r.min_create_revision, 2);
  const auto& nested = std::get<std::shared_ptr<TxnRequest>>(t.success[1].op);
  ASSERT_TRUE(nested);
  EXPECT_EQ(std::get<PutRequest>(nested->success.at(0).op).key, "n");
  EXPECT_EQ(std::get<DeleteRangeRequest>(t.failure.at(0).op).span.key, "d");
}

TEST(KvWriteCodecTest, AnswersAndErrorsTravelExactly) {
  ProtoKvWriteCodec codec;
  PutResponse put;
  put.header.revision = 123456789012345;
  put.prev_kv = Kv("p", 4);
  auto back = codec.DecodeReply(codec.EncodeReply(KvWriteReply{put}));
  ASSERT_TRUE(back.ok());
  const auto& p = std::get<PutResponse>(back.value());
  EXPECT_EQ(p.header.revision, 123456789012345);
  ASSERT_TRUE(p.prev_kv);
  ExpectSameKv(*p.prev_kv, Kv("p", 4));

  TxnResponse txn;
  txn.header.revision = 99;
  txn.succeeded = true;
  RangeResponse range;
  range.kvs = {Kv("a", 1), Kv("b", 2)};
  range.more = true;
  range.count = 5;
  txn.responses.push_back({range});
  DeleteRangeResponse del;
  del.deleted = 1;
  del.prev_kvs = {Kv("d", 3)};
  auto inner = std::make_shared<TxnResponse>();
  inner->responses.push_back({del});
  txn.responses.push_back({inner});
  back = codec.DecodeReply(codec.EncodeReply(KvWriteReply{txn}));
  ASSERT_TRUE(back.ok());
  const auto& t = std::get<TxnResponse>(back.value());
  EXPECT_EQ(t.header.revision, 99);
  EXPECT_TRUE(t.succeeded);
  const auto& r = std::get<RangeResponse>(t.responses.at(0).response);
  EXPECT_TRUE(r.more);
  EXPECT_EQ(r.count, 5);
  ASSERT_EQ(r.kvs.size(), 2u);
  ExpectSameKv(r.kvs[1], Kv("b", 2));
  const auto& n = std::get<std::shared_ptr<TxnResponse>>(t.responses.at(1).response);
  const auto& d = std::get<DeleteRangeResponse>(n->responses.at(0).response);
  EXPECT_EQ(d.deleted, 1);
  ExpectSameKv(d.prev_kvs.at(0), Kv("d", 3));

  const ServiceError error = etcd_errors::TooManyRequests();
  back = codec.DecodeReply(codec.EncodeReply(error));
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.error().code, error.code);
  EXPECT_EQ(back.error().message, error.message);
}

TEST(KvWriteCodecTest, BytesNotItsOwnAreRefusedWithASentence) {
  ProtoKvWriteCodec codec;
  EXPECT_FALSE(codec.DecodeWrite("\xff\xff\xff"));
  EXPECT_FALSE(codec.DecodeWrite(""));  // an empty op: not a write
  for (const std::string& bytes :
       {std::string(), std::string("\x07", 1), std::string("\x01", 1), std::string("\x01\x00x", 3),
        std::string("\x01\x63x", 3), std::string("\x00\xff\xff", 3)}) {
    auto r = codec.DecodeReply(bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInternal);
    EXPECT_NE(r.error().message.find("did not decode"), std::string::npos) << r.error().message;
  }
}

}  // namespace kv_write_codec_test
}  // namespace strata::server
