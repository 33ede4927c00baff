// Hostile input (PROTOCOL.md section 1): lines that cannot be answered are
// logged to stderr and skipped; nothing may crash or hang the node, corrupt
// its stdout, or lose its state.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "json_value.h"
#include "node_test_fixture.h"

namespace strata::testing {
namespace {

class HostileInputTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    node().Put(R"("keep")", R"("safe")", 1);
  }

  void TearDown() override {
    node().ExpectCleanExit();
    // Each skipped line is logged (one line each; more is tolerated).
    const std::string& log = node().process().stderr_text();
    EXPECT_GE(static_cast<int>(std::count(log.begin(), log.end(), '\n')), unanswerable_lines_)
        << "stderr:\n"
        << log;
  }

  // Proves the node is alive, answering, and still holds its state. Because
  // the get is answered next (Call checks in_reply_to), it also proves the
  // lines sent before it produced no output.
  void ExpectStateKept() {
    node().ExpectReply(R"({"type":"mvcc_get","key":"keep"})",
                       R"({"type":"mvcc_get_ok","value":"safe","version":1,"as_of_timestamp":1})");
  }

  // Sends a line that cannot be answered and expects no reply to it.
  void ExpectIgnored(std::string_view line) {
    node().SendLine(line);
    ++unanswerable_lines_;
    ExpectStateKept();
  }

  // Sends a line the parser refuses whole and expects error 12 whose text
  // contains `why`, answered to `msg_id`, and the state kept.
  void ExpectRefused(const std::string& line, int64_t msg_id, std::string_view why) {
    node().SendLine(line);
    JsonValue reply = node().NextReply();
    EXPECT_EQ(reply["in_reply_to"].Int(), msg_id) << reply.Canonical();
    EXPECT_EQ(reply["type"].String().value_or(""), "error") << reply.Canonical();
    EXPECT_EQ(reply["code"].Int(), 12) << reply.Canonical();
    EXPECT_NE(reply["text"].String().value_or("").find(why), std::string::npos)
        << reply.Canonical();
    ExpectStateKept();
  }

  // Sends a line carrying msg_id `msg_id` that is valid JSON a parser may
  // still refuse (too deep, too big, numbers beyond 64 bits). The protocol
  // allows skipping it, refusing it with error 12, or (if `ok_type` is not
  // empty) answering it with `ok_type`. Returns the reply, invalid if none.
  JsonValue ExpectToleratedReply(std::string_view line, int64_t msg_id,
                                 std::string_view ok_type = "") {
    node().SendLine(line);
    int64_t probe = node().Send(R"({"type":"mvcc_get","key":"keep"})");
    JsonValue reply = node().NextReply();
    if (reply["in_reply_to"].Int() == probe) return JsonValue();
    EXPECT_EQ(reply["in_reply_to"].Int(), msg_id) << reply.Canonical();
    std::string type = reply["type"].String().value_or("");
    bool refused = type == "error" && reply["code"].Int() == 12;
    EXPECT_TRUE(refused || (!ok_type.empty() && type == ok_type)) << reply.Canonical();
    EXPECT_EQ(node().NextReply()["in_reply_to"].Int(), probe);
    return reply;
  }

  int unanswerable_lines_ = 0;
};

TEST_F(HostileInputTest, LinesThatAreNotJsonAreSkipped) {
  ExpectIgnored("hello world");
  ExpectIgnored("{");
  ExpectIgnored("}");
  ExpectIgnored(R"({"src":"c1","dest":"n1","body":{"type":"mvcc_get","msg_id":900,"key":"keep"})");
  ExpectIgnored(R"({"src":"c1","dest":"n1","body":{"type":"mvcc_get","msg_id":901,}})");
  ExpectIgnored(R"({"src":"c1","dest":"n1","body":{"type":"mvcc_get","msg_id":902,"key":'k'}})");
  ExpectIgnored(std::string(R"({"src":"c1",)") + '\0' + R"("dest":"n1","body":{}})");
}

TEST_F(HostileInputTest, JsonWithoutUsableEnvelopeIsSkipped) {
  for (std::string_view line : {
           "[1,2,3]",
           "42",
           R"("just a string")",
           "null",
           "{}",
           R"({"dest":"n1","body":{"type":"mvcc_get","msg_id":903,"key":"keep"}})",
           R"({"src":"c1","dest":"n1"})",
           R"({"src":5,"dest":"n1","body":{"type":"mvcc_get","msg_id":904,"key":"keep"}})",
           R"({"src":null,"dest":"n1","body":{"type":"mvcc_get","msg_id":905,"key":"keep"}})",
       }) {
    SCOPED_TRACE(line);
    ExpectIgnored(line);
  }
}

TEST_F(HostileInputTest, BodyThatIsNotAnObjectIsNotAnswered) {
  // Without an object body there is no msg_id to answer to.
  for (std::string_view line : {
           R"({"src":"c1","dest":"n1","body":"mvcc_get"})",
           R"({"src":"c1","dest":"n1","body":[{"type":"mvcc_get","msg_id":906}]})",
           R"({"src":"c1","dest":"n1","body":null})",
       }) {
    SCOPED_TRACE(line);
    node().SendLine(line);
    ExpectStateKept();
  }
}

TEST_F(HostileInputTest, InvalidUtf8IsSkippedAndNotStored) {
  // The put would overwrite "keep" if the node stored it anyway.
  ExpectIgnored(
      "{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"mvcc_put\",\"msg_id\":907,"
      "\"key\":\"keep\",\"value\":\"\xff\xfe\",\"timestamp\":2}}");
  ExpectIgnored(  // an overlong encoding of '/'
      "{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"mvcc_put\",\"msg_id\":908,"
      "\"key\":\"keep\",\"value\":\"\xc0\xaf\",\"timestamp\":3}}");
  ExpectIgnored(  // a truncated three-byte sequence in a key
      "{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"mvcc_put\",\"msg_id\":909,"
      "\"key\":\"k\xe2\x82\",\"value\":1,\"timestamp\":4}}");
}

TEST_F(HostileInputTest, RawControlCharactersInStringsAreSkipped) {
  // JSON requires control characters inside strings to be escaped.
  ExpectIgnored(
      "{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"mvcc_put\",\"msg_id\":910,"
      "\"key\":\"keep\",\"value\":\"a\x01z\",\"timestamp\":5}}");
  ExpectIgnored(
      "{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"mvcc_put\",\"msg_id\":911,"
      "\"key\":\"keep\",\"value\":\"a\tz\",\"timestamp\":6}}");
  // Control characters outside strings are not whitespace either.
  ExpectIgnored("\x01{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"mvcc_stats\"}}");
}

TEST_F(HostileInputTest, EmptyAndBlankLinesAreSkipped) {
  for (std::string_view line : {"", " ", "\t \t", "\r"}) {
    node().SendLine(line);
  }
  ExpectStateKept();
}

TEST_F(HostileInputTest, JsonWhitespaceAroundARequestIsFine) {
  // Trailing '\r' (CRLF line ends) and blanks are JSON whitespace.
  node().SendLine(
      " \t{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"mvcc_get\","
      "\"msg_id\":912,\"key\":\"keep\"}} \r");
  EXPECT_EQ(node().NextReply()["in_reply_to"].Int(), 912);
}

TEST_F(HostileInputTest, VeryDeepNestingIsSurvived) {
  ExpectIgnored(std::string(100000, '['));
  ExpectIgnored(std::string(100000, '{'));
  // Balanced and valid, but far deeper than any sane parser's limit.
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  // Too deep to parse, but its sender and msg_id come first: answered.
  ExpectRefused(
      R"({"src":"c1","dest":"n1","body":{"type":"mvcc_put","msg_id":913,"key":"deep","value":)" +
          deep + R"(,"timestamp":1}})",
      913, "the message nests deeper than 64 levels");
  // 200,000 levels, the depth a client reported getting no answer to.
  std::string deeper = std::string(200000, '[') + std::string(200000, ']');
  ExpectRefused(R"({"src":"c1","dest":"n1","body":{"msg_id":918,"type":"mvcc_put","value":)" +
                    deeper + R"(,"key":"k","timestamp":1}})",
                918, "deeper than 64 levels");
}

TEST_F(HostileInputTest, HugeLinesAreAnsweredFromTheirStart) {
  constexpr size_t kHuge = 8 << 20;
  ExpectIgnored(std::string(kHuge, 'x'));
  // Longer than the node reads: answered from the envelope at its start
  // (the rest is dropped unread), naming the limit.
  ExpectRefused(R"({"src":"c1","dest":"n1","body":{"type":"mvcc_put","msg_id":914,"value":")" +
                    std::string(kHuge, 'y'),  // unterminated
                914, "the message is longer than 4194304 bytes");
  std::string big_value = '"' + std::string(kHuge, 'z') + '"';
  ExpectRefused(
      R"({"src":"c1","dest":"n1","body":{"type":"mvcc_put","msg_id":915,"key":"big","value":)" +
          big_value + R"(,"timestamp":1}})",
      915, "the message is longer than 4194304 bytes");
  EXPECT_EQ(node().Call(R"({"type":"mvcc_get","key":"big"})")["version"].Canonical(), "null");
}

TEST_F(HostileInputTest, DuplicateFieldsAreAnsweredOnce) {
  // Which duplicate wins is not specified, but the request is valid JSON
  // with an envelope, so it gets exactly one answer.
  node().SendLine(R"({"src":"c1","dest":"n1","body":{"type":"mvcc_put","msg_id":916,"key":"dup",)"
                  R"("value":1,"value":2,"timestamp":1}})");
  JsonValue reply = node().NextReply();
  EXPECT_EQ(reply["in_reply_to"].Int(), 916);
  std::string type = reply["type"].String().value_or("");
  EXPECT_TRUE(type == "mvcc_put_ok" || (type == "error" && reply["code"].Int() == 12))
      << reply.Canonical();
  ExpectStateKept();
}

TEST_F(HostileInputTest, NumbersBeyondSixtyFourBitsAreRefusedNamingTheField) {
  ExpectRefused(
      R"({"src":"c1","dest":"n1","body":{"type":"mvcc_put","msg_id":917,"key":"k","value":1,)"
      R"("timestamp":100000000000000000000000}})",
      917, "field 'timestamp' is an integer out of range");
  // 2^64: one past the largest unsigned 64-bit integer.
  ExpectRefused(
      R"({"src":"c1","dest":"n1","body":{"type":"mvcc_put","msg_id":919,"key":"k","value":1,)"
      R"("timestamp":18446744073709551616}})",
      919, "field 'timestamp' is an integer out of range");
}

TEST_F(HostileInputTest, LoneSurrogateEscapesNeverReachStdout) {
  // "\ud800" matches the JSON grammar but encodes no character. Refusing
  // the line and storing something are both fine; echoing it as raw bytes
  // (invalid UTF-8) would corrupt stdout, which NextReply would catch.
  ExpectToleratedReply(
      R"({"src":"c1","dest":"n1","body":{"type":"mvcc_put","msg_id":919,"key":"\ud800",)"
      R"("value":"\udc00x","timestamp":1}})",
      919, "mvcc_put_ok");
  node().Call(R"({"type":"mvcc_scan"})");
  ExpectStateKept();
}

TEST_F(HostileInputTest, GarbageBurstInOneWrite) {
  // Everything at once, so the node's framing sees garbage mid-buffer.
  std::string burst =
      "not json\n\n{\"src\":1}\n" + std::string(70000, '{') + "\n" + "\xff\xfe\xfd\n" +
      R"({"src":"c1","dest":"n1","body":{"type":"mvcc_get","msg_id":918,"key":"keep"}})"
      "\n";
  unanswerable_lines_ += 4;
  ASSERT_TRUE(node().process().Write(burst, kReplyTimeout));
  JsonValue reply = node().NextReply();
  EXPECT_EQ(reply["in_reply_to"].Int(), 918);
  EXPECT_EQ(reply["value"].String(), "safe");
}

}  // namespace
}  // namespace strata::testing
