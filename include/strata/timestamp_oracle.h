// TimestampOracle: where transaction timestamps come from.
//
// Every timestamp it hands out is greater than every timestamp it handed out
// or observed before. An interface, because a cluster replaces the local
// counter with a hybrid logical clock; LocalOracle is the single-node case.
#ifndef STRATA_TIMESTAMP_ORACLE_H_
#define STRATA_TIMESTAMP_ORACLE_H_

#include <atomic>
#include <cstdint>
#include <optional>

#include "strata/status.h"
#include "strata/timestamp.h"

namespace strata {

class TimestampOracle {
 public:
  virtual ~TimestampOracle() = default;
  // A fresh timestamp above everything issued or observed. kUnavailable
  // once Timestamp::Max() has been issued or observed (there is none left),
  // or when the oracle cannot make its promise durable (a durable oracle
  // whose log failed). Thread-safe.
  virtual Result<Timestamp> Next() = 0;
  // Records a timestamp seen elsewhere (a raw write, a compaction request),
  // so that Next() stays above it. Thread-safe.
  virtual void Observe(Timestamp seen) = 0;
  // The highest timestamp issued or observed so far.
  virtual Timestamp Last() const = 0;
};

class LocalOracle final : public TimestampOracle {
 public:
  Result<Timestamp> Next() override;

  // The message of the kUnavailable Next() returns once no timestamp is left.
  static Status Exhausted();
  void Observe(Timestamp seen) override;
  Timestamp Last() const override;

 private:
  std::atomic<uint64_t> last_{0};
};

}  // namespace strata

#endif  // STRATA_TIMESTAMP_ORACLE_H_
