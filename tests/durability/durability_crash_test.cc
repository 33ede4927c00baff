// Durability of strata-node --data-dir, through the real binary.
//
// The crash tests SIGKILL the node at random moments under a pipelined
// mixed workload and check the recovered state against everything the
// client was told (see crash_driver.h and crash_model.h). SIGKILL loses
// nothing the node handed to the OS, so every --sync mode must pass.
//
// Long runs: STRATA_CRASH_KILLS=N sets the kills per test case (default
// 20), STRATA_CRASH_SEED=S replays a run (each failure names its seed),
// STRATA_CRASH_KEEP_DIR=1 keeps the data directory of a failed run.
//
//   STRATA_CRASH_KILLS=1000 build/release/tests/durability/durability_crash_test
//       --gtest_filter='CrashTest.*'      (one command line)
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crash_driver.h"
#include "node_connection.h"
#include "node_session.h"
#include "txn_client.h"

namespace strata::testing {
namespace {

std::optional<uint64_t> EnvNumber(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  return std::strtoull(text, nullptr, 10);
}

// A fresh directory under /tmp for one test, removed afterwards (kept after
// a failure if STRATA_CRASH_KEEP_DIR is set, for a post-mortem).
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/strata-durability-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
    EXPECT_FALSE(path_.empty()) << "mkdtemp failed";
  }
  ~TempDir() {
    if (path_.empty()) return;
    if (::testing::Test::HasFailure() && EnvNumber("STRATA_CRASH_KEEP_DIR").value_or(0) != 0) {
      std::cerr << "kept data directory " << path_ << "\n";
      return;
    }
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---------------------------------------------------------------------------
// Crash tests: one per --sync mode, 20 kills each (10 in a sanitizer build,
// where an incarnation that must write past a checkpoint takes seven times
// as long; the Release stage of make test runs the full 20).

#ifndef STRATA_CRASH_DEFAULT_KILLS
#define STRATA_CRASH_DEFAULT_KILLS 20
#endif

int KillsPerTest() {
  return static_cast<int>(EnvNumber("STRATA_CRASH_KILLS").value_or(STRATA_CRASH_DEFAULT_KILLS));
}

class CrashTest : public ::testing::Test {
 protected:
  void RunCrashes(const std::string& sync, int checkpoint_log_mb) {
    CrashRunOptions options;
    options.sync = sync;
    options.checkpoint_log_mb = checkpoint_log_mb;
    // With automatic checkpoints, long values make each incarnation's log
    // pass the 1 MiB threshold.
    if (checkpoint_log_mb > 0) options.max_value_bytes = 100000;
    options.kills = KillsPerTest();
    options.seed = EnvNumber("STRATA_CRASH_SEED").value_or(std::random_device()());
    std::cout << "--sync " << sync << " --checkpoint-log-mb " << checkpoint_log_mb << ": seed "
              << options.seed << " (replay with STRATA_CRASH_SEED=" << options.seed << "), "
              << options.kills << " kills" << std::endl;

    CrashDriver driver(options, dir_.path());
    driver.Run();
    const CrashRunSummary& s = driver.summary();
    std::cout << "  " << s.kills << " kills (+" << s.kills_during_recovery
              << " during recovery) in " << s.elapsed.count() << " ms; " << s.requests
              << " requests, " << s.acked_writes << " acknowledged writes, " << s.commits
              << " commits, " << s.conflicts << " conflicts, " << s.compactions << " compactions, "
              << s.checkpoints << " checkpoints seen (" << s.kills_after_checkpoint
              << " kills after one; up to " << s.max_wal_bytes << " log bytes per incarnation); "
              << s.reads_of_unanswered
              << " reads answered ahead of a write they saw; unanswered at a kill: "
              << s.unacked_raw_kept << " raw writes kept, " << s.unacked_raw_dropped << " dropped, "
              << s.unacked_commits_kept << " commits kept, " << s.unacked_commits_dropped
              << " dropped" << std::endl;
    if (!HasFailure()) {
      EXPECT_EQ(s.kills, options.kills);
    }
  }

  TempDir dir_;
};

// fsync per group as soon as a record waits; no automatic checkpoints, so
// every recovery replays the whole log, one segment per incarnation. (Long
// runs checkpoint as the other modes do, or the log would grow without
// bound.)
TEST_F(CrashTest, SyncAlways) { RunCrashes("always", KillsPerTest() > 50 ? 1 : 0); }

// The default group commit, with a checkpoint every MiB of log: kills land
// during checkpoints and right after them.
TEST_F(CrashTest, SyncBatchWithCheckpoints) { RunCrashes("batch", 1); }

// No fsync at all: SIGKILL still loses nothing handed to the OS.
TEST_F(CrashTest, SyncNoneWithCheckpoints) { RunCrashes("none", 1); }

// ---------------------------------------------------------------------------
// Clean shutdown and the directory lock.

std::vector<std::string> DataDirArgs(const std::string& dir) { return {"--data-dir", dir}; }

// Everything a restart must reproduce: every key's history and the stats
// that describe the stored data.
std::string Snapshot(NodeSession& node, const std::vector<std::string>& keys) {
  std::string text;
  for (const std::string& key : keys) {
    JsonValue reply =
        node.CallOk(R"({"type":"mvcc_history","key":)" + key + "}", "mvcc_history_ok");
    text += key + ": " + reply["versions"].Canonical() + "\n";
  }
  JsonValue stats = node.Stats();
  for (const char* field :
       {"keys", "versions", "tombstones", "bytes", "max_timestamp", "compaction_horizon"}) {
    text += std::string(field) + ": " + stats[field].Canonical() + "\n";
  }
  return text;
}

TEST(DurabilityTest, CleanExitThenRestartSeesEverything) {
  TempDir dir;
  const std::vector<std::string> keys = {R"("a")", R"("b")", "7", R"("long")"};
  std::string before;
  int64_t last_commit = 0;
  {
    NodeSession node(DataDirArgs(dir.path()));
    node.Init();
    node.Put(R"("a")", R"("a1")", 10);
    node.Put(R"("a")", R"({"n":[1,2,3]})", 20);
    node.Put("7", "7", 15);
    node.Delete("7", 25);
    node.Put(R"("long")", QuoteJson(std::string(5000, 'z')), 30);
    Txn txn = Txn::Begin(node, R"("isolation":"snapshot")");
    txn.Put(R"("a")", R"("from txn")");
    txn.Put(R"("b")", "true");
    last_commit = txn.Commit();
    node.CallOk(R"({"type":"mvcc_compact","timestamp":12})", "mvcc_compact_ok");
    before = Snapshot(node, keys);
    node.ExpectCleanExit();
  }
  for (int restart = 1; restart <= 2; ++restart) {
    SCOPED_TRACE("restart " + std::to_string(restart));
    NodeSession node(DataDirArgs(dir.path()));
    node.Init();
    EXPECT_EQ(Snapshot(node, keys), before);
    // The horizon survived: reads below it are refused.
    node.ExpectError(R"({"type":"mvcc_get","key":"a","read_timestamp":11})", 1000);
    // The oracle survived: no timestamp is handed out twice.
    Txn txn = Txn::Begin(node);
    EXPECT_GT(txn.start(), last_commit);
    txn.Abort();
    if (restart == 2) {
      // Version numbers continue where they were ("a" had 3 writes).
      JsonValue put = node.Put(R"("a")", R"("after restarts")", last_commit + (1 << 22));
      EXPECT_EQ(put["version"].Int(), 4) << put.Canonical();
    }
    node.ExpectCleanExit();
  }
}

TEST(DurabilityTest, SecondNodeOnSameDirectoryIsRefused) {
  TempDir dir;
  NodeSession first(DataDirArgs(dir.path()));
  first.Init();
  first.Put(R"("k")", "1", 5);

  NodeProcess second(StrataNodeBinary(), DataDirArgs(dir.path()));
  ASSERT_TRUE(second.ok());
  const std::optional<int> status = second.WaitForExit(NodeConnection::kTimeout);
  ASSERT_TRUE(status) << "a second node on a directory in use did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1)
      << "wait status " << *status << "; stderr:\n"
      << second.stderr_text();
  EXPECT_NE(second.stderr_text().find("in use"), std::string::npos)
      << "stderr should say the directory is in use:\n"
      << second.stderr_text();
  EXPECT_EQ(second.unread_stdout(), "");

  // The first node is unharmed, and once it is gone the directory opens.
  first.Put(R"("k")", "2", 6);
  first.ExpectCleanExit();
  NodeSession third(DataDirArgs(dir.path()));
  third.Init();
  JsonValue read = third.CallOk(R"({"type":"mvcc_get","key":"k"})", "mvcc_get_ok");
  EXPECT_TRUE(SameJson(read["value"], "2")) << read.Canonical();
  third.ExpectCleanExit();
}

// Flips one byte of the first file in `dir` that contains `marker` (a
// value written earlier) and returns that file's name ("" if none has it).
std::string CorruptFileHolding(const std::string& dir, const std::string& marker) {
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = bytes.find(marker);
    if (at == std::string::npos) continue;
    std::fstream out(entry.path(), std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(static_cast<std::streamoff>(at + marker.size() / 2));
    out.put('#');
    return entry.path().filename().string();
  }
  return "";
}

// A damaged data directory (a flipped byte in a log record that valid
// records follow, or in a checkpoint) is refused: exit status 1 and a
// stderr line naming the file and the offset. Recovering around it would
// silently lose acknowledged writes.
TEST(DurabilityTest, DamagedDataDirIsRefused) {
  for (const bool checkpoint : {false, true}) {
    SCOPED_TRACE(checkpoint ? "damaged checkpoint" : "damaged log record");
    TempDir dir;
    std::vector<std::string> args = DataDirArgs(dir.path());
    args.insert(args.end(), {"--checkpoint-log-mb", checkpoint ? "1" : "0"});
    const std::string marker = "damage-me-here-0123456789";
    {
      NodeSession node(args);
      node.Init();
      for (int i = 1; i <= 50; ++i) {
        std::string value = i == 10 ? marker : "value-" + std::to_string(i);
        // With checkpoints: 1.5 MiB, so that one is written.
        if (checkpoint) value += std::string(30000, 'p');
        node.Put(R"("k)" + std::to_string(i % 7) + R"(")", QuoteJson(value), i);
      }
      if (checkpoint) {
        // The checkpointer looks every ~100 ms; wait until it wrote one.
        for (int tries = 0; tries < 100 && node.Stats()["checkpoints"].Int().value_or(0) == 0;
             ++tries) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ASSERT_GE(node.Stats()["checkpoints"].Int().value_or(0), 1) << "no checkpoint written";
      }
      node.ExpectCleanExit();
    }
    const std::string damaged = CorruptFileHolding(dir.path(), marker);
    ASSERT_NE(damaged, "") << "no file in " << dir.path() << " holds the value written";
    if (checkpoint) {
      EXPECT_NE(damaged.find("checkpoint"), std::string::npos) << damaged;
    }

    NodeProcess node(StrataNodeBinary(), args);
    ASSERT_TRUE(node.ok());
    const std::optional<int> status = node.WaitForExit(NodeConnection::kTimeout);
    ASSERT_TRUE(status) << "the node did not exit on a damaged " << damaged;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1)
        << "a damaged " << damaged << " must make the node exit with status 1; wait status "
        << *status << "; stderr:\n"
        << node.stderr_text();
    EXPECT_NE(node.stderr_text().find(damaged), std::string::npos)
        << "stderr should name the damaged file " << damaged << ":\n"
        << node.stderr_text();
    EXPECT_NE(node.stderr_text().find("offset"), std::string::npos)
        << "stderr should name the offset of the damage:\n"
        << node.stderr_text();
  }
}

// Transactions open at a crash are gone: requests naming them get error 14,
// also once new transactions exist (their ids must not be handed out again,
// or a client retrying an old txn_commit would commit someone else's
// transaction).
TEST(DurabilityTest, TxnIdsAreNotReusedAfterRestart) {
  TempDir dir;
  std::vector<int64_t> old_ids;
  {
    NodeSession node(DataDirArgs(dir.path()));
    node.Init();
    for (int i = 0; i < 3; ++i) {
      Txn txn = Txn::Begin(node);
      txn.Put(R"("k")", std::to_string(i));
      old_ids.push_back(txn.id());
    }
    std::optional<int> status = node.process().Kill(SIGKILL, NodeConnection::kTimeout);
    ASSERT_TRUE(status && WIFSIGNALED(*status));
  }
  NodeSession node(DataDirArgs(dir.path()));
  node.Init();
  for (int i = 0; i < 3; ++i) {
    Txn fresh = Txn::Begin(node);
    for (int64_t old_id : old_ids) {
      EXPECT_NE(fresh.id(), old_id) << "txn_id " << old_id
                                    << " was open when the node was killed and is handed out "
                                       "again after the restart";
    }
  }
  // A client that lost the reply to its commit retries it after the restart.
  for (int64_t old_id : old_ids) {
    JsonValue reply = node.Call(R"({"type":"txn_commit","txn_id":)" + std::to_string(old_id) + "}");
    EXPECT_EQ(reply["code"].Int(), 14)
        << "txn_commit of transaction " << old_id
        << ", open when the node was killed, must be error 14 after the restart; got "
        << reply.Canonical();
  }
  node.ExpectCleanExit();
}

}  // namespace
}  // namespace strata::testing
