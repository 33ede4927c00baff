// RaftLog: what a follower keeps of its leader's entries, and how far the
// log is durable, committed and applied.
#include "raft/raft_log.h"

#include <gtest/gtest.h>

namespace strata::raft {
namespace {

std::vector<Entry> Terms(std::initializer_list<Term> terms) {
  std::vector<Entry> out;
  for (Term t : terms)
    out.push_back(Entry{t, out.size() + 1, "e" + std::to_string(out.size() + 1)});
  return out;
}

TEST(RaftLogTest, AConflictingSuffixIsReplacedAndWhatMatchesIsKept) {
  RaftLog log(0, 0, Terms({1, 1, 2, 2}), 2);
  EXPECT_EQ(log.stable(), 4u);
  EXPECT_TRUE(log.Matches(2, 1));
  EXPECT_FALSE(log.Matches(3, 1));
  EXPECT_FALSE(log.Matches(5, 2));
  EXPECT_TRUE(log.Matches(0, 0));
  // The leader sends 3 (term 2, which we have) and 4, 5 of term 3.
  std::vector<Entry> sent = {Entry{2, 3, "e3"}, Entry{3, 4, "x4"}, Entry{3, 5, "x5"}};
  EXPECT_EQ(log.TakeFromLeader(2, sent), 5u);
  EXPECT_EQ(log.last_index(), 5u);
  EXPECT_EQ(log.TermAt(4), Term{3});
  // Entry 3 was kept: durable from 4 on no longer.
  EXPECT_EQ(log.stable(), 3u);
  std::vector<Entry> unstable = log.Unstable();
  ASSERT_EQ(unstable.size(), 2u);
  EXPECT_EQ(unstable.front().index, 4u);
  // A stale, shorter copy of the same message changes nothing.
  EXPECT_EQ(log.TakeFromLeader(2, {Entry{2, 3, "e3"}}), 3u);
  EXPECT_EQ(log.last_index(), 5u);
  log.StableTo(5, 2);  // a report about another term's entry: ignored
  EXPECT_EQ(log.stable(), 3u);
  log.StableTo(5, 3);
  EXPECT_EQ(log.stable(), 5u);
}

TEST(RaftLogTest, CommittedEntriesAreHandedOutOnceAndUpToDateComparesTermsFirst) {
  RaftLog log(0, 0, Terms({1, 2, 2}), 0);
  EXPECT_TRUE(log.ToApply().empty());
  log.CommitTo(2);
  log.CommitTo(1);  // never lowered
  EXPECT_EQ(log.committed(), 2u);
  ASSERT_EQ(log.ToApply().size(), 2u);
  log.AppliedTo(2);
  EXPECT_TRUE(log.ToApply().empty());
  log.CommitTo(9);  // clipped to the log
  EXPECT_EQ(log.committed(), 3u);
  EXPECT_TRUE(log.CandidateIsUpToDate(1, 3));   // a later last term wins
  EXPECT_FALSE(log.CandidateIsUpToDate(9, 1));  // however long
  EXPECT_TRUE(log.CandidateIsUpToDate(3, 2));
  EXPECT_FALSE(log.CandidateIsUpToDate(2, 2));
}

TEST(RaftLogTest, ASliceKeepsToItsCountAndBytesButTakesOneEntryLargerThanTheBytes) {
  std::vector<Entry> entries;
  for (Index i = 1; i <= 5; ++i) entries.push_back(Entry{1, i, std::string(i * 10, 'x')});
  RaftLog log(0, 0, entries, 0);
  EXPECT_EQ(log.Slice(1, 5, 3).size(), 3u);
  EXPECT_EQ(log.Slice(1, 5, 10, 30).size(), 2u) << "10 + 20 bytes, not 30 more";
  EXPECT_EQ(log.Slice(1, 5, 10, 29).size(), 1u);
  const std::vector<Entry> alone = log.Slice(5, 5, 10, 1);
  ASSERT_EQ(alone.size(), 1u) << "one entry larger than the bound still goes";
  EXPECT_EQ(alone.front().index, 5u);
  EXPECT_EQ(log.Slice(1, 5, 10).size(), 5u);
}

TEST(RaftLogTest, CompactedEntriesAreKnownOnlyByTheSnapshotsIndexAndTerm) {
  RaftLog log(0, 0, Terms({1, 1, 2, 2, 3}), 4);
  EXPECT_FALSE(log.CompactTo(3)) << "nothing applied yet";
  log.AppliedTo(4);
  EXPECT_FALSE(log.CompactTo(5)) << "past what is applied";
  ASSERT_TRUE(log.CompactTo(3));
  EXPECT_EQ(log.first_index(), 4u);
  EXPECT_EQ(log.last_index(), 5u);
  EXPECT_EQ(log.TermAt(3), Term{2});  // the snapshot's
  EXPECT_EQ(log.TermAt(2), std::nullopt);
  EXPECT_EQ(log.Slice(1, 9, 10).front().index, 4u);
  EXPECT_FALSE(log.CompactTo(2)) << "already compacted";
  // A leader's entries before the snapshot are skipped, later ones taken.
  EXPECT_EQ(log.TakeFromLeader(3, {Entry{2, 4, "e4"}, Entry{4, 5, "y5"}, Entry{4, 6, "y6"}}), 6u);
  EXPECT_EQ(log.last_term(), 4u);
  // Restarted from its storage: the snapshot is applied, not more.
  RaftLog restarted(3, 2, log.Slice(4, 6, 10), 5);
  EXPECT_EQ(restarted.applied(), 3u);
  EXPECT_EQ(restarted.committed(), 5u);
  EXPECT_EQ(restarted.ToApply().front().index, 4u);
  // A snapshot from the leader that this log does not match replaces it.
  restarted.RestoreFrom(9, 5);
  EXPECT_EQ(restarted.last_index(), 9u);
  EXPECT_EQ(restarted.last_term(), 5u);
  EXPECT_EQ(restarted.committed(), 9u);
  EXPECT_TRUE(restarted.ToApply().empty());
  EXPECT_TRUE(restarted.Unstable().empty());
}

}  // namespace
}  // namespace strata::raft
