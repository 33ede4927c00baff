// Concurrency tests: readers, writers and a compactor on one MvccStore at
// once. Each scenario is built so that every read has a deterministic or
// self-checking answer:
//
//  * StableSnapshots: all data below the readers' snapshots is loaded before
//    the threads start, writers only write above the snapshots, and the
//    compaction horizon stays at or below the lowest snapshot, so every read
//    at a snapshot must equal a precomputed ReferenceStore answer.
//  * LatestReadsAreMonotonic: writers publish versions whose value encodes
//    (key, timestamp, version); readers of the latest version check the
//    encoding and that time never goes backwards for them.
//  * CompactionChurn: keys are put, deleted, compacted away completely and
//    recreated while readers traverse them, so freed versions and key entries
//    are reclaimed under the readers' feet (TSan/ASan catch misuse).
//
// Each scenario runs for STRATA_STRESS_SECONDS (default 1.5) of wall time, so
// the suite stays bounded under sanitizers, which only lowers the op count.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <latch>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "reference_store.h"
#include "strata/mvcc_store.h"
#include "support/worker_failures.h"
#include "test_support.h"

namespace strata::testing {
namespace {

using Clock = std::chrono::steady_clock;

Clock::duration StressDuration() {
  double seconds = 1.5;
  if (const char* env = std::getenv("STRATA_STRESS_SECONDS")) seconds = std::atof(env);
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

using Failures = ::strata::testing::WorkerFailures;

// Starts every task at once (so they overlap from the first operation) and
// joins them all.
void RunConcurrently(const std::vector<std::function<void()>>& tasks) {
  std::latch start(static_cast<std::ptrdiff_t>(tasks.size()));
  std::vector<std::thread> threads;
  threads.reserve(tasks.size());
  for (const auto& task : tasks) {
    threads.emplace_back([&start, &task] {
      start.arrive_and_wait();
      task();
    });
  }
  for (std::thread& t : threads) t.join();
}

// The shape all scenarios share: writers run until a deadline, readers and
// the compactor until the last writer is done (so they overlap every write),
// then failures are reported.
// Two of each: with the compactor that is five threads on the two-core CI
// machines, enough to interleave without starving anyone under TSan.
constexpr size_t kWriterThreads = 2;
constexpr size_t kReaderThreads = 2;

// Each function returns how many operations (or compaction rounds) it ran.
struct Scenario {
  std::function<uint64_t(size_t writer, Clock::time_point deadline)> write;
  std::function<uint64_t(size_t reader, const std::atomic<bool>& writers_done)> read;
  std::function<uint64_t(const std::atomic<bool>& writers_done)> compact;
};

void RunScenario(const Scenario& scenario) {
  const Clock::time_point deadline = Clock::now() + StressDuration();
  std::atomic<size_t> writers_left{kWriterThreads};
  std::atomic<bool> writers_done{false};
  std::atomic<uint64_t> writes{0}, reads{0}, compactions{0};
  std::vector<std::function<void()>> tasks;
  for (size_t w = 0; w < kWriterThreads; ++w) {
    tasks.push_back([&, w] {
      writes += scenario.write(w, deadline);
      if (writers_left.fetch_sub(1) == 1) writers_done.store(true, std::memory_order_release);
    });
  }
  for (size_t r = 0; r < kReaderThreads; ++r) {
    tasks.push_back([&, r] { reads += scenario.read(r, writers_done); });
  }
  tasks.push_back([&] { compactions += scenario.compact(writers_done); });
  RunConcurrently(tasks);
  // Printed so a sanitizer run shows how much interleaving it really got.
  std::cout << "writes: " << writes << ", read rounds: " << reads
            << ", compaction rounds: " << compactions << "\n";
  // A scenario where some role never ran would check nothing concurrent.
  EXPECT_GT(writes.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_GT(compactions.load(), 0u);
}

// One full incremental sweep at `horizon`, the way a background collector
// would run it.
void SweepIncrementally(MvccStore& store, Timestamp horizon, size_t max_keys) {
  store.RaiseHorizon(horizon);
  while (!store.CompactStep(max_keys).sweep_finished) {
  }
}

// Alternates the two compaction APIs so both run against concurrent readers.
void CompactOnce(MvccStore& store, Timestamp horizon, uint64_t round) {
  if (round % 2 == 0) {
    store.Compact(horizon);
  } else {
    SweepIncrementally(store, horizon, 1 + round % 7);
  }
}

// --- Values that describe themselves ---------------------------------------

// "<key>@<ts>#<version>|<padding>": readers can check a value against the
// version and timestamp it came with, without knowing what was written. The
// padding keeps values off the small-string buffer so they are real heap
// blocks that a use-after-free would touch.
std::string EncodeValue(std::string_view key, uint64_t ts, uint64_t version, size_t padding) {
  return std::string(key) + "@" + std::to_string(ts) + "#" + std::to_string(version) + "|" +
         std::string(padding, static_cast<char>('a' + ts % 26));
}

struct DecodedValue {
  std::string key;
  uint64_t ts = 0;
  uint64_t version = 0;
};

std::optional<DecodedValue> DecodeValue(std::string_view value) {
  const size_t at = value.rfind('@', value.find('|'));
  const size_t hash = value.find('#', at);
  const size_t bar = value.find('|', hash);
  if (at == std::string_view::npos || hash == std::string_view::npos ||
      bar == std::string_view::npos) {
    return std::nullopt;
  }
  DecodedValue d{.key = std::string(value.substr(0, at))};
  if (std::from_chars(value.data() + at + 1, value.data() + hash, d.ts).ec != std::errc() ||
      std::from_chars(value.data() + hash + 1, value.data() + bar, d.version).ec != std::errc()) {
    return std::nullopt;
  }
  const std::string_view padding = value.substr(bar + 1);
  if (std::any_of(padding.begin(), padding.end(),
                  [&](char c) { return c != static_cast<char>('a' + d.ts % 26); })) {
    return std::nullopt;
  }
  return d;
}

// Checks a value read for `key` against its self-description. The version is
// checked only when the scenario's key numbering is stable (no key is ever
// compacted away and recreated).
std::optional<std::string> CheckSelfDescribing(std::string_view key, std::string_view value,
                                               Timestamp ts, std::optional<uint64_t> version) {
  const std::optional<DecodedValue> d = DecodeValue(value);
  if (!d || d->key != key || d->ts != ts.value() || (version && d->version != *version)) {
    return "key \"" + EscapeBytes(key) + "\" ts " + ToString(ts) + " version " +
           (version ? std::to_string(*version) : "?") + " has value \"" + EscapeBytes(value) + "\"";
  }
  return std::nullopt;
}

// The lowest timestamp no writer can still write at or below: each writer
// publishes the last timestamp it finished, and every later timestamp it
// takes from the shared clock is larger. Compacting up to the minimum never
// rejects a write that is in flight.
class WriterWatermarks {
 public:
  explicit WriterWatermarks(size_t writers) : done_(writers) {}
  void Publish(size_t writer, uint64_t ts) { done_[writer].store(ts, std::memory_order_release); }
  uint64_t SafeHorizon() const {
    uint64_t safe = std::numeric_limits<uint64_t>::max();
    for (const auto& d : done_) safe = std::min(safe, d.load(std::memory_order_acquire));
    return safe;
  }

 private:
  std::vector<std::atomic<uint64_t>> done_;
};

// Runs the compactor until `stop`, at horizons the watermarks say are safe.
uint64_t CompactBehindWriters(MvccStore& store, const WriterWatermarks& watermarks,
                              const std::atomic<bool>& stop) {
  uint64_t round = 0;
  while (!stop.load(std::memory_order_acquire)) {
    const uint64_t safe = watermarks.SafeHorizon();
    if (safe == 0) {
      std::this_thread::yield();  // 0 would mean "nothing compacted"
      continue;
    }
    CompactOnce(store, Timestamp(safe), round++);
  }
  return round;
}

// --- Scenario 1: reads at fixed snapshots ----------------------------------

constexpr uint64_t kSnapshots[] = {400, 700, 1000};
constexpr uint64_t kLowestSnapshot = 400;
constexpr uint64_t kHighestSnapshot = 1000;

std::string PreloadedKey(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%03d", i);
  // Some keys carry '\0' and 0xff bytes, which must sort bytewise.
  std::string key(buf);
  if (i % 10 == 3) key += std::string("\0\xff", 2);
  return key;
}

// What every read at a snapshot must return, computed once from the model.
struct SnapshotExpectations {
  std::vector<std::string> keys;
  // gets[s][k]: Get(keys[k]) at kSnapshots[s].
  std::vector<std::vector<ReadResult>> gets;
  std::vector<ScanResult> full_scans;
  std::vector<ScanResult> prefix_scans;  // prefix "k1", limit 7
  std::vector<HistoryResult> histories;  // per key, ts in (lowest snapshot, highest]
};

constexpr size_t kPrefixScanLimit = 7;

void PreloadBelowSnapshots(MvccStore& store, ReferenceStore& model, SnapshotExpectations& exp) {
  std::mt19937 rng(4242);
  for (int i = 0; i < 200; ++i) exp.keys.push_back(PreloadedKey(i));
  for (int i = 0; i < 1500; ++i) {
    const std::string& key = exp.keys[rng() % exp.keys.size()];
    const Timestamp ts(1 + rng() % kHighestSnapshot);
    const bool is_delete = rng() % 5 == 0;
    const std::string value = EncodeValue(key, ts.value(), 0, rng() % 40);
    // Conflicts and retries are fine here; both stores must agree on them.
    Result<WriteResult> engine = is_delete ? store.Delete(key, ts) : store.Put(key, value, ts);
    Result<WriteResult> expected = is_delete ? model.Delete(key, ts) : model.Put(key, value, ts);
    ASSERT_EQ(engine.ok(), expected.ok()) << ToString(engine.status());
  }
  for (uint64_t snapshot : kSnapshots) {
    std::vector<ReadResult>& gets = exp.gets.emplace_back();
    for (const std::string& key : exp.keys) gets.push_back(*model.Get(key, Timestamp(snapshot)));
    exp.full_scans.push_back(*model.Scan(ModelRange::All(), Timestamp(snapshot), 100000));
    exp.prefix_scans.push_back(
        *model.Scan(ModelRange::Prefix("k1"), Timestamp(snapshot), kPrefixScanLimit));
  }
  for (const std::string& key : exp.keys) {
    exp.histories.push_back(
        *model.History(key, Timestamp(kLowestSnapshot + 1), Timestamp(kHighestSnapshot), 1000));
  }
}

// A read at a snapshot at or above the horizon equals the model, except that
// a tombstone compaction dropped reads as "not found".
bool SameSnapshotRead(const ReadResult& actual, const ReadResult& expected) {
  return actual == expected ||
         (expected.deleted && !actual.found && !actual.deleted && actual.value.empty());
}

uint64_t ReadSnapshots(const MvccStore& store, const SnapshotExpectations& exp, uint32_t seed,
                       const std::atomic<bool>& stop, Failures& failures) {
  std::mt19937 rng(seed);
  ReadResult reused;
  uint64_t i = 0;
  for (; !stop.load(std::memory_order_acquire) && !failures.any(); ++i) {
    const size_t s = rng() % std::size(kSnapshots);
    const Timestamp snapshot(kSnapshots[s]);
    const size_t k = rng() % exp.keys.size();
    const std::string& key = exp.keys[k];
    const ReadResult& expected = exp.gets[s][k];

    if (Status st = store.GetInto(key, snapshot, &reused); !st.ok()) {
      failures.Add("GetInto failed: " + ToString(st));
    } else if (!SameSnapshotRead(WithoutStaleFields(reused), expected)) {
      failures.Add("GetInto(" + EscapeBytes(key) + ", " + ToString(snapshot) +
                   ") = " + ToString(reused) + ", want " + ToString(expected));
    }
    if (i % 16 == 0) {
      Result<ReadResult> r = store.Get(key, snapshot);
      if (!r.ok() || !SameSnapshotRead(*r, expected)) {
        failures.Add("Get(" + EscapeBytes(key) + ", " + ToString(snapshot) +
                     ") = " + (r.ok() ? ToString(*r) : ToString(r.status())) + ", want " +
                     ToString(expected));
      }
      Result<HistoryResult> h =
          store.History(key, Timestamp(kLowestSnapshot + 1), Timestamp(kHighestSnapshot), 1000);
      if (!h.ok() || !(*h == exp.histories[k])) {
        failures.Add("History(" + EscapeBytes(key) +
                     ") = " + (h.ok() ? ToString(*h) : ToString(h.status())) + ", want " +
                     ToString(exp.histories[k]));
      }
    }
    if (i % 64 == 0) {
      Result<ScanResult> prefix =
          store.Scan(KeyRange::WithPrefix("k1"), snapshot, kPrefixScanLimit);
      if (!prefix.ok() || !(*prefix == exp.prefix_scans[s])) {
        failures.Add("prefix scan at " + ToString(snapshot) + " = " +
                     (prefix.ok() ? ToString(*prefix) : ToString(prefix.status())));
      }
    }
    if (i % 512 == 0) {
      Result<ScanResult> full = store.Scan(KeyRange::All(), snapshot, 100000);
      if (!full.ok() || !(*full == exp.full_scans[s])) {
        failures.Add("full scan at " + ToString(snapshot) + " differs from the model: " +
                     (full.ok() ? ToString(*full) : ToString(full.status())));
      }
      const StoreStats stats = store.GetStats();
      if (stats.compaction_horizon > Timestamp(kLowestSnapshot)) {
        failures.Add("horizon passed the lowest snapshot: " + ToString(stats));
      }
    }
  }
  return i;
}

// Writes strictly above every snapshot: to preloaded keys, and to new keys
// sorting between them, so the key index changes under the scans.
uint64_t WriteAboveSnapshots(MvccStore& store, const SnapshotExpectations& exp, size_t writer,
                             size_t writers, Clock::time_point deadline, Failures& failures) {
  std::mt19937 rng(static_cast<uint32_t>(writer) + 17);
  uint64_t i = 0;
  for (; Clock::now() < deadline && !failures.any(); ++i) {
    // Writers own disjoint timestamps, so they never conflict.
    const Timestamp ts(kHighestSnapshot + 1 + i * writers + writer);
    std::string key = exp.keys[rng() % exp.keys.size()];
    if (rng() % 2 == 0) key += "+new" + std::to_string(writer);
    Result<WriteResult> r = rng() % 4 == 0
                                ? store.Delete(key, ts)
                                : store.Put(key, EncodeValue(key, ts.value(), 0, rng() % 40), ts);
    if (!r.ok() || r->retry || r->timestamp != ts) {
      failures.Add("write above snapshots failed: " +
                   (r.ok() ? ToString(*r) : ToString(r.status())));
    }
  }
  return i;
}

// Raises the horizon in small steps up to the lowest snapshot, then keeps
// sweeping there.
uint64_t CompactUpToLowestSnapshot(MvccStore& store, const std::atomic<bool>& stop) {
  uint64_t round = 0;
  for (; !stop.load(std::memory_order_acquire); ++round) {
    const uint64_t horizon = std::min<uint64_t>(1 + round * 13, kLowestSnapshot);
    CompactOnce(store, Timestamp(horizon), round);
  }
  return round;
}

TEST(MvccStoreConcurrencyTest, SnapshotReadsStayExactWhileWritersAndCompactorRun) {
  MvccStore store;
  ReferenceStore model;
  SnapshotExpectations exp;
  ASSERT_NO_FATAL_FAILURE(PreloadBelowSnapshots(store, model, exp));

  Failures failures;
  RunScenario({
      .write =
          [&](size_t w, Clock::time_point deadline) {
            return WriteAboveSnapshots(store, exp, w, kWriterThreads, deadline, failures);
          },
      .read =
          [&](size_t r, const std::atomic<bool>& stop) {
            return ReadSnapshots(store, exp, 100 + static_cast<uint32_t>(r), stop, failures);
          },
      .compact =
          [&](const std::atomic<bool>& stop) { return CompactUpToLowestSnapshot(store, stop); },
  });
  failures.Report();

  // With the threads gone, the full answer must still be exact.
  for (size_t s = 0; s < std::size(kSnapshots); ++s) {
    EXPECT_THAT(store.Scan(KeyRange::All(), Timestamp(kSnapshots[s]), 100000),
                IsOkAndHolds(exp.full_scans[s]));
  }
  EXPECT_EQ(store.compaction_horizon(), Timestamp(kLowestSnapshot));
}

// --- Scenario 2: latest-version reads are monotonic ----------------------------

constexpr size_t kMonotonicKeys = 16;

std::string MonotonicKey(size_t i) { return StrCat("m", std::to_string(i)); }

// Each writer owns the keys i with i % writers == writer, so per key the
// timestamps (from the shared clock) and the version numbers both increase.
uint64_t WriteIncreasing(MvccStore& store, size_t writer, size_t writers,
                         std::atomic<uint64_t>& clock, WriterWatermarks& watermarks,
                         Clock::time_point deadline, Failures& failures) {
  std::vector<uint64_t> versions(kMonotonicKeys, 0);
  std::mt19937 rng(static_cast<uint32_t>(writer) + 5);
  uint64_t writes = 0;
  for (size_t i = writer; Clock::now() < deadline && !failures.any(); i += writers) {
    const size_t k = i % kMonotonicKeys;
    const std::string key = MonotonicKey(k);
    const Timestamp ts(clock.fetch_add(1));
    const uint64_t version = ++versions[k];
    Result<WriteResult> r = store.Put(key, EncodeValue(key, ts.value(), version, rng() % 64), ts);
    if (!r.ok() || !(*r == Written(version, ts.value()))) {
      failures.Add("Put(" + key + ", " + ToString(ts) +
                   ") = " + (r.ok() ? ToString(*r) : ToString(r.status())) + ", want version " +
                   std::to_string(version));
    }
    watermarks.Publish(writer, ts.value());
    ++writes;
  }
  return writes;
}

// What one reader has seen of one key so far.
struct SeenVersion {
  uint64_t ts = 0;
  uint64_t version = 0;
};

// Checks a latest-value observation against its encoding and against what
// this reader saw before.
void CheckMonotonic(const std::string& key, const std::string& value, Timestamp ts,
                    uint64_t version, SeenVersion& seen, Failures& failures) {
  if (auto error = CheckSelfDescribing(key, value, ts, version)) {
    failures.Add(*error);
    return;
  }
  if (ts.value() < seen.ts || version < seen.version) {
    failures.Add("key " + key + " went back from ts " + std::to_string(seen.ts) + " v" +
                 std::to_string(seen.version) + " to ts " + ToString(ts) + " v" +
                 std::to_string(version));
    return;
  }
  seen = {ts.value(), version};
}

uint64_t ReadLatest(const MvccStore& store, const std::atomic<bool>& stop, Failures& failures) {
  std::vector<SeenVersion> seen(kMonotonicKeys);
  std::optional<Timestamp> last_max;
  uint64_t i = 0;
  for (; !stop.load(std::memory_order_acquire) && !failures.any(); ++i) {
    const size_t k = i % kMonotonicKeys;
    const std::string key = MonotonicKey(k);
    Result<ReadResult> r = store.Get(key);
    if (!r.ok() || r->deleted || (!r->found && seen[k].ts > 0)) {
      // Only puts are written, and compaction keeps the newest version.
      failures.Add("Get(" + key + ") = " + (r.ok() ? ToString(*r) : ToString(r.status())));
    } else if (r->found) {
      CheckMonotonic(key, r->value, r->timestamp, r->version, seen[k], failures);
    }
    if (i % 32 == 0) {
      Result<ScanResult> scan = store.Scan(KeyRange::WithPrefix("m"), Timestamp::Max(), 100);
      if (!scan.ok()) failures.Add("scan failed: " + ToString(scan.status()));
      for (const ScanItem& item : scan.ok() ? scan->items : std::vector<ScanItem>{}) {
        const size_t item_k = std::stoul(item.key.substr(1));
        CheckMonotonic(item.key, item.value, item.timestamp, item.version, seen[item_k], failures);
      }
      // A read at the horizon just observed may race with the horizon
      // rising (kCompacted); if it is answered, the answer is consistent.
      const Timestamp horizon = store.compaction_horizon();
      Result<ReadResult> at_horizon = store.Get(key, horizon);
      if (at_horizon.ok() && at_horizon->found) {
        if (auto error = CheckSelfDescribing(key, at_horizon->value, at_horizon->timestamp,
                                             at_horizon->version)) {
          failures.Add(*error);
        }
      } else if (!at_horizon.ok() && at_horizon.status().code() != StatusCode::kCompacted) {
        failures.Add("Get at horizon: " + ToString(at_horizon.status()));
      }
      const std::optional<Timestamp> max_ts = store.max_timestamp();
      if (last_max && (!max_ts || *max_ts < *last_max)) {
        failures.Add("max_timestamp went backwards");
      }
      last_max = max_ts;
    }
  }
  return i;
}

TEST(MvccStoreConcurrencyTest, LatestReadsNeverGoBackInTime) {
  MvccStore store;
  std::atomic<uint64_t> clock{1};
  WriterWatermarks watermarks(kWriterThreads);
  Failures failures;
  RunScenario({
      .write =
          [&](size_t w, Clock::time_point deadline) {
            return WriteIncreasing(store, w, kWriterThreads, clock, watermarks, deadline, failures);
          },
      .read = [&](size_t,
                  const std::atomic<bool>& stop) { return ReadLatest(store, stop, failures); },
      .compact =
          [&](const std::atomic<bool>& stop) {
            return CompactBehindWriters(store, watermarks, stop);
          },
  });
  failures.Report();

  // Compaction kept exactly one version at or below the horizon per key.
  const StoreStats stats = store.GetStats();
  EXPECT_EQ(stats.keys, kMonotonicKeys);
  EXPECT_EQ(stats.tombstones, 0u);
  EXPECT_EQ(stats.max_timestamp, Timestamp(clock.load() - 1));
}

// --- Scenario 3: keys compacted away and recreated under readers -------------

constexpr size_t kChurnKeys = 8;

std::string ChurnKey(size_t i) { return StrCat("churn", std::to_string(i)); }

// Per owned key: put, then delete, so that compaction behind the writers
// finds the tombstone as the newest version and removes the key entirely;
// the next put recreates it.
uint64_t WriteChurn(MvccStore& store, size_t writer, size_t writers, std::atomic<uint64_t>& clock,
                    WriterWatermarks& watermarks, Clock::time_point deadline, Failures& failures) {
  std::mt19937 rng(static_cast<uint32_t>(writer) + 99);
  uint64_t writes = 0;
  for (size_t i = writer; Clock::now() < deadline && !failures.any(); i += writers) {
    const std::string key = ChurnKey(i % kChurnKeys);
    const Timestamp put_ts(clock.fetch_add(1));
    Result<WriteResult> put =
        store.Put(key, EncodeValue(key, put_ts.value(), 0, 16 + rng() % 200), put_ts);
    const Timestamp delete_ts(clock.fetch_add(1));
    Result<WriteResult> del = store.Delete(key, delete_ts);
    for (const Result<WriteResult>* r : {&put, &del}) {
      if (!r->ok() || (*r)->retry) {
        failures.Add("churn write failed: " + (r->ok() ? ToString(**r) : ToString(r->status())));
      }
    }
    watermarks.Publish(writer, delete_ts.value());
    writes += 2;
  }
  return writes;
}

// Reads the churning keys every way there is; versions are not checked
// (a recreated key starts its count afresh) but every value must match the
// timestamp it was read with, and orderings must hold.
uint64_t ReadChurn(const MvccStore& store, const std::atomic<bool>& stop, Failures& failures) {
  std::vector<uint64_t> newest_seen(kChurnKeys, 0);
  ReadResult reused;
  uint64_t i = 0;
  for (; !stop.load(std::memory_order_acquire) && !failures.any(); ++i) {
    const size_t k = i % kChurnKeys;
    const std::string key = ChurnKey(k);
    if (Status st = store.GetInto(key, Timestamp::Max(), &reused); !st.ok()) {
      failures.Add("GetInto: " + ToString(st));
    } else if (reused.found) {
      if (reused.timestamp.value() < newest_seen[k]) {
        failures.Add(key + " went back to ts " + ToString(reused.timestamp));
      }
      newest_seen[k] = reused.timestamp.value();
      if (reused.deleted ? !reused.value.empty()
                         : CheckSelfDescribing(key, reused.value, reused.timestamp, std::nullopt)
                               .has_value()) {
        failures.Add("GetInto(" + key + ") = " + ToString(reused));
      }
    }

    Result<HistoryResult> history = store.History(key, std::nullopt, std::nullopt, 64);
    if (!history.ok()) {
      failures.Add("History: " + ToString(history.status()));
    } else {
      for (size_t j = 0; j < history->versions.size(); ++j) {
        const HistoryEntry& e = history->versions[j];
        const bool ordered = j == 0 || history->versions[j - 1].timestamp < e.timestamp;
        const bool consistent = e.deleted
                                    ? e.value.empty()
                                    : !CheckSelfDescribing(key, e.value, e.timestamp, std::nullopt);
        if (!ordered || !consistent) failures.Add("History(" + key + ") = " + ToString(*history));
      }
    }

    if (i % 8 == 0) {
      Result<ScanResult> scan = store.Scan(KeyRange::WithPrefix("churn"), Timestamp::Max(), 100);
      if (!scan.ok()) failures.Add("Scan: " + ToString(scan.status()));
      for (const ScanItem& item : scan.ok() ? scan->items : std::vector<ScanItem>{}) {
        if (auto error = CheckSelfDescribing(item.key, item.value, item.timestamp, std::nullopt)) {
          failures.Add("Scan: " + *error);
        }
      }
      // `since` may fall below the horizon by the time Changes runs.
      Result<ChangesResult> changes =
          store.Changes(store.compaction_horizon(), KeyRange::All(), 256);
      if (!changes.ok() && changes.status().code() != StatusCode::kCompacted) {
        failures.Add("Changes: " + ToString(changes.status()));
      }
      const std::vector<Change> none;
      const std::vector<Change>& list = changes.ok() ? changes->changes : none;
      for (size_t j = 0; j < list.size(); ++j) {
        const Change& c = list[j];
        const bool ordered = j == 0 || std::tie(list[j - 1].timestamp, list[j - 1].key) <
                                           std::tie(c.timestamp, c.key);
        const bool consistent =
            c.deleted ? c.value.empty()
                      : !CheckSelfDescribing(c.key, c.value, c.timestamp, std::nullopt);
        if (!ordered || !consistent) failures.Add("Changes = " + ToString(*changes));
      }
      (void)store.GetStats();  // walks the counters while they change
    }
  }
  return i;
}

TEST(MvccStoreConcurrencyTest, KeysCompactedAwayAndRecreatedUnderReaders) {
  MvccStore store;
  std::atomic<uint64_t> clock{1};
  WriterWatermarks watermarks(kWriterThreads);
  Failures failures;
  RunScenario({
      .write =
          [&](size_t w, Clock::time_point deadline) {
            return WriteChurn(store, w, kWriterThreads, clock, watermarks, deadline, failures);
          },
      .read = [&](size_t,
                  const std::atomic<bool>& stop) { return ReadChurn(store, stop, failures); },
      .compact =
          [&](const std::atomic<bool>& stop) {
            return CompactBehindWriters(store, watermarks, stop);
          },
  });
  failures.Report();

  // The collector really did remove versions while the readers ran.
  EXPECT_GT(store.GetStats().gc_versions_removed, 0u);
  // Every key ends deleted; one last sweep past the final delete must leave
  // nothing behind, and the collector must have removed keys along the way.
  store.Compact(Timestamp(clock.load()));
  const StoreStats stats = store.GetStats();
  EXPECT_EQ(stats.keys, 0u) << ToString(stats);
  EXPECT_EQ(stats.versions, 0u) << ToString(stats);
  EXPECT_EQ(stats.bytes, 0u) << ToString(stats);
  EXPECT_GT(stats.gc_runs, 1u) << ToString(stats);
  EXPECT_THAT(store.Scan(KeyRange::All(), Timestamp::Max(), 100), IsOkAndHolds(ScanResult{}));
}

// --- More readers than the engine has reader slots ---------------------------

// docs/LIMITS.md: at most 128 readers are pinned at once and the rest wait
// for a free slot. With more reader threads than that, every read must still
// be served, and correctly, while a writer and the compactor keep going.
TEST(MvccStoreConcurrencyTest, MoreReadersThanReaderSlotsAreAllServed) {
  constexpr size_t kReaders = 160;
  // Long scans keep readers pinned, so that with 2 cores and preemption more
  // than 128 are likely pinned at some moment (not guaranteed: best effort).
  constexpr int kKeys = 1000;
  constexpr int kScansPerReader = 25;
  constexpr uint64_t kSnapshot = 10;
  MvccStore store;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = PreloadedKey(i);
    ASSERT_THAT(store.Put(key, EncodeValue(key, kSnapshot, 1, 32), Timestamp(kSnapshot)), IsOk());
  }
  const ScanResult expected = *store.Scan(KeyRange::All(), Timestamp(kSnapshot), kKeys);

  const Clock::time_point deadline = Clock::now() + StressDuration();
  Failures failures;
  std::atomic<size_t> readers_left{kReaders};
  std::vector<std::function<void()>> tasks;
  for (size_t r = 0; r < kReaders; ++r) {
    tasks.push_back([&] {
      // At least one scan each; the rest only while the time budget lasts,
      // since 160 threads on 2 cores crawl under TSan.
      for (int i = 0; i < kScansPerReader && !failures.any() && (i == 0 || Clock::now() < deadline);
           ++i) {
        Result<ScanResult> scan = store.Scan(KeyRange::All(), Timestamp(kSnapshot), kKeys);
        if (!scan.ok() || !(*scan == expected)) {
          failures.Add("scan at the snapshot: " +
                       (scan.ok() ? ToString(*scan) : ToString(scan.status())));
        }
      }
      readers_left.fetch_sub(1);
    });
  }
  tasks.push_back([&] {
    for (uint64_t ts = kSnapshot + 1; readers_left.load() > 0; ++ts) {
      const std::string key = PreloadedKey(static_cast<int>(ts % kKeys));
      if (Result<WriteResult> r = store.Put(key, EncodeValue(key, ts, 0, 32), Timestamp(ts));
          !r.ok()) {
        failures.Add("write: " + ToString(r.status()));
      }
    }
  });
  tasks.push_back([&] {
    for (uint64_t round = 0; readers_left.load() > 0; ++round) {
      CompactOnce(store, Timestamp(kSnapshot), round);
    }
  });
  RunConcurrently(tasks);
  failures.Report();
}

}  // namespace
}  // namespace strata::testing
