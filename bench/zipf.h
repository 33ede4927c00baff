// A Zipf-distributed generator of ranks in [0, n): rank 0 is the most
// popular, P(rank k) ~ 1 / (k+1)^theta. Gray et al.'s method ("Quickly
// generating billion-record synthetic databases", SIGMOD '94), the one YCSB
// uses: zeta(n, theta) is summed once at construction (O(n), ~10 ms per
// million), then each draw is one uniform number and one pow().
//
// Valid for 0 < theta < 1 (the usual 0.99 included) and n >= 2.
#ifndef STRATA_BENCH_ZIPF_H_
#define STRATA_BENCH_ZIPF_H_

#include <cmath>
#include <cstdint>
#include <random>

namespace strata::bench {

class ZipfGenerator final {
 public:
  ZipfGenerator(uint64_t n, double theta)
      : n_(n),
        theta_(theta),
        zeta_n_(Zeta(n, theta)),
        alpha_(1.0 / (1.0 - theta)),
        eta_((1.0 - std::pow(2.0 / static_cast<double>(n), 1.0 - theta)) /
             (1.0 - Zeta(2, theta) / zeta_n_)),
        half_pow_theta_(1.0 + std::pow(0.5, theta)) {}

  template <typename Rng>
  uint64_t operator()(Rng& rng) const {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const double uz = u * zeta_n_;
    if (uz < 1.0) return 0;
    if (uz < half_pow_theta_) return 1;
    const auto rank =
        static_cast<uint64_t>(static_cast<double>(n_) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
    return rank < n_ ? rank : n_ - 1;  // guards the rounding at u -> 1
  }

  // The probability of rank 0, for the report.
  double top_probability() const { return 1.0 / zeta_n_; }
  double theta() const { return theta_; }

 private:
  static double Zeta(uint64_t n, double theta) {
    double sum = 0;
    for (uint64_t i = 1; i <= n; ++i) sum += 1.0 / std::pow(static_cast<double>(i), theta);
    return sum;
  }

  uint64_t n_;
  double theta_;
  double zeta_n_;
  double alpha_;
  double eta_;
  double half_pow_theta_;
};

}  // namespace strata::bench

#endif  // STRATA_BENCH_ZIPF_H_
