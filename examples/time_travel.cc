// Reading the past: every version of a key, a read at an old timestamp,
// and what compaction takes away (reads below it get kCompacted).
#include <cstdio>

#include "strata/mvcc_store.h"

int main() {
  strata::MvccStore store;
  for (uint64_t ts = 10; ts <= 50; ts += 10) {
    (void)store.Put("config", "v" + std::to_string(ts / 10), strata::Timestamp(ts));
  }
  (void)store.Delete("config", strata::Timestamp(60));

  auto history = store.History("config", std::nullopt, std::nullopt, 100);
  bool ok = history.ok() && history->versions.size() == 6 && history->versions.back().deleted;

  auto then = store.Get("config", strata::Timestamp(25));  // as of 25: v2
  ok = ok && then.ok() && then->found && then->value == "v2";
  auto now = store.Get("config");  // deleted at 60
  ok = ok && now.ok() && (!now->found || now->deleted);

  store.Compact(strata::Timestamp(40));
  auto gone = store.Get("config", strata::Timestamp(25));
  ok = ok && !gone.ok() && gone.status().code() == strata::StatusCode::kCompacted;
  auto kept = store.Get("config", strata::Timestamp(45));  // at or above the horizon: still there
  ok = ok && kept.ok() && kept->value == "v4";

  std::puts(ok ? "time_travel: ok" : "time_travel: FAILED");
  return ok ? 0 : 1;
}
