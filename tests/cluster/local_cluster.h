// LocalCluster: N cluster members in one process, linked by an in-memory
// network that a test pumps. Messages are delivered in the order sent;
// timers run on the real clock (commit wait follows the hybrid clock's
// milliseconds), so RunUntil loops until what the test waits for happened.
// For tests of what runs over the cluster (ClusterKv), not of the network.
#ifndef STRATA_TESTS_CLUSTER_LOCAL_CLUSTER_H_
#define STRATA_TESTS_CLUSTER_LOCAL_CLUSTER_H_

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "cluster/member.h"
#include "strata/mvcc_store.h"

namespace strata::cluster {

// One key per shard of `map`: "k0", "k1", ... as `encode` turns them into
// engine keys (the first that lands on each shard, in shard order).
inline std::vector<std::string> KeysOnEveryShard(
    const ShardMap& map, const std::function<std::string(const std::string&)>& encode =
                             [](const std::string& k) { return k; }) {
  std::map<ShardId, std::string> by_shard;
  for (int i = 0; by_shard.size() < map.shards().size(); ++i) {
    const std::string key = "k" + std::to_string(i);
    by_shard.emplace(map.ShardFor(encode(key)).id, key);
  }
  std::vector<std::string> out;
  for (auto& [shard, key] : by_shard) out.push_back(key);
  return out;
}

class LocalCluster {
 public:
  explicit LocalCluster(int nodes, MemberOptions options = {}) {
    std::vector<std::string> ids;
    for (int i = 0; i < nodes; ++i) ids.push_back("n" + std::to_string(i));
    for (int i = 0; i < nodes; ++i) {
      auto node = std::make_unique<Node>();
      node->transport.cluster = this;
      node->transport.self = ids[i];
      node->store = std::make_unique<MvccStore>();
      MvccStore* store = node->store.get();
      Node* raw = node.get();
      auto member = Member::Create(
          ids[i], ids, options, store, /*persist=*/false, Timestamp(), &node->transport,
          [raw](const std::string& request, ShardServer::Respond respond) {
            if (!raw->serve_forward) {
              return respond(PeerError{Status::InvalidArgument("no forwards")});
            }
            raw->serve_forward(request, std::move(respond));
          },
          [store](Timestamp horizon) { return store->Compact(horizon); }, Member::Clock::now());
      if (!member.ok()) std::abort();
      node->member = std::move(*member);
      nodes_.push_back(std::move(node));
    }
  }

  Member& member(int i) { return *nodes_[i]->member; }
  MvccStore& store(int i) { return *nodes_[i]->store; }
  int size() const { return static_cast<int>(nodes_.size()); }
  // Who answers the Forward requests sent to each member.
  template <size_t N>
  void SetForwardHandlers(const Member::ForwardHandler (&handlers)[N]) {
    for (size_t i = 0; i < N && i < nodes_.size(); ++i) nodes_[i]->serve_forward = handlers[i];
  }
  // Sets every member's now (before calling one directly).
  void SetNow() {
    for (auto& node : nodes_) node->member->SetNow(Member::Clock::now());
  }
  // Messages to or from `node` are lost while it is cut off.
  void Isolate(int node, bool cut) { nodes_[node]->cut = cut; }
  // Every request is delivered twice, the copy after everything queued
  // (as a network that duplicates and reorders would).
  void DuplicateRequests(bool on) { duplicate_ = on; }
  // Every message as a real network carries it: each request and reply
  // is handed over as `wire` makes it (encoded and decoded by a codec, say),
  // so what the roles construct must survive the codec.
  struct Wire {
    std::function<PeerRequest(const PeerRequest&, std::optional<ShardId>)> request;
    std::function<PeerReply(const PeerReply&)> reply;
  };
  void SetWire(Wire wire) { wire_ = std::move(wire); }

  // Delivers messages and runs timers until `done()` holds; false if it
  // does not within `limit`.
  bool RunUntil(const std::function<bool()>& done,
                std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    SetNow();
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (queue_.empty()) {
        for (auto& node : nodes_) node->member->RunTimers(Member::Clock::now());
        if (queue_.empty()) std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      SetNow();  // timers measure from now (a commit wait from a stale now ends early)
      Message m = std::move(queue_.front());
      queue_.pop_front();
      Node& to = *nodes_[Index(m.to)];
      if (to.cut || nodes_[Index(m.from)]->cut) continue;
      if (auto* request = std::get_if<PeerRequest>(&m.body)) {
        if (duplicate_ && !m.copy) {
          queue_.push_back(Message{m.from, m.to, m.id, m.hlc, m.shard, *request, /*copy=*/true});
        }
        if (wire_.request) *request = wire_.request(*request, m.shard);
        const std::string from = m.from, self = m.to;
        const uint64_t id = m.id;
        to.member->OnRequest(
            from, m.hlc, m.shard, std::move(*request), [this, from, self, id](PeerReply r) {
              queue_.push_back(Message{self, from, id, member(Index(self)).LastTimestamp(),
                                       std::nullopt, std::move(r)});
            });
      } else {
        const PeerReply& reply = std::get<PeerReply>(m.body);
        to.member->OnReply(m.hlc, m.id, wire_.reply ? wire_.reply(reply) : reply);
      }
    }
    return true;
  }

 private:
  struct Message {
    std::string from, to;
    uint64_t id;  // a request's message id, or the id a reply answers
    Timestamp hlc;
    std::optional<ShardId> shard;  // a request's
    std::variant<PeerRequest, PeerReply> body;
    bool copy = false;  // a duplicate, not duplicated again
  };
  struct Transport final : PeerTransport {
    LocalCluster* cluster = nullptr;
    std::string self;
    uint64_t next_id = 1;
    uint64_t Send(std::string_view dest, std::optional<ShardId> shard, const PeerRequest& request,
                  Timestamp hlc) override {
      const uint64_t id = next_id++;
      cluster->queue_.push_back(Message{self, std::string(dest), id, hlc, shard, request});
      return id;
    }
  };
  struct Node {
    Transport transport;
    std::unique_ptr<MvccStore> store;
    std::unique_ptr<Member> member;
    Member::ForwardHandler serve_forward;
    bool cut = false;
  };
  int Index(const std::string& id) const { return std::stoi(id.substr(1)); }

  std::vector<std::unique_ptr<Node>> nodes_;
  std::deque<Message> queue_;
  bool duplicate_ = false;
  Wire wire_;
};

}  // namespace strata::cluster

#endif  // STRATA_TESTS_CLUSTER_LOCAL_CLUSTER_H_
