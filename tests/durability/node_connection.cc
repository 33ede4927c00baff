#include "node_connection.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>

namespace strata::testing {

NodeConnection::NodeConnection(const std::vector<std::string>& args)
    : process_(StrataNodeBinary(), args) {
  EXPECT_TRUE(process_.ok()) << "cannot start " << StrataNodeBinary();
}

int64_t NodeConnection::Queue(std::string_view body) {
  const int64_t msg_id = next_msg_id_++;
  // Requests from this client are objects, so the msg_id goes right after '{'.
  queued_.append(R"({"src":"c1","dest":"n1","body":{"msg_id":)")
      .append(std::to_string(msg_id))
      .append(",")
      .append(body.substr(1))
      .append("}\n");
  return msg_id;
}

bool NodeConnection::Flush(size_t hold_back) {
  const size_t length = queued_.size() > hold_back ? queued_.size() - hold_back : 0;
  const bool written =
      length == 0 || process_.Write(std::string_view(queued_).substr(0, length), kTimeout);
  queued_.clear();
  return written;
}

std::optional<JsonValue> NodeConnection::Poll(std::chrono::milliseconds timeout) {
  std::optional<std::string> line = process_.ReadLine(timeout);
  if (!line) return std::nullopt;
  JsonValue reply = JsonValue::Parse(*line);
  JsonValue body = reply["body"];
  EXPECT_TRUE(reply.IsObject() && body.IsObject() && reply["src"].String() == "n1")
      << "stdout line is not a reply from n1: " << *line;
  EXPECT_EQ(body["msg_id"].Int(), next_node_msg_id_) << "msg_id out of sequence: " << *line;
  ++next_node_msg_id_;
  EXPECT_NE(body["code"].Int(), 13) << "the node reported an internal fault: " << *line;
  return body;
}

JsonValue NodeConnection::Call(std::string_view body) {
  const int64_t msg_id = Queue(body);
  if (!Flush()) {
    ADD_FAILURE() << "node did not accept " << body << "; stderr:\n" << process_.StderrTail();
    return JsonValue();
  }
  std::optional<JsonValue> reply = Poll(kTimeout);
  if (!reply) {
    ADD_FAILURE() << "no reply to " << body << " within " << kTimeout.count() << " ms; stderr:\n"
                  << process_.StderrTail();
    return JsonValue();
  }
  EXPECT_EQ((*reply)["in_reply_to"].Int(), msg_id) << "request: " << body;
  return *reply;
}

JsonValue NodeConnection::CallOk(std::string_view body, std::string_view ok_type) {
  JsonValue reply = Call(body);
  EXPECT_EQ(reply["type"].String(), std::string(ok_type))
      << "request: " << body << "\nreply: " << reply.Canonical();
  return reply;
}

std::optional<int> NodeConnection::Kill() { return process_.Kill(SIGKILL, kTimeout); }

}  // namespace strata::testing
