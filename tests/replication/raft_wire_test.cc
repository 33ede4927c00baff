// Raft batches on the wire: every field comes back, and bytes a peer could
// send (cut short, damaged, lying about counts, for another node) are
// refused or decode to something Raft can check, never crash.
#include "replication/raft_wire.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "raft/raft.h"
#include "replication/raft_coding.h"

namespace strata::replication {
namespace {

using raft::Entry;
using raft::EntryType;
using raft::GroupMessage;
using raft::Message;
using raft::MessageType;
using raft::NodeBatch;

bool SameMessage(const Message& a, const Message& b) {
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term &&
         a.index == b.index && a.log_term == b.log_term && a.entries == b.entries &&
         a.commit == b.commit && a.chunk_offset == b.chunk_offset && a.chunk == b.chunk &&
         a.last_chunk == b.last_chunk && a.conf == b.conf && a.reject == b.reject &&
         a.reject_hint == b.reject_hint && a.context == b.context;
}

NodeBatch RandomBatch(std::mt19937_64& random) {
  const auto pick = [&](uint64_t low, uint64_t high) {
    return std::uniform_int_distribution<uint64_t>(low, high)(random);
  };
  NodeBatch batch;
  batch.from = 2;
  batch.to = 1;
  const uint64_t count = pick(0, 6);
  for (uint64_t i = 0; i < count; ++i) {
    GroupMessage gm;
    gm.group = pick(0, 1) ? pick(1, 10) : random();
    Message& m = gm.message;
    m.type = static_cast<MessageType>(pick(0, static_cast<uint64_t>(raft::kLastMessageType)));
    m.from = batch.from;
    m.to = batch.to;
    m.term = pick(1, 1000);
    m.index = pick(0, 1) ? pick(0, 100) : random() >> 1;
    m.log_term = pick(0, m.term);
    m.commit = pick(0, 100);
    m.reject = pick(0, 1) == 1;
    m.reject_hint = pick(0, 100);
    m.context = pick(0, 2) == 0 ? raft::kTransfer : pick(0, 50);
    if (m.type == MessageType::kAppend) {
      const uint64_t entries = pick(0, 4);
      for (uint64_t e = 0; e < entries; ++e) {
        m.entries.push_back(Entry{m.term, m.index + 1 + e, std::string(pick(0, 30), 'e'),
                                  pick(0, 4) == 0 ? EntryType::kConfChange : EntryType::kNormal});
      }
    }
    if (m.type == MessageType::kSnapshotReply) m.chunk_offset = pick(0, 1 << 20);
    if (m.type == MessageType::kSnapshot) {
      m.chunk_offset = pick(0, 1 << 20);
      m.chunk = std::string(pick(0, 200), 'c');
      m.last_chunk = pick(0, 1) == 1;
      m.conf.voters = {1, 2, 3};
      if (pick(0, 1)) m.conf.learners = {9};
    }
    batch.messages.push_back(std::move(gm));
  }
  return batch;
}

TEST(RaftWireTest, EveryFieldComesBack) {
  std::mt19937_64 random(1);
  for (int i = 0; i < 2000; ++i) {
    const NodeBatch batch = RandomBatch(random);
    NodeBatch decoded;
    ASSERT_TRUE(DecodeNodeBatch(EncodeNodeBatch(batch), 1, &decoded).ok());
    EXPECT_EQ(decoded.from, batch.from);
    EXPECT_EQ(decoded.to, batch.to);
    ASSERT_EQ(decoded.messages.size(), batch.messages.size());
    for (size_t m = 0; m < batch.messages.size(); ++m) {
      EXPECT_EQ(decoded.messages[m].group, batch.messages[m].group);
      EXPECT_TRUE(SameMessage(decoded.messages[m].message, batch.messages[m].message))
          << "batch " << i << " message " << m;
    }
  }
}

// A transport that bounds what it carries at once (strata-node's lines)
// gets the batch in parts under the bound, every message once and in
// order; a message larger than the bound goes alone.
TEST(RaftWireTest, ABatchSplitWithinABoundKeepsEveryMessageInOrder) {
  std::mt19937_64 random(7);
  for (int i = 0; i < 500; ++i) {
    NodeBatch batch = RandomBatch(random);
    if (i % 5 == 0 && !batch.messages.empty()) {
      batch.messages.back().message.type = MessageType::kSnapshot;
      batch.messages.back().message.chunk = std::string(3000, 's');  // alone past the bound
    }
    const size_t bound = 200 + static_cast<size_t>(i);
    const std::vector<std::string> parts = EncodeNodeBatchWithin(batch, bound);
    std::vector<GroupMessage> back;
    for (const std::string& bytes : parts) {
      NodeBatch part;
      ASSERT_TRUE(DecodeNodeBatch(bytes, 1, &part).ok());
      EXPECT_TRUE(bytes.size() <= bound || part.messages.size() == 1)
          << bytes.size() << " bytes with " << part.messages.size() << " messages";
      for (GroupMessage& m : part.messages) back.push_back(std::move(m));
    }
    ASSERT_EQ(back.size(), batch.messages.size());
    for (size_t m = 0; m < back.size(); ++m) {
      EXPECT_EQ(back[m].group, batch.messages[m].group);
      EXPECT_TRUE(SameMessage(back[m].message, batch.messages[m].message));
    }
    if (EncodeNodeBatch(batch).size() <= bound) {
      EXPECT_EQ(parts.size(), 1u);
    }
  }
}

TEST(RaftWireTest, ABatchForAnotherNodeOrFromItselfIsRefused) {
  NodeBatch batch;
  batch.from = 2;
  batch.to = 3;
  NodeBatch decoded;
  const Status other = DecodeNodeBatch(EncodeNodeBatch(batch), 1, &decoded);
  EXPECT_EQ(other.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other.message().find("reached node 1"), std::string::npos) << other.message();
  batch.to = 1;
  batch.from = 1;
  EXPECT_FALSE(DecodeNodeBatch(EncodeNodeBatch(batch), 1, &decoded).ok());
  batch.from = 0;
  EXPECT_FALSE(DecodeNodeBatch(EncodeNodeBatch(batch), 1, &decoded).ok());
}

TEST(RaftWireTest, EveryCutIsRefused) {
  std::mt19937_64 random(2);
  for (int i = 0; i < 200; ++i) {
    const std::string bytes = EncodeNodeBatch(RandomBatch(random));
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
      NodeBatch decoded;
      EXPECT_FALSE(DecodeNodeBatch(std::string_view(bytes).substr(0, cut), 1, &decoded).ok())
          << "batch " << i << " cut at " << cut << " of " << bytes.size();
    }
    NodeBatch decoded;
    EXPECT_FALSE(DecodeNodeBatch(bytes + "x", 1, &decoded).ok());
  }
}

TEST(RaftWireTest, CountsLargerThanTheBytesAreRefusedBeforeAllocating) {
  // version, from 2, to 1, then a message count of 2^62.
  std::string bytes = {'\x01', '\x02', '\x01'};
  for (int i = 0; i < 8; ++i) bytes.push_back('\xff');
  bytes.push_back('\x3f');
  NodeBatch decoded;
  const Status status = DecodeNodeBatch(bytes, 1, &decoded);
  EXPECT_NE(status.message().find("more messages than it holds"), std::string::npos)
      << status.message();
}

// Damaged batches either are refused or decode to messages Raft checks;
// stepping them into a member must not crash it or break its log.
TEST(RaftWireTest, DamagedBatchesNeverCrashAMember) {
  std::mt19937_64 random(3);
  raft::RaftConfig config;
  config.id = 1;
  config.voters = {1, 2, 3};
  raft::Raft member(config, {});
  int decoded_count = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = EncodeNodeBatch(RandomBatch(random));
    const int flips = static_cast<int>(random() % 4) + 1;
    for (int f = 0; f < flips && !bytes.empty(); ++f) {
      bytes[random() % bytes.size()] ^= static_cast<char>(1 << (random() % 8));
    }
    NodeBatch batch;
    if (!DecodeNodeBatch(bytes, 1, &batch).ok()) continue;
    ++decoded_count;
    for (const GroupMessage& gm : batch.messages) member.Step(gm.message);
    while (member.HasReady()) member.Advance(member.TakeReady());
    ASSERT_LE(member.log().committed(), member.log().last_index());
  }
  EXPECT_GT(decoded_count, 1000);
}

// The log store appends each round's entries to one vector of all since
// the last compaction: it grows geometrically, not by each round's count
// (that moved the whole vector every round).
TEST(RaftCodingTest, EntriesAppendedRoundAfterRoundReallocateLogarithmicallyOften) {
  std::vector<Entry> entries;
  int reallocations = 0;
  for (raft::Index round = 0; round < 2000; ++round) {
    std::string bytes;
    const Entry entry{1, round + 1, "value"};
    PutEntries(std::span<const Entry>(&entry, 1), &bytes);
    storage::Decoder in(bytes);
    const size_t capacity = entries.capacity();
    ASSERT_TRUE(GetEntries(&in, round + 1, &entries));
    if (entries.capacity() != capacity) ++reallocations;
  }
  ASSERT_EQ(entries.size(), 2000u);
  EXPECT_EQ(entries.back().index, 2000u);
  EXPECT_LE(reallocations, 12);
}

}  // namespace
}  // namespace strata::replication
