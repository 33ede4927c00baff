#include "server/proto_convert.h"

#include <memory>

namespace strata::server {

namespace pb = etcdserverpb;
using namespace strata::service;  // NOLINT: this file is all conversions

namespace {

KeySpan Span(const std::string& key, const std::string& range_end) { return {key, range_end}; }

}  // namespace

RangeRequest FromProto(const pb::RangeRequest& p) {
  RangeRequest r;
  r.span = Span(p.key(), p.range_end());
  r.limit = p.limit();
  r.revision = p.revision();
  switch (p.sort_order()) {
    case pb::RangeRequest::ASCEND:
      r.sort_order = SortOrder::kAscend;
      break;
    case pb::RangeRequest::DESCEND:
      r.sort_order = SortOrder::kDescend;
      break;
    default:
      r.sort_order = SortOrder::kNone;
  }
  switch (p.sort_target()) {
    case pb::RangeRequest::VERSION:
      r.sort_target = SortTarget::kVersion;
      break;
    case pb::RangeRequest::CREATE:
      r.sort_target = SortTarget::kCreate;
      break;
    case pb::RangeRequest::MOD:
      r.sort_target = SortTarget::kMod;
      break;
    case pb::RangeRequest::VALUE:
      r.sort_target = SortTarget::kValue;
      break;
    default:
      r.sort_target = SortTarget::kKey;
  }
  r.serializable = p.serializable();
  r.keys_only = p.keys_only();
  r.count_only = p.count_only();
  r.min_mod_revision = p.min_mod_revision();
  r.max_mod_revision = p.max_mod_revision();
  r.min_create_revision = p.min_create_revision();
  r.max_create_revision = p.max_create_revision();
  return r;
}

PutRequest FromProto(const pb::PutRequest& p) {
  PutRequest r;
  r.key = p.key();
  r.value = p.value();
  r.lease = p.lease();
  r.prev_kv = p.prev_kv();
  r.ignore_value = p.ignore_value();
  r.ignore_lease = p.ignore_lease();
  return r;
}

DeleteRangeRequest FromProto(const pb::DeleteRangeRequest& p) {
  DeleteRangeRequest r;
  r.span = Span(p.key(), p.range_end());
  r.prev_kv = p.prev_kv();
  return r;
}

namespace {

Compare CompareFromProto(const pb::Compare& p) {
  Compare c;
  c.span = Span(p.key(), p.range_end());
  switch (p.result()) {
    case pb::Compare::GREATER:
      c.result = CompareResult::kGreater;
      break;
    case pb::Compare::LESS:
      c.result = CompareResult::kLess;
      break;
    case pb::Compare::NOT_EQUAL:
      c.result = CompareResult::kNotEqual;
      break;
    default:
      c.result = CompareResult::kEqual;
  }
  // As etcd: a target_union that does not match the target compares with 0.
  switch (p.target()) {
    case pb::Compare::CREATE:
      c.target = CompareTarget::kCreate;
      if (p.has_create_revision()) c.number = p.create_revision();
      break;
    case pb::Compare::MOD:
      c.target = CompareTarget::kMod;
      if (p.has_mod_revision()) c.number = p.mod_revision();
      break;
    case pb::Compare::VALUE:
      c.target = CompareTarget::kValue;
      if (p.has_value()) c.value = p.value();
      break;
    case pb::Compare::LEASE:
      c.target = CompareTarget::kLease;
      if (p.has_lease()) c.number = p.lease();
      break;
    default:
      c.target = CompareTarget::kVersion;
      if (p.has_version()) c.number = p.version();
  }
  return c;
}

std::vector<RequestOp> OpsFromProto(const google::protobuf::RepeatedPtrField<pb::RequestOp>& ops) {
  std::vector<RequestOp> out;
  out.reserve(ops.size());
  for (const auto& op : ops) {
    switch (op.request_case()) {
      case pb::RequestOp::kRequestRange:
        out.push_back({FromProto(op.request_range())});
        break;
      case pb::RequestOp::kRequestPut:
        out.push_back({FromProto(op.request_put())});
        break;
      case pb::RequestOp::kRequestDeleteRange:
        out.push_back({FromProto(op.request_delete_range())});
        break;
      case pb::RequestOp::kRequestTxn:
        out.push_back({std::make_shared<TxnRequest>(FromProto(op.request_txn()))});
        break;
      default:  // an empty op: CheckTxnRequest refuses it as etcd does
        out.push_back({std::shared_ptr<TxnRequest>()});
    }
  }
  return out;
}

}  // namespace

TxnRequest FromProto(const pb::TxnRequest& p) {
  TxnRequest t;
  t.compare.reserve(p.compare_size());
  for (const auto& c : p.compare()) t.compare.push_back(CompareFromProto(c));
  t.success = OpsFromProto(p.success());
  t.failure = OpsFromProto(p.failure());
  return t;
}

WatchCreateRequest FromProto(const pb::WatchCreateRequest& p) {
  WatchCreateRequest r;
  r.span = Span(p.key(), p.range_end());
  r.start_revision = p.start_revision();
  r.progress_notify = p.progress_notify();
  for (int f : p.filters()) {
    if (f == pb::WatchCreateRequest::NOPUT) r.no_put = true;
    if (f == pb::WatchCreateRequest::NODELETE) r.no_delete = true;
  }
  r.prev_kv = p.prev_kv();
  r.fragment = p.fragment();
  r.watch_id = p.watch_id();
  return r;
}

void ToProto(const HeaderIdentity& id, const ResponseHeader& h, pb::ResponseHeader* p) {
  p->set_cluster_id(id.cluster_id);
  p->set_member_id(id.member_id);
  p->set_raft_term(id.raft_term);
  p->set_revision(h.revision);
}

void ToProto(const KeyValue& kv, mvccpb::KeyValue* p) {
  p->set_key(kv.key);
  p->set_create_revision(kv.create_revision);
  p->set_mod_revision(kv.mod_revision);
  p->set_version(kv.version);
  p->set_value(kv.value);
  p->set_lease(kv.lease);
}

void ToProto(const RangeResponse& r, pb::RangeResponse* p) {
  p->mutable_header()->set_revision(r.header.revision);
  p->mutable_kvs()->Reserve(static_cast<int>(r.kvs.size()));
  for (const auto& kv : r.kvs) ToProto(kv, p->add_kvs());
  p->set_more(r.more);
  p->set_count(r.count);
}

void ToProto(const PutResponse& r, pb::PutResponse* p) {
  p->mutable_header()->set_revision(r.header.revision);
  if (r.prev_kv) ToProto(*r.prev_kv, p->mutable_prev_kv());
}

void ToProto(const DeleteRangeResponse& r, pb::DeleteRangeResponse* p) {
  p->mutable_header()->set_revision(r.header.revision);
  p->set_deleted(r.deleted);
  for (const auto& kv : r.prev_kvs) ToProto(kv, p->add_prev_kvs());
}

void ToProto(const TxnResponse& r, pb::TxnResponse* p) {
  p->mutable_header()->set_revision(r.header.revision);
  p->set_succeeded(r.succeeded);
  for (const auto& op : r.responses) {
    auto* out = p->add_responses();
    if (auto* x = std::get_if<RangeResponse>(&op.response)) {
      ToProto(*x, out->mutable_response_range());
    } else if (auto* y = std::get_if<PutResponse>(&op.response)) {
      ToProto(*y, out->mutable_response_put());
    } else if (auto* z = std::get_if<DeleteRangeResponse>(&op.response)) {
      ToProto(*z, out->mutable_response_delete_range());
    } else if (auto* t = std::get_if<std::shared_ptr<TxnResponse>>(&op.response)) {
      ToProto(**t, out->mutable_response_txn());
    }
  }
}

void ToProto(const HeaderIdentity& id, const WatchResponse& r, pb::WatchResponse* p) {
  ToProto(id, r.header, p->mutable_header());
  p->set_watch_id(r.watch_id);
  p->set_created(r.created);
  p->set_canceled(r.canceled);
  p->set_compact_revision(r.compact_revision);
  p->set_cancel_reason(r.cancel_reason);
  p->set_fragment(r.fragment);
  for (const auto& e : r.events) {
    auto* pe = p->add_events();
    pe->set_type(e.type == Event::Type::kPut ? mvccpb::Event::PUT : mvccpb::Event::DELETE);
    ToProto(e.kv, pe->mutable_kv());
    if (e.prev_kv) ToProto(*e.prev_kv, pe->mutable_prev_kv());
  }
}

// --- the other way: requests to protobuf, responses from it ---

void ToProto(const RangeRequest& r, pb::RangeRequest* p) {
  p->set_key(r.span.key);
  p->set_range_end(r.span.range_end);
  p->set_limit(r.limit);
  p->set_revision(r.revision);
  switch (r.sort_order) {
    case SortOrder::kAscend:
      p->set_sort_order(pb::RangeRequest::ASCEND);
      break;
    case SortOrder::kDescend:
      p->set_sort_order(pb::RangeRequest::DESCEND);
      break;
    case SortOrder::kNone:
      p->set_sort_order(pb::RangeRequest::NONE);
  }
  switch (r.sort_target) {
    case SortTarget::kVersion:
      p->set_sort_target(pb::RangeRequest::VERSION);
      break;
    case SortTarget::kCreate:
      p->set_sort_target(pb::RangeRequest::CREATE);
      break;
    case SortTarget::kMod:
      p->set_sort_target(pb::RangeRequest::MOD);
      break;
    case SortTarget::kValue:
      p->set_sort_target(pb::RangeRequest::VALUE);
      break;
    case SortTarget::kKey:
      p->set_sort_target(pb::RangeRequest::KEY);
  }
  p->set_serializable(r.serializable);
  p->set_keys_only(r.keys_only);
  p->set_count_only(r.count_only);
  p->set_min_mod_revision(r.min_mod_revision);
  p->set_max_mod_revision(r.max_mod_revision);
  p->set_min_create_revision(r.min_create_revision);
  p->set_max_create_revision(r.max_create_revision);
}

void ToProto(const PutRequest& r, pb::PutRequest* p) {
  p->set_key(r.key);
  p->set_value(r.value);
  p->set_lease(r.lease);
  p->set_prev_kv(r.prev_kv);
  p->set_ignore_value(r.ignore_value);
  p->set_ignore_lease(r.ignore_lease);
}

void ToProto(const DeleteRangeRequest& r, pb::DeleteRangeRequest* p) {
  p->set_key(r.span.key);
  p->set_range_end(r.span.range_end);
  p->set_prev_kv(r.prev_kv);
}

namespace {

void CompareToProto(const Compare& c, pb::Compare* p) {
  p->set_key(c.span.key);
  p->set_range_end(c.span.range_end);
  switch (c.result) {
    case CompareResult::kGreater:
      p->set_result(pb::Compare::GREATER);
      break;
    case CompareResult::kLess:
      p->set_result(pb::Compare::LESS);
      break;
    case CompareResult::kNotEqual:
      p->set_result(pb::Compare::NOT_EQUAL);
      break;
    case CompareResult::kEqual:
      p->set_result(pb::Compare::EQUAL);
  }
  switch (c.target) {
    case CompareTarget::kCreate:
      p->set_target(pb::Compare::CREATE);
      p->set_create_revision(c.number);
      break;
    case CompareTarget::kMod:
      p->set_target(pb::Compare::MOD);
      p->set_mod_revision(c.number);
      break;
    case CompareTarget::kValue:
      p->set_target(pb::Compare::VALUE);
      p->set_value(c.value);
      break;
    case CompareTarget::kLease:
      p->set_target(pb::Compare::LEASE);
      p->set_lease(c.number);
      break;
    case CompareTarget::kVersion:
      p->set_target(pb::Compare::VERSION);
      p->set_version(c.number);
  }
}

void OpsToProto(const std::vector<RequestOp>& ops,
                google::protobuf::RepeatedPtrField<pb::RequestOp>* out) {
  for (const RequestOp& op : ops) {
    pb::RequestOp* p = out->Add();
    if (const auto* range = std::get_if<RangeRequest>(&op.op)) {
      ToProto(*range, p->mutable_request_range());
    } else if (const auto* put = std::get_if<PutRequest>(&op.op)) {
      ToProto(*put, p->mutable_request_put());
    } else if (const auto* del = std::get_if<DeleteRangeRequest>(&op.op)) {
      ToProto(*del, p->mutable_request_delete_range());
    } else if (const auto* txn = std::get_if<std::shared_ptr<TxnRequest>>(&op.op); txn && *txn) {
      ToProto(**txn, p->mutable_request_txn());
    }  // an empty op stays empty, as it came
  }
}

}  // namespace

void ToProto(const TxnRequest& r, pb::TxnRequest* p) {
  for (const Compare& c : r.compare) CompareToProto(c, p->add_compare());
  OpsToProto(r.success, p->mutable_success());
  OpsToProto(r.failure, p->mutable_failure());
}

KeyValue FromProto(const mvccpb::KeyValue& p) {
  return KeyValue{p.key(),     p.create_revision(), p.mod_revision(),
                  p.version(), p.value(),           p.lease()};
}

RangeResponse FromProto(const pb::RangeResponse& p) {
  RangeResponse r;
  r.header.revision = p.header().revision();
  r.kvs.reserve(p.kvs_size());
  for (const auto& kv : p.kvs()) r.kvs.push_back(FromProto(kv));
  r.more = p.more();
  r.count = p.count();
  return r;
}

PutResponse FromProto(const pb::PutResponse& p) {
  PutResponse r;
  r.header.revision = p.header().revision();
  if (p.has_prev_kv()) r.prev_kv = FromProto(p.prev_kv());
  return r;
}

DeleteRangeResponse FromProto(const pb::DeleteRangeResponse& p) {
  DeleteRangeResponse r;
  r.header.revision = p.header().revision();
  r.deleted = p.deleted();
  for (const auto& kv : p.prev_kvs()) r.prev_kvs.push_back(FromProto(kv));
  return r;
}

TxnResponse FromProto(const pb::TxnResponse& p) {
  TxnResponse r;
  r.header.revision = p.header().revision();
  r.succeeded = p.succeeded();
  for (const auto& op : p.responses()) {
    switch (op.response_case()) {
      case pb::ResponseOp::kResponseRange:
        r.responses.push_back({FromProto(op.response_range())});
        break;
      case pb::ResponseOp::kResponsePut:
        r.responses.push_back({FromProto(op.response_put())});
        break;
      case pb::ResponseOp::kResponseDeleteRange:
        r.responses.push_back({FromProto(op.response_delete_range())});
        break;
      default:
        r.responses.push_back({std::make_shared<TxnResponse>(FromProto(op.response_txn()))});
    }
  }
  return r;
}

std::string GoGrpcErrorText(const ServiceError& e) {
  // grpc-go's codes.Code.String().
  static constexpr const char* kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  const auto code = static_cast<size_t>(e.code);
  const std::string name =
      code < std::size(kNames) ? kNames[code] : "Code(" + std::to_string(code) + ")";
  return "rpc error: code = " + name + " desc = " + e.message;
}

grpc::Status ToGrpc(const ServiceError& e) {
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(e.code)), e.message);
}

}  // namespace strata::server
