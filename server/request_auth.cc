#include "server/request_auth.h"

namespace strata::server {

namespace pb = etcdserverpb;
using service::Access;
using service::Reply;

namespace {
// Deeper nesting than any client builds; past it a request is refused
// rather than walked without end.
constexpr int kMaxTxnDepth = 64;
}  // namespace

Reply<std::string> RequestAuth::User(const grpc::ServerContextBase& ctx) const {
  if (!auth_->enabled()) return std::string();
  const auto& md = ctx.client_metadata();
  // clientv3 sends "token"; etcd's HTTP gateway, "authorization".
  for (const char* field : {"token", "authorization"}) {
    auto it = md.find(field);
    if (it != md.end())
      return auth_->UserOfToken(std::string(it->second.data(), it->second.size()));
  }
  if (client_cert_auth_) {
    // etcd: with --client-cert-auth, a verified certificate's common name
    // is the user when no token is given.
    auto ac = ctx.auth_context();
    if (ac && ac->IsPeerAuthenticated()) {
      auto cn = ac->FindPropertyValues("x509_common_name");
      if (!cn.empty()) return std::string(cn.front().data(), cn.front().size());
    }
  }
  return std::string();
}

RequestAuth::Denied RequestAuth::Range(const grpc::ServerContextBase& ctx,
                                       const pb::RangeRequest& r) const {
  return AsUser(ctx, [&](const std::string& user) {
    return auth_->Check(user, Access::kRead, r.key(), r.range_end());
  });
}

RequestAuth::Denied RequestAuth::Put(const grpc::ServerContextBase& ctx, const pb::PutRequest& r,
                                     LeaseCheck* later) const {
  return AsUser(ctx, [&](const std::string& user) { return PutAs(user, r, later); });
}

RequestAuth::Denied RequestAuth::DeleteRange(const grpc::ServerContextBase& ctx,
                                             const pb::DeleteRangeRequest& r) const {
  return AsUser(ctx, [&](const std::string& user) -> Denied {
    if (auto d = auth_->Check(user, Access::kWrite, r.key(), r.range_end())) return d;
    if (r.prev_kv()) return auth_->Check(user, Access::kRead, r.key(), r.range_end());
    return {};
  });
}

RequestAuth::Denied RequestAuth::Txn(const grpc::ServerContextBase& ctx, const pb::TxnRequest& r,
                                     LeaseCheck* later) const {
  return AsUser(ctx, [&](const std::string& user) { return TxnAs(user, r, 0, later); });
}

RequestAuth::Denied RequestAuth::LeaseRevoke(const grpc::ServerContextBase& ctx, int64_t lease,
                                             LeaseCheck* later) const {
  return AsUser(ctx, [&](const std::string& user) -> Denied {
    later->user = user;
    later->leases.push_back(lease);
    return {};
  });
}

RequestAuth::Denied RequestAuth::LeaseKeys(const std::string& user,
                                           const std::vector<std::string>& keys) const {
  for (const auto& key : keys) {
    if (auto d = auth_->Check(user, Access::kWrite, key, "")) return d;
  }
  return {};
}

RequestAuth::Denied RequestAuth::Authenticated(const grpc::ServerContextBase& ctx) const {
  return AsUser(ctx, [&](const std::string& user) -> Denied {
    if (user.empty()) return service::etcd_errors::UserEmpty();
    return {};
  });
}

RequestAuth::Denied RequestAuth::Admin(const grpc::ServerContextBase& ctx) const {
  return AsUser(ctx, [&](const std::string& user) { return auth_->CheckAdmin(user); });
}

RequestAuth::Denied RequestAuth::Keys(const grpc::ServerContextBase& ctx, Access access,
                                      const std::string& key, const std::string& range_end) const {
  return AsUser(
      ctx, [&](const std::string& user) { return auth_->Check(user, access, key, range_end); });
}

RequestAuth::Denied RequestAuth::PutAs(const std::string& user, const pb::PutRequest& r,
                                       LeaseCheck* later) const {
  if (auto d = auth_->Check(user, Access::kWrite, r.key(), "")) return d;
  if (r.prev_kv()) {
    if (auto d = auth_->Check(user, Access::kRead, r.key(), "")) return d;
  }
  // Attaching a key to a lease gives whoever may revoke the lease a way to
  // delete it: etcd asks that the user may write every key already on it.
  if (r.lease() != 0) {
    later->user = user;
    later->leases.push_back(r.lease());
  }
  return {};
}

RequestAuth::Denied RequestAuth::TxnAs(const std::string& user, const pb::TxnRequest& r, int depth,
                                       LeaseCheck* later) const {
  if (depth > kMaxTxnDepth) return service::etcd_errors::PermissionDenied();
  // A compare reads its key: a user must not learn a value through a
  // Txn's outcome that a Range would refuse.
  for (const auto& c : r.compare()) {
    if (auto d = auth_->Check(user, Access::kRead, c.key(), c.range_end())) return d;
  }
  for (const auto* ops : {&r.success(), &r.failure()}) {
    for (const auto& op : *ops) {
      Denied d;
      switch (op.request_case()) {
        case pb::RequestOp::kRequestRange:
          d = auth_->Check(user, Access::kRead, op.request_range().key(),
                           op.request_range().range_end());
          break;
        case pb::RequestOp::kRequestPut:
          d = PutAs(user, op.request_put(), later);
          break;
        case pb::RequestOp::kRequestDeleteRange: {
          const auto& del = op.request_delete_range();
          d = auth_->Check(user, Access::kWrite, del.key(), del.range_end());
          if (!d && del.prev_kv())
            d = auth_->Check(user, Access::kRead, del.key(), del.range_end());
          break;
        }
        case pb::RequestOp::kRequestTxn:
          d = TxnAs(user, op.request_txn(), depth + 1, later);
          break;
        default:
          break;
      }
      if (d) return d;
    }
  }
  return {};
}

}  // namespace strata::server
