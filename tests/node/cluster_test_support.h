// An in-process cluster for tests: N strata::node::Node objects joined by a
// router that carries each output line to the node its "dest" names.
//
// Lines addressed to anyone else are client replies, kept per client for
// the test to look at. A filter may drop or hold node-to-node messages by
// type (or anything else in them), a node may be declared dead (nothing is
// delivered to it and its timers no longer run), and every wait is a loop
// that delivers messages and runs every live node's timers on real time
// until a condition holds or a deadline passes: no fixed long sleeps.
#ifndef STRATA_TESTS_NODE_CLUSTER_TEST_SUPPORT_H_
#define STRATA_TESTS_NODE_CLUSTER_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cluster/shard_map.h"
#include "json_value.h"
#include "node/node.h"
#include "protocol/key_codec.h"

namespace strata::testing {

// One line in flight, with what the router needs to know about it.
struct Message {
  std::string src, dest, type;
  std::string line;
  JsonValue json;  // the parsed line
};

enum class Fate { kDeliver, kDrop, kHold };

// Timings short enough for tests, long enough for a loaded machine.
inline node::ClusterOptions FastClusterOptions() {
  node::ClusterOptions o;
  o.heartbeat_interval = std::chrono::milliseconds(20);
  o.heartbeat_timeout = std::chrono::milliseconds(200);
  o.push_after = std::chrono::milliseconds(10);
  o.read_wait = std::chrono::milliseconds(3000);
  o.rpc_timeout = std::chrono::milliseconds(2000);
  o.low_water_mark_interval = std::chrono::milliseconds(10);
  o.max_clock_offset = std::chrono::milliseconds(0);
  return o;
}

class TestCluster {
 public:
  using Clock = std::chrono::steady_clock;

  // `customize` (if given) changes node i's options before it starts.
  explicit TestCluster(size_t n, node::ClusterOptions cluster = FastClusterOptions(),
                       Isolation isolation = Isolation::kSerializable,
                       const std::function<void(size_t, node::NodeOptions*)>& customize = nullptr) {
    for (size_t i = 0; i < n; ++i) ids_.push_back(std::string("n").append(std::to_string(i + 1)));
    auto map = cluster::ShardMap::OnePerNode(ids_);
    EXPECT_TRUE(map.ok());
    map_.emplace(std::move(*map));
    std::string id_list;
    for (const std::string& id : ids_) id_list += (id_list.empty() ? "\"" : ",\"") + id + "\"";
    for (size_t i = 0; i < n; ++i) {
      node::NodeOptions options;
      options.isolation = isolation;
      options.cluster = cluster;
      if (customize) customize(i, &options);
      nodes_.push_back(std::make_unique<node::Node>(options));
      std::string out, log;
      nodes_.back()->HandleLine(R"({"src":"c0","dest":")" + ids_[i] +
                                    R"(","body":{"type":"init","msg_id":1,"node_id":")" + ids_[i] +
                                    R"(","node_ids":[)" + id_list + "]}}",
                                &out, &log);
      EXPECT_NE(out.find("init_ok"), std::string::npos) << out << log;
    }
  }

  size_t size() const { return nodes_.size(); }
  const std::string& id(size_t i) const { return ids_[i]; }
  node::Node& node(size_t i) { return *nodes_[i]; }
  bool IsNode(std::string_view id) const {
    for (const std::string& n : ids_) {
      if (n == id) return true;
    }
    return false;
  }
  size_t IndexOf(std::string_view id) const {
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] == id) return i;
    }
    ADD_FAILURE() << "no node " << id;
    return 0;
  }

  // --- keys ---------------------------------------------------------------
  // The shard (= node index) that owns the JSON key `key_json` ("x" or 7).
  size_t ShardOf(std::string_view key_json) const { return map_->ShardFor(EngineKey(key_json)).id; }
  // The engine bytes of the JSON key `key_json`, and their hex (as node
  // messages carry keys).
  static std::string EngineKey(std::string_view key_json) {
    std::string engine;
    JsonValue key = JsonValue::Parse(key_json);
    if (auto s = key.String()) {
      protocol::EncodeStringKey(*s, &engine);
    } else {
      protocol::EncodeIntegerKey(*key.Int(), &engine);
    }
    return engine;
  }
  static std::string HexKey(std::string_view key_json) {
    std::string hex;
    for (unsigned char ch : EngineKey(key_json)) {
      hex.push_back("0123456789abcdef"[ch >> 4]);
      hex.push_back("0123456789abcdef"[ch & 15]);
    }
    return hex;
  }
  // Feeds node `i` a message from node `src` (a body with its msg_id) as if
  // it came over the network, without routing what the node writes: the
  // first line it wrote, parsed (invalid if none).
  JsonValue FromPeerUnrouted(size_t i, std::string_view src, std::string_view body) {
    std::string out, log;
    nodes_[i]->HandleLine(R"({"src":")" + std::string(src) + R"(","dest":")" + ids_[i] +
                              R"(","body":)" + std::string(body) + "}",
                          &out, &log);
    return JsonValue::Parse(out.substr(0, out.find('\n')));
  }
  // The `n`th (from 0) string key "<prefix><i>" owned by `shard`, as JSON.
  std::string StringKeyOn(size_t shard, std::string_view prefix, int n = 0) const {
    for (int i = 0;; ++i) {
      std::string key("\"");
      key.append(prefix).append(std::to_string(i)).append("\"");
      if (ShardOf(key) == shard && n-- == 0) return key;
    }
  }
  // The `n`th integer key >= 1 owned by `shard`, as JSON.
  std::string IntKeyOn(size_t shard, int n = 0) const {
    for (int i = 1;; ++i) {
      std::string key = std::to_string(i);
      if (ShardOf(key) == shard && n-- == 0) return key;
    }
  }

  // --- routing ------------------------------------------------------------
  // Decides each node-to-node message's fate (default: deliver).
  std::function<Fate(const Message&)> filter;
  // Every node-to-node message the nodes sent (delivered or not), in order.
  const std::vector<Message>& sent() const { return sent_; }
  void ClearSent() { sent_.clear(); }
  size_t CountSent(std::string_view type, std::string_view src = "",
                   std::string_view dest = "") const {
    size_t n = 0;
    for (const Message& m : sent_) {
      if (m.type == type && (src.empty() || m.src == src) && (dest.empty() || m.dest == dest)) ++n;
    }
    return n;
  }
  // Puts held messages back on the wire.
  void ReleaseHeld() {
    for (Message& m : held_) queue_.push_back(std::move(m));
    held_.clear();
  }
  size_t held() const { return held_.size(); }
  // A dead node receives nothing and runs no timers.
  void Kill(size_t i) { dead_.insert(ids_[i]); }

  // Feeds `line` to node `i` and routes what it writes.
  void Inject(size_t i, std::string_view line) {
    std::string out, log;
    nodes_[i]->HandleLine(line, &out, &log);
    log_ += log;
    Route(out);
  }

  // Sends a client request (a body object without msg_id) from `client`
  // to node `i`; returns its msg_id.
  int64_t Send(size_t i, std::string_view body, std::string_view client = "c1") {
    const int64_t msg_id = next_client_msg_id_++;
    Inject(i, R"({"src":")" + std::string(client) + R"(","dest":")" + ids_[i] + R"(","body":)" +
                  WithMembers(body, "\"msg_id\":" + std::to_string(msg_id)) + "}");
    return msg_id;
  }

  // The reply to `msg_id` if it came (its body).
  std::optional<JsonValue> ReplyTo(int64_t msg_id, std::string_view client = "c1") const {
    auto it = client_inbox_.find(std::string(client));
    if (it == client_inbox_.end()) return std::nullopt;
    for (const JsonValue& reply : it->second) {
      if (reply["body"]["in_reply_to"].Int() == msg_id) return reply["body"];
    }
    return std::nullopt;
  }
  size_t RepliesTo(int64_t msg_id, std::string_view client = "c1") const {
    size_t n = 0;
    auto it = client_inbox_.find(std::string(client));
    if (it == client_inbox_.end()) return 0;
    for (const JsonValue& reply : it->second) n += reply["body"]["in_reply_to"].Int() == msg_id;
    return n;
  }

  // Waits (delivering and running timers) for the reply to `msg_id`; an
  // invalid value (and a test failure) if none comes by `timeout`.
  JsonValue Await(int64_t msg_id, std::string_view client = "c1",
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    if (Until([&] { return ReplyTo(msg_id, client).has_value(); }, timeout)) {
      return *ReplyTo(msg_id, client);
    }
    ADD_FAILURE() << "no reply to msg_id " << msg_id << " from the cluster within "
                  << timeout.count() << " ms";
    return JsonValue();
  }

  // Send + Await.
  JsonValue Request(size_t i, std::string_view body, std::string_view client = "c1") {
    return Await(Send(i, body, client), client);
  }
  // Request, expecting reply type `type` (e.g. "txn_begin_ok").
  JsonValue Expect(size_t i, std::string_view body, std::string_view type,
                   std::string_view client = "c1") {
    JsonValue reply = Request(i, body, client);
    EXPECT_EQ(reply["type"].String(), std::string(type))
        << "request " << body << " to " << ids_[i] << " got " << reply.Canonical();
    return reply;
  }
  // Request, expecting error `code`.
  void ExpectError(size_t i, std::string_view body, int code, std::string_view client = "c1") {
    JsonValue reply = Request(i, body, client);
    EXPECT_EQ(reply["type"].String(), "error") << body << " got " << reply.Canonical();
    EXPECT_EQ(reply["code"].Int(), code) << body << " got " << reply.Canonical();
  }

  // Delivers every message on the wire (and what they cause) and runs the
  // timers of the live nodes once.
  void Step() {
    for (int rounds = 0; !queue_.empty() && rounds < 100000; ++rounds) {
      Message m = std::move(queue_.front());
      queue_.pop_front();
      if (dead_.count(m.dest)) continue;
      Inject(IndexOf(m.dest), m.line);
    }
    const auto now = Clock::now();
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (dead_.count(ids_[i])) continue;
      std::string out;
      nodes_[i]->RunTimers(now, &out);
      Route(out);
    }
  }

  // Steps until `done()` holds (true) or `timeout` passes (false).
  bool Until(const std::function<bool()>& done,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      Step();
      if (done()) return true;
      if (Clock::now() > deadline) return false;
      if (queue_.empty()) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
  // Steps for `duration` (for "nothing happens while ..." checks).
  void RunFor(std::chrono::milliseconds duration) {
    Until([] { return false; }, duration);
  }

  // mvcc_stats of node `i`.
  JsonValue Stats(size_t i) { return Expect(i, R"({"type":"mvcc_stats"})", "mvcc_stats_ok"); }
  // Waits until every node has heard every other's low-water mark.
  void AwaitLowWaterMarks() {
    for (size_t i = 0; i < size(); ++i) {
      EXPECT_TRUE(Until([&] { return !Stats(i)["cluster_low_water_mark"].IsNull(); }))
          << ids_[i] << " never learned the cluster's low-water mark";
    }
  }

  const std::string& log() const { return log_; }
  // Node-to-node messages sent without "hlc" (every one should carry it).
  const std::vector<std::string>& unstamped() const { return unstamped_; }
  // Makes every live node take a fresh timestamp (a transaction begun and
  // aborted), so that no node's clock lags behind the others'.
  void TickClocks() {
    for (size_t i = 0; i < size(); ++i) {
      if (dead_.count(ids_[i])) continue;
      JsonValue begin = Request(i, R"({"type":"txn_begin","isolation":"snapshot"})", "tick");
      Request(i,
              R"({"type":"txn_abort","txn_id":)" +
                  std::to_string(begin["txn_id"].Int().value_or(0)) + "}",
              "tick");
    }
  }

 private:
  void Route(const std::string& out) {
    size_t pos = 0;
    while (pos < out.size()) {
      size_t end = out.find('\n', pos);
      if (end == std::string::npos) end = out.size();
      std::string line = out.substr(pos, end - pos);
      pos = end + 1;
      Message m;
      m.json = JsonValue::Parse(line);
      EXPECT_TRUE(m.json.valid()) << "a node wrote an unparsable line: " << line;
      if (!m.json.valid()) continue;
      m.src = m.json["src"].String().value_or("");
      m.dest = m.json["dest"].String().value_or("");
      m.type = m.json["body"]["type"].String().value_or("");
      m.line = std::move(line);
      if (!IsNode(m.dest)) {
        client_inbox_[m.dest].push_back(m.json);
        continue;
      }
      if (!m.json["body"]["hlc"].Int().has_value()) unstamped_.push_back(m.line);
      sent_.push_back(m);
      if (dead_.count(m.dest)) continue;
      switch (filter ? filter(m) : Fate::kDeliver) {
        case Fate::kDeliver:
          queue_.push_back(std::move(m));
          break;
        case Fate::kDrop:
          break;
        case Fate::kHold:
          held_.push_back(std::move(m));
          break;
      }
    }
  }

  std::vector<std::string> ids_;
  std::optional<cluster::ShardMap> map_;
  std::vector<std::unique_ptr<node::Node>> nodes_;
  std::deque<Message> queue_;
  std::vector<Message> held_;
  std::vector<Message> sent_;
  std::set<std::string> dead_;
  std::map<std::string, std::vector<JsonValue>> client_inbox_;
  int64_t next_client_msg_id_ = 1;
  std::string log_;
  std::vector<std::string> unstamped_;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_NODE_CLUSTER_TEST_SUPPORT_H_
