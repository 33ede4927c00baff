// PrometheusText writes what Prometheus' text format 0.0.4 says: families
// with HELP and TYPE, escaped label values, cumulative histogram buckets.
#include "ops/prometheus_text.h"

#include <gtest/gtest.h>

namespace strata::ops {
namespace {

TEST(PrometheusTextTest, CountersAndGaugesWithEscapedLabels) {
  PrometheusText t;
  t.Counter("x_total", "Things\\done\nso far.");
  t.Sample(3, {{"kind", "a\"b\\c\nd"}});
  t.Gauge("y", "A level.");
  t.Sample(0.25);
  EXPECT_EQ(t.text(),
            "# HELP x_total Things\\\\done\\nso far.\n"
            "# TYPE x_total counter\n"
            "x_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n"
            "# HELP y A level.\n"
            "# TYPE y gauge\n"
            "y 0.25\n");
}

TEST(PrometheusTextTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  PrometheusText t;
  t.Histogram("h_seconds", "Times.");
  t.HistogramSample({0.001, 0.002}, {1, 2, 4}, 0.5, {{"op", "put"}});
  EXPECT_EQ(t.text(),
            "# HELP h_seconds Times.\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{op=\"put\",le=\"0.001\"} 1\n"
            "h_seconds_bucket{op=\"put\",le=\"0.002\"} 3\n"
            "h_seconds_bucket{op=\"put\",le=\"+Inf\"} 7\n"
            "h_seconds_sum{op=\"put\"} 0.5\n"
            "h_seconds_count{op=\"put\"} 7\n");
}

TEST(PrometheusTextTest, NumbersAsPrometheusReadsThem) {
  EXPECT_EQ(PrometheusText::Number(2147483648.0), "2147483648");
  EXPECT_EQ(PrometheusText::Number(-1), "-1");
  EXPECT_EQ(PrometheusText::Number(1796432770.25), "1796432770.25");
  EXPECT_EQ(PrometheusText::Number(1.0 / 0.0), "+Inf");
  EXPECT_EQ(PrometheusText::Number(1e300), "1e+300");
}

}  // namespace
}  // namespace strata::ops
