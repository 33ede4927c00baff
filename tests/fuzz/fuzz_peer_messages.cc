// libFuzzer target: what a peer can send a cluster member over gRPC.
//
// Each input is a sequence of strata.peer.v1 messages (a length byte, then
// that many bytes of protobuf), decoded as ClusterRuntime decodes them and
// handed to one cluster::Member (node n0 of two; the sender is n1) that
// lives for the run, with its shard server over an in-memory store: any
// prepare, commit, resolution, record call, read, raw scan or compaction a
// peer could make up. Beyond the sanitizers: every request that decodes is
// answered at once or, for a read held by an intent, by its deadline, and
// a refusal to decode never reaches the member. What the member sends is
// dropped (nobody answers it).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cluster/member.h"
#include "peer.pb.h"
#include "server/peer_proto.h"
#include "strata/mvcc_store.h"

namespace {

using namespace strata;  // NOLINT: a harness

class Nowhere final : public cluster::PeerTransport {
 public:
  uint64_t Send(std::string_view, std::optional<cluster::ShardId>, const cluster::PeerRequest&,
                Timestamp) override {
    return next_id_++;
  }

 private:
  uint64_t next_id_ = 1;
};

struct World {
  MvccStore store;
  Nowhere transport;
  std::unique_ptr<cluster::Member> member;
  cluster::Member::Clock::time_point now = cluster::Member::Clock::now();
  uint64_t unanswered = 0;  // reads waiting for an intent
  World() {
    cluster::MemberOptions options;
    options.shard_server.read_wait = std::chrono::milliseconds(50);
    member = std::move(*cluster::Member::Create(
        "n0", {"n0", "n1"}, options, &store, /*persist=*/false, Timestamp(), &transport,
        [](const std::string&, cluster::ShardServer::Respond respond) {
          respond(cluster::PeerError{Status::InvalidArgument("no forwards here")});
        },
        [this](Timestamp horizon) { return store.Compact(horizon); }, now));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = new World();  // lives for the run, as a server's state
  size_t at = 0;
  while (at + 1 <= size) {
    const size_t len = std::min<size_t>(data[at], size - at - 1);
    const auto* bytes = data + at + 1;
    at += 1 + len;
    server::peerpb::Message message;
    if (!message.ParseFromArray(bytes, static_cast<int>(len))) continue;
    std::optional<Timestamp> hlc;
    if (message.hlc() != 0) hlc = Timestamp(message.hlc());
    if (server::IsReply(message)) {
      w->member->OnReply(hlc, message.in_reply_to(), server::ReplyFromProto(message));
      continue;
    }
    cluster::PeerRequest request;
    if (!server::RequestFromProto(message, &request).ok()) continue;
    const bool one_way = std::holds_alternative<cluster::LowWaterMarkReport>(request);
    const bool read = std::holds_alternative<cluster::ShardRead>(request);
    bool answered = false;
    std::optional<cluster::ShardId> shard;
    if (message.shard_plus_one() != 0) shard = message.shard_plus_one() - 1;
    w->member->OnRequest("n1", hlc, shard, std::move(request),
                         [&answered](cluster::PeerReply) { answered = true; });
    if (!answered && !one_way) {
      if (!read) std::abort();  // only a read may wait (for an intent)
      ++w->unanswered;
    }
    // Time passes: held reads give up, pushes and expiries run.
    w->now += std::chrono::milliseconds(10);
    w->member->RunTimers(w->now);
  }
  return 0;
}
