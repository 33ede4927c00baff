#include "service/auth_store.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "service/password_hash.h"

namespace strata::service {
namespace {

constexpr std::string_view kRootUser = "root";
constexpr std::string_view kRootRole = "root";
constexpr char kFormat = 1;  // first byte of an encoded state

// Length-prefixed fields: names and keys are arbitrary bytes.
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutBytes(std::string* out, std::string_view b) {
  PutU64(out, b.size());
  out->append(b);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U64(uint64_t* v) {
    if (in_.size() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= uint64_t{static_cast<unsigned char>(in_[i])} << (8 * i);
    in_.remove_prefix(8);
    return true;
  }
  bool Bytes(std::string* s) {
    uint64_t n = 0;
    if (!U64(&n) || n > in_.size()) return false;
    s->assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  // A count of items that each take at least `min_bytes`: bounded by what is left.
  bool Count(uint64_t* n, size_t min_bytes) { return U64(n) && *n <= in_.size() / min_bytes; }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

ServiceError TooMany(const std::string& what, size_t limit) {
  return {ErrorCode::kResourceExhausted,
          "strata: too many " + what + " (at most " + std::to_string(limit) + ")"};
}

ServiceError TooLong(const std::string& what, size_t limit) {
  return {ErrorCode::kInvalidArgument,
          "strata: " + what + " is longer than " + std::to_string(limit) + " bytes"};
}

ServiceError OutOfMemoryHashing() {
  return {ErrorCode::kResourceExhausted, "strata: out of memory hashing a password"};
}

bool HasRootRole(const AuthUser& u) {
  return std::binary_search(u.roles.begin(), u.roles.end(), std::string(kRootRole));
}

}  // namespace

std::string AuthState::Encode() const {
  std::string out(1, kFormat);
  PutU64(&out, enabled ? 1 : 0);
  PutU64(&out, revision);
  PutU64(&out, users.size());
  for (const auto& [name, u] : users) {
    PutBytes(&out, name);
    PutBytes(&out, u.password_hash);
    PutU64(&out, u.no_password ? 1 : 0);
    PutU64(&out, u.roles.size());
    for (const auto& r : u.roles) PutBytes(&out, r);
  }
  PutU64(&out, roles.size());
  for (const auto& [name, r] : roles) {
    PutBytes(&out, name);
    PutU64(&out, r.permissions.size());
    for (const auto& p : r.permissions) {
      PutU64(&out, static_cast<uint64_t>(p.type));
      PutBytes(&out, p.key);
      PutBytes(&out, p.range_end);
    }
  }
  return out;
}

std::optional<AuthState> AuthState::Decode(std::string_view bytes) {
  if (bytes.empty() || bytes[0] != kFormat) return std::nullopt;
  Reader in(bytes.substr(1));
  AuthState s;
  uint64_t enabled = 0, n = 0;
  if (!in.U64(&enabled) || !in.U64(&s.revision) || !in.Count(&n, 32)) return std::nullopt;
  s.enabled = enabled != 0;
  for (uint64_t i = 0; i < n; ++i) {
    AuthUser u;
    uint64_t no_password = 0, roles = 0;
    if (!in.Bytes(&u.name) || !in.Bytes(&u.password_hash) || !in.U64(&no_password) ||
        !in.Count(&roles, 8)) {
      return std::nullopt;
    }
    u.no_password = no_password != 0;
    u.roles.resize(roles);
    for (auto& r : u.roles) {
      if (!in.Bytes(&r)) return std::nullopt;
    }
    s.users[u.name] = std::move(u);
  }
  if (!in.Count(&n, 16)) return std::nullopt;
  for (uint64_t i = 0; i < n; ++i) {
    AuthRole r;
    uint64_t perms = 0;
    if (!in.Bytes(&r.name) || !in.Count(&perms, 24)) return std::nullopt;
    r.permissions.resize(perms);
    for (auto& p : r.permissions) {
      uint64_t type = 0;
      if (!in.U64(&type) || type > 2 || !in.Bytes(&p.key) || !in.Bytes(&p.range_end)) {
        return std::nullopt;
      }
      p.type = static_cast<PermissionType>(type);
    }
    s.roles[r.name] = std::move(r);
  }
  if (!in.done()) return std::nullopt;
  return s;
}

// --- journal -----------------------------------------------------------------

namespace {
constexpr std::string_view kStateKey = "state";
}

Result<std::unique_ptr<StoreAuthJournal>> StoreAuthJournal::Open(const std::string& dir,
                                                                 StoreOpenOptions options) {
  auto store = Store::Open(dir, std::move(options));
  if (!store.ok()) return store.status();
  return std::unique_ptr<StoreAuthJournal>(new StoreAuthJournal(std::move(store.value())));
}

Status StoreAuthJournal::Save(const std::string& encoded, uint64_t, std::string*) {
  auto ts = store_->db().oracle().Next();
  if (!ts.ok()) return ts.status();
  auto r = store_->mvcc().Put(std::string(kStateKey), encoded, ts.value());
  if (!r.ok()) return r.status();
  if (auto s = store_->Sync(); !s.ok()) return s;
  // Only the newest state is ever read: drop the one it replaced.
  store_->db().Compact(ts.value());
  return Status::Ok();
}

std::optional<std::string> StoreAuthJournal::Load() {
  std::optional<std::string> out;
  (void)store_->mvcc().ScanVisit(KeyRange::All(), Timestamp::Max(), 1,
                                 [&](const ScanItemView& item) {
                                   if (item.key == kStateKey) out = std::string(item.value);
                                 });
  return out;
}

// --- the store ---------------------------------------------------------------

Result<std::unique_ptr<AuthStore>> AuthStore::Open(AuthJournal* journal, AuthLimits limits) {
  // Tokens and password hashes need libsodium's generator seeded.
  if (!InitSodium()) return Status::IoError("libsodium could not seed its random generator");
  AuthState state;
  if (journal) {
    if (auto bytes = journal->Load()) {
      auto decoded = AuthState::Decode(*bytes);
      if (!decoded) {
        return Status::IoError(
            "the auth state (users, roles) in the data directory cannot be decoded");
      }
      state = std::move(*decoded);
    }
  }
  return std::unique_ptr<AuthStore>(new AuthStore(journal, limits, std::move(state)));
}

AuthStore::AuthStore(AuthJournal* journal, AuthLimits limits, AuthState state)
    : journal_(journal), limits_(limits), tokens_(limits.token_ttl, limits.max_tokens) {
  Publish(std::move(state));
}

void AuthStore::Publish(AuthState state, bool even_if_older) {
  auto v = std::make_shared<View>();
  for (const auto& [name, user] : state.users) {
    std::vector<KeyPermission> grants;
    for (const auto& role : user.roles) {
      auto it = state.roles.find(role);
      if (it == state.roles.end()) continue;
      grants.insert(grants.end(), it->second.permissions.begin(), it->second.permissions.end());
    }
    v->permissions.emplace(name, KeyPermissions(grants));
  }
  const bool enabled = state.enabled;
  v->state = std::move(state);
  std::shared_ptr<const View> before;
  {
    MutexLock lock(view_mu_);
    if (view_ && !even_if_older && view_->state.revision >= v->state.revision) return;
    before = std::exchange(view_, v);
    enabled_.store(enabled, std::memory_order_release);
  }
  if (!before) return;
  // Tokens follow the state, whoever changed it.
  if (before->state.enabled && !enabled) return tokens_.Clear();
  for (const auto& [name, old] : before->state.users) {
    auto now = v->state.users.find(name);
    if (now == v->state.users.end() || now->second.password_hash != old.password_hash ||
        now->second.no_password != old.no_password) {
      tokens_.InvalidateUser(name);
    }
  }
}

bool AuthStore::Adopt(std::string_view encoded) {
  auto decoded = AuthState::Decode(encoded);
  if (!decoded) return false;
  Publish(std::move(*decoded));
  return true;
}

void AuthStore::AdoptToken(const std::string& token, const std::string& user) {
  tokens_.Insert(token, user);
}

std::shared_ptr<const AuthStore::View> AuthStore::view() const {
  MutexLock lock(view_mu_);
  return view_;
}

uint64_t AuthStore::revision() const { return view()->state.revision; }

std::string AuthStore::EncodedState() const {
  auto v = view();
  if (v->state.users.empty() && v->state.roles.empty()) return "";
  return v->state.Encode();
}

std::optional<ServiceError> AuthStore::Check(const std::string& user, Access access,
                                             std::string_view key,
                                             std::string_view range_end) const {
  if (!enabled()) return std::nullopt;
  if (user.empty()) return etcd_errors::UserEmpty();
  auto v = view();
  if (!v->state.enabled) return std::nullopt;
  auto u = v->state.users.find(user);
  if (u == v->state.users.end()) return etcd_errors::PermissionDenied();
  if (HasRootRole(u->second)) return std::nullopt;
  auto p = v->permissions.find(user);
  if (p != v->permissions.end() && p->second.Allows(access, key, range_end)) return std::nullopt;
  return etcd_errors::PermissionDenied();
}

std::optional<ServiceError> AuthStore::CheckAdmin(const std::string& user) const {
  if (!enabled()) return std::nullopt;
  if (user.empty()) return etcd_errors::UserEmpty();
  auto v = view();
  if (!v->state.enabled) return std::nullopt;
  auto u = v->state.users.find(user);
  if (u == v->state.users.end() || !HasRootRole(u->second)) {
    return etcd_errors::PermissionDenied();
  }
  return std::nullopt;
}

bool AuthStore::HasRole(const std::string& user, const std::string& role) const {
  auto v = view();
  auto u = v->state.users.find(user);
  return u != v->state.users.end() &&
         std::binary_search(u->second.roles.begin(), u->second.roles.end(), role);
}

Reply<std::string> AuthStore::UserOfToken(const std::string& token) {
  auto user = tokens_.Lookup(token);
  if (!user) return etcd_errors::InvalidAuthToken();
  return *user;
}

template <typename Change>
std::optional<ServiceError> AuthStore::Mutate(Change change) {
  // Another server of a shared journal may have changed the state since
  // this one last heard: the change is made again over what it holds.
  constexpr int kMaxAttempts = 16;
  MutexLock lock(change_mu_);
  for (int attempt = 1;; ++attempt) {
    AuthState next = view()->state;
    const uint64_t replaces = next.revision;
    if (auto e = change(next)) return e;
    ++next.revision;
    if (journal_) {
      std::string newer;
      Status s = journal_->Save(next.Encode(), replaces, &newer);
      if (s.code() == StatusCode::kConflict && attempt < kMaxAttempts) {
        // The shared state is the state of record: taken even if its
        // revision is not above the one held (a member restored with a
        // newer copy than the record would otherwise never save again).
        // Nothing in it: the save lost a race but the state did not move.
        if (newer.empty()) continue;
        if (auto decoded = AuthState::Decode(newer)) {
          Publish(std::move(*decoded), /*even_if_older=*/true);
          continue;
        }
      }
      // A shared journal out of reach (no leader, no answer in time): the
      // change was not made, or may still be; the client tries again.
      if (s.code() == StatusCode::kUnavailable)
        return ServiceError{ErrorCode::kUnavailable, s.message()};
      if (!s.ok()) return etcd_errors::StorageFailed("saving users and roles: " + s.message());
    }
    Publish(std::move(next));
    return std::nullopt;
  }
}

std::optional<ServiceError> AuthStore::Enable() {
  if (enabled()) return std::nullopt;  // etcd: enabling twice is no error
  return Mutate([](AuthState& s) -> std::optional<ServiceError> {
    auto root = s.users.find(std::string(kRootUser));
    if (root == s.users.end()) return etcd_errors::RootUserNotExist();
    if (!HasRootRole(root->second)) return etcd_errors::RootRoleNotExist();
    s.enabled = true;
    return std::nullopt;
  });
}

std::optional<ServiceError> AuthStore::Disable() {
  if (!enabled()) return std::nullopt;
  return Mutate([](AuthState& s) -> std::optional<ServiceError> {
    s.enabled = false;
    return std::nullopt;
  });
}

Reply<std::string> AuthStore::Authenticate(const std::string& name, const std::string& password) {
  auto v = view();
  if (!v->state.enabled) return etcd_errors::AuthNotEnabled();
  auto u = v->state.users.find(name);
  if (u == v->state.users.end() || u->second.no_password ||
      !PasswordMatches(u->second.password_hash, password)) {
    return etcd_errors::AuthFailed();
  }
  std::string token = tokens_.Assign(name);
  if (journal_) journal_->TokenAssigned(token, name);
  return token;
}

std::optional<ServiceError> AuthStore::UserAdd(const std::string& name, const std::string& password,
                                               bool no_password) {
  if (name.empty()) return etcd_errors::UserEmpty();
  if (name.size() > limits_.max_name_bytes) return TooLong("a user name", limits_.max_name_bytes);
  if (password.size() > limits_.max_password_bytes) {
    return TooLong("a password", limits_.max_password_bytes);
  }
  {
    auto v = view();
    if (v->state.users.count(name)) return etcd_errors::UserAlreadyExist();
  }
  std::string hash;
  if (!no_password) {
    auto h = HashPassword(password);
    if (!h) return OutOfMemoryHashing();
    hash = std::move(*h);
  }
  return Mutate([&](AuthState& s) -> std::optional<ServiceError> {
    if (s.users.count(name)) return etcd_errors::UserAlreadyExist();
    if (s.users.size() >= limits_.max_users) {
      return TooMany("users", limits_.max_users);
    }
    s.users[name] = AuthUser{name, hash, {}, no_password};
    return std::nullopt;
  });
}

Reply<AuthUser> AuthStore::UserGet(const std::string& name) const {
  auto v = view();
  auto u = v->state.users.find(name);
  if (u == v->state.users.end()) return etcd_errors::UserNotFound();
  return u->second;
}

std::vector<std::string> AuthStore::UserList() const {
  std::vector<std::string> out;
  for (const auto& [name, u] : view()->state.users) out.push_back(name);
  return out;
}

std::optional<ServiceError> AuthStore::UserDelete(const std::string& name) {
  return Mutate([&](AuthState& s) -> std::optional<ServiceError> {
    if (s.enabled && name == kRootUser) return etcd_errors::InvalidAuthMgmt();
    if (!s.users.erase(name)) return etcd_errors::UserNotFound();
    return std::nullopt;
  });
}

std::optional<ServiceError> AuthStore::UserChangePassword(const std::string& name,
                                                          const std::string& password) {
  if (password.size() > limits_.max_password_bytes) {
    return TooLong("a password", limits_.max_password_bytes);
  }
  if (!view()->state.users.count(name)) return etcd_errors::UserNotFound();
  auto h = HashPassword(password);
  if (!h) return OutOfMemoryHashing();
  return Mutate([&](AuthState& s) -> std::optional<ServiceError> {
    auto u = s.users.find(name);
    if (u == s.users.end()) return etcd_errors::UserNotFound();
    u->second.password_hash = *h;
    u->second.no_password = false;
    return std::nullopt;
  });
}

std::optional<ServiceError> AuthStore::UserGrantRole(const std::string& user,
                                                     const std::string& role) {
  return Mutate([&](AuthState& s) -> std::optional<ServiceError> {
    auto u = s.users.find(user);
    if (u == s.users.end()) return etcd_errors::UserNotFound();
    // etcd: "root" may be granted before a role of that name exists.
    if (role != kRootRole && !s.roles.count(role)) return etcd_errors::RoleNotFound();
    auto& roles = u->second.roles;
    auto at = std::lower_bound(roles.begin(), roles.end(), role);
    if (at == roles.end() || *at != role) roles.insert(at, role);
    return std::nullopt;
  });
}

std::optional<ServiceError> AuthStore::UserRevokeRole(const std::string& user,
                                                      const std::string& role) {
  return Mutate([&](AuthState& s) -> std::optional<ServiceError> {
    if (s.enabled && user == kRootUser && role == kRootRole) return etcd_errors::InvalidAuthMgmt();
    auto u = s.users.find(user);
    if (u == s.users.end()) return etcd_errors::UserNotFound();
    auto& roles = u->second.roles;
    auto at = std::lower_bound(roles.begin(), roles.end(), role);
    if (at == roles.end() || *at != role) return etcd_errors::RoleNotGranted();
    roles.erase(at);
    return std::nullopt;
  });
}

std::optional<ServiceError> AuthStore::RoleAdd(const std::string& name) {
  if (name.empty()) return etcd_errors::RoleEmpty();
  if (name.size() > limits_.max_name_bytes) {
    return TooLong("a role name", limits_.max_name_bytes);
  }
  return Mutate([&](AuthState& s) -> std::optional<ServiceError> {
    if (s.roles.count(name)) return etcd_errors::RoleAlreadyExist();
    if (s.roles.size() >= limits_.max_roles) {
      return TooMany("roles", limits_.max_roles);
    }
    s.roles[name] = AuthRole{name, {}};
    return std::nullopt;
  });
}

Reply<AuthRole> AuthStore::RoleGet(const std::string& name) const {
  auto v = view();
  auto r = v->state.roles.find(name);
  if (r == v->state.roles.end()) return etcd_errors::RoleNotFound();
  return r->second;
}

std::vector<std::string> AuthStore::RoleList() const {
  std::vector<std::string> out;
  for (const auto& [name, r] : view()->state.roles) out.push_back(name);
  return out;
}

std::optional<ServiceError> AuthStore::RoleDelete(const std::string& name) {
  return Mutate([&](AuthState& s) -> std::optional<ServiceError> {
    if (s.enabled && name == kRootRole) return etcd_errors::InvalidAuthMgmt();
    if (!s.roles.erase(name)) return etcd_errors::RoleNotFound();
    for (auto& [_, u] : s.users) std::erase(u.roles, name);
    return std::nullopt;
  });
}

std::optional<ServiceError> AuthStore::RoleGrantPermission(const std::string& role,
                                                           KeyPermission perm) {
  return Mutate([&](AuthState& s) -> std::optional<ServiceError> {
    auto r = s.roles.find(role);
    if (r == s.roles.end()) return etcd_errors::RoleNotFound();
    auto& perms = r->second.permissions;
    for (auto& p : perms) {
      if (p.key == perm.key && p.range_end == perm.range_end) {
        p.type = perm.type;  // etcd: granting the same range again changes its type
        return std::nullopt;
      }
    }
    if (perms.size() >= limits_.max_permissions_per_role) {
      return TooMany("permissions in one role", limits_.max_permissions_per_role);
    }
    auto at =
        std::upper_bound(perms.begin(), perms.end(), perm.key,
                         [](const std::string& k, const KeyPermission& p) { return k < p.key; });
    perms.insert(at, std::move(perm));
    return std::nullopt;
  });
}

std::optional<ServiceError> AuthStore::RoleRevokePermission(const std::string& role,
                                                            const std::string& key,
                                                            const std::string& range_end) {
  return Mutate([&](AuthState& s) -> std::optional<ServiceError> {
    auto r = s.roles.find(role);
    if (r == s.roles.end()) return etcd_errors::RoleNotFound();
    auto& perms = r->second.permissions;
    const size_t before = perms.size();
    std::erase_if(perms,
                  [&](const KeyPermission& p) { return p.key == key && p.range_end == range_end; });
    if (perms.size() == before) return etcd_errors::PermissionNotGranted();
    return std::nullopt;
  });
}

}  // namespace strata::service
