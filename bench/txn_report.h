// The human summary of a transactional run (TX and RO lines): one row per
// (keys, distribution, threads), one column per engine and isolation, and
// strata's advantage over each RocksDB peer, with the uniform-workload
// target checked.
#ifndef STRATA_BENCH_TXN_REPORT_H_
#define STRATA_BENCH_TXN_REPORT_H_

#include <string>
#include <string_view>
#include <vector>

#include "bench/json_line.h"

namespace strata::bench {

// strata must commit at least this many times as many uniform-workload
// transactions per second as each RocksDB transactional DB.
inline constexpr double kTxnTargetAdvantage = 5.0;

// `engines` in column order; `lines` every measurement line collected.
std::string FormatTxnReportTable(const std::vector<std::string_view>& engines,
                                 const std::vector<ParsedLine>& lines);

}  // namespace strata::bench

#endif  // STRATA_BENCH_TXN_REPORT_H_
