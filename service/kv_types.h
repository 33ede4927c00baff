// Typed requests and replies of the etcd v3 key-value model.
//
// The service layer's vocabulary: the gRPC front end (server/) converts
// protobuf to and from these, so that the rules in kv_service.cc never see
// protobuf and a later front end (or the cluster) can call them directly.
// Field names and meanings follow etcd's rpc.proto; a revision is a
// strata timestamp (one per write transaction, dense, starting at 1).
#ifndef STRATA_SERVICE_KV_TYPES_H_
#define STRATA_SERVICE_KV_TYPES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace strata::service {

// A key as a client sees it at one revision (etcd's mvccpb.KeyValue).
struct KeyValue {
  std::string key;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;  // writes since creation; resets on delete
  std::string value;
  int64_t lease = 0;
};

struct ResponseHeader {
  int64_t revision = 0;
};

// A key range as etcd spells it: range_end empty = the single key; "\0" =
// every key >= key; otherwise [key, range_end).
struct KeySpan {
  std::string key;
  std::string range_end;
};

enum class SortOrder { kNone, kAscend, kDescend };
enum class SortTarget { kKey, kVersion, kCreate, kMod, kValue };

struct RangeRequest {
  KeySpan span;
  int64_t limit = 0;
  int64_t revision = 0;  // <= 0: the current revision
  SortOrder sort_order = SortOrder::kNone;
  SortTarget sort_target = SortTarget::kKey;
  bool serializable = false;
  bool keys_only = false;
  bool count_only = false;
  int64_t min_mod_revision = 0;
  int64_t max_mod_revision = 0;
  int64_t min_create_revision = 0;
  int64_t max_create_revision = 0;
  // Not etcd's (the strata-min-revision metadata): a serializable read on
  // a replicated member waits until that member has applied this revision,
  // so a client that passes the newest header revision it saw reads its
  // own writes from any member without going to the leader.
  int64_t min_revision = 0;
};

struct RangeResponse {
  ResponseHeader header;
  std::vector<KeyValue> kvs;
  bool more = false;
  int64_t count = 0;  // keys in the range, before limit and filters
};

struct PutRequest {
  std::string key;
  std::string value;
  int64_t lease = 0;
  bool prev_kv = false;
  bool ignore_value = false;
  bool ignore_lease = false;
};

struct PutResponse {
  ResponseHeader header;
  std::optional<KeyValue> prev_kv;
};

struct DeleteRangeRequest {
  KeySpan span;
  bool prev_kv = false;
};

struct DeleteRangeResponse {
  ResponseHeader header;
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
};

enum class CompareResult { kEqual, kGreater, kLess, kNotEqual };
enum class CompareTarget { kVersion, kCreate, kMod, kValue, kLease };

struct Compare {
  CompareResult result = CompareResult::kEqual;
  CompareTarget target = CompareTarget::kVersion;
  KeySpan span;
  int64_t number = 0;  // version, create/mod revision or lease, by target
  std::string value;   // target kValue
};

struct TxnRequest;
struct TxnResponse;

// One operation of a Txn branch (etcd's RequestOp); nested Txns allowed.
struct RequestOp {
  std::variant<RangeRequest, PutRequest, DeleteRangeRequest, std::shared_ptr<TxnRequest>> op;
};

struct ResponseOp {
  std::variant<RangeResponse, PutResponse, DeleteRangeResponse, std::shared_ptr<TxnResponse>>
      response;
};

struct TxnRequest {
  std::vector<Compare> compare;
  std::vector<RequestOp> success;
  std::vector<RequestOp> failure;
};

struct TxnResponse {
  ResponseHeader header;
  bool succeeded = false;
  std::vector<ResponseOp> responses;
};

struct CompactionRequest {
  int64_t revision = 0;
  bool physical = false;
};

struct CompactionResponse {
  ResponseHeader header;
};

// One change of a key at one revision, as a watcher receives it.
struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // a delete: key and mod_revision only
  std::optional<KeyValue> prev_kv;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_KV_TYPES_H_
