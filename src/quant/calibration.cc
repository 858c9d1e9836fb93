#include "quant/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace kiln::quant {

ActivationStats::ActivationStats(int num_bins)
    : hist_(static_cast<size_t>(std::max(num_bins, 1)), 0) {}

Status ActivationStats::add(const float* x, int64_t rows, int64_t cols) {
  if (rows < 0 || cols <= 0) {
    return invalid_argument("calibration: bad activation shape [" + std::to_string(rows) + ", " +
                            std::to_string(cols) + "]");
  }
  if (channel_absmax_.empty()) {
    channel_absmax_.assign(static_cast<size_t>(cols), 0.0f);
  } else if (static_cast<int64_t>(channel_absmax_.size()) != cols) {
    return invalid_argument("calibration: activations have " + std::to_string(cols) +
                            " channels, earlier batches had " +
                            std::to_string(channel_absmax_.size()));
  }
  // First pass: ranges, so that the histogram grows before anything is binned.
  float batch_max = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      const float a = std::fabs(row[c]);
      if (!std::isfinite(a)) continue;
      channel_absmax_[c] = std::max(channel_absmax_[c], a);
      batch_max = std::max(batch_max, a);
    }
  }
  if (batch_max > range_) grow_range(batch_max);
  absmax_ = std::max(absmax_, batch_max);
  const int64_t last = static_cast<int64_t>(hist_.size()) - 1;
  const double inv_width = range_ > 0 ? static_cast<double>(hist_.size()) / range_ : 0.0;
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float a = std::fabs(x[i]);
    if (!std::isfinite(a)) {
      ++non_finite_;
      continue;
    }
    ++hist_[std::min(last, static_cast<int64_t>(a * inv_width))];
    ++count_;
  }
  return ok_status();
}

void ActivationStats::grow_range(double needed) {
  if (range_ == 0) {
    // Only zeros so far (they sit in bin 0 whatever the width). Just above the absmax, so that
    // no value sits on the upper edge, where it would need clamping into the last bin and
    // would land in the wrong bin once the range doubles.
    range_ = needed * (1.0 + 1.0 / (1 << 20));
    return;
  }
  const size_t n = hist_.size();
  while (range_ < needed) {
    // Bin k of the doubled range covers old bins 2k and 2k + 1 exactly.
    for (size_t k = 0; k < n; ++k) {
      const size_t a = 2 * k, b = 2 * k + 1;
      hist_[k] = (a < n ? hist_[a] : 0) + (b < n ? hist_[b] : 0);
    }
    range_ *= 2;
  }
}

CalibrationCollector::CalibrationCollector(int num_layers, int num_bins)
    : num_layers_(std::max(num_layers, 0)) {
  entries_.reserve(static_cast<size_t>(num_layers_) * kLinearSites);
  for (int i = 0; i < num_layers_ * kLinearSites; ++i) {
    entries_.push_back(std::make_unique<Entry>(num_bins));
  }
}

Status CalibrationCollector::observe(int layer, LinearSite site, const float* x, int64_t rows,
                                     int64_t cols) {
  const int s = static_cast<int>(site);
  if (layer < 0 || layer >= num_layers_ || s < 0 || s >= kLinearSites) {
    return invalid_argument("calibration: no layer " + std::to_string(layer) + " site " +
                            std::to_string(s));
  }
  Entry& e = *entries_[static_cast<size_t>(layer) * kLinearSites + s];
  std::lock_guard<std::mutex> lock(e.mutex);
  return e.stats.add(x, rows, cols);
}

const ActivationStats& CalibrationCollector::stats(int layer, LinearSite site) const {
  return entries_[static_cast<size_t>(layer) * kLinearSites + static_cast<int>(site)]->stats;
}

std::string_view calibrator_name(Calibrator c) {
  switch (c) {
    case Calibrator::kMax:
      return "max";
    case Calibrator::kPercentile:
      return "percentile";
    case Calibrator::kEntropy:
      return "entropy";
    case Calibrator::kMse:
      return "mse";
  }
  return "max";
}

bool parse_calibrator(std::string_view name, Calibrator* out) {
  for (Calibrator c :
       {Calibrator::kMax, Calibrator::kPercentile, Calibrator::kEntropy, Calibrator::kMse}) {
    if (name == calibrator_name(c)) {
      *out = c;
      return true;
    }
  }
  return false;
}

namespace {

// One past the last non-empty bin: candidates beyond it only add empty bins, and a histogram
// whose range was set in a first pass (TensorRT) would end there.
int64_t used_bins(const std::vector<int64_t>& hist) {
  int64_t n = static_cast<int64_t>(hist.size());
  while (n > 0 && hist[n - 1] == 0) --n;
  return n;
}

}  // namespace

double threshold_percentile(const std::vector<int64_t>& hist, double bin_width, double percentile) {
  int64_t total = 0;
  for (int64_t c : hist) total += c;
  if (total == 0) return 0;
  // The bin where the cumulative count first reaches the percentile; its upper edge is the
  // smallest bin-aligned T that keeps that fraction of the values unclipped.
  const double target = percentile / 100.0 * static_cast<double>(total);
  int64_t cum = 0;
  for (size_t k = 0; k < hist.size(); ++k) {
    cum += hist[k];
    if (static_cast<double>(cum) >= target) return static_cast<double>(k + 1) * bin_width;
  }
  return static_cast<double>(hist.size()) * bin_width;
}

double threshold_entropy(const std::vector<int64_t>& hist, double bin_width, int levels,
                         int start_bin) {
  const int64_t stop = used_bins(hist);
  if (stop == 0) return 0;
  levels = std::max(levels, 1);
  std::vector<double> suffix(static_cast<size_t>(stop) + 1, 0.0);  // counts in bins [i, stop)
  for (int64_t k = stop - 1; k >= 0; --k) suffix[k] = suffix[k + 1] + static_cast<double>(hist[k]);
  std::vector<double> level_sum(levels), level_nonzero(levels), p, q;
  double best_kl = std::numeric_limits<double>::infinity();
  int64_t best_i = stop;
  for (int64_t i = std::clamp<int64_t>(start_bin, 1, stop); i <= stop; ++i) {
    // P: the first i bins, everything above clipped into the last of them.
    p.assign(hist.begin(), hist.begin() + i);
    p[i - 1] += suffix[i];
    // Q: the first i bins quantized into `levels` bins, each spread evenly over its non-empty
    // source bins (empty ones stay empty, as TensorRT does).
    std::fill(level_sum.begin(), level_sum.end(), 0.0);
    std::fill(level_nonzero.begin(), level_nonzero.end(), 0.0);
    for (int64_t k = 0; k < i; ++k) {
      if (hist[k] == 0) continue;
      const int64_t m = k * levels / i;
      level_sum[m] += static_cast<double>(hist[k]);
      level_nonzero[m] += 1;
    }
    q.assign(static_cast<size_t>(i), 0.0);
    double q_total = 0;
    for (int64_t k = 0; k < i; ++k) {
      if (hist[k] == 0) continue;
      const int64_t m = k * levels / i;
      q_total += q[k] = level_sum[m] / level_nonzero[m];
    }
    const double p_total = suffix[0];
    double kl = 0;
    for (int64_t k = 0; k < i && std::isfinite(kl); ++k) {
      if (p[k] == 0) continue;
      const double pk = p[k] / p_total, qk = q[k] / q_total;
      kl = qk > 0 ? kl + pk * std::log(pk / qk) : std::numeric_limits<double>::infinity();
    }
    if (kl <= best_kl) {  // ties: the larger threshold, as pytorch-quantization's last argmin
      best_kl = kl;
      best_i = i;
    }
  }
  return static_cast<double>(best_i) * bin_width;
}

double threshold_mse(const std::vector<int64_t>& hist, double bin_width, int levels,
                     int start_bin) {
  const int64_t stop = used_bins(hist);
  if (stop == 0) return 0;
  const double steps = std::max(levels - 1, 1);
  double best_err = std::numeric_limits<double>::infinity();
  int64_t best_i = stop;
  for (int64_t i = std::clamp<int64_t>(start_bin, 1, stop); i <= stop; ++i) {
    const double t = static_cast<double>(i) * bin_width;
    const double step = t / steps;
    double err = 0;
    for (int64_t k = 0; k < stop; ++k) {
      if (hist[k] == 0) continue;
      const double c = (static_cast<double>(k) + 0.5) * bin_width;
      const double qc = std::min(std::nearbyint(c / step), steps) * step;
      err += static_cast<double>(hist[k]) * (c - qc) * (c - qc);
    }
    if (err < best_err) {
      best_err = err;
      best_i = i;
    }
  }
  return static_cast<double>(best_i) * bin_width;
}

Result<float> select_threshold(const ActivationStats& stats, const CalibratorOptions& options) {
  if (stats.count() == 0) return failed_precondition("calibration: no activations observed");
  if (stats.absmax() == 0) return 1.0f;
  const auto& h = stats.histogram();
  const double w = stats.bin_width();
  double t = stats.absmax();
  switch (options.method) {
    case Calibrator::kMax:
      break;
    case Calibrator::kPercentile:
      if (!(options.percentile > 0 && options.percentile <= 100)) {
        return invalid_argument("calibration: percentile " + std::to_string(options.percentile) +
                                " is outside (0, 100]");
      }
      t = threshold_percentile(h, w, options.percentile);
      break;
    case Calibrator::kEntropy:
      t = threshold_entropy(h, w, options.quant_levels, options.start_bin);
      break;
    case Calibrator::kMse:
      t = threshold_mse(h, w, options.quant_levels, options.start_bin);
      break;
  }
  // A bin edge can lie just above the largest value; a threshold above absmax wastes range.
  return static_cast<float>(std::clamp(t, w * 1e-3, static_cast<double>(stats.absmax())));
}

}  // namespace kiln::quant
