#include "cluster/shard_group_report.h"

#include "storage/coding.h"

namespace strata::cluster {

namespace {

constexpr uint8_t kVersion = 1;

void PutMembers(std::string* out, const std::set<raft::NodeId>& members) {
  storage::PutVarint(out, members.size());
  for (raft::NodeId node : members) storage::PutVarint(out, node);
}

bool ReadMembers(storage::Decoder* in, std::set<raft::NodeId>* members) {
  uint64_t count = 0;
  if (!in->Varint(&count) || count > kMaxReportedMembers) return false;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t node = 0;
    if (!in->Varint(&node) || node == raft::kNobody) return false;
    members->insert(node);
  }
  return true;
}

bool ReadPlacement(storage::Decoder* in, std::vector<raft::NodeId>* placement) {
  uint64_t count = 0;
  if (!in->Varint(&count) || count > kMaxReportedMembers) return false;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t node = 0;
    if (!in->Varint(&node) || node == raft::kNobody) return false;
    placement->push_back(node);
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
  PutMembers(&out, report.voters);
  PutMembers(&out, report.learners);
  storage::PutVarint(&out, report.placement.size());
  for (raft::NodeId node : report.placement) storage::PutVarint(&out, node);
  return out;
}

Result<ShardGroupReport> DecodeShardGroupReport(std::string_view bytes) {
  storage::Decoder in(bytes);
  uint8_t version = 0;
  ShardGroupReport report;
  if (!in.Byte(&version) || version != kVersion || !in.Varint(&report.group) ||
      !in.Varint(&report.applied) || !in.Varint(&report.term) || !in.Varint(&report.leader) ||
      !ReadMembers(&in, &report.voters) || !ReadMembers(&in, &report.learners) ||
      !ReadPlacement(&in, &report.placement) || !in.done() || report.group == 0) {
    return Status::InvalidArgument("not a shard group's report");
  }
  return report;
}

}  // namespace strata::cluster
