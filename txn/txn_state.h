// TxnState: what one transaction carries between begin and commit.
#ifndef STRATA_TXN_TXN_STATE_H_
#define STRATA_TXN_TXN_STATE_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/txn_store.h"

namespace strata::txn_internal {

struct TxnState {
  uint64_t id = 0;
  Timestamp start;
  Isolation isolation = Isolation::kSerializable;
  bool read_only = false;
  bool active = true;
  std::chrono::steady_clock::time_point began;

  // Buffered writes, ordered so scans can merge them; nullopt is a delete.
  std::map<std::string, std::optional<std::string>, std::less<>> writes;
  // Serializable only: what was read at the snapshot, validated at commit.
  std::set<std::string, std::less<>> read_keys;
  std::vector<KeyRange> read_ranges;

  std::optional<std::string> conflict_key;

  bool validates_reads() const { return isolation == Isolation::kSerializable && !read_only; }
};

}  // namespace strata::txn_internal

#endif  // STRATA_TXN_TXN_STATE_H_
