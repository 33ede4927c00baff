// The transactional engine names the command line accepts, the factory
// behind each, and the names of the shared enums.
#include "bench/txn_adapter.h"

namespace strata::bench {

std::string_view TxnIsolationName(TxnIsolation isolation) {
  return isolation == TxnIsolation::kSerializable ? "serializable" : "snapshot";
}

std::string_view TxnStepName(TxnStep step) {
  switch (step) {
    case TxnStep::kOk:
      return "ok";
    case TxnStep::kConflict:
      return "conflict";
    case TxnStep::kLockTimeout:
      return "lock_timeout";
    case TxnStep::kDeadlock:
      return "deadlock";
    case TxnStep::kTryAgain:
      return "try_again";
  }
  return "unknown";
}

const std::vector<std::string_view>& TxnEngineNames() {
  // strata first: the report compares it against each peer in this order.
  static const std::vector<std::string_view> kNames = {"strata", "rocksdb-optimistic",
                                                       "rocksdb-pessimistic"};
  return kNames;
}

std::unique_ptr<TxnAdapter> MakeTxnEngine(std::string_view name) {
  if (name == "strata") return MakeStrataTxnAdapter();
  if (name == "rocksdb-optimistic") return MakeRocksDbOptimisticAdapter();
  if (name == "rocksdb-pessimistic") return MakeRocksDbPessimisticAdapter();
  return nullptr;
}

}  // namespace strata::bench
