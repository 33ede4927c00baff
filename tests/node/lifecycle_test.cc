// Section 1 (wire format) and section 2 (lifecycle): init, msg_id numbering,
// routing of replies, requests without msg_id, prompt flushing.
#include <gtest/gtest.h>

#include <string>

#include "json_value.h"
#include "node_test_fixture.h"

namespace strata::testing {
namespace {

TEST_F(FreshNodeTest, InitIsAnsweredWithMsgIdZero) {
  // ExpectReply checks the whole body: type, in_reply_to and msg_id 0.
  node().Init();
}

TEST_F(FreshNodeTest, RequestsBeforeInitAreError11) {
  node().ExpectError(R"({"type":"mvcc_put","key":"k","value":1,"timestamp":1})", 11);
  node().ExpectError(R"({"type":"mvcc_get","key":"k"})", 11);
  node().ExpectError(R"({"type":"mvcc_stats"})", 11);
  // The refused put must not have been applied; init_ok continues the
  // counter (msg_id 3) because the three errors were messages too.
  EXPECT_EQ(node().next_node_msg_id(), 3);
  node().Init();
  node().ExpectReply(
      R"({"type":"mvcc_get","key":"k"})",
      R"({"type":"mvcc_get_ok","value":null,"version":null,"as_of_timestamp":null})");
}

TEST_F(FreshNodeTest, MalformedInitIsError12) {
  node().ExpectError(R"({"type":"init","node_ids":["n1"]})", 12);
  node().ExpectError(R"({"type":"init","node_id":5,"node_ids":["n1"]})", 12);
  node().ExpectError(R"({"type":"init","node_id":"n1","node_ids":"n1"})", 12);
  node().Init();
}

TEST_F(NodeTest, UnknownTypeIsError10) {
  std::string text = node().ExpectError(R"({"type":"no_such_request"})", 10);
  EXPECT_NE(text.find("no_such_request"), std::string::npos) << text;
}

TEST_F(NodeTest, MsgIdCountsEveryMessageSent) {
  // NextReply checks the counter on every reply; errors count like replies.
  node().Call(R"({"type":"mvcc_put","key":"k","value":1,"timestamp":1})");
  node().ExpectError(R"({"type":"no_such_request"})", 10);
  node().Call(R"({"type":"mvcc_get","key":"k"})");
  EXPECT_EQ(node().next_node_msg_id(), 4);
}

TEST_F(NodeTest, ReplyGoesToTheRequestSource) {
  node().SendLine(R"({"src":"c7","dest":"n1","body":{"type":"mvcc_get","msg_id":42,"key":"k"}})");
  std::optional<std::string> line = node().ReadLine();
  ASSERT_TRUE(line);
  node().CountReply();
  EXPECT_TRUE(SameJson(*line, R"({"src":"n1","dest":"c7","body":{"type":"mvcc_get_ok",
                "in_reply_to":42,"msg_id":1,"value":null,"version":null,
                "as_of_timestamp":null}})"));
}

TEST_F(NodeTest, ExtraEnvelopeFieldsAreIgnored) {
  // Maelstrom's network adds a top-level "id" to every message.
  node().SendLine(
      R"({"id":17,"src":"c1","dest":"n1","body":{"type":"mvcc_get","msg_id":9,"key":"k"}})");
  JsonValue reply = node().NextReply();
  EXPECT_EQ(reply["in_reply_to"].Int(), 9);
  EXPECT_EQ(reply["type"].String(), "mvcc_get_ok");
}

TEST_F(NodeTest, RequestWithoutMsgIdIsProcessedButNotAnswered) {
  node().SendUnanswered(R"({"type":"mvcc_put","key":"k","value":"quiet","timestamp":5})");
  node().SendUnanswered(R"({"type":"mvcc_get","key":"k"})");
  // Even an erroneous request without msg_id has nobody to answer to.
  node().SendUnanswered(R"({"type":"no_such_request"})");
  node().SendUnanswered(R"({"type":"mvcc_put","key":"k"})");
  // The next reply must be this one (Call checks in_reply_to), with the
  // counter untouched by the unanswered requests.
  node().ExpectReply(R"({"type":"mvcc_get","key":"k"})",
                     R"({"type":"mvcc_get_ok","value":"quiet","version":1,"as_of_timestamp":5})");
  EXPECT_EQ(node().next_node_msg_id(), 2);
}

TEST_F(NodeTest, ReplyIsFlushedWhileInputStaysOpen) {
  // Stdin stays open: a node that only flushes at end of input (or when its
  // buffer fills) times out here.
  int64_t msg_id = node().Send(R"({"type":"mvcc_stats"})");
  std::optional<std::string> line = node().process().ReadLine(std::chrono::seconds(2));
  ASSERT_TRUE(line) << "no reply within 2 s while stdin is open";
  node().CountReply();
  EXPECT_EQ(JsonValue::Parse(*line)["body"]["in_reply_to"].Int(), msg_id);
}

TEST_F(NodeTest, LastLineWithoutNewlineIsAnswered) {
  ASSERT_TRUE(node().process().Write(
      R"({"src":"c1","dest":"n1","body":{"type":"mvcc_get","msg_id":77,"key":"k"}})",
      kReplyTimeout));
  node().process().CloseStdin();
  JsonValue reply = node().NextReply();
  EXPECT_EQ(reply["in_reply_to"].Int(), 77);
}

}  // namespace
}  // namespace strata::testing
