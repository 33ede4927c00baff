// Faults while the node writes a checkpoint (checkpoint-<LSN>.ckpt.tmp,
// fsynced, then renamed to checkpoint-<LSN>.ckpt) and while it opens its
// data directory at startup.
//
// A checkpoint is an optimization: its failure must not fail any client
// request nor lose data. The node logs it, keeps the log segments the
// checkpoint would have replaced, and a restart recovers everything.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "fault_node.h"

namespace strata::testing {
namespace {

// With --checkpoint-log-mb 1, this many 4 KB puts (about 2.4 MiB of log)
// start at least one checkpoint.
constexpr size_t kPutsPerRound = 600;
constexpr size_t kValueBytes = 4000;

bool IsCheckpoint(const std::string& name) {
  return name.starts_with("checkpoint-") && name.ends_with(".ckpt");
}

bool IsSegment(const std::string& name) {
  return name.starts_with("wal-") && name.ends_with(".log");
}

// Polls mvcc_stats until `checkpoints` reaches `at_least` or 30 s pass.
int64_t WaitForCheckpoints(FaultNode& node, int64_t at_least) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    int64_t done = node.Stats()["checkpoints"].Int().value_or(-1);
    if (done >= at_least || std::chrono::steady_clock::now() >= deadline) return done;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// The control experiment: without a fault, the workload the fault tests use
// does write a checkpoint (else they would test nothing), and recovery from
// checkpoint plus log is complete.
TEST(CheckpointTest, WorkloadWritesACheckpointAndRecoveryUsesIt) {
  TempDir dir;
  std::vector<WriteRecord> writes = MakeWrites("c", kPutsPerRound, kValueBytes, 1);
  {
    FaultNode node(dir.path(), {"--checkpoint-log-mb", "1"}, ShimConfig{});
    node.Init();
    node.PutAll(&writes, 32);
    ASSERT_EQ(CountOutcome(writes, Outcome::kAcked), writes.size()) << node.StderrTail();
    EXPECT_GE(WaitForCheckpoints(node, 1), 1)
        << "2.4 MiB of log with --checkpoint-log-mb 1 wrote no checkpoint:\n"
        << node.StderrTail();
    std::vector<std::string> files = dir.List();
    EXPECT_TRUE(std::any_of(files.begin(), files.end(), IsCheckpoint))
        << "no checkpoint-*.ckpt in the data directory";
    std::optional<int> status = node.Close();
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << node.StderrTail();
  }
  FaultNode node(dir.path(), {"--checkpoint-log-mb", "1"});
  node.Init();
  ExpectRecovered(node, writes);
  EXPECT_EQ(node.Stats()["keys"].Int(), static_cast<int64_t>(writes.size()));
  node.Close();
}

struct CheckpointFault {
  std::string op;
  std::string error;
};

std::string CheckpointName(const ::testing::TestParamInfo<CheckpointFault>& info) {
  std::string name = info.param.op + "_" + info.param.error;
  std::replace(name.begin(), name.end(), ',', '_');
  return name;
}

void PrintTo(const CheckpointFault& fault, std::ostream* out) {
  *out << fault.op << " " << fault.error;
}

class CheckpointFaultTest : public ::testing::TestWithParam<CheckpointFault> {};

TEST_P(CheckpointFaultTest, FailedCheckpointFailsNoRequestAndLosesNothing) {
  const CheckpointFault& fault = GetParam();
  TempDir dir;
  // Forever: every checkpoint attempt fails, and the node must cope.
  ShimConfig shim = ShimConfig("checkpoint", fault.op, fault.error);
  std::vector<WriteRecord> first = MakeWrites("p", kPutsPerRound, kValueBytes, 1);
  std::vector<WriteRecord> second = MakeWrites("q", kPutsPerRound, kValueBytes, 100000);
  {
    FaultNode node(dir.path(), {"--checkpoint-log-mb", "1"}, shim);
    node.Init();
    node.PutAll(&first, 32);
    EXPECT_EQ(CountOutcome(first, Outcome::kAcked), first.size())
        << "a failing checkpoint failed client writes:\n"
        << node.StderrTail();
    ASSERT_TRUE(node.WaitForStderr(kShimInjected, std::chrono::seconds(30)))
        << "no checkpoint " << fault.op << " was attempted (no injection):\n"
        << node.StderrTail();

    // Writes go on (and may start further checkpoints, which fail too).
    node.PutAll(&second, 32);
    EXPECT_EQ(CountOutcome(second, Outcome::kAcked), second.size()) << node.StderrTail();
    JsonValue stats = node.Stats();
    EXPECT_TRUE(stats["wal_failure"].IsNull())
        << "a failed checkpoint is not a log failure: " << stats.Canonical();
    JsonValue read = node.Call(R"({"type":"mvcc_get","key":"p0"})");
    EXPECT_EQ(read["type"].String(), "mvcc_get_ok") << read.Canonical();

    // The node says what went wrong, in a line of its own beside the shim's.
    const std::string& err = node.process().stderr_text();
    bool logged = false;
    size_t start = 0;
    while (start < err.size()) {
      size_t end = err.find('\n', start);
      if (end == std::string::npos) end = err.size();
      std::string line = err.substr(start, end - start);
      if (line.find(kShimInjected) == std::string::npos &&
          Lower(line).find("checkpoint") != std::string::npos) {
        logged = true;
      }
      start = end + 1;
    }
    EXPECT_TRUE(logged) << "the failed checkpoint was not logged to stderr:\n" << err;

    // A checkpoint whose write, sync or rename failed must never become the
    // directory's checkpoint; the segments it would replace stay.
    std::vector<std::string> files = dir.List();
    EXPECT_FALSE(std::any_of(files.begin(), files.end(), IsCheckpoint))
        << "a checkpoint-*.ckpt appeared although writing it failed";
    EXPECT_TRUE(std::any_of(files.begin(), files.end(), IsSegment));

    std::optional<int> status = node.Close();
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "a failed checkpoint made the node exit abnormally:\n"
        << node.StderrTail();
  }
  // Recovery from the log alone (and whatever .tmp is left over) is complete.
  FaultNode node(dir.path(), {"--checkpoint-log-mb", "1"});
  node.Init();
  std::vector<WriteRecord> all = first;
  all.insert(all.end(), second.begin(), second.end());
  ExpectRecovered(node, all);
  EXPECT_EQ(node.Stats()["keys"].Int(), static_cast<int64_t>(all.size()));
  // And it can checkpoint now that the fault is gone.
  std::vector<WriteRecord> third = MakeWrites("r", kPutsPerRound, kValueBytes, 200000);
  node.PutAll(&third, 32);
  EXPECT_EQ(CountOutcome(third, Outcome::kAcked), third.size()) << node.StderrTail();
  EXPECT_GE(WaitForCheckpoints(node, 1), 1) << node.StderrTail();
  node.Close();
}

INSTANTIATE_TEST_SUITE_P(Checkpoint, CheckpointFaultTest,
                         ::testing::Values(CheckpointFault{"fsync,fdatasync", "EIO"},
                                           CheckpointFault{"pwrite,write", "ENOSPC"},
                                           CheckpointFault{"rename", "EIO"},
                                           CheckpointFault{"open", "EROFS"}),
                         CheckpointName);

// The directory fsync that makes a new log segment's name durable fails
// once, when a checkpoint rolls the log: that checkpoint fails, the log goes
// on in the old segment, a later checkpoint succeeds (and deletes the old
// segment), and more records follow it. The file the failed roll left
// behind (a new segment that never got a record) must not stop the next
// recovery.
TEST(CheckpointFaultTest, DirectorySyncFailsWhileRollingTheLog) {
  TempDir dir;
  const std::string armed = dir.ArmFile();
  // Matching the directory's own path: segments are synced with fdatasync,
  // so "fsync" here is the fsync of the directory.
  ShimConfig shim = ShimConfig(dir.path(), "fsync", "EIO").Count(1).ArmedIf(armed);
  std::vector<WriteRecord> first = MakeWrites("p", kPutsPerRound, kValueBytes, 1);
  std::vector<WriteRecord> second = MakeWrites("q", kPutsPerRound, kValueBytes, 100000);
  std::vector<WriteRecord> third = MakeWrites("r", 20, 100, 200000);
  {
    FaultNode node(dir.path(), {"--checkpoint-log-mb", "1"}, shim);
    node.Init();
    std::ofstream(armed).put('1');
    node.PutAll(&first, 32);
    EXPECT_EQ(CountOutcome(first, Outcome::kAcked), first.size()) << node.StderrTail();
    ASSERT_TRUE(node.WaitForStderr(kShimInjected, std::chrono::seconds(30)))
        << "no directory fsync happened while 2.4 MiB of log were written:\n"
        << node.StderrTail();
    // The fault is spent: the next checkpoint succeeds.
    node.PutAll(&second, 32);
    EXPECT_EQ(CountOutcome(second, Outcome::kAcked), second.size()) << node.StderrTail();
    EXPECT_GE(WaitForCheckpoints(node, 1), 1) << node.StderrTail();
    // Records after that checkpoint, so that recovery has a log to replay.
    node.PutAll(&third, 8);
    EXPECT_EQ(CountOutcome(third, Outcome::kAcked), third.size()) << node.StderrTail();
    EXPECT_TRUE(node.Stats()["wal_failure"].IsNull());
    std::optional<int> status = node.Close();
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << node.StderrTail();
  }
  std::vector<WriteRecord> all = first;
  all.insert(all.end(), second.begin(), second.end());
  all.insert(all.end(), third.begin(), third.end());
  for (int restart = 0; restart < 2; ++restart) {
    FaultNode node(dir.path(), {"--checkpoint-log-mb", "1"});
    node.Init();
    ExpectRecovered(node, all);
    EXPECT_EQ(node.Stats()["keys"].Int(), static_cast<int64_t>(all.size())) << node.StderrTail();
    node.Close();
  }
}

// ---- startup ---------------------------------------------------------------

// Waits for a node that should exit by itself (stdin stays open, so a node
// that waits for input instead is caught) and returns its wait status.
std::optional<int> WaitForOwnExit(FaultNode& node) {
  EXPECT_EQ(node.process().ReadLine(std::chrono::seconds(15)), std::nullopt)
      << "the node wrote to stdout although it could not open its directory";
  return node.process().WaitForExit(std::chrono::seconds(5));
}

struct OpenFault {
  std::string what;  // "dir": the whole data directory; else a file name part
  std::string error;
  bool existing;  // whether the directory already holds data
};

std::string OpenName(const ::testing::TestParamInfo<OpenFault>& info) {
  std::string name =
      info.param.what + "_" + info.param.error + (info.param.existing ? "_existing" : "_fresh");
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

void PrintTo(const OpenFault& fault, std::ostream* out) {
  *out << "open of " << fault.what << " " << fault.error
       << (fault.existing ? " (existing data)" : " (fresh)");
}

class StartupFaultTest : public ::testing::TestWithParam<OpenFault> {};

TEST_P(StartupFaultTest, OpenFailureExitsWithStatus1NamingTheDirectory) {
  const OpenFault& fault = GetParam();
  TempDir dir;
  std::vector<WriteRecord> writes = MakeWrites("s", 10, 50, 1);
  if (fault.existing) {
    FaultNode node(dir.path(), {});
    node.Init();
    node.PutAll(&writes, 4);
    ASSERT_EQ(CountOutcome(writes, Outcome::kAcked), writes.size()) << node.StderrTail();
    node.Close();
  }
  {
    ShimConfig shim(fault.what == "dir" ? dir.path() : fault.what, "open", fault.error);
    FaultNode node(dir.path(), {}, shim);
    std::optional<int> status = WaitForOwnExit(node);
    ASSERT_TRUE(status) << "the node did not exit although its directory cannot be opened:\n"
                        << node.StderrTail();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1)
        << "wait status " << *status << "; stderr:\n"
        << node.StderrTail();
    const std::string& err = node.process().stderr_text();
    EXPECT_NE(err.find(kShimInjected), std::string::npos) << err;
    // Beyond the shim's own report, the node names the directory or file.
    std::string own = err;
    for (size_t at; (at = own.find(kShimInjected)) != std::string::npos;) {
      size_t end = own.find('\n', at);
      own.erase(at, end == std::string::npos ? std::string::npos : end + 1 - at);
    }
    EXPECT_NE(own.find(dir.path()), std::string::npos)
        << "the error should name the data directory or file:\n"
        << err;
  }
  if (fault.existing) {
    // The failed start damaged nothing.
    FaultNode node(dir.path(), {});
    node.Init();
    ExpectRecovered(node, writes);
    node.Close();
  }
}

INSTANTIATE_TEST_SUITE_P(Open, StartupFaultTest,
                         ::testing::Values(OpenFault{"dir", "EROFS", false},
                                           OpenFault{"dir", "EACCES", true},
                                           OpenFault{"LOCK", "EACCES", false},
                                           OpenFault{"wal-", "EROFS", true},
                                           OpenFault{"wal-", "EACCES", false}),
                         OpenName);

}  // namespace
}  // namespace strata::testing
