// The durability workloads: what writing to disk costs, against RocksDB.
//
//   DW  durable writes. W writer threads, each doing one write after another
//       for a fixed time, each write acknowledged only once it is durable:
//         strata      one transaction per write (Begin, Put, Commit) on a
//                     strata::Store with wait_for_durability, in the asked
//                     SyncMode (always, batch, none);
//         strata-raw  one TxnStore::RawPut per write, at a timestamp from a
//                     shared counter (no transaction bookkeeping);
//         rocksdb     one DB::Put per write with the WAL on, sync = true
//                     ("always") or sync = false ("none"). RocksDB groups
//                     concurrent writers into one WAL write and fsync itself;
//                     it has no batch-delay mode.
//       A 16-byte key drawn uniformly from a key space of --dw-keys (100k),
//       a 100-byte value. Writes/s, latency percentiles (every write timed
//       with steady_clock), and fsyncs (strata: DurabilityStats::syncs;
//       RocksDB: its WAL_FILE_SYNCED ticker).
//   DR  recovery. Loads N versions (keys x 4 versions, 100-byte values,
//       sync none) and times reopening the directory: strata replaying only
//       the log (no checkpoint), and strata from a checkpoint plus a small
//       log tail; RocksDB replaying its WAL into a memtable, and RocksDB
//       opening after a flush (which reads no data: RocksDB serves reads
//       from its files, strata rebuilds everything in memory), as a side
//       reference. Every open is timed twice: with the store's files evicted
//       from the page cache first (cold, as after a reboot) and again right
//       after (warm, as after a process crash).
//
// Every run starts from a fresh directory under /tmp (the machine's real
// disk, so an fsync costs what it costs), removed afterwards.
#ifndef STRATA_BENCH_DURABLE_WORKLOADS_H_
#define STRATA_BENCH_DURABLE_WORKLOADS_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "bench/json_line.h"

namespace strata::bench {

// The engines DW and DR accept, in report order.
const std::vector<std::string_view>& DurableEngineNames();

enum class DurableSync { kAlways, kBatch, kNone };
std::string_view DurableSyncName(DurableSync sync);
std::optional<DurableSync> ParseDurableSync(std::string_view name);
// RocksDB has no batch-delay mode: "batch" is strata's only.
bool DurableEngineSupports(std::string_view engine, DurableSync sync);
// DR's engines: strata and rocksdb (strata-raw is the same store).
bool RecoveryEngineSupported(std::string_view engine);

struct DurableWriteOptions {
  double seconds = 2.0;         // per timed run
  double warmup_seconds = 0.2;  // untimed writes on the fresh store before each run
  int runs = 3;                 // each measurement is the median of this many
  uint64_t keys = 100'000;      // the key space writes are drawn from
};

// DW on a fresh store per run; the median run's figures as one JSON line.
JsonLine RunDurableWrites(std::string_view engine, DurableSync sync, int threads,
                          const DurableWriteOptions& options);

struct RecoveryOptions {
  uint64_t versions = 1'000'000;  // loaded in total
  uint64_t versions_per_key = 4;
  // Versions written after strata's checkpoint, which its recovery replays
  // from the log on top of the checkpoint.
  uint64_t tail_versions = 10'000;
  int runs = 3;  // opens per variant; medians reported
};

// DR: one load, then every open of both variants; one JSON line.
JsonLine RunRecovery(std::string_view engine, const RecoveryOptions& options);

}  // namespace strata::bench

#endif  // STRATA_BENCH_DURABLE_WORKLOADS_H_
