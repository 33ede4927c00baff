// Coordinator driven by hand: what it sends to the shards is captured by a
// fake transport and answered by the test as shards would (or not at all),
// so each step of one- and two-phase commit, aborts, unknown outcomes,
// heartbeats, scans merged with the transaction's own writes, expiry and
// commit wait is checked message by message.
#include "cluster/coordinator.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/cluster/capturing_transport.h"

namespace strata::cluster {
namespace coordinator_test {

using std::chrono::milliseconds;
const Timers::Clock::time_point kT0 = Timers::Clock::time_point() + std::chrono::hours(1);

// A one-shard commit sent twice (no answer within the first retry): the
// copies sent, and where the answer goes.
struct ResentCommit {
  std::vector<CapturingTransport::Sent> copies;
  std::optional<Result<Timestamp>> committed;
};

// Three shards on n0, n1, n2; the coordinator is on n0 (shard 0).
class CoordinatorTest : public ::testing::Test {
 protected:
  CoordinatorTest()
      : map_(*ShardMap::OnePerNode({"n0", "n1", "n2"})),
        peers_("n0", {"n0", "n1", "n2"}, &map_, &clock_, &transport_, &timers_,
               milliseconds(1000)) {
    timers_.SetNow(kT0);
    Make(CoordinatorOptions{});
    // A key on each shard.
    for (int i = 0; key_on_.size() < 3 || std::count(key_on_.begin(), key_on_.end(), "") > 0; ++i) {
      key_on_.resize(3);
      const std::string key = "key" + std::to_string(i);
      std::string& slot = key_on_[map_.ShardFor(key).id];
      if (slot.empty()) slot = key;
    }
  }

  void Make(CoordinatorOptions options) {
    coordinator_ =
        std::make_unique<Coordinator>(0, 0, &store_, &clock_, &peers_, &timers_, options);
  }

  // What was sent since the last call, and to whom.
  std::vector<CapturingTransport::Sent> Take() {
    std::vector<CapturingTransport::Sent> sent = std::move(transport_.sent);
    transport_.sent.clear();
    return sent;
  }
  template <typename T>
  static const T& As(const CapturingTransport::Sent& sent) {
    return std::get<T>(sent.request);
  }
  // Begins a transaction writing one key on shard 1, commits it, and lets
  // the first retry send a second copy of the commit.
  void CommitResent(ResentCommit* out);
  void Answer(const CapturingTransport::Sent& sent, PeerReply reply) {
    EXPECT_TRUE(peers_.OnReply(sent.msg_id, reply));
  }

  uint64_t Begin(Isolation isolation = Isolation::kSerializable) {
    Result<Coordinator::Begun> begun = coordinator_->Begin(isolation, false, std::nullopt);
    EXPECT_TRUE(begun.ok()) << begun.status().message();
    return begun->id;
  }

  MvccStore store_;
  HybridLogicalClock clock_;
  Timers timers_;
  CapturingTransport transport_;
  ShardMap map_;
  Peers peers_;
  std::unique_ptr<Coordinator> coordinator_;
  std::vector<std::string> key_on_;  // a key owned by each shard
};

TEST_F(CoordinatorTest, GetReadsTheOwnerAtTheStartAndSeesOwnWrites) {
  const uint64_t id = Begin();
  std::optional<Result<ReadResult>> got;
  coordinator_->Get(id, key_on_[1], [&](Result<ReadResult> r) { got = std::move(r); });
  auto sent = Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].dest, "n1");
  EXPECT_EQ(As<ShardRead>(sent[0]).keys, std::vector<std::string>{key_on_[1]});
  EXPECT_EQ(As<ShardRead>(sent[0]).snapshot.value(), id) << "reads at its start";
  EXPECT_FALSE(got);
  Answer(sent[0], ShardReadReply{{ReadResult{true, false, 1, Timestamp(5), "\"v\"", false}}, {}});
  ASSERT_TRUE(got && got->ok());
  EXPECT_EQ((*got)->value, "\"v\"");

  ASSERT_TRUE(coordinator_->Write(id, key_on_[2], "\"mine\"").ok());
  got.reset();
  coordinator_->Get(id, key_on_[2], [&](Result<ReadResult> r) { got = std::move(r); });
  EXPECT_TRUE(Take().empty()) << "an own write is read from the transaction";
  ASSERT_TRUE(got && got->ok());
  EXPECT_TRUE((*got)->own_write);
  EXPECT_EQ((*got)->value, "\"mine\"");
}

TEST_F(CoordinatorTest, AWriteReadingAtItsShardsClocksIsCheckedFromTheOldestEachServed) {
  std::string second_on_1;
  for (int i = 0; second_on_1.empty(); ++i) {
    const std::string key = "other" + std::to_string(i);
    if (map_.ShardFor(key).id == 1) second_on_1 = key;
  }
  const uint64_t id = Begin();
  ASSERT_TRUE(coordinator_->StartAtShardClocks(id).ok());
  int answered = 0;
  auto count = [&](Result<ReadResult> r) {
    EXPECT_TRUE(r.ok()) << r.status().message();
    ++answered;
  };
  coordinator_->Get(id, key_on_[1], count);
  coordinator_->Get(id, second_on_1, count);
  coordinator_->Get(id, key_on_[2], count);
  auto first = Take();
  ASSERT_EQ(first.size(), 3u);
  for (const auto& sent : first) {
    EXPECT_TRUE(As<ShardRead>(sent).at_closed) << "a shard's first read is at its clock";
    EXPECT_EQ(As<ShardRead>(sent).snapshot, Timestamp()) << "no commit of the key made here";
  }
  // Two first reads of shard 1 served at different times: it checks from
  // the older.
  const ReadResult absent{false, false, 0, Timestamp(), "", false};
  Answer(first[0], ShardReadReply{{absent}, {}, Timestamp(700)});
  Answer(first[1], ShardReadReply{{absent}, {}, Timestamp(650)});
  Answer(first[2], ShardReadReply{{absent}, {}, Timestamp(600)});
  EXPECT_EQ(answered, 3);
  std::string third_on_1 = second_on_1 + "x";
  while (map_.ShardFor(third_on_1).id != 1) third_on_1 += "x";
  coordinator_->Get(id, third_on_1, count);
  auto later = Take();
  ASSERT_EQ(later.size(), 1u);
  EXPECT_FALSE(As<ShardRead>(later[0]).at_closed) << "a shard read before is read where it was";
  EXPECT_EQ(As<ShardRead>(later[0]).snapshot, Timestamp(650));
  Answer(later[0], ShardReadReply{{absent}, {}, Timestamp(650)});

  std::optional<Result<ScanResult>> scanned;
  coordinator_->Scan(id, KeyRange{"a", "b"}, 10, [&](Result<ScanResult> r) { scanned = r; });
  ASSERT_TRUE(scanned);
  EXPECT_EQ(scanned->status().code(), StatusCode::kInvalidArgument) << "it reads keys only";

  ASSERT_TRUE(coordinator_->Write(id, key_on_[1], "1").ok());
  ASSERT_TRUE(coordinator_->Write(id, key_on_[0], "0").ok());
  coordinator_->Commit(id, [](Result<Timestamp>) {});
  std::map<std::string, Timestamp> start_at;
  for (const auto& sent : Take()) start_at[sent.dest] = As<ShardPrepare>(sent).request.start;
  EXPECT_EQ(start_at, (std::map<std::string, Timestamp>{
                          {"n0", Timestamp(id)}, {"n1", Timestamp(650)}, {"n2", Timestamp(600)}}))
      << "a shard written unread checks from the transaction's start";

  const uint64_t snapshot_isolation = Begin(Isolation::kSnapshot);
  EXPECT_EQ(coordinator_->StartAtShardClocks(snapshot_isolation).code(),
            StatusCode::kInvalidArgument)
      << "reads no commit checks cannot move";
  const uint64_t has_read = Begin();
  coordinator_->Get(has_read, key_on_[1], count);
  EXPECT_EQ(coordinator_->StartAtShardClocks(has_read).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(coordinator_->StartAtShardClocks(42).code(), StatusCode::kNotFound);
  Take();

  // A key committed here is read where that commit is closed (the floor);
  // after a lost conflict, at the leaders' clocks alone.
  const uint64_t writer = Begin();
  ASSERT_TRUE(coordinator_->Write(writer, key_on_[2], "2").ok());
  coordinator_->Commit(writer, [](Result<Timestamp>) {});
  auto one_phase = Take();
  ASSERT_EQ(one_phase.size(), 1u);
  Answer(one_phase[0], CommitReply{Timestamp(777)});
  const uint64_t reader = Begin();
  ASSERT_TRUE(coordinator_->StartAtShardClocks(reader).ok());
  coordinator_->Get(reader, key_on_[2], count);
  auto floored = Take();
  ASSERT_EQ(floored.size(), 1u);
  EXPECT_EQ(As<ShardRead>(floored[0]).snapshot, Timestamp(777));
  const uint64_t retry = Begin();
  ASSERT_TRUE(coordinator_->StartAtShardClocks(retry, /*at_leaders=*/true).ok());
  coordinator_->Get(retry, key_on_[1], count);
  auto at_leader = Take();
  ASSERT_EQ(at_leader.size(), 1u);
  EXPECT_TRUE(As<ShardRead>(at_leader[0]).at_closed);
  EXPECT_EQ(As<ShardRead>(at_leader[0]).snapshot, Timestamp::Max());
}

TEST_F(CoordinatorTest, UnknownIdsAreNotFoundAndReadOnlyRefusesWrites) {
  EXPECT_EQ(coordinator_->CheckOpen(42).code(), StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->Write(42, "k", "1").code(), StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->Abort(42).code(), StatusCode::kNotFound);
  std::optional<Status> committed;
  coordinator_->Commit(42, [&](Result<Timestamp> r) { committed = r.status(); });
  EXPECT_EQ(committed->code(), StatusCode::kNotFound);

  Result<Coordinator::Begun> read_only = coordinator_->Begin(std::nullopt, true, std::nullopt);
  ASSERT_TRUE(read_only.ok());
  EXPECT_EQ(coordinator_->Write(read_only->id, "k", "1").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(coordinator_->Begin(std::nullopt, false, Timestamp(1)).status().code(),
            StatusCode::kInvalidArgument)
      << "only a read-only transaction reads the past";
  EXPECT_EQ(coordinator_->Begin(std::nullopt, true, Timestamp(clock_.Last().value() + (1u << 30)))
                .status()
                .code(),
            StatusCode::kInvalidArgument)
      << "nor the future";
  EXPECT_TRUE(coordinator_->Abort(read_only->id).ok());
  EXPECT_FALSE(coordinator_->OldestSnapshot());
}

TEST_F(CoordinatorTest, OneShardCommitsInOneRound) {
  const uint64_t id = Begin();
  ASSERT_TRUE(coordinator_->Write(id, key_on_[2], "1").ok());
  std::optional<Result<Timestamp>> committed;
  coordinator_->Commit(id, [&](Result<Timestamp> r) { committed = std::move(r); });
  auto sent = Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].dest, "n2");
  const PrepareRequest& request = As<ShardCommit>(sent[0]).request;
  EXPECT_EQ(request.primary, 2u);
  EXPECT_EQ(request.writes.size(), 1u);
  Answer(sent[0], CommitReply{Timestamp(777)});
  ASSERT_TRUE(committed && committed->ok());
  EXPECT_EQ(**committed, Timestamp(777));
  EXPECT_EQ(coordinator_->Stats().one_phase_commits, 1u);
  EXPECT_FALSE(coordinator_->OldestSnapshot()) << "the snapshot is released";
}

TEST_F(CoordinatorTest, TwoShardsCommitThroughTheRecordThenResolveAndForget) {
  const uint64_t id = Begin();
  ASSERT_TRUE(coordinator_->Write(id, key_on_[0], "0").ok());
  ASSERT_TRUE(coordinator_->Write(id, key_on_[1], "1").ok());
  std::optional<Result<Timestamp>> committed;
  coordinator_->Commit(id, [&](Result<Timestamp> r) { committed = std::move(r); });
  auto prepares = Take();
  ASSERT_EQ(prepares.size(), 2u);
  // This node's shard is written, so it holds the record and the list.
  EXPECT_EQ(prepares[0].dest, "n0");
  EXPECT_EQ(As<ShardPrepare>(prepares[0]).participants, (std::vector<ShardId>{0, 1}));
  EXPECT_TRUE(As<ShardPrepare>(prepares[1]).participants.empty());
  EXPECT_EQ(As<ShardPrepare>(prepares[1]).request.primary, 0u);
  Answer(prepares[0], PrepareReply{Timestamp(900)});
  EXPECT_TRUE(Take().empty()) << "nothing is decided before every prepare is in";
  Answer(prepares[1], PrepareReply{Timestamp(950)});
  auto decide = Take();
  ASSERT_EQ(decide.size(), 1u);
  EXPECT_EQ(As<RecordCall>(decide[0]).op, RecordOp::kCommit);
  EXPECT_EQ(As<RecordCall>(decide[0]).commit_timestamp, Timestamp(950)) << "the highest prepare";
  EXPECT_FALSE(committed);
  Answer(decide[0], RecordReply{RecordOp::kCommit, TxnStatus::kCommitted, Timestamp(950)});
  ASSERT_TRUE(committed && committed->ok());
  EXPECT_EQ(**committed, Timestamp(950));
  auto resolves = Take();
  ASSERT_EQ(resolves.size(), 2u);
  for (const auto& resolve : resolves) {
    EXPECT_EQ(As<ShardResolve>(resolve).outcome, TxnStatus::kCommitted);
    EXPECT_EQ(As<ShardResolve>(resolve).commit_timestamp, Timestamp(950));
  }
  Answer(resolves[0], ResolveReply{});
  EXPECT_TRUE(Take().empty());
  Answer(resolves[1], ResolveReply{});
  auto forget = Take();
  ASSERT_EQ(forget.size(), 1u);
  EXPECT_EQ(As<RecordCall>(forget[0]).op, RecordOp::kForget);
  EXPECT_EQ(coordinator_->Stats().two_phase_commits, 1u);
}

TEST_F(CoordinatorTest, ARefusedPrepareAbortsEverywhere) {
  const uint64_t id = Begin();
  ASSERT_TRUE(coordinator_->Write(id, key_on_[1], "1").ok());
  ASSERT_TRUE(coordinator_->Write(id, key_on_[2], "2").ok());
  std::optional<Result<Timestamp>> committed;
  coordinator_->Commit(id, [&](Result<Timestamp> r) { committed = std::move(r); });
  auto prepares = Take();
  ASSERT_EQ(prepares.size(), 2u);
  EXPECT_EQ(prepares[0].dest, "n1") << "not written here: the first written shard is primary";
  Answer(prepares[1], PeerError{Status(StatusCode::kConflict, "key2 changed")});
  ASSERT_TRUE(committed);
  EXPECT_EQ(committed->status().code(), StatusCode::kConflict);
  EXPECT_EQ(committed->status().message(),
            "transaction " + std::to_string(id) + " aborted: key2 changed");
  auto after = Take();
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(As<RecordCall>(after[0]).op, RecordOp::kAbort);
  EXPECT_EQ(As<ShardResolve>(after[1]).outcome, TxnStatus::kAborted);
  EXPECT_EQ(As<ShardResolve>(after[2]).outcome, TxnStatus::kAborted);
  // The other prepare's late answer changes nothing.
  Answer(prepares[0], PrepareReply{Timestamp(5)});
  EXPECT_TRUE(Take().empty());
  EXPECT_EQ(coordinator_->Stats().conflicts, 1u);
}

TEST_F(CoordinatorTest, AnUnansweredRecordCommitIsAnUnknownOutcomeAndHeartbeatsRun) {
  const uint64_t id = Begin();
  ASSERT_TRUE(coordinator_->Write(id, key_on_[0], "0").ok());
  ASSERT_TRUE(coordinator_->Write(id, key_on_[1], "1").ok());
  std::optional<Result<Timestamp>> committed;
  coordinator_->Commit(id, [&](Result<Timestamp> r) { committed = std::move(r); });
  auto prepares = Take();
  // While it prepares, the record is kept alive.
  timers_.RunDue(kT0 + milliseconds(100));
  auto heartbeat = Take();
  ASSERT_EQ(heartbeat.size(), 1u);
  EXPECT_EQ(As<RecordCall>(heartbeat[0]).op, RecordOp::kHeartbeat);
  EXPECT_EQ(heartbeat[0].dest, "n0");
  Answer(prepares[0], PrepareReply{Timestamp(10)});
  Answer(prepares[1], PrepareReply{Timestamp(11)});
  Take();
  // The primary never answers the commit: the call gives up.
  timers_.RunDue(kT0 + milliseconds(5000));
  peers_.RunTimers(kT0 + milliseconds(5000));
  ASSERT_TRUE(committed);
  EXPECT_EQ(committed->status().code(), StatusCode::kIoError) << "outcome unknown";
  EXPECT_EQ(coordinator_->Stats().unknown_outcomes, 1u);
}

void CoordinatorTest::CommitResent(ResentCommit* out) {
  const uint64_t id = Begin();
  ASSERT_TRUE(coordinator_->Write(id, key_on_[1], "1").ok());
  coordinator_->Commit(id, [out](Result<Timestamp> r) { out->committed = std::move(r); });
  peers_.RunTimers(kT0 + milliseconds(100));
  out->copies = Take();
  ASSERT_EQ(out->copies.size(), 2u);
}

TEST_F(CoordinatorTest, AResentOnePhaseCommitRefusedUnjudgedIsAnUnknownOutcome) {
  ResentCommit c;
  CommitResent(&c);
  // The shard restarted: it refuses what was sent before, unjudged.
  Answer(c.copies[1], PeerError{Status::Unavailable("sent to shard 1 before it restarted")});
  ASSERT_TRUE(c.committed);
  EXPECT_EQ(c.committed->status().code(), StatusCode::kIoError)
      << "the first copy may have committed on a shard that then forgot it";
  EXPECT_EQ(coordinator_->Stats().unknown_outcomes, 1u);
}

TEST_F(CoordinatorTest, AResentOnePhaseCommitRefusedAsAConflictLostIt) {
  ResentCommit c;
  CommitResent(&c);
  // A shard up all along judged a copy and remembers it: a conflict is
  // the answer for every copy.
  Answer(c.copies[0], PeerError{Status(StatusCode::kConflict, "write-write conflict")});
  ASSERT_TRUE(c.committed);
  EXPECT_EQ(c.committed->status().code(), StatusCode::kConflict);
  EXPECT_EQ(coordinator_->Stats().unknown_outcomes, 0u);
}

TEST_F(CoordinatorTest, ScanMergesShardsUpToTheShortestCutAndOverlaysOwnWrites) {
  const uint64_t id = Begin(Isolation::kSnapshot);
  ASSERT_TRUE(coordinator_->Write(id, "b", "\"own\"").ok());
  ASSERT_TRUE(coordinator_->Write(id, "d", std::nullopt).ok());
  std::optional<Result<ScanResult>> scanned;
  coordinator_->Scan(id, KeyRange::All(), 10,
                     [&](Result<ScanResult> r) { scanned = std::move(r); });
  auto reads = Take();
  ASSERT_EQ(reads.size(), 3u);
  EXPECT_EQ(As<ShardRead>(reads[0]).limit, 12u) << "room for the transaction's own writes";
  auto item = [](std::string key) { return ScanItem{key, "1", 1, Timestamp(3)}; };
  // Shard 1 was cut after "e": nothing past it is certain.
  Answer(reads[0], ShardReadReply{{}, ScanResult{{item("a"), item("f")}, false}});
  Answer(reads[1], ShardReadReply{{}, ScanResult{{item("c"), item("e")}, true}});
  ASSERT_FALSE(scanned);
  Answer(reads[2], ShardReadReply{{}, ScanResult{{item("d"), item("g")}, false}});
  ASSERT_TRUE(scanned && scanned->ok());
  std::vector<std::string> keys;
  for (const ScanItem& it : (*scanned)->items) keys.push_back(it.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c", "e"}));
  EXPECT_TRUE((*scanned)->more);
  EXPECT_EQ((*scanned)->items[1].value, "\"own\"");
}

TEST_F(CoordinatorTest, IdleTransactionsExpireAndReleaseTheirSnapshots) {
  Make(CoordinatorOptions{.txn_timeout = milliseconds(50)});
  const uint64_t id = Begin();
  EXPECT_TRUE(coordinator_->OldestSnapshot());
  timers_.SetNow(kT0 + milliseconds(49));
  coordinator_->ExpireIdle();
  EXPECT_TRUE(coordinator_->CheckOpen(id).ok());  // and now used again
  timers_.SetNow(kT0 + milliseconds(98));
  coordinator_->ExpireIdle();
  EXPECT_TRUE(coordinator_->CheckOpen(id).ok());
  timers_.SetNow(kT0 + milliseconds(200));
  coordinator_->ExpireIdle();
  EXPECT_EQ(coordinator_->CheckOpen(id).code(), StatusCode::kNotFound);
  EXPECT_FALSE(coordinator_->OldestSnapshot());
  EXPECT_EQ(coordinator_->Stats().expired_txns, 1u);
}

TEST_F(CoordinatorTest, CommitWaitHoldsTheAnswerUntilClocksArePast) {
  // The wall clock moves with the timers here.
  const Timestamp now = *clock_.Next();
  const uint64_t wall0 = HybridLogicalClock::PhysicalMillis(now);
  Make(CoordinatorOptions{.max_clock_offset = milliseconds(1000), .wall_micros = [&] {
                            return wall0 * 1000 +
                                   static_cast<uint64_t>((timers_.now() - kT0) /
                                                         std::chrono::microseconds(1));
                          }});
  bool answered = false;
  coordinator_->AfterCommitWait(now, [&] { answered = true; });
  EXPECT_FALSE(answered) << "another clock may still be up to a second behind";
  timers_.RunDue(kT0 + milliseconds(1500));
  EXPECT_FALSE(answered) << "a read elsewhere takes its snapshot a second in the past";
  timers_.RunDue(kT0 + milliseconds(2100));
  EXPECT_TRUE(answered)
      << "every clock is a second past the commit, so every read timestamp covers it";
  bool at_once = false;
  coordinator_->AfterCommitWait(Timestamp(1), [&] { at_once = true; });
  EXPECT_TRUE(at_once) << "a timestamp long past needs no wait";
}

TEST_F(CoordinatorTest, ACommitWaitTimerThatFiresEarlyWaitsOnForTheWallClock) {
  // A timer counts from its loop turn's start; if the turn began before
  // the wall clock was read, it fires while the wall clock still reads the
  // commit's millisecond. The answer must wait for the wall clock anyway.
  const Timestamp now = *clock_.Next();
  uint64_t wall_us = HybridLogicalClock::PhysicalMillis(now) * 1000;
  Make(CoordinatorOptions{.wall_micros = [&] { return wall_us; }});
  bool answered = false;
  coordinator_->AfterCommitWait(now, [&] { answered = true; });
  timers_.RunDue(kT0 + milliseconds(5));
  EXPECT_FALSE(answered) << "answered while the wall clock still read the commit's millisecond";
  wall_us += 1000;
  timers_.RunDue(kT0 + milliseconds(10));
  EXPECT_TRUE(answered);
}

TEST_F(CoordinatorTest, CommitWaitEndsAtTheNextMillisecondNotAWholeOneLater) {
  // Timestamps are milliseconds: a commit read 900 µs into its millisecond
  // waits 100 µs, not a millisecond.
  const Timestamp now = *clock_.Next();
  uint64_t wall_us = HybridLogicalClock::PhysicalMillis(now) * 1000 + 900;
  Make(CoordinatorOptions{.wall_micros = [&] { return wall_us; }});
  bool answered = false;
  coordinator_->AfterCommitWait(now, [&] { answered = true; });
  timers_.RunDue(kT0 + std::chrono::microseconds(99));
  EXPECT_FALSE(answered);
  wall_us += 100;
  timers_.RunDue(kT0 + std::chrono::microseconds(100));
  EXPECT_TRUE(answered) << "the wall clock is past the commit's millisecond";
}

TEST_F(CoordinatorTest, LimitsOnWhatOneTransactionWrites) {
  const uint64_t id = Begin();
  const std::string big(1024 * 1024 - 16, 'x');
  Status s;
  int written = 0;
  while ((s = coordinator_->Write(id, "k" + std::to_string(written), "\"" + big + "\"")).ok()) {
    ++written;
  }
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("MiB"), std::string::npos);
  EXPECT_EQ(written, static_cast<int>(kMaxTxnWriteBytes / big.size()));
}

}  // namespace coordinator_test
}  // namespace strata::cluster
