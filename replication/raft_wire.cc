#include "replication/raft_wire.h"

#include <utility>

#include "replication/raft_coding.h"
#include "storage/coding.h"

namespace strata::replication {

using raft::GroupMessage;
using raft::Message;
using raft::MessageType;
using raft::NodeBatch;
using storage::Decoder;
using storage::PutBytes;
using storage::PutVarint;

namespace {

constexpr uint8_t kReject = 1;
constexpr uint8_t kLastChunk = 2;

void PutMessage(const GroupMessage& gm, std::string* out) {
  const Message& m = gm.message;
  PutVarint(out, gm.group);
  out->push_back(static_cast<char>(m.type));
  PutVarint(out, m.term);
  PutVarint(out, m.index);
  PutVarint(out, m.log_term);
  PutVarint(out, m.commit);
  PutVarint(out, m.reject_hint);
  PutVarint(out, m.context);
  out->push_back(static_cast<char>((m.reject ? kReject : 0) | (m.last_chunk ? kLastChunk : 0)));
  PutEntries(m.entries, out);
  if (m.type == MessageType::kSnapshot) {
    PutVarint(out, m.chunk_offset);
    PutBytes(out, m.chunk);
    PutConf(m.conf, out);
  } else if (m.type == MessageType::kSnapshotReply) {
    PutVarint(out, m.chunk_offset);
  }
}

bool GetMessage(Decoder* in, const NodeBatch& batch, GroupMessage* gm) {
  Message& m = gm->message;
  uint8_t type = 0;
  uint8_t flags = 0;
  if (!in->Varint(&gm->group) || !in->Byte(&type) ||
      type > static_cast<uint8_t>(raft::kLastMessageType) || !in->Varint(&m.term) ||
      !in->Varint(&m.index) || !in->Varint(&m.log_term) || !in->Varint(&m.commit) ||
      !in->Varint(&m.reject_hint) || !in->Varint(&m.context) || !in->Byte(&flags) ||
      (flags & ~(kReject | kLastChunk)) != 0 || !GetEntries(in, m.index + 1, &m.entries)) {
    return false;
  }
  m.type = static_cast<MessageType>(type);
  m.from = batch.from;
  m.to = batch.to;
  m.reject = (flags & kReject) != 0;
  m.last_chunk = (flags & kLastChunk) != 0;
  if (m.type == MessageType::kSnapshot) {
    std::string_view chunk;
    if (!in->Varint(&m.chunk_offset) || !in->Bytes(&chunk) || !GetConf(in, &m.conf)) return false;
    m.chunk.assign(chunk);
  } else if (m.type == MessageType::kSnapshotReply) {
    if (!in->Varint(&m.chunk_offset)) return false;
  }
  return true;
}

}  // namespace

std::string EncodeNodeBatch(const NodeBatch& batch) {
  std::string out;
  out.push_back(static_cast<char>(kRaftWireVersion));
  PutVarint(&out, batch.from);
  PutVarint(&out, batch.to);
  PutVarint(&out, batch.messages.size());
  for (const GroupMessage& m : batch.messages) PutMessage(m, &out);
  return out;
}

std::vector<std::string> EncodeNodeBatchWithin(const NodeBatch& batch, size_t max_bytes) {
  std::string whole = EncodeNodeBatch(batch);
  if (whole.size() <= max_bytes) return {std::move(whole)};
  // Greedy: each message's own bytes added to a part until the next would
  // pass the bound (the version byte and three varints of the header:
  // 31 bytes at most, and one spare).
  constexpr size_t kHeaderBytes = 1 + 3 * 10 + 1;
  std::vector<std::string> parts;
  NodeBatch part{batch.from, batch.to, {}};
  size_t bytes = kHeaderBytes;
  for (const GroupMessage& m : batch.messages) {
    std::string one;
    PutMessage(m, &one);
    if (!part.messages.empty() && bytes + one.size() > max_bytes) {
      parts.push_back(EncodeNodeBatch(part));
      part.messages.clear();
      bytes = kHeaderBytes;
    }
    part.messages.push_back(m);
    bytes += one.size();
  }
  if (!part.messages.empty()) parts.push_back(EncodeNodeBatch(part));
  return parts;
}

Status DecodeNodeBatch(std::string_view bytes, raft::NodeId self, NodeBatch* batch) {
  Decoder in(bytes);
  uint8_t version = 0;
  uint64_t count = 0;
  if (!in.Byte(&version) || version != kRaftWireVersion) {
    return Status::InvalidArgument("a Raft batch of an unknown version");
  }
  if (!in.Varint(&batch->from) || !in.Varint(&batch->to) || !in.Varint(&count)) {
    return Status::InvalidArgument("a Raft batch without its header");
  }
  if (batch->to != self || batch->from == raft::kNobody || batch->from == self) {
    return Status::InvalidArgument("a Raft batch from node " + std::to_string(batch->from) +
                                   " to node " + std::to_string(batch->to) + " reached node " +
                                   std::to_string(self));
  }
  // Ten bytes a message at least.
  if (count > in.rest().size() / 10) {
    return Status::InvalidArgument("a Raft batch claims more messages than it holds");
  }
  batch->messages.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    if (!GetMessage(&in, *batch, &batch->messages[i])) {
      return Status::InvalidArgument("Raft message " + std::to_string(i) + " does not parse");
    }
  }
  if (!in.done()) return Status::InvalidArgument("bytes after a Raft batch");
  return Status::Ok();
}

}  // namespace strata::replication
