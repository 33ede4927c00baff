// DurableClusterState: prepares and records kept as internal keys of the
// shard's store, so they come back after a restart. A restart is modelled by
// exporting every version of the store into a fresh one (what recovery
// does), then loading and restoring into a fresh participant.
#include "cluster/durable_state.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata::cluster {
namespace durable_state_test {

using HLC = HybridLogicalClock;

TxnId Txn(uint64_t n) { return TxnId{HLC::Make(1'000'000, n).value(), 2}; }

PrepareRequest Request(TxnId txn) {
  PrepareRequest request;
  request.txn = txn;
  request.start = Timestamp(5);
  request.isolation = Isolation::kSerializable;
  request.primary = 1;
  request.writes = {BatchWrite{"\x01k", "\"v\""}, BatchWrite{"\x01gone", std::nullopt}};
  request.read_keys = {"\x01r"};
  request.read_ranges = {KeyRange{"\x01a", "\x01b"}, KeyRange{"\x01z", std::nullopt}};
  return request;
}

class DurableStateTest : public ::testing::Test {
 protected:
  uint64_t wall_ms_ = 2'000'000;
  HLC clock_{[this] { return wall_ms_; }};
  MvccStore store_;
  DurableClusterState state_{&store_, &clock_};
};

TEST_F(DurableStateTest, PreparesAndRecordsRoundTrip) {
  const PrepareRequest saved = Request(Txn(1));
  ASSERT_TRUE(state_.SavePrepared(saved, Timestamp(77)).ok());
  ASSERT_TRUE(state_.SaveRecord(Txn(1), TxnRecord{TxnStatus::kPending, Timestamp(), {}}).ok());
  ASSERT_TRUE(
      state_.SaveRecord(Txn(2), TxnRecord{TxnStatus::kCommitted, Timestamp(99), {0, 2, 70000}})
          .ok());
  ASSERT_TRUE(state_.SaveRecord(Txn(3), TxnRecord{TxnStatus::kAborted, Timestamp(), {}}).ok());

  Result<DurableClusterState::Loaded> loaded = state_.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  ASSERT_EQ(loaded->prepared.size(), 1u);
  const auto& [request, prepare_ts] = loaded->prepared[0];
  EXPECT_EQ(prepare_ts, Timestamp(77));
  EXPECT_EQ(request.txn, saved.txn);
  EXPECT_EQ(request.start, saved.start);
  EXPECT_EQ(request.isolation, saved.isolation);
  EXPECT_EQ(request.primary, saved.primary);
  ASSERT_EQ(request.writes.size(), 2u);
  EXPECT_EQ(request.writes[0].key, "\x01k");
  EXPECT_EQ(request.writes[0].value, std::optional<std::string>("\"v\""));
  EXPECT_EQ(request.writes[1].key, "\x01gone");
  EXPECT_FALSE(request.writes[1].value.has_value());
  EXPECT_EQ(request.read_keys, saved.read_keys);
  ASSERT_EQ(request.read_ranges.size(), 2u);
  EXPECT_EQ(request.read_ranges[0].end, std::optional<std::string>("\x01b"));
  EXPECT_FALSE(request.read_ranges[1].end.has_value());

  ASSERT_EQ(loaded->records.size(), 3u);
  EXPECT_EQ(loaded->records[0].second.status, TxnStatus::kPending);
  EXPECT_EQ(loaded->records[1].second.status, TxnStatus::kCommitted);
  EXPECT_EQ(loaded->records[1].second.commit_timestamp, Timestamp(99));
  EXPECT_EQ(loaded->records[1].second.participants, (std::vector<uint32_t>{0, 2, 70000}));
  EXPECT_TRUE(loaded->records[0].second.participants.empty());
  EXPECT_EQ(loaded->records[2].second.status, TxnStatus::kAborted);
}

TEST_F(DurableStateTest, ErasedEntriesAndLaterChangesWin) {
  ASSERT_TRUE(state_.SavePrepared(Request(Txn(1)), Timestamp(10)).ok());
  ASSERT_TRUE(state_.SavePrepared(Request(Txn(2)), Timestamp(11)).ok());
  ASSERT_TRUE(state_.ErasePrepared(Txn(1)).ok());
  ASSERT_TRUE(state_.SaveRecord(Txn(4), TxnRecord{TxnStatus::kPending, Timestamp(), {}}).ok());
  ASSERT_TRUE(state_.SaveRecord(Txn(4), TxnRecord{TxnStatus::kCommitted, Timestamp(50), {}}).ok());
  ASSERT_TRUE(state_.SaveRecord(Txn(5), TxnRecord{TxnStatus::kAborted, Timestamp(), {}}).ok());
  ASSERT_TRUE(state_.EraseRecord(Txn(5)).ok());
  Result<DurableClusterState::Loaded> loaded = state_.Load();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->prepared.size(), 1u);
  EXPECT_EQ(loaded->prepared[0].first.txn, Txn(2));
  ASSERT_EQ(loaded->records.size(), 1u);
  EXPECT_EQ(loaded->records[0].first, Txn(4));
  EXPECT_EQ(loaded->records[0].second.status, TxnStatus::kCommitted);
}

TEST_F(DurableStateTest, ClientRangesNeverSeeTheInternalKeys) {
  ASSERT_TRUE(store_.Put("\x01user", "1", Timestamp(1)).ok());
  ASSERT_TRUE(state_.SavePrepared(Request(Txn(1)), Timestamp(10)).ok());
  // Internal keys sort after every client key (0x00 integers, 0x01 strings).
  EXPECT_GT(DurableClusterState::PreparedKey(Txn(1)), std::string("\x01\xff\xff\xff"));
  Result<ScanResult> scan =
      store_.Scan(KeyRange{"", std::string(1, kInternalKeyTag)}, Timestamp::Max(), 100);
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->items.size(), 1u);
  EXPECT_EQ(scan->items[0].key, "\x01user");
}

TEST_F(DurableStateTest, ARestoredParticipantHoldsReadersAndResolvesOnce) {
  const PrepareRequest request = Request(Txn(1));
  ASSERT_TRUE(state_.SavePrepared(request, Timestamp(HLC::Make(2'000'000, 1))).ok());
  Result<DurableClusterState::Loaded> loaded = state_.Load();
  ASSERT_TRUE(loaded.ok());
  Participant participant(&store_, &clock_);
  const auto now = Participant::Clock::now();
  for (const auto& [prepared, ts] : loaded->prepared) {
    participant.RestorePrepared(prepared, ts, now);
  }
  EXPECT_EQ(participant.PrimaryOf(Txn(1)), std::optional<uint32_t>(1));
  EXPECT_EQ(participant.BlockingIntents("\x01k", Timestamp::Max()).size(), 1u);
  // Committed, then (as after a crash between the two) resolved again by a
  // participant restored from the same state: nothing is applied twice.
  const Timestamp commit = HLC::Make(2'000'001, 0);
  ASSERT_TRUE(participant.Resolve(Txn(1), TxnStatus::kCommitted, commit).ok());
  Participant again(&store_, &clock_);
  again.RestorePrepared(request, Timestamp(HLC::Make(2'000'000, 1)), now);
  Status resolved = again.Resolve(Txn(1), TxnStatus::kCommitted, commit);
  ASSERT_TRUE(resolved.ok()) << resolved.message();
  Result<HistoryResult> history = store_.History("\x01k", std::nullopt, std::nullopt, 10);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->versions.size(), 1u);
}

}  // namespace durable_state_test
}  // namespace strata::cluster
