// Helpers shared by the transaction tests: readable printing of Status and
// Result, matchers on status codes, and short forms of the begin / read /
// commit steps every test repeats.
//
// Helpers that need a value to continue (BeginOrDie) abort the test binary
// with the status printed, because a test cannot go on without it; helpers
// that only check (ReadValue, MustCommit) record a gtest failure and return
// a placeholder, so one broken step does not hide the next ones.
#ifndef STRATA_TESTS_TXN_TXN_TEST_SUPPORT_H_
#define STRATA_TESTS_TXN_TXN_TEST_SUPPORT_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/timestamp.h"
#include "strata/txn_store.h"

namespace strata {

// Printers found by ADL, so gtest and gmock show codes and messages instead
// of bytes.

inline void PrintTo(StatusCode code, std::ostream* os) { *os << StatusCodeName(code); }

inline void PrintTo(const Status& status, std::ostream* os) {
  *os << StatusCodeName(status.code());
  if (!status.ok()) *os << ": " << status.message();
}

template <typename T>
void PrintTo(const Result<T>& result, std::ostream* os) {
  if (result.ok()) {
    *os << "ok";
  } else {
    PrintTo(result.status(), os);
  }
}

inline void PrintTo(Timestamp timestamp, std::ostream* os) { *os << "ts " << timestamp.value(); }

namespace txn_testing {

using ::testing::HasSubstr;

inline const Status& StatusOf(const Status& status) { return status; }
template <typename T>
const Status& StatusOf(const Result<T>& result) {
  return result.status();
}

inline std::string StatusText(const Status& status) { return ::testing::PrintToString(status); }

MATCHER(IsOk, "is ok") {
  const Status& status = StatusOf(arg);
  if (!status.ok()) *result_listener << "status is " << StatusText(status);
  return status.ok();
}

MATCHER_P(HasCode, code, "has status code " + std::string(StatusCodeName(code))) {
  const Status& status = StatusOf(arg);
  *result_listener << "status is " << StatusText(status);
  return status.code() == code;
}

constexpr Isolation kBothIsolations[] = {Isolation::kSnapshot, Isolation::kSerializable};

inline const char* IsolationName(Isolation isolation) {
  return isolation == Isolation::kSnapshot ? "snapshot" : "serializable";
}

// TxnOptions by name (designated initializers that leave fields out trip
// -Wmissing-field-initializers under GCC).
inline TxnOptions ReadWrite(Isolation isolation) {
  TxnOptions options;
  options.isolation = isolation;
  return options;
}

inline TxnOptions ReadOnly(Isolation isolation = Isolation::kSerializable) {
  TxnOptions options = ReadWrite(isolation);
  options.read_only = true;
  return options;
}

inline TxnOptions ReadOnlyAt(Timestamp read_timestamp,
                             Isolation isolation = Isolation::kSerializable) {
  TxnOptions options = ReadOnly(isolation);
  options.read_timestamp = read_timestamp;
  return options;
}

// A store and a TxnStore over it; tests that run once per isolation level
// build a fresh one per level.
struct TestDb {
  explicit TestDb(StoreOptions store_options = {}, TxnStoreOptions txn_options = {})
      : store(store_options), db(&store, txn_options) {}
  MvccStore store;
  TxnStore db;
};

// prefix followed by n in decimal ("k3"). (Spelled out because GCC 12's
// -Wrestrict misfires on `"k" + std::to_string(n)` at -O3.)
inline std::string NumberedKey(std::string_view prefix, uint64_t n) {
  std::string key(prefix);
  key += std::to_string(n);
  return key;
}

// Begin(), for tests that cannot continue without the transaction.
inline Transaction BeginOrDie(TxnStore& db, const TxnOptions& options = {}) {
  Result<Transaction> txn = db.Begin(options);
  if (!txn.ok()) {
    std::fprintf(stderr, "Begin failed: %s\n", StatusText(txn.status()).c_str());
    std::abort();
  }
  return std::move(*txn);
}

// The value `txn` reads for `key`; nullopt when the key is absent or
// deleted. A read error fails the test (and also returns nullopt).
inline std::optional<std::string> ReadValue(Transaction& txn, std::string_view key) {
  Result<ReadResult> read = txn.Get(key);
  if (!read.ok()) {
    ADD_FAILURE() << "Get(" << key << ") failed: " << StatusText(read.status());
    return std::nullopt;
  }
  if (!read->found || read->deleted) return std::nullopt;
  return read->value;
}

// The value stored for `key` at `timestamp`, read from the store directly
// (no transaction); nullopt when absent or deleted.
inline std::optional<std::string> RawValue(const MvccStore& store, std::string_view key,
                                           Timestamp timestamp = Timestamp::Max()) {
  Result<ReadResult> read = store.Get(key, timestamp);
  if (!read.ok()) {
    ADD_FAILURE() << "store Get(" << key << ") failed: " << StatusText(read.status());
    return std::nullopt;
  }
  if (!read->found || read->deleted) return std::nullopt;
  return read->value;
}

using KeyValues = std::vector<std::pair<std::string, std::string>>;

inline KeyValues KeyValuesOf(const ScanResult& scan) {
  KeyValues out;
  for (const ScanItem& item : scan.items) out.emplace_back(item.key, item.value);
  return out;
}

// The (key, value) pairs a transaction's scan returns; a scan error fails
// the test (and returns nothing).
inline KeyValues ScanValues(Transaction& txn, const KeyRange& range, size_t limit = 1000) {
  Result<ScanResult> scan = txn.Scan(range, limit);
  if (!scan.ok()) {
    ADD_FAILURE() << "Scan failed: " << StatusText(scan.status());
    return {};
  }
  return KeyValuesOf(*scan);
}

// Commit(), expected to succeed; on failure records it and returns ts 0.
inline Timestamp MustCommit(Transaction& txn) {
  Result<Timestamp> committed = txn.Commit();
  if (!committed.ok()) {
    ADD_FAILURE() << "Commit failed: " << StatusText(committed.status());
    return Timestamp();
  }
  return *committed;
}

// One put (value) or delete (nullopt) of a setup transaction.
using Write = std::pair<std::string, std::optional<std::string>>;

// Commits `writes` in one transaction and returns its commit timestamp.
inline Timestamp CommitWrites(TxnStore& db, const std::vector<Write>& writes) {
  Transaction txn = BeginOrDie(db);
  for (const auto& [key, value] : writes) {
    Status status = value ? txn.Put(key, *value) : txn.Delete(key);
    EXPECT_THAT(status, IsOk()) << key;
  }
  return MustCommit(txn);
}

// How long each randomized or stress scenario runs: STRATA_STRESS_SECONDS
// (shared with the engine tests), else `default_seconds`. Sanitizers slow
// each operation down, so they lower the operation count, not the duration.
inline std::chrono::steady_clock::duration StressDuration(double default_seconds) {
  double seconds = default_seconds;
  if (const char* env = std::getenv("STRATA_STRESS_SECONDS")) seconds = std::atof(env);
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}

}  // namespace txn_testing
}  // namespace strata

#endif  // STRATA_TESTS_TXN_TXN_TEST_SUPPORT_H_
