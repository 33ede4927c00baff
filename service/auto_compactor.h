// AutoCompactor: etcd's --auto-compaction-mode / --auto-compaction-retention.
//
//  - periodic: keeps `retention` of history. It samples the current revision
//    every retention/10 (at least every second) and compacts to the revision
//    it sampled `retention` ago, so history younger than that survives.
//  - revision: keeps the last `revisions` revisions. It looks every second and
//    compacts to current - revisions once that moved a tenth of the
//    retention past the last compaction (so a busy store is not swept on
//    every tick).
// Compaction goes through KvService::Compact, as a client's would. Whatever
// the mode, every second it also completes compaction that watchers which
// keep up had held back (KvService::ApplyDeferredCompaction).
#ifndef STRATA_SERVICE_AUTO_COMPACTOR_H_
#define STRATA_SERVICE_AUTO_COMPACTOR_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <thread>

#include "base/mutex.h"
#include "service/kv_service.h"

namespace strata::service {

struct AutoCompactionOptions {
  enum class Mode { kOff, kPeriodic, kRevision };
  Mode mode = Mode::kOff;
  std::chrono::milliseconds retention{0};  // periodic
  int64_t revisions = 0;                   // revision
};

// Parses etcd's flags: mode "periodic" or "revision"; retention "0" (off),
// a duration ("1h", "30m", "90s") or, for periodic, a number of hours; for
// revision, a number of revisions. nullopt (with *error) if malformed.
std::optional<AutoCompactionOptions> ParseAutoCompaction(const std::string& mode,
                                                         const std::string& retention,
                                                         std::string* error);

class AutoCompactor final {
 public:
  AutoCompactor(KvService* kv, AutoCompactionOptions options);
  ~AutoCompactor();
  AutoCompactor(const AutoCompactor&) = delete;
  AutoCompactor& operator=(const AutoCompactor&) = delete;

 private:
  void Run();
  void CompactTo(int64_t revision);

  KvService* kv_;
  const AutoCompactionOptions options_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ STRATA_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_AUTO_COMPACTOR_H_
