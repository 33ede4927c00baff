// RaftLogStore: what a round stages comes back after a reopen, a crash in
// the middle of a write loses that round and nothing before it, damage
// anywhere else is reported, and rewrites keep the state while bounding
// the files. The model of what a group stores is written here from the
// Ready contract (raft/raft_types.h), apart from the store's own replay.
#include "replication/raft_log_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "replication/snapshot_file.h"
#include "storage_test_support.h"

namespace strata::replication {
namespace {

using raft::Entry;
using raft::EntryType;
using raft::GroupId;
using raft::HardState;
using raft::Index;
using raft::RaftStorage;
using raft::Ready;
using raft::Snapshot;
using storage_testing::TempDir;
namespace fs = std::filesystem;

RaftLogOptions NoSync() {
  RaftLogOptions options;
  options.sync = false;  // these tests crash the process, never the machine
  return options;
}

std::unique_ptr<RaftLogStore> OpenOrDie(const std::string& dir, RaftLogOptions options = NoSync()) {
  Result<std::unique_ptr<RaftLogStore>> store = RaftLogStore::Open(dir, options);
  EXPECT_TRUE(store.ok()) << store.status().message();
  return store.ok() ? std::move(*store) : nullptr;
}

// The model: what a group's storage holds after each kind of change.
void ModelReady(const Ready& ready, RaftStorage* state) {
  if (ready.snapshot.index != 0) {
    state->snapshot = ready.snapshot;
    state->entries.clear();
  }
  if (!ready.entries.empty()) {
    const Index from = ready.entries.front().index;
    std::erase_if(state->entries, [from](const Entry& e) { return e.index >= from; });
    state->entries.insert(state->entries.end(), ready.entries.begin(), ready.entries.end());
  }
  if (ready.has_hard_state) state->hard_state = ready.hard_state;
}

void ModelCompaction(const Snapshot& snapshot, RaftStorage* state) {
  state->snapshot = snapshot;
  std::erase_if(state->entries, [&](const Entry& e) { return e.index <= snapshot.index; });
}

// Random but valid Raft work: entries that extend or overwrite a suffix,
// hard states, compactions and snapshots from a leader, removals.
class RandomRounds {
 public:
  explicit RandomRounds(uint32_t seed) : random_(seed) {}

  // Stages one round on `store` and applies it to `model`.
  void Stage(RaftLogStore* store, StoredGroups* model) {
    const int changes = Pick(1, 4);
    for (int c = 0; c < changes; ++c) {
      const GroupId group = static_cast<GroupId>(Pick(1, 4));
      RaftStorage& state = (*model)[group];
      const Index last = state.snapshot.index + state.entries.size();
      const int kind = Pick(0, 19);
      if (kind == 0) {
        store->StageRemoval(group);
        model->erase(group);
        continue;
      }
      if (kind == 1 && last > state.snapshot.index) {
        Snapshot snapshot;
        snapshot.index = static_cast<Index>(
            Pick(static_cast<int>(state.snapshot.index) + 1, static_cast<int>(last)));
        snapshot.term = ++term_;
        snapshot.conf.voters = {1, 2, 3};
        snapshot.data = "compacted@" + std::to_string(snapshot.index);
        store->StageCompaction(group, snapshot);
        ModelCompaction(snapshot, &state);
        continue;
      }
      Ready ready;
      if (kind == 2) {
        ready.snapshot.index = last + static_cast<Index>(Pick(1, 5));
        ready.snapshot.term = ++term_;
        ready.snapshot.conf.voters = {1, 2};
        ready.snapshot.conf.learners = {4};
        ready.snapshot.data = std::string(static_cast<size_t>(Pick(0, 300)), 's');
      }
      const Index base = ready.snapshot.index != 0 ? ready.snapshot.index : last;
      const Index floor = ready.snapshot.index != 0 ? base : state.snapshot.index;
      if (Pick(0, 3) != 0) {
        // From somewhere in the suffix (a leader overruling it) or the end.
        Index from = base + 1;
        if (Pick(0, 3) == 0 && base > floor) {
          from = static_cast<Index>(Pick(static_cast<int>(floor) + 1, static_cast<int>(base)));
        }
        const int count = Pick(1, 6);
        for (int i = 0; i < count; ++i) {
          Entry entry;
          entry.index = from + static_cast<Index>(i);
          entry.term = term_;
          entry.type = Pick(0, 9) == 0 ? EntryType::kConfChange : EntryType::kNormal;
          entry.data = std::string(static_cast<size_t>(Pick(0, 40)), static_cast<char>('a' + i));
          ready.entries.push_back(entry);
        }
      }
      // A Ready with nothing to store stages nothing: the store would not
      // know the group, the model would.
      if (Pick(0, 1) == 0 || (ready.entries.empty() && ready.snapshot.index == 0)) {
        ready.has_hard_state = true;
        ready.hard_state = HardState{++term_, static_cast<raft::NodeId>(Pick(0, 3)),
                                     static_cast<Index>(Pick(0, 50))};
      }
      store->Stage(group, ready);
      ModelReady(ready, &state);
    }
  }

  int Pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random_); }

 private:
  std::mt19937 random_;
  uint64_t term_ = 1;
};

std::string LastSegment(const std::string& dir) {
  std::string last;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename();
    if (ParseRaftSegmentFileName(name) && name > last) last = name;
  }
  return dir + "/" + last;
}

TEST(RaftLogStoreTest, RoundsComeBackAfterReopen) {
  TempDir dir;
  StoredGroups model;
  RandomRounds rounds(7);
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path(), RaftLogOptions{});
    for (int i = 0; i < 200; ++i) {
      rounds.Stage(store.get(), &model);
      ASSERT_TRUE(store->Commit().ok());
      ASSERT_EQ(store->groups(), model) << "round " << i;
    }
    EXPECT_EQ(store->stats().rounds, 200u);
    EXPECT_GE(store->stats().syncs, 200u);
  }
  std::unique_ptr<RaftLogStore> reopened = OpenOrDie(dir.path());
  EXPECT_EQ(reopened->groups(), model);
  EXPECT_EQ(reopened->stats().torn_bytes, 0u);
}

// In memory (an empty directory, a member started with --in-memory): the
// same state round after round, an inconsistent round refused alike, and
// nothing written or synced anywhere.
TEST(RaftLogStoreTest, InMemoryKeepsTheSameStateAndWritesNothing) {
  TempDir cwd;
  const fs::path was = fs::current_path();
  fs::current_path(cwd.path());  // where a relative file would land
  StoredGroups model;
  RandomRounds rounds(11);
  std::unique_ptr<RaftLogStore> store = OpenOrDie("", RaftLogOptions{});
  for (int i = 0; i < 200; ++i) {
    rounds.Stage(store.get(), &model);
    ASSERT_TRUE(store->Commit().ok());
    ASSERT_EQ(store->groups(), model) << "round " << i;
  }
  EXPECT_EQ(store->stats().rounds, 200u);
  EXPECT_EQ(store->stats().syncs, 0u);
  EXPECT_EQ(store->stats().bytes, 0u);
  EXPECT_EQ(store->stats().segments, 0u);
  EXPECT_TRUE(fs::is_empty(cwd.path()));
  // Entries that leave a gap do not apply, in memory too.
  Ready gap;
  gap.entries.push_back(Entry{1, 1000, "far", EntryType::kNormal});
  store->Stage(1, gap);
  EXPECT_EQ(store->Commit().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(store->health().ok());
  EXPECT_TRUE(fs::is_empty(cwd.path()));
  fs::current_path(was);
}

// A round that moved a group's commit index alone writes nothing (no
// sync); the commit index rides along with the group's next record. A
// term or vote is written at once.
TEST(RaftLogStoreTest, ACommitIndexAloneWaitsForTheGroupsNextRecord) {
  TempDir dir;
  auto entry = [](Index index) { return Entry{2, index, "x", EntryType::kNormal}; };
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path());
    Ready first;
    first.entries = {entry(1), entry(2), entry(3)};
    first.has_hard_state = true;
    first.hard_state = HardState{2, 1, 0};
    store->Stage(1, first);
    ASSERT_TRUE(store->Commit().ok());
    Ready commit_alone;
    commit_alone.has_hard_state = true;
    commit_alone.hard_state = HardState{2, 1, 3};
    store->Stage(1, commit_alone);
    EXPECT_FALSE(store->has_staged());
    ASSERT_TRUE(store->Commit().ok());
    EXPECT_EQ(store->stats().rounds, 1u);
  }
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path());
    EXPECT_EQ(store->groups().at(1).hard_state, (HardState{2, 1, 0})) << "a hint, not kept";
    Ready commit_alone;
    commit_alone.has_hard_state = true;
    commit_alone.hard_state = HardState{2, 1, 3};
    store->Stage(1, commit_alone);
    store->Stage(1, Ready{});  // a round with nothing to keep for it
    Ready more;
    more.entries = {entry(4)};
    store->Stage(1, more);
    ASSERT_TRUE(store->Commit().ok());
    EXPECT_EQ(store->groups().at(1).hard_state, (HardState{2, 1, 3})) << "rode along";
    Ready vote;
    vote.has_hard_state = true;
    vote.hard_state = HardState{3, 2, 3};
    store->Stage(1, vote);
    EXPECT_TRUE(store->has_staged()) << "a new term is written at once";
    ASSERT_TRUE(store->Commit().ok());
  }
  std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path());
  EXPECT_EQ(store->groups().at(1).hard_state, (HardState{3, 2, 3}));
  EXPECT_EQ(store->groups().at(1).entries.size(), 4u);
}

TEST(RaftLogStoreTest, TheDirectoryIsLocked) {
  TempDir dir;
  std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path());
  Result<std::unique_ptr<RaftLogStore>> second = RaftLogStore::Open(dir.path(), NoSync());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
}

// A crash at every byte of the last round's write: the round is gone,
// everything before it is there, and the store takes new rounds after.
TEST(RaftLogStoreTest, ACrashMidWriteLosesOnlyThatRound) {
  TempDir dir;
  StoredGroups before;
  StoredGroups model;
  RandomRounds rounds(11);
  uint64_t size_before = 0;
  uint64_t size_after = 0;
  const std::string source = dir.File("source");
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(source);
    for (int i = 0; i < 20; ++i) {
      rounds.Stage(store.get(), &model);
      ASSERT_TRUE(store->Commit().ok());
    }
    before = model;
    size_before = fs::file_size(LastSegment(source));
    rounds.Stage(store.get(), &model);
    ASSERT_TRUE(store->Commit().ok());
    size_after = fs::file_size(LastSegment(source));
  }
  ASSERT_GT(size_after, size_before + kRaftRecordHeaderBytes);
  for (uint64_t cut = size_before; cut < size_after; ++cut) {
    const std::string copy = dir.File("cut" + std::to_string(cut));
    fs::copy(source, copy);
    fs::resize_file(LastSegment(copy), cut);
    {
      std::unique_ptr<RaftLogStore> store = OpenOrDie(copy);
      ASSERT_NE(store, nullptr);
      EXPECT_EQ(store->groups(), before) << "cut at " << cut;
      EXPECT_EQ(store->stats().torn_bytes, cut - size_before);
      RaftStorage& state = before[99];
      Ready ready;
      ready.has_hard_state = true;
      ready.hard_state = HardState{3, 1, 0};
      store->Stage(99, ready);
      ModelReady(ready, &state);
      ASSERT_TRUE(store->Commit().ok());
    }
    EXPECT_EQ(OpenOrDie(copy)->groups(), before) << "after a round past the cut at " << cut;
    before.erase(99);
    fs::remove_all(copy);
  }
}

// The file grew but its last blocks were never written: zeros where the
// record should be read as a torn write too.
TEST(RaftLogStoreTest, AZeroFilledTailIsATornWrite) {
  TempDir dir;
  StoredGroups model;
  RandomRounds rounds(3);
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path());
    for (int i = 0; i < 5; ++i) {
      rounds.Stage(store.get(), &model);
      ASSERT_TRUE(store->Commit().ok());
    }
  }
  const std::string last = LastSegment(dir.path());
  fs::resize_file(last, fs::file_size(last) + 4096);
  EXPECT_EQ(OpenOrDie(dir.path())->groups(), model);
}

TEST(RaftLogStoreTest, DamageBeforeTheTailIsAnError) {
  TempDir dir;
  StoredGroups model;
  RandomRounds rounds(5);
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path());
    for (int i = 0; i < 10; ++i) {
      rounds.Stage(store.get(), &model);
      ASSERT_TRUE(store->Commit().ok());
    }
  }
  const std::string last = LastSegment(dir.path());
  // A byte in the first record's payload, then in its length.
  for (uint64_t offset :
       {kRaftLogHeaderBytes + kRaftRecordHeaderBytes + 1, kRaftLogHeaderBytes + 8}) {
    const std::string original = storage_testing::ReadFileBytes(last);
    storage_testing::FlipByte(last, offset);
    Result<std::unique_ptr<RaftLogStore>> store = RaftLogStore::Open(dir.path(), NoSync());
    ASSERT_FALSE(store.ok()) << "offset " << offset;
    EXPECT_EQ(store.status().code(), StatusCode::kIoError);
    EXPECT_NE(
        store.status().message().find("damaged at offset " + std::to_string(kRaftLogHeaderBytes)),
        std::string::npos)
        << store.status().message();
    storage_testing::WriteFileBytes(last, original);
  }
  EXPECT_EQ(OpenOrDie(dir.path())->groups(), model);
}

// Every reopen starts a segment; the earlier ones are no longer the tail,
// so a record cut short there is damage, not a crash.
TEST(RaftLogStoreTest, ACutInAnOlderSegmentIsAnError) {
  TempDir dir;
  StoredGroups model;
  RandomRounds rounds(9);
  for (int open = 0; open < 2; ++open) {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path());
    rounds.Stage(store.get(), &model);
    ASSERT_TRUE(store->Commit().ok());
  }
  std::vector<std::string> segments;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    if (ParseRaftSegmentFileName(entry.path().filename().string())) {
      segments.push_back(entry.path());
    }
  }
  std::sort(segments.begin(), segments.end());
  ASSERT_EQ(segments.size(), 2u);  // one an Open, each with a round
  fs::resize_file(segments[0], fs::file_size(segments[0]) - 1);
  Result<std::unique_ptr<RaftLogStore>> store = RaftLogStore::Open(dir.path(), NoSync());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("cut short"), std::string::npos)
      << store.status().message();
}

TEST(RaftLogStoreTest, RewritesBoundTheFilesAndKeepTheState) {
  TempDir dir;
  StoredGroups model;
  RandomRounds rounds(13);
  RaftLogOptions options = NoSync();
  options.rewrite_bytes = 4096;
  options.segment_bytes = 1024;
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path(), options);
    for (int i = 0; i < 2000; ++i) {
      rounds.Stage(store.get(), &model);
      ASSERT_TRUE(store->Commit().ok());
    }
    EXPECT_GT(store->stats().rewrites, 10u);
    uint64_t on_disk = 0;
    for (const auto& entry : fs::directory_iterator(dir.path())) on_disk += entry.file_size();
    // At most the live state twice over, and a rewrite's worth of rounds.
    uint64_t live = 0;
    for (const auto& [group, state] : model) {
      std::string payload;
      EncodeGroup(group, state, state.snapshot.data, "", state.entries, &payload);
      live += payload.size() + kRaftRecordHeaderBytes;
    }
    EXPECT_LE(on_disk, 2 * live + 3 * options.rewrite_bytes) << "live " << live;
  }
  EXPECT_EQ(OpenOrDie(dir.path(), options)->groups(), model);
}

// A store that takes snapshot data from its driver keeps none itself, and
// its rewrites still write whole snapshots.
TEST(RaftLogStoreTest, SnapshotDataTakenFromTheDriverSurvivesRewrites) {
  TempDir dir;
  StoredGroups model;
  RandomRounds rounds(17);
  RaftLogOptions options = NoSync();
  options.rewrite_bytes = 4096;
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path(), options);
    store->TakeSnapshotDataFrom([&model](GroupId group) -> std::string_view {
      auto it = model.find(group);
      return it == model.end() ? std::string_view() : std::string_view(it->second.snapshot.data);
    });
    for (int i = 0; i < 1000; ++i) {
      rounds.Stage(store.get(), &model);
      ASSERT_TRUE(store->Commit().ok());
      for (const auto& [group, state] : store->groups()) {
        ASSERT_TRUE(state.snapshot.data.empty()) << "round " << i << " group " << group;
      }
    }
    EXPECT_GT(store->stats().rewrites, 5u);
  }
  EXPECT_EQ(OpenOrDie(dir.path(), options)->groups(), model);
}

// `rounds` rounds of one 200-byte entry each for group 1, committed.
void StageLargeEntries(RaftLogStore* store, int rounds, StoredGroups* model) {
  for (int i = 0; i < rounds; ++i) {
    Ready ready;
    ready.entries.push_back(
        Entry{1, static_cast<Index>(i + 1), std::string(200, 'x'), EntryType::kNormal});
    store->Stage(1, ready);
    ModelReady(ready, &(*model)[1]);
    ASSERT_TRUE(store->Commit().ok()) << i;
  }
}

// A store that takes its entries' data from its driver keeps only their
// indexes and terms, and its rewrites still write whole entries.
TEST(RaftLogStoreTest, EntryDataTakenFromTheDriverSurvivesRewrites) {
  TempDir dir;
  StoredGroups model;
  RandomRounds rounds(19);
  RaftLogOptions options = NoSync();
  options.rewrite_bytes = 4096;
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path(), options);
    store->TakeEntryDataFrom([&model](GroupId group) -> std::span<const Entry> {
      auto it = model.find(group);
      return it == model.end() ? std::span<const Entry>()
                               : std::span<const Entry>(it->second.entries);
    });
    size_t stored_entries = 0;
    for (int i = 0; i < 1000; ++i) {
      rounds.Stage(store.get(), &model);
      ASSERT_TRUE(store->Commit().ok());
      for (const auto& [group, state] : store->groups()) {
        ASSERT_EQ(state.entries.size(), model[group].entries.size()) << "round " << i;
        for (size_t e = 0; e < state.entries.size(); ++e) {
          ASSERT_TRUE(state.entries[e].data.empty()) << "round " << i << " group " << group;
          ASSERT_EQ(state.entries[e].term, model[group].entries[e].term);
        }
        stored_entries += state.entries.size();
      }
    }
    EXPECT_GT(stored_entries, 0u);
    EXPECT_GT(store->stats().rewrites, 5u);
    EXPECT_EQ(store->stats().rewrites_skipped, 0u);
  }
  EXPECT_EQ(OpenOrDie(dir.path(), options)->groups(), model);
}

// A driver whose log does not hold what the store has (another term at an
// index) gets no rewrite: the segments stay, and so does the state.
TEST(RaftLogStoreTest, AnEntrySourceThatDisagreesPostponesTheRewrite) {
  TempDir dir;
  RaftLogOptions options = NoSync();
  options.rewrite_bytes = 1024;
  StoredGroups model;
  std::vector<Entry> elsewhere;  // what the source holds: the same indexes, term 9
  for (Index i = 1; i <= 40; ++i) elsewhere.push_back(Entry{9, i, "other", EntryType::kNormal});
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path(), options);
    store->TakeEntryDataFrom([&elsewhere](GroupId) -> std::span<const Entry> { return elsewhere; });
    StageLargeEntries(store.get(), 40, &model);
    EXPECT_EQ(store->stats().rewrites, 0u);
    EXPECT_GT(store->stats().rewrites_skipped, 0u);
  }
  EXPECT_EQ(OpenOrDie(dir.path(), options)->groups(), model);
}

// A group whose state no longer fits one record is not rewritten (its
// record could not be read back): the old segments stay, and so does the
// state.
TEST(RaftLogStoreTest, AGroupTooLargeForARecordPostponesTheRewrite) {
  TempDir dir;
  RaftLogOptions options = NoSync();
  options.rewrite_bytes = 1024;
  options.max_record_bytes = 4096;
  StoredGroups model;
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path(), options);
    StageLargeEntries(store.get(), 40, &model);
    // Rewritten while it was small, not since.
    EXPECT_GT(store->stats().rewrites_skipped, 0u);
  }
  EXPECT_EQ(OpenOrDie(dir.path(), options)->groups(), model);
}

// A crash at any point of a rewrite (the new segment partly written, the
// old ones not yet deleted) loses nothing.
TEST(RaftLogStoreTest, ACrashDuringARewriteLosesNothing) {
  for (uint64_t budget = kRaftLogHeaderBytes + 1; budget < 6000; budget += 97) {
    TempDir dir;
    StoredGroups model;
    StoredGroups committed;
    RandomRounds rounds(static_cast<uint32_t>(budget));
    RaftLogOptions options = NoSync();
    options.rewrite_bytes = 2048;
    options.fail_after_bytes = budget;
    {
      std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path(), options);
      for (int i = 0; i < 200; ++i) {
        rounds.Stage(store.get(), &model);
        const Status status = store->Commit();
        if (!status.ok()) {
          // The round itself is durable if the failure came in the rewrite
          // after it, and otherwise lost; either is allowed, and nothing
          // else is.
          EXPECT_NE(status.message().find("injected"), std::string::npos);
          EXPECT_FALSE(store->Commit().ok());  // failures are final
          break;
        }
        committed = model;
      }
    }
    const StoredGroups recovered = OpenOrDie(dir.path())->groups();
    EXPECT_TRUE(recovered == committed || recovered == model) << "budget " << budget;
  }
}

// The snapshot files in `dir`, by name.
std::vector<std::string> SnapshotFiles(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename();
    if (ParseSnapshotFileName(name) || IsSnapshotTemporaryFileName(name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

uint64_t SegmentBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (ParseRaftSegmentFileName(entry.path().filename().string())) bytes += entry.file_size();
  }
  return bytes;
}

Snapshot Compaction(Index index, std::string data) {
  return Snapshot{index, 2, raft::ConfState{{1, 2, 3}, {}}, std::move(data)};
}

// A snapshot is a file of its own: the log holds a reference of a few
// bytes, rewrites never copy it, a newer one or the group's removal
// deletes it once durable, and a reopen reads it back.
TEST(RaftLogStoreTest, SnapshotsAreFilesTheLogRefersTo) {
  TempDir dir;
  RaftLogOptions options = NoSync();
  options.rewrite_bytes = 4096;
  StoredGroups model;
  const std::string large(1 << 20, 'S');
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path(), options);
    ASSERT_TRUE(store->snapshots_in_files());
    StageLargeEntries(store.get(), 10, &model);
    store->StageCompaction(1, Compaction(5, large));
    ModelCompaction(Compaction(5, large), &model[1]);
    ASSERT_TRUE(store->Commit().ok());
    EXPECT_EQ(store->groups(), model) << "a store with no source keeps the data";
    ASSERT_EQ(SnapshotFiles(dir.path()).size(), 1u);
    EXPECT_LT(SegmentBytes(dir.path()), 16u << 10) << "the log holds no snapshot";
    // Rewrites (every 4 KiB) keep referring to the file, never copying it.
    const uint64_t written = store->stats().bytes;
    for (int i = 0; i < 40; ++i) {
      Ready ready;
      ready.entries.push_back(
          Entry{1, 11 + static_cast<Index>(i), std::string(500, 'e'), EntryType::kNormal});
      store->Stage(1, ready);
      ModelReady(ready, &model[1]);
      ASSERT_TRUE(store->Commit().ok());
    }
    EXPECT_GT(store->stats().rewrites, 2u);
    EXPECT_LT(store->stats().bytes - written, uint64_t{1} << 20);
    EXPECT_EQ(store->stats().snapshot_files, 1u);
    EXPECT_EQ(store->stats().snapshot_files_written, 1u);
  }
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path(), options);
    EXPECT_EQ(store->groups(), model);
    // A newer snapshot replaces the file; the old one goes once durable.
    const std::string first = SnapshotFiles(dir.path()).front();
    store->StageCompaction(1, Compaction(30, "newer"));
    ModelCompaction(Compaction(30, "newer"), &model[1]);
    ASSERT_TRUE(store->Commit().ok());
    ASSERT_EQ(SnapshotFiles(dir.path()).size(), 1u);
    EXPECT_NE(SnapshotFiles(dir.path()).front(), first);
    // A leader's snapshot is a file too.
    Ready from_leader;
    from_leader.snapshot = Compaction(80, "from the leader");
    store->Stage(2, from_leader);
    ModelReady(from_leader, &model[2]);
    ASSERT_TRUE(store->Commit().ok());
    EXPECT_EQ(SnapshotFiles(dir.path()).size(), 2u);
    EXPECT_EQ(store->groups(), model);
  }
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path(), options);
    EXPECT_EQ(store->groups(), model);
    store->StageRemoval(2);
    model.erase(2);
    ASSERT_TRUE(store->Commit().ok());
    EXPECT_EQ(SnapshotFiles(dir.path()).size(), 1u) << "the removed group's file is gone";
  }
  EXPECT_EQ(OpenOrDie(dir.path(), options)->groups(), model);
}

// The driver writes a file itself (off its thread) and stages a
// compaction naming it, or discards it; a file no durable round refers to
// (a crash came between its write and the round's) and a temporary file
// are deleted at the next open, and numbers are not given twice.
TEST(RaftLogStoreTest, FilesNothingRefersToAreDeletedAtOpen) {
  TempDir dir;
  StoredGroups model;
  std::string kept;
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path());
    StageLargeEntries(store.get(), 10, &model);
    kept = store->NewSnapshotFileName();
    ASSERT_TRUE(WriteSnapshotFile(store->dir(), kept, 1, 4, "by the driver", false).ok());
    store->StageCompaction(1, Compaction(4, "by the driver"), kept);
    ModelCompaction(Compaction(4, "by the driver"), &model[1]);
    ASSERT_TRUE(store->Commit().ok());
    const std::string dropped = store->NewSnapshotFileName();
    ASSERT_TRUE(WriteSnapshotFile(store->dir(), dropped, 1, 6, "dropped", false).ok());
    store->DiscardSnapshotFile(dropped);
    // Written, then the process died before its round was.
    ASSERT_TRUE(
        WriteSnapshotFile(store->dir(), store->NewSnapshotFileName(), 1, 8, "orphan", false).ok());
    storage_testing::WriteFileBytes(
        dir.File(SnapshotFileName(40) + std::string(storage::kReplacingSuffix)), "cut short");
  }
  EXPECT_EQ(SnapshotFiles(dir.path()).size(), 3u);
  std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path());
  EXPECT_EQ(SnapshotFiles(dir.path()), std::vector<std::string>{kept});
  EXPECT_EQ(store->groups(), model);
  EXPECT_GT(ParseSnapshotFileName(store->NewSnapshotFileName()).value(),
            ParseSnapshotFileName(kept).value());
}

// A snapshot file damaged or gone: the open fails, naming it (the group's
// state is not there to start from).
TEST(RaftLogStoreTest, ADamagedOrMissingSnapshotFileIsAnError) {
  TempDir dir;
  {
    std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path());
    StoredGroups model;
    StageLargeEntries(store.get(), 10, &model);
    store->StageCompaction(1, Compaction(5, std::string(5000, 'd')));
    ASSERT_TRUE(store->Commit().ok());
  }
  const std::string file = dir.File(SnapshotFiles(dir.path()).front());
  const std::string original = storage_testing::ReadFileBytes(file);
  storage_testing::FlipByte(file, kSnapshotFileHeaderBytes + 100);
  Result<std::unique_ptr<RaftLogStore>> store = RaftLogStore::Open(dir.path(), NoSync());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(file), std::string::npos) << store.status().message();
  fs::remove(file);
  store = RaftLogStore::Open(dir.path(), NoSync());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(file), std::string::npos) << store.status().message();
  storage_testing::WriteFileBytes(file, original);
  EXPECT_TRUE(RaftLogStore::Open(dir.path(), NoSync()).ok());
}

TEST(RaftLogStoreTest, AnInconsistentRoundIsRefusedAndNotWritten) {
  TempDir dir;
  std::unique_ptr<RaftLogStore> store = OpenOrDie(dir.path());
  Ready ready;
  ready.entries.push_back(Entry{1, 5, "gap", EntryType::kNormal});  // nothing before index 5
  store->Stage(1, ready);
  const Status status = store->Commit();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("entries from index 5"), std::string::npos) << status.message();
  EXPECT_FALSE(store->health().ok());
  store.reset();
  EXPECT_TRUE(OpenOrDie(dir.path())->groups().empty());
}

}  // namespace
}  // namespace strata::replication
