// Property test: random operation sequences run against MvccStore and the
// textbook ReferenceStore side by side; every result field and status code
// must agree.
//
// The generator is tuned for collisions rather than breadth: a handful of
// keys (including "", '\0' and 0xff bytes), a few values, and timestamps in a
// narrow window that slides forward with the sequence, so retries, conflicting
// writes, out-of-order arrivals, writes and reads just below the compaction
// horizon, and keys compacted away and recreated all happen in most runs.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "reference_store.h"
#include "strata/mvcc_store.h"
#include "test_support.h"

namespace strata::testing {
namespace {

using namespace std::string_literals;

// Tight limits, so oversized keys and values come up without big strings.
constexpr StoreOptions kOptions{.max_key_bytes = 3, .max_value_bytes = 6};

// Timestamps are generated relative to a clock that advances with the
// operation's position: the interesting window (around the horizon, around
// the newest writes) moves along instead of being exhausted by the first
// large compaction.
constexpr size_t kOpsPerClockTick = 3;

enum class OpKind {
  kPut,
  kDelete,
  kRepeatLastWrite,  // the previous Put or Delete again, same timestamp
  kGet,
  kGetLatest,  // Get with the default read timestamp
  kGetInto,
  kScan,
  kHistory,
  kChanges,
  kCompact,
  kCompactSteps,  // RaiseHorizon, then CompactStep until the sweep finishes
  kStats,
};

enum class RangeKind { kAll, kBounds, kPrefix };

struct RangeSpec {
  RangeKind kind = RangeKind::kAll;
  std::string start;               // kBounds: start; kPrefix: the prefix
  std::optional<std::string> end;  // kBounds only
};

// One generated operation. Timestamps are offsets from the clock; fields an
// operation kind does not use are left at their defaults.
struct Op {
  OpKind kind = OpKind::kStats;
  std::string key;
  std::string value;
  int ts_offset = 0;         // write ts, read ts, since, or horizon
  bool max_read_ts = false;  // read at Timestamp::Max() instead
  std::optional<int> from_offset;
  std::optional<int> to_offset;
  RangeSpec range;
  size_t limit = 1;
  size_t max_keys = 1;
};

// Assignment rather than designated initializers: GCC 12 flags every member a
// designated initializer leaves to its default (-Wmissing-field-initializers).
Op MakeOp(OpKind kind) {
  Op op;
  op.kind = kind;
  return op;
}

std::string_view KindName(OpKind kind) {
  switch (kind) {
    case OpKind::kPut:
      return "Put";
    case OpKind::kDelete:
      return "Delete";
    case OpKind::kRepeatLastWrite:
      return "RepeatLastWrite";
    case OpKind::kGet:
      return "Get";
    case OpKind::kGetLatest:
      return "GetLatest";
    case OpKind::kGetInto:
      return "GetInto";
    case OpKind::kScan:
      return "Scan";
    case OpKind::kHistory:
      return "History";
    case OpKind::kChanges:
      return "Changes";
    case OpKind::kCompact:
      return "Compact";
    case OpKind::kCompactSteps:
      return "CompactSteps";
    case OpKind::kStats:
      return "Stats";
  }
  return "?";
}

// How rapidcheck prints a counterexample. Timestamps are still relative to
// the clock here; the failure message lists the resolved operations.
void showValue(const Op& op, std::ostream& os) {
  os << "{" << KindName(op.kind) << " key=\"" << EscapeBytes(op.key) << "\" value=\""
     << EscapeBytes(op.value) << "\" ts+" << op.ts_offset << (op.max_read_ts ? " MAX" : "")
     << " limit=" << op.limit << "}";
}

// --- Generators ---------------------------------------------------------------

// rc::gen::maybe yields rc::Maybe; the API speaks std::optional.
template <typename T>
rc::Gen<std::optional<T>> GenOptional(rc::Gen<T> gen) {
  return rc::gen::weightedOneOf<std::optional<T>>(
      {{1, rc::gen::just(std::optional<T>())}, {3, rc::gen::map(std::move(gen), [](T value) {
                                                  return std::optional<T>(std::move(value));
                                                })}});
}

rc::Gen<std::string> GenKey() {
  // Mostly a small fixed set, so keys collide; sometimes any short byte
  // string over the awkward bytes, with length 4 exceeding the key limit.
  static const std::vector<std::string> kCommonKeys = {""s,  "a"s,    "ab"s,       "a\0"s,
                                                       "b"s, "\xff"s, "\xff\xff"s, "a\xff"s};
  return rc::gen::weightedOneOf<std::string>(
      {{10, rc::gen::elementOf(kCommonKeys)},
       {2, rc::gen::mapcat(rc::gen::inRange(0, 5), [](int length) {
          return rc::gen::container<std::string>(static_cast<size_t>(length),
                                                 rc::gen::element('\0', 'a', 'b', '\xff'));
        })}});
}

rc::Gen<std::string> GenValue() {
  // Few distinct values, so an identical retry is as likely as a conflict.
  // Length 7 exceeds the value limit.
  return rc::gen::weightedOneOf<std::string>(
      {{10, rc::gen::element(""s, "x"s, "yy"s, "v1"s, "v2"s)},
       {1, rc::gen::mapcat(rc::gen::inRange(0, 8), [](int length) {
          return rc::gen::container<std::string>(static_cast<size_t>(length),
                                                 rc::gen::element('\0', 'z', '\xff'));
        })}});
}

rc::Gen<RangeSpec> GenRange() {
  return rc::gen::weightedOneOf<RangeSpec>(
      {{1, rc::gen::just(RangeSpec{})},
       {3, rc::gen::apply(
               [](std::string start, std::optional<std::string> end) {
                 // Only well-formed ranges: start <= end.
                 if (end && *end < start) std::swap(start, *end);
                 return RangeSpec{
                     .kind = RangeKind::kBounds, .start = std::move(start), .end = std::move(end)};
               },
               GenKey(), GenOptional(GenKey()))},
       {3, rc::gen::map(GenKey(), [](std::string prefix) {
          return RangeSpec{.kind = RangeKind::kPrefix, .start = std::move(prefix), .end = {}};
        })}});
}

rc::Gen<size_t> GenLimit() { return rc::gen::inRange<size_t>(1, 9); }

rc::Gen<Op> GenWrite(OpKind kind) {
  return rc::gen::apply(
      [kind](std::string key, std::string value, int ts_offset) {
        Op op = MakeOp(kind);
        op.key = std::move(key);
        if (kind == OpKind::kPut) op.value = std::move(value);
        op.ts_offset = ts_offset;
        return op;
      },
      GenKey(), GenValue(), rc::gen::inRange(-8, 9));
}

rc::Gen<Op> GenPointRead(OpKind kind) {
  return rc::gen::apply(
      [kind](std::string key, int ts_offset, bool max_read_ts) {
        Op op = MakeOp(kind);
        op.key = std::move(key);
        op.ts_offset = ts_offset;
        op.max_read_ts = max_read_ts;
        return op;
      },
      GenKey(), rc::gen::inRange(-12, 11), rc::gen::weightedElement<bool>({{9, false}, {1, true}}));
}

rc::Gen<Op> GenScan() {
  return rc::gen::apply(
      [](RangeSpec range, int ts_offset, bool max_read_ts, size_t limit) {
        Op op = MakeOp(OpKind::kScan);
        op.ts_offset = ts_offset;
        op.max_read_ts = max_read_ts;
        op.range = std::move(range);
        op.limit = limit;
        return op;
      },
      GenRange(), rc::gen::inRange(-12, 11),
      rc::gen::weightedElement<bool>({{4, false}, {1, true}}), GenLimit());
}

rc::Gen<Op> GenHistory() {
  return rc::gen::apply(
      [](std::string key, std::optional<int> from, std::optional<int> to, size_t limit) {
        // Only well-formed bounds: from <= to.
        if (from && to && *to < *from) std::swap(*from, *to);
        Op op = MakeOp(OpKind::kHistory);
        op.key = std::move(key);
        op.from_offset = from;
        op.to_offset = to;
        op.limit = limit;
        return op;
      },
      GenKey(), GenOptional(rc::gen::inRange(-15, 11)), GenOptional(rc::gen::inRange(-15, 11)),
      rc::gen::inRange<size_t>(1, 5));
}

rc::Gen<Op> GenChanges() {
  return rc::gen::apply(
      [](RangeSpec range, int since_offset, size_t limit) {
        Op op = MakeOp(OpKind::kChanges);
        op.ts_offset = since_offset;
        op.range = std::move(range);
        op.limit = limit;
        return op;
      },
      GenRange(), rc::gen::inRange(-20, 6), rc::gen::inRange<size_t>(1, 20));
}

rc::Gen<Op> GenCompaction(OpKind kind) {
  // Horizons mostly trail the clock (the normal case) and sometimes lead it,
  // which closes timestamps the writers are still using.
  return rc::gen::apply(
      [kind](int horizon_offset, size_t max_keys) {
        Op op = MakeOp(kind);
        op.ts_offset = horizon_offset;
        op.max_keys = max_keys;
        return op;
      },
      rc::gen::inRange(-15, 4), rc::gen::inRange<size_t>(1, 4));
}

rc::Gen<Op> GenOp() {
  return rc::gen::weightedOneOf<Op>({
      {30, GenWrite(OpKind::kPut)},
      {12, GenWrite(OpKind::kDelete)},
      {4, rc::gen::just(MakeOp(OpKind::kRepeatLastWrite))},
      {14, GenPointRead(OpKind::kGet)},
      {3, GenPointRead(OpKind::kGetLatest)},
      {4, GenPointRead(OpKind::kGetInto)},
      {10, GenScan()},
      {7, GenHistory()},
      {7, GenChanges()},
      {2, GenCompaction(OpKind::kCompact)},
      {2, GenCompaction(OpKind::kCompactSteps)},
      {4, rc::gen::just(MakeOp(OpKind::kStats))},
  });
}

// --- Running a sequence ----------------------------------------------------------

std::string Show(const Status& status) { return ToString(status); }
template <typename T>
std::string Show(const Result<T>& result) {
  return result.ok() ? ToString(*result) : ToString(result.status());
}

// How often the situations the generator is tuned for actually came up,
// judged by the model's answers. A generator that silently stopped producing
// retries or recreated keys would leave those rules untested.
using Coverage = std::map<std::string, uint64_t>;  // situation -> times seen

// The situations GeneratorReachesEverySituation requires.
const std::vector<std::string> kSituations = {"retry",
                                              "conflicting write",
                                              "oversized write",
                                              "write below horizon",
                                              "out-of-order write",
                                              "recreated key",
                                              "key compacted away",
                                              "read below horizon",
                                              "tombstone read",
                                              "scan cut by limit",
                                              "history cut by limit",
                                              "changes cut by limit"};

// Runs one sequence against both stores, failing the property at the first
// disagreement with the operations executed so far (timestamps resolved).
class SequenceRunner {
 public:
  void Run(const std::vector<Op>& ops) {
    for (size_t i = 0; i < ops.size(); ++i) {
      clock_ = i / kOpsPerClockTick;
      RunOp(ops[i]);
    }
    CheckEverything("final state");
  }

  const Coverage& coverage() const { return coverage_; }

 private:
  // Coverage bookkeeping, keyed on the type of answer the model gave.
  template <typename T>
  void CountCompacted(const Result<T>& model) {
    if (!model.ok() && model.status().code() == StatusCode::kCompacted) {
      ++coverage_["read below horizon"];
    }
  }
  void Count(const Result<WriteResult>& model) {
    if (model.ok() && model->retry) ++coverage_["retry"];
  }
  void Count(const Result<ReadResult>& model) {
    CountCompacted(model);
    if (model.ok() && model->deleted) ++coverage_["tombstone read"];
  }
  void Count(const Result<ScanResult>& model) {
    CountCompacted(model);
    if (model.ok() && model->more) ++coverage_["scan cut by limit"];
  }
  void Count(const Result<HistoryResult>& model) {
    CountCompacted(model);
    if (model.ok() && model->more) ++coverage_["history cut by limit"];
  }
  void Count(const Result<ChangesResult>& model) {
    CountCompacted(model);
    if (model.ok() && model->more) ++coverage_["changes cut by limit"];
  }

  Timestamp At(int offset) const {
    const int64_t ts = static_cast<int64_t>(clock_) + offset;
    return Timestamp(static_cast<uint64_t>(std::max<int64_t>(0, ts)));
  }
  // A horizon of 0 is never requested: the spec gives 0 the special meaning
  // "nothing compacted", and whether Compact(0) sweeps at all is left open.
  Timestamp HorizonAt(int offset) const { return std::max(At(offset), Timestamp(1)); }
  Timestamp ReadTs(const Op& op) const {
    return op.max_read_ts ? Timestamp::Max() : At(op.ts_offset);
  }
  static ModelRange ToModelRange(const RangeSpec& spec) {
    switch (spec.kind) {
      case RangeKind::kAll:
        return ModelRange::All();
      case RangeKind::kBounds:
        return ModelRange::Bounds(spec.start, spec.end);
      case RangeKind::kPrefix:
        return ModelRange::Prefix(spec.start);
    }
    return ModelRange::All();
  }

  void Log(std::string line) { log_.push_back(std::move(line)); }

  void Fail(const std::string& what, const std::string& engine, const std::string& model) {
    std::string message = "after these operations:\n";
    for (const std::string& line : log_) message += "  " + line + "\n";
    message += "mismatch in " + what + "\n  engine: " + engine + "\n  model:  " + model;
    RC_FAIL(message);
  }

  template <typename T>
  void ExpectSame(const std::string& what, const Result<T>& engine, const Result<T>& model) {
    const bool same =
        engine.ok() == model.ok() &&
        (engine.ok() ? *engine == *model : engine.status().code() == model.status().code());
    if (!same) Fail(what, Show(engine), Show(model));
    Count(model);
  }

  // A write may fail with any of the errors that apply (the spec does not
  // rank them); if none applies it must succeed exactly as the model says.
  void RunWrite(std::string_view key, std::optional<std::string_view> value, Timestamp ts) {
    const std::string what = value
                                 ? StrCat("Put(\"", EscapeBytes(key), "\", \"", EscapeBytes(*value),
                                          "\", ", ToString(ts), ")")
                                 : StrCat("Delete(\"", EscapeBytes(key), "\", ", ToString(ts), ")");
    Log(what);
    last_write_ = {std::string(key), value ? std::optional<std::string>(*value) : std::nullopt, ts};
    const std::vector<StatusCode> allowed = model_.WriteErrors(key, value, ts);
    const Result<ReadResult> newest_before = model_.Get(key);
    Result<WriteResult> engine = value ? store_.Put(key, *value, ts) : store_.Delete(key, ts);
    Result<WriteResult> model = value ? model_.Put(key, *value, ts) : model_.Delete(key, ts);
    CountWrite(key, ts, allowed, newest_before, model);
    if (allowed.empty() || engine.ok()) {
      ExpectSame(what, engine, model);
      return;
    }
    if (std::find(allowed.begin(), allowed.end(), engine.status().code()) == allowed.end()) {
      Fail(what, Show(engine), "one of the applicable errors, first " + Show(model));
    }
  }

  void CountWrite(std::string_view key, Timestamp ts, const std::vector<StatusCode>& errors,
                  const Result<ReadResult>& newest_before, const Result<WriteResult>& model) {
    auto has = [&](StatusCode code) {
      return std::find(errors.begin(), errors.end(), code) != errors.end();
    };
    if (has(StatusCode::kPreconditionFailed)) ++coverage_["conflicting write"];
    if (has(StatusCode::kInvalidArgument)) ++coverage_["oversized write"];
    if (has(StatusCode::kCompacted)) ++coverage_["write below horizon"];
    if (!model.ok() || model->retry) return;
    if (newest_before.ok() && newest_before->found && ts < newest_before->timestamp) {
      ++coverage_["out-of-order write"];
    }
    // A key written before whose every version was compacted away: its
    // count goes on (model->version > 1) though nothing of it is stored.
    const bool known = !keys_ever_written_.insert(std::string(key)).second;
    if (known && newest_before.ok() && !newest_before->found) ++coverage_["recreated key"];
  }

  void RunOp(const Op& op) {
    switch (op.kind) {
      case OpKind::kPut:
        RunWrite(op.key, op.value, At(op.ts_offset));
        break;
      case OpKind::kDelete:
        RunWrite(op.key, std::nullopt, At(op.ts_offset));
        break;
      case OpKind::kRepeatLastWrite:
        if (last_write_) {
          // Copied: RunWrite overwrites last_write_.
          const LastWrite again = *last_write_;
          RunWrite(again.key, again.value, again.timestamp);
        }
        break;
      case OpKind::kGet: {
        const std::string what =
            "Get(\"" + EscapeBytes(op.key) + "\", " + ToString(ReadTs(op)) + ")";
        Log(what);
        ExpectSame(what, store_.Get(op.key, ReadTs(op)), model_.Get(op.key, ReadTs(op)));
        break;
      }
      case OpKind::kGetLatest: {
        const std::string what = "Get(\"" + EscapeBytes(op.key) + "\")";
        Log(what);
        ExpectSame(what, store_.Get(op.key), model_.Get(op.key));
        break;
      }
      case OpKind::kGetInto:
        RunGetInto(op);
        break;
      case OpKind::kScan: {
        const ModelRange range = ToModelRange(op.range);
        const std::string what = "Scan(" + range.ToString() + ", " + ToString(ReadTs(op)) +
                                 ", limit " + std::to_string(op.limit) + ")";
        Log(what);
        ExpectSame(what, store_.Scan(range.ToKeyRange(), ReadTs(op), op.limit),
                   model_.Scan(range, ReadTs(op), op.limit));
        break;
      }
      case OpKind::kHistory: {
        std::optional<Timestamp> from, to;
        if (op.from_offset) from = At(*op.from_offset);
        if (op.to_offset) to = At(*op.to_offset);
        const std::string what =
            "History(\"" + EscapeBytes(op.key) + "\", " + (from ? ToString(*from) : "-") + ", " +
            (to ? ToString(*to) : "-") + ", limit " + std::to_string(op.limit) + ")";
        Log(what);
        ExpectSame(what, store_.History(op.key, from, to, op.limit),
                   model_.History(op.key, from, to, op.limit));
        break;
      }
      case OpKind::kChanges: {
        const ModelRange range = ToModelRange(op.range);
        const std::string what = "Changes(" + ToString(At(op.ts_offset)) + ", " + range.ToString() +
                                 ", limit " + std::to_string(op.limit) + ")";
        Log(what);
        ExpectSame(what, store_.Changes(At(op.ts_offset), range.ToKeyRange(), op.limit),
                   model_.Changes(At(op.ts_offset), range, op.limit));
        break;
      }
      case OpKind::kCompact:
        RunCompact(HorizonAt(op.ts_offset));
        break;
      case OpKind::kCompactSteps:
        RunCompactSteps(HorizonAt(op.ts_offset), op.max_keys);
        break;
      case OpKind::kStats:
        Log("GetStats()");
        CheckStats("GetStats()");
        break;
    }
  }

  void RunGetInto(const Op& op) {
    const std::string what =
        "GetInto(\"" + EscapeBytes(op.key) + "\", " + ToString(ReadTs(op)) + ")";
    Log(what);
    // The buffer is reused across calls, as the hot path does.
    const Status status = store_.GetInto(op.key, ReadTs(op), &reused_read_);
    const Result<ReadResult> model = model_.Get(op.key, ReadTs(op));
    if (!status.ok() || !model.ok()) {
      if (status.code() != model.status().code()) Fail(what, Show(status), Show(model));
      return;
    }
    ExpectSame(what, Result<ReadResult>(WithoutStaleFields(reused_read_)), model);
  }

  // Scans at and above the new horizon, which compaction must not change.
  std::vector<Result<ScanResult>> InvariantScans(Timestamp horizon) const {
    std::vector<Result<ScanResult>> scans;
    for (Timestamp ts : {horizon, Timestamp(horizon.value() + 5), Timestamp::Max()}) {
      scans.push_back(store_.Scan(KeyRange::All(), ts, 1000));
    }
    return scans;
  }

  CompactResult CompactModel(Timestamp horizon) {
    const size_t keys_before = model_.Keys().size();
    const CompactResult result = model_.Compact(horizon);
    coverage_["key compacted away"] += keys_before - model_.Keys().size();
    return result;
  }

  void RunCompact(Timestamp horizon) {
    const std::string what = "Compact(" + ToString(horizon) + ")";
    Log(what);
    const Timestamp effective = std::max(horizon, model_.compaction_horizon());
    const std::vector<Result<ScanResult>> before = InvariantScans(effective);
    const CompactResult engine = store_.Compact(horizon);
    const CompactResult model = CompactModel(horizon);
    if (!(engine == model)) Fail(what, ToString(engine), ToString(model));
    const std::vector<Result<ScanResult>> after = InvariantScans(effective);
    for (size_t i = 0; i < before.size(); ++i) {
      ExpectSame(what + ": scan #" + std::to_string(i) + " at/above horizon vs before", after[i],
                 before[i]);
    }
    CheckEverything(what);
  }

  void RunCompactSteps(Timestamp horizon, size_t max_keys) {
    const std::string what =
        "RaiseHorizon(" + ToString(horizon) + ") + CompactStep(" + std::to_string(max_keys) + ")*";
    Log(what);
    store_.RaiseHorizon(horizon);
    const Timestamp effective = std::max(horizon, model_.compaction_horizon());
    if (store_.compaction_horizon() != effective) {
      Fail(what + ": horizon", ToString(store_.compaction_horizon()), ToString(effective));
    }
    // Until the model compacts, its answers at or above the horizon are what
    // every partially swept state must give too.
    const Result<ScanResult> expected_scan = model_.Scan(ModelRange::All(), effective, 1000);
    // Retired keys (every version compacted away) are still visited.
    const size_t max_steps =
        std::max(model_.Keys().size(), keys_ever_written_.size()) / max_keys + 3;
    CompactResult summed{.horizon = effective};
    bool finished = false;
    for (size_t step = 0; step < max_steps && !finished; ++step) {
      const CompactStepResult r = store_.CompactStep(max_keys);
      if (r.keys_visited > max_keys) {
        Fail(what + ": keys_visited", ToString(r), "at most " + std::to_string(max_keys));
      }
      summed.versions_removed += r.versions_removed;
      summed.bytes_reclaimed += r.bytes_reclaimed;
      finished = r.sweep_finished;
      ExpectSame(what + ": scan at horizon mid-sweep",
                 store_.Scan(KeyRange::All(), effective, 1000), expected_scan);
      CheckGetsMidSweep(what, effective);
    }
    if (!finished) Fail(what, "sweep not finished", std::to_string(max_steps) + " steps");
    const CompactResult model = CompactModel(horizon);
    if (!(summed == model)) Fail(what + ": summed steps", ToString(summed), ToString(model));
    CheckEverything(what);
  }

  // Mid-sweep, a key may or may not have been visited yet: a read at the
  // horizon may find a tombstone the sweep is about to drop, or nothing.
  void CheckGetsMidSweep(const std::string& what, Timestamp horizon) {
    for (const std::string& key : model_.Keys()) {
      const Result<ReadResult> model = model_.Get(key, horizon);
      const Result<ReadResult> engine = store_.Get(key, horizon);
      if (model.ok() && model->deleted && engine.ok() && !engine->found) continue;
      ExpectSame(what + ": Get(\"" + EscapeBytes(key) + "\") at horizon mid-sweep", engine, model);
    }
  }

  void CheckStats(const std::string& what) {
    const StoreStats engine = store_.GetStats();
    const StoreStats model = model_.GetStats();
    if (!(engine == model)) Fail(what + ": stats", ToString(engine), ToString(model));
    if (store_.compaction_horizon() != model_.compaction_horizon()) {
      Fail(what + ": compaction_horizon()", ToString(store_.compaction_horizon()),
           ToString(model_.compaction_horizon()));
    }
    if (store_.max_timestamp() != model_.max_timestamp()) {
      Fail(what + ": max_timestamp()", engine.max_timestamp ? ToString(*engine.max_timestamp) : "-",
           model.max_timestamp ? ToString(*model.max_timestamp) : "-");
    }
  }

  // Every key's full history and reads at every timestamp from the horizon
  // to past the clock, plus the stats.
  void CheckEverything(const std::string& what) {
    CheckStats(what);
    std::set<std::string> keys;
    for (const std::string& key : model_.Keys()) keys.insert(key);
    for (const std::string& key : {""s, "a"s, "a\0"s, "\xff"s}) keys.insert(key);
    const uint64_t first = model_.compaction_horizon().value();
    for (const std::string& key : keys) {
      const std::string label = what + ": key \"" + EscapeBytes(key) + "\"";
      ExpectSame(label + " history", store_.History(key, std::nullopt, std::nullopt, 1000),
                 model_.History(key, std::nullopt, std::nullopt, 1000));
      for (uint64_t ts = first; ts <= clock_ + 10; ++ts) {
        ExpectSame(label + " get at " + std::to_string(ts), store_.Get(key, Timestamp(ts)),
                   model_.Get(key, Timestamp(ts)));
      }
    }
  }

  struct LastWrite {
    std::string key;
    std::optional<std::string> value;  // nullopt: a delete
    Timestamp timestamp;
  };
  std::optional<LastWrite> last_write_;
  Coverage coverage_;
  std::set<std::string> keys_ever_written_;
  MvccStore store_{kOptions};
  ReferenceStore model_{kOptions};
  ReadResult reused_read_;
  size_t clock_ = 0;
  std::vector<std::string> log_;
};

RC_GTEST_PROP(MvccStorePropertyTest, MatchesReferenceStore, ()) {
  const std::vector<Op> ops = *rc::gen::container<std::vector<Op>>(GenOp());
  SequenceRunner().Run(ops);
}

// Guards the generator itself: over a fixed set of sequences, every situation
// the property is meant to explore must actually occur, repeatedly.
TEST(MvccStorePropertyTest, GeneratorReachesEverySituation) {
  const rc::Gen<std::vector<Op>> sequences = rc::gen::container<std::vector<Op>>(GenOp());
  Coverage total;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    SequenceRunner runner;
    runner.Run(sequences(rc::Random(seed), /*size=*/400).value());
    for (const auto& [situation, count] : runner.coverage()) total[situation] += count;
  }
  for (const std::string& situation : kSituations) {
    EXPECT_GE(total[situation], 20u) << situation;
    std::cout << situation << ": " << total[situation] << "\n";
  }
}

}  // namespace
}  // namespace strata::testing
