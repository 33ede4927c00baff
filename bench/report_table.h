// The human summary of a multi-engine run: one row per metric, one column
// per engine, each peer's figure followed by strata's advantage over it.
#ifndef STRATA_BENCH_REPORT_TABLE_H_
#define STRATA_BENCH_REPORT_TABLE_H_

#include <string>
#include <string_view>
#include <vector>

#include "bench/json_line.h"

namespace strata::bench {

// `engines` in column order; `lines` every measurement line collected.
// A warning line when the machine's load average during the run points at
// outside work (empty otherwise).
std::string LoadAverageWarning(const std::vector<ParsedLine>& lines);

std::string FormatReportTable(const std::vector<std::string_view>& engines,
                              const std::vector<ParsedLine>& lines);

}  // namespace strata::bench

#endif  // STRATA_BENCH_REPORT_TABLE_H_
