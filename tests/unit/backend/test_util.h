// Helpers for kernel tests: seeded random data and error measures.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace kiln::testing {

inline std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

/// max |a - b| / max(max |b|, 1e-6): error relative to the reference's scale.
inline double max_rel_error(const std::vector<float>& a, const std::vector<double>& ref) {
  double max_diff = 0, max_ref = 1e-6;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(a[i] - ref[i]));
    max_ref = std::max(max_ref, std::fabs(ref[i]));
  }
  return max_diff / max_ref;
}

}  // namespace kiln::testing
