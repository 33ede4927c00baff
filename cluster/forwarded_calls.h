// ForwardedCalls: a Forward runs once on its receiver, however many copies
// of it arrive.
//
// PeerRpc resends a call until a reply comes (peer_rpc.h), which is safe
// only for idempotent requests. A forwarded client write is not one: run
// twice, a put leaves two versions, and a Txn's compare sees the first
// run's own write and answers "failed" for a write that happened. So the
// receiver remembers each forward by (sender, id):
//  - the first copy runs;
//  - a copy that arrives while it runs waits for its answer;
//  - a copy that arrives later gets the same answer again.
// An id says when its forward was first sent (IdAt), so any copy is
// refused unrun once `max_copy_age` has passed since then, and an answer is
// kept for `retention` after its first copy came. A caller resends for at
// most its RPC timeout: with that below max_copy_age, and max_copy_age
// (plus the clocks' offset) below the retention, every copy is either
// refused or meets the memory of the first. The memory does not survive a
// restart, so a copy first sent before this member started (by the
// sender's clock, as ShardServer judges prepares) is refused unrun too: an
// earlier run of the member may have run it. Refusals whose outcome is
// unknown are kIoError (a change may have been made), never kUnavailable,
// which callers of a replicated shard take as "try another replica". The answers kept are bounded
// in bytes: past the bound the oldest answers are dropped (their ids are
// kept), and a late copy of one of those gets an error saying the outcome
// is unknown, never a second run.
//
// Not thread-safe: the member's loop owns it.
#ifndef STRATA_CLUSTER_FORWARDED_CALLS_H_
#define STRATA_CLUSTER_FORWARDED_CALLS_H_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/peer_messages.h"

namespace strata::cluster {

struct ForwardedCallsOptions {
  // How long a forward is remembered after its first copy came.
  std::chrono::milliseconds retention{15000};
  // How long after its first send (by its sender's clock) a copy may
  // arrive. A caller resends for 5 s (MemberOptions::rpc_timeout); the
  // rest is for the clocks' offset.
  std::chrono::milliseconds max_copy_age{7000};
  // The most bytes of answers kept for late copies.
  size_t max_kept_bytes = 64 << 20;
};

class ForwardedCalls final {
 public:
  using Respond = std::function<void(PeerReply)>;
  // Runs the forward; calls its argument once with the answer.
  using Run = std::function<void(Respond)>;

  // `start_ms`: when this member started (wall-clock milliseconds).
  explicit ForwardedCalls(uint64_t start_ms, ForwardedCallsOptions options = {})
      : options_(options), start_ms_(start_ms) {}

  // A sender's forward ids: its wall clock's milliseconds in the high bits,
  // a count below; unique and rising across restarts (unless a sender
  // sends a million forwards in one millisecond).
  static uint64_t IdAt(uint64_t now_ms, uint64_t last_id) {
    return std::max(last_id + 1, now_ms << kCountBits);
  }
  static uint64_t FirstSentMillis(uint64_t id) { return id >> kCountBits; }

  // One copy of forward `id` from `from`, arriving at `now_ms` (wall-clock
  // milliseconds). `respond` answers this copy; `run` is called only for
  // the first. Id 0 means the sender asks for no deduplication: it runs
  // every time.
  void Serve(std::string_view from, uint64_t id, uint64_t now_ms, Respond respond, const Run& run);

  // Forwards remembered (running or answered), and the bytes of answers kept.
  size_t remembered() const { return calls_.size(); }
  size_t kept_bytes() const { return kept_bytes_; }
  uint64_t duplicates() const { return duplicates_; }

 private:
  static constexpr int kCountBits = 20;
  using Key = std::pair<std::string, uint64_t>;
  struct Call {
    bool answered = false;
    std::optional<PeerReply> answer;  // answered, and not dropped for space
    size_t answer_bytes = 0;
    std::vector<Respond> waiting;  // copies that came while it ran
  };
  void Answer(const Key& key, PeerReply reply);
  void Expire(uint64_t now_ms);
  void DropAnswersOverBound();

  const ForwardedCallsOptions options_;
  const uint64_t start_ms_;
  std::map<Key, Call> calls_;
  std::deque<std::pair<uint64_t, Key>> by_age_;  // (first seen, key), oldest first
  std::deque<Key> answered_;                     // in the order answered, oldest first
  size_t kept_bytes_ = 0;
  uint64_t duplicates_ = 0;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_FORWARDED_CALLS_H_
