// The transactional workloads, over the TxnAdapter interface:
//
//   TX  short read-modify-write transactions: read 4 distinct keys, add one
//       to the counters of the first 2 and write them back; on an abort the
//       same transaction is retried. Committed transactions per second and
//       the abort rate (aborts / attempts), over uniform or Zipf-skewed keys,
//       with 1 or more threads each running its own stream of transactions.
//   RO  read-only snapshot transactions (10 point reads each) on one thread,
//       alone and then while a second thread commits TX's transactions
//       (uniform keys) as fast as it can.
//
// Runs are timed by the clock (every thread runs until a deadline), so a
// slow engine costs the same wall time as a fast one. Keys are preloaded
// with counter 0; each thread's key sequence is precomputed from a fixed
// seed, so every engine runs the same transactions.
#ifndef STRATA_BENCH_TXN_WORKLOADS_H_
#define STRATA_BENCH_TXN_WORKLOADS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/json_line.h"
#include "bench/txn_adapter.h"
#include "bench/zipf.h"

namespace strata::bench {

enum class KeyDist { kUniform, kZipf };
std::string_view KeyDistName(KeyDist dist);

struct TxnRunOptions {
  double seconds = 1.5;         // per timed run
  double warmup_seconds = 0.3;  // one untimed run before each measurement
  int runs = 3;                 // each measurement is the median of this many
  double zipf_theta = 0.99;
};

// One engine loaded with `keys` counters, and the workloads on it. Keeps a
// count of every read-modify-write transaction committed on it, so the
// counters can be checked against it at any quiet moment.
class TxnBench final {
 public:
  // Loads the keys (untimed) and checks that concurrent increments lose
  // nothing, in every isolation level in `isolations` the engine honours.
  TxnBench(TxnAdapter* engine, uint64_t keys, const TxnRunOptions& options,
           const std::vector<TxnIsolation>& isolations);

  // TX with `threads` threads.
  JsonLine RunReadModifyWrite(KeyDist dist, int threads, TxnIsolation isolation);
  // RO; the writer runs at `isolation`. Checks first (untimed) that every
  // read-only snapshot is consistent while the writer commits.
  JsonLine RunReadOnly(TxnIsolation isolation);

  // Dies unless the counters add up to 2 x the commits so far. Only while no
  // workload runs.
  void CheckCounters(std::string_view when);

 private:
  class KeySpace;

  TxnAdapter* engine_;
  TxnRunOptions options_;
  std::shared_ptr<const KeySpace> space_;
  uint64_t commits_ = 0;  // every read-modify-write committed on engine_
};

}  // namespace strata::bench

#endif  // STRATA_BENCH_TXN_WORKLOADS_H_
