#include "server/vector_index.h"

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kiln::server {

struct VectorIndex::Hnsw {
  hnswlib::InnerProductSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  size_t capacity = 0;
  explicit Hnsw(size_t dim) : space(dim) {}
};

VectorIndex::VectorIndex(size_t dim, Options options) : dim_(dim), options_(options) {
  if (!options_.exact) hnsw_ = std::make_unique<Hnsw>(dim);
}

VectorIndex::~VectorIndex() = default;

Status VectorIndex::add(const float* rows, size_t n) {
  if (n == 0) return ok_status();
  if (options_.exact) {
    rows_.insert(rows_.end(), rows, rows + n * dim_);
    size_ += n;
    return ok_status();
  }
  try {
    if (!hnsw_->graph) {
      hnsw_->capacity = std::max<size_t>(1024, n);
      hnsw_->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
          &hnsw_->space, hnsw_->capacity, options_.m, options_.ef_construction);
      hnsw_->graph->setEf(options_.ef_search);
    } else if (size_ + n > hnsw_->capacity) {
      hnsw_->capacity = std::max(hnsw_->capacity * 2, size_ + n);
      hnsw_->graph->resizeIndex(hnsw_->capacity);
    }
    for (size_t i = 0; i < n; ++i) {
      hnsw_->graph->addPoint(rows + i * dim_, static_cast<hnswlib::labeltype>(size_ + i));
    }
  } catch (const std::exception& e) {  // hnswlib reports allocation failures by throwing
    return resource_exhausted(std::string("vector index: ") + e.what());
  }
  size_ += n;
  return ok_status();
}

void VectorIndex::search(const float* query, size_t k, std::vector<int64_t>* ids,
                         std::vector<float>* scores) const {
  ids->clear();
  scores->clear();
  k = std::min(k, size_);
  if (k == 0) return;
  if (options_.exact) {
    std::vector<float> dots(size_);
    for (size_t r = 0; r < size_; ++r) {
      const float* row = rows_.data() + r * dim_;
      float d = 0;
      for (size_t j = 0; j < dim_; ++j) d += row[j] * query[j];
      dots[r] = d;
    }
    std::vector<int64_t> order(size_);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(
        order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
        [&](int64_t a, int64_t b) { return dots[a] != dots[b] ? dots[a] > dots[b] : a < b; });
    for (size_t i = 0; i < k; ++i) {
      ids->push_back(order[i]);
      scores->push_back(dots[order[i]]);
    }
    return;
  }
  // hnswlib's inner-product distance is 1 - <a, b>; the queue pops the farthest first.
  auto found = hnsw_->graph->searchKnn(query, k);
  ids->resize(found.size());
  scores->resize(found.size());
  for (size_t i = found.size(); i-- > 0;) {
    (*ids)[i] = static_cast<int64_t>(found.top().second);
    (*scores)[i] = 1.0f - found.top().first;
    found.pop();
  }
}

void l2_normalize_rows(float* rows, size_t n, size_t dim) {
  for (size_t r = 0; r < n; ++r) {
    float* v = rows + r * dim;
    double ss = 0;
    for (size_t j = 0; j < dim; ++j) ss += double(v[j]) * v[j];
    if (ss <= 0) continue;
    const auto inv = static_cast<float>(1.0 / std::sqrt(ss));
    for (size_t j = 0; j < dim; ++j) v[j] *= inv;
  }
}

}  // namespace kiln::server
