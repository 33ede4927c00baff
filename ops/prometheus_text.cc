#include "ops/prometheus_text.h"

#include <cmath>
#include <cstdio>

namespace strata::ops {

void PrometheusText::Begin(std::string_view name, std::string_view help, std::string_view type) {
  family_ = std::string(name);
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  // HELP text escapes backslash and newline.
  for (char c : help) {
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::Counter(std::string_view name, std::string_view help) {
  Begin(name, help, "counter");
}
void PrometheusText::Gauge(std::string_view name, std::string_view help) {
  Begin(name, help, "gauge");
}
void PrometheusText::Histogram(std::string_view name, std::string_view help) {
  Begin(name, help, "histogram");
}

std::string PrometheusText::EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string PrometheusText::Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.15g", v);
  }
  return buf;
}

void PrometheusText::Line(std::string_view suffix, const Labels& labels,
                          const std::pair<std::string, std::string>* extra, double value) {
  out_ += family_;
  out_ += suffix;
  if (!labels.empty() || extra) {
    out_ += '{';
    bool first = true;
    auto add = [&](const std::pair<std::string, std::string>& l) {
      if (!first) out_ += ',';
      first = false;
      out_ += l.first;
      out_ += "=\"";
      out_ += EscapeLabelValue(l.second);
      out_ += '"';
    };
    for (const auto& l : labels) add(l);
    if (extra) add(*extra);
    out_ += '}';
  }
  out_ += ' ';
  out_ += Number(value);
  out_ += '\n';
}

void PrometheusText::Sample(double value, const Labels& labels) {
  Line("", labels, nullptr, value);
}

void PrometheusText::HistogramSample(const std::vector<double>& bounds,
                                     const std::vector<uint64_t>& counts, double sum,
                                     const Labels& labels) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    const std::pair<std::string, std::string> le{
        "le", i < bounds.size() ? Number(bounds[i]) : std::string("+Inf")};
    Line("_bucket", labels, &le, static_cast<double>(cumulative));
  }
  Line("_sum", labels, nullptr, sum);
  Line("_count", labels, nullptr, static_cast<double>(cumulative));
}

}  // namespace strata::ops
