#include "server/auth_service.h"

#include <deque>
#include <functional>
#include <thread>

#include "base/mutex.h"
#include "rpc.grpc.pb.h"
#include "server/server_state.h"

namespace strata::server {
namespace {

namespace pb = etcdserverpb;
using service::ServiceError;

constexpr size_t kMaxWaiting = 64;

// One thread running queued calls in order; a full queue refuses.
class AuthWorker {
 public:
  AuthWorker() : thread_([this] { Run(); }) {}
  ~AuthWorker() {
    {
      MutexLock lock(mu_);
      stopping_ = true;
    }
    cv_.NotifyOne();
    thread_.join();
  }
  bool Post(std::function<void()> task) {
    {
      MutexLock lock(mu_);
      if (stopping_ || queue_.size() >= kMaxWaiting) return false;
      queue_.push_back(std::move(task));
    }
    cv_.NotifyOne();
    return true;
  }

 private:
  // Drains what was queued before stopping: each task finishes its call.
  void Run() {
    UniqueLock lock(mu_);
    for (;;) {
      cv_.Wait(lock, [&]() STRATA_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> queue_ STRATA_GUARDED_BY(mu_);
  bool stopping_ STRATA_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class AuthImpl final : public pb::Auth::CallbackService {
 public:
  explicit AuthImpl(EtcdServer::Impl* s) : s_(s) {}

  grpc::ServerUnaryReactor* AuthEnable(grpc::CallbackServerContext* ctx,
                                       const pb::AuthEnableRequest*,
                                       pb::AuthEnableResponse* resp) override {
    return Admin(ctx, "AuthEnable", resp, [this] { return s_->auth->Enable(); });
  }
  grpc::ServerUnaryReactor* AuthDisable(grpc::CallbackServerContext* ctx,
                                        const pb::AuthDisableRequest*,
                                        pb::AuthDisableResponse* resp) override {
    return Admin(ctx, "AuthDisable", resp, [this] { return s_->auth->Disable(); });
  }
  grpc::ServerUnaryReactor* Authenticate(grpc::CallbackServerContext*,
                                         const pb::AuthenticateRequest* req,
                                         pb::AuthenticateResponse* resp) override {
    return Run("Authenticate", resp, [this, req, resp]() -> std::optional<ServiceError> {
      auto token = s_->auth->Authenticate(req->name(), req->password());
      if (!token.ok()) return token.error();
      resp->set_token(token.value());
      return std::nullopt;
    });
  }
  grpc::ServerUnaryReactor* UserAdd(grpc::CallbackServerContext* ctx,
                                    const pb::AuthUserAddRequest* req,
                                    pb::AuthUserAddResponse* resp) override {
    return Admin(ctx, "UserAdd", resp, [this, req] {
      return s_->auth->UserAdd(req->name(), req->password(), req->options().no_password());
    });
  }
  grpc::ServerUnaryReactor* UserGet(grpc::CallbackServerContext* ctx,
                                    const pb::AuthUserGetRequest* req,
                                    pb::AuthUserGetResponse* resp) override {
    // etcd: a user may look at itself without being an admin.
    auto denied = s_->request_auth->AsUser(*ctx, [&](const std::string& user) {
      return user == req->name() ? std::nullopt : s_->auth->CheckAdmin(user);
    });
    return Run("UserGet", resp, [this, req, resp, denied]() -> std::optional<ServiceError> {
      if (denied) return denied;
      auto u = s_->auth->UserGet(req->name());
      if (!u.ok()) return u.error();
      for (const auto& r : u.value().roles) resp->add_roles(r);
      return std::nullopt;
    });
  }
  grpc::ServerUnaryReactor* UserList(grpc::CallbackServerContext* ctx,
                                     const pb::AuthUserListRequest*,
                                     pb::AuthUserListResponse* resp) override {
    return Admin(ctx, "UserList", resp, [this, resp]() -> std::optional<ServiceError> {
      for (const auto& u : s_->auth->UserList()) resp->add_users(u);
      return std::nullopt;
    });
  }
  grpc::ServerUnaryReactor* UserDelete(grpc::CallbackServerContext* ctx,
                                       const pb::AuthUserDeleteRequest* req,
                                       pb::AuthUserDeleteResponse* resp) override {
    return Admin(ctx, "UserDelete", resp,
                 [this, req] { return s_->auth->UserDelete(req->name()); });
  }
  grpc::ServerUnaryReactor* UserChangePassword(grpc::CallbackServerContext* ctx,
                                               const pb::AuthUserChangePasswordRequest* req,
                                               pb::AuthUserChangePasswordResponse* resp) override {
    return Admin(ctx, "UserChangePassword", resp, [this, req] {
      return s_->auth->UserChangePassword(req->name(), req->password());
    });
  }
  grpc::ServerUnaryReactor* UserGrantRole(grpc::CallbackServerContext* ctx,
                                          const pb::AuthUserGrantRoleRequest* req,
                                          pb::AuthUserGrantRoleResponse* resp) override {
    return Admin(ctx, "UserGrantRole", resp,
                 [this, req] { return s_->auth->UserGrantRole(req->user(), req->role()); });
  }
  grpc::ServerUnaryReactor* UserRevokeRole(grpc::CallbackServerContext* ctx,
                                           const pb::AuthUserRevokeRoleRequest* req,
                                           pb::AuthUserRevokeRoleResponse* resp) override {
    return Admin(ctx, "UserRevokeRole", resp,
                 [this, req] { return s_->auth->UserRevokeRole(req->name(), req->role()); });
  }
  grpc::ServerUnaryReactor* RoleAdd(grpc::CallbackServerContext* ctx,
                                    const pb::AuthRoleAddRequest* req,
                                    pb::AuthRoleAddResponse* resp) override {
    return Admin(ctx, "RoleAdd", resp, [this, req] { return s_->auth->RoleAdd(req->name()); });
  }
  grpc::ServerUnaryReactor* RoleGet(grpc::CallbackServerContext* ctx,
                                    const pb::AuthRoleGetRequest* req,
                                    pb::AuthRoleGetResponse* resp) override {
    // etcd: a user may look at a role it has without being an admin.
    auto denied = s_->request_auth->AsUser(*ctx, [&](const std::string& user) {
      return s_->auth->HasRole(user, req->role()) ? std::nullopt : s_->auth->CheckAdmin(user);
    });
    return Run("RoleGet", resp, [this, req, resp, denied]() -> std::optional<ServiceError> {
      if (denied) return denied;
      auto r = s_->auth->RoleGet(req->role());
      if (!r.ok()) return r.error();
      for (const auto& p : r.value().permissions) {
        auto* out = resp->add_perm();
        out->set_permtype(static_cast<authpb::Permission::Type>(p.type));
        out->set_key(p.key);
        out->set_range_end(p.range_end);
      }
      return std::nullopt;
    });
  }
  grpc::ServerUnaryReactor* RoleList(grpc::CallbackServerContext* ctx,
                                     const pb::AuthRoleListRequest*,
                                     pb::AuthRoleListResponse* resp) override {
    return Admin(ctx, "RoleList", resp, [this, resp]() -> std::optional<ServiceError> {
      for (const auto& r : s_->auth->RoleList()) resp->add_roles(r);
      return std::nullopt;
    });
  }
  grpc::ServerUnaryReactor* RoleDelete(grpc::CallbackServerContext* ctx,
                                       const pb::AuthRoleDeleteRequest* req,
                                       pb::AuthRoleDeleteResponse* resp) override {
    return Admin(ctx, "RoleDelete", resp,
                 [this, req] { return s_->auth->RoleDelete(req->role()); });
  }
  grpc::ServerUnaryReactor* RoleGrantPermission(
      grpc::CallbackServerContext* ctx, const pb::AuthRoleGrantPermissionRequest* req,
      pb::AuthRoleGrantPermissionResponse* resp) override {
    return Admin(ctx, "RoleGrantPermission", resp, [this, req]() -> std::optional<ServiceError> {
      if (!req->has_perm()) {
        return ServiceError{service::ErrorCode::kInvalidArgument,
                            "etcdserver: permission not given"};  // etcd 3.5's words
      }
      const auto& p = req->perm();
      if (p.permtype() < 0 || p.permtype() > 2) {
        return ServiceError{service::ErrorCode::kInvalidArgument,
                            "strata: unknown permission type " + std::to_string(p.permtype())};
      }
      return s_->auth->RoleGrantPermission(
          req->name(),
          {static_cast<service::PermissionType>(p.permtype()), p.key(), p.range_end()});
    });
  }
  grpc::ServerUnaryReactor* RoleRevokePermission(
      grpc::CallbackServerContext* ctx, const pb::AuthRoleRevokePermissionRequest* req,
      pb::AuthRoleRevokePermissionResponse* resp) override {
    return Admin(ctx, "RoleRevokePermission", resp, [this, req] {
      return s_->auth->RoleRevokePermission(req->role(), req->key(), req->range_end());
    });
  }

 private:
  // An admin call: checked for the root role here (the token is read on
  // gRPC's thread), run on the worker.
  template <typename Resp, typename Work>
  grpc::ServerUnaryReactor* Admin(grpc::CallbackServerContext* ctx, const char* method, Resp* resp,
                                  Work work) {
    auto denied = s_->request_auth->Admin(*ctx);
    return Run(method, resp, [denied, work]() -> std::optional<ServiceError> {
      if (denied) return denied;
      return work();
    });
  }

  template <typename Resp, typename Work>
  grpc::ServerUnaryReactor* Run(const char* method, Resp* resp, Work work) {
    auto* reactor = s_->Reactor((std::string("/etcdserverpb.Auth/") + method).c_str());
    if (s_->RefuseOnLearner(reactor)) return reactor;
    bool posted = worker_.Post([this, reactor, resp, work] {
      if (auto e = work()) return reactor->Finish(ToGrpc(*e));
      s_->Header(s_->CurrentRevision(), resp->mutable_header());
      s_->FillIdentity(resp);
      reactor->Finish(grpc::Status::OK);
    });
    if (!posted) reactor->Finish(ToGrpc(service::etcd_errors::TooManyRequests()));
    return reactor;
  }

  EtcdServer::Impl* s_;
  AuthWorker worker_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeAuthService(EtcdServer::Impl* server) {
  return std::make_unique<AuthImpl>(server);
}

}  // namespace strata::server
