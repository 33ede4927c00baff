#include "node/workload_handlers.h"

#include <string>
#include <vector>

#include "node/txn_handlers.h"
#include "protocol/canonical_json.h"
#include "protocol/limits.h"

namespace strata::node {

using protocol::ErrorCode;
using protocol::ErrorFromStatus;
using protocol::ErrorReply;
using protocol::Malformed;

namespace {

ErrorReply KeyMissing(std::string_view field_text) {
  return ErrorReply{ErrorCode::kKeyDoesNotExist,
                    "key " + std::string(field_text) + " does not exist"};
}

// Begins a single-request transaction at the node's isolation level.
MaybeError BeginWorkloadTxn(Services& services, std::optional<Transaction>* txn) {
  TxnOptions options;
  options.isolation = services.default_isolation;
  Result<Transaction> begun = services.db->Begin(options);
  if (!begun.ok()) return ErrorFromStatus(begun.status());
  txn->emplace(std::move(*begun));
  return std::nullopt;
}

MaybeError CommitWorkloadTxn(Transaction& txn) {
  Result<Timestamp> committed = txn.Commit();
  if (!committed.ok()) return CommitError(txn, committed.status());
  return std::nullopt;
}

// The stored value of `key` in `txn`, or nullopt if it has none.
Result<std::optional<std::string>> ReadValue(Transaction& txn, std::string_view key) {
  Result<ReadResult> read = txn.Get(key);
  if (!read.ok()) return read.status();
  if (!read->found || read->deleted) return std::optional<std::string>();
  return std::optional<std::string>(std::move(read->value));
}

std::string KeyJson(const Body& body) {
  return protocol::Abbreviate(simdjson::to_string(*body.Find("key")));
}

// Appends canonical JSON `item` to the canonical JSON array `list`. Both are
// canonical (canonical_json.h), so this is text surgery, not a reparse.
std::string AppendToList(const std::optional<std::string>& list, std::string_view item) {
  std::string out;
  if (!list || *list == "[]") {
    out.reserve(item.size() + 2);
    out.append("[").append(item).append("]");
  } else {
    out.reserve(list->size() + item.size() + 1);
    out.append(*list, 0, list->size() - 1).append(",").append(item).append("]");
  }
  return out;
}

}  // namespace

MaybeError HandleKvRead(Services& services, const Body& body, JsonWriter* reply) {
  std::string key;
  if (auto err = body.RequiredKey("key", &key)) return err;
  // The newest committed version: a single node applies commits in order,
  // so this read is linearizable.
  Result<ReadResult> read = services.store->Get(key);
  if (!read.ok()) return ErrorFromStatus(read.status());
  if (!read->found || read->deleted) return KeyMissing(KeyJson(body));
  reply->Key("value").Raw(read->value);
  return std::nullopt;
}

MaybeError HandleKvWrite(Services& services, const Body& body, JsonWriter*) {
  std::string key, value;
  if (auto err = body.RequiredKey("key", &key)) return err;
  if (auto err = body.RequiredValue("value", &value)) return err;
  std::optional<Transaction> txn;
  if (auto err = BeginWorkloadTxn(services, &txn)) return err;
  if (Status s = txn->Put(key, value); !s.ok()) return ErrorFromStatus(s);
  return CommitWorkloadTxn(*txn);
}

MaybeError HandleKvCas(Services& services, const Body& body, JsonWriter*) {
  std::string key, from, to;
  if (auto err = body.RequiredKey("key", &key)) return err;
  if (auto err = body.RequiredValue("from", &from)) return err;
  if (auto err = body.RequiredValue("to", &to)) return err;
  std::optional<bool> create;
  if (auto err = body.OptionalBool("create_if_not_exists", &create)) return err;

  std::optional<Transaction> txn;
  if (auto err = BeginWorkloadTxn(services, &txn)) return err;
  Result<std::optional<std::string>> current = ReadValue(*txn, key);
  if (!current.ok()) return ErrorFromStatus(current.status());
  if (!*current && !create.value_or(false)) return KeyMissing(KeyJson(body));
  if (*current && **current != from) {
    return ErrorReply{ErrorCode::kPreconditionFailed,
                      "cas on key " + KeyJson(body) + " expected " + protocol::Abbreviate(from) +
                          " but found " + protocol::Abbreviate(**current)};
  }
  if (Status s = txn->Put(key, to); !s.ok()) return ErrorFromStatus(s);
  return CommitWorkloadTxn(*txn);
}

MaybeError HandleTxnOps(Services& services, const Body& body, JsonWriter* reply) {
  auto ops_element = body.Find("txn");
  simdjson::dom::array ops;
  if (!ops_element || ops_element->get_array().get(ops)) {
    return Malformed("field 'txn' is required and must be an array of [f, key, value] operations");
  }
  if (ops.size() > protocol::kMaxTxnOps) {
    return Malformed("field 'txn' has " + std::to_string(ops.size()) +
                     " operations; the limit is " + std::to_string(protocol::kMaxTxnOps));
  }
  std::optional<Transaction> txn;
  if (auto err = BeginWorkloadTxn(services, &txn)) return err;

  // The reply echoes each operation with reads filled in.
  std::string completed;
  JsonWriter out(&completed);
  out.BeginArray();
  for (simdjson::dom::element op : ops) {
    simdjson::dom::array parts;
    std::string_view f;
    if (op.get_array().get(parts) || parts.size() != 3 || parts.at(0).get_string().get(f)) {
      return Malformed("each operation in 'txn' must be [f, key, value] with f a string");
    }
    simdjson::dom::element key_element = parts.at(1).value_unsafe();
    simdjson::dom::element arg = parts.at(2).value_unsafe();
    std::string key;
    if (auto err = protocol::EncodeKeyElement(key_element, "txn key", &key)) return err;
    std::string arg_json;
    protocol::AppendCanonicalJson(arg, &arg_json);
    if (arg_json.size() > protocol::kMaxValueBytes) {
      return Malformed("a value in 'txn' exceeds " + std::to_string(protocol::kMaxValueBytes) +
                       " bytes");
    }

    out.BeginArray().String(f).Raw(simdjson::to_string(key_element));
    if (f == "r") {
      Result<std::optional<std::string>> value = ReadValue(*txn, key);
      if (!value.ok()) return ErrorFromStatus(value.status());
      if (*value) {
        out.Raw(**value);
      } else {
        out.Null();
      }
    } else if (f == "w" || f == "append") {
      std::string stored = arg_json;
      if (f == "append") {
        Result<std::optional<std::string>> list = ReadValue(*txn, key);
        if (!list.ok()) return ErrorFromStatus(list.status());
        if (*list && (*list)->front() != '[') {
          return ErrorReply{ErrorCode::kPreconditionFailed, "cannot append to key " +
                                                                simdjson::to_string(key_element) +
                                                                ": its value is not a list"};
        }
        stored = AppendToList(*list, arg_json);
      }
      if (Status s = txn->Put(key, stored); !s.ok()) return ErrorFromStatus(s);
      out.Raw(arg_json);
    } else {
      return Malformed("unknown operation '" + protocol::Abbreviate(f) +
                       "' in 'txn' (expected r, w or append)");
    }
    out.EndArray();
  }
  out.EndArray();
  if (auto err = CommitWorkloadTxn(*txn)) return err;
  reply->Key("txn").Raw(completed);
  return std::nullopt;
}

}  // namespace strata::node
