#include "quant/eval.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <string_view>

namespace kiln::quant {

namespace {

// Outputs of one engine over a list of texts, concatenated in order.
struct TextOutputs {
  std::vector<float> embeddings;  // [texts, hidden]
  std::vector<float> hidden;      // [tokens, hidden]
  std::vector<float> logits;      // [texts or tokens, cols]
  int64_t logits_cols = 0;
};

Status run_texts(const Engine& engine, const std::vector<std::string>& texts,
                 const RunOptions& what, int64_t batch, TextOutputs* out) {
  for (size_t b = 0; b < texts.size(); b += static_cast<size_t>(batch)) {
    const size_t e = std::min(texts.size(), b + static_cast<size_t>(batch));
    KILN_ASSIGN_OR_RETURN(auto tokens, engine.tokenize({texts.begin() + b, texts.begin() + e}));
    RunOutputs r;
    KILN_RETURN_IF_ERROR(engine.run(tokens, what, &r));
    out->embeddings.insert(out->embeddings.end(), r.embeddings.begin(), r.embeddings.end());
    out->hidden.insert(out->hidden.end(), r.hidden_states.begin(), r.hidden_states.end());
    out->logits.insert(out->logits.end(), r.logits.begin(), r.logits.end());
    out->logits_cols = r.logits_cols;
  }
  return ok_status();
}

// Runs both engines on `texts`; the token counts must agree (same tokenizer).
Status run_both(const Engine& ref, const Engine& cand, const std::vector<std::string>& texts,
                const RunOptions& what, int64_t batch, TextOutputs* r, TextOutputs* c) {
  KILN_RETURN_IF_ERROR(run_texts(ref, texts, what, batch, r));
  KILN_RETURN_IF_ERROR(run_texts(cand, texts, what, batch, c));
  if (r->hidden.size() != c->hidden.size() || r->logits.size() != c->logits.size() ||
      r->embeddings.size() != c->embeddings.size()) {
    return invalid_argument("reference and candidate tokenize the evaluation texts differently");
  }
  return ok_status();
}

std::vector<int> argmax_rows(const std::vector<float>& x, int64_t cols) {
  std::vector<int> out(x.size() / std::max<int64_t>(cols, 1));
  for (size_t i = 0; i < out.size(); ++i) {
    const float* row = x.data() + i * cols;
    out[i] = cols == 1 ? (row[0] > 0 ? 1 : 0)
                       : static_cast<int>(std::max_element(row, row + cols) - row);
  }
  return out;
}

double agreement(const std::vector<int>& a, const std::vector<int>& b) { return accuracy(a, b); }

std::vector<int> labels_of(const std::vector<LabelledText>& rows) {
  std::vector<int> y;
  y.reserve(rows.size());
  for (const auto& r : rows) y.push_back(r.label);
  return y;
}

std::vector<std::string> texts_of(const std::vector<LabelledText>& rows) {
  std::vector<std::string> t;
  t.reserve(rows.size());
  for (const auto& r : rows) t.push_back(r.text);
  return t;
}

// Which head index means "positive" for SST-2: by label name when the names say, else 1.
int positive_index(const ModelInfo& info, std::vector<std::string>* notes) {
  for (size_t i = 0; i < info.labels.size(); ++i) {
    std::string l = info.labels[i];
    std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
    if (l.find("pos") != std::string::npos) return static_cast<int>(i);
  }
  notes->push_back("label names do not say which is positive; accuracy assumes index 1");
  return 1;
}

Status eval_embedding(const Engine& ref, const Engine& cand, const EvalOptions& o,
                      const std::vector<LabelledText>& dev, const TextOutputs& ref_dev,
                      const TextOutputs& cand_dev, EvalReport* report) {
  EmbeddingEval e;
  const int64_t h = ref.info().hidden_size;
  KILN_ASSIGN_OR_RETURN(auto train,
                        read_labelled_tsv(o.data_dir + "/sst2_probe_train.tsv", o.probe_train));
  KILN_ASSIGN_OR_RETURN(auto ret, read_retrieval_set(o.data_dir, o.retrieval_paragraphs));
  if (o.progress) o.progress("embedding " + std::to_string(train.size()) + " probe sentences");
  TextOutputs rt, ct, rq, cq, rc, cc;
  const RunOptions emb{.embeddings = true};
  KILN_RETURN_IF_ERROR(run_both(ref, cand, texts_of(train), emb, o.batch_texts, &rt, &ct));
  if (o.progress) o.progress("embedding " + std::to_string(ret.queries.size()) + " questions");
  KILN_RETURN_IF_ERROR(run_both(ref, cand, ret.queries, emb, o.batch_texts, &rq, &cq));
  if (o.progress) o.progress("embedding " + std::to_string(ret.corpus.size()) + " paragraphs");
  KILN_RETURN_IF_ERROR(run_both(ref, cand, ret.corpus, emb, o.batch_texts, &rc, &cc));

  std::vector<double> cos;
  for (auto [a, b] : {std::pair{&ref_dev, &cand_dev}, {&rt, &ct}, {&rq, &cq}, {&rc, &cc}}) {
    const auto c = row_cosines(a->embeddings.data(), b->embeddings.data(),
                               static_cast<int64_t>(a->embeddings.size()) / h, h);
    cos.insert(cos.end(), c.begin(), c.end());
  }
  e.cosine = cosine_stats(std::move(cos));

  e.queries = static_cast<int64_t>(ret.queries.size());
  e.corpus = static_cast<int64_t>(ret.corpus.size());
  e.top_k = o.top_k;
  const auto rank_ref =
      top_k_by_cosine(rq.embeddings.data(), e.queries, rc.embeddings.data(), e.corpus, h, o.top_k);
  const auto rank_cand =
      top_k_by_cosine(cq.embeddings.data(), e.queries, cc.embeddings.data(), e.corpus, h, o.top_k);
  e.top_k_overlap = top_k_overlap(rank_ref, rank_cand);
  e.reference_recall_1 = recall_at_k(rank_ref, ret.gold, 1);
  e.candidate_recall_1 = recall_at_k(rank_cand, ret.gold, 1);
  e.reference_recall_k = recall_at_k(rank_ref, ret.gold, o.top_k);
  e.candidate_recall_k = recall_at_k(rank_cand, ret.gold, o.top_k);

  const auto y_train = labels_of(train), y_dev = labels_of(dev);
  e.probe_train = static_cast<int64_t>(train.size());
  e.probe_test = static_cast<int64_t>(dev.size());
  if (o.progress) o.progress("training the SST-2 probes");
  KILN_ASSIGN_OR_RETURN(auto probe_ref, train_logistic_probe(rt.embeddings.data(), y_train, h));
  KILN_ASSIGN_OR_RETURN(auto probe_cand, train_logistic_probe(ct.embeddings.data(), y_train, h));
  e.probe_reference =
      accuracy(probe_predict(probe_ref, ref_dev.embeddings.data(), e.probe_test), y_dev);
  e.probe_same =
      accuracy(probe_predict(probe_ref, cand_dev.embeddings.data(), e.probe_test), y_dev);
  e.probe_retrained =
      accuracy(probe_predict(probe_cand, cand_dev.embeddings.data(), e.probe_test), y_dev);
  report->embedding = e;
  return ok_status();
}

void eval_classification(const Engine& ref, const std::vector<LabelledText>& dev,
                         const TextOutputs& r, const TextOutputs& c, EvalReport* report) {
  ClassificationEval e;
  const int64_t cols = r.logits_cols;
  e.examples = static_cast<int64_t>(dev.size());
  const auto pr = argmax_rows(r.logits, cols), pc = argmax_rows(c.logits, cols);
  e.agreement = agreement(pr, pc);
  for (size_t i = 0; i < r.logits.size(); ++i) {
    e.max_logit_diff = std::max<double>(e.max_logit_diff, std::fabs(r.logits[i] - c.logits[i]));
  }
  if (cols == 2) {
    e.labelled = true;
    const int pos = positive_index(ref.info(), &report->notes);
    std::vector<int> yr, yc;
    for (size_t i = 0; i < pr.size(); ++i) {
      yr.push_back(pr[i] == pos ? 1 : 0);
      yc.push_back(pc[i] == pos ? 1 : 0);
    }
    e.reference_accuracy = accuracy(yr, labels_of(dev));
    e.candidate_accuracy = accuracy(yc, labels_of(dev));
  } else {
    report->notes.push_back("the head has " + std::to_string(cols) +
                            " labels; SST-2 accuracy is only reported for 2-label heads");
  }
  report->classification = e;
}

// One QA example's best answer over all its windows.
struct QaAnswer {
  std::string text;
  double score = -INFINITY;
};

Result<std::vector<std::string>> answer_questions(const Engine& engine,
                                                  const std::vector<QaExample>& examples,
                                                  const EvalOptions& o) {
  const int64_t max_length = std::min(o.qa_max_length, engine.info().max_sequence_length);
  EncodeOptions opts;
  opts.max_length = static_cast<size_t>(max_length);
  opts.strategy = TruncationStrategy::kOnlySecond;
  opts.return_overflowing = true;
  const auto* tok = engine.tokenizer();
  std::vector<QaAnswer> best(examples.size());
  std::vector<std::pair<size_t, Encoding>> windows;  // (example, window)
  auto flush = [&]() -> Status {
    TokenBatch batch;
    for (const auto& [i, w] : windows) batch.add(w.ids, w.type_ids);
    RunOutputs out;
    KILN_RETURN_IF_ERROR(engine.run(batch, {.head = true}, &out));
    for (size_t k = 0; k < windows.size(); ++k) {
      const auto& [i, w] = windows[k];
      const int64_t begin = batch.cu_seqlens[k], len = batch.cu_seqlens[k + 1] - begin;
      double score;
      const auto [s, e] = best_answer_span(out.logits.data() + 2 * begin, len, w.sequence_ids, 1,
                                           o.max_answer_tokens, &score);
      if (s < 0 || score <= best[i].score) continue;
      const size_t b = w.offsets[s].first, end = w.offsets[e].second;
      best[i] = {examples[i].context.substr(b, end > b ? end - b : 0), score};
    }
    windows.clear();
    return ok_status();
  };
  for (size_t i = 0; i < examples.size(); ++i) {
    // Windows overlap by 128 tokens (HF run_qa's doc_stride) or half of what the question
    // leaves of a window, whichever is smaller.
    KILN_ASSIGN_OR_RETURN(auto q, tok->encode(examples[i].question, {.add_special_tokens = false}));
    const int64_t room = max_length - static_cast<int64_t>(tok->num_special_tokens(true)) -
                         static_cast<int64_t>(q.ids.size());
    if (room < 2) return invalid_argument("question " + examples[i].id + " is too long");
    opts.stride = static_cast<size_t>(std::min<int64_t>(128, room / 2));
    KILN_ASSIGN_OR_RETURN(auto enc,
                          tok->encode_pair(examples[i].question, examples[i].context, opts));
    auto overflow = std::move(enc.overflowing);
    windows.emplace_back(i, std::move(enc));
    for (auto& w : overflow) windows.emplace_back(i, std::move(w));
    if (static_cast<int64_t>(windows.size()) >= o.batch_texts / 2) KILN_RETURN_IF_ERROR(flush());
  }
  if (!windows.empty()) KILN_RETURN_IF_ERROR(flush());
  std::vector<std::string> answers;
  answers.reserve(best.size());
  for (auto& b : best) answers.push_back(std::move(b.text));
  return answers;
}

Status eval_qa(const Engine& ref, const Engine& cand, const EvalOptions& o, EvalReport* report) {
  KILN_ASSIGN_OR_RETURN(auto examples,
                        read_squad_tsv(o.data_dir + "/squad_dev_qa.tsv", o.qa_examples));
  if (o.progress) o.progress("answering " + std::to_string(examples.size()) + " SQuAD questions");
  KILN_ASSIGN_OR_RETURN(auto ra, answer_questions(ref, examples, o));
  KILN_ASSIGN_OR_RETURN(auto ca, answer_questions(cand, examples, o));
  QaEval e;
  e.examples = static_cast<int64_t>(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    e.reference_em += squad_exact_match(ra[i], examples[i].answers);
    e.reference_f1 += squad_f1(ra[i], examples[i].answers);
    e.candidate_em += squad_exact_match(ca[i], examples[i].answers);
    e.candidate_f1 += squad_f1(ca[i], examples[i].answers);
    e.agreement += ra[i] == ca[i];
  }
  for (double* v :
       {&e.reference_em, &e.reference_f1, &e.candidate_em, &e.candidate_f1, &e.agreement}) {
    *v /= static_cast<double>(std::max<int64_t>(e.examples, 1));
  }
  report->qa = e;
  return ok_status();
}

}  // namespace

Result<EvalReport> evaluate(const Engine& reference, const Engine& candidate,
                            const EvalOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelInfo &ri = reference.info(), &ci = candidate.info();
  if (ri.task != ci.task || ri.hidden_size != ci.hidden_size || ri.num_layers != ci.num_layers) {
    return invalid_argument("candidate (" + ci.hf_class + ") is not the reference model (" +
                            ri.hf_class + ")");
  }
  if (options.batch_texts < 1 || options.top_k < 1 || options.max_answer_tokens < 1 ||
      options.retrieval_paragraphs < 1 || options.probe_train < 2) {
    return invalid_argument(
        "eval: batch, top-k, answer length, paragraphs and probe sentences "
        "must be positive (the probe needs 2 or more)");
  }
  if (reference.tokenizer() == nullptr || candidate.tokenizer() == nullptr) {
    return failed_precondition("evaluation needs models with a tokenizer");
  }
  EvalReport report;
  report.task = std::string(task_name(ri.task));
  KILN_ASSIGN_OR_RETURN(
      auto dev, read_labelled_tsv(options.data_dir + "/sst2_dev.tsv", options.dev_sentences));
  const bool embed = ri.task == Task::kEmbed;
  const bool head =
      ri.task == Task::kSequenceClassification || ri.task == Task::kTokenClassification;
  if (options.progress)
    options.progress("running " + std::to_string(dev.size()) + " SST-2 dev sentences");
  TextOutputs r, c;
  KILN_RETURN_IF_ERROR(run_both(reference, candidate, texts_of(dev),
                                {.hidden_states = true, .embeddings = embed, .head = head},
                                options.batch_texts, &r, &c));
  const int64_t h = ri.hidden_size;
  report.hidden_cosine = cosine_stats(
      row_cosines(r.hidden.data(), c.hidden.data(), static_cast<int64_t>(r.hidden.size()) / h, h));
  switch (ri.task) {
    case Task::kEmbed:
      KILN_RETURN_IF_ERROR(eval_embedding(reference, candidate, options, dev, r, c, &report));
      report.notes.push_back("no STS (human similarity) data set is available: no Spearman");
      break;
    case Task::kSequenceClassification:
      eval_classification(reference, dev, r, c, &report);
      break;
    case Task::kTokenClassification: {
      TokenEval e;
      const auto pr = argmax_rows(r.logits, r.logits_cols),
                 pc = argmax_rows(c.logits, c.logits_cols);
      e.tokens = static_cast<int64_t>(pr.size());
      e.agreement = agreement(pr, pc);
      report.tokens = e;
      break;
    }
    case Task::kQuestionAnswering:
      KILN_RETURN_IF_ERROR(eval_qa(reference, candidate, options, &report));
      break;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace kiln::quant
