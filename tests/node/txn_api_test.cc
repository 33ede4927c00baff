// Section 4 (transactions), one message type at a time, then every error a
// transaction request can get: 12 (malformed), 14 (transaction gone), 30
// (conflict), 1000 (compacted), 22 (raw write under a live snapshot) and
// 11 (too many open transactions).
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "node_test_fixture.h"
#include "txn_client.h"

namespace strata::testing {
namespace {

constexpr std::string_view kNulls = R"("value":null,"version":null,"as_of_timestamp":null)";

std::string TsText(int64_t ts) { return std::to_string(ts); }

// --- txn_begin --------------------------------------------------------------

TEST_F(NodeTest, BeginHandsOutIdsAndStartTimestampsAboveEverythingSeen) {
  // The oracle has seen 1000 through a raw write: snapshots start above it.
  node().Put(R"("x")", "1", 1000);
  Txn first = Txn::Begin(node());
  Txn second = Txn::Begin(node());
  EXPECT_GT(first.start(), 1000);
  EXPECT_GT(second.start(), first.start());
  EXPECT_NE(first.id(), second.id());
}

TEST_F(NodeTest, BeginAcceptsBothIsolationLevelsAndReadOnly) {
  for (std::string_view options :
       {R"("isolation":"snapshot")", R"("isolation":"serializable")", R"("read_only":true)",
        R"("read_only":false)", R"("isolation":"snapshot","read_only":true)"}) {
    Txn txn = Txn::Begin(node(), options);
    EXPECT_GT(txn.start(), 0) << options;
  }
  EXPECT_EQ(node().Stats()["active_txns"].Int(), 5);
}

TEST_F(NodeTest, BeginWithReadTimestampReadsThePast) {
  node().Put(R"("x")", R"("old")", 100);
  node().Put(R"("x")", R"("new")", 200);
  Txn past = Txn::Begin(node(), R"("read_only":true,"read_timestamp":150)");
  EXPECT_EQ(past.start(), 150);
  node().ExpectReply(past.Body("txn_get", R"("key":"x")"),
                     R"({"type":"txn_get_ok","value":"old","version":1,"as_of_timestamp":100})");
  node().ExpectReply(past.Body("txn_scan"), R"({"type":"txn_scan_ok","more":false,"items":[
      {"key":"x","value":"old","version":1,"as_of_timestamp":100}]})");
  // Read-only transactions never fail to commit.
  EXPECT_GE(past.Commit(), 150);
}

// --- txn_get ----------------------------------------------------------------

TEST_F(NodeTest, GetReadsTheSnapshotAtTheStartTimestamp) {
  node().Put(R"("x")", R"("before")", 10);
  node().Put(R"("gone")", "1", 10);
  node().Delete(R"("gone")", 20);
  Txn txn = Txn::Begin(node());
  // A raw write above the snapshot is allowed and must not show in it.
  node().Put(R"("x")", R"("after")", txn.start() + 10);

  node().ExpectReply(txn.Body("txn_get", R"("key":"x")"),
                     R"({"type":"txn_get_ok","value":"before","version":1,"as_of_timestamp":10})");
  node().ExpectReply(
      txn.Body("txn_get", R"("key":"gone")"),
      R"({"type":"txn_get_ok","value":null,"version":2,"as_of_timestamp":20,"deleted":true})");
  node().ExpectReply(txn.Body("txn_get", R"("key":"missing")"),
                     WithMembers(R"({"type":"txn_get_ok"})", kNulls));
  // Integer and string keys are different keys.
  node().ExpectReply(txn.Body("txn_get", R"("key":1)"),
                     WithMembers(R"({"type":"txn_get_ok"})", kNulls));
}

TEST_F(NodeTest, GetOfOwnWriteHasNoVersionYet) {
  node().Put("7", R"("stored")", 10);
  Txn txn = Txn::Begin(node());
  txn.Put("7", R"({"b":[1,null],"a":true})");
  node().ExpectReply(txn.Body("txn_get", R"("key":7)"),
                     R"({"type":"txn_get_ok","value":{"a":true,"b":[1,null]},"version":null,
                         "as_of_timestamp":null,"own_write":true})");
  txn.Delete("7");
  node().ExpectReply(txn.Body("txn_get", R"("key":7)"),
                     R"({"type":"txn_get_ok","value":null,"deleted":true,"version":null,
                         "as_of_timestamp":null,"own_write":true})");
}

// --- txn_put ----------------------------------------------------------------

TEST_F(NodeTest, PutIsBufferedUntilCommitThenOneVersion) {
  Txn writer = Txn::Begin(node());
  node().ExpectReply(writer.Body("txn_put", R"("key":"x","value":"first")"),
                     R"({"type":"txn_put_ok"})");
  node().ExpectReply(writer.Body("txn_put", R"("key":"x","value":[1,2.5,"three"])"),
                     R"({"type":"txn_put_ok"})");
  // Uncommitted: invisible to raw reads and to other transactions.
  node().ExpectReply(R"({"type":"mvcc_get","key":"x"})",
                     WithMembers(R"({"type":"mvcc_get_ok"})", kNulls));
  Txn reader = Txn::Begin(node());
  EXPECT_EQ(ValueOf(reader.Get(R"("x")")), "null");

  int64_t commit_ts = writer.Commit();
  // The last write of the key wins, as one version, echoed as the same JSON.
  node().ExpectReply(R"({"type":"mvcc_get","key":"x"})",
                     R"({"type":"mvcc_get_ok","value":[1,2.5,"three"],"version":1,
                         "as_of_timestamp":)" +
                         TsText(commit_ts) + "}");
  EXPECT_EQ(node().Stats()["versions"].Int(), 1);
}

// --- txn_delete -------------------------------------------------------------

TEST_F(NodeTest, DeleteCommitsATombstone) {
  node().Put(R"("x")", R"("alive")", 10);
  Txn txn = Txn::Begin(node());
  node().ExpectReply(txn.Body("txn_delete", R"("key":"x")"), R"({"type":"txn_delete_ok"})");
  // Not yet: the delete is buffered.
  EXPECT_EQ(ValueOf(node().CallOk(R"({"type":"mvcc_get","key":"x"})", "mvcc_get_ok")),
            R"("alive")");
  int64_t commit_ts = txn.Commit();
  node().ExpectReply(R"({"type":"mvcc_get","key":"x"})",
                     R"({"type":"mvcc_get_ok","value":null,"version":2,"deleted":true,
                         "as_of_timestamp":)" +
                         TsText(commit_ts) + "}");
}

// --- txn_scan ---------------------------------------------------------------

// Keys 7, "a".."e" and "pre/1", "pre/2" at 10; "c" deleted at 20; then a
// transaction begins.
class TxnScanTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    node().Put("7", "70", 10);
    for (std::string key : {"a", "b", "c", "d", "e", "pre/1", "pre/2"}) {
      node().Put(QuoteJson(key), QuoteJson(key + "1"), 10);
    }
    node().Delete(R"("c")", 20);
    txn_ = std::make_unique<Txn>(Txn::Begin(node()));
  }

  Txn& txn() { return *txn_; }

 private:
  std::unique_ptr<Txn> txn_;
};

TEST_F(TxnScanTest, ScanAllInKeyOrderWithoutDeletedKeys) {
  node().ExpectReply(txn().Body("txn_scan"), R"({"type":"txn_scan_ok","more":false,"items":[
      {"key":7,"value":70,"version":1,"as_of_timestamp":10},
      {"key":"a","value":"a1","version":1,"as_of_timestamp":10},
      {"key":"b","value":"b1","version":1,"as_of_timestamp":10},
      {"key":"d","value":"d1","version":1,"as_of_timestamp":10},
      {"key":"e","value":"e1","version":1,"as_of_timestamp":10},
      {"key":"pre/1","value":"pre/11","version":1,"as_of_timestamp":10},
      {"key":"pre/2","value":"pre/21","version":1,"as_of_timestamp":10}]})");
}

TEST_F(TxnScanTest, ScanRangePrefixAndLimit) {
  EXPECT_EQ(ScanKeys(txn().Scan(R"("start":"b","end":"e")")), R"(["b","d"])");
  EXPECT_EQ(ScanKeys(txn().Scan(R"("start":"d")")), R"(["d","e","pre/1","pre/2"])");
  EXPECT_EQ(ScanKeys(txn().Scan(R"("end":"b")")), R"([7,"a"])");
  EXPECT_EQ(ScanKeys(txn().Scan(R"("prefix":"pre/")")), R"(["pre/1","pre/2"])");

  JsonValue cut = txn().Scan(R"("limit":2)");
  EXPECT_EQ(ScanKeys(cut), R"([7,"a"])");
  EXPECT_EQ(cut["more"].Bool(), true);
  JsonValue exact = txn().Scan(R"("limit":7)");
  EXPECT_EQ(exact["items"].size(), 7u);
  EXPECT_EQ(exact["more"].Bool(), false) << "nothing was cut";
}

TEST_F(TxnScanTest, ScanDoesNotSeeLaterCommits) {
  node().Put(R"("ab")", R"("late")", txn().start() + 1);
  Txn other = Txn::Begin(node());
  other.Put(R"("aa")", R"("late")");
  other.Delete(R"("b")");
  other.Commit();
  EXPECT_EQ(ScanKeys(txn().Scan(R"("end":"c")")), R"([7,"a","b"])");
}

TEST_F(TxnScanTest, ScanMergesOwnWrites) {
  txn().Put(R"("b")", R"("b2")");      // overwrites a stored key
  txn().Put(R"("bb")", R"("new")");    // a key the store does not have
  txn().Delete(R"("d")");              // hides a stored key
  txn().Put(R"("pre/0")", R"("p0")");  // inside the prefix below
  txn().Put(R"("c")", R"("back")");    // revives a deleted key

  node().ExpectReply(txn().Body("txn_scan", R"("start":"a","end":"e")"),
                     R"({"type":"txn_scan_ok","more":false,"items":[
      {"key":"a","value":"a1","version":1,"as_of_timestamp":10},
      {"key":"b","value":"b2","version":null,"as_of_timestamp":null,"own_write":true},
      {"key":"bb","value":"new","version":null,"as_of_timestamp":null,"own_write":true},
      {"key":"c","value":"back","version":null,"as_of_timestamp":null,"own_write":true}]})");
  // Own writes outside the prefix stay out of a prefix scan.
  EXPECT_EQ(ScanKeys(txn().Scan(R"("prefix":"pre/")")), R"(["pre/0","pre/1","pre/2"])");
  EXPECT_EQ(ScanKeys(txn().Scan()), R"([7,"a","b","bb","c","e","pre/0","pre/1","pre/2"])");

  // The limit counts merged items, and `more` still says the result was cut.
  JsonValue cut = txn().Scan(R"("limit":4)");
  EXPECT_EQ(ScanKeys(cut), R"([7,"a","b","bb"])");
  EXPECT_EQ(cut["more"].Bool(), true);
  JsonValue all = txn().Scan(R"("limit":9)");
  EXPECT_EQ(all["items"].size(), 9u);
  EXPECT_EQ(all["more"].Bool(), false);
}

TEST_F(TxnScanTest, ScanLimitOutOfRangeIsError12) {
  node().ExpectError(txn().Body("txn_scan", R"("limit":0)"), 12);
  node().ExpectError(txn().Body("txn_scan", R"("limit":10001)"), 12);
  node().ExpectError(txn().Body("txn_scan", R"("prefix":7)"), 12);
}

// --- txn_commit -------------------------------------------------------------

TEST_F(NodeTest, CommitTimestampIsAboveStartAndEveryTimestampSeen) {
  Txn first = Txn::Begin(node());
  first.Put(R"("x")", "1");
  // A raw write far above the snapshot (allowed: it does not change it)
  // moves the oracle; the commit must land above it.
  const int64_t far = first.start() + 1'000'000;
  node().Put(R"("elsewhere")", "0", far);
  int64_t first_commit = first.Commit();
  EXPECT_GT(first_commit, first.start());
  EXPECT_GT(first_commit, far);

  Txn second = Txn::Begin(node());
  EXPECT_GT(second.start(), first_commit);
  second.Put(R"("x")", "2");
  int64_t second_commit = second.Commit();
  EXPECT_GT(second_commit, second.start());

  JsonValue stats = node().Stats();
  EXPECT_EQ(stats["commits"].Int(), 2) << stats.Canonical();
  EXPECT_EQ(stats["active_txns"].Int(), 0) << stats.Canonical();
  EXPECT_EQ(stats["max_timestamp"].Int(), second_commit) << stats.Canonical();
}

TEST_F(NodeTest, CommitWithoutWritesSucceeds) {
  Txn txn = Txn::Begin(node());
  txn.Get(R"("x")");
  EXPECT_GE(txn.Commit(), txn.start());
  EXPECT_EQ(node().Stats()["versions"].Int(), 0);
}

// --- txn_abort --------------------------------------------------------------

TEST_F(NodeTest, AbortDiscardsTheWritesAndEndsTheTransaction) {
  Txn txn = Txn::Begin(node());
  txn.Put(R"("x")", "1");
  txn.Delete(R"("y")");
  node().ExpectReply(txn.Body("txn_abort"), R"({"type":"txn_abort_ok"})");
  node().ExpectReply(R"({"type":"mvcc_get","key":"x"})",
                     WithMembers(R"({"type":"mvcc_get_ok"})", kNulls));
  JsonValue stats = node().Stats();
  EXPECT_EQ(stats["versions"].Int(), 0) << stats.Canonical();
  EXPECT_EQ(stats["active_txns"].Int(), 0) << stats.Canonical();
  EXPECT_TRUE(stats["min_active_snapshot"].IsNull()) << stats.Canonical();
}

// --- error 12: malformed ----------------------------------------------------

TEST_F(NodeTest, BeginWithBadOptionsIsError12) {
  std::string text =
      node().ExpectError(R"({"type":"txn_begin","isolation":"repeatable_read"})", 12);
  EXPECT_NE(text.find("isolation"), std::string::npos) << text;
  node().ExpectError(R"({"type":"txn_begin","isolation":1})", 12);
  node().ExpectError(R"({"type":"txn_begin","read_only":"yes"})", 12);
  node().ExpectError(R"({"type":"txn_begin","read_only":true,"read_timestamp":-1})", 12);
  node().ExpectError(R"({"type":"txn_begin","read_only":true,"read_timestamp":"5"})", 12);
  // read_timestamp is for read-only transactions only.
  node().Put(R"("x")", "1", 100);
  node().ExpectError(R"({"type":"txn_begin","read_timestamp":50})", 12);
  node().ExpectError(R"({"type":"txn_begin","read_only":false,"read_timestamp":50})", 12);
  EXPECT_EQ(node().Stats()["active_txns"].Int(), 0) << "a refused begin must not open anything";
}

TEST_F(NodeTest, MissingOrIllTypedTxnIdIsError12) {
  Txn txn = Txn::Begin(node());  // a live id exists, so "1" and 1.0 are near misses
  ASSERT_EQ(txn.id(), 1) << "the near misses below assume the first id is 1";
  const std::vector<std::string> types = {"txn_get",  "txn_put",    "txn_delete",
                                          "txn_scan", "txn_commit", "txn_abort"};
  for (const std::string& type : types) {
    const std::string head = R"({"type":")" + type + R"(","key":"x","value":1)";
    for (std::string_view txn_id : {"", R"(,"txn_id":"1")", R"(,"txn_id":1.5)", R"(,"txn_id":-1)",
                                    R"(,"txn_id":null)", R"(,"txn_id":[1])", R"(,"txn_id":true)"}) {
      std::string text = node().ExpectError(head + std::string(txn_id) + "}", 12);
      EXPECT_NE(text.find("txn_id"), std::string::npos) << text;
    }
  }
  // None of that touched the live transaction.
  EXPECT_EQ(node().Stats()["active_txns"].Int(), 1);
  txn.Commit();
}

TEST_F(NodeTest, MissingKeyOrValueIsError12) {
  Txn txn = Txn::Begin(node());
  node().ExpectError(txn.Body("txn_get"), 12);
  node().ExpectError(txn.Body("txn_get", R"("key":1.5)"), 12);
  node().ExpectError(txn.Body("txn_put", R"("key":"x")"), 12);
  node().ExpectError(txn.Body("txn_put", R"("value":1)"), 12);
  node().ExpectError(txn.Body("txn_delete", R"("key":{"a":1})"), 12);
  // The transaction survives malformed requests and wrote nothing.
  EXPECT_EQ(ValueOf(txn.Get(R"("x")")), "null");
  txn.Commit();
}

TEST_F(NodeTest, WriteInReadOnlyTransactionIsError12) {
  node().Put(R"("x")", R"("v")", 10);
  Txn txn = Txn::Begin(node(), R"("read_only":true)");
  node().ExpectError(txn.Body("txn_put", R"("key":"x","value":2)"), 12);
  node().ExpectError(txn.Body("txn_delete", R"("key":"x")"), 12);
  // Still usable, and it wrote nothing.
  EXPECT_EQ(ValueOf(txn.Get(R"("x")")), R"("v")");
  txn.Commit();
  EXPECT_EQ(node().Stats()["versions"].Int(), 1);
}

// --- error 14: the transaction is gone --------------------------------------

TEST_F(NodeTest, UnknownTxnIdIsError14) {
  Txn live = Txn::Begin(node());
  // Build a handle for an id the node never handed out.
  std::string unknown = std::to_string(live.id() + 4242);
  for (std::string_view type :
       {"txn_get", "txn_put", "txn_delete", "txn_scan", "txn_commit", "txn_abort"}) {
    std::string text = node().ExpectError(R"({"type":")" + std::string(type) + R"(","txn_id":)" +
                                              unknown + R"(,"key":"x","value":1})",
                                          14);
    EXPECT_NE(text.find(unknown), std::string::npos) << text;
  }
  live.Abort();
}

TEST_F(NodeTest, CommittedTxnIsError14) {
  Txn txn = Txn::Begin(node());
  txn.Put(R"("x")", "1");
  int64_t commit_ts = txn.Commit();
  ExpectTxnGone(node(), txn);
  // Nothing it was asked after the commit changed the store.
  node().ExpectReply(R"({"type":"mvcc_history","key":"x"})",
                     R"({"type":"mvcc_history_ok","more":false,"versions":[
                         {"version":1,"value":1,"timestamp":)" +
                         TsText(commit_ts) + "}]}");
}

TEST_F(NodeTest, AbortedTxnIsError14) {
  Txn txn = Txn::Begin(node());
  txn.Put(R"("x")", "1");
  txn.Abort();
  ExpectTxnGone(node(), txn);
  EXPECT_EQ(node().Stats()["versions"].Int(), 0);
}

TEST_F(NodeTest, TxnThatLostAConflictIsError14) {
  Txn winner = Txn::Begin(node());
  Txn loser = Txn::Begin(node());
  winner.Put(R"("x")", R"("w")");
  loser.Put(R"("x")", R"("l")");
  winner.Commit();
  loser.CommitExpectingConflict();
  ExpectTxnGone(node(), loser);
}

// --- error 30: conflict -----------------------------------------------------

TEST_F(NodeTest, ConflictIsError30NamingTheTransactionAndKey) {
  struct Case {
    std::string_view key;   // as sent
    std::string_view name;  // what the text must contain
  };
  for (Case c : {Case{R"("account/alice")", "account/alice"}, Case{"4711", "4711"}}) {
    Txn winner = Txn::Begin(node(), R"("isolation":"snapshot")");
    Txn loser = Txn::Begin(node(), R"("isolation":"snapshot")");
    loser.Put(R"("unrelated")", "0");
    winner.Put(c.key, "1");
    loser.Put(c.key, "2");
    winner.Commit();
    std::string text = loser.CommitExpectingConflict();
    EXPECT_NE(text.find(std::to_string(loser.id())), std::string::npos) << text;
    EXPECT_NE(text.find(c.name), std::string::npos)
        << "the text should name key " << c.key << ": " << text;
  }
  JsonValue stats = node().Stats();
  EXPECT_EQ(stats["conflicts"].Int(), 2) << stats.Canonical();
  EXPECT_EQ(stats["commits"].Int(), 2) << stats.Canonical();
  // The losers' writes, including the one to "unrelated", are gone.
  node().ExpectReply(R"({"type":"mvcc_get","key":"unrelated"})",
                     WithMembers(R"({"type":"mvcc_get_ok"})", kNulls));
}

// --- error 1000: compacted --------------------------------------------------

TEST_F(NodeTest, ReadTimestampBelowTheHorizonIsError1000) {
  node().Put(R"("x")", R"("a")", 100);
  node().Put(R"("x")", R"("b")", 600);
  node().CallOk(R"({"type":"mvcc_compact","timestamp":500})", "mvcc_compact_ok");
  std::string text =
      node().ExpectError(R"({"type":"txn_begin","read_only":true,"read_timestamp":499})", 1000);
  EXPECT_NE(text.find("500"), std::string::npos) << "the text should name the horizon: " << text;
  EXPECT_EQ(node().Stats()["active_txns"].Int(), 0);
  // At the horizon itself the past is still readable.
  Txn at_horizon = Txn::Begin(node(), R"("read_only":true,"read_timestamp":500)");
  EXPECT_EQ(ValueOf(at_horizon.Get(R"("x")")), R"("a")");
}

// --- error 22: raw write under a live snapshot ------------------------------

TEST_F(NodeTest, RawWriteAtOrBelowALiveSnapshotIsError22) {
  Txn txn = Txn::Begin(node());
  const std::string start = std::to_string(txn.start());
  const std::string below = std::to_string(txn.start() - 1);
  for (const std::string& body :
       {R"({"type":"mvcc_put","key":"x","value":1,"timestamp":)" + start + "}",
        R"({"type":"mvcc_put","key":"x","value":1,"timestamp":)" + below + "}",
        R"({"type":"mvcc_delete","key":"x","timestamp":)" + start + "}"}) {
    std::string text = node().ExpectError(body, 22);
    EXPECT_NE(text.find(start), std::string::npos)
        << "the text should name the snapshot's timestamp " << start << ": " << text;
  }
  EXPECT_EQ(ValueOf(txn.Get(R"("x")")), "null") << "the snapshot changed";
  // Above the snapshot raw writes go on; once it ends, below it too.
  node().Put(R"("x")", "2", txn.start() + 1);
  txn.Abort();
  node().Put(R"("x")", "1", txn.start());
}

// --- the top of the timestamp range -----------------------------------------

// Timestamps are integers in [0, 2^63-1] (section 1) and the oracle hands
// out only timestamps above every one it has seen (section 4). Once a client
// has written at 2^63-1 there is nothing left to hand out: the node must
// refuse (with an error, not a crash) rather than leave the range. Nor is
// that the client's fault: the requests are well-formed, so not error 12.
TEST_F(NodeTest, NoTimestampIsHandedOutAboveTheMaximum) {
  node().Put(R"("x")", "1", INT64_MAX);
  JsonValue begun = node().Call(R"({"type":"txn_begin"})");
  if (begun["type"].String() == "txn_begin_ok") {
    ADD_FAILURE() << "txn_begin handed out a timestamp above 2^63-1 (" << INT64_MAX
                  << " was already seen): " << begun.Canonical();
  } else {
    EXPECT_NE(begun["code"].Int(), 12) << begun.Canonical();
  }
  JsonValue written = node().Call(R"({"type":"write","key":"y","value":1})");
  EXPECT_EQ(written["type"].String(), "error") << written.Canonical();
  EXPECT_NE(written["code"].Int(), 12)
      << "a well-formed write is not malformed: " << written.Canonical();
}

TEST_F(NodeTest, CommitAtTheTopOfTheRangeIsNotBlamedOnTheClient) {
  node().Put(R"("x")", "1", INT64_MAX - 1);
  Txn txn = Txn::Begin(node());
  EXPECT_EQ(txn.start(), INT64_MAX);
  txn.Put(R"("y")", "1");
  // The commit needs a timestamp above the start; none is left.
  JsonValue reply = node().Call(txn.Body("txn_commit"));
  EXPECT_EQ(reply["type"].String(), "error") << reply.Canonical();
  EXPECT_NE(reply["code"].Int(), 12)
      << "a well-formed commit is not malformed: " << reply.Canonical();
}

// --- error 11: too many open transactions -----------------------------------

TEST_F(NodeTest, BeginPastTheActiveTransactionLimitIsError11) {
  // The node's limit is 10,000 open transactions. Pipelining the begins
  // keeps this fast: the replies are read after all requests are sent.
  constexpr int kLimit = 10000;
  for (int i = 0; i < kLimit; ++i) node().Send(R"({"type":"txn_begin"})");
  int refused = 0;
  for (int i = 0; i < kLimit; ++i) {
    // Read every reply even after a failure, so the session stays in step.
    if (node().NextReply()["type"].String() != "txn_begin_ok") ++refused;
  }
  EXPECT_EQ(refused, 0) << "begins below the limit were refused";
  std::string text = node().ExpectError(R"({"type":"txn_begin"})", 11);
  EXPECT_NE(text.find("10000"), std::string::npos) << "the text should name the limit: " << text;
  // Ending one frees a place.
  node().CallOk(R"({"type":"txn_abort","txn_id":1})", "txn_abort_ok");
  Txn::Begin(node());
}

}  // namespace
}  // namespace strata::testing
