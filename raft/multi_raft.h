// MultiRaft: the Raft groups one node is a member of (a shard each), driven
// together.
//
// A node with many shards has many groups, and most of their traffic goes
// to the same few other nodes. So the node ticks every group at once, and
// TakeReady gathers what every group has to say to another node into one
// NodeBatch: one message on the peer stream per node pair and round,
// however many groups. Each group's own work (state and entries to make
// durable, entries to apply, reads) stays per group, in a GroupReady.
// Like Raft itself it does no I/O.
//
// Not thread-safe: one driver thread owns it.
#ifndef STRATA_RAFT_MULTI_RAFT_H_
#define STRATA_RAFT_MULTI_RAFT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "raft/raft.h"

namespace strata::raft {

using GroupId = uint64_t;

struct GroupMessage {
  GroupId group = 0;
  Message message;
};

// Everything one node has for another this round, of every group.
struct NodeBatch {
  NodeId from = kNobody;
  NodeId to = kNobody;
  std::vector<GroupMessage> messages;
};

// One group's Ready, its messages moved into the node's batches.
struct GroupReady {
  GroupId group = 0;
  Ready ready;
};

// The node's work, in the order Ready gives: make every group's state and
// entries durable (one sync for all of them), send the batches, apply each
// group's committed entries, then Advance.
struct MultiReady {
  std::vector<GroupReady> groups;
  std::vector<NodeBatch> batches;  // at most one a destination
};

class MultiRaft final {
 public:
  explicit MultiRaft(NodeId id) : id_(id) {}

  NodeId id() const { return id_; }
  // Starts (or restarts, from its storage) this node's member of `group`;
  // `config.id` is this node. False if the group is here already or the
  // id is another node's.
  bool AddGroup(GroupId group, RaftConfig config, RaftStorage storage);
  // Stops this node's member of `group` (a replica moved away).
  void RemoveGroup(GroupId group);
  Raft* group(GroupId group);
  const std::map<GroupId, std::unique_ptr<Raft>>& groups() const { return groups_; }

  // One unit of time for every group.
  void Tick();
  // What another node sent: each message to its group. Messages for a
  // group this node does not have are dropped and counted (a replica
  // removed, or not yet added).
  void Step(const NodeBatch& batch);

  bool HasReady() const;
  MultiReady TakeReady();
  void Advance(const MultiReady& ready);

  uint64_t dropped_for_unknown_groups() const { return dropped_; }

 private:
  NodeId id_;
  std::map<GroupId, std::unique_ptr<Raft>> groups_;
  uint64_t dropped_ = 0;
};

}  // namespace strata::raft

#endif  // STRATA_RAFT_MULTI_RAFT_H_
