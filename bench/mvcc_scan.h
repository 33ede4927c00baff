// The snapshot range scan over the MVCC key layout of mvcc_key_codec.h,
// shared by the RocksDB and LMDB adapters so both peers run the same
// algorithm: for each user key, land on its newest version at or below the
// read timestamp, then skip its older versions. Stepping with Next is cheap
// while a key has few versions; past kMaxNexts steps a Seek jumps the rest
// (the same trade-off RocksDB makes internally with
// max_sequential_skip_in_iterations).
#ifndef STRATA_BENCH_MVCC_SCAN_H_
#define STRATA_BENCH_MVCC_SCAN_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bench/engine_adapter.h"
#include "bench/mvcc_key_codec.h"

namespace strata::bench {

// Cursor: Seek(string_view) positions at the first entry >= the key;
// Next(); Valid(); key() and value() as string_views valid until the cursor
// moves.
template <typename Cursor>
size_t MvccScan(Cursor& cursor, std::string_view start, size_t limit, uint64_t read_ts,
                uint64_t* checksum, std::string* seek_buffer, std::string* key_buffer) {
  constexpr int kMaxNexts = 8;
  std::string& current = *key_buffer;
  EncodeMvccKey(start, read_ts, seek_buffer);
  cursor.Seek(*seek_buffer);
  size_t visited = 0;
  while (visited < limit && cursor.Valid()) {
    const std::string_view stored = cursor.key();
    current.assign(MvccUserKey(stored));
    if (MvccTimestamp(stored) <= read_ts) {
      if (checksum != nullptr) *checksum += ScanChecksum(current, cursor.value());
      ++visited;
      // Skip the older versions of `current`.
      int steps = 0;
      do {
        cursor.Next();
      } while (cursor.Valid() && IsVersionOf(cursor.key(), current) && ++steps < kMaxNexts);
      if (cursor.Valid() && IsVersionOf(cursor.key(), current)) {
        EncodeMvccKey(current, 0, seek_buffer);  // ~0 sorts last: the oldest possible version
        cursor.Seek(*seek_buffer);
        if (cursor.Valid() && IsVersionOf(cursor.key(), current)) cursor.Next();
      }
    } else {
      // Newer than the snapshot: move to this key's newest version <= read_ts
      // (or past the key if it has none); the loop looks at wherever we land.
      int steps = 0;
      do {
        cursor.Next();
      } while (cursor.Valid() && IsVersionOf(cursor.key(), current) &&
               MvccTimestamp(cursor.key()) > read_ts && ++steps < kMaxNexts);
      if (cursor.Valid() && IsVersionOf(cursor.key(), current) &&
          MvccTimestamp(cursor.key()) > read_ts) {
        EncodeMvccKey(current, read_ts, seek_buffer);
        cursor.Seek(*seek_buffer);
      }
    }
  }
  return visited;
}

}  // namespace strata::bench

#endif  // STRATA_BENCH_MVCC_SCAN_H_
