// Faults in the write-ahead log, injected into a real strata-node.
//
// The contract (issue 4, durability): a write is acknowledged only once its
// record is durable; a write the log refused before applying it gets error
// 11 and is definitely absent after a restart; a write whose record was in
// flight when a pwrite or fdatasync failed gets error 13 ("outcome
// unknown"); after such a failure the node refuses everything but
// mvcc_stats with error 11 until restarted, and a restart without the fault
// recovers every acknowledged write.
//
// Each test first writes with the fault disarmed (the shim's ARMED_IF file
// is absent), so it does not depend on how many calls the node makes while
// starting, then arms it and writes more.
#include <gtest/gtest.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "fault_node.h"

namespace strata::testing {
namespace {

void Arm(const std::string& path) { std::ofstream(path).put('1'); }

// The text of error 11 after the log failed must say so and say what to do.
void ExpectLogFailedText(std::string_view text, std::string_view request) {
  std::string lower = Lower(text);
  EXPECT_NE(lower.find("write-ahead log"), std::string::npos)
      << request << ": the refusal should name the write-ahead log: " << text;
  EXPECT_NE(lower.find("restart"), std::string::npos)
      << request << ": the refusal should say the node must be restarted: " << text;
}

// Every request but init and mvcc_stats is refused with error 11 once the
// log failed. Reads too: memory may hold changes the disk does not, so a
// read could show a state that the restart then takes back.
void ExpectEverythingRefused(FaultNode& node) {
  for (std::string_view body : {
           R"({"type":"mvcc_get","key":"a0"})",
           R"({"type":"mvcc_put","key":"late","value":1,"timestamp":999999})",
           R"({"type":"mvcc_delete","key":"a0","timestamp":999999})",
           R"({"type":"mvcc_scan"})",
           R"({"type":"mvcc_history","key":"a0"})",
           R"({"type":"mvcc_compact","timestamp":1})",
           R"({"type":"txn_begin"})",
           R"({"type":"read","key":"a0"})",
           R"({"type":"write","key":"a0","value":5})",
       }) {
    JsonValue reply = node.Call(body);
    EXPECT_EQ(reply["type"].String(), "error") << body << " -> " << reply.Canonical();
    EXPECT_EQ(reply["code"].Int(), 11) << body << " -> " << reply.Canonical();
    ExpectLogFailedText(reply["text"].String().value_or(""), body);
  }
}

// The failure as mvcc_stats reports it: a string naming the cause.
void ExpectStatsFailure(FaultNode& node, const std::string& error_name, int error_number) {
  JsonValue stats = node.Stats();
  std::optional<std::string> failure = stats["wal_failure"].String();
  ASSERT_TRUE(failure) << "mvcc_stats must report wal_failure as a string after the log failed: "
                       << stats.Canonical();
  EXPECT_NE(failure->find(strerror(error_number)), std::string::npos)
      << "wal_failure should name the cause (" << error_name << ": " << strerror(error_number)
      << "): " << *failure;
}

struct LogFault {
  std::string op;     // the call that fails (STRATA_FAULT_OP)
  std::string error;  // its errno
  int error_number;
  std::string sync;  // --sync mode
  int delay_us = 0;  // --sync-delay-us, if not 0 (bigger groups share the failed fsync)
  // How many calls fail (-1: all). 1 is the "fsyncgate" case: the retried
  // fsync would succeed, yet proves nothing about the pages the failed one
  // dropped, so the log must stay failed.
  long count = -1;
};

// Readable in test output instead of the parameter's bytes.
void PrintTo(const LogFault& fault, std::ostream* out) {
  *out << fault.op << " " << fault.error << " --sync " << fault.sync;
  if (fault.delay_us != 0) *out << " --sync-delay-us " << fault.delay_us;
  if (fault.count >= 0) *out << " (" << fault.count << " calls fail)";
}

std::string Name(const ::testing::TestParamInfo<LogFault>& info) {
  std::string name = info.param.op + "_" + info.param.error + "_" + info.param.sync;
  if (info.param.delay_us != 0) name += "_delay" + std::to_string(info.param.delay_us);
  if (info.param.count == 1) name += "_once";
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

class LogFaultTest : public ::testing::TestWithParam<LogFault> {};

TEST_P(LogFaultTest, InFlightWritesAreUnknownLaterOnesRefusedAndRestartRecoversTheAcked) {
  const LogFault& fault = GetParam();
  TempDir dir;
  const std::string armed = dir.ArmFile();
  ShimConfig shim = ShimConfig("wal-", fault.op, fault.error).Count(fault.count).ArmedIf(armed);
  std::vector<std::string> flags = {"--sync", fault.sync};
  if (fault.delay_us != 0) {
    flags.insert(flags.end(), {"--sync-delay-us", std::to_string(fault.delay_us)});
  }

  std::vector<WriteRecord> before = MakeWrites("a", 40, 100, 1);
  std::vector<WriteRecord> during = MakeWrites("b", 30, 100, 1000);
  {
    FaultNode node(dir.path(), flags, shim);
    node.Init();
    node.PutAll(&before, 8);
    ASSERT_EQ(CountOutcome(before, Outcome::kAcked), before.size())
        << "writes failed before the fault was armed:\n"
        << node.StderrTail();
    EXPECT_EQ(node.process().stderr_text().find(kShimInjected), std::string::npos);

    Arm(armed);
    node.PutAll(&during, 16);
    EXPECT_NE(node.process().stderr_text().find(kShimInjected), std::string::npos)
        << "the shim never injected a failure into " << fault.op << " of a wal- file";

    std::string outcomes;
    for (const WriteRecord& record : during) {
      outcomes += record.outcome == Outcome::kAcked     ? 'A'
                  : record.outcome == Outcome::kRefused ? 'R'
                                                        : 'U';
    }
    SCOPED_TRACE("outcomes after arming (A ok, U error 13, R error 11): " + outcomes);
    // None of them can be acknowledged: each needed a write or sync that failed.
    EXPECT_EQ(CountOutcome(during, Outcome::kAcked), 0u) << node.StderrTail();
    EXPECT_GE(CountOutcome(during, Outcome::kUnknown), 1u)
        << "the write whose record was in flight when the " << fault.op
        << " failed must get error 13 (outcome unknown)";
    // Records are appended in request order and the failure is final, so the
    // unknown ones come first and every later one is refused.
    bool refused_seen = false;
    for (const WriteRecord& record : during) {
      if (record.outcome == Outcome::kRefused) {
        refused_seen = true;
        ExpectLogFailedText(record.text, "put " + record.key);
      } else if (record.outcome == Outcome::kUnknown) {
        EXPECT_FALSE(refused_seen) << record.key << ": error 13 after an error 11";
        std::string lower = Lower(record.text);
        EXPECT_TRUE(lower.find("unknown") != std::string::npos ||
                    lower.find("may or may not") != std::string::npos)
            << "error 13 should say the write's outcome is unknown: " << record.text;
      }
    }

    ExpectEverythingRefused(node);
    ExpectStatsFailure(node, fault.error, fault.error_number);
    // Still answering (not crashed) after all that.
    ExpectStatsFailure(node, fault.error, fault.error_number);

    std::optional<int> status = node.Close();
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status)) << "the node crashed at end of input after the log failed "
                                    << "(wait status " << *status << "):\n"
                                    << node.StderrTail();
  }

  std::vector<WriteRecord> all = before;
  all.insert(all.end(), during.begin(), during.end());
  std::vector<WriteRecord> after = MakeWrites("c", 10, 100, 5000);
  {
    // The same directory without the fault: everything acknowledged is
    // there, nothing refused is, and the node takes writes again.
    FaultNode node(dir.path(), flags);
    node.Init();
    ExpectRecovered(node, all);
    EXPECT_TRUE(node.Stats()["wal_failure"].IsNull());
    node.PutAll(&after, 4);
    EXPECT_EQ(CountOutcome(after, Outcome::kAcked), after.size()) << node.StderrTail();
    std::optional<int> status = node.Close();
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << node.StderrTail();
  }
  {
    // Once more: the log written after recovering from a failed one (which
    // may end in a torn record) must itself recover.
    FaultNode node(dir.path(), flags);
    node.Init();
    all.insert(all.end(), after.begin(), after.end());
    ExpectRecovered(node, all);
    node.Close();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Wal, LogFaultTest,
    ::testing::Values(
        // fdatasync: "fsyncgate"; none mode never syncs, so only the others.
        LogFault{"fdatasync", "EIO", EIO, "batch"}, LogFault{"fdatasync", "EIO", EIO, "always"},
        LogFault{"fdatasync", "EIO", EIO, "batch", 20000},
        LogFault{"fdatasync", "EIO", EIO, "always", 0, 1},
        // The write of the record itself, in every mode (none mode writes too).
        LogFault{"pwrite", "EIO", EIO, "batch"}, LogFault{"pwrite", "EIO", EIO, "always"},
        LogFault{"pwrite", "EIO", EIO, "none"},
        // A full disk at write time (space was reserved, yet a thin-provisioned
        // or quota'd file system can still say no), and a file system
        // remounted read-only after errors.
        LogFault{"pwrite", "ENOSPC", ENOSPC, "batch"}, LogFault{"pwrite", "EROFS", EROFS, "always"},
        LogFault{"fdatasync", "EROFS", EROFS, "batch"}),
    Name);

// --sync none hands records to the OS and never fsyncs: an fsync fault on
// the log must change nothing while it runs.
TEST(LogFaultNoneModeTest, NeverSyncsTheLog) {
  TempDir dir;
  ShimConfig shim = ShimConfig("wal-", "fdatasync,fsync", "EIO");
  std::vector<WriteRecord> writes = MakeWrites("n", 200, 100, 1);
  {
    FaultNode node(dir.path(), {"--sync", "none"}, shim);
    node.Init();
    node.PutAll(&writes, 16);
    EXPECT_EQ(CountOutcome(writes, Outcome::kAcked), writes.size()) << node.StderrTail();
    JsonValue stats = node.Stats();
    EXPECT_TRUE(stats["wal_failure"].IsNull()) << stats.Canonical();
    EXPECT_EQ(node.process().stderr_text().find(kShimInjected), std::string::npos)
        << "--sync none called fsync/fdatasync on a log segment:\n"
        << node.StderrTail();
    std::optional<int> status = node.Close();
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status)) << node.StderrTail();
  }
  // Handed to the OS is enough to survive the process.
  FaultNode node(dir.path(), {"--sync", "none"});
  node.Init();
  ExpectRecovered(node, writes);
  node.Close();
}

// A full disk when the log grows its segment refuses the write before it
// is applied: error 11 naming the cause, definitely not there after a
// restart, and not fatal: once space is back, writes succeed again.
TEST(LogDiskFullTest, GrowingTheSegmentFailsThenSpaceComesBack) {
  TempDir dir;
  const std::string armed = dir.ArmFile();
  // Three refusals, then the disk has room again.
  ShimConfig shim = ShimConfig("wal-", "fallocate", "ENOSPC").Count(3).ArmedIf(armed);
  std::vector<WriteRecord> before = MakeWrites("a", 20, 100, 1);
  // 12 MiB of values: the log reserves segment space in chunks of a few
  // MiB, so this grows the segment more than once.
  std::vector<WriteRecord> during = MakeWrites("b", 3000, 4000, 1000);
  {
    FaultNode node(dir.path(), {"--sync", "batch"}, shim);
    node.Init();
    node.PutAll(&before, 8);
    ASSERT_EQ(CountOutcome(before, Outcome::kAcked), before.size()) << node.StderrTail();
    Arm(armed);
    node.PutAll(&during, 32);
    EXPECT_NE(node.process().stderr_text().find(kShimInjected), std::string::npos)
        << "the log never called fallocate on its segment while 12 MiB were written";

    size_t refused = CountOutcome(during, Outcome::kRefused);
    EXPECT_GE(refused, 1u) << "a failed fallocate must refuse the write with error 11";
    EXPECT_LE(refused, 3u) << "only three fallocate calls failed";
    EXPECT_EQ(CountOutcome(during, Outcome::kUnknown), 0u)
        << "a refused fallocate happens before the write is applied: error 11, not 13";
    size_t last_refused = 0;
    for (size_t i = 0; i < during.size(); ++i) {
      if (during[i].outcome != Outcome::kRefused) continue;
      last_refused = i;
      EXPECT_NE(during[i].text.find("No space left"), std::string::npos)
          << "the refusal should name the cause: " << during[i].text;
    }
    EXPECT_LT(last_refused + 1, during.size());
    EXPECT_GE(CountOutcome(during, Outcome::kAcked), during.size() - 3)
        << "writes after the disk-full refusals must succeed again";

    JsonValue stats = node.Stats();
    EXPECT_TRUE(stats["wal_failure"].IsNull())
        << "a disk-full refusal is not a log failure: " << stats.Canonical();
    // The node is fully usable: reads and transactions too.
    JsonValue read = node.Call(R"({"type":"mvcc_get","key":"a0"})");
    EXPECT_EQ(read["type"].String(), "mvcc_get_ok") << read.Canonical();
    JsonValue txn = node.Call(R"({"type":"txn","txn":[["w","t1",1],["r","t1",null]]})");
    EXPECT_EQ(txn["type"].String(), "txn_ok") << txn.Canonical();

    std::optional<int> status = node.Close();
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << node.StderrTail();
  }
  FaultNode node(dir.path(), {"--sync", "batch"});
  node.Init();
  std::vector<WriteRecord> all = before;
  all.insert(all.end(), during.begin(), during.end());
  ExpectRecovered(node, all);
  node.Close();
}

// A disk that stays full: every write that needs more log space is refused
// (error 11, definite), yet the node stays healthy: reads and mvcc_stats
// work, wal_failure stays null, and once space is freed (the fault
// disarmed) writes succeed without a restart.
TEST(LogDiskFullTest, DiskStaysFullUntilSpaceIsFreed) {
  TempDir dir;
  const std::string armed = dir.ArmFile();
  ShimConfig shim = ShimConfig("wal-", "fallocate", "ENOSPC").ArmedIf(armed);
  std::vector<WriteRecord> before = MakeWrites("a", 20, 100, 1);
  std::vector<WriteRecord> full = MakeWrites("b", 3000, 4000, 1000);
  std::vector<WriteRecord> freed = MakeWrites("c", 50, 100, 10000);
  {
    FaultNode node(dir.path(), {"--sync", "batch"}, shim);
    node.Init();
    node.PutAll(&before, 8);
    ASSERT_EQ(CountOutcome(before, Outcome::kAcked), before.size()) << node.StderrTail();
    Arm(armed);
    node.PutAll(&full, 32);
    EXPECT_EQ(CountOutcome(full, Outcome::kUnknown), 0u);
    // Acknowledged until the reserved space ran out, refused from then on.
    size_t first_refused = full.size();
    for (size_t i = 0; i < full.size(); ++i) {
      if (full[i].outcome == Outcome::kRefused && first_refused == full.size()) first_refused = i;
      if (i > first_refused) {
        EXPECT_EQ(full[i].outcome, Outcome::kRefused) << full[i].key << " succeeded on a full disk";
      }
    }
    ASSERT_LT(first_refused, full.size()) << "12 MiB were written without growing the segment";
    EXPECT_NE(full[first_refused].text.find("No space left"), std::string::npos)
        << full[first_refused].text;

    JsonValue read = node.Call(R"({"type":"mvcc_get","key":"a1"})");
    EXPECT_EQ(read["type"].String(), "mvcc_get_ok")
        << "reads must work on a full disk: " << read.Canonical();
    EXPECT_TRUE(node.Stats()["wal_failure"].IsNull());

    ASSERT_EQ(unlink(armed.c_str()), 0);  // space is back
    node.PutAll(&freed, 8);
    EXPECT_EQ(CountOutcome(freed, Outcome::kAcked), freed.size())
        << "writes must succeed again once the disk has space:\n"
        << node.StderrTail();
    std::optional<int> status = node.Close();
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << node.StderrTail();
  }
  FaultNode node(dir.path(), {"--sync", "batch"});
  node.Init();
  std::vector<WriteRecord> all = before;
  all.insert(all.end(), full.begin(), full.end());
  all.insert(all.end(), freed.begin(), freed.end());
  ExpectRecovered(node, all);
  node.Close();
}

// The shim loaded with nothing to inject must not disturb the node, and a
// healthy durable node reports its log in mvcc_stats.
TEST(LogHealthyTest, IdleShimChangesNothingAndStatsDescribeTheLog) {
  TempDir dir;
  std::vector<WriteRecord> writes = MakeWrites("h", 100, 50, 1);
  {
    FaultNode node(dir.path(), {"--sync", "batch"}, ShimConfig{});
    node.Init();
    node.PutAll(&writes, 16);
    EXPECT_EQ(CountOutcome(writes, Outcome::kAcked), writes.size()) << node.StderrTail();
    JsonValue stats = node.Stats();
    for (std::string_view field : {"wal_appended_lsn", "wal_durable_lsn", "wal_syncs"}) {
      EXPECT_TRUE(stats[field].Int()) << field << " missing: " << stats.Canonical();
    }
    EXPECT_TRUE(stats["checkpoints"].Int()) << stats.Canonical();
    EXPECT_TRUE(stats["wal_failure"].valid() && stats["wal_failure"].IsNull())
        << "wal_failure must be null while healthy: " << stats.Canonical();
    EXPECT_GE(stats["wal_appended_lsn"].Int().value_or(0), 100);
    // Every put was acknowledged, so every record it made is durable.
    EXPECT_EQ(stats["wal_durable_lsn"].Int(), stats["wal_appended_lsn"].Int()) << stats.Canonical();
    EXPECT_GE(stats["wal_syncs"].Int().value_or(0), 1);
    std::optional<int> status = node.Close();
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << node.StderrTail();
  }
  FaultNode node(dir.path(), {"--sync", "batch"});
  node.Init();
  ExpectRecovered(node, writes);
  node.Close();
}

// A crash (SIGKILL) at an arbitrary moment loses nothing acknowledged, in
// every sync mode (none: the records were handed to the OS, which survives
// the process).
class CrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CrashTest, SigkillLosesNoAcknowledgedWrite) {
  TempDir dir;
  std::vector<WriteRecord> writes = MakeWrites("k", 400, 200, 1);
  {
    FaultNode node(dir.path(), {"--sync", GetParam()});
    node.Init();
    // Send everything, read about half the replies, then kill: the rest are
    // in every state from unread to mid-fsync.
    std::vector<int64_t> ids;
    for (const WriteRecord& record : writes) {
      ids.push_back(node.Send(R"({"type":"mvcc_put","key":)" + record.key + R"(,"value":)" +
                              record.value + R"(,"timestamp":)" + std::to_string(record.timestamp) +
                              "}"));
    }
    for (size_t i = 0; i < writes.size() / 2; ++i) {
      JsonValue reply = node.Await(ids[i]);
      ASSERT_EQ(reply["type"].String(), "mvcc_put_ok") << reply.Canonical();
      writes[i].outcome = Outcome::kAcked;
    }
    ASSERT_TRUE(node.process().Kill(SIGKILL, std::chrono::seconds(10)));
  }
  FaultNode node(dir.path(), {"--sync", GetParam()});
  node.Init();
  ExpectRecovered(node, writes);
  node.Close();
}

INSTANTIATE_TEST_SUITE_P(Modes, CrashTest, ::testing::Values("always", "batch", "none"));

}  // namespace
}  // namespace strata::testing
