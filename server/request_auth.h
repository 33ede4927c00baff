// RequestAuth: who a gRPC call acts for (its token, or with client-cert
// auth its certificate's common name) and whether that user may do what
// the request asks, key by key, as etcd 3.4 checks (auth/store.go and
// etcdserver/apply_auth.go), with two deliberate differences:
//  - a Txn's nested Txns and its lease-attached Puts are checked too (etcd
//    3.4 checks neither);
//  - Compact needs an authenticated user (etcd 3.4 lets anyone compact).
// Every check is one atomic load while authentication is off.
#ifndef STRATA_SERVER_REQUEST_AUTH_H_
#define STRATA_SERVER_REQUEST_AUTH_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rpc.pb.h"
#include "service/auth_store.h"

namespace strata::server {

class RequestAuth {
 public:
  using Denied = std::optional<service::ServiceError>;

  RequestAuth(service::AuthStore* auth, bool client_cert_auth)
      : auth_(auth), client_cert_auth_(client_cert_auth) {}

  // What is left to check once the keys attached to some leases are known.
  // etcd asks that whoever attaches a key to a lease, or revokes one, may
  // write every key already on it (revoking deletes them). Those keys live
  // with the leases, which over a cluster are read asynchronously, so the
  // server looks them up (EtcdServer::Impl::CheckLeaseKeys) and checks
  // them with LeaseKeys.
  struct LeaseCheck {
    std::string user;
    std::vector<int64_t> leases;
  };

  bool enabled() const { return auth_->enabled(); }
  // The call's user: "" without a token (or with authentication off);
  // InvalidAuthToken for a token that is unknown or lapsed.
  service::Reply<std::string> User(const grpc::ServerContextBase& ctx) const;

  Denied Range(const grpc::ServerContextBase& ctx, const etcdserverpb::RangeRequest& r) const;
  Denied Put(const grpc::ServerContextBase& ctx, const etcdserverpb::PutRequest& r,
             LeaseCheck* later) const;
  Denied DeleteRange(const grpc::ServerContextBase& ctx,
                     const etcdserverpb::DeleteRangeRequest& r) const;
  Denied Txn(const grpc::ServerContextBase& ctx, const etcdserverpb::TxnRequest& r,
             LeaseCheck* later) const;
  Denied LeaseRevoke(const grpc::ServerContextBase& ctx, int64_t lease, LeaseCheck* later) const;
  // The rest of a LeaseCheck: `user` may write every one of `keys`.
  Denied LeaseKeys(const std::string& user, const std::vector<std::string>& keys) const;
  Denied Authenticated(const grpc::ServerContextBase& ctx) const;
  Denied Admin(const grpc::ServerContextBase& ctx) const;
  // One range of keys, for the calls that name one (strata.v1, Watch).
  Denied Keys(const grpc::ServerContextBase& ctx, service::Access access, const std::string& key,
              const std::string& range_end) const;

  // Runs `check` as the call's user: nothing to check with authentication
  // off, and a bad token is refused before any key is looked at.
  template <typename Check>
  Denied AsUser(const grpc::ServerContextBase& ctx, Check check) const {
    if (!auth_->enabled()) return {};
    auto who = User(ctx);
    if (!who.ok()) return who.error();
    return check(who.value());
  }
  Denied Keys(const std::string& user, service::Access access, const std::string& key,
              const std::string& range_end) const {
    return auth_->Check(user, access, key, range_end);
  }

 private:
  Denied PutAs(const std::string& user, const etcdserverpb::PutRequest& r, LeaseCheck* later) const;
  Denied TxnAs(const std::string& user, const etcdserverpb::TxnRequest& r, int depth,
               LeaseCheck* later) const;

  service::AuthStore* auth_;
  const bool client_cert_auth_;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_REQUEST_AUTH_H_
