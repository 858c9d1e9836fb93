#include "quant/eval_metrics.h"

#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "quant/linalg.h"
#include "quant/simd_kernels.h"

namespace kiln::quant {

std::vector<double> row_cosines(const float* a, const float* b, int64_t rows, int64_t dim) {
  std::vector<double> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t c = 0; c < dim; ++c) {
      const double x = a[r * dim + c], y = b[r * dim + c];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    out[r] = aa == 0 && bb == 0 ? 1.0 : (aa == 0 || bb == 0 ? 0.0 : ab / std::sqrt(aa * bb));
  }
  return out;
}

CosineStats cosine_stats(std::vector<double> cosines) {
  CosineStats s;
  s.count = static_cast<int64_t>(cosines.size());
  if (cosines.empty()) return s;
  std::sort(cosines.begin(), cosines.end());
  s.mean = std::accumulate(cosines.begin(), cosines.end(), 0.0) / static_cast<double>(s.count);
  s.min = cosines.front();
  const double pos = 0.01 * static_cast<double>(s.count - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, cosines.size() - 1);
  s.p1 = cosines[lo] + (pos - static_cast<double>(lo)) * (cosines[hi] - cosines[lo]);
  return s;
}

namespace {

std::vector<double> normalized_rows(const float* x, int64_t rows, int64_t dim) {
  std::vector<double> out(x, x + rows * dim);
  for (int64_t r = 0; r < rows; ++r) {
    double* row = out.data() + r * dim;
    const double norm = std::sqrt(simd::dot(row, row, dim));
    if (norm > 0) {
      for (int64_t c = 0; c < dim; ++c) row[c] /= norm;
    }
  }
  return out;
}

}  // namespace

std::vector<std::vector<int32_t>> top_k_by_cosine(const float* queries, int64_t num_queries,
                                                  const float* corpus, int64_t num_corpus,
                                                  int64_t dim, int k) {
  const auto q = normalized_rows(queries, num_queries, dim);
  const auto c = normalized_rows(corpus, num_corpus, dim);
  const int64_t keep = std::min<int64_t>(std::max(k, 0), num_corpus);
  std::vector<std::vector<int32_t>> result(static_cast<size_t>(num_queries));
  std::vector<double> score(static_cast<size_t>(num_corpus));
  std::vector<int32_t> idx(static_cast<size_t>(num_corpus));
  for (int64_t i = 0; i < num_queries; ++i) {
    for (int64_t j = 0; j < num_corpus; ++j)
      score[j] = simd::dot(q.data() + i * dim, c.data() + j * dim, dim);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(), [&](int32_t a, int32_t b) {
      return score[a] > score[b] || (score[a] == score[b] && a < b);
    });
    result[i].assign(idx.begin(), idx.begin() + keep);
  }
  return result;
}

double top_k_overlap(const std::vector<std::vector<int32_t>>& a,
                     const std::vector<std::vector<int32_t>>& b) {
  if (a.empty() || a.size() != b.size()) return 0;
  double total = 0;
  for (size_t q = 0; q < a.size(); ++q) {
    if (a[q].empty()) continue;
    int64_t common = 0;
    for (int32_t x : a[q]) common += std::find(b[q].begin(), b[q].end(), x) != b[q].end();
    total += static_cast<double>(common) / static_cast<double>(a[q].size());
  }
  return total / static_cast<double>(a.size());
}

double recall_at_k(const std::vector<std::vector<int32_t>>& ranking,
                   const std::vector<int32_t>& gold, int k) {
  if (ranking.empty() || ranking.size() != gold.size()) return 0;
  int64_t hits = 0;
  for (size_t q = 0; q < ranking.size(); ++q) {
    const auto end = ranking[q].begin() + std::min<size_t>(k, ranking[q].size());
    hits += std::find(ranking[q].begin(), end, gold[q]) != end;
  }
  return static_cast<double>(hits) / static_cast<double>(ranking.size());
}

Result<LogisticProbe> train_logistic_probe(const float* x, const std::vector<int>& y, int64_t dim,
                                           const ProbeOptions& options) {
  const int64_t n = static_cast<int64_t>(y.size());
  if (n == 0 || dim <= 0) return invalid_argument("probe: no training data");
  for (int label : y) {
    if (label != 0 && label != 1) return invalid_argument("probe: labels must be 0 or 1");
  }
  LogisticProbe p;
  p.mean.assign(static_cast<size_t>(dim), 0.0);
  p.inv_std.assign(static_cast<size_t>(dim), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < dim; ++j) p.mean[j] += x[i * dim + j];
  }
  for (auto& m : p.mean) m /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < dim; ++j) {
      const double d = x[i * dim + j] - p.mean[j];
      p.inv_std[j] += d * d;
    }
  }
  for (auto& v : p.inv_std) v = 1.0 / std::max(std::sqrt(v / static_cast<double>(n)), 1e-6);
  // z = [standardized x, 1]; the bias (last) is not penalized.
  const int64_t m = dim + 1;
  std::vector<double> z(static_cast<size_t>(n * m));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < dim; ++j) z[i * m + j] = (x[i * dim + j] - p.mean[j]) * p.inv_std[j];
    z[i * m + dim] = 1.0;
  }
  std::vector<double> w(static_cast<size_t>(m), 0.0), g(m), h(static_cast<size_t>(m * m));
  for (p.iterations = 0; p.iterations < options.max_iterations;) {
    std::fill(g.begin(), g.end(), 0.0);
    std::fill(h.begin(), h.end(), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const double* zi = z.data() + i * m;
      const double prob = 1.0 / (1.0 + std::exp(-simd::dot(zi, w.data(), m)));
      simd::axpy(g.data(), prob - y[i], zi, m);
      const double c = std::max(prob * (1 - prob), 1e-12);
      for (int64_t a = 0; a < m; ++a) simd::axpy(h.data() + a * m, c * zi[a], zi, a + 1);
    }
    for (int64_t a = 0; a < m; ++a) {
      const double reg = a < dim ? options.l2 : 1e-9;
      g[a] += reg * w[a];
      h[a * m + a] += reg;
    }
    if (!linalg::cholesky_lower(h.data(), m)) {
      return internal_error("probe: Newton system is not positive definite");
    }
    linalg::cholesky_solve(h.data(), m, g.data());  // g is now the Newton step
    double step = 0;
    for (int64_t a = 0; a < m; ++a) {
      w[a] -= g[a];
      step = std::max(step, std::fabs(g[a]));
    }
    ++p.iterations;
    if (step < 1e-9) break;
  }
  p.weight.assign(w.begin(), w.begin() + dim);
  p.bias = w[dim];
  return p;
}

std::vector<int> probe_predict(const LogisticProbe& probe, const float* x, int64_t n) {
  const int64_t dim = static_cast<int64_t>(probe.weight.size());
  std::vector<int> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = probe.bias;
    for (int64_t j = 0; j < dim; ++j) {
      s += (x[i * dim + j] - probe.mean[j]) * probe.inv_std[j] * probe.weight[j];
    }
    out[i] = s > 0 ? 1 : 0;
  }
  return out;
}

double accuracy(const std::vector<int>& predicted, const std::vector<int>& labels) {
  if (labels.empty() || predicted.size() != labels.size()) return 0;
  int64_t right = 0;
  for (size_t i = 0; i < labels.size(); ++i) right += predicted[i] == labels[i];
  return static_cast<double>(right) / static_cast<double>(labels.size());
}

namespace {

// Python's str.split() whitespace.
bool is_space(utf8proc_int32_t c) {
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85) return true;
  const auto cat = utf8proc_category(c);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

// Python's re \w on str: letters, numbers, underscore.
bool is_word(utf8proc_int32_t c) {
  if (c == '_') return true;
  const auto cat = utf8proc_category(c);
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

bool is_ascii_punct(utf8proc_int32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
         (c >= 123 && c <= 126);
}

// Normalized words: lower(), drop string.punctuation, \b(a|an|the)\b -> " ", split().
std::vector<std::u32string> squad_words(std::string_view text) {
  std::u32string chars;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  for (utf8proc_ssize_t i = 0, n = static_cast<utf8proc_ssize_t>(text.size()); i < n;) {
    utf8proc_int32_t c;
    const utf8proc_ssize_t len = utf8proc_iterate(p + i, n - i, &c);
    if (len <= 0) {  // invalid byte: skip it, as a replacement character would be
      ++i;
      continue;
    }
    i += len;
    c = utf8proc_tolower(c);
    if (!is_ascii_punct(c)) chars.push_back(c);
  }
  // Word-character runs that are exactly an article become a space.
  std::u32string kept;
  for (size_t i = 0; i < chars.size();) {
    if (!is_word(chars[i])) {
      kept.push_back(chars[i++]);
      continue;
    }
    size_t j = i;
    while (j < chars.size() && is_word(chars[j])) ++j;
    const std::u32string run = chars.substr(i, j - i);
    if (run == U"a" || run == U"an" || run == U"the") {
      kept.push_back(U' ');
    } else {
      kept += run;
    }
    i = j;
  }
  std::vector<std::u32string> words(1);
  for (char32_t c : kept) {
    if (is_space(static_cast<utf8proc_int32_t>(c))) {
      if (!words.back().empty()) words.emplace_back();
    } else {
      words.back().push_back(c);
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

std::string to_utf8(const std::u32string& s) {
  std::string out;
  utf8proc_uint8_t buf[4];
  for (char32_t c : s) {
    const auto len = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
    out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
  }
  return out;
}

}  // namespace

std::string squad_normalize(std::string_view text) {
  std::string out;
  for (const auto& w : squad_words(text)) {
    if (!out.empty()) out += ' ';
    out += to_utf8(w);
  }
  return out;
}

double squad_exact_match(std::string_view prediction, const std::vector<std::string>& golds) {
  const std::string p = squad_normalize(prediction);
  for (const auto& g : golds) {
    if (squad_normalize(g) == p) return 1.0;
  }
  return 0.0;
}

double squad_f1(std::string_view prediction, const std::vector<std::string>& golds) {
  const auto pred = squad_words(prediction);
  double best = 0;
  for (const auto& g : golds) {
    const auto gold = squad_words(g);
    std::map<std::u32string, int64_t> counts;
    for (const auto& w : gold) ++counts[w];
    int64_t same = 0;
    for (const auto& w : pred) {
      auto it = counts.find(w);
      if (it != counts.end() && it->second > 0) --it->second, ++same;
    }
    if (same == 0) continue;
    const double precision = static_cast<double>(same) / static_cast<double>(pred.size());
    const double recall = static_cast<double>(same) / static_cast<double>(gold.size());
    best = std::max(best, 2 * precision * recall / (precision + recall));
  }
  return best;
}

std::pair<int64_t, int64_t> best_answer_span(const float* logits, int64_t tokens,
                                             const std::vector<int32_t>& sequence_ids,
                                             int context_id, int max_tokens, double* score) {
  double best = -std::numeric_limits<double>::infinity();
  std::pair<int64_t, int64_t> span{-1, -1};
  for (int64_t s = 0; s < tokens; ++s) {
    if (sequence_ids[s] != context_id) continue;
    for (int64_t e = s; e < std::min<int64_t>(tokens, s + max_tokens); ++e) {
      if (sequence_ids[e] != context_id) break;
      const double v = static_cast<double>(logits[2 * s]) + logits[2 * e + 1];
      if (v > best) best = v, span = {s, e};
    }
  }
  if (score) *score = best;
  return span;
}

}  // namespace kiln::quant
