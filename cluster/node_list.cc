#include "cluster/node_list.h"

#include <algorithm>
#include <set>

#include "storage/coding.h"

namespace strata::cluster {

namespace {

constexpr uint8_t kVersion = 1;

}  // namespace

Result<NodeList> NodeList::First(std::vector<ListedNode> nodes) {
  if (nodes.empty()) return Status::InvalidArgument("a cluster needs at least one member");
  if (nodes.size() > kMaxNumbers) {
    return Status::InvalidArgument("a sharded cluster has at most " + std::to_string(kMaxNumbers) +
                                   " members");
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const ListedNode& a, const ListedNode& b) { return a.name < b.name; });
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].name.empty()) return Status::InvalidArgument("a member's name is empty");
    if (i > 0 && nodes[i].name == nodes[i - 1].name) {
      return Status::InvalidArgument("member '" + nodes[i].name + "' is named twice");
    }
    nodes[i].gone = false;
  }
  NodeList list;
  list.shard_count_ = nodes.size();
  list.nodes_ = std::move(nodes);
  return list;
}

std::string NodeList::Encode() const {
  std::string out(1, static_cast<char>(kVersion));
  storage::PutVarint(&out, revision_);
  storage::PutVarint(&out, shard_count_);
  storage::PutVarint(&out, nodes_.size());
  for (const ListedNode& node : nodes_) {
    storage::PutBytes(&out, node.name);
    storage::PutBytes(&out, node.peer_url);
    out.push_back(node.gone ? 1 : 0);
  }
  return out;
}

Result<NodeList> NodeList::Decode(std::string_view bytes) {
  storage::Decoder in(bytes);
  uint8_t version = 0;
  uint64_t revision = 0, shards = 0, count = 0;
  if (!in.Byte(&version) || version != kVersion || !in.Varint(&revision) || !in.Varint(&shards) ||
      !in.Varint(&count) || count > kMaxNumbers || shards == 0 || shards > count) {
    return Status::InvalidArgument("not a cluster's member list");
  }
  NodeList list;
  list.revision_ = revision;
  list.shard_count_ = shards;
  std::set<std::string_view> names;
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view name, url;
    uint8_t gone = 0;
    if (!in.Bytes(&name) || !in.Bytes(&url) || !in.Byte(&gone) || gone > 1 ||
        (!name.empty() && !names.insert(name).second)) {
      return Status::InvalidArgument("not a cluster's member list");
    }
    list.nodes_.push_back({std::string(name), std::string(url), gone == 1});
  }
  if (!in.done()) return Status::InvalidArgument("not a cluster's member list");
  return list;
}

std::vector<std::string> NodeList::Names() const {
  std::vector<std::string> names;
  for (const ListedNode& node : nodes_) names.push_back(node.name);
  return names;
}

std::vector<std::string> NodeList::Present() const {
  std::vector<std::string> present;
  for (const ListedNode& node : nodes_) {
    if (!node.gone && !node.name.empty()) present.push_back(node.name);
  }
  return present;
}

std::optional<size_t> NodeList::NumberOf(std::string_view name) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!name.empty() && nodes_[i].name == name) return i;
  }
  return std::nullopt;
}

std::optional<size_t> NodeList::NumberOfUrl(std::string_view peer_url) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].gone && nodes_[i].peer_url == peer_url) return i;
  }
  return std::nullopt;
}

Status NodeList::Add(std::string peer_url) {
  if (peer_url.empty()) return Status::InvalidArgument("a member needs a peer URL");
  if (NumberOfUrl(peer_url)) {
    return Status::PreconditionFailed("a member has peer URL " + peer_url + " already");
  }
  if (nodes_.size() >= kMaxNumbers) {
    return Status::PreconditionFailed("this cluster gave all of its " +
                                      std::to_string(kMaxNumbers) +
                                      " member numbers (a removed member's is never reused)");
  }
  nodes_.push_back({"", std::move(peer_url), false});
  ++revision_;
  return Status::Ok();
}

Status NodeList::Name(std::string_view peer_url, std::string name) {
  if (name.empty()) return Status::InvalidArgument("a member's name is empty");
  const std::optional<size_t> number = NumberOfUrl(peer_url);
  if (!number) {
    return Status::NotFound("no member was added with peer URL " + std::string(peer_url) +
                            " (etcdctl member add first)");
  }
  ListedNode& node = nodes_[*number];
  if (node.name == name) return Status::Ok();
  if (!node.name.empty()) {
    return Status::PreconditionFailed("the member at " + node.peer_url + " is named '" + node.name +
                                      "', not '" + name + "'");
  }
  if (NumberOf(name)) {
    return Status::PreconditionFailed("another member is named '" + name +
                                      "' (a removed member's name is never reused)");
  }
  node.name = std::move(name);
  ++revision_;
  return Status::Ok();
}

Status NodeList::Remove(size_t number) {
  if (number >= nodes_.size() || nodes_[number].gone) {
    return Status::NotFound("no such member");
  }
  size_t present = 0;
  for (const ListedNode& node : nodes_) present += node.gone ? 0 : 1;
  if (present == 1) return Status::PreconditionFailed("the cluster's last member cannot leave");
  nodes_[number].gone = true;
  ++revision_;
  return Status::Ok();
}

}  // namespace strata::cluster
