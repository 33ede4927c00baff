#include "fault_node.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace strata::testing {

// ---- TempDir -----------------------------------------------------------------

TempDir::TempDir() {
  char pattern[] = "/tmp/strata-faults-XXXXXX";
  const char* made = mkdtemp(pattern);
  EXPECT_NE(made, nullptr) << "mkdtemp failed";
  path_ = made != nullptr ? made : "/nonexistent";
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
  std::filesystem::remove(ArmFile(), ignored);
}

std::string TempDir::File(std::string_view name) const { return path_ + "/" + std::string(name); }

std::vector<std::string> TempDir::List() const {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(path_, error)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// ---- ShimConfig --------------------------------------------------------------

std::vector<std::string> ShimConfig::Env() const {
  // An ASan runtime that is a shared library (GCC's default) must be the
  // first object loaded, so it goes in front of the shim. Clang links its
  // runtime into the executable, which needs nothing (STRATA_ASAN_RUNTIME
  // is then empty).
  std::string preload = STRATA_ASAN_RUNTIME;
  if (!preload.empty()) preload += ':';
  preload += STRATA_FAULT_SHIM;
  std::vector<std::string> env = {"LD_PRELOAD=" + preload};
  if (!path.empty()) env.push_back("STRATA_FAULT_PATH=" + path);
  if (!op.empty()) env.push_back("STRATA_FAULT_OP=" + op);
  if (!error.empty()) env.push_back("STRATA_FAULT_ERRNO=" + error);
  env.push_back("STRATA_FAULT_AFTER=" + std::to_string(after));
  env.push_back("STRATA_FAULT_COUNT=" + std::to_string(count));
  if (!armed_if.empty()) env.push_back("STRATA_FAULT_ARMED_IF=" + armed_if);
  return env;
}

// ---- FaultNode ---------------------------------------------------------------

namespace {

std::vector<std::string> NodeArgs(const std::string& dir, const std::vector<std::string>& flags) {
  std::vector<std::string> args = {"--data-dir", dir};
  args.insert(args.end(), flags.begin(), flags.end());
  return args;
}

}  // namespace

FaultNode::FaultNode(const std::string& dir, const std::vector<std::string>& flags,
                     const std::optional<ShimConfig>& shim)
    : process_(StrataNodeBinary(), NodeArgs(dir, flags),
               shim ? shim->Env() : std::vector<std::string>{}) {
  EXPECT_TRUE(process_.ok()) << "cannot start " << StrataNodeBinary();
}

void FaultNode::Init() {
  JsonValue reply = Call(R"({"type":"init","node_id":"n1","node_ids":["n1"]})");
  if (!reply.valid()) return;  // Await reported why
  EXPECT_EQ(reply["type"].String(), "init_ok") << reply.Canonical() << "\n" << StderrTail();
}

int64_t FaultNode::Send(std::string_view body) {
  int64_t msg_id = next_msg_id_++;
  std::string line = R"({"src":"c1","dest":"n1","body":)" +
                     WithMembers(body, "\"msg_id\":" + std::to_string(msg_id)) + "}\n";
  // Once the node stopped answering (or exited), the failure is reported
  // already; more input would only add one report per request.
  if (stalled_) return msg_id;
  if (!process_.Write(line, kFaultReplyTimeout)) {
    stalled_ = true;
    ADD_FAILURE() << "node did not accept input; stderr:\n" << StderrTail();
  }
  return msg_id;
}

bool FaultNode::ReadOne() {
  std::optional<std::string> line = process_.ReadLine(kFaultReplyTimeout);
  if (!line) return false;
  JsonValue message = JsonValue::Parse(*line);
  EXPECT_TRUE(message.IsObject()) << "stdout line is not a JSON object: " << *line;
  JsonValue body = message["body"];
  EXPECT_EQ(body["msg_id"].Int(), next_node_msg_id_) << "msg_id out of sequence: " << *line;
  ++next_node_msg_id_;
  std::optional<int64_t> in_reply_to = body["in_reply_to"].Int();
  EXPECT_TRUE(in_reply_to) << "reply without in_reply_to: " << *line;
  if (!in_reply_to) return true;
  EXPECT_FALSE(replies_.contains(*in_reply_to)) << "second reply to one request: " << *line;
  replies_[*in_reply_to] = body;
  return true;
}

JsonValue FaultNode::Await(int64_t msg_id) {
  while (!replies_.contains(msg_id)) {
    if (stalled_) {
      ADD_FAILURE() << "no reply to msg_id " << msg_id << ": the node stopped answering earlier";
      return JsonValue();
    }
    const auto start = std::chrono::steady_clock::now();
    if (!ReadOne()) {
      // Waiting again for a node that stopped answering would only add a
      // timeout per request; later calls fail at once.
      stalled_ = true;
      const bool exited = std::chrono::steady_clock::now() - start < kFaultReplyTimeout;
      ADD_FAILURE() << "no reply to msg_id " << msg_id
                    << (exited ? ": the node closed its stdout (exited)"
                               : " within " + std::to_string(kFaultReplyTimeout.count()) + " ms")
                    << "; stderr:\n"
                    << StderrTail();
      return JsonValue();
    }
  }
  JsonValue reply = replies_[msg_id];
  replies_.erase(msg_id);
  return reply;
}

JsonValue FaultNode::Stats() {
  JsonValue reply = Call(R"({"type":"mvcc_stats"})");
  EXPECT_EQ(reply["type"].String(), "mvcc_stats_ok") << reply.Canonical();
  return reply;
}

void FaultNode::PutAll(std::vector<WriteRecord>* records, size_t window) {
  size_t sent = 0;
  size_t done = 0;
  std::vector<int64_t> ids(records->size());
  while (done < records->size()) {
    // Keep up to `window` requests in flight: the node groups their records
    // into one fsync, as it would for concurrent clients.
    while (sent < records->size() && sent - done < window) {
      const WriteRecord& record = (*records)[sent];
      ids[sent] = Send(R"({"type":"mvcc_put","key":)" + record.key + R"(,"value":)" + record.value +
                       R"(,"timestamp":)" + std::to_string(record.timestamp) + "}");
      ++sent;
    }
    WriteRecord& record = (*records)[done];
    JsonValue reply = Await(ids[done]);
    ++done;
    if (!reply.valid()) {
      // A node that stopped answering would cost a timeout per request;
      // one failure (reported by Await) says it all. The rest stay unknown.
      return;
    }
    if (reply["type"].String() == "mvcc_put_ok") {
      record.outcome = Outcome::kAcked;
      continue;
    }
    record.text = reply["text"].String().value_or("");
    std::optional<int64_t> code = reply["code"].Int();
    if (code == 11) {
      record.outcome = Outcome::kRefused;
    } else if (code == 13) {
      record.outcome = Outcome::kUnknown;
    } else {
      record.outcome = Outcome::kUnknown;
      ADD_FAILURE() << "put of " << record.key
                    << " got neither success nor error 11/13: " << reply.Canonical();
    }
  }
}

bool FaultNode::WaitForStderr(std::string_view needle, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (process_.stderr_text().find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    // A request pumps the node's pipes, which is how stderr gets read.
    Stats();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::optional<int> FaultNode::Close() {
  std::optional<int> status = process_.WaitForExit(std::chrono::seconds(30));
  EXPECT_TRUE(status) << "node did not exit within 30 s of end of input; stderr:\n" << StderrTail();
  return status;
}

std::string FaultNode::StderrTail() const { return process_.StderrTail(3000); }

// ---- writes and their check ----------------------------------------------------

std::vector<WriteRecord> MakeWrites(std::string_view prefix, size_t count, size_t value_bytes,
                                    int64_t first_timestamp) {
  std::vector<WriteRecord> records(count);
  for (size_t i = 0; i < count; ++i) {
    std::string name = std::string(prefix) + std::to_string(i);
    records[i].key = QuoteJson(name);
    // The key in the value makes a value found under the wrong key visible.
    std::string value = name + ":";
    value.resize(std::max(value.size(), value_bytes), 'v');
    records[i].value = QuoteJson(value);
    records[i].timestamp = first_timestamp + static_cast<int64_t>(i);
  }
  return records;
}

void ExpectRecovered(FaultNode& node, const std::vector<WriteRecord>& records) {
  constexpr size_t kWindow = 64;
  std::vector<int64_t> ids(records.size());
  size_t sent = 0;
  for (size_t done = 0; done < records.size(); ++done) {
    while (sent < records.size() && sent - done < kWindow) {
      ids[sent] = node.Send(R"({"type":"mvcc_get","key":)" + records[sent].key + "}");
      ++sent;
    }
    const WriteRecord& record = records[done];
    JsonValue reply = node.Await(ids[done]);
    if (!reply.valid()) return;  // the node is gone; Await reported it
    ASSERT_EQ(reply["type"].String(), "mvcc_get_ok")
        << "get " << record.key << ": " << reply.Canonical() << "\n"
        << node.StderrTail();
    bool present = !reply["value"].IsNull();
    switch (record.outcome) {
      case Outcome::kAcked:
        EXPECT_TRUE(SameJson(reply["value"], record.value))
            << "acknowledged put of " << record.key << " was lost or changed by the restart";
        EXPECT_EQ(reply["as_of_timestamp"].Int(), record.timestamp) << record.key;
        break;
      case Outcome::kRefused:
        EXPECT_FALSE(present) << "put of " << record.key
                              << " was refused with error 11 (definite), yet it is there after "
                                 "a restart; the refusal said: "
                              << record.text;
        break;
      case Outcome::kUnknown:
        if (present) {
          EXPECT_TRUE(SameJson(reply["value"], record.value)) << record.key;
        }
        break;
    }
  }
}

size_t CountOutcome(const std::vector<WriteRecord>& records, Outcome outcome) {
  return static_cast<size_t>(std::count_if(records.begin(), records.end(),
                                           [&](const auto& r) { return r.outcome == outcome; }));
}

std::string Lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

}  // namespace strata::testing
