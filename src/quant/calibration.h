// Post-training calibration of INT8 activation ranges: statistics of each linear layer's input
// (absmax, a histogram of |x|, per-channel absmax for SmoothQuant) and the four ways of turning
// them into a clipping threshold T (scale = T / 127) that TensorRT and NVIDIA's
// pytorch-quantization offer: max, percentile, entropy (KL divergence) and mse.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "kiln/status.h"
#include "quant/quant_params.h"

namespace kiln::quant {

/// Histogram resolution of TensorRT's entropy calibrator.
inline constexpr int kHistogramBins = 2048;

/// Statistics of one layer's input activations, fed batch by batch.
///
/// The histogram covers [0, range) with a fixed number of bins. The first batch sets the range
/// just above its absmax; when a later batch has a larger absmax the range doubles (as often as
/// needed) and pairs of neighbouring bins merge, so every count stays in its exact bin, and the
/// data always fill more than half of the bins. (pytorch-quantization appends bins instead, and
/// TensorRT takes a first pass for the range; doubling keeps both the bin count and exactness.)
///
/// Not thread-safe: one writer at a time (CalibrationCollector locks per layer and site).
class ActivationStats {
 public:
  /// An empty collector with `num_bins` histogram bins (>= 1).
  explicit ActivationStats(int num_bins = kHistogramBins);

  /// Adds activations x [rows, cols], row-major. The first call fixes the channel count; a later
  /// call with another `cols` is InvalidArgument. Non-finite values are skipped (and counted).
  Status add(const float* x, int64_t rows, int64_t cols);

  /// Largest |x| seen; 0 before any data.
  float absmax() const { return absmax_; }
  /// Finite values added.
  int64_t count() const { return count_; }
  /// NaN or infinite values skipped.
  int64_t non_finite() const { return non_finite_; }
  /// Counts of |x| per bin: bin k holds [k, k + 1) * bin_width() (the last bin also holds range).
  const std::vector<int64_t>& histogram() const { return hist_; }
  /// Width of one bin; 0 before any nonzero value.
  double bin_width() const { return range_ / static_cast<double>(hist_.size()); }
  /// Upper end of the histogram.
  double range() const { return range_; }
  /// max |x| per input channel (column); empty before any data.
  const std::vector<float>& channel_absmax() const { return channel_absmax_; }

 private:
  void grow_range(double needed);

  std::vector<int64_t> hist_;
  std::vector<float> channel_absmax_;
  double range_ = 0;
  float absmax_ = 0;
  int64_t count_ = 0;
  int64_t non_finite_ = 0;
};

/// ActivationStats for every (layer, site) of a model. observe() is thread-safe (one mutex per
/// entry), so it can be the body of a backend::LinearObserver called from any thread.
class CalibrationCollector {
 public:
  /// Statistics for `num_layers` encoder layers x kLinearSites sites.
  explicit CalibrationCollector(int num_layers, int num_bins = kHistogramBins);

  /// Adds one linear layer's input [rows, cols]; an out-of-range layer is InvalidArgument.
  Status observe(int layer, LinearSite site, const float* x, int64_t rows, int64_t cols);
  /// The statistics of one layer and site; call once observation has finished.
  const ActivationStats& stats(int layer, LinearSite site) const;
  /// Number of layers.
  int num_layers() const { return num_layers_; }

 private:
  struct Entry {
    std::mutex mutex;
    ActivationStats stats;
    explicit Entry(int bins) : stats(bins) {}
  };
  int num_layers_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

/// How a threshold is chosen from the statistics.
enum class Calibrator {
  kMax,         ///< T = absmax
  kPercentile,  ///< T = the given percentile of |x|, rounded up to a bin edge
  kEntropy,     ///< TensorRT: T minimising KL(P || Q) of the 2048-bin histogram vs 128 levels
  kMse,         ///< T minimising the expected squared quantization error over the histogram
};

/// "max", "percentile", "entropy" or "mse".
std::string_view calibrator_name(Calibrator c);
/// Parses a calibrator name; false when unknown.
bool parse_calibrator(std::string_view name, Calibrator* out);

/// Options of select_threshold().
struct CalibratorOptions {
  Calibrator method = Calibrator::kMax;
  double percentile = 99.99;  ///< for kPercentile, in (0, 100]
  int quant_levels = 128;     ///< positive levels of the target type (int8: 128)
  int start_bin = 128;        ///< smallest candidate threshold (in bins) for entropy and mse
};

/// The clipping threshold T of `stats` by `options.method` (scale = T / 127). FailedPrecondition
/// before any data; InvalidArgument for a percentile outside (0, 100]. Inputs that were all zero
/// give T = 1 (any scale represents zero exactly). Never above absmax.
Result<float> select_threshold(const ActivationStats& stats, const CalibratorOptions& options);

/// The histogram-level calibrators (exposed for tests). `hist` is a histogram of |x| with bins of
/// `bin_width`; each returns a threshold on a bin edge, not clamped to the data's absmax.
double threshold_percentile(const std::vector<int64_t>& hist, double bin_width, double percentile);
/// TensorRT's / pytorch-quantization's entropy calibration: for each candidate i (in bins) from
/// start_bin up to the last non-empty bin, P = hist[0..i) with the clipped tail added to bin
/// i-1, Q = P's first i bins merged into `levels` quantization bins and expanded back over their
/// non-empty bins; returns the threshold of the largest i with the smallest KL(P || Q).
double threshold_entropy(const std::vector<int64_t>& hist, double bin_width, int levels = 128,
                         int start_bin = 128);
/// The threshold whose fake quantization (round to `levels - 1` steps, clip) of the bin centres
/// has the smallest count-weighted squared error; candidates as threshold_entropy.
double threshold_mse(const std::vector<int64_t>& hist, double bin_width, int levels = 128,
                     int start_bin = 128);

}  // namespace kiln::quant
