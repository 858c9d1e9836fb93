// Reads golden fixtures (safetensors written by tests/golden/models/make_golden.py) and compares
// kiln's outputs with them.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "model/safetensors.h"

namespace kiln::testing {

/// A fixture file; tensors fetched by key.
class Golden {
 public:
  explicit Golden(const std::string& path) {
    auto st = model::SafeTensors::open(path);
    EXPECT_TRUE(st.ok()) << st.status().to_string();
    if (st.ok()) file_ = std::make_unique<model::SafeTensors>(std::move(st).value());
  }
  bool ok() const { return file_ != nullptr; }
  bool has(const std::string& key) const { return file_->find(key) != nullptr; }

  std::vector<float> floats(const std::string& key) const {
    const auto* t = file_->find(key);
    EXPECT_NE(t, nullptr) << key;
    if (t == nullptr) return {};
    return model::to_float32(*t).value();
  }
  std::vector<int32_t> ints(const std::string& key) const {
    const auto* t = file_->find(key);
    EXPECT_TRUE(t != nullptr && t->dtype == DType::kI32) << key;
    if (t == nullptr) return {};
    std::vector<int32_t> v(static_cast<size_t>(t->numel()));
    std::memcpy(v.data(), t->data, t->nbytes);
    return v;
  }

 private:
  std::unique_ptr<model::SafeTensors> file_;
};

/// Fixture key "name.i". (Built by appending: GCC 12 warns falsely on `"literal" + string`.)
inline std::string key(const char* name, size_t i) {
  std::string k(name);
  k += '.';
  k += std::to_string(i);
  return k;
}

/// max |a - b| / max |b|.
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 1e-12;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

inline double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

/// Rows [begin, end) of a [tokens, cols] matrix.
inline std::vector<float> rows(const std::vector<float>& m, int64_t begin, int64_t end,
                               int64_t cols) {
  return std::vector<float>(m.begin() + begin * cols, m.begin() + end * cols);
}

}  // namespace kiln::testing
