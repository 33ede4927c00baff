// TxnId: a distributed transaction's identity across the cluster.
//
// Each coordinator numbers its transactions with timestamps from its own
// hybrid clock, which are unique on that node but may repeat on another;
// the coordinator's index in the cluster's node list makes the pair unique.
// The stamp's physical part also dates the transaction, which bounds how
// long anyone must remember it (see Participant / TxnRecordTable).
#ifndef STRATA_CLUSTER_TXN_ID_H_
#define STRATA_CLUSTER_TXN_ID_H_

#include <compare>
#include <cstdint>
#include <functional>
#include <string>

namespace strata::cluster {

struct TxnId {
  uint64_t stamp = 0;        // a timestamp from the coordinator's clock
  uint32_t coordinator = 0;  // the coordinator's index in the node list

  auto operator<=>(const TxnId&) const = default;
  std::string ToString() const { return std::to_string(stamp) + "@" + std::to_string(coordinator); }
};

// What a transaction record says.
enum class TxnStatus { kPending, kCommitted, kAborted };

inline const char* TxnStatusName(TxnStatus status) {
  switch (status) {
    case TxnStatus::kPending:
      return "pending";
    case TxnStatus::kCommitted:
      return "committed";
    case TxnStatus::kAborted:
      return "aborted";
  }
  return "unknown";
}

struct TxnIdHash {
  size_t operator()(const TxnId& id) const {
    return std::hash<uint64_t>()(id.stamp * 0x9E3779B97F4A7C15ULL ^ id.coordinator);
  }
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_TXN_ID_H_
