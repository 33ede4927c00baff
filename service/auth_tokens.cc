#include "service/auth_tokens.h"

#include <sodium.h>

#include <algorithm>
#include <vector>

namespace strata::service {

AuthTokens::AuthTokens(Clock::duration ttl, size_t max_tokens)
    : ttl_(ttl), max_tokens_(max_tokens) {}

// etcd's shape: 16 random letters, a dot, a counter. The letters come from
// the kernel's CSPRNG (libsodium's randombytes): a token is a password.
std::string AuthTokens::Assign(const std::string& user) {
  static constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string token;
  for (int i = 0; i < 16; ++i) token.push_back(kLetters[randombytes_uniform(sizeof kLetters - 1)]);
  const auto now = Clock::now();
  MutexLock lock(mu_);
  token.push_back('.');
  token += std::to_string(next_index_++);
  InsertLocked(token, user, now);
  return token;
}

void AuthTokens::Insert(const std::string& token, const std::string& user) {
  const auto now = Clock::now();
  MutexLock lock(mu_);
  InsertLocked(token, user, now);
}

void AuthTokens::InsertLocked(const std::string& token, const std::string& user,
                              Clock::time_point now) {
  if (tokens_.size() >= max_tokens_) DropLapsedLocked(now);
  if (tokens_.size() >= max_tokens_) {
    // Still full of live tokens: drop the quarter nearest to lapsing, so
    // this costs one sort per max_tokens/4 grants, not one per grant.
    std::vector<std::pair<Clock::time_point, std::string>> by_expiry;
    by_expiry.reserve(tokens_.size());
    for (const auto& [t, e] : tokens_) by_expiry.emplace_back(e.expires, t);
    const size_t drop = std::max<size_t>(1, tokens_.size() / 4);
    std::nth_element(by_expiry.begin(), by_expiry.begin() + static_cast<ptrdiff_t>(drop - 1),
                     by_expiry.end());
    for (size_t i = 0; i < drop; ++i) tokens_.erase(by_expiry[i].second);
  }
  tokens_[token] = Entry{user, now + ttl_};
}

std::optional<std::string> AuthTokens::Lookup(const std::string& token) {
  const auto now = Clock::now();
  MutexLock lock(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    tokens_.erase(it);
    return std::nullopt;
  }
  it->second.expires = now + ttl_;
  return it->second.user;
}

void AuthTokens::InvalidateUser(const std::string& user) {
  MutexLock lock(mu_);
  std::erase_if(tokens_, [&](const auto& kv) { return kv.second.user == user; });
}

void AuthTokens::Clear() {
  MutexLock lock(mu_);
  tokens_.clear();
}

size_t AuthTokens::size() const {
  MutexLock lock(mu_);
  return tokens_.size();
}

void AuthTokens::DropLapsedLocked(Clock::time_point now) {
  std::erase_if(tokens_, [&](const auto& kv) { return kv.second.expires <= now; });
}

}  // namespace strata::service
