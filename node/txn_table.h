// TxnTable: the node's open transactions by id, with idle expiry.
//
// Clients name transactions by id across messages; the table owns the
// Transaction handles between those messages. A transaction idle longer
// than the timeout is aborted, so a forgotten one cannot pin old versions
// (and the GC low-water mark) forever; its id is then unknown (error 14).
#ifndef STRATA_NODE_TXN_TABLE_H_
#define STRATA_NODE_TXN_TABLE_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <unordered_map>

#include "strata/txn_store.h"

namespace strata::node {

class TxnTable final {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TxnTable(std::chrono::milliseconds idle_timeout) : idle_timeout_(idle_timeout) {}

  void Add(Transaction txn, Clock::time_point now);
  // The open transaction with this id, its idle clock restarted; nullptr if
  // it does not exist (never did, ended, or expired).
  Transaction* Touch(uint64_t id, Clock::time_point now);
  // Forgets (and so aborts, if still active) the transaction.
  void Remove(uint64_t id);

  // Aborts transactions idle past the timeout; returns when to look again.
  Clock::time_point ExpireIdle(Clock::time_point now);
  uint64_t expired() const { return expired_; }

 private:
  struct Open {
    Transaction txn;
    Clock::time_point last_used;
  };
  const std::chrono::milliseconds idle_timeout_;
  std::unordered_map<uint64_t, Open> open_;
  Clock::time_point next_deadline_{};  // no transaction expires before this
  uint64_t expired_ = 0;
};

}  // namespace strata::node

#endif  // STRATA_NODE_TXN_TABLE_H_
