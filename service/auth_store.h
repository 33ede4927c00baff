// AuthStore: etcd's users, roles and permissions, and the checks every
// request passes when authentication is enabled.
//
// Checks read an immutable view of the state (one shared_ptr copy, nothing
// held while checking), so they never wait for a change being written.
// Changes are serialized, written whole to the journal and synced before
// the new view is published: an acknowledged grant or revoke survives a
// crash, and no request ever sees a state that was not made durable.
#ifndef STRATA_SERVICE_AUTH_STORE_H_
#define STRATA_SERVICE_AUTH_STORE_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/mutex.h"
#include "service/auth_tokens.h"
#include "service/key_permissions.h"
#include "service/service_error.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::service {

struct AuthUser {
  std::string name;
  std::string password_hash;       // Argon2id (service/password_hash.h); empty if no_password
  std::vector<std::string> roles;  // sorted
  bool no_password = false;
};

struct AuthRole {
  std::string name;
  std::vector<KeyPermission> permissions;  // sorted by key, as etcd lists them
};

struct AuthState {
  bool enabled = false;
  uint64_t revision = 1;  // etcd's auth revision: one more per change
  std::map<std::string, AuthUser> users;
  std::map<std::string, AuthRole> roles;

  std::string Encode() const;
  static std::optional<AuthState> Decode(std::string_view bytes);
};

// Where the state is kept between runs.
class AuthJournal {
 public:
  virtual ~AuthJournal() = default;
  // Saves `encoded` in place of the state at revision `replaces`; durable
  // when it returns Ok. A journal several servers share (a cluster's)
  // answers kConflict when the state it holds is no longer at `replaces`,
  // with that state in *newer: the change is then made again over it.
  virtual Status Save(const std::string& encoded, uint64_t replaces, std::string* newer) = 0;
  virtual std::optional<std::string> Load() = 0;
  // A token Authenticate handed out, before the caller gets it: a journal
  // whose servers accept each other's tokens (a cluster's) tells them.
  virtual void TokenAssigned(const std::string& /*token*/, const std::string& /*user*/) {}
};

// The state as one value in a strata Store of its own (data/auth): small,
// rarely written, and every write replaces the whole, so the older version
// is compacted away at once.
class StoreAuthJournal final : public AuthJournal {
 public:
  static Result<std::unique_ptr<StoreAuthJournal>> Open(const std::string& dir,
                                                        StoreOpenOptions options);
  // One server's: never a conflict.
  Status Save(const std::string& encoded, uint64_t replaces, std::string* newer) override;
  Status Save(const std::string& encoded) { return Save(encoded, 0, nullptr); }
  std::optional<std::string> Load() override;

 private:
  explicit StoreAuthJournal(std::unique_ptr<Store> store) : store_(std::move(store)) {}
  std::unique_ptr<Store> store_;
};

struct AuthLimits {
  size_t max_users = 10'000;
  size_t max_roles = 10'000;
  size_t max_permissions_per_role = 1'000;
  size_t max_name_bytes = 1'024;
  size_t max_password_bytes = 1'024;
  size_t max_tokens = 100'000;
  std::chrono::seconds token_ttl{300};  // etcd's --auth-token-ttl default
};

class AuthStore {
 public:
  // `journal` may be null (an in-memory server): the state then dies with it.
  static Result<std::unique_ptr<AuthStore>> Open(AuthJournal* journal, AuthLimits limits = {});

  // --- checks (any thread, cheap) ------------------------------------------
  bool enabled() const { return enabled_.load(std::memory_order_acquire); }
  uint64_t revision() const;
  // `user` is the request's ("" when it carries none). nullopt: allowed.
  std::optional<ServiceError> Check(const std::string& user, Access access, std::string_view key,
                                    std::string_view range_end) const;
  std::optional<ServiceError> CheckAdmin(const std::string& user) const;
  // The user a token stands for; InvalidAuthToken if none.
  Reply<std::string> UserOfToken(const std::string& token);

  // --- etcd's Auth API. Slow on purpose (password hashes, an fsync per
  // change): call from a worker, never from a gRPC reaction. ----------------
  std::optional<ServiceError> Enable();
  std::optional<ServiceError> Disable();
  Reply<std::string> Authenticate(const std::string& name, const std::string& password);
  std::optional<ServiceError> UserAdd(const std::string& name, const std::string& password,
                                      bool no_password);
  Reply<AuthUser> UserGet(const std::string& name) const;
  std::vector<std::string> UserList() const;
  std::optional<ServiceError> UserDelete(const std::string& name);
  std::optional<ServiceError> UserChangePassword(const std::string& name,
                                                 const std::string& password);
  std::optional<ServiceError> UserGrantRole(const std::string& user, const std::string& role);
  std::optional<ServiceError> UserRevokeRole(const std::string& user, const std::string& role);
  std::optional<ServiceError> RoleAdd(const std::string& name);
  Reply<AuthRole> RoleGet(const std::string& name) const;
  std::vector<std::string> RoleList() const;
  std::optional<ServiceError> RoleDelete(const std::string& name);
  std::optional<ServiceError> RoleGrantPermission(const std::string& role, KeyPermission perm);
  std::optional<ServiceError> RoleRevokePermission(const std::string& role, const std::string& key,
                                                   const std::string& range_end);
  bool HasRole(const std::string& user, const std::string& role) const;

  // --- a state or token another server made (a cluster's members) --------
  // Takes `encoded` if it is newer than the state held (by revision);
  // false if it cannot be decoded. Any thread; never waits for a change
  // being saved.
  bool Adopt(std::string_view encoded);
  void AdoptToken(const std::string& token, const std::string& user);

  size_t live_tokens() const { return tokens_.size(); }
  // The state as a snapshot carries it (AuthState::Encode); empty when no
  // user or role was ever added.
  std::string EncodedState() const;

 private:
  // What checks read: the state plus each user's merged permissions.
  struct View {
    AuthState state;
    std::unordered_map<std::string, KeyPermissions> permissions;  // by user
  };
  AuthStore(AuthJournal* journal, AuthLimits limits, AuthState state);
  std::shared_ptr<const View> view() const;
  // Applies `change` to a copy of the state; on success saves it and
  // publishes it. Changes are serialized by change_mu_. Over a shared
  // journal that holds a newer state, the change is made again over that.
  template <typename Change>
  std::optional<ServiceError> Mutate(Change change);
  // Makes `state` the one checks read, unless the one held is as new (and
  // not `even_if_older`); the tokens of users deleted or given a new
  // password lapse, and every token when authentication is turned off.
  void Publish(AuthState state, bool even_if_older = false);

  AuthJournal* const journal_;
  const AuthLimits limits_;
  AuthTokens tokens_;
  Mutex change_mu_;  // one change at a time
  mutable Mutex view_mu_;
  std::shared_ptr<const View> view_ STRATA_GUARDED_BY(view_mu_);
  std::atomic<bool> enabled_{false};
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_AUTH_STORE_H_
