// Shared helpers for the engine tests: readable printing of the engine's
// result types, field-by-field equality, and gmock matchers for Result<T>.
//
// The public result structs deliberately have no operator== (the API does not
// promise value semantics for them), so the tests define the comparison they
// mean here, once, instead of spelling out field lists in every test.
#ifndef STRATA_TESTS_ENGINE_TEST_SUPPORT_H_
#define STRATA_TESTS_ENGINE_TEST_SUPPORT_H_

#include <gmock/gmock.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>

#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/timestamp.h"

namespace strata {

// Equality over every observable field. Defined in namespace strata so that
// EXPECT_EQ and gmock's Eq() find them by argument-dependent lookup.
bool operator==(const WriteResult& a, const WriteResult& b);
bool operator==(const ReadResult& a, const ReadResult& b);
bool operator==(const ScanItem& a, const ScanItem& b);
bool operator==(const ScanResult& a, const ScanResult& b);
bool operator==(const HistoryEntry& a, const HistoryEntry& b);
bool operator==(const HistoryResult& a, const HistoryResult& b);
bool operator==(const Change& a, const Change& b);
bool operator==(const ChangesResult& a, const ChangesResult& b);
bool operator==(const CompactResult& a, const CompactResult& b);
// Compares everything except memory_bytes, which is an estimate the spec does
// not pin down.
bool operator==(const StoreStats& a, const StoreStats& b);

std::string ToString(StatusCode code);
std::string ToString(const Status& status);
std::string ToString(Timestamp timestamp);
std::string ToString(const WriteResult& r);
std::string ToString(const ReadResult& r);
std::string ToString(const ScanResult& r);
std::string ToString(const HistoryResult& r);
std::string ToString(const ChangesResult& r);
std::string ToString(const CompactResult& r);
std::string ToString(const CompactStepResult& r);
std::string ToString(const StoreStats& s);

// gtest printers, so failures show the values instead of raw bytes.
inline void PrintTo(StatusCode c, std::ostream* os) { *os << ToString(c); }
inline void PrintTo(const Status& s, std::ostream* os) { *os << ToString(s); }
inline void PrintTo(Timestamp t, std::ostream* os) { *os << ToString(t); }
inline void PrintTo(const WriteResult& r, std::ostream* os) { *os << ToString(r); }
inline void PrintTo(const ReadResult& r, std::ostream* os) { *os << ToString(r); }
inline void PrintTo(const ScanResult& r, std::ostream* os) { *os << ToString(r); }
inline void PrintTo(const HistoryResult& r, std::ostream* os) { *os << ToString(r); }
inline void PrintTo(const ChangesResult& r, std::ostream* os) { *os << ToString(r); }
inline void PrintTo(const CompactResult& r, std::ostream* os) { *os << ToString(r); }
inline void PrintTo(const CompactStepResult& r, std::ostream* os) { *os << ToString(r); }
inline void PrintTo(const StoreStats& s, std::ostream* os) { *os << ToString(s); }
template <typename T>
void PrintTo(const Result<T>& r, std::ostream* os) {
  if (r.ok()) {
    *os << "OK: " << ToString(*r);
  } else {
    *os << ToString(r.status());
  }
}

}  // namespace strata

namespace strata::testing {

// Concatenates string-like pieces. Used instead of `"literal" + temporary`,
// which GCC 12 at -O3 misreports as an overlapping memcpy (-Wrestrict, GCC
// bug 105329).
template <typename... Pieces>
std::string StrCat(const Pieces&... pieces) {
  std::string out;
  (out.append(std::string_view(pieces)), ...);
  return out;
}

// Shows arbitrary bytes readably: printable ASCII as is, the rest as \xNN.
std::string EscapeBytes(std::string_view bytes);

constexpr Timestamp Ts(uint64_t value) { return Timestamp(value); }

// Expected results, named by what they mean rather than by field lists.
ReadResult FoundValue(uint64_t version, uint64_t timestamp, std::string value);
ReadResult FoundTombstone(uint64_t version, uint64_t timestamp);
ReadResult NotFound();
WriteResult Written(uint64_t version, uint64_t timestamp);
WriteResult Retried(uint64_t version, uint64_t timestamp);
ScanItem Item(std::string key, std::string value, uint64_t version, uint64_t timestamp);
HistoryEntry ValueEntry(uint64_t version, uint64_t timestamp, std::string value);
HistoryEntry TombstoneEntry(uint64_t version, uint64_t timestamp);

// GetInto reuses its output buffer, and for a read that found nothing the
// contract pins only found/deleted/value: version and timestamp may be left
// from the previous answer. This clears them so a not-found answer compares
// equal to a fresh one, while a wrong found/deleted/value still shows.
ReadResult WithoutStaleFields(ReadResult r);

// A Result<T> or Status that is OK.
MATCHER(IsOk, "is OK") {
  if constexpr (std::is_same_v<std::decay_t<arg_type>, Status>) {
    *result_listener << ToString(arg);
    return arg.ok();
  } else {
    *result_listener << ToString(arg.status());
    return arg.ok();
  }
}

// A Result<T> or Status that failed with `code`.
MATCHER_P(StatusIs, code, "fails with " + ToString(code)) {
  if constexpr (std::is_same_v<std::decay_t<arg_type>, Status>) {
    *result_listener << ToString(arg);
    return arg.code() == code;
  } else {
    *result_listener << ToString(arg.status());
    return arg.status().code() == code;
  }
}

// An OK Result<T> whose value matches `matcher`.
MATCHER_P(IsOkAndHolds, matcher, "is OK and holds the expected value") {
  if (!arg.ok()) {
    *result_listener << ToString(arg.status());
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_ENGINE_TEST_SUPPORT_H_
