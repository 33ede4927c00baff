// KeyLanes: writes of the same keys on one member, one after another.
//
// Two cluster writes of one key that run at once both read the key and
// both try to commit over it: serializable validation lets one commit and
// sends the other back to try again (ClusterKv's backoff), and under enough
// of them at once some run out of attempts ("too many requests"), though
// etcd would simply have applied them in turn. A member runs every write of
// a key its shard owns (other members forward them), so queueing the writes
// of a key here, each waiting for the one before it to answer, removes
// those conflicts: blind puts of one key no longer fail however many come
// at once. Writes of other keys pass freely.
//
// Each write names its keys; it runs when it is first in the queue of each
// of them. Queues are FIFO and a write joins all of its queues at once, so
// the oldest waiting write is always first in all of its queues: none
// waits forever, whatever keys the others name.
//
// Not thread-safe: runs on the member's loop thread.
#ifndef STRATA_SERVICE_KEY_LANES_H_
#define STRATA_SERVICE_KEY_LANES_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace strata::service {

class KeyLanes final {
 public:
  // Runs `start` once every earlier write of any of `keys` has left (at
  // once if none is waiting or running). It must call Leave(keys) once
  // the write is answered.
  void Enter(std::vector<std::string> keys, std::function<void()> start);
  void Leave(std::vector<std::string> keys);

  size_t waiting() const { return waiting_.size(); }  // entered, not yet started
  size_t busy_keys() const { return queues_.size(); }

 private:
  struct Write {
    std::vector<std::string> keys;
    std::function<void()> start;
  };
  // Starts `id` if it is first in the queue of each of its keys.
  void StartIfFirst(uint64_t id);

  // Per key, the writes that named it, in arrival order; the first is
  // running (or about to). A key with no write has no queue.
  std::unordered_map<std::string, std::deque<uint64_t>> queues_;
  std::map<uint64_t, Write> waiting_;
  uint64_t next_id_ = 0;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_KEY_LANES_H_
