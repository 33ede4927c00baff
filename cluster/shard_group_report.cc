#include "cluster/shard_group_report.h"

#include "storage/coding.h"

namespace strata::cluster {

namespace {

constexpr uint8_t kVersion = 1;

template <typename Nodes>
void PutNodes(std::string* out, const Nodes& nodes) {
  storage::PutVarint(out, nodes.size());
  for (raft::NodeId node : nodes) storage::PutVarint(out, node);
}

// Node numbers as PutNodes wrote them, each handed to `add`; false if cut,
// too many or naming kNobody.
template <typename Add>
bool ReadNodes(storage::Decoder* in, Add add) {
  uint64_t count = 0;
  if (!in->Varint(&count) || count > kMaxReportedMembers) return false;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t node = 0;
    if (!in->Varint(&node) || node == raft::kNobody) return false;
    add(node);
  }
  return true;
}

}  // namespace

std::string EncodeShardGroupReport(const ShardGroupReport& report) {
  std::string out(1, static_cast<char>(kVersion));
  storage::PutVarint(&out, report.group);
  storage::PutVarint(&out, report.applied);
  storage::PutVarint(&out, report.term);
  storage::PutVarint(&out, report.leader);
  PutNodes(&out, report.voters);
  PutNodes(&out, report.learners);
  PutNodes(&out, report.placement);
  return out;
}

Result<ShardGroupReport> DecodeShardGroupReport(std::string_view bytes) {
  storage::Decoder in(bytes);
  uint8_t version = 0;
  ShardGroupReport report;
  if (!in.Byte(&version) || version != kVersion || !in.Varint(&report.group) ||
      !in.Varint(&report.applied) || !in.Varint(&report.term) || !in.Varint(&report.leader) ||
      !ReadNodes(&in, [&](raft::NodeId n) { report.voters.insert(n); }) ||
      !ReadNodes(&in, [&](raft::NodeId n) { report.learners.insert(n); }) ||
      !ReadNodes(&in, [&](raft::NodeId n) { report.placement.push_back(n); }) || !in.done() ||
      report.group == 0) {
    return Status::InvalidArgument("not a shard group's report");
  }
  return report;
}

}  // namespace strata::cluster
