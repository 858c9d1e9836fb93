// `kiln infer --model DIR [--task embed|classify|ner|qa] TEXT...`: one JSON object per input.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "options.h"
#include "tasks/ner.h"
#include "tasks/qa.h"

namespace kiln::cli {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

struct InferFlags {
  std::string model;
  std::string task;
  std::string question;
  int max_dims = 0;
  int max_answer_tokens = 15;
  bool similarity = false;
  std::vector<std::string> texts;
  EngineFlags engine;
};

std::vector<float> softmax(const float* x, int64_t n) {
  const float m = *std::max_element(x, x + n);
  std::vector<float> p(static_cast<size_t>(n));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += p[i] = std::exp(x[i] - m);
  for (auto& v : p) v = static_cast<float>(v / sum);
  return p;
}

std::string label_name(const ModelInfo& info, int64_t i) {
  return i < static_cast<int64_t>(info.labels.size()) ? info.labels[i]
                                                      : "LABEL_" + std::to_string(i);
}

void write_string(Writer& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

int run_embed(const Engine& engine, const InferFlags& f) {
  auto batch = engine.tokenize(f.texts);
  if (!batch.ok()) return fail(batch.status());
  RunOutputs out;
  if (Status s = engine.run(*batch, {.embeddings = true}, &out); !s.ok()) return fail(s);
  const int64_t h = engine.info().hidden_size;
  const int64_t dims = f.max_dims > 0 ? std::min<int64_t>(f.max_dims, h) : h;
  for (size_t i = 0; i < f.texts.size(); ++i) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("text");
    write_string(w, f.texts[i]);
    w.Key("tokens");
    w.Int(batch->cu_seqlens[i + 1] - batch->cu_seqlens[i]);
    w.Key("dims");
    w.Int64(h);
    w.Key("embedding");
    w.StartArray();
    for (int64_t c = 0; c < dims; ++c) w.Double(out.embeddings[i * h + c]);
    w.EndArray();
    w.EndObject();
    std::cout << buf.GetString() << "\n";
  }
  if (f.similarity) {  // cosine similarity of every pair of inputs
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("cosine_similarity");
    w.StartArray();
    for (size_t i = 0; i < f.texts.size(); ++i) {
      w.StartArray();
      for (size_t j = 0; j < f.texts.size(); ++j) {
        double ab = 0, aa = 0, bb = 0;
        for (int64_t c = 0; c < h; ++c) {
          const double a = out.embeddings[i * h + c], b = out.embeddings[j * h + c];
          ab += a * b;
          aa += a * a;
          bb += b * b;
        }
        w.Double(std::round(1e4 * ab / std::sqrt(aa * bb)) / 1e4);
      }
      w.EndArray();
    }
    w.EndArray();
    w.EndObject();
    std::cout << buf.GetString() << "\n";
  }
  return 0;
}

int run_classify(const Engine& engine, const InferFlags& f) {
  auto batch = engine.tokenize(f.texts);
  if (!batch.ok()) return fail(batch.status());
  RunOutputs out;
  if (Status s = engine.run(*batch, {.head = true}, &out); !s.ok()) return fail(s);
  const int64_t n = out.logits_cols;
  for (size_t i = 0; i < f.texts.size(); ++i) {
    // One logit (cross-encoder scores, regression-style heads): a sigmoid, as the
    // text-classification pipeline of transformers applies.
    const auto p = n == 1 ? std::vector<float>{1.0f / (1.0f + std::exp(-out.logits[i]))}
                          : softmax(out.logits.data() + i * n, n);
    const int64_t best = std::max_element(p.begin(), p.end()) - p.begin();
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("text");
    write_string(w, f.texts[i]);
    w.Key("label");
    write_string(w, label_name(engine.info(), best));
    w.Key("score");
    w.Double(p[best]);
    w.Key("scores");
    w.StartObject();
    for (int64_t c = 0; c < n; ++c) {
      w.Key(label_name(engine.info(), c).c_str());
      w.Double(p[c]);
    }
    w.EndObject();
    w.EndObject();
    std::cout << buf.GetString() << "\n";
  }
  return 0;
}

int run_ner(const Engine& engine, const InferFlags& f) {
  EncodeOptions opts;
  opts.max_length = static_cast<size_t>(engine.info().max_sequence_length);
  for (const auto& text : f.texts) {
    auto enc = engine.tokenizer()->encode(text, opts);
    if (!enc.ok()) return fail(enc.status());
    TokenBatch batch;
    batch.add(enc->ids, enc->type_ids);
    RunOutputs out;
    if (Status s = engine.run(batch, {.head = true}, &out); !s.ok()) return fail(s);
    const auto chars = byte_to_char_offsets(text, enc->offsets);
    const int64_t n = out.logits_cols;
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("text");
    write_string(w, text);
    w.Key("tokens");
    w.StartArray();
    for (size_t t = 0; t < enc->ids.size(); ++t) {
      if (enc->special_tokens_mask[t]) continue;
      const auto p = softmax(out.logits.data() + t * n, n);
      const int64_t best = std::max_element(p.begin(), p.end()) - p.begin();
      w.StartObject();
      w.Key("token");
      write_string(w, engine.tokenizer()->id_to_token(enc->ids[t]));
      w.Key("label");
      write_string(w, label_name(engine.info(), best));
      w.Key("score");
      w.Double(p[best]);
      w.Key("start");
      w.Uint64(chars[t].first);
      w.Key("end");
      w.Uint64(chars[t].second);
      w.EndObject();
    }
    w.EndArray();
    // Grouped as kiln serve's `entities` output (aggregation "simple").
    std::vector<std::string> labels = engine.info().labels;
    for (auto i = static_cast<int64_t>(labels.size()); i < n; ++i) {
      labels.push_back(label_name(engine.info(), i));
    }
    const std::string entities = tasks::entities_json(
        tasks::group_entities(*engine.tokenizer(), text, *enc, out.logits.data(), labels));
    w.Key("entities");
    w.RawValue(entities.c_str(), entities.size(), rapidjson::kArrayType);
    w.EndObject();
    std::cout << buf.GetString() << "\n";
  }
  return 0;
}

// The same decoding as kiln serve's question answering (src/tasks/qa.h): windows with the
// document stride, word-aligned spans, answers merged across windows.
int run_qa(const Engine& engine, const InferFlags& f) {
  if (f.question.empty()) {
    std::cerr << "error: --task qa needs --question; the texts are the contexts\n";
    return 1;
  }
  tasks::QaOptions qa;
  qa.max_seq_len = std::min<size_t>(384, static_cast<size_t>(engine.info().max_sequence_length));
  qa.doc_stride = std::min<size_t>(qa.max_seq_len / 2, 128);
  qa.max_answer_len = static_cast<size_t>(f.max_answer_tokens);
  if (Status s = tasks::check_qa_options(qa); !s.ok()) return fail(s);
  for (const auto& context : f.texts) {
    auto ex = tasks::make_qa_example(*engine.tokenizer(), f.question, context, qa);
    if (!ex.ok()) return fail(ex.status());
    TokenBatch batch;
    for (const auto& feature : ex->features) batch.add(feature.ids, feature.type_ids);
    RunOutputs out;
    if (Status s = engine.run(batch, {.head = true}, &out); !s.ok()) return fail(s);
    std::vector<const float*> logits;
    for (int64_t w = 0; w < batch.num_sequences(); ++w) {
      logits.push_back(out.logits.data() + batch.cu_seqlens[static_cast<size_t>(w)] * 2);
    }
    const auto answers = tasks::decode_answers(*ex, logits, qa);
    const tasks::QaAnswer best = answers.empty() ? tasks::QaAnswer{} : answers.front();
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("question");
    write_string(w, f.question);
    w.Key("answer");
    write_string(w, best.text);
    w.Key("score");
    w.Double(best.score);
    w.Key("start");
    w.Int64(best.start);
    w.Key("end");
    w.Int64(best.end);
    w.Key("windows");
    w.Uint64(ex->features.size());
    w.EndObject();
    std::cout << buf.GetString() << "\n";
  }
  return 0;
}

int run(InferFlags& f) {
  EngineOptions options;
  if (!f.engine.to_options(&options)) return 1;
  if (f.texts.empty()) {  // read one text per stdin line
    for (std::string line; std::getline(std::cin, line);) {
      if (!line.empty()) f.texts.push_back(line);
    }
  }
  auto engine = Engine::load(f.model, options);
  if (!engine.ok()) return fail(engine.status());
  Task task = (*engine)->info().task;
  if (!f.task.empty() && !parse_task(f.task, &task)) {
    std::cerr << "error: unknown task \"" << f.task << "\" (embed, classify, ner, qa)\n";
    return 1;
  }
  if (task != Task::kEmbed && task != (*engine)->info().task) {
    std::cerr << "error: model " << (*engine)->info().hf_class << " has no " << task_name(task)
              << " head\n";
    return 1;
  }
  if (f.texts.empty()) return 0;
  if ((*engine)->tokenizer() == nullptr) {
    std::cerr << "error: " << f.model << " has no tokenizer.json or vocab.txt\n";
    return 1;
  }
  switch (task) {
    case Task::kEmbed:
      return run_embed(**engine, f);
    case Task::kSequenceClassification:
      return run_classify(**engine, f);
    case Task::kTokenClassification:
      return run_ner(**engine, f);
    case Task::kQuestionAnswering:
      return run_qa(**engine, f);
  }
  return 1;
}

}  // namespace

void register_infer(CLI::App& app, Runner* runner) {
  auto flags = std::make_shared<InferFlags>();
  CLI::App* cmd = app.add_subcommand("infer", "Run a model on texts (arguments or stdin lines)");
  cmd->add_option("--model", flags->model, "Hugging Face model directory")->required();
  cmd->add_option("--task", flags->task, "embed | classify | ner | qa (default: the model's head)");
  cmd->add_option("--question", flags->question, "Question for --task qa (texts are contexts)");
  cmd->add_option("--max-dims", flags->max_dims, "Print only the first N embedding dimensions");
  cmd->add_option("--max-answer-tokens", flags->max_answer_tokens, "Longest QA answer span");
  cmd->add_flag("--similarity", flags->similarity,
                "With --task embed: also print the cosine similarity matrix of the inputs");
  cmd->add_option("texts", flags->texts, "Input texts; none: read stdin lines");
  flags->engine.add_to(cmd);
  cmd->callback([flags, runner] { *runner = [flags] { return run(*flags); }; });
}

}  // namespace kiln::cli
