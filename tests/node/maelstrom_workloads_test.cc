// Maelstrom's standard workloads (PROTOCOL.md section 4, "Maelstrom
// workloads"): lin-kv, txn-rw-register and txn-list-append, sharing one
// keyspace with the MVCC and transaction APIs. Every test runs under both
// --isolation values: the workloads run at the node's level, and so do
// interactive transactions that do not name one.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "node_test_fixture.h"
#include "txn_client.h"

namespace strata::testing {
namespace {

class WorkloadTest : public NodeTest, public ::testing::WithParamInterface<std::string> {
 protected:
  std::vector<std::string> NodeArgs() const override { return {"--isolation", GetParam()}; }

  bool serializable() const { return GetParam() == "serializable"; }

  // Sends a `txn` request with operations `ops` (a JSON array text) and
  // expects txn_ok with `completed` (the operations with reads filled in).
  void ExpectTxn(std::string_view ops, std::string_view completed) {
    node().ExpectReply(R"({"type":"txn","txn":)" + std::string(ops) + "}",
                       R"({"type":"txn_ok","txn":)" + std::string(completed) + "}");
  }

  void ExpectRead(std::string_view key, std::string_view value) {
    node().ExpectReply(R"({"type":"read","key":)" + std::string(key) + "}",
                       R"({"type":"read_ok","value":)" + std::string(value) + "}");
  }

  void Write(std::string_view key, std::string_view value) {
    node().ExpectReply(
        R"({"type":"write","key":)" + std::string(key) + R"(,"value":)" + std::string(value) + "}",
        R"({"type":"write_ok"})");
  }

  // Sends cas; `expected_error` 0 means cas_ok.
  void Cas(std::string_view key, std::string_view from, std::string_view to, int expected_error,
           std::string_view extra = "") {
    std::string body = R"({"type":"cas","key":)" + std::string(key) + R"(,"from":)" +
                       std::string(from) + R"(,"to":)" + std::string(to);
    if (!extra.empty()) body.append(",").append(extra);
    body += "}";
    if (expected_error == 0) {
      node().ExpectReply(body, R"({"type":"cas_ok"})");
    } else {
      node().ExpectError(body, expected_error);
    }
  }
};

INSTANTIATE_TEST_SUITE_P(BothLevels, WorkloadTest, ::testing::Values("snapshot", "serializable"),
                         [](const auto& info) { return info.param; });

// --- lin-kv -----------------------------------------------------------------

TEST_P(WorkloadTest, ReadOfMissingKeyIsError20NamingIt) {
  std::string text = node().ExpectError(R"({"type":"read","key":"no-such-key"})", 20);
  EXPECT_NE(text.find("no-such-key"), std::string::npos) << text;
}

TEST_P(WorkloadTest, WriteThenReadReturnsTheValue) {
  Write("1", R"({"a":[1,2],"b":null})");
  ExpectRead("1", R"({"b":null,"a":[1,2]})");
  Write("1", "2");
  ExpectRead("1", "2");
  // 1 and "1" are different keys.
  node().ExpectError(R"({"type":"read","key":"1"})", 20);
}

TEST_P(WorkloadTest, CasSucceedsOnlyFromTheCurrentValue) {
  Write("1", "5");
  Cas("1", "5", "6", 0);
  ExpectRead("1", "6");
  std::string text = node().ExpectError(R"({"type":"cas","key":1,"from":5,"to":7})", 22);
  EXPECT_FALSE(text.empty());
  ExpectRead("1", "6");
  // create_if_not_exists does not bypass the comparison on an existing key.
  Cas("1", "5", "7", 22, R"("create_if_not_exists":true)");
  ExpectRead("1", "6");
}

TEST_P(WorkloadTest, CasComparesJsonValuesNotText) {
  Write("1", R"({"a":1,"b":[true]})");
  Cas("1", R"({ "b" : [ true ], "a" : 1 })", R"("next")", 0);
  ExpectRead("1", R"("next")");
}

TEST_P(WorkloadTest, CasOnMissingKeyIsError20UnlessCreating) {
  Cas("2", "1", "2", 20);
  Cas("2", "1", "2", 20, R"("create_if_not_exists":false)");
  node().ExpectError(R"({"type":"read","key":2})", 20);
  Cas("2", "1", R"("created")", 0, R"("create_if_not_exists":true)");
  ExpectRead("2", R"("created")");
}

TEST_P(WorkloadTest, DeletedKeyIsMissingForLinKv) {
  Write(R"("k")", "1");
  node().Delete(R"("k")", node().Stats()["max_timestamp"].Int().value_or(0) + 1);
  node().ExpectError(R"({"type":"read","key":"k"})", 20);
  Cas(R"("k")", "1", "2", 20);
}

TEST_P(WorkloadTest, MalformedLinKvRequestsAreError12) {
  node().ExpectError(R"({"type":"read"})", 12);
  node().ExpectError(R"({"type":"read","key":1.5})", 12);
  node().ExpectError(R"({"type":"write","key":1})", 12);
  node().ExpectError(R"({"type":"cas","key":1,"to":2})", 12);
  node().ExpectError(R"({"type":"cas","key":1,"from":1})", 12);
  node().ExpectError(R"({"type":"cas","key":1,"from":1,"to":2,"create_if_not_exists":"yes"})", 12);
  EXPECT_EQ(node().Stats()["versions"].Int(), 0);
}

// --- txn-rw-register --------------------------------------------------------

TEST_P(WorkloadTest, RwRegisterReadsSeeOwnWritesAndLaterTxns) {
  ExpectTxn(R"([["r",1,null],["w",1,5],["r",1,null]])", R"([["r",1,null],["w",1,5],["r",1,5]])");
  ExpectTxn(R"([["r",1,null],["w",2,"two"],["w",1,6]])", R"([["r",1,5],["w",2,"two"],["w",1,6]])");
  ExpectTxn(R"([["r",1,null],["r",2,null],["r",3,null]])",
            R"([["r",1,6],["r",2,"two"],["r",3,null]])");
}

// --- txn-list-append --------------------------------------------------------

TEST_P(WorkloadTest, ListAppendAccumulatesInOrder) {
  ExpectTxn(R"([["append",9,1],["append",9,2],["r",9,null]])",
            R"([["append",9,1],["append",9,2],["r",9,[1,2]]])");
  ExpectTxn(R"([["r",9,null],["append",9,3],["append",10,"x"]])",
            R"([["r",9,[1,2]],["append",9,3],["append",10,"x"]])");
  ExpectTxn(R"([["r",9,null],["r",10,null],["r",11,null]])",
            R"([["r",9,[1,2,3]],["r",10,["x"]],["r",11,null]])");
  // The lists are ordinary values in the shared keyspace.
  ExpectRead("9", "[1,2,3]");
}

// --- malformed txn operations -----------------------------------------------

TEST_P(WorkloadTest, MalformedTxnOpsAreError12AndWriteNothing) {
  for (std::string_view txn : {
           R"()",  // no txn field at all
           R"(,"txn":"r 1")",
           R"(,"txn":{"r":1})",
           R"(,"txn":[5])",
           R"(,"txn":[["r",1]])",
           R"(,"txn":[["r",1,null,null]])",
           R"(,"txn":[[1,1,null]])",
           R"(,"txn":[["x",1,2]])",
           R"(,"txn":[["r",1.5,null]])",
           R"(,"txn":[["r",{"k":1},null]])",
           R"(,"txn":[["w",null,1]])",
           // A valid write before the bad operation must not be applied.
           R"(,"txn":[["w",1,5],["bogus",1,6]])",
           R"(,"txn":[["append",2,5],["r",1]])",
       }) {
    node().ExpectError(R"({"type":"txn")" + std::string(txn) + "}", 12);
  }
  JsonValue stats = node().Stats();
  EXPECT_EQ(stats["versions"].Int(), 0) << stats.Canonical();
  EXPECT_EQ(stats["active_txns"].Int(), 0) << stats.Canonical();
  node().ExpectError(R"({"type":"read","key":1})", 20);
}

// --- one keyspace -----------------------------------------------------------

TEST_P(WorkloadTest, LinKvWriteIsVisibleToMvccAndTxnReads) {
  Write(R"("shared")", "42");
  JsonValue raw = node().CallOk(R"({"type":"mvcc_get","key":"shared"})", "mvcc_get_ok");
  EXPECT_EQ(ValueOf(raw), "42");
  EXPECT_EQ(raw["version"].Int(), 1);
  Txn txn = Txn::Begin(node());
  EXPECT_EQ(ValueOf(txn.Get(R"("shared")")), "42");
  txn.Commit();
  ExpectTxn(R"([["r","shared",null]])", R"([["r","shared",42]])");
}

TEST_P(WorkloadTest, MvccAndTxnWritesAreVisibleToWorkloads) {
  node().Put(R"("raw")", R"("r")", 100);
  Txn txn = Txn::Begin(node());
  txn.Put(R"("interactive")", "[7]");
  // Uncommitted: the workloads do not see it.
  node().ExpectError(R"({"type":"read","key":"interactive"})", 20);
  ExpectTxn(R"([["r","interactive",null]])", R"([["r","interactive",null]])");
  txn.Commit();
  ExpectRead(R"("raw")", R"("r")");
  ExpectRead(R"("interactive")", "[7]");
  ExpectTxn(R"([["append","interactive",8],["r","interactive",null],["r","raw",null]])",
            R"([["append","interactive",8],["r","interactive",[7,8]],["r","raw","r"]])");
}

// --- the node's isolation level ---------------------------------------------

// An interactive transaction that names no isolation reads "a", a workload
// request writes "a", then it writes "b": a read-write conflict, which only
// serializable refuses.
TEST_P(WorkloadTest, DefaultIsolationOfInteractiveTxnFollowsTheFlag) {
  Write(R"("a")", "0");
  Txn txn = Txn::Begin(node());
  EXPECT_EQ(ValueOf(txn.Get(R"("a")")), "0");
  ExpectTxn(R"([["w","a",1]])", R"([["w","a",1]])");
  txn.Put(R"("b")", "1");
  if (serializable()) {
    txn.CommitExpectingConflict();
    node().ExpectError(R"({"type":"read","key":"b"})", 20);
  } else {
    txn.Commit();
    ExpectRead(R"("b")", "1");
  }
}

// A workload write to a key an open transaction also writes wins (it
// committed first), under either level.
TEST_P(WorkloadTest, WorkloadWriteBeatsAnOpenTxnWritingTheSameKey) {
  Txn txn = Txn::Begin(node());
  txn.Put(R"("k")", R"("txn")");
  Cas(R"("k")", "null", R"("cas")", 0, R"("create_if_not_exists":true)");
  std::string text = txn.CommitExpectingConflict();
  EXPECT_NE(text.find("k"), std::string::npos) << text;
  ExpectRead(R"("k")", R"("cas")");
}

}  // namespace
}  // namespace strata::testing
