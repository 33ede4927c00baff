// DurableOracle: the timestamp oracle of a durable store, which never hands
// out a timestamp twice, across restarts too.
//
// Logging every timestamp would cost a log record per begin. Instead the
// oracle reserves a window: before handing out timestamps up to T it logs
// "reserved through T" (and, for a store whose callers wait for durability,
// waits for that record). After a crash it restarts above the last
// reservation, so timestamps jump ahead by at most one window per restart.
#ifndef STRATA_STORAGE_DURABLE_ORACLE_H_
#define STRATA_STORAGE_DURABLE_ORACLE_H_

#include <atomic>
#include <cstdint>

#include "base/mutex.h"
#include "storage/wal_writer.h"
#include "strata/timestamp_oracle.h"

namespace strata::storage {

class DurableOracle final : public TimestampOracle {
 public:
  // Timestamps reserved per log record.
  static constexpr uint64_t kWindow = uint64_t{1} << 20;

  // Starts above `recovered_through`: the highest timestamp the recovered
  // state says may have been handed out (reservations, writes, horizon).
  DurableOracle(WalWriter* wal, uint64_t recovered_through);

  Result<Timestamp> Next() override;
  void Observe(Timestamp seen) override;
  Timestamp Last() const override;
  // The highest reservation appended to the log so far (for checkpoints:
  // read after the log rolled, it covers every reservation before the roll).
  uint64_t reserved_through() const;

 private:
  Status Reserve(uint64_t needed);

  WalWriter* const wal_;
  std::atomic<uint64_t> last_;
  std::atomic<uint64_t> usable_through_;  // Next() may hand out up to here
  // Held from appending a reservation until reserved_appended_ says so.
  mutable Mutex reserve_mutex_;
  uint64_t reserved_appended_ STRATA_GUARDED_BY(reserve_mutex_);
};

}  // namespace strata::storage

#endif  // STRATA_STORAGE_DURABLE_ORACLE_H_
