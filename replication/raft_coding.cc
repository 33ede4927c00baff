#include "replication/raft_coding.h"

#include <algorithm>
#include <cstdint>

namespace strata::replication {

using raft::Entry;
using raft::EntryType;
using raft::NodeId;
using storage::Decoder;
using storage::PutBytes;
using storage::PutVarint;

namespace {

void PutNodes(const std::vector<NodeId>& nodes, std::string* out) {
  PutVarint(out, nodes.size());
  for (NodeId node : nodes) PutVarint(out, node);
}

bool GetNodes(Decoder* in, std::vector<NodeId>* nodes) {
  uint64_t count = 0;
  if (!in->Varint(&count) || count > in->rest().size()) return false;  // a byte a node at least
  nodes->resize(count);
  for (NodeId& node : *nodes) {
    if (!in->Varint(&node)) return false;
  }
  return true;
}

}  // namespace

void PutEntries(std::span<const Entry> entries, std::string* out) {
  PutVarint(out, entries.size());
  for (const Entry& entry : entries) {
    PutVarint(out, entry.term);
    out->push_back(static_cast<char>(entry.type));
    PutBytes(out, entry.data);
  }
}

bool GetEntries(Decoder* in, raft::Index first, std::vector<Entry>* entries, bool keep_data) {
  uint64_t count = 0;
  // Three bytes an entry at least.
  if (!in->Varint(&count) || count > in->rest().size() / 3) return false;
  // Indexes start at 1 and do not wrap.
  if (count != 0 && (first == 0 || first - 1 > UINT64_MAX - count)) return false;
  // Geometric growth: the Raft log store appends every round's entries to
  // a vector of all since the last compaction, and an exact reserve moved
  // that whole vector each round (a tenth of a member's CPU under load).
  const size_t needed = entries->size() + count;
  if (needed > entries->capacity()) entries->reserve(std::max(needed, 2 * entries->capacity()));
  for (uint64_t i = 0; i < count; ++i) {
    Entry entry;
    uint8_t type = 0;
    std::string_view data;
    if (!in->Varint(&entry.term) || !in->Byte(&type) ||
        type > static_cast<uint8_t>(EntryType::kConfChange) || !in->Bytes(&data)) {
      return false;
    }
    entry.index = first + i;
    entry.type = static_cast<EntryType>(type);
    if (keep_data) entry.data.assign(data);
    entries->push_back(std::move(entry));
  }
  return true;
}

void PutConf(const raft::ConfState& conf, std::string* out) {
  PutNodes(conf.voters, out);
  PutNodes(conf.learners, out);
}

bool GetConf(Decoder* in, raft::ConfState* conf) {
  return GetNodes(in, &conf->voters) && GetNodes(in, &conf->learners);
}

}  // namespace strata::replication
