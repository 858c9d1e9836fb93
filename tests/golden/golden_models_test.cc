// Every architecture and head against Hugging Face transformers on tiny random checkpoints
// (tests/golden/models/tiny, written by make_golden.py): hidden states and head logits.
#include <gtest/gtest.h>

#include "golden_util.h"
#include "kiln/engine.h"

namespace kiln::testing {
namespace {

constexpr int kInputs = 4;

struct ModelCase {
  const char* dir;
  Precision precision;
};

// LoRA adapters (make_adapters.py) live beside the tiny checkpoints they adapt.
std::string dir_of(const ModelCase& c) {
  const bool adapter = std::string_view(c.dir).starts_with("lora_");
  return std::string(KILN_SOURCE_DIR) + "/tests/golden/models/" +
         (adapter ? "adapters/" : "tiny/") + c.dir;
}

class TinyModelTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(TinyModelTest, MatchesTransformers) {
  const ModelCase c = GetParam();
  EngineOptions options;
  options.precision = c.precision;
  auto engine = Engine::load(dir_of(c), options);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  Golden golden(dir_of(c) + "/golden.safetensors");
  ASSERT_TRUE(golden.ok());
  const bool bf16 = c.precision == Precision::kBF16;
  // BF16 keeps ~3 significant digits; on these deliberately large random weights (std 0.2)
  // errors of a few percent are expected. Real-model BF16 accuracy is checked on MiniLM.
  const double tol = bf16 ? 6e-2 : 1e-4;
  const ModelInfo& info = (*engine)->info();
  const int64_t h = info.hidden_size;

  TokenBatch all;  // all inputs in one ragged batch, checked against the same goldens
  for (int i = 0; i < kInputs; ++i) {
    const std::string k = "." + std::to_string(i);
    all.add(golden.ints("input_ids" + k), golden.has("token_type_ids" + k)
                                              ? golden.ints("token_type_ids" + k)
                                              : std::vector<int32_t>());
  }
  RunOutputs out;
  RunOptions what{.hidden_states = true,
                  .embeddings = info.pooling.from_sentence_transformers,
                  .head = info.task != Task::kEmbed};
  ASSERT_TRUE((*engine)->run(all, what, &out).ok());

  for (int i = 0; i < kInputs; ++i) {
    SCOPED_TRACE("input " + std::to_string(i));
    const std::string k = "." + std::to_string(i);
    const int64_t b = all.cu_seqlens[i], e = all.cu_seqlens[i + 1];
    EXPECT_LT(rel_error(rows(out.hidden_states, b, e, h), golden.floats("last_hidden_state" + k)),
              tol);
    if (golden.has("logits" + k)) {
      const int64_t n = out.logits_cols;
      const auto logits = info.task == Task::kSequenceClassification ? rows(out.logits, i, i + 1, n)
                                                                     : rows(out.logits, b, e, n);
      EXPECT_LT(rel_error(logits, golden.floats("logits" + k)), tol);
    }
    if (golden.has("start_logits" + k)) {
      std::vector<float> start, end;
      for (int64_t t = b; t < e; ++t) {
        start.push_back(out.logits[2 * t]);
        end.push_back(out.logits[2 * t + 1]);
      }
      EXPECT_LT(rel_error(start, golden.floats("start_logits" + k)), tol);
      EXPECT_LT(rel_error(end, golden.floats("end_logits" + k)), tol);
    }
    if (golden.has("embedding" + k)) {
      const auto ref = golden.floats("embedding" + k);
      EXPECT_GT(cosine(out.embeddings.data() + i * h, ref.data(), h), bf16 ? 0.999 : 0.99999);
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<ModelCase>& p) {
  return std::string(p.param.dir) + (p.param.precision == Precision::kBF16 ? "_bf16" : "_fp32");
}

#define KILN_TINY(name) \
  ModelCase{name, Precision::kF32}, ModelCase { name, Precision::kBF16 }
INSTANTIATE_TEST_SUITE_P(
    Architectures, TinyModelTest,
    ::testing::Values(KILN_TINY("bert"), KILN_TINY("bert_gelu_new"), KILN_TINY("bert_seq_cls"),
                      KILN_TINY("bert_token_cls"), KILN_TINY("bert_qa"),
                      KILN_TINY("bert_seq_cls_f16"), KILN_TINY("bert_seq_cls_bf16"),
                      KILN_TINY("bert_deep_st"), KILN_TINY("distilbert"),
                      KILN_TINY("distilbert_seq_cls"), KILN_TINY("distilbert_token_cls"),
                      KILN_TINY("distilbert_qa"), KILN_TINY("roberta"),
                      KILN_TINY("roberta_seq_cls"), KILN_TINY("roberta_token_cls"),
                      KILN_TINY("roberta_qa"), KILN_TINY("xlm_roberta_seq_cls")),
    case_name);
// Base + PEFT LoRA adapter merged at load, against PEFT's unmerged forward.
INSTANTIATE_TEST_SUITE_P(Adapters, TinyModelTest,
                         ::testing::Values(KILN_TINY("lora_bert_qa"),
                                           KILN_TINY("lora_bert_seq_cls"),
                                           KILN_TINY("lora_distilbert_token_cls"),
                                           KILN_TINY("lora_roberta_embed")),
                         case_name);
#undef KILN_TINY

TEST(EngineInputTest, BadBatchesAreClearErrors) {
  auto engine = Engine::load(std::string(KILN_SOURCE_DIR) + "/tests/golden/models/tiny/bert", {});
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  RunOutputs out;
  TokenBatch b;
  b.add({2, 600, 7}, {});  // 600 is outside the 512-id vocabulary
  auto s = (*engine)->run(b, {.hidden_states = true}, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("600"), std::string::npos) << s.message();
  TokenBatch types;
  types.add({2, 6, 7}, {0, 2, 0});
  EXPECT_EQ((*engine)->run(types, {.hidden_states = true}, &out).code(),
            StatusCode::kInvalidArgument);
  TokenBatch too_long;
  too_long.add(std::vector<int32_t>(129, 5), {});
  EXPECT_EQ((*engine)->run(too_long, {.hidden_states = true}, &out).code(),
            StatusCode::kInvalidArgument);
  TokenBatch broken;
  broken.ids = {5, 6};
  broken.cu_seqlens = {0, 3};
  EXPECT_EQ((*engine)->run(broken, {.hidden_states = true}, &out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*engine)->tokenize({"no tokenizer"}).status().code(), StatusCode::kFailedPrecondition);
}

TEST(EngineInputTest, TypeIdsAreIgnoredWithoutATypeTable) {
  // DistilBERT has no token type embeddings; pair templates still emit type id 1.
  auto engine =
      Engine::load(std::string(KILN_SOURCE_DIR) + "/tests/golden/models/tiny/distilbert_qa", {});
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  TokenBatch with_types, without;
  with_types.add({2, 7, 8, 3, 9, 3}, {0, 0, 0, 0, 1, 1});
  without.add({2, 7, 8, 3, 9, 3}, {});
  RunOutputs a, b;
  ASSERT_TRUE((*engine)->run(with_types, {.head = true}, &a).ok());
  ASSERT_TRUE((*engine)->run(without, {.head = true}, &b).ok());
  EXPECT_EQ(a.logits, b.logits);
}

TEST(EngineInputTest, EmptyBatchRuns) {
  auto engine = Engine::load(std::string(KILN_SOURCE_DIR) + "/tests/golden/models/tiny/bert", {});
  ASSERT_TRUE(engine.ok());
  RunOutputs out;
  EXPECT_TRUE((*engine)->run(TokenBatch(), {.hidden_states = true, .embeddings = true}, &out).ok());
  EXPECT_TRUE(out.hidden_states.empty());
}

TEST(EngineInputTest, MissingFilesAreClearErrors) {
  auto missing = Engine::load("/nonexistent/model", {});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EngineOptions bad_device;
  bad_device.device = "tpu";
  auto device =
      Engine::load(std::string(KILN_SOURCE_DIR) + "/tests/golden/models/tiny/bert", bad_device);
  EXPECT_NE(device.status().message().find("tpu"), std::string::npos);
}

}  // namespace
}  // namespace kiln::testing
