// HistoryHasher: strata's answer to etcd's HashKV, a hash of every stored
// version of a store's keys in (compacted, revision], keys in order and
// each key's versions in order, so the same history always hashes the
// same (the value is strata's own, not etcd's). It works a batch of keys
// at a time, each batch under the engine's writer lock for a moment, so a
// caller on an event loop can let other work run between batches.
// Versions at or below `revision` must not change meanwhile: the caller
// picks a revision nothing can still commit at or below.
#ifndef STRATA_SERVICE_HISTORY_HASH_H_
#define STRATA_SERVICE_HISTORY_HASH_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "strata/mvcc_store.h"

struct XXH3_state_s;

namespace strata::service {

class HistoryHasher {
 public:
  // Only keys that begin with `prefix`. `store` must outlive the hasher.
  HistoryHasher(const MvccStore* store, int64_t revision, int64_t compacted, std::string prefix);
  ~HistoryHasher();
  HistoryHasher(const HistoryHasher&) = delete;
  HistoryHasher& operator=(const HistoryHasher&) = delete;

  // Hashes up to `keys` more keys; true once every key is hashed.
  bool Step(size_t keys);
  // The hash of what was hashed so far (the history's, once Step is true).
  uint32_t Digest() const;

 private:
  const MvccStore* store_;
  const int64_t revision_, compacted_;
  const std::string prefix_;
  std::string cursor_;
  XXH3_state_s* state_;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_HISTORY_HASH_H_
