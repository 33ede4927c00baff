// PrometheusText: writes metrics in Prometheus' text exposition format
// (version 0.0.4), what /metrics serves.
//
// Written by hand: Debian 12 has no Prometheus client library for C++
// (prometheus-cpp is not packaged), and the format is a few line shapes.
// Metric families are written whole, one after another, so a scrape is a
// consistent list; the values themselves come from the caller.
#ifndef STRATA_OPS_PROMETHEUS_TEXT_H_
#define STRATA_OPS_PROMETHEUS_TEXT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::ops {

using Labels = std::vector<std::pair<std::string, std::string>>;

class PrometheusText {
 public:
  // Starts a family: its # HELP and # TYPE lines.
  void Counter(std::string_view name, std::string_view help);
  void Gauge(std::string_view name, std::string_view help);
  void Histogram(std::string_view name, std::string_view help);

  // A sample of the current counter or gauge family.
  void Sample(double value, const Labels& labels = {});

  // One histogram of the current family: `counts[i]` is how many values fell
  // at or below bounds[i] (and above bounds[i-1]); counts has one entry more
  // than bounds, for what lay above the last. Written cumulatively, with
  // _sum and _count, as Prometheus expects.
  void HistogramSample(const std::vector<double>& bounds, const std::vector<uint64_t>& counts,
                       double sum, const Labels& labels = {});

  const std::string& text() const { return out_; }

  // Label values escape backslash, double quote and newline.
  static std::string EscapeLabelValue(std::string_view v);
  // Numbers as Prometheus reads them (integers without an exponent, +Inf).
  static std::string Number(double v);

 private:
  void Begin(std::string_view name, std::string_view help, std::string_view type);
  void Line(std::string_view suffix, const Labels& labels,
            const std::pair<std::string, std::string>* extra, double value);

  std::string out_;
  std::string family_;
};

}  // namespace strata::ops

#endif  // STRATA_OPS_PROMETHEUS_TEXT_H_
