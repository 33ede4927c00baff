// Small helpers shared by the benchmark: fatal errors, clocks, medians,
// resident memory, temporary directories and progress lines.
#ifndef STRATA_BENCH_BENCH_UTIL_H_
#define STRATA_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::bench {

// A benchmark that computed a wrong answer has no result worth printing, so
// every engine error and every failed check ends the program (killing the
// servers it started: see KillOnFatal).
[[noreturn]] void Fatal(std::string_view message);

// Servers the benchmark started: Fatal SIGKILLs them, so none outlives it
// holding its ports, data and stdout. Forget one once it is stopped.
void KillOnFatal(int pid);
void ForgetOnFatal(int pid);

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The median of `values` (the mean of the middle two for an even count).
double Median(std::vector<double> values);
// The value at share `p` (0 to 1) of `sorted`, ascending (0 if empty).
double Percentile(const std::vector<double>& sorted, double p);

// The process's resident set size in bytes, from /proc/self/statm.
uint64_t ResidentBytes();

// The machine's one-minute load average: on a two-core machine anything
// much above 2 while measuring means the figures are suspect, so every
// measurement line carries it.
double LoadAverage1m();

// Keeps the compiler from discarding a computation whose result is unused.
template <typename T>
inline void DoNotOptimize(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir final {
 public:
  explicit TempDir(std::string_view tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Total size of the regular files in the directory.
  uint64_t SizeBytes() const;

 private:
  std::string path_;
};

// Progress lines on stderr for long phases, at most one every two seconds so a
// captured log stays readable.
class Progress final {
 public:
  Progress(std::string label, uint64_t total);
  // Reports that `done` of `total` units are finished.
  void Update(uint64_t done) {
    if (done >= next_check_) MaybePrint(done);
  }
  // Prints the final line if the phase took long enough to have printed any.
  void Finish();

 private:
  void MaybePrint(uint64_t done);

  std::string label_;
  uint64_t total_;
  uint64_t next_check_;
  uint64_t done_ = 0;
  bool printed_ = false;
  Clock::time_point start_;
  Clock::time_point last_print_;
};

// "1.23M", "45.6k", "789" — for the human table.
std::string HumanCount(double value);
// printf-style formatting into a std::string (GCC 12 has no <format>).
std::string StrFormat(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace strata::bench

#endif  // STRATA_BENCH_BENCH_UTIL_H_
