// TxnAdapter: the interface every transactional engine under benchmark
// implements, for the TX and RO workloads (txn_workloads.h).
//
// The workloads drive transactions step by step (Begin, Get, Put, Commit),
// so every engine runs exactly the same transactions on the same keys, and
// each adapter only translates the steps into its engine's API the way a
// careful user would (reused transaction handles and read buffers).
//
// Values are 8-byte little-endian counters: the read-modify-write adds one,
// which lets the workload check that no update was lost.
//
// Threading contract: a TxnAdapter is shared by all threads; each thread
// uses its own TxnSession, made by NewSession.
#ifndef STRATA_BENCH_TXN_ADAPTER_H_
#define STRATA_BENCH_TXN_ADAPTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata::bench {

// The isolation level the workload asks for. Engines that have one fixed
// behaviour (the RocksDB peers) ignore it and say what they provide.
enum class TxnIsolation { kSnapshot, kSerializable };

std::string_view TxnIsolationName(TxnIsolation isolation);

// What a step did. Anything but kOk ends the transaction: the engine has
// rolled it back (or the session does so), and the workload retries.
enum class TxnStep {
  kOk,
  kConflict,     // a validation failure: somebody else committed first
  kLockTimeout,  // pessimistic: a lock wait exceeded the lock timeout
  kDeadlock,     // pessimistic: the lock manager found a cycle
  kTryAgain,     // optimistic RocksDB: too little memtable history to validate
};

inline constexpr int kTxnStepKinds = 5;
std::string_view TxnStepName(TxnStep step);

// One thread's handle on the engine: at most one open transaction.
class TxnSession {
 public:
  virtual ~TxnSession() = default;

  // Starts a transaction whose reads see one snapshot. Read-only
  // transactions only call Get, then Commit.
  virtual void Begin(bool read_only) = 0;
  // Reads `key` (which exists) into `*value`. `for_update` says the
  // transaction will write the key: the RocksDB peers then lock (pessimistic)
  // or track (optimistic) it, as a careful user of their API would.
  virtual TxnStep Get(std::string_view key, bool for_update, uint64_t* value) = 0;
  virtual TxnStep Put(std::string_view key, uint64_t value) = 0;
  virtual TxnStep Commit() = 0;
  // Ends the open transaction without committing (after a failed step, if
  // the engine has not already ended it). A no-op if none is open.
  virtual void Rollback() = 0;
};

class TxnAdapter {
 public:
  virtual ~TxnAdapter() = default;

  virtual std::string_view name() const = 0;
  // One line on how the engine is configured, for the report footer.
  virtual std::string_view config() const = 0;
  // The isolation this engine actually runs when `requested` is asked for
  // ("snapshot", "serializable"), and whether it honours the request at all.
  virtual std::string_view IsolationLabel(TxnIsolation requested) const = 0;
  virtual bool honours_isolation() const = 0;
  // What the engine validates at commit, in words, for the JSON "note".
  virtual std::string_view validation_note() const = 0;

  // Stores counter 0 under every key, untimed.
  virtual void Load(const std::vector<std::string>& keys) = 0;
  // Untimed, between timed runs: garbage collection or whatever brings the
  // engine back to a steady state (strata compacts old versions here).
  virtual void BetweenRuns() {}

  virtual std::unique_ptr<TxnSession> NewSession(TxnIsolation isolation) = 0;
};

// The 8-byte counter encoding all adapters share.
inline void EncodeCounter(uint64_t value, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(value >> (8 * i));
}
inline uint64_t DecodeCounter(std::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  }
  return value;
}

// One factory per adapter file.
std::unique_ptr<TxnAdapter> MakeStrataTxnAdapter();
std::unique_ptr<TxnAdapter> MakeRocksDbOptimisticAdapter();
std::unique_ptr<TxnAdapter> MakeRocksDbPessimisticAdapter();

// The transactional engine names the command line accepts, in report order.
const std::vector<std::string_view>& TxnEngineNames();
// nullptr for an unknown name.
std::unique_ptr<TxnAdapter> MakeTxnEngine(std::string_view name);

}  // namespace strata::bench

#endif  // STRATA_BENCH_TXN_ADAPTER_H_
