// The workloads' rules (protocol/workload_messages.h), which one node and a
// cluster both answer by: parsing, cas refusals, and a txn message run over
// stored values and its own writes.
#include "protocol/workload_messages.h"

#include <gtest/gtest.h>

#include <map>

#include "protocol/key_codec.h"
#include "protocol/limits.h"
#include "tests/protocol/parsed_body.h"

namespace strata::protocol {
namespace {

class WorkloadMessagesTest : public ::testing::Test {
 protected:
  const Body& Parse(const std::string& json) { return body_.Parse(json); }

  static std::string Key(std::string_view name) {
    std::string encoded;
    EncodeStringKey(name, &encoded);
    return encoded;
  }

  // Runs `json`'s txn over `stored` (keys by name); records which keys
  // were read from it.
  MaybeError Run(const std::string& json, std::map<std::string, StoredValue> stored,
                 TxnOpsOutcome* out) {
    TxnOpsRequest request;
    if (auto err = ParseRequest(Parse(json), &request)) return err;
    keys_to_read_ = request.keys_to_read;
    reads_.clear();
    return RunTxnOps(
        request,
        [&](const std::string& key) -> Result<StoredValue> {
          reads_.push_back(key);
          for (const auto& [name, value] : stored) {
            if (Key(name) == key) return value;
          }
          return StoredValue();
        },
        out);
  }

  ParsedBody body_;
  std::vector<std::string> keys_to_read_, reads_;
};

TEST_F(WorkloadMessagesTest, ATxnReadsOnlyWhatItHasNotWrittenAndEchoesEveryOperation) {
  TxnOpsOutcome out;
  ASSERT_FALSE(Run(R"({"txn":[["r","a",null],["w","b",{"x" : 1}],["r","b",null],)"
                   R"(["append","a",3],["r","a",null],["append","c",4],["r",7,null]]})",
                   {{"a", "[1,2]"}}, &out)
                   .has_value());
  EXPECT_EQ(out.completed,
            R"([["r","a",[1,2]],["w","b",{"x":1}],["r","b",{"x":1}],["append","a",3],)"
            R"(["r","a",[1,2,3]],["append","c",4],["r",7,null]])");
  // Read in advance: every key a read or an append names, once, in order.
  std::string seven;
  EncodeIntegerKey(7, &seven);
  EXPECT_EQ(keys_to_read_, (std::vector<std::string>{Key("a"), Key("b"), Key("c"), seven}));
  // What the answer used: b was read only after the message wrote it.
  EXPECT_EQ(out.observed, (std::set<std::string>{Key("a"), Key("c"), seven}));
  // a is read by the read and again by the append (it was not written
  // between them); b never.
  EXPECT_EQ(reads_, (std::vector<std::string>{Key("a"), Key("a"), Key("c"), seven}));
  ASSERT_EQ(out.writes.size(), 3u);
  EXPECT_EQ(out.writes[Key("a")], "[1,2,3]");
  EXPECT_EQ(out.writes[Key("b")], R"({"x":1})");
  EXPECT_EQ(out.writes[Key("c")], "[4]");
}

TEST_F(WorkloadMessagesTest, AnAppendToAValueThatIsNotAListIsError22) {
  TxnOpsOutcome out;
  MaybeError err = Run(R"({"txn":[["append","a",1]]})", {{"a", "5"}}, &out);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(err->text, R"(cannot append to key "a": its value is not a list)");
  // An empty list is a list.
  TxnOpsOutcome empty;
  ASSERT_FALSE(Run(R"({"txn":[["append","a",1]]})", {{"a", "[]"}}, &empty).has_value());
  EXPECT_EQ(empty.writes[Key("a")], "[1]");
}

TEST_F(WorkloadMessagesTest, AReadErrorIsTheAnswer) {
  TxnOpsRequest request;
  ASSERT_FALSE(ParseRequest(Parse(R"({"txn":[["r","a",null]]})"), &request).has_value());
  TxnOpsOutcome out;
  MaybeError err = RunTxnOps(
      request, [](const std::string&) -> Result<StoredValue> { return Status::Unavailable("x"); },
      &out);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->code, ErrorFromStatus(Status::Unavailable("x")).code);
}

TEST_F(WorkloadMessagesTest, MalformedTxnsAreRefusedBeforeAnythingIsRead) {
  auto refused = [&](const std::string& json, std::string_view text) {
    TxnOpsRequest req;
    MaybeError err = ParseRequest(Parse(json), &req);
    ASSERT_TRUE(err.has_value()) << json;
    EXPECT_EQ(err->code, ErrorCode::kMalformedRequest) << json;
    EXPECT_NE(err->text.find(text), std::string::npos) << err->text;
  };
  refused(R"({"txn":5})", "field 'txn' is required");
  refused(R"({})", "field 'txn' is required");
  refused(R"({"txn":[["r","a"]]})", "must be [f, key, value]");
  refused(R"({"txn":[[1,"a",null]]})", "must be [f, key, value]");
  refused(R"({"txn":[["r","a",null],["x","a",null]]})", "unknown operation 'x'");
  refused(R"({"txn":[["r",1.5,null]]})", "txn key");
  std::string many = R"({"txn":[)";
  for (size_t i = 0; i <= kMaxTxnOps; ++i) many += std::string(i ? "," : "") + R"(["r","a",null])";
  refused(many + "]}", "the limit is " + std::to_string(kMaxTxnOps));
  std::string big = R"({"txn":[["w","a",")" + std::string(kMaxValueBytes, 'v') + R"("]]})";
  refused(big, "exceeds");
}

TEST_F(WorkloadMessagesTest, CasRefusesAMissingKeyUnlessCreatingAndAnyOtherValue) {
  KvCasRequest cas;
  ASSERT_FALSE(ParseRequest(Parse(R"({"key":"k","from":{"b":1,"a":2},"to":3})"), &cas));
  EXPECT_EQ(cas.from, R"({"a":2,"b":1})");  // compared as canonical JSON
  EXPECT_FALSE(cas.create_if_not_exists);
  MaybeError missing = CasRefusal(cas, std::nullopt);
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->code, ErrorCode::kKeyDoesNotExist);
  EXPECT_EQ(missing->text, R"(key "k" does not exist)");
  MaybeError differs = CasRefusal(cas, "4");
  ASSERT_TRUE(differs.has_value());
  EXPECT_EQ(differs->code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(differs->text, R"(cas on key "k" expected {"a":2,"b":1} but found 4)");
  EXPECT_FALSE(CasRefusal(cas, R"({"a":2,"b":1})").has_value());

  KvCasRequest create;
  ASSERT_FALSE(
      ParseRequest(Parse(R"({"key":1,"from":1,"to":2,"create_if_not_exists":true})"), &create));
  EXPECT_FALSE(CasRefusal(create, std::nullopt).has_value());
  EXPECT_TRUE(CasRefusal(create, "2").has_value());
  KvCasRequest bad;
  EXPECT_TRUE(ParseRequest(Parse(R"({"key":"k","from":1})"), &bad).has_value());
}

}  // namespace
}  // namespace strata::protocol
