// Server core: the "kiln" encoder backend served from a repository, compared with the engine
// run directly; token-id inputs, padding, the token budget and preserve_ordering.
#include <algorithm>
#include <cmath>
#include <mutex>

#include "core_test_util.h"
#include "kiln/engine.h"
#include "server/tensor_checks.h"

namespace kiln::server::testing {
namespace {

constexpr double kTolerance = 1e-5;

std::unique_ptr<Engine> load_engine(const fs::path& dir) {
  EngineOptions options;
  options.num_threads = 1;
  auto engine = Engine::load(dir.string(), options);
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  if (!engine.ok()) return nullptr;
  return std::move(engine).value();
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  if (a.size() != b.size()) return INFINITY;
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

// Sequence s of a packed batch, as a vector of int64 ids.
std::vector<int64_t> sequence(const TokenBatch& b, size_t s) {
  return std::vector<int64_t>(b.ids.begin() + b.cu_seqlens[s], b.ids.begin() + b.cu_seqlens[s + 1]);
}

InferRequest text_request(const std::string& model, const std::vector<std::string>& texts) {
  InferRequest r;
  r.model_name = model;
  r.inputs.push_back(bytes_tensor("TEXT", {static_cast<int64_t>(texts.size()), 1}, texts));
  return r;
}

InferRequest ids_request(const std::string& model, const std::vector<int64_t>& ids,
                         const std::string& id = "") {
  InferRequest r;
  r.model_name = model;
  r.id = id;
  r.inputs.push_back(int64s("input_ids", {1, static_cast<int64_t>(ids.size())}, ids));
  return r;
}

const std::vector<std::string> kTexts = {"the quick brown fox jumps over the lazy dog",
                                         "hello world"};

TEST(EncoderServing, EmbeddingMatchesEngine) {
  TempRepo repo;
  const fs::path dir = repo.add_encoder("emb", "bert", "");
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  auto r = infer_sync(*server, text_request("emb", kTexts));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Tensor* emb = output(*r, "embedding");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{2, 64}));
  // last_hidden_state is sent only when asked for by name.
  EXPECT_EQ(output(*r, "last_hidden_state"), nullptr);

  auto engine = load_engine(dir / "1");
  ASSERT_NE(engine, nullptr);
  auto batch = engine->tokenize(kTexts);
  ASSERT_TRUE(batch.ok()) << batch.status().to_string();
  ASSERT_EQ(batch->num_sequences(), 2);
  // The vocabulary knows these words: no [UNK] (id 1) in the first text.
  const auto first = sequence(*batch, 0);
  EXPECT_EQ(std::count(first.begin(), first.end(), 1), 0);
  RunOptions what;
  what.embeddings = true;
  RunOutputs expected;
  ASSERT_TRUE(engine->run(*batch, what, &expected).ok());
  EXPECT_LE(max_abs_diff(floats_of(*emb), expected.embeddings), kTolerance);
  // Not trivially equal: the two texts have different embeddings.
  const auto v = floats_of(*emb);
  EXPECT_GT(max_abs_diff(std::vector<float>(v.begin(), v.begin() + 64),
                         std::vector<float>(v.begin() + 64, v.end())),
            1e-3);
}

TEST(EncoderServing, SequenceClassificationLogitsMatchEngine) {
  TempRepo repo;
  const fs::path dir = repo.add_encoder("cls", "bert_seq_cls", "");
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  auto r = infer_sync(*server, text_request("cls", kTexts));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Tensor* logits = output(*r, "logits");
  ASSERT_NE(logits, nullptr);
  EXPECT_EQ(logits->shape, (std::vector<int64_t>{2, 3}));

  auto engine = load_engine(dir / "1");
  ASSERT_NE(engine, nullptr);
  auto batch = engine->tokenize(kTexts);
  ASSERT_TRUE(batch.ok());
  RunOptions what;
  what.head = true;
  RunOutputs expected;
  ASSERT_TRUE(engine->run(*batch, what, &expected).ok());
  EXPECT_EQ(expected.logits_cols, 3);
  EXPECT_LE(max_abs_diff(floats_of(*logits), expected.logits), kTolerance);

  // probabilities = softmax(logits) and label = id2label[argmax], as the text-classification
  // pipeline of transformers gives them.
  const Tensor* probs = output(*r, "probabilities");
  const Tensor* label = output(*r, "label");
  ASSERT_NE(probs, nullptr);
  ASSERT_NE(label, nullptr);
  EXPECT_EQ(probs->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(label->shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(label->datatype, DataType::kBytes);
  const auto p = floats_of(*probs);
  auto names = split_bytes(*label);
  ASSERT_TRUE(names.ok()) << names.status().to_string();
  const char* id2label[] = {"negative", "neutral", "positive"};
  for (int row = 0; row < 2; ++row) {
    const float* z = expected.logits.data() + row * 3;
    const double zmax = std::max({z[0], z[1], z[2]});
    double sum = 0;
    for (int c = 0; c < 3; ++c) sum += std::exp(z[c] - zmax);
    int best = 0;
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(p[row * 3 + c], std::exp(z[c] - zmax) / sum, 1e-6);
      if (z[c] > z[best]) best = c;
    }
    EXPECT_EQ((*names)[row], id2label[best]) << "row " << row;
  }
}

TEST(EncoderServing, PaddedIdsEqualUnpaddedAndText) {
  TempRepo repo;
  const fs::path dir = repo.add_encoder("emb", "bert", "");
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  auto engine = load_engine(dir / "1");
  ASSERT_NE(engine, nullptr);
  auto batch = engine->tokenize(kTexts);
  ASSERT_TRUE(batch.ok());
  const auto a = sequence(*batch, 0), b = sequence(*batch, 1);
  ASSERT_GT(a.size(), b.size());
  const int64_t cols = static_cast<int64_t>(a.size());

  // Row 1 padded to row 0's length with junk ids under mask 0.
  std::vector<int64_t> ids(a), mask(a.size(), 1);
  for (int64_t c = 0; c < cols; ++c) {
    ids.push_back(c < static_cast<int64_t>(b.size()) ? b[c] : 7);
    mask.push_back(c < static_cast<int64_t>(b.size()) ? 1 : 0);
  }
  InferRequest padded;
  padded.model_name = "emb";
  padded.inputs.push_back(int64s("input_ids", {2, cols}, ids));
  padded.inputs.push_back(int64s("attention_mask", {2, cols}, mask));
  auto p = infer_sync(*server, padded);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  const auto padded_emb = floats_of(*output(*p, "embedding"));
  ASSERT_EQ(padded_emb.size(), 128u);

  auto alone = infer_sync(*server, ids_request("emb", b));
  ASSERT_TRUE(alone.ok()) << alone.status().to_string();
  const auto alone_emb = floats_of(*output(*alone, "embedding"));
  EXPECT_EQ(output(*alone, "embedding")->shape, (std::vector<int64_t>{1, 64}));
  EXPECT_LE(max_abs_diff(std::vector<float>(padded_emb.begin() + 64, padded_emb.end()), alone_emb),
            kTolerance);

  auto text = infer_sync(*server, text_request("emb", kTexts));
  ASSERT_TRUE(text.ok());
  EXPECT_LE(max_abs_diff(padded_emb, floats_of(*output(*text, "embedding"))), kTolerance);
}

TEST(EncoderServing, BadInputsNameTheProblem) {
  TempRepo repo;
  repo.add_encoder("emb", "bert", "");
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);

  auto r = infer_sync(*server, ids_request("emb", {2, 600, 3}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("input_ids[0][1] = 600"), std::string::npos)
      << r.status().message();

  InferRequest both = text_request("emb", {"hello"});
  both.inputs.push_back(int64s("input_ids", {1, 2}, {2, 3}));
  r = infer_sync(*server, both);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not both"), std::string::npos) << r.status().message();

  InferRequest none;
  none.model_name = "emb";
  r = infer_sync(*server, none);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);

  std::vector<int64_t> long_ids(200, 5);
  r = infer_sync(*server, ids_request("emb", long_ids));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("200 tokens"), std::string::npos) << r.status().message();

  InferRequest mask_mismatch = ids_request("emb", {2, 3, 4});
  mask_mismatch.inputs.push_back(int64s("attention_mask", {1, 2}, {1, 1}));
  r = infer_sync(*server, mask_mismatch);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("attention_mask"), std::string::npos);
}

TEST(EncoderServing, TokenBudgetLimitsBatches) {
  TempRepo repo;
  const std::string batching =
      "max_batch_size: 8\ndynamic_batching { max_queue_delay_microseconds: 100000 }\n";
  repo.add_encoder("budget", "bert",
                   batching +
                       "parameters { key: \"max_batch_tokens\" value: { string_value: "
                       "\"8\" } }\n");
  repo.add_encoder("nobudget", "bert", batching);
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  for (const std::string model : {"budget", "nobudget"}) {
    std::vector<Pending> pending;
    for (int i = 0; i < 6; ++i) {
      pending.push_back(infer_async(*server, ids_request(model, {2, 10 + i, 20, 3})));
    }
    for (auto& p : pending) ASSERT_TRUE(p.get().ok()) << p.get().status().to_string();
  }
  auto stats = server->statistics("budget", "1");
  ASSERT_TRUE(stats.ok());
  const ModelStatistics& s = (*stats)[0];
  EXPECT_EQ(s.inference_count, 6u);
  EXPECT_GE(s.execution_count, 3u);  // 4 tokens each, 8 per batch
  uint64_t largest = 0;
  for (const auto& b : s.batch_stats) largest = std::max(largest, b.batch_size);
  EXPECT_EQ(largest, 2u);

  stats = server->statistics("nobudget", "1");
  ASSERT_TRUE(stats.ok());
  largest = 0;
  for (const auto& b : (*stats)[0].batch_stats) largest = std::max(largest, b.batch_size);
  EXPECT_GT(largest, 2u);  // the same burst forms larger batches without the budget

  // A request over the budget on its own still runs, alone.
  std::vector<int64_t> twelve(12, 9);
  auto big = infer_sync(*server, ids_request("budget", twelve));
  ASSERT_TRUE(big.ok()) << big.status().to_string();
  EXPECT_EQ(output(*big, "embedding")->shape, (std::vector<int64_t>{1, 64}));
}

TEST(EncoderServing, BadTokenBudgetFailsLoad) {
  TempRepo repo;
  repo.add_encoder("b", "bert",
                   "parameters { key: \"max_batch_tokens\" value: { string_value: \"lots\" } }");
  ServerOptions options;
  options.model_repositories = {repo.path()};
  options.threads_per_instance = 1;
  auto server = Server::create(options);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("max_batch_tokens 'lots'"), std::string::npos)
      << server.status().message();
}

TEST(EncoderServing, BadFp8BoundFailsLoad) {
  for (const char* bad : {"-2", "soon"}) {
    TempRepo repo;
    repo.add_encoder("b", "bert",
                     std::string("parameters { key: \"fp8_min_tokens\" value: { string_value: \"") +
                         bad + "\" } }");
    ServerOptions options;
    options.model_repositories = {repo.path()};
    options.threads_per_instance = 1;
    auto server = Server::create(options);
    ASSERT_FALSE(server.ok()) << bad;
    EXPECT_NE(server.status().message().find("fp8_min_tokens '" + std::string(bad) + "'"),
              std::string::npos)
        << server.status().message();
  }
}

TEST(EncoderServing, PreserveOrderingWithTwoInstances) {
  TempRepo repo;
  repo.add_encoder("ord", "bert",
                   "max_batch_size: 8\ninstance_group [ { count: 2 kind: KIND_CPU } ]\n"
                   "dynamic_batching { preserve_ordering: true }\n");
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  std::mutex mu;
  std::vector<std::string> order;
  std::vector<Pending> pending;
  auto send = [&](InferRequest r) {
    Pending p;
    server->infer(std::move(r), [&mu, &order, p](Result<InferResponse> res) {
      {
        std::lock_guard lock(mu);
        order.push_back(res.ok() ? res->id : "error: " + res.status().message());
      }
      p.promise->set_value(std::move(res));
    });
    pending.push_back(p);
  };
  // A slow first request (8 rows of 120 tokens) on one instance, then short ones that the
  // other instance finishes long before it.
  InferRequest big;
  big.model_name = "ord";
  big.id = "0";
  std::vector<int64_t> ids(8 * 120);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = 5 + static_cast<int64_t>(i * 37 % 500);
  big.inputs.push_back(int64s("input_ids", {8, 120}, ids));
  send(big);
  std::vector<std::string> expected = {"0"};
  for (int i = 1; i <= 12; ++i) {
    send(ids_request("ord", {2, 5 + i, 3}, std::to_string(i)));
    expected.push_back(std::to_string(i));
  }
  for (auto& p : pending) ASSERT_TRUE(p.get().ok());
  std::lock_guard lock(mu);
  EXPECT_EQ(order, expected);
}

TEST(EncoderServing, OneBadRequestDoesNotFailItsBatch) {
  TempRepo repo;
  // RoBERTa has one token type: type id 1 passes prepare() but not the engine.
  const fs::path dir = repo.add_encoder(
      "rob", "roberta",
      "max_batch_size: 8\ndynamic_batching { max_queue_delay_microseconds: 100000 }\n", {1},
      /*with_vocab=*/false);
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  InferRequest good = ids_request("rob", {0, 10, 11, 12, 2}, "good");
  good.outputs = {"last_hidden_state"};
  InferRequest bad = ids_request("rob", {0, 20, 21, 2}, "bad");
  bad.inputs.push_back(int64s("token_type_ids", {1, 4}, {0, 1, 1, 0}));
  Pending g = infer_async(*server, good);
  Pending b = infer_async(*server, bad);
  auto gr = g.get();
  auto br = b.get();
  ASSERT_TRUE(gr.ok()) << gr.status().to_string();
  ASSERT_FALSE(br.ok());
  EXPECT_EQ(br.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(br.status().message().find("token type"), std::string::npos) << br.status().message();
  // Both went to the engine in one batch of 2 rows.
  auto stats = server->statistics("rob", "1");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[0].execution_count, 1u);
  EXPECT_EQ((*stats)[0].success.count, 1u);
  EXPECT_EQ((*stats)[0].fail.count, 1u);

  const Tensor* hidden = output(*gr, "last_hidden_state");
  ASSERT_NE(hidden, nullptr);
  EXPECT_EQ(hidden->shape, (std::vector<int64_t>{1, 5, 64}));
  auto engine = load_engine(dir / "1");
  ASSERT_NE(engine, nullptr);
  TokenBatch alone;
  alone.add({0, 10, 11, 12, 2}, {0, 0, 0, 0, 0});
  RunOptions what;
  what.hidden_states = true;
  RunOutputs expected;
  ASSERT_TRUE(engine->run(alone, what, &expected).ok());
  EXPECT_LE(max_abs_diff(floats_of(*hidden), expected.hidden_states), kTolerance);
}

}  // namespace
}  // namespace kiln::server::testing
