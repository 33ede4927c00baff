// NodeList: a sharded cluster's members, each with its number for life.
//
// A node's number is its place in the list: what its hybrid clock's
// timestamps end in (HybridClockOptions::node_index), what its Raft groups
// call it (its number plus one), and, for the first members, the shard it
// is home of. So the list only grows at its end, and a member that leaves
// keeps its number, marked gone: a number is never given to another node
// (a node that took it could issue timestamps another already did).
//
// The first members are the ones the cluster started with, in name order
// (every member then agrees without asking); there is one shard a first
// member, for the cluster's life, whichever members hold its replicas.
// Members added later (`etcdctl member add`) hold only replicas moved onto
// them; any member may leave once it holds none (the caller's check).
//
// The list is the cluster's record (server/cluster_front.h keeps it in the
// cluster's key space); `revision` counts its changes, so a change is saved
// only over the revision it was made from.
#ifndef STRATA_CLUSTER_NODE_LIST_H_
#define STRATA_CLUSTER_NODE_LIST_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/status.h"

namespace strata::cluster {

struct ListedNode {
  std::string name;      // "" until the node started and named itself
  std::string peer_url;  // where its peer port is (etcd's peer URL)
  bool gone = false;     // removed: its number is kept, never reused

  bool operator==(const ListedNode&) const = default;
};

class NodeList final {
 public:
  // Numbers a cluster ever gives (timestamps' node residues: the shards'
  // own residues start above them, cluster/shard_groups.h), and members
  // present at once.
  static constexpr size_t kMaxNumbers = 16;

  // The first members, as `name -> peer URL` in any order: numbered in
  // name order, one shard each. kInvalidArgument for none, a repeated or
  // empty name, or too many.
  static Result<NodeList> First(std::vector<ListedNode> nodes);

  std::string Encode() const;
  static Result<NodeList> Decode(std::string_view bytes);

  uint64_t revision() const { return revision_; }
  size_t shard_count() const { return shard_count_; }
  // Every node ever listed, by number (gone ones included).
  const std::vector<ListedNode>& nodes() const { return nodes_; }
  // The names of every node by number ("" for one not yet named): what a
  // member's Peers and Raft groups number.
  std::vector<std::string> Names() const;
  // The nodes present (not gone) that have named themselves.
  std::vector<std::string> Present() const;
  std::optional<size_t> NumberOf(std::string_view name) const;
  std::optional<size_t> NumberOfUrl(std::string_view peer_url) const;

  // A node added at `peer_url`, unnamed until it starts (etcd's MemberAdd
  // names none); the next revision. kInvalidArgument for an empty URL,
  // kPreconditionFailed for one a present node has, or when every number
  // was given.
  Status Add(std::string peer_url);
  // The node added at `peer_url` names itself `name` as it first starts;
  // the same name again changes nothing (Ok, same revision). kNotFound for
  // a URL no present node has, kPreconditionFailed for a name another
  // node has, or another name for this one; kInvalidArgument for an empty
  // name.
  Status Name(std::string_view peer_url, std::string name);
  // Node `number` leaves for good. kNotFound for no such present node;
  // kPreconditionFailed for the last one.
  Status Remove(size_t number);

 private:
  NodeList() = default;
  uint64_t revision_ = 1;
  size_t shard_count_ = 0;
  std::vector<ListedNode> nodes_;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_NODE_LIST_H_
