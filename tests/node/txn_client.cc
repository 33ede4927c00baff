#include "txn_client.h"

#include <gtest/gtest.h>

namespace strata::testing {
namespace {

std::string ObjectWith(std::string_view head, std::string_view members) {
  std::string body = "{";
  body.append(head);
  if (!members.empty()) body.append(",").append(members);
  body.append("}");
  return body;
}

}  // namespace

Txn Txn::Begin(NodeSession& node, std::string_view options) {
  JsonValue reply = node.CallOk(ObjectWith(R"("type":"txn_begin")", options), "txn_begin_ok");
  std::optional<int64_t> id = reply["txn_id"].Int();
  std::optional<int64_t> start = reply["start_timestamp"].Int();
  EXPECT_TRUE(id && start) << "txn_begin_ok without integer txn_id and start_timestamp: "
                           << reply.Canonical();
  return Txn(&node, id.value_or(-1), start.value_or(-1));
}

std::string Txn::Body(std::string_view type, std::string_view members) const {
  std::string head = R"("type":")";
  head.append(type).append(R"(","txn_id":)").append(std::to_string(id_));
  return ObjectWith(head, members);
}

JsonValue Txn::Get(std::string_view key) {
  return node_->CallOk(Body("txn_get", R"("key":)" + std::string(key)), "txn_get_ok");
}

JsonValue Txn::Put(std::string_view key, std::string_view value) {
  std::string members = R"("key":)" + std::string(key) + R"(,"value":)" + std::string(value);
  return node_->CallOk(Body("txn_put", members), "txn_put_ok");
}

JsonValue Txn::Delete(std::string_view key) {
  return node_->CallOk(Body("txn_delete", R"("key":)" + std::string(key)), "txn_delete_ok");
}

JsonValue Txn::Scan(std::string_view range) {
  return node_->CallOk(Body("txn_scan", range), "txn_scan_ok");
}

int64_t Txn::Commit() {
  JsonValue reply = node_->CallOk(Body("txn_commit"), "txn_commit_ok");
  std::optional<int64_t> ts = reply["commit_timestamp"].Int();
  EXPECT_TRUE(ts) << "txn_commit_ok without an integer commit_timestamp: " << reply.Canonical();
  return ts.value_or(-1);
}

std::string Txn::CommitExpectingConflict() { return node_->ExpectError(Body("txn_commit"), 30); }

void Txn::Abort() { node_->CallOk(Body("txn_abort"), "txn_abort_ok"); }

void ExpectTxnGone(NodeSession& node, const Txn& txn) {
  const std::string bodies[] = {
      txn.Body("txn_get", R"("key":"x")"),
      txn.Body("txn_put", R"("key":"x","value":1)"),
      txn.Body("txn_delete", R"("key":"x")"),
      txn.Body("txn_scan"),
      txn.Body("txn_commit"),
      txn.Body("txn_abort"),
  };
  for (const std::string& body : bodies) {
    std::string text = node.ExpectError(body, 14);
    EXPECT_NE(text.find(std::to_string(txn.id())), std::string::npos)
        << "error 14 should name transaction " << txn.id() << ": " << text;
  }
}

std::string ValueOf(const JsonValue& read_reply) { return read_reply["value"].Canonical(); }

std::string ScanKeys(const JsonValue& scan_reply) {
  JsonValue items = scan_reply["items"];
  std::string keys = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) keys += ',';
    keys += items[i]["key"].Canonical();
  }
  return keys + "]";
}

}  // namespace strata::testing
