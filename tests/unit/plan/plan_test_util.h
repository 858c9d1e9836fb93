// Helpers for the plan tests: temporary folders, a micro model built in memory, engines' outputs.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "model/config.h"
#include "plan/plan_builder.h"

namespace kiln::plan::testing {

namespace fs = std::filesystem;

/// The tiny random checkpoints of the golden tests.
inline std::string tiny_model(const std::string& name) {
  return std::string(KILN_SOURCE_DIR) + "/tests/golden/models/tiny/" + name;
}

/// A fresh temporary folder, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kiln_plan_XXXXXX").string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

/// A WordPiece vocabulary: specials, a few words, every lower-case letter.
inline std::string micro_vocab() {
  std::string v = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (const char* w : {"the", "quick", "brown", "fox", "hello", "world", "kiln", "plan"}) {
    v += std::string(w) + "\n";
  }
  for (char c = 'a'; c <= 'z'; ++c) v += std::string(1, c) + "\n##" + std::string(1, c) + "\n";
  return v;
}

/// A BERT with hidden 16, 1 layer, 64 ids and random weights, built in memory: plans of a few
/// kilobytes (the fuzz seeds) and fast corruption tests.
inline ModelSource micro_source(bool with_tokenizer = true) {
  ModelSource src;
  src.dir = "micro";
  src.config_json = R"({"architectures": ["BertModel"], "model_type": "bert",
    "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
    "intermediate_size": 32, "max_position_embeddings": 16, "type_vocab_size": 2,
    "vocab_size": 64, "hidden_act": "gelu", "layer_norm_eps": 1e-12})";
  auto config = model::parse_config(src.config_json);
  EXPECT_TRUE(config.ok()) << config.status().to_string();
  src.config = *config;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.2f);
  auto rand = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = normal(rng);
    return v;
  };
  auto dense = [&](int64_t out, int64_t in) {
    model::DenseWeights d;
    d.out = out;
    d.in = in;
    d.weight = rand(out * in);
    d.bias = rand(out);
    return d;
  };
  auto norm = [&] {
    model::NormWeights n;
    n.gamma = std::vector<float>(16, 1.0f);
    n.beta = rand(16);
    return n;
  };
  model::EncoderWeights& w = src.weights;
  w.word_embeddings = rand(64 * 16);
  w.position_embeddings = rand(16 * 16);
  w.type_embeddings = rand(2 * 16);
  w.embedding_norm = norm();
  model::LayerWeights l;
  l.qkv = dense(48, 16);
  l.attn_out = dense(16, 16);
  l.attn_norm = norm();
  l.ffn_in = dense(32, 16);
  l.ffn_out = dense(16, 32);
  l.ffn_norm = norm();
  w.layers.push_back(std::move(l));
  w.num_parameters = 64 * 16 + 16 * 16 + 2 * 16 + 32 + 48 * 17 + 16 * 17 + 32 * 17 + 16 * 33 + 64;
  if (with_tokenizer) {
    src.tokenizer = ModelSource::TokenizerText{TokenizerRecord::Kind::kVocab, true, micro_vocab()};
  }
  return src;
}

/// Loads an engine (one thread), failing the test when it cannot.
inline std::unique_ptr<Engine> load(const std::string& path,
                                    Precision precision = Precision::kF32) {
  EngineOptions options;
  options.num_threads = 1;
  options.precision = precision;
  auto engine = Engine::load(path, options);
  EXPECT_TRUE(engine.ok()) << path << ": " << engine.status().to_string();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

/// Deterministic sequences of 3, 9 and 17 tokens inside the vocabulary.
inline TokenBatch test_batch(const Engine& engine) {
  std::mt19937 rng(11);
  const int64_t vocab = engine.info().vocab_size;
  // RoBERTa's token-type table has one row.
  const Architecture arch = engine.info().architecture;
  const bool types_used = arch != Architecture::kRoberta && arch != Architecture::kXlmRoberta;
  TokenBatch batch;
  for (int len : {3, 9, 17}) {
    std::vector<int32_t> ids, types;
    for (int i = 0; i < len; ++i) {
      ids.push_back(static_cast<int32_t>(rng() % vocab));
      types.push_back(types_used && i >= len / 2 ? 1 : 0);
    }
    batch.add(ids, types);
  }
  return batch;
}

/// Hidden states, embeddings and (for models with a head) logits of `batch`.
inline RunOutputs run_all(const Engine& engine, const TokenBatch& batch) {
  RunOptions what;
  what.hidden_states = true;
  what.embeddings = true;
  what.head = engine.info().task != Task::kEmbed;
  RunOutputs out;
  Status s = engine.run(batch, what, &out);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

/// Largest |a - b| relative to the largest |a|.
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 1e-12;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(a[i])));
  }
  return diff / scale;
}

}  // namespace kiln::plan::testing
