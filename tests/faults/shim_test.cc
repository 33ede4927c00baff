// The shim on its own: fault_shim_probe makes file-system calls under
// LD_PRELOAD and prints what each returned. If these fail, the node tests
// cannot be trusted to have injected what they claim.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "fault_node.h"
#include "node_process.h"

namespace strata::testing {
namespace {

// Runs the probe with `shim` preloaded and `script` as its arguments;
// returns its stdout.
std::string RunProbe(const ShimConfig& shim, const std::vector<std::string>& script) {
  NodeProcess probe(STRATA_FAULT_PROBE, script, shim.Env());
  EXPECT_TRUE(probe.ok());
  std::optional<int> status = probe.WaitForExit(std::chrono::seconds(30));
  EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "probe failed; stderr:\n"
      << probe.stderr_text();
  return probe.unread_stdout();
}

TEST(FaultShimTest, FailsTheChosenCallAfterNAndForCountCalls) {
  TempDir dir;
  ShimConfig shim = ShimConfig("wal-", "pwrite", "ENOSPC").After(2).Count(2);
  EXPECT_EQ(RunProbe(shim, {"open", dir.File("wal-1.log"), "pwrite", "pwrite", "pwrite", "pwrite",
                            "pwrite", "fdatasync", "close"}),
            "open ok\npwrite ok\npwrite ok\npwrite ENOSPC\npwrite ENOSPC\npwrite ok\n"
            "fdatasync ok\nclose ok\n");
}

TEST(FaultShimTest, LeavesFilesOnOtherPathsAndStandardStreamsAlone) {
  TempDir dir;
  // `write` failing forever would break the probe's own stdout if the shim
  // matched descriptors it did not see opened on a matching path.
  ShimConfig shim = ShimConfig("wal-", "write,pwrite,fdatasync,fsync", "EIO");
  EXPECT_EQ(
      RunProbe(shim, {"open", dir.File("checkpoint-1.ckpt"), "write", "pwrite", "fdatasync",
                      "fsync", "close", "open", dir.File("wal-2.log"), "write", "fsync", "close"}),
      "open ok\nwrite ok\npwrite ok\nfdatasync ok\nfsync ok\nclose ok\n"
      "open ok\nwrite EIO\nfsync EIO\nclose ok\n");
}

TEST(FaultShimTest, ForgetsADescriptorOnceClosed) {
  TempDir dir;
  // The second file gets the number the first one had; it must not inherit
  // the first one's eligibility.
  ShimConfig shim = ShimConfig("wal-", "fdatasync", "EIO");
  EXPECT_EQ(RunProbe(shim, {"open", dir.File("wal-1.log"), "close", "open", dir.File("other"),
                            "fdatasync", "close"}),
            "open ok\nclose ok\nopen ok\nfdatasync ok\nclose ok\n");
}

TEST(FaultShimTest, InjectsIntoEveryOperationItNames) {
  TempDir dir;
  for (const char* op : {"fdatasync", "fsync", "fallocate", "posix_fallocate", "ftruncate"}) {
    // posix_fallocate is listed under "fallocate": one name for "the disk is
    // full when growing a file", whichever call the log uses.
    std::string config_op = std::string(op) == "posix_fallocate" ? "fallocate" : op;
    ShimConfig shim = ShimConfig("wal-", config_op, "EROFS");
    EXPECT_EQ(RunProbe(shim, {"open", dir.File("wal-1.log"), op, "close"}),
              std::string("open ok\n") + op + " EROFS\nclose ok\n")
        << op;
  }
  ShimConfig open_fault = ShimConfig(dir.path(), "open", "EACCES");
  EXPECT_EQ(RunProbe(open_fault, {"open", dir.File("LOCK")}), "open EACCES\n");

  ShimConfig rename_fault = ShimConfig("checkpoint", "rename", "EIO");
  EXPECT_EQ(
      RunProbe(rename_fault, {"touch", dir.File("checkpoint-1.ckpt.tmp"), "rename",
                              dir.File("checkpoint-1.ckpt.tmp"), dir.File("checkpoint-1.ckpt"),
                              "rename", dir.File("a"), dir.File("b")}),
      "touch ok\nrename EIO\nrename ENOENT\n");
}

TEST(FaultShimTest, CountsExactlyAcrossThreads) {
  TempDir dir;
  // 8 threads x 2000 pwrites race on one counter: exactly `count` must fail.
  ShimConfig shim = ShimConfig("wal-", "pwrite", "EIO").After(100).Count(37);
  EXPECT_EQ(RunProbe(shim, {"open", dir.File("wal-1.log"), "threads", "8", "2000"}),
            "open ok\nthreads failed=37\n");
}

TEST(FaultShimTest, FailsOnlyWhileArmed) {
  TempDir dir;
  ShimConfig shim = ShimConfig("wal-", "fdatasync", "EIO").After(1).ArmedIf(dir.File("armed"));
  // Calls before arming are not counted: after arming, one more succeeds
  // (after = 1), then every call fails until the file is removed.
  EXPECT_EQ(RunProbe(shim, {"open", dir.File("wal-1.log"), "fdatasync", "fdatasync", "touch",
                            dir.File("armed"), "fdatasync", "fdatasync", "fdatasync", "unlink",
                            dir.File("armed"), "fdatasync"}),
            "open ok\nfdatasync ok\nfdatasync ok\ntouch ok\nfdatasync ok\nfdatasync EIO\n"
            "fdatasync EIO\nunlink ok\nfdatasync ok\n");
}

TEST(FaultShimTest, ReportsEachInjectionOnStderr) {
  TempDir dir;
  ShimConfig shim = ShimConfig("wal-", "fsync", "EIO").Count(1);
  NodeProcess probe(STRATA_FAULT_PROBE, {"open", dir.File("wal-1.log"), "fsync", "fsync"},
                    shim.Env());
  ASSERT_TRUE(probe.WaitForExit(std::chrono::seconds(30)));
  EXPECT_EQ(probe.unread_stdout(), "open ok\nfsync EIO\nfsync ok\n");
  EXPECT_NE(probe.stderr_text().find("strata-fault-shim: injected EIO into fsync"),
            std::string::npos)
      << probe.stderr_text();
}

}  // namespace
}  // namespace strata::testing
