// AuthTokens: etcd's "simple" tokens. Authenticate hands one out; a request
// carrying it acts as its user. A token lapses after `ttl` without use (etcd
// 3.4: 5 minutes, renewed by every use) and at once when its user is
// deleted or changes password. The tokens live in memory only, as etcd's
// do: after a restart clients authenticate again (etcd's clients do so by
// themselves on "invalid auth token").
#ifndef STRATA_SERVICE_AUTH_TOKENS_H_
#define STRATA_SERVICE_AUTH_TOKENS_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/mutex.h"

namespace strata::service {

// InitSodium (service/password_hash.h) must have succeeded first.
class AuthTokens {
 public:
  using Clock = std::chrono::steady_clock;
  // At most `max_tokens` live at once: past that, Assign drops the tokens
  // nearest to lapsing (clients whose token went re-authenticate).
  AuthTokens(Clock::duration ttl, size_t max_tokens);

  std::string Assign(const std::string& user);
  // A token another server assigned (a cluster's members share them).
  void Insert(const std::string& token, const std::string& user);
  // The token's user, renewing the token; nullopt if unknown or lapsed.
  std::optional<std::string> Lookup(const std::string& token);
  void InvalidateUser(const std::string& user);
  void Clear();
  size_t size() const;

 private:
  struct Entry {
    std::string user;
    Clock::time_point expires;
  };
  void DropLapsedLocked(Clock::time_point now) STRATA_REQUIRES(mu_);
  void InsertLocked(const std::string& token, const std::string& user, Clock::time_point now)
      STRATA_REQUIRES(mu_);

  const Clock::duration ttl_;
  const size_t max_tokens_;
  mutable Mutex mu_;
  std::unordered_map<std::string, Entry> tokens_ STRATA_GUARDED_BY(mu_);
  uint64_t next_index_ STRATA_GUARDED_BY(mu_) = 1;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_AUTH_TOKENS_H_
