#include "tasks/qa.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tasks/text.h"

namespace kiln::tasks {

namespace {

QaFeature to_feature(const Encoding& e, int32_t cls_id) {
  QaFeature f;
  f.ids = e.ids;
  f.type_ids = e.type_ids;
  f.offsets = e.offsets;
  f.words = e.word_ids;
  f.sequence = e.sequence_ids;
  f.allowed.resize(e.ids.size());
  for (size_t i = 0; i < e.ids.size(); ++i) {
    // The pipeline's p_mask: context tokens may answer, and [CLS] (the "no answer" slot).
    f.allowed[i] = e.sequence_ids[i] == 1 || (cls_id >= 0 && e.ids[i] == cls_id);
  }
  return f;
}

// numpy's float32 softmax over all tokens, non-answer tokens first set to -10000.
std::vector<float> probabilities(const float* logits, const QaFeature& f, int which) {
  const size_t n = f.ids.size();
  std::vector<float> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = f.allowed[i] ? logits[2 * i + which] : -10000.0f;
  const float m = *std::max_element(p.begin(), p.end());
  float sum = 0;
  for (float& v : p) {
    v = std::exp(v - m);
    sum += v;
  }
  for (float& v : p) v /= sum;
  return p;
}

// The character range of token `t`'s whole word within the context (tokenizers'
// word_to_chars over this window), or the token's own offsets for a token without a word.
std::pair<size_t, size_t> word_bytes(const QaFeature& f, size_t t, bool first) {
  const int32_t w = f.words[t];
  if (w < 0 || f.sequence[t] != 1) return f.offsets[t];
  size_t lo = t, hi = t;
  while (lo > 0 && f.words[lo - 1] == w && f.sequence[lo - 1] == 1) --lo;
  while (hi + 1 < f.words.size() && f.words[hi + 1] == w && f.sequence[hi + 1] == 1) ++hi;
  return first ? std::pair{f.offsets[lo].first, f.offsets[lo].second}
               : std::pair{f.offsets[hi].first, f.offsets[hi].second};
}

struct Span {
  size_t start;
  size_t end;
  float score;
};

// decode_spans: the `k` best spans start <= end < start + max_answer_len by p_start * p_end,
// both ends answer tokens.
std::vector<Span> best_spans(const std::vector<float>& ps, const std::vector<float>& pe,
                             const QaFeature& f, size_t k, size_t max_answer_len) {
  std::vector<Span> spans;
  const size_t n = ps.size();
  for (size_t s = 0; s < n; ++s) {
    if (!f.allowed[s]) continue;
    for (size_t e = s; e < n && e < s + max_answer_len; ++e) {
      if (f.allowed[e]) spans.push_back({s, e, ps[s] * pe[e]});
    }
  }
  k = std::min(k, spans.size());
  std::partial_sort(spans.begin(), spans.begin() + static_cast<std::ptrdiff_t>(k), spans.end(),
                    [](const Span& a, const Span& b) { return a.score > b.score; });
  spans.resize(k);
  return spans;
}

}  // namespace

Status check_qa_options(const QaOptions& o) {
  if (o.max_seq_len < 8) return invalid_argument("max_seq_len must be at least 8");
  if (o.doc_stride >= o.max_seq_len) {
    return invalid_argument("doc_stride (" + std::to_string(o.doc_stride) +
                            ") must be smaller than max_seq_len (" + std::to_string(o.max_seq_len) +
                            ")");
  }
  if (o.max_answer_len == 0) return invalid_argument("max_answer_len must be at least 1");
  if (o.top_k == 0 || o.top_k > 100) return invalid_argument("top_k must be in [1, 100]");
  return ok_status();
}

Result<QaExample> make_qa_example(const Tokenizer& tokenizer, std::string_view question,
                                  std::string_view context, const QaOptions& options) {
  if (question.empty()) return invalid_argument("the question is empty");
  if (context.empty()) return invalid_argument("the context is empty");
  EncodeOptions eo;
  eo.max_length = options.max_seq_len;
  eo.strategy = TruncationStrategy::kOnlySecond;
  eo.stride = options.doc_stride;
  eo.return_overflowing = true;
  auto enc = tokenizer.encode_pair(question, context, eo);
  if (!enc.ok()) {
    return invalid_argument("question and context do not fit windows of " +
                            std::to_string(options.max_seq_len) + " tokens with stride " +
                            std::to_string(options.doc_stride) +
                            " (is the question too long?): " + std::string(enc.status().message()));
  }
  int32_t cls = tokenizer.token_to_id("[CLS]");
  if (cls < 0) cls = tokenizer.token_to_id("<s>");
  QaExample ex;
  ex.context = std::string(context);
  ex.features.push_back(to_feature(*enc, cls));
  for (const Encoding& o : enc->overflowing) ex.features.push_back(to_feature(o, cls));
  return ex;
}

std::vector<QaAnswer> decode_answers(const QaExample& ex,
                                     std::span<const float* const> feature_logits,
                                     const QaOptions& options) {
  struct Found {
    size_t begin, end;  // bytes
    std::string lower;
    double score;
  };
  std::vector<Found> found;
  double min_null = 1e6;
  // The pipeline keeps 2k + 10 candidates per window: some collapse when aligned to words.
  const size_t pre_k = options.top_k * 2 + 10;
  for (size_t fi = 0; fi < ex.features.size(); ++fi) {
    const QaFeature& f = ex.features[fi];
    if (f.ids.empty()) continue;
    std::vector<float> ps = probabilities(feature_logits[fi], f, 0);
    std::vector<float> pe = probabilities(feature_logits[fi], f, 1);
    min_null = std::min(min_null, static_cast<double>(ps[0] * pe[0]));
    ps[0] = pe[0] = 0.0f;  // [CLS] is not an answer here
    for (const Span& s : best_spans(ps, pe, f, pre_k, options.max_answer_len)) {
      const size_t begin = word_bytes(f, s.start, true).first;
      const size_t end = std::max(begin, word_bytes(f, s.end, false).second);
      std::string lower = lowercase(std::string_view(ex.context).substr(begin, end - begin));
      auto same = std::find_if(found.begin(), found.end(),
                               [&](const Found& a) { return a.lower == lower; });
      if (same != found.end()) {
        same->score += s.score;
      } else {
        found.push_back({begin, end, std::move(lower), s.score});
      }
    }
  }
  if (options.handle_impossible_answer) found.push_back({0, 0, "", min_null});
  std::stable_sort(found.begin(), found.end(),
                   [](const Found& a, const Found& b) { return a.score > b.score; });
  if (found.size() > options.top_k) found.resize(options.top_k);
  std::vector<std::pair<size_t, size_t>> bytes;
  for (const Found& a : found) bytes.emplace_back(a.begin, a.end);
  const auto chars = byte_to_char_offsets(ex.context, bytes);
  std::vector<QaAnswer> answers;
  for (size_t i = 0; i < found.size(); ++i) {
    answers.push_back({ex.context.substr(found[i].begin, found[i].end - found[i].begin),
                       found[i].score, static_cast<int64_t>(chars[i].first),
                       static_cast<int64_t>(chars[i].second)});
  }
  return answers;
}

}  // namespace kiln::tasks
