#include "protocol/workload_messages.h"

#include "protocol/canonical_json.h"
#include "protocol/key_codec.h"
#include "protocol/limits.h"

namespace strata::protocol {

namespace {

// `list` (a canonical JSON array, or nothing) with canonical `item` added at
// the end. Both are canonical (canonical_json.h), so this is text surgery,
// not a reparse.
std::string AppendToList(const StoredValue& list, std::string_view item) {
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

MaybeError ParseTxnOp(simdjson::dom::element element, TxnOp* op) {
  simdjson::dom::array parts;
  std::string_view f;
  if (element.get_array().get(parts) || parts.size() != 3 || parts.at(0).get_string().get(f)) {
    return Malformed("each operation in 'txn' must be [f, key, value] with f a string");
  }
  if (f == "r") {
    op->kind = TxnOp::Kind::kRead;
  } else if (f == "w") {
    op->kind = TxnOp::Kind::kWrite;
  } else if (f == "append") {
    op->kind = TxnOp::Kind::kAppend;
  } else {
    return Malformed("unknown operation '" + Abbreviate(f) +
                     "' in 'txn' (expected r, w or append)");
  }
  simdjson::dom::element key = parts.at(1).value_unsafe();
  if (auto err = EncodeKeyElement(key, "txn key", &op->key)) return err;
  op->key_json = simdjson::minify(key);
  AppendCanonicalJson(parts.at(2).value_unsafe(), &op->arg_json);
  if (op->arg_json.size() > kMaxValueBytes) {
    return Malformed("a value in 'txn' exceeds " + std::to_string(kMaxValueBytes) + " bytes");
  }
  return std::nullopt;
}

std::string_view NameOf(TxnOp::Kind kind) {
  switch (kind) {
    case TxnOp::Kind::kRead:
      return "r";
    case TxnOp::Kind::kWrite:
      return "w";
    case TxnOp::Kind::kAppend:
      return "append";
  }
  return "?";
}

}  // namespace

MaybeError ParseRequest(const Body& body, KvReadRequest* out) {
  return body.RequiredKey("key", &out->key);
}

MaybeError ParseRequest(const Body& body, KvWriteRequest* out) {
  if (auto err = body.RequiredKey("key", &out->key)) return err;
  return body.RequiredValue("value", &out->value);
}

MaybeError ParseRequest(const Body& body, KvCasRequest* out) {
  if (auto err = body.RequiredKey("key", &out->key)) return err;
  if (auto err = body.RequiredValue("from", &out->from)) return err;
  if (auto err = body.RequiredValue("to", &out->to)) return err;
  std::optional<bool> create;
  if (auto err = body.OptionalBool("create_if_not_exists", &create)) return err;
  out->create_if_not_exists = create.value_or(false);
  return std::nullopt;
}

MaybeError ParseRequest(const Body& body, TxnOpsRequest* out) {
  auto ops_element = body.Find("txn");
  simdjson::dom::array ops;
  if (!ops_element || ops_element->get_array().get(ops)) {
    return Malformed("field 'txn' is required and must be an array of [f, key, value] operations");
  }
  if (ops.size() > kMaxTxnOps) {
    return Malformed("field 'txn' has " + std::to_string(ops.size()) +
                     " operations; the limit is " + std::to_string(kMaxTxnOps));
  }
  std::set<std::string_view> named;
  out->ops.reserve(ops.size());
  for (simdjson::dom::element element : ops) {
    TxnOp op;
    if (auto err = ParseTxnOp(element, &op)) return err;
    out->ops.push_back(std::move(op));
  }
  // After the vector stops growing, so the views into it stay valid.
  for (const TxnOp& op : out->ops) {
    if (op.kind != TxnOp::Kind::kWrite && named.insert(op.key).second) {
      out->keys_to_read.push_back(op.key);
    }
  }
  return std::nullopt;
}

ErrorReply KeyMissing(std::string_view key) {
  return ErrorReply{ErrorCode::kKeyDoesNotExist,
                    "key " + Abbreviate(KeyText(key)) + " does not exist"};
}

MaybeError CasRefusal(const KvCasRequest& request, const StoredValue& current) {
  if (!current) {
    if (request.create_if_not_exists) return std::nullopt;
    return KeyMissing(request.key);
  }
  if (*current == request.from) return std::nullopt;
  return ErrorReply{ErrorCode::kPreconditionFailed,
                    "cas on key " + Abbreviate(KeyText(request.key)) + " expected " +
                        Abbreviate(request.from) + " but found " + Abbreviate(*current)};
}

MaybeError RunTxnOps(const TxnOpsRequest& request, const ValueAtSnapshot& stored,
                     TxnOpsOutcome* out) {
  // The value an operation sees: the message's own write if it made one,
  // else the stored one (which the answer then depends on).
  auto current = [&](const std::string& key, StoredValue* value) -> MaybeError {
    if (auto own = out->writes.find(key); own != out->writes.end()) {
      *value = own->second;
      return std::nullopt;
    }
    Result<StoredValue> read = stored(key);
    if (!read.ok()) return ErrorFromStatus(read.status());
    out->observed.insert(key);
    *value = std::move(*read);
    return std::nullopt;
  };
  JsonWriter reply(&out->completed);
  reply.BeginArray();
  for (const TxnOp& op : request.ops) {
    reply.BeginArray().String(NameOf(op.kind)).Raw(op.key_json);
    if (op.kind == TxnOp::Kind::kWrite) {
      out->writes[op.key] = op.arg_json;
    } else {
      StoredValue value;
      if (auto err = current(op.key, &value)) return err;
      if (op.kind == TxnOp::Kind::kRead) {
        value ? reply.Raw(*value) : reply.Null();
        reply.EndArray();
        continue;
      }
      if (value && value->front() != '[') {
        return ErrorReply{ErrorCode::kPreconditionFailed,
                          "cannot append to key " + op.key_json + ": its value is not a list"};
      }
      out->writes[op.key] = AppendToList(value, op.arg_json);
    }
    reply.Raw(op.arg_json).EndArray();
  }
  reply.EndArray();
  return std::nullopt;
}

}  // namespace strata::protocol
