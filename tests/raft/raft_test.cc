// Raft's rules, one scenario at a time, the messages delivered by hand:
// an election and replication, the paper's Figure 8 (no commitment of an
// earlier term's entry by counting), a follower's conflicting suffix
// replaced, votes that survive a restart, PreVote keeping a rejoining node
// from deposing a leader, CheckQuorum stepping an isolated leader down,
// read indexes (a follower's, and none from a leader that was cut off),
// leadership transfer, and a snapshot sent in chunks, one of them lost.
#include "raft/raft.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/raft/raft_group.h"

namespace strata::raft {
namespace {

std::vector<std::string> Data(const std::vector<Entry>& entries) {
  std::vector<std::string> out;
  for (const Entry& e : entries) {
    if (!e.data.empty()) out.push_back(e.data);
  }
  return out;
}

TEST(RaftTest, ANodeThatTimesOutIsElectedAndItsEntriesAreAppliedEverywhere) {
  RaftGroup group(3);
  ASSERT_TRUE(group.Elect(1));
  EXPECT_EQ(group.node(1).term(), 1u);
  for (NodeId id : {2, 3}) {
    EXPECT_EQ(group.node(id).role(), RaftRole::kFollower);
    EXPECT_EQ(group.node(id).leader(), 1u);
    EXPECT_EQ(group.disk(id).hard_state.vote, 1u) << "the vote is on disk";
  }
  EXPECT_FALSE(group.node(2).Propose("no").has_value()) << "only the leader proposes";
  ASSERT_EQ(group.node(1).Propose("a"), Index{2});  // after the leader's empty entry
  ASSERT_EQ(group.node(1).Propose("b"), Index{3});
  group.DriveAll();
  group.DeliverAll();
  group.Tick(1);  // a heartbeat carries the commit index to the followers
  group.DeliverAll();
  for (NodeId id : {1, 2, 3}) {
    EXPECT_EQ(Data(group.applied(id)), (std::vector<std::string>{"a", "b"})) << id;
    EXPECT_EQ(group.disk(id).hard_state.commit, 3u) << id;
  }
}

TEST(RaftTest, ALeaderDoesNotCommitAnEarlierTermsEntryByCountingReplicas) {
  // The paper's Figure 8. Entry 2 of term 2 was written by a leader that
  // died; node 3 has an entry 2 of term 3 instead. Node 1 becomes leader of
  // term 4 and copies entry 2 to node 2: a majority holds it, yet node 3
  // (last term 3) could still be elected without it and overwrite it. So
  // node 1 may commit it only under an entry of its own term.
  RaftConfig config;
  config.max_entries_per_message = 1;  // entry 2 reaches node 2 before entry 3
  std::map<NodeId, RaftStorage> disks;
  disks[1] = {HardState{3, kNobody, 1}, Snapshot{}, {Entry{1, 1, "a"}, Entry{2, 2, "b"}}};
  disks[2] = {HardState{3, kNobody, 1}, Snapshot{}, {Entry{1, 1, "a"}}};
  disks[3] = {HardState{3, kNobody, 1}, Snapshot{}, {Entry{1, 1, "a"}, Entry{3, 2, "c"}}};
  RaftGroup group(3, config, disks);
  for (int i = 0; i < 100 && group.node(1).role() != RaftRole::kLeader; ++i) {
    group.Tick(1);
    // Only node 2 hears the campaign (node 3 would refuse anyway).
    while (group.DeliverOne([](const Message& m) { return m.type != MessageType::kAppend; })) {
    }
  }
  ASSERT_EQ(group.node(1).role(), RaftRole::kLeader);
  const Term term = group.node(1).term();
  ASSERT_EQ(group.node(1).log().TermAt(3), term) << "the new leader's empty entry";
  group.network.clear();
  group.Tick(1);  // heartbeats: the followers answer, and are probed
  bool saw_entry_2_on_a_majority = false;
  while (group.DeliverOne()) {
    const Index committed = group.node(1).log().committed();
    const bool node2_has_2 = group.node(2).log().Matches(2, 2);
    const bool node2_has_3 = group.node(2).log().Matches(3, term);
    if (node2_has_2 && !node2_has_3) {
      saw_entry_2_on_a_majority = true;
      EXPECT_LT(committed, 2u) << "committed an earlier term's entry by counting replicas";
    }
    if (committed >= 2) {
      EXPECT_TRUE(node2_has_3 || group.node(3).log().Matches(3, term));
    }
  }
  EXPECT_TRUE(saw_entry_2_on_a_majority);
  EXPECT_EQ(group.node(1).log().committed(), 3u);
  group.Tick(1);
  group.DeliverAll();
  for (NodeId id : {1, 2, 3}) {
    EXPECT_EQ(Data(group.applied(id)), (std::vector<std::string>{"a", "b"})) << id;
  }
}

TEST(RaftTest, AFollowersConflictingSuffixIsReplacedByTheLeaders) {
  RaftConfig config;
  config.check_quorum = false;  // node 3 answers node 2 without waiting out a lease
  RaftGroup group(3, config);
  ASSERT_TRUE(group.Elect(1));
  group.DeliverAll();
  // Node 1 appends entries nobody hears of, then loses its leadership.
  for (std::string d : {"lost1", "lost2", "lost3"}) ASSERT_TRUE(group.node(1).Propose(d));
  group.DriveAll();
  group.network.clear();
  group.Crash(1);
  ASSERT_TRUE(group.Elect(2));
  ASSERT_TRUE(group.node(2).Propose("kept").has_value());
  group.DriveAll();
  group.DeliverAll();
  group.Restart(1);
  for (int i = 0; i < 5; ++i) {
    group.Tick(2);
    group.DeliverAll();
  }
  EXPECT_EQ(group.node(1).leader(), 2u);
  EXPECT_EQ(Data(group.disk(1).entries), (std::vector<std::string>{"kept"}));
  EXPECT_EQ(Data(group.applied(1)), (std::vector<std::string>{"kept"}));
}

TEST(RaftTest, AVoteSurvivesARestartSoATermHasOneLeader) {
  RaftConfig config;
  config.pre_vote = false;
  config.check_quorum = false;
  RaftGroup group(3, config);
  // Node 1 campaigns; only node 3 hears it and votes.
  for (int i = 0; i < 100 && group.node(1).role() != RaftRole::kCandidate; ++i) group.Tick(1);
  ASSERT_EQ(group.node(1).role(), RaftRole::kCandidate);
  const Term term = group.node(1).term();
  group.DeliverAll([](const Message& m) { return m.to == 3 || m.from == 3; });
  EXPECT_EQ(group.node(1).role(), RaftRole::kLeader);
  group.network.clear();
  // Node 3 restarts; node 2 campaigns at the same term: node 3 must refuse.
  group.Crash(3);
  group.Restart(3);
  EXPECT_EQ(group.node(3).vote(), 1u);
  Message ask;
  ask.type = MessageType::kVote;
  ask.from = 2;
  ask.to = 3;
  ask.term = term;
  ask.index = 10;
  ask.log_term = term;
  group.node(3).Step(ask);
  group.Drive(3);
  ASSERT_FALSE(group.network.empty());
  EXPECT_TRUE(group.network.back().reject);
}

TEST(RaftTest, WithPreVoteARejoiningNodeDoesNotDeposeTheLeader) {
  RaftGroup group(3);
  ASSERT_TRUE(group.Elect(1));
  group.DeliverAll();
  const Term term = group.node(1).term();
  // Node 3 is cut off and times out again and again.
  for (int i = 0; i < 200; ++i) {
    group.Tick(3);
    if (i % 2 == 0) group.Tick(1);
    group.DeliverAll([](const Message& m) { return m.from != 3 && m.to != 3; });
  }
  EXPECT_EQ(group.node(3).term(), term) << "pre-votes change no term";
  EXPECT_NE(group.node(3).role(), RaftRole::kLeader);
  // It rejoins: the leader and term stay.
  for (int i = 0; i < 20; ++i) {
    group.Tick(1);
    group.DeliverAll();
  }
  EXPECT_EQ(group.node(1).role(), RaftRole::kLeader);
  EXPECT_EQ(group.node(1).term(), term);
  EXPECT_EQ(group.node(3).leader(), 1u);
}

// Told that the leader is gone (its connection broke), followers campaign
// after the random part of their election timeout alone; not told, they
// wait at least the whole timeout. A leader that is alive is not deposed
// by a follower told so wrongly.
TEST(RaftTest, FollowersToldTheLeaderIsGoneCampaignWithoutWaitingOutItsLease) {
  // Ticks until one of the members left (all but node 1, which crashed)
  // leads, and which.
  auto elect_without_1 = [](int members, uint64_t seed, bool told) {
    RaftConfig config;
    config.random_seed = seed;
    RaftGroup group(members, config);
    EXPECT_TRUE(group.Elect(1));
    group.DeliverAll();
    group.Crash(1);
    if (told) {
      for (NodeId id = 2; id <= static_cast<NodeId>(members); ++id) {
        group.node(id).LeaderUnreachable(1);
      }
    }
    for (int ticks = 1; ticks <= 100; ++ticks) {
      for (NodeId id = 2; id <= static_cast<NodeId>(members); ++id) group.Tick(id);
      group.DeliverAll();
      for (NodeId id = 2; id <= static_cast<NodeId>(members); ++id) {
        if (group.node(id).role() == RaftRole::kLeader) return std::pair<int, NodeId>{ticks, id};
      }
    }
    return std::pair<int, NodeId>{1000, kNobody};
  };
  auto ticks_to_new_leader = [&](uint64_t seed, bool told) {
    return elect_without_1(3, seed, told).first;
  };
  // Untold, split votes delay some seeds by a whole timeout. Told, the two
  // left take turns (node 2 campaigns within the first half of the random
  // part, node 3 within the second): no seed splits the vote, and every
  // one elects within half the time untold elections take at least.
  const int election_ticks = RaftConfig{}.election_ticks;
  int untold_split = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const int told = ticks_to_new_leader(seed, true);
    const int untold = ticks_to_new_leader(seed, false);
    EXPECT_GE(untold, election_ticks) << seed;
    EXPECT_LE(told, election_ticks / 2) << seed;
    if (untold > 2 * election_ticks) ++untold_split;
  }
  EXPECT_GE(untold_split, 1) << "the seeds include a split vote when untold";
  // Of five, four are left: node 2, first in turn, campaigns within the
  // first quarter of the random part and wins (its log is as long as any).
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const auto [ticks, leader] = elect_without_1(5, seed, true);
    EXPECT_LE(ticks, election_ticks / 4) << seed;
    EXPECT_EQ(leader, 2u) << seed;
  }

  RaftGroup group(3);
  ASSERT_TRUE(group.Elect(1));
  group.DeliverAll();
  const Term term = group.node(1).term();
  group.node(2).LeaderUnreachable(1);
  group.node(3).LeaderUnreachable(2) /* not its leader: nothing */;
  for (int i = 0; i < 50; ++i) {
    for (NodeId id : {1, 2, 3}) group.Tick(id);
    group.DeliverAll();
  }
  EXPECT_EQ(group.node(1).role(), RaftRole::kLeader);
  EXPECT_EQ(group.node(1).term(), term);
}

TEST(RaftTest, WithCheckQuorumAnIsolatedLeaderStepsDown) {
  RaftGroup group(3);
  ASSERT_TRUE(group.Elect(1));
  group.DeliverAll();
  for (int i = 0; i < 25; ++i) {
    group.Tick(1);
    group.DeliverAll([](const Message& m) { return m.from != 1 && m.to != 1; });
  }
  EXPECT_EQ(group.node(1).role(), RaftRole::kFollower);
  EXPECT_EQ(group.node(1).leader(), kNobody);
}

TEST(RaftTest, AFollowersReadIsGivenAnIndexPastEveryAcknowledgedWrite) {
  RaftGroup group(3);
  ASSERT_TRUE(group.Elect(1));
  const Index written = *group.node(1).Propose("w");
  group.DriveAll();
  group.DeliverAll();
  ASSERT_EQ(group.node(1).log().committed(), written);  // acknowledged by the leader
  group.node(3).ReadIndex(7);
  group.Drive(3);
  group.DeliverAll();
  ASSERT_EQ(group.reads.size(), 1u);
  EXPECT_EQ(group.reads[0].first, 3u);
  EXPECT_EQ(group.reads[0].second, (ReadState{7, written}));
}

TEST(RaftTest, ALeaderCutOffFromTheOthersGivesNoReadIndex) {
  // Node 1 leads, then is cut off; nodes 2 and 3 elect node 2, which
  // commits a write. Node 1 does not know yet and still leads in its own
  // eyes: a read it answered from its commit index would miss that write.
  RaftGroup group(3);
  ASSERT_TRUE(group.Elect(1));
  group.DeliverAll();
  auto apart = [](const Message& m) { return m.from != 1 && m.to != 1; };
  for (int i = 0; i < 100 && group.node(2).role() != RaftRole::kLeader; ++i) {
    group.Tick(2);
    group.Tick(3);
    group.DeliverAll(apart);
  }
  ASSERT_EQ(group.node(2).role(), RaftRole::kLeader);
  ASSERT_TRUE(group.node(2).Propose("newer").has_value());
  group.DriveAll();
  group.DeliverAll(apart);
  ASSERT_EQ(group.node(1).role(), RaftRole::kLeader) << "the old leader has not noticed";
  group.node(1).ReadIndex(9);
  group.Drive(1);
  group.DeliverAll(apart);
  EXPECT_TRUE(group.reads.empty()) << "no majority confirmed node 1's leadership";
  // Once CheckQuorum steps it down, the read fails and may be asked again.
  for (int i = 0; i < 30 && group.failed_reads.empty(); ++i) {
    group.Tick(1);
    group.DeliverAll(apart);
  }
  EXPECT_TRUE(group.reads.empty());
  ASSERT_EQ(group.failed_reads.size(), 1u);
  EXPECT_EQ(group.failed_reads[0], (std::pair<NodeId, uint64_t>{1, 9}));
}

TEST(RaftTest, ALeaderHandsOverToALaggingMemberOnceItHasCaughtUp) {
  RaftGroup group(3);
  ASSERT_TRUE(group.Elect(1));
  group.DeliverAll();
  // Node 3 misses two entries.
  ASSERT_TRUE(group.node(1).Propose("a").has_value());
  ASSERT_TRUE(group.node(1).Propose("b").has_value());
  group.DriveAll();
  group.DeliverAll([](const Message& m) { return m.to != 3; });
  const Term term = group.node(1).term();
  ASSERT_TRUE(group.node(1).TransferLeadership(3));
  EXPECT_FALSE(group.node(1).Propose("refused").has_value()) << "no proposals while handing over";
  EXPECT_FALSE(group.node(2).TransferLeadership(3)) << "only the leader hands over";
  group.Drive(1);
  group.DeliverAll();
  // No ticks passed: node 3 caught up, was told to campaign, and won,
  // though nodes 1 and 2 had heard from their leader a moment before.
  EXPECT_EQ(group.node(3).role(), RaftRole::kLeader);
  EXPECT_EQ(group.node(3).term(), term + 1);
  EXPECT_EQ(group.node(1).leader(), 3u);
  EXPECT_EQ(group.node(1).transferring_to(), kNobody);
  EXPECT_EQ(Data(group.disk(3).entries), (std::vector<std::string>{"a", "b"}));
}

TEST(RaftTest, AHandoverToAMemberThatNeverAnswersIsGivenUp) {
  RaftGroup group(3);
  ASSERT_TRUE(group.Elect(1));
  group.DeliverAll();
  group.Crash(3);
  ASSERT_TRUE(group.node(1).TransferLeadership(3));
  for (int i = 0; i < 9; ++i) {
    group.Tick(1);
    group.DeliverAll();
    ASSERT_FALSE(group.node(1).Propose("x").has_value());
  }
  group.Tick(1);  // an election timeout after it began
  group.DeliverAll();
  EXPECT_EQ(group.node(1).role(), RaftRole::kLeader);
  EXPECT_TRUE(group.node(1).Propose("y").has_value());
}

// Node 1 leads `group` (three members) and commits five entries with node
// 3 down; nodes 1 and 2 compact them all. Returns the index compacted to.
Index CommitFiveWithoutNodeThreeAndCompact(RaftGroup& group) {
  EXPECT_TRUE(group.Elect(1));
  group.DeliverAll();
  group.Crash(3);
  for (std::string d : {"a", "b", "c", "d", "e"}) EXPECT_TRUE(group.node(1).Propose(d));
  group.DriveAll();
  group.DeliverAll();
  group.Tick(1);
  group.DeliverAll();
  const Index applied = group.applied(1).size();
  EXPECT_TRUE(group.Compact(1, applied));
  EXPECT_TRUE(group.Compact(2, applied));
  return applied;
}

TEST(RaftTest, AFollowerBehindTheCompactedLogCatchesUpFromASnapshotInChunks) {
  RaftConfig config;
  config.snapshot_chunk_bytes = 16;
  RaftGroup group(3, config);
  const Index applied = CommitFiveWithoutNodeThreeAndCompact(group);
  ASSERT_EQ(applied, 6u);  // the leader's empty entry and five
  EXPECT_FALSE(group.Compact(1, applied + 1)) << "not applied";
  ASSERT_TRUE(group.node(1).Propose("f").has_value());
  group.DriveAll();
  group.DeliverAll();
  // Node 3 comes back with nothing; the first chunk sent to it is lost.
  group.Restart(3);
  bool dropped = false;
  auto lose_first_chunk = [&](const Message& m) {
    if (m.type == MessageType::kSnapshot && m.chunk_offset == 0 && !dropped) {
      dropped = true;
      return false;
    }
    return true;
  };
  for (int i = 0; i < 40 && group.applied(3).size() < applied + 1; ++i) {
    group.Tick(1);
    group.DeliverAll(lose_first_chunk);
  }
  EXPECT_TRUE(dropped);
  EXPECT_EQ(group.snapshots_installed, 1);
  EXPECT_EQ(group.disk(3).snapshot.index, applied);
  EXPECT_EQ(Data(group.applied(3)), (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
  EXPECT_EQ(group.node(3).log().first_index(), applied + 1);
}

// A leader whose driver holds the snapshot (ReleaseSnapshotData: the
// data in a file, say) sends it chunk by chunk from the driver's reader;
// a chunk that cannot be read stops that send, and the snapshot is sent
// again later, whole. Without a reader the data stays.
TEST(RaftTest, ASnapshotReleasedToTheDriverIsSentFromItsReader) {
  std::string stored;  // the driver's copy
  int reads = 0;
  bool fail_next = false;
  Index asked = 0;
  RaftConfig config;
  config.snapshot_chunk_bytes = 16;
  config.snapshot_reader = [&](Index index, uint64_t offset,
                               size_t length) -> std::optional<std::string> {
    ++reads;
    asked = index;
    if (fail_next) {
      fail_next = false;
      return std::nullopt;
    }
    return stored.substr(std::min<size_t>(offset, stored.size()), length);
  };
  RaftGroup group(3, config);
  const Index applied = CommitFiveWithoutNodeThreeAndCompact(group);
  ASSERT_EQ(applied, 6u);
  stored = group.node(1).snapshot().data;
  ASSERT_GT(stored.size(), 3 * config.snapshot_chunk_bytes);
  EXPECT_FALSE(group.node(1).ReleaseSnapshotData(applied + 1)) << "not its snapshot";
  ASSERT_TRUE(group.node(1).ReleaseSnapshotData(applied));
  EXPECT_TRUE(group.node(1).snapshot().data.empty());
  EXPECT_EQ(group.node(1).snapshot_bytes(), stored.size());
  ASSERT_TRUE(group.node(1).Propose("f").has_value());
  group.DriveAll();
  group.DeliverAll();
  group.Restart(3);
  fail_next = true;
  for (int i = 0; i < 60 && group.applied(3).size() < applied + 1; ++i) {
    group.Tick(1);
    group.DeliverAll();
  }
  EXPECT_FALSE(fail_next) << "the failed read happened";
  EXPECT_EQ(asked, applied);
  EXPECT_GT(reads, static_cast<int>(stored.size() / config.snapshot_chunk_bytes));
  EXPECT_EQ(group.snapshots_installed, 1);
  EXPECT_EQ(group.disk(3).snapshot.data, stored);
  EXPECT_EQ(Data(group.applied(3)), (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));

  RaftGroup without(1);
  ASSERT_TRUE(without.Elect(1));
  without.DriveAll();
  ASSERT_TRUE(without.Compact(1, without.applied(1).size()));
  EXPECT_FALSE(without.node(1).ReleaseSnapshotData(without.node(1).snapshot().index));
  EXPECT_EQ(without.node(1).snapshot().data.size(), without.node(1).snapshot_bytes());
}

// A leader sends a snapshot a window of chunks at a time, the next as the
// follower acknowledges one, so it never holds more than the window in
// messages to that follower; and a transfer that takes longer than an
// election timeout is not started over while its chunks are acknowledged.
TEST(RaftTest, ASnapshotGoesAWindowOfChunksAtATimeAndIsNotRestartedWhileItComesIn) {
  RaftConfig config;
  config.snapshot_chunk_bytes = 1;
  config.snapshot_window_chunks = 3;
  RaftGroup group(3, config);
  const Index applied = CommitFiveWithoutNodeThreeAndCompact(group);
  const std::string& data = group.node(1).snapshot().data;
  const size_t chunks = data.size();
  ASSERT_GT(chunks, 3u * static_cast<size_t>(config.election_ticks)) << "longer than a timeout";
  group.Restart(3);
  int rounds = 0, starts = 0, acknowledgements = 0;
  size_t most_held = 0;
  for (; rounds < 1000 && group.applied(3).size() < applied; ++rounds) {
    group.Tick(1);
    // One chunk reaches the follower a round; the others wait in `held`.
    std::deque<Message> held;
    bool delivered = false;
    while (group.DeliverOne([&](const Message& m) {
      if (m.type == MessageType::kSnapshotReply) ++acknowledgements;
      if (m.type != MessageType::kSnapshot) return true;
      if (delivered) {
        held.push_back(m);
        return false;
      }
      if (m.chunk_offset == 0) ++starts;
      delivered = true;
      return true;
    })) {
    }
    most_held = std::max(most_held, held.size());
    group.network = std::move(held);
  }
  EXPECT_EQ(starts, 1) << "sent once, though it took " << rounds << " rounds";
  EXPECT_GT(rounds, 3 * config.election_ticks);
  EXPECT_LE(most_held, config.snapshot_window_chunks);
  EXPECT_GE(acknowledgements, static_cast<int>(chunks) - 1);
  EXPECT_EQ(group.snapshots_installed, 1);
  EXPECT_EQ(group.disk(3).snapshot.data, data);
  EXPECT_EQ(Data(group.applied(3)), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
}

// Commits `change` through `leader` (which must accept it now).
void ChangeMembers(RaftGroup& group, NodeId leader, ConfChange change) {
  ASSERT_TRUE(group.node(leader).ProposeConfChange(change).has_value());
  group.DriveAll();
  group.DeliverAll();
  group.Tick(leader);
  group.DeliverAll();
}

TEST(RaftTest, MembersJoinAsLearnersAreVotedInAndLeaveOneAtATime) {
  RaftGroup group(4, RaftConfig{}, {}, /*voters=*/3);
  for (int i = 0; i < 50; ++i) group.Tick(4);
  EXPECT_EQ(group.node(4).role(), RaftRole::kFollower) << "not a member: never campaigns";
  // Elected, its first entry not yet replicated: no membership change yet.
  auto no_appends = [](const Message& m) { return m.type != MessageType::kAppend; };
  for (int i = 0; i < 100 && group.node(1).role() != RaftRole::kLeader; ++i) {
    group.Tick(1);
    group.DeliverAll(no_appends);
  }
  ASSERT_EQ(group.node(1).role(), RaftRole::kLeader);
  EXPECT_FALSE(group.node(1).ProposeConfChange({ConfChange::Kind::kAddLearner, 4}).has_value())
      << "its term's first entry is not committed yet";
  ASSERT_TRUE(group.node(1).Propose("a").has_value());
  group.DriveAll();
  group.Tick(1);
  group.DeliverAll();

  ChangeMembers(group, 1, {ConfChange::Kind::kAddLearner, 4});
  EXPECT_EQ(group.node(4).learners(), (std::set<NodeId>{4}));
  EXPECT_EQ(Data(group.applied(4)), (std::vector<std::string>{"a", "l 4"}));
  EXPECT_EQ(group.node(1).MatchOf(4), group.node(1).log().last_index()) << "caught up";
  EXPECT_EQ(group.node(2).MatchOf(4), 0u) << "a follower tracks nobody";
  // A learner does not count: with 2 and 3 down, nothing commits.
  group.Crash(2);
  group.Crash(3);
  const Index pending = *group.node(1).Propose("b");
  group.DriveAll();
  group.DeliverAll();
  EXPECT_LT(group.node(1).log().committed(), pending);
  group.Restart(2);
  group.Restart(3);
  group.Tick(1);
  group.DeliverAll();
  ASSERT_GE(group.node(1).log().committed(), pending);

  // Voted in: four voters, a majority of three.
  ChangeMembers(group, 1, {ConfChange::Kind::kAddVoter, 4});
  EXPECT_EQ(group.node(1).voters(), (std::set<NodeId>{1, 2, 3, 4}));
  EXPECT_TRUE(group.node(1).learners().empty());
  // The leader removes itself: once applied, it leads on without counting
  // itself and hands over to a member; it never campaigns again.
  ChangeMembers(group, 1, {ConfChange::Kind::kRemove, 1});
  NodeId leader = kNobody;
  for (int i = 0; i < 200 && leader == kNobody; ++i) {
    for (NodeId id : {1, 2, 3, 4}) group.Tick(id);
    group.DeliverAll();
    for (NodeId id : {2, 3, 4}) {
      if (group.node(id).role() == RaftRole::kLeader) leader = id;
    }
  }
  ASSERT_NE(leader, kNobody);
  EXPECT_EQ(group.node(leader).voters(), (std::set<NodeId>{2, 3, 4}));
  EXPECT_EQ(group.node(1).role(), RaftRole::kFollower);
  const Term term = group.node(leader).term();
  for (int i = 0; i < 50; ++i) {
    for (NodeId id : {1, 2, 3, 4}) group.Tick(id);
    group.DeliverAll();
  }
  EXPECT_EQ(group.node(leader).term(), term) << "node 1 never campaigned";
  EXPECT_EQ(group.node(leader).role(), RaftRole::kLeader);
}

TEST(RaftTest, OneMembershipChangeAtATime) {
  RaftGroup group(5, RaftConfig{}, {}, /*voters=*/3);
  ASSERT_TRUE(group.Elect(1));
  group.Tick(1);
  group.DeliverAll();
  ASSERT_TRUE(group.node(1).ProposeConfChange({ConfChange::Kind::kAddVoter, 4}).has_value());
  EXPECT_FALSE(group.node(1).ProposeConfChange({ConfChange::Kind::kAddVoter, 5}).has_value())
      << "the first is not committed yet";
  group.DriveAll();
  group.DeliverAll();
  group.Tick(1);
  group.DeliverAll();
  EXPECT_TRUE(group.node(1).ProposeConfChange({ConfChange::Kind::kAddVoter, 5}).has_value());
  EXPECT_EQ(ConfChange::Decode("v 5"), (ConfChange{ConfChange::Kind::kAddVoter, 5}));
  EXPECT_FALSE(ConfChange::Decode("x 5").has_value());
  EXPECT_FALSE(ConfChange::Decode("r 0").has_value());
  EXPECT_FALSE(ConfChange::Decode("r 5x").has_value());
  // A context rides along, bytes and spaces included.
  const ConfChange with_context{ConfChange::Kind::kAddLearner, 7, std::string("m 3\0\xff", 5)};
  EXPECT_EQ(ConfChange::Decode(with_context.Encode()), with_context);
  EXPECT_FALSE(ConfChange::Decode("r 5 ").has_value()) << "a space with nothing after it";
}

TEST(RaftTest, RandomMessagesNeitherCrashAMemberNorBreakItsLogsNumbering) {
  std::mt19937_64 rng(42);
  RaftConfig config;
  config.snapshot_chunk_bytes = 8;
  RaftGroup group(3, config);
  ASSERT_TRUE(group.Elect(1));
  for (std::string d : {"a", "b", "c"}) ASSERT_TRUE(group.node(1).Propose(d));
  group.DriveAll();
  group.DeliverAll();
  uint64_t malformed = 0;
  for (int i = 0; i < 200000; ++i) {
    const NodeId to = 1 + rng() % 3;
    Message m;
    m.type = static_cast<MessageType>(rng() % (static_cast<int>(kLastMessageType) + 1));
    m.from = rng() % 5;  // nobody, members and strangers
    m.to = rng() % 8 == 0 ? 9 : to;
    m.term = rng() % 8;
    m.index = rng() % 12;
    m.log_term = rng() % 8;
    m.commit = rng() % 14;
    m.reject = rng() % 2 == 0;
    m.reject_hint = rng() % 12;
    m.context = rng() % 4 == 0 ? kTransfer : rng() % 5;
    if (rng() % 2 == 0) {
      // Half of them plausible: this member's term, an entry it has.
      const RaftLog& log = group.node(to).log();
      m.term = std::max<Term>(1, group.node(to).term());
      m.index = log.snapshot_index() + rng() % (log.last_index() - log.snapshot_index() + 1);
      m.log_term = log.TermAt(m.index).value_or(0);
    }
    m.chunk_offset = rng() % 4 * 8;
    m.chunk = std::string(rng() % 10, 'x');
    m.last_chunk = rng() % 2 == 0;
    for (int n = static_cast<int>(rng() % 4); n > 0; --n) {
      const Index index = rng() % 4 == 0 ? rng() % 20 : m.index + 1 + m.entries.size();
      m.entries.push_back(Entry{rng() % 8, index, "r", EntryType::kNormal});
    }
    group.node(to).Step(m);
    if (rng() % 3 == 0) group.Tick(to);
    group.Drive(to);
    group.network.clear();
    const RaftLog& log = group.node(to).log();
    Index expected = log.first_index();
    for (const Entry& e : log.Slice(1, log.last_index(), SIZE_MAX)) ASSERT_EQ(e.index, expected++);
    ASSERT_LE(log.applied(), log.committed());
    ASSERT_LE(log.committed(), log.last_index());
  }
  for (NodeId id : {1, 2, 3}) malformed += group.node(id).malformed();
  EXPECT_GT(malformed, 10000u) << "most of what was sent is refused as malformed";
}

TEST(RaftTest, AGroupOfOneCommitsWhatItMadeDurable) {
  RaftGroup group(1);
  ASSERT_TRUE(group.Elect(1));
  ASSERT_TRUE(group.node(1).Propose("solo").has_value());
  group.Drive(1);
  EXPECT_EQ(Data(group.applied(1)), (std::vector<std::string>{"solo"}));
}

}  // namespace
}  // namespace strata::raft
