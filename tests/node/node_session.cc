#include "node_session.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>

namespace strata::testing {
namespace {

std::string MsgIdMember(std::string_view name, int64_t id) {
  std::string member = "\"";  // appended piecewise: see WithMembers
  member.append(name).append("\":").append(std::to_string(id));
  return member;
}

}  // namespace

NodeSession::NodeSession(const std::vector<std::string>& args)
    : process_(StrataNodeBinary(), args) {
  EXPECT_TRUE(process_.ok()) << "cannot start " << StrataNodeBinary();
}

void NodeSession::Init() {
  ExpectReply(R"({"type":"init","node_id":"n1","node_ids":["n1"]})", R"({"type":"init_ok"})");
}

void NodeSession::SendLine(std::string_view line) {
  std::string bytes(line);
  bytes += '\n';
  EXPECT_TRUE(process_.Write(bytes, std::chrono::seconds(10)))
      << "node did not accept input; stderr:\n"
      << process_.StderrTail();
}

int64_t NodeSession::Send(std::string_view body) {
  int64_t msg_id = next_client_msg_id_++;
  SendLine(R"({"src":"c1","dest":"n1","body":)" + WithMembers(body, MsgIdMember("msg_id", msg_id)) +
           "}");
  return msg_id;
}

void NodeSession::SendUnanswered(std::string_view body) {
  SendLine(R"({"src":"c1","dest":"n1","body":)" + std::string(body) + "}");
}

JsonValue NodeSession::NextReply() {
  std::optional<std::string> line = process_.ReadLine(kReplyTimeout);
  if (!line) {
    ADD_FAILURE() << "no reply within " << kReplyTimeout.count() << " ms; stderr:\n"
                  << process_.StderrTail();
    return JsonValue();
  }
  JsonValue reply = JsonValue::Parse(*line);
  EXPECT_TRUE(reply.IsObject()) << "stdout line is not a JSON object: " << *line;
  EXPECT_EQ(reply["src"].String(), std::string(kNodeId)) << *line;
  EXPECT_TRUE(reply["dest"].String()) << *line;
  JsonValue body = reply["body"];
  EXPECT_TRUE(body.IsObject()) << *line;
  EXPECT_TRUE(body["type"].String()) << *line;
  EXPECT_EQ(body["msg_id"].Int(), next_node_msg_id_) << "msg_id out of sequence: " << *line;
  ++next_node_msg_id_;
  if (body["type"].String() == "error") {
    // Every error reply, expected or not, must be complete and actionable.
    EXPECT_TRUE(body["code"].Int()) << *line;
    EXPECT_NE(body["code"].Int(), 13) << "the node reported an internal fault: " << *line;
    std::optional<std::string> text = body["text"].String();
    EXPECT_TRUE(text && !text->empty()) << "error without text: " << *line;
  }
  return body;
}

JsonValue NodeSession::Call(std::string_view body) {
  int64_t msg_id = Send(body);
  JsonValue reply = NextReply();
  EXPECT_EQ(reply["in_reply_to"].Int(), msg_id) << "request: " << body;
  return reply;
}

void NodeSession::ExpectReply(std::string_view body, std::string_view expected) {
  int64_t msg_id = next_client_msg_id_;
  int64_t node_msg_id = next_node_msg_id_;
  JsonValue reply = Call(body);
  std::string expected_body = WithMembers(
      expected, MsgIdMember("in_reply_to", msg_id) + "," + MsgIdMember("msg_id", node_msg_id));
  EXPECT_TRUE(SameJson(reply, expected_body)) << "request: " << body;
}

std::string NodeSession::ExpectError(std::string_view body, int code) {
  JsonValue reply = Call(body);
  EXPECT_EQ(reply["type"].String(), "error") << "request: " << body;
  EXPECT_EQ(reply["code"].Int(), code) << "request: " << body << "\nreply: " << reply.Canonical();
  return reply["text"].String().value_or("");
}

namespace {

JsonValue ExpectType(JsonValue reply, std::string_view type, std::string_view request) {
  EXPECT_EQ(reply["type"].String(), std::string(type))
      << "request: " << request << "\nreply: " << reply.Canonical();
  return reply;
}

}  // namespace

JsonValue NodeSession::CallOk(std::string_view body, std::string_view ok_type) {
  return ExpectType(Call(body), ok_type, body);
}

JsonValue NodeSession::Put(std::string_view key, std::string_view value, int64_t timestamp) {
  std::string body = R"({"type":"mvcc_put","key":)" + std::string(key) + R"(,"value":)" +
                     std::string(value) + R"(,"timestamp":)" + std::to_string(timestamp) + "}";
  return ExpectType(Call(body), "mvcc_put_ok", body);
}

JsonValue NodeSession::Delete(std::string_view key, int64_t timestamp) {
  std::string body = R"({"type":"mvcc_delete","key":)" + std::string(key) + R"(,"timestamp":)" +
                     std::to_string(timestamp) + "}";
  return ExpectType(Call(body), "mvcc_delete_ok", body);
}

JsonValue NodeSession::Stats() {
  return ExpectType(Call(R"({"type":"mvcc_stats"})"), "mvcc_stats_ok", "mvcc_stats");
}

void NodeSession::ExpectCleanExit() {
  if (exited_) return;
  exited_ = true;
  std::optional<int> status = process_.WaitForExit(std::chrono::seconds(5));
  ASSERT_TRUE(status) << "node did not exit within 5 s of end of input";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "wait status " << *status << "; stderr:\n"
      << process_.StderrTail();
  EXPECT_EQ(process_.unread_stdout(), "") << "unexpected output after the last expected reply";
}

const std::vector<std::string>& RawStatsFields() {
  static const std::vector<std::string> kFields = {"keys",
                                                   "versions",
                                                   "tombstones",
                                                   "bytes",
                                                   "max_timestamp",
                                                   "compaction_horizon",
                                                   "min_active_snapshot",
                                                   "active_txns",
                                                   "oldest_txn_age_ms",
                                                   "gc_runs",
                                                   "gc_versions_removed",
                                                   "gc_bytes_reclaimed",
                                                   "commits",
                                                   "conflicts"};
  return kFields;
}

}  // namespace strata::testing
