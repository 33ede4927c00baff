// The seed task (/work/shared/seeds/000_99fe87137859fcaa.txt), reproduced
// reply for reply: its two sample cases and its four request/response
// examples, with the envelope, msg_id and in_reply_to the protocol adds.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "json_value.h"
#include "node_session.h"

namespace strata::testing {
namespace {

enum class Pacing {
  kBatch,     // all input in one write, as the seed's harness feeds a case
  kLockstep,  // one line, then its reply, like an interactive client
};

// Feeds `input` with `pacing`, then expects exactly `expected` (compared as
// JSON values, one reply per input line) and a clean exit.
void RunScript(const std::vector<std::string>& input, const std::vector<std::string>& expected,
               Pacing pacing) {
  ASSERT_EQ(input.size(), expected.size());
  NodeSession node;
  auto expect_reply = [&node](const std::string& want) {
    std::optional<std::string> got = node.ReadLine();
    ASSERT_TRUE(got) << "missing reply " << want << "\nstderr: " << node.process().stderr_text();
    EXPECT_TRUE(SameJson(*got, want));
  };
  if (pacing == Pacing::kBatch) {
    std::string bytes;
    for (const std::string& line : input) bytes += line + "\n";
    EXPECT_TRUE(node.process().Write(bytes, kReplyTimeout));
    for (const std::string& want : expected) expect_reply(want);
  } else {
    for (size_t i = 0; i < input.size(); ++i) {
      node.SendLine(input[i]);
      expect_reply(expected[i]);
    }
  }
  node.ExpectCleanExit();
}

const std::vector<std::string> kSeedPrefix = {
    R"({"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}})",
    R"({"src":"c1","dest":"n1","body":{"type":"mvcc_put","msg_id":2,"key":"x","value":"old","timestamp":100}})",
    R"({"src":"c1","dest":"n1","body":{"type":"mvcc_put","msg_id":3,"key":"x","value":"new","timestamp":200}})",
};

const std::vector<std::string> kSeedPrefixReplies = {
    // Verbatim from the seed's "Expected Output" (spaces and all).
    R"({"src": "n1", "dest": "c0", "body": {"type": "init_ok", "in_reply_to": 1, "msg_id": 0}})",
    R"({"src":"n1","dest":"c1","body":{"type":"mvcc_put_ok","in_reply_to":2,"msg_id":1,"version":1,"timestamp":100}})",
    R"({"src":"n1","dest":"c1","body":{"type":"mvcc_put_ok","in_reply_to":3,"msg_id":2,"version":2,"timestamp":200}})",
};

std::vector<std::string> Concat(std::vector<std::string> head, const std::string& tail) {
  head.push_back(tail);
  return head;
}

TEST(SeedTest, ReadAtOldTimestampGetsOldVersion) {
  RunScript(
      Concat(
          kSeedPrefix,
          R"({"src":"c1","dest":"n1","body":{"type":"mvcc_get","msg_id":4,"key":"x","read_timestamp":150}})"),
      Concat(
          kSeedPrefixReplies,
          R"({"src":"n1","dest":"c1","body":{"type":"mvcc_get_ok","in_reply_to":4,"msg_id":3,"value":"old","version":1,"as_of_timestamp":100}})"),
      Pacing::kBatch);
}

TEST(SeedTest, ReadAtCurrentTimestampGetsLatest) {
  RunScript(
      Concat(
          kSeedPrefix,
          R"({"src":"c1","dest":"n1","body":{"type":"mvcc_get","msg_id":4,"key":"x","read_timestamp":300}})"),
      Concat(
          kSeedPrefixReplies,
          R"({"src":"n1","dest":"c1","body":{"type":"mvcc_get_ok","in_reply_to":4,"msg_id":3,"value":"new","version":2,"as_of_timestamp":200}})"),
      Pacing::kBatch);
}

// The four request/response examples, sent one at a time after init (which
// takes node msg_id 0, so the examples' replies carry msg_id 1 to 4).
TEST(SeedTest, RequestResponseExamples) {
  RunScript(
      {
          R"({"src":"c0","dest":"n1","body":{"type":"init","msg_id":0,"node_id":"n1","node_ids":["n1"]}})",
          R"({"src":"c1","dest":"n1","body":{"type": "mvcc_put", "msg_id": 1, "key": "x", "value": "v1", "timestamp": 100}})",
          R"({"src":"c1","dest":"n1","body":{"type": "mvcc_put", "msg_id": 2, "key": "x", "value": "v2", "timestamp": 200}})",
          R"({"src":"c1","dest":"n1","body":{"type": "mvcc_get", "msg_id": 3, "key": "x", "read_timestamp": 150}})",
          R"({"src":"c1","dest":"n1","body":{"type": "mvcc_get", "msg_id": 4, "key": "x", "read_timestamp": 250}})",
      },
      {
          R"({"src":"n1","dest":"c0","body":{"type":"init_ok","in_reply_to":0,"msg_id":0}})",
          R"({"src":"n1","dest":"c1","body":{"type": "mvcc_put_ok", "in_reply_to": 1, "version": 1, "timestamp": 100, "msg_id": 1}})",
          R"({"src":"n1","dest":"c1","body":{"type": "mvcc_put_ok", "in_reply_to": 2, "version": 2, "timestamp": 200, "msg_id": 2}})",
          R"({"src":"n1","dest":"c1","body":{"type": "mvcc_get_ok", "in_reply_to": 3, "value": "v1", "version": 1, "as_of_timestamp": 100, "msg_id": 3}})",
          R"({"src":"n1","dest":"c1","body":{"type": "mvcc_get_ok", "in_reply_to": 4, "value": "v2", "version": 2, "as_of_timestamp": 200, "msg_id": 4}})",
      },
      Pacing::kLockstep);
}

}  // namespace
}  // namespace strata::testing
