// Kernel autotuning for the GEMMs, as TensorRT's builder does it: for each linear layer's shape
// and each token bucket, every algorithm cuBLASLt proposes is timed on this GPU and the fastest
// is kept. `kiln build --device cuda` stores the table in the plan's "device" section (JSON,
// see device_record.h); a load on the same GPU model with the same cuBLASLt version uses it,
// anything else falls back to cuBLASLt's heuristic with a warning.
#pragma once

#include <cublasLt.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cuda/gemm.h"
#include "core/json.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

/// One tuned shape: `shape.rows` is the bucket it was timed at.
struct TunedGemm {
  GemmShape shape;
  cublasLtMatmulAlgo_t algo{};
  double us = 0;            ///< the chosen algorithm, per call
  double heuristic_us = 0;  ///< cuBLASLt's first heuristic choice, per call
  int candidates = 0;       ///< algorithms timed
  std::string kernel;       ///< "algo 66 tile 20 stages 8 split-k 1 cluster 2"
};

/// Chosen algorithms by (bucket, out, in, epilogue, dtype). Immutable once built; shared by all
/// stream contexts of an encoder.
class GemmTuning {
 public:
  /// The bucket a GEMM of `rows` tokens uses: the next power of two, at least kMinBucket.
  static int64_t bucket(int64_t rows);
  static constexpr int64_t kMinBucket = 16;

  void add(TunedGemm tuned);
  /// The algorithm tuned for `shape`'s bucket, or null.
  const cublasLtMatmulAlgo_t* find(const GemmShape& shape) const;
  const std::vector<TunedGemm>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

  /// Writes the "gemms" array of the device record.
  void write_json(rapidjson::Writer<rapidjson::StringBuffer>& w) const;
  /// Reads it back; DataLoss naming the entry on anything malformed.
  static Result<GemmTuning> from_json(const core::json::Value& gemms);

 private:
  using Key = std::tuple<int64_t, int64_t, int64_t, int, int>;
  static Key key_of(const GemmShape& s, int64_t rows);
  std::vector<TunedGemm> entries_;
  std::map<Key, size_t> index_;
};

/// What GPU and library a tuning is valid for.
struct TuningTarget {
  std::string gpu;  ///< cudaDeviceProp::name
  size_t cublaslt_version = 0;
  static TuningTarget current(int device);
  bool operator==(const TuningTarget&) const = default;
};

/// Times cuBLASLt's candidates for every shape in `shapes` (rows = the bucket) on `device`,
/// with the weights `weights[i]` of shapes[i] ([out, in], the model's own, copied around so
/// they are read from memory as in a forward pass rather than from L2) and random
/// activations. `max_candidates` bounds the algorithms timed per shape.
Result<GemmTuning> tune_gemms(const std::vector<GemmShape>& shapes,
                              const std::vector<const void*>& weights,
                              const std::vector<const void*>& biases, int max_candidates = 24);

}  // namespace kiln::backend::cuda
