// Services: what a request handler may use. Handlers get this instead of
// the whole Node, so each handler's reach is visible in one place.
#ifndef STRATA_NODE_SERVICES_H_
#define STRATA_NODE_SERVICES_H_

#include "node/txn_table.h"
#include "strata/mvcc_store.h"
#include "strata/store.h"
#include "strata/txn_store.h"

namespace strata::node {

struct Services {
  MvccStore* store;      // reads
  TxnStore* db;          // writes, transactions, compaction
  TxnTable* txns;        // the node's open transactions
  const Store* durable;  // with --data-dir: the log's stats; nullptr in memory
  Isolation default_isolation;
  TxnTable::Clock::time_point now;  // when the current request arrived
};

}  // namespace strata::node

#endif  // STRATA_NODE_SERVICES_H_
