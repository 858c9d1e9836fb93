// Nearest neighbours by inner product over L2-normalized vectors (cosine similarity): an HNSW
// graph from hnswlib (the maintained library; Debian libhnswlib-dev), or exact search, which
// is both the small-collection choice and the reference HNSW's recall is measured against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kiln/status.h"

namespace kiln::server {

class VectorIndex {
 public:
  struct Options {
    bool exact = false;            ///< brute force instead of HNSW
    size_t m = 16;                 ///< HNSW links per node
    size_t ef_construction = 200;  ///< HNSW candidate list while inserting
    size_t ef_search = 256;        ///< HNSW candidate list while searching (at least k)
  };

  VectorIndex(size_t dim, Options options);
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  /// Adds `n` rows [n, dim]; they get the ids size(), size() + 1, ... Not thread-safe.
  Status add(const float* rows, size_t n);
  /// The `k` nearest rows to `query` (ids and inner products), best first. Thread-safe with
  /// other searches.
  void search(const float* query, size_t k, std::vector<int64_t>* ids,
              std::vector<float>* scores) const;
  size_t size() const { return size_; }
  size_t dim() const { return dim_; }
  const Options& options() const { return options_; }

 private:
  struct Hnsw;
  const size_t dim_;
  const Options options_;
  size_t size_ = 0;
  std::vector<float> rows_;     // exact: every row
  std::unique_ptr<Hnsw> hnsw_;  // HNSW: the graph
};

/// Scales each of the `n` rows of `dim` floats to unit length (zero rows stay zero).
void l2_normalize_rows(float* rows, size_t n, size_t dim);

}  // namespace kiln::server
