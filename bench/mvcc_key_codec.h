// The MVCC key layout the ordered key-value peers (RocksDB, LMDB) store:
//
//   user_key ++ big-endian(~timestamp)
//
// Inverting the timestamp makes the newest version of a key sort first, so a
// read at T is one seek to user_key ++ ~T: the first entry at or after it is
// the newest version with timestamp <= T, if it still belongs to user_key.
//
// "Belongs to user_key" is checked as: the stored key is exactly
// user_key.size() + 8 bytes long and starts with user_key. That is only
// unambiguous when user keys have a fixed width (otherwise a longer key could
// sort between two versions of a shorter one); the benchmark's keys all have
// the same width, and the adapters document that they rely on it.
#ifndef STRATA_BENCH_MVCC_KEY_CODEC_H_
#define STRATA_BENCH_MVCC_KEY_CODEC_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace strata::bench {

inline constexpr size_t kTimestampSuffixBytes = 8;

// Writes user_key ++ be64(~ts) into `*out`, reusing its buffer.
inline void EncodeMvccKey(std::string_view user_key, uint64_t ts, std::string* out) {
  out->assign(user_key);
  const uint64_t inverted = ~ts;
  char suffix[kTimestampSuffixBytes];
  for (size_t i = 0; i < kTimestampSuffixBytes; ++i) {
    suffix[i] = static_cast<char>(inverted >> (8 * (kTimestampSuffixBytes - 1 - i)));
  }
  out->append(suffix, kTimestampSuffixBytes);
}

// The user key part of a stored key (which must be at least 8 bytes long).
inline std::string_view MvccUserKey(std::string_view stored) {
  return stored.substr(0, stored.size() - kTimestampSuffixBytes);
}

// The timestamp of a stored key.
inline uint64_t MvccTimestamp(std::string_view stored) {
  uint64_t inverted = 0;
  const auto* p =
      reinterpret_cast<const unsigned char*>(stored.data() + stored.size() - kTimestampSuffixBytes);
  for (size_t i = 0; i < kTimestampSuffixBytes; ++i) inverted = (inverted << 8) | p[i];
  return ~inverted;
}

// True if `stored` is a version of `user_key` (see the width caveat above).
inline bool IsVersionOf(std::string_view stored, std::string_view user_key) {
  return stored.size() == user_key.size() + kTimestampSuffixBytes &&
         std::memcmp(stored.data(), user_key.data(), user_key.size()) == 0;
}

}  // namespace strata::bench

#endif  // STRATA_BENCH_MVCC_KEY_CODEC_H_
