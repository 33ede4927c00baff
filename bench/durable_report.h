// The human summary of the durability workloads (DW and DR lines), as
// markdown tables so it can go into the README as it is: durable writes per
// writer count with latency percentiles, fsyncs and strata's ratio to
// RocksDB, and recovery time per million versions.
#ifndef STRATA_BENCH_DURABLE_REPORT_H_
#define STRATA_BENCH_DURABLE_REPORT_H_

#include <string>
#include <vector>

#include "bench/json_line.h"

namespace strata::bench {

// `lines`: every measurement line collected (others are ignored).
std::string FormatDurableReport(const std::vector<ParsedLine>& lines);

}  // namespace strata::bench

#endif  // STRATA_BENCH_DURABLE_REPORT_H_
