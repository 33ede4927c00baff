// Maelstrom's standard workloads (PROTOCOL.md section 4): lin-kv's read,
// write and cas, and the txn message of txn-rw-register and
// txn-list-append, as typed requests with the rules that give them meaning.
//
// The rules are written once here, for one node and for a cluster alike:
// what a cas refuses and with which error, what an append appends to, which
// keys a txn's answer depended on, what its reply echoes. A node shell only
// reads the values these rules ask for (from its engine, or across the
// shards) and commits the writes they return.
#ifndef STRATA_PROTOCOL_WORKLOAD_MESSAGES_H_
#define STRATA_PROTOCOL_WORKLOAD_MESSAGES_H_

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/body.h"
#include "strata/status.h"

namespace strata::protocol {

// A key's value as the workloads see it: its canonical JSON, or nothing (no
// version, or a deleted one).
using StoredValue = std::optional<std::string>;

struct KvReadRequest {
  std::string key;  // encoded (key_codec.h)
};

struct KvWriteRequest {
  std::string key;
  std::string value;  // canonical JSON
};

struct KvCasRequest {
  std::string key;
  std::string from;  // canonical JSON
  std::string to;
  bool create_if_not_exists = false;
};

// One [f, key, value] operation of a txn message.
struct TxnOp {
  enum class Kind { kRead, kWrite, kAppend };
  Kind kind = Kind::kRead;
  std::string key;       // encoded
  std::string key_json;  // as the client wrote it, echoed in the reply
  std::string arg_json;  // canonical
};

struct TxnOpsRequest {
  std::vector<TxnOp> ops;
  // The keys whose stored value an operation may need (reads and appends),
  // each once, in the order first named: what a shell reads in advance.
  std::vector<std::string> keys_to_read;
};

MaybeError ParseRequest(const Body& body, KvReadRequest* out);
MaybeError ParseRequest(const Body& body, KvWriteRequest* out);
MaybeError ParseRequest(const Body& body, KvCasRequest* out);
// Refuses more than kMaxTxnOps operations, an unknown f, a bad key and a
// value over kMaxValueBytes (error 12), before anything is read.
MaybeError ParseRequest(const Body& body, TxnOpsRequest* out);

// Error 20: `key` (encoded) has no value.
ErrorReply KeyMissing(std::string_view key);

// Why a cas may not write, given the key's current value: error 20 if it has
// none and the request may not create it, error 22 if it differs from
// `from`. nullopt: write `to`.
MaybeError CasRefusal(const KvCasRequest& request, const StoredValue& current);

// What running a txn message decided.
struct TxnOpsOutcome {
  // The reply's `txn`: each operation echoed, reads filled in.
  std::string completed;
  // The values to commit, by key (a later write of a key replaces an
  // earlier one; every value is present: the workloads never delete).
  std::map<std::string, std::optional<std::string>> writes;
  // The keys whose stored value the answer used (not those read only after
  // the message wrote them): a serializable commit validates these.
  std::set<std::string> observed;
};

// The stored value of a key at the transaction's snapshot, or the error
// that reading it met.
using ValueAtSnapshot = std::function<Result<StoredValue>(const std::string& key)>;

// Runs `request`'s operations in order over `stored` and the message's own
// earlier writes. Error 22 for an append to a value that is not a list;
// a read's error as ErrorFromStatus gives it.
MaybeError RunTxnOps(const TxnOpsRequest& request, const ValueAtSnapshot& stored,
                     TxnOpsOutcome* out);

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_WORKLOAD_MESSAGES_H_
