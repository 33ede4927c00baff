// The engine names the command line accepts and the factory behind each.
#include "bench/engine_adapter.h"

namespace strata::bench {

const std::vector<std::string_view>& EngineNames() {
  // strata first: the report compares it against each peer in this order.
  static const std::vector<std::string_view> kNames = {"strata", "textbook", "hash-binsearch",
                                                       "rocksdb", "lmdb"};
  return kNames;
}

std::unique_ptr<EngineAdapter> MakeEngine(std::string_view name) {
  if (name == "strata") return MakeStrataAdapter();
  if (name == "textbook") return MakeTextbookAdapter();
  if (name == "hash-binsearch") return MakeHashBinsearchAdapter();
  if (name == "rocksdb") return MakeRocksDbAdapter();
  if (name == "lmdb") return MakeLmdbAdapter();
  return nullptr;
}

}  // namespace strata::bench
