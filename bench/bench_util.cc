#include "bench/bench_util.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <system_error>

namespace strata::bench {

namespace {

std::mutex children_mu;
std::set<int>& Children() {
  static std::set<int> children;
  return children;
}

}  // namespace

void KillOnFatal(int pid) {
  std::lock_guard lock(children_mu);
  Children().insert(pid);
}

void ForgetOnFatal(int pid) {
  std::lock_guard lock(children_mu);
  Children().erase(pid);
}

void Fatal(std::string_view message) {
  std::fprintf(stderr, "strata-bench: FATAL: %.*s\n", static_cast<int>(message.size()),
               message.data());
  std::fflush(stderr);
  {
    std::lock_guard lock(children_mu);
    for (int pid : Children()) ::kill(pid, SIGKILL);
  }
  std::exit(2);
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  if (values.size() % 2 == 1) return values[mid];
  return (values[mid - 1] + values[mid]) / 2;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
}

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0;
  uint64_t resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) Fatal("cannot read /proc/self/statm");
  return resident_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

double LoadAverage1m() {
  std::ifstream loadavg("/proc/loadavg");
  double load = -1;
  loadavg >> load;
  return load;
}

TempDir::TempDir(std::string_view tag) {
  std::string pattern = "/tmp/strata-bench-" + std::string(tag) + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) Fatal("mkdtemp failed for " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

uint64_t TempDir::SizeBytes() const {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(path_, ec)) {
    if (entry.is_regular_file(ec)) total += entry.file_size(ec);
  }
  return total;
}

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)),
      total_(total == 0 ? 1 : total),
      // Checking the clock on every update would cost more than some of the
      // operations being loaded; look at it every 1/64 of the way.
      next_check_(std::max<uint64_t>(1, total / 64)),
      start_(Clock::now()),
      last_print_(start_) {}

void Progress::MaybePrint(uint64_t done) {
  done_ = done;
  next_check_ = done + std::max<uint64_t>(1, total_ / 64);
  const auto now = Clock::now();
  if (now - last_print_ < std::chrono::seconds(2)) return;
  last_print_ = now;
  printed_ = true;
  std::fprintf(stderr, "  %s: %3.0f%% (%llu/%llu, %.1f s)\n", label_.c_str(),
               100.0 * static_cast<double>(done) / static_cast<double>(total_),
               static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_),
               SecondsSince(start_));
}

void Progress::Finish() {
  if (!printed_) return;
  std::fprintf(stderr, "  %s: done in %.1f s\n", label_.c_str(), SecondsSince(start_));
}

std::string HumanCount(double value) {
  if (value >= 1e9) return StrFormat("%.2fG", value / 1e9);
  if (value >= 1e6) return StrFormat("%.2fM", value / 1e6);
  if (value >= 1e4) return StrFormat("%.1fk", value / 1e3);
  if (value >= 100) return StrFormat("%.0f", value);
  return StrFormat("%.3g", value);
}

std::string StrFormat(const char* format, ...) {
  va_list args;
  va_start(args, format);
  va_list copy;
  va_copy(copy, args);
  const int size = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  std::string out(size > 0 ? static_cast<size_t>(size) : 0, '\0');
  if (size > 0) std::vsnprintf(out.data(), out.size() + 1, format, args);
  va_end(args);
  return out;
}

}  // namespace strata::bench
