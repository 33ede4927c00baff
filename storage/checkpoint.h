// Checkpoints: the store's contents written to one file, so that recovery
// reads the file plus the log after it instead of the whole history.
//
// Taking one never stops the store. The log is rolled to a new segment at
// LSN P+1 first; then the keys are copied out in key order, a batch at a
// time, each batch under one short hold of the engine's writer lock, so each
// batch is a consistent cut at a known log position (its cut LSN) while
// writers go on between batches. Recovery loads the file, then replays the
// log after P, skipping a record's write to a key whose batch already
// contains it (record LSN <= that batch's cut LSN). Horizon and oracle
// records are always replayed (taking the maximum is idempotent). The file
// becomes the recovery base only once it is complete and fsynced and every
// record up to its last cut is durable; then older checkpoints and the
// segments before P+1 are deleted.
//
// File format (checkpoint-<P, 20 digits>.ckpt; little-endian, varints LEB128):
//   "STRATACK" then blocks, each:
//     u64 XXH3-64 of the rest of the block | u32 payload length | u8 type |
//     3 zero bytes | payload
//   kHeader (first):  varint format version (1) | varint P | varint horizon |
//                     varint max timestamp + 1 (0: none) | varint oracle reserved-through
//   kKeys:            varint cut LSN | bytes range start | varint key count | per key
//                     (storage/store_image.h, PutExportedKey):
//                     bytes key | varint write count | varint version count | per version:
//                     varint timestamp | varint version | u8 kind (0 delete, 1 value) | [bytes
//                     value]
//   kFooter (last):   varint blocks | varint keys | varint versions
// Anything else (a bad checksum, a missing footer, bytes after it) is damage.
#ifndef STRATA_STORAGE_CHECKPOINT_H_
#define STRATA_STORAGE_CHECKPOINT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/status.h"

namespace strata::storage {

class WalWriter;

std::string CheckpointFileName(uint64_t log_start);
std::optional<uint64_t> ParseCheckpointFileName(std::string_view name);

// What a loaded checkpoint says about the log after it.
struct CheckpointInfo {
  uint64_t covered_lsn = 0;  // P: every record up to it is in the file
  uint64_t horizon = 0;
  uint64_t max_timestamp_plus_one = 0;
  uint64_t reserved_through = 0;
  uint64_t keys = 0;
  uint64_t versions = 0;
  struct Cut {
    std::string range_start;  // the batch holds the keys from here to the next batch's start
    uint64_t cut_lsn;
  };
  std::vector<Cut> cuts;  // ascending range_start

  // Whether the checkpoint already contains the write of `key` in record `lsn`.
  bool Contains(std::string_view key, uint64_t lsn) const;
};

struct CheckpointResult {
  uint64_t covered_lsn = 0;
  uint64_t keys = 0;
  uint64_t versions = 0;
  uint64_t bytes = 0;
  std::string path;
};

// Writes a checkpoint of `store` into `dir` (see above) and deletes what it
// makes unnecessary. `reserved_through` reads the oracle's reservation (it
// must cover every reservation appended before it is called).
Result<CheckpointResult> WriteCheckpoint(const std::string& dir, const MvccStore& store,
                                         WalWriter* wal,
                                         const std::function<uint64_t()>& reserved_through,
                                         const std::function<void(std::string_view)>& progress);

// Removes checkpoint files that were never completed (*.ckpt.tmp).
Status RemoveTemporaryCheckpoints(const std::string& dir);

// Loads the checkpoint at `path` into the (empty) `store`.
// kInvalidArgument naming the file and offset if it is damaged.
Result<CheckpointInfo> LoadCheckpoint(const std::string& path, MvccStore* store);

}  // namespace strata::storage

#endif  // STRATA_STORAGE_CHECKPOINT_H_
