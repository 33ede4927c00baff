// Txn: one interactive transaction (PROTOCOL.md section 4) driven through a
// NodeSession, so that tests read as the sequence of messages they send.
//
// Several Txn objects may share one session: the node is single-threaded,
// and interleaving the messages of two transactions is exactly what
// concurrency looks like at the protocol level. Every helper checks the
// reply type and reports a failure through GoogleTest, like NodeSession.
#ifndef STRATA_TESTS_NODE_TXN_CLIENT_H_
#define STRATA_TESTS_NODE_TXN_CLIENT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "json_value.h"
#include "node_session.h"

namespace strata::testing {

class Txn {
 public:
  // Sends txn_begin with the extra body members `options` (JSON members
  // text, e.g. R"("isolation":"snapshot","read_only":true)") and expects
  // txn_begin_ok with an integer txn_id and start_timestamp.
  static Txn Begin(NodeSession& node, std::string_view options = "");

  int64_t id() const { return id_; }
  int64_t start() const { return start_; }

  // The request body `{"type":type,"txn_id":id,members}`, for requests a
  // test wants to send itself (e.g. to expect an error).
  std::string Body(std::string_view type, std::string_view members = "") const;

  // `key` and `value` are JSON texts ("\"k\"", "1"). Each expects the
  // `<type>_ok` reply and returns its body.
  JsonValue Get(std::string_view key);
  JsonValue Put(std::string_view key, std::string_view value);
  JsonValue Delete(std::string_view key);
  // `range` holds the optional start/end/prefix/limit members.
  JsonValue Scan(std::string_view range = "");
  // Expects txn_commit_ok; returns its commit_timestamp (-1 if missing).
  int64_t Commit();
  // Expects error 30 from txn_commit; returns the error text.
  std::string CommitExpectingConflict();
  void Abort();

 private:
  Txn(NodeSession* node, int64_t id, int64_t start) : node_(node), id_(id), start_(start) {}

  NodeSession* node_;
  int64_t id_;
  int64_t start_;
};

// Expects error 14, naming the transaction, from every request that names
// `txn` (get, put, delete, scan, commit, abort): it has ended.
void ExpectTxnGone(NodeSession& node, const Txn& txn);

// The canonical text of a read reply's `value` ("null" for a missing key).
std::string ValueOf(const JsonValue& read_reply);

// The canonical text of the keys of a scan reply's items, e.g. `["a","b"]`,
// to compare what a scan saw without restating every version.
std::string ScanKeys(const JsonValue& scan_reply);

}  // namespace strata::testing

#endif  // STRATA_TESTS_NODE_TXN_CLIENT_H_
