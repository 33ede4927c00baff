#include "service/history_hash.h"

#include <xxhash.h>

#include <span>

namespace strata::service {

HistoryHasher::HistoryHasher(const MvccStore* store, int64_t revision, int64_t compacted,
                             std::string prefix)
    : store_(store),
      revision_(revision),
      compacted_(compacted),
      prefix_(std::move(prefix)),
      state_(XXH3_createState()) {
  XXH3_64bits_reset(state_);
}

HistoryHasher::~HistoryHasher() { XXH3_freeState(state_); }

bool HistoryHasher::Step(size_t keys) {
  return store_->ExportKeys(
      &cursor_, keys, [] {},
      [&](std::string_view key, uint64_t, std::span<const ExportedVersion> versions) {
        if (!key.starts_with(prefix_)) return;
        for (const auto& v : versions) {
          const auto at = static_cast<int64_t>(v.timestamp);
          if (at > revision_ || at <= compacted_) continue;
          const uint64_t header[3] = {key.size(), v.timestamp, v.deleted ? 0 : v.value.size()};
          XXH3_64bits_update(state_, header, sizeof header);
          XXH3_64bits_update(state_, key.data(), key.size());
          if (!v.deleted) XXH3_64bits_update(state_, v.value.data(), v.value.size());
        }
      });
}

uint32_t HistoryHasher::Digest() const {
  const uint64_t h = XXH3_64bits_digest(state_);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

}  // namespace strata::service
