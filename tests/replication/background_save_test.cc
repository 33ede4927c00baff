// Snapshots made off the driver's thread (RaftHostOptions::
// save_in_background): the host goes on applying while one is made and
// compacts at the index it was taken at; a replica's copy made on another
// thread while it applies is its state when asked for. Run under TSan too
// (label concurrency).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "command_history.h"
#include "replication/raft_host.h"
#include "replication/snapshot_file.h"
#include "service/kv_replica.h"
#include "storage_test_support.h"
#include "support/table_kv_write_codec.h"

namespace strata::replication {
namespace {

using raft::GroupId;
using raft::NodeBatch;
using raft::RaftRole;
using service::KvReplica;
using service::PutRequest;
using service::RangeRequest;

using service::TableCodec;

// A CommandHistory whose background saves wait until the test lets them
// go.
class SlowToSave final : public CommandHistory {
 public:
  std::function<std::string()> SaveLater() override {
    return [saved = Save(), gate = gate] {
      gate.wait();
      return saved;
    };
  }
  void SaveFinished() override { ++finished; }
  std::shared_future<void> gate;
  int finished = 0;
};

// A node's host that saves a snapshot every 10 entries, in the background.
RaftHostOptions SavingEveryTenInTheBackground() {
  RaftHostOptions options;
  options.raft.election_ticks = 10;
  options.log.sync = false;
  options.compact_after = 10;
  options.save_in_background = true;
  return options;
}

// Creates group 1 on `host`, of its node alone, and ticks until it leads.
void CreateAndLead(RaftHost& host) {
  ASSERT_TRUE(host.CreateGroup(1, {1}).ok());
  for (int i = 0; i < 30 && host.raft().group(1)->role() != RaftRole::kLeader; ++i) {
    host.Tick();
    ASSERT_TRUE(host.Run().ok());
  }
  ASSERT_EQ(host.raft().group(1)->role(), RaftRole::kLeader);
}

// With save_in_background, a snapshot is made off the driver's thread: the
// group goes on applying meanwhile, and once the bytes are made its log is
// compacted at the index they were taken at (the entries after it kept);
// the host opened again comes back from that snapshot (a file written
// by the saver's thread) and those entries.
TEST(RaftHostTest, SnapshotsSavedInTheBackgroundCompactAtTheirIndex) {
  storage_testing::TempDir dir;
  std::promise<void> open;
  std::shared_future<void> gate = open.get_future().share();
  SlowToSave* state = nullptr;
  const RaftHostOptions options = SavingEveryTenInTheBackground();
  const auto factory = [&](GroupId) {
    auto made = std::make_unique<SlowToSave>();
    made->gate = gate;
    state = made.get();
    return made;
  };
  auto host = RaftHost::Open(1, dir.path(), options, factory, [](NodeBatch) {});
  ASSERT_TRUE(host.ok()) << host.status().message();
  ASSERT_NO_FATAL_FAILURE(CreateAndLead(**host));
  int answered = 0;
  const auto propose = [&](int n) {
    for (int i = 0; i < n; ++i) {
      (*host)->Propose(1, "c" + std::to_string(answered + i),
                       [&](Result<std::string> r) { answered += r.ok() ? 1 : 0; });
      ASSERT_TRUE((*host)->Run().ok());
    }
  };
  propose(12);  // past compact_after: a save starts, and waits at the gate
  ASSERT_EQ((*host)->stats().saves_in_background, 1u);
  const raft::Index saved_at = (*host)->raft().group(1)->snapshot().index;
  propose(20);  // applied while the save waits
  EXPECT_EQ(answered, 32);
  EXPECT_EQ((*host)->stats().compactions, 0u);
  EXPECT_EQ((*host)->stats().saves_in_background, 1u) << "one save at a time";
  open.set_value();
  for (int i = 0; i < 200 && (*host)->stats().compactions == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE((*host)->Run().ok());
  }
  ASSERT_EQ((*host)->stats().compactions, 1u);
  EXPECT_EQ(state->finished, 1);
  // Its file was written on the saver's thread too; the log refers to it.
  EXPECT_EQ((*host)->stats().log.snapshot_files_written, 1u);
  EXPECT_EQ((*host)->stats().log.snapshot_files, 1u);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    files += ParseSnapshotFileName(entry.path().filename().string()).has_value() ? 1 : 0;
  }
  EXPECT_EQ(files, 1);
  EXPECT_TRUE((*host)->raft().group(1)->snapshot().data.empty()) << "in its file alone";
  const raft::Index compacted_at = (*host)->raft().group(1)->snapshot().index;
  EXPECT_GT(compacted_at, saved_at);
  EXPECT_LT(compacted_at, (*host)->applied(1)) << "the entries applied during the save stay";
  const std::vector<std::string> commands = state->commands;
  host->reset();
  auto again = RaftHost::Open(1, dir.path(), options, factory, [](NodeBatch) {});
  ASSERT_TRUE(again.ok()) << again.status().message();
  // Its own disk has the commands its log says were committed; the last
  // commit index (a hint, not synced alone) comes again once it leads.
  for (int i = 0; i < 30 && state->commands.size() < commands.size(); ++i) {
    (*again)->Tick();
    ASSERT_TRUE((*again)->Run().ok());
  }
  EXPECT_EQ(state->commands, commands);
}

// A snapshot whose file cannot be written (its directory gone from under
// the saver) is not taken: counted, the log keeps its entries and the
// host goes on; the next save, once the file can be written, compacts.
TEST(RaftHostTest, ASnapshotWhoseFileCannotBeWrittenIsNotTaken) {
  storage_testing::TempDir dir;
  const std::string raft_dir = dir.File("raft");
  auto host = RaftHost::Open(
      1, raft_dir, SavingEveryTenInTheBackground(),
      [](GroupId) { return std::make_unique<CommandHistory>(); }, [](NodeBatch) {});
  ASSERT_TRUE(host.ok()) << host.status().message();
  ASSERT_NO_FATAL_FAILURE(CreateAndLead(**host));
  int answered = 0;
  const auto propose_until = [&](auto done) {
    for (int i = 0; i < 400 && !done(); ++i) {
      (*host)->Propose(1, "c" + std::to_string(i),
                       [&](Result<std::string> r) { answered += r.ok() ? 1 : 0; });
      ASSERT_TRUE((*host)->Run().ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
  // The log's open segment keeps being written through its descriptor; a
  // new file in the directory cannot be made.
  std::filesystem::rename(raft_dir, dir.File("moved"));
  propose_until([&] { return (*host)->stats().snapshots_unwritten > 0; });
  EXPECT_GT((*host)->stats().snapshots_unwritten, 0u);
  EXPECT_EQ((*host)->stats().compactions, 0u);
  EXPECT_EQ((*host)->raft().group(1)->snapshot().index, 0u) << "the log keeps its entries";
  EXPECT_TRUE((*host)->health().ok());
  std::filesystem::rename(dir.File("moved"), raft_dir);
  const int before = answered;
  propose_until([&] { return (*host)->stats().compactions > 0; });
  EXPECT_EQ((*host)->stats().compactions, 1u);
  EXPECT_GT(answered, before) << "proposals went on being applied";
  EXPECT_TRUE((*host)->health().ok());
}

// SaveLater: the bytes, made on another thread while the replica applies
// writes, a revocation and a compaction, are the state when it was called;
// the sweep of that compaction waits for SaveFinished (reads below it are
// refused at once all the same).
TEST(KvReplicaTest, ASaveMadeLaterIsTheStateWhenItWasAskedFor) {
  KvReplica one(&TableCodec());
  for (int i = 0; i < 30; ++i) {
    one.Apply(KvReplica::WriteCommand(TableCodec(), PutRequest{"k" + std::to_string(i % 4), "v"}));
  }
  ASSERT_TRUE(KvReplica::DecodeCompactReply(one.Apply(KvReplica::CompactCommand(10))).ok());
  ASSERT_TRUE(KvReplica::DecodeGrantReply(one.Apply(KvReplica::GrantCommand(3, 60))).ok());
  const int64_t asked_at = one.revision();
  const uint32_t hash_then = one.kv().HashKV(0).value();
  std::function<std::string()> save = one.SaveLater();
  std::string saved;
  std::thread saver([&] { saved = save(); });
  for (int i = 0; i < 30; ++i) {
    one.Apply(KvReplica::WriteCommand(TableCodec(), PutRequest{"k" + std::to_string(i % 4), "w"}));
  }
  one.Apply(KvReplica::RevokeCommand(3));
  ASSERT_TRUE(KvReplica::DecodeCompactReply(one.Apply(KvReplica::CompactCommand(50))).ok());
  EXPECT_EQ(one.store().compaction_horizon().value(), 10u) << "the sweep waits for the save";
  RangeRequest below;
  below.span.key = "k1";
  below.revision = 40;
  EXPECT_FALSE(one.kv().Range(below).ok()) << "reads below the compaction are refused at once";

  saver.join();
  KvReplica two(&TableCodec());
  ASSERT_TRUE(two.Restore(saved).ok());
  one.SaveFinished();
  EXPECT_EQ(one.store().compaction_horizon().value(), 50u) << "the sweep once the save is done";
  EXPECT_EQ(two.revision(), asked_at);
  EXPECT_EQ(two.kv().compact_revision(), 10);
  EXPECT_EQ(two.kv().HashKV(0).value(), hash_then);
  EXPECT_EQ(two.leases().GrantedTtl(3), std::optional<int64_t>(60));
}

}  // namespace
}  // namespace strata::replication
